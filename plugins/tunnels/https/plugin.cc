// Registers the HTTPS tunnel transport under the name "https".
#include "airlock/cpp/plugin.hpp"
#include "https.h"

AIRLOCK_TUNNEL_PLUGIN(
    airlock::tunnels::https::HttpsTunnel, "https", "1.0.0",
    "HTTPS query endpoint per request: SQL with a one-time bearer credential, JSON or CSV rows "
    "streamed back, schema browsing and a built-in web explorer",
    R"({"type":"object","additionalProperties":false,)"
    R"("properties":{"listen_address":{"type":"string"},)"
    R"("port":{"type":"integer","minimum":0,"maximum":65535},)"
    R"("tls":{"type":"object","additionalProperties":false,)"
    R"("required":["certificate_file","private_key_file"],)"
    R"("properties":{"certificate_file":{"type":"string"},"private_key_file":{"type":"string"}}},)"
    R"("allow_plaintext":{"type":"boolean"},"public_host":{"type":"string"},)"
    R"("max_rows":{"type":"integer","minimum":1},"max_body_bytes":{"type":"integer","minimum":16},)"
    R"("query_timeout_ms":{"type":"integer","minimum":1},)"
    R"("rate_limit_per_minute":{"type":"integer","minimum":0},)"
    R"("max_concurrent_queries":{"type":"integer","minimum":1,"maximum":1024},)"
    R"("io_threads":{"type":"integer","minimum":1},"query_threads":{"type":"integer","minimum":1},)"
    R"("max_connections":{"type":"integer","minimum":2},)"
    R"("max_preauth_connections":{"type":"integer","minimum":1},)"
    R"("max_preauth_connections_per_address":{"type":"integer","minimum":1},)"
    R"("max_connections_per_endpoint":{"type":"integer","minimum":1},)"
    R"("preauth_timeout_ms":{"type":"integer","minimum":100},)"
    R"("idle_timeout_ms":{"type":"integer","minimum":100}}})")
