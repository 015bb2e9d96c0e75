// A client of one request's https tunnel, as the kernel-level suites use it:
// take the request's tunnel credential from the API, connect to the tunnel
// over TLS and post SQL to it.
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "tests/kernel/e2e/kernel_process.h"
#include "tests/support/http_client.h"

namespace airlock::test {

struct TunnelSession {
  std::unique_ptr<HttpClient> client;  // null when the credential was refused
  std::string prefix;
  std::string credential;
};

// POST /v1/requests/{id}/credentials on `api` as `auth`, then a TLS client of
// the tunnel trusting `ca_file`. `*grant` receives the API's answer.
inline TunnelSession ConnectTunnel(HttpClient& api, const std::string& request_id,
                                   const Headers& auth, const std::string& ca_file,
                                   ClientResponse* grant) {
  *grant = api.Post("/v1/requests/" + request_id + "/credentials", "", auth);
  TunnelSession session;
  if (grant->status != 200) return session;
  const nlohmann::json body = grant->json();
  const TunnelTarget target = ParseTunnelUrl(body.value("url", ""));
  session.client =
      std::make_unique<HttpClient>(target.host, target.port, ClientTls{ca_file, "", ""});
  session.prefix = target.prefix;
  session.credential = body.value("credential", "");
  return session;
}

// POST <prefix>/query {"sql": sql} with the session's credential; status 0
// when there is no tunnel client.
inline ClientResponse TunnelQuery(TunnelSession& session, const std::string& sql) {
  if (!session.client) return ClientResponse{};
  return session.client->Post(
      session.prefix + "/query", nlohmann::json{{"sql", sql}}.dump(),
      {{"Authorization", "Bearer " + session.credential}, {"Content-Type", "application/json"}});
}

}  // namespace airlock::test
