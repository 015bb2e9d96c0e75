// The enrollment book of kernel replicas: tables agent_enrollments and
// agent_ca of their shared PostgreSQL database (schema version 6). Each
// change is one conditional statement, so two replicas enrolling the same
// agent with the same token, or renewing the same certificate, leave exactly
// one winner.
#pragma once

#include <memory>

#include "airlock/cpp/status.hpp"
#include "kernel/agent/enrollment_book.h"
#include "kernel/common/secret.h"
#include "kernel/state/postgres_state_store.h"

namespace airlock::agent {

struct PostgresBookOptions {
  PostgresTlsSettings tls;
  int connect_timeout_seconds = 5;
};

// Parses the connection string; connects at first use (and again after a
// broken connection).
Result<std::unique_ptr<EnrollmentBook>> OpenPostgresEnrollmentBook(
    const Secret& dsn, const PostgresBookOptions& options);

}  // namespace airlock::agent
