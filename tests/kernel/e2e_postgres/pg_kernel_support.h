// What the PostgreSQL kernel suites share: a kernel configuration on a real
// PostgreSQL (TLS verify-full, the connection string in a file: secret
// reference), the kernel's role, and polling helpers.
#pragma once

#include <chrono>
#include <string>

#include <nlohmann/json.hpp>

#include "tests/kernel/e2e/kernel_process.h"
#include "tests/support/http_client.h"
#include "tests/support/postgres/pg_cluster.h"
#include "tests/support/test_pki.h"

namespace airlock::test {

inline constexpr const char* kPgAlice = "alk_pg_alice_token_1";
inline constexpr const char* kPgBob = "alk_pg_bob_token_2";
inline constexpr const char* kPgCarol = "alk_pg_carol_token_3";
// The kernel role's password: it must reach no log, answer or output.
inline constexpr const char* kPgPassword = "kernel-Pw-3d9f0b7e";

// alice (analysts) asks for `orders`; bob and carol (owners) approve,
// `approvals_needed` of them.
nlohmann::json PgKernelConfig(const std::string& dir, const TestPki& pki, const PgCluster& pg,
                              int approvals_needed = 1);

// The kernel's role, created once per cluster whichever test runs first.
void CreateKernelRole(PgCluster& pg);
// <dir>/state.dsn (0600): the connection string to `database` as the role.
void WriteDsn(const std::string& dir, const PgCluster& pg, const std::string& database);

// Polls `path` on `port` until it answers `status` or `timeout` passes.
ClientResponse WaitForStatus(uint16_t port, const std::string& path, unsigned status,
                             std::chrono::seconds timeout);

}  // namespace airlock::test
