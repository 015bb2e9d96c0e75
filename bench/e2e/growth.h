// How cost grows: time from approval to a ready enclave and the enclave's
// peak memory as one PostgreSQL dataset grows from 10k to 10M rows (about
// 100 bytes a row, so 10M is about 1 GB), each against `psql \copy` of the
// same rows to /dev/null over the same TLS connection; time to ready as the
// sources of a request grow from 1 to 8; and the kernel's own memory while
// it all happens.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "bench/e2e/fixture.h"

namespace airlock::bench {

nlohmann::json RunGrowth(Sources& sources, const std::string& dir, bool small);

}  // namespace airlock::bench
