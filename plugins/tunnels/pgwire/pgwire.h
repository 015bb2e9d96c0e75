// The PostgreSQL wire-protocol tunnel: one Boost.Asio listener per instance
// serving many request-scoped endpoints. A client connects as user
// <request_id> to database <request_id> with the password open() issued
// (SCRAM-SHA-256; the tunnel keeps only the verifier). close() revokes at once.
// The host's query channel audits every statement; this plugin does not.
//
// Threads: one I/O thread runs the acceptor and the deadline watchdog; every
// connection is served by its own thread (at most max_connections; see the
// connection budget in config.h).
// Thread-safety: Open and endpoint destruction may be called concurrently
// from any thread. The destructor revokes every endpoint still open.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "airlock/cpp/connection_budget.hpp"
#include "airlock/cpp/host.hpp"
#include "airlock/cpp/plugin.hpp"
#include "config.h"
#include "endpoint.h"
#include "session.h"

namespace airlock::tunnels::pgwire {

// The handle open() returns. Destroying it revokes the endpoint: later
// connections are refused, connected clients get 57P01 and are dropped, and
// the destructor returns only once no statement is inside the host's channel.
class PgwireEndpoint final : public sdk::TunnelEndpoint {
 public:
  PgwireEndpoint(std::shared_ptr<EndpointRegistry> registry, std::shared_ptr<EndpointState> state,
                 sdk::Host host)
      : registry_(std::move(registry)), state_(std::move(state)), host_(std::move(host)) {}
  ~PgwireEndpoint() override;
  void SetCloseReason(sdk::CloseReason reason) override { state_->set_close_reason(reason); }
  Status ExtendWindow(int64_t not_after) override { return state_->ExtendTo(not_after); }

 private:
  std::shared_ptr<EndpointRegistry> registry_;
  std::shared_ptr<EndpointState> state_;
  sdk::Host host_;
};

// Every live connection and its thread, by BackendKeyData process id.
class SessionTable final : public CancelRouter {
 public:
  ~SessionTable() override;
  // Serves `socket` on a new thread, holding `ticket`.
  std::shared_ptr<Session> Start(SessionContext& context, boost::asio::ip::tcp::socket socket,
                                 sdk::ConnectionBudget::Ticket ticket,
                                 Connection::Clock::time_point accepted_at);
  size_t size() const;
  void EnforceDeadlines();
  // Joins the threads of connections that ended.
  void Reap();
  // Drops every connection and joins every thread.
  void KillAll();
  void Cancel(int32_t process_id, int32_t secret_key) override;

 private:
  void Finished(int32_t process_id);

  struct Entry {
    std::shared_ptr<Session> session;
    std::thread thread;
  };
  mutable std::mutex mutex_;
  std::condition_variable ended_;
  std::map<int32_t, Entry> live_;      // GUARDED_BY(mutex_)
  std::vector<std::thread> finished_;  // GUARDED_BY(mutex_)
};

class PgwireTunnel final : public sdk::TunnelTransport {
 public:
  // Parses the configuration, loads the TLS files, binds the listener and
  // starts the I/O thread.
  static Result<std::unique_ptr<PgwireTunnel>> Create(const Json& config, const sdk::Host& host);
  // What Create refuses (configuration, listen address, TLS files), without
  // binding the listener or starting threads: `airlockd check-config`.
  static Status CheckConfig(const Json& config, const sdk::Host& host);
  ~PgwireTunnel() override;

  // spec: {"request_id", "principal":{...}, "not_after": unix seconds}.
  // grant: {"url": "postgresql://<id>@<host>:<port>/<id>?sslmode=require",
  //         "host", "port", "user", "database", "credential", "sslmode",
  //         "expires_at", "transport": "pgwire"}.
  Result<sdk::TunnelOpening> Open(const Json& endpoint_spec, sdk::QueryChannel channel) override;

  uint16_t port() const { return port_; }

 private:
  PgwireTunnel(PgwireConfig config, sdk::Host host);
  Status Start();
  void DoAccept();
  void Admit(boost::asio::ip::tcp::socket socket);
  void ArmWatchdog();

  // An admitted connection that has not sent its first byte yet. It is
  // served by the I/O thread alone and gets a session thread only once it
  // has something to say, so that idle sockets and a reconnect storm cost an
  // accept and a close each, not a thread: the listener keeps pace with the
  // storm and the accept queue stays short for everyone else.
  struct Waiting {
    Waiting(boost::asio::ip::tcp::socket s, boost::asio::io_context& io,
            sdk::ConnectionBudget::Ticket t, std::shared_ptr<std::weak_ptr<Session>> a)
        : socket(std::move(s)), deadline(io), ticket(std::move(t)), admitted(std::move(a)) {}
    boost::asio::ip::tcp::socket socket;
    boost::asio::steady_timer deadline;  // startup_timeout from the accept
    sdk::ConnectionBudget::Ticket ticket;
    // The session once started, for the shed callback.
    std::shared_ptr<std::weak_ptr<Session>> admitted;
    const Connection::Clock::time_point accepted_at = Connection::Clock::now();
  };

  const PgwireConfig config_;
  const sdk::Host host_;
  std::shared_ptr<EndpointRegistry> registry_ = std::make_shared<EndpointRegistry>(kCloseGrace);
  std::optional<boost::asio::ssl::context> tls_;
  // Admit runs on the I/O thread only (DoAccept).
  sdk::ConnectionBudget budget_{config_.connections};
  SessionTable sessions_;
  std::optional<SessionContext> session_context_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer watchdog_;
  std::chrono::milliseconds watchdog_period_{250};
  std::thread io_thread_;
  // I/O thread only.
  bool stopping_ = false;  // the destructor began: arm nothing more
  std::map<uint64_t, std::unique_ptr<Waiting>> waiting_;
  uint64_t next_waiting_id_ = 0;
  uint16_t port_ = 0;
};

}  // namespace airlock::tunnels::pgwire
