// The HTTPS tunnel transport: one HTTP(S) listener per instance serving many
// request-scoped endpoints under /t/<request_id>/. open() issues a bearer
// credential (kept only as a SHA-256), close() revokes the endpoint at once.
// The host's query channel audits every query; this plugin does not.
//
// Thread-safety: Open and endpoint destruction may be called concurrently
// from any thread. The destructor revokes every endpoint still open.
#pragma once

#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/thread_pool.hpp>

#include "airlock/cpp/host.hpp"
#include "airlock/cpp/plugin.hpp"
#include "config.h"
#include "endpoint.h"
#include "listener.h"
#include "router.h"
#include "session.h"

namespace airlock::tunnels::https {

// The handle open() returns. Destroying it revokes the endpoint: later
// requests get 410, bound connections are dropped, running queries are
// cancelled, and the destructor returns only once none of them is still
// inside the host's query channel.
class HttpsEndpoint final : public sdk::TunnelEndpoint {
 public:
  HttpsEndpoint(std::shared_ptr<EndpointRegistry> registry, std::shared_ptr<EndpointState> state,
                sdk::Host host)
      : registry_(std::move(registry)), state_(std::move(state)), host_(std::move(host)) {}
  ~HttpsEndpoint() override;
  void SetCloseReason(sdk::CloseReason reason) override { state_->set_close_reason(reason); }
  Status ExtendWindow(int64_t not_after) override { return state_->ExtendTo(not_after); }

 private:
  std::shared_ptr<EndpointRegistry> registry_;
  std::shared_ptr<EndpointState> state_;
  sdk::Host host_;
};

class HttpsTunnel final : public sdk::TunnelTransport {
 public:
  // Parses the configuration, loads the TLS files, binds the listener and
  // starts the I/O and query threads.
  static Result<std::unique_ptr<HttpsTunnel>> Create(const Json& config, const sdk::Host& host);
  // What Create refuses (configuration, listen address, TLS files), without
  // binding the listener or starting threads: `airlockd check-config`.
  static Status CheckConfig(const Json& config, const sdk::Host& host);
  ~HttpsTunnel() override;

  // spec: {"request_id", "principal":{...}, "not_after": unix seconds}.
  // grant: {"url":"https://<public_host>:<port>/t/<id>", "credential",
  //         "expires_at": not_after, "transport":"https"} ("http" in plaintext mode).
  Result<sdk::TunnelOpening> Open(const Json& endpoint_spec, sdk::QueryChannel channel) override;

  uint16_t port() const { return port_; }

 private:
  HttpsTunnel(HttpsTunnelConfig config, sdk::Host host);
  Status Start();

  const HttpsTunnelConfig config_;
  const sdk::Host host_;
  std::shared_ptr<EndpointRegistry> registry_ = std::make_shared<EndpointRegistry>();
  std::optional<boost::asio::ssl::context> tls_;
  RequestRouter router_;
  boost::asio::thread_pool query_pool_;
  SessionContext session_context_;
  // Declared after everything sessions use: destroying the I/O context
  // destroys the sessions still parked in its handlers.
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::shared_ptr<Listener> listener_;
  std::vector<std::thread> io_threads_;
  uint16_t port_ = 0;
};

}  // namespace airlock::tunnels::https
