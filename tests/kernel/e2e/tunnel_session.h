// A client of one request's https tunnel, as the kernel-level suites use it:
// take the request's tunnel credential from the API, connect to the tunnel
// over TLS and post SQL to it.
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <memory>
#include <string>
#include <utility>

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

// psql against a pgwire grant's URL, its password in psql's environment,
// with `options` added to its arguments; the exit code and what it printed
// (stdout and stderr).
inline std::pair<int, std::string> Psql(const nlohmann::json& grant, const std::string& sql,
                                        const std::string& options = "") {
  const std::string command = "PGPASSWORD='" + grant.value("credential", "") +
                              "' PGCONNECT_TIMEOUT=10 PGGSSENCMODE=disable psql -X -A -t " +
                              options + " '" + grant.value("url", "") + "' -c \"" + sql + "\" 2>&1";
  std::string output;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return {-1, output};
  char buffer[4096];
  size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) output.append(buffer, n);
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

}  // namespace airlock::test
