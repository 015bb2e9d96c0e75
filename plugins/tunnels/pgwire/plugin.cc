// Registers the PostgreSQL wire-protocol tunnel transport under the name "pgwire".
#include "airlock/cpp/plugin.hpp"
#include "pgwire.h"

AIRLOCK_TUNNEL_PLUGIN(
    airlock::tunnels::pgwire::PgwireTunnel, "pgwire", "1.0.0",
    "PostgreSQL v3 protocol endpoint per request: psql, libpq and BI tools with a one-time "
    "SCRAM-SHA-256 password",
    R"({"type":"object","additionalProperties":false,)"
    R"("properties":{"listen_address":{"type":"string"},)"
    R"("port":{"type":"integer","minimum":0,"maximum":65535},)"
    R"("tls":{"type":"object","additionalProperties":false,)"
    R"("required":["certificate_file","private_key_file"],)"
    R"("properties":{"certificate_file":{"type":"string"},"private_key_file":{"type":"string"}}},)"
    R"("allow_plaintext":{"type":"boolean"},"public_host":{"type":"string"},)"
    R"("max_connections":{"type":"integer","minimum":2,"maximum":10000},)"
    R"("max_preauth_connections":{"type":"integer","minimum":1},)"
    R"("max_preauth_connections_per_address":{"type":"integer","minimum":1},)"
    R"("max_connections_per_endpoint":{"type":"integer","minimum":1},)"
    R"("max_message_bytes":{"type":"integer","minimum":1024},)"
    R"("max_rows":{"type":"integer","minimum":1},)"
    R"("max_prepared_statements":{"type":"integer","minimum":1},)"
    R"("scram_iterations":{"type":"integer","minimum":4096},)"
    R"("startup_timeout_ms":{"type":"integer","minimum":100},)"
    R"("idle_timeout_ms":{"type":"integer","minimum":100},)"
    R"("write_timeout_ms":{"type":"integer","minimum":100},)"
    R"("query_timeout_ms":{"type":"integer","minimum":1}}})")
