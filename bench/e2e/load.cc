#include "bench/e2e/load.h"

#include <libpq-fe.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <memory>

#include <nlohmann/json.hpp>

#include "bench/e2e/stats.h"

namespace airlock::bench {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

// Everything the users share; one thread touches it, so no locks.
struct Run {
  int users = 0;
  int settled = 0;  // users connected or given up before the start
  double duration_s = 0;
  Clock::time_point start{}, deadline{};
  std::unique_ptr<asio::steady_timer> gate;  // cancelled at the start
  std::vector<double> latencies_ms;
  int64_t successes = 0, failures = 0, connect_failures = 0, in_flight = 0;
  std::string first_error;
  const std::vector<std::string>* queries = nullptr;

  void Fail(const std::string& e) {
    ++failures;
    if (first_error.empty()) first_error = e;
  }
  void Settle() {
    if (++settled == users) Begin();
  }
  void Begin() {
    if (start != Clock::time_point{}) return;
    start = Clock::now();
    deadline = start + std::chrono::duration_cast<Clock::duration>(
                           std::chrono::duration<double>(duration_s));
    gate->cancel();
  }
  bool Running() const { return start != Clock::time_point{} && Clock::now() < deadline; }
};

asio::awaitable<void> WaitStart(Run& run) {
  if (run.start == Clock::time_point{}) co_await run.gate->async_wait(kTuple);
}

using TlsStream = beast::ssl_stream<beast::tcp_stream>;

asio::awaitable<std::unique_ptr<TlsStream>> HttpsConnect(ssl::context& ctx, tcp::endpoint ep,
                                                         std::string* error) {
  auto ex = co_await asio::this_coro::executor;
  auto s = std::make_unique<TlsStream>(ex, ctx);
  beast::get_lowest_layer(*s).expires_after(std::chrono::seconds(60));
  auto [ec] = co_await beast::get_lowest_layer(*s).async_connect(ep, kTuple);
  if (!ec) std::tie(ec) = co_await s->async_handshake(ssl::stream_base::client, kTuple);
  if (ec) {
    *error = "connect: " + ec.message();
    co_return nullptr;
  }
  beast::get_lowest_layer(*s).socket().set_option(tcp::no_delay(true));
  co_return s;
}

asio::awaitable<void> HttpsUser(Run& run, ssl::context& ctx, tcp::endpoint ep, std::string target,
                                std::string auth, int offset) {
  std::string error;
  std::unique_ptr<TlsStream> s = co_await HttpsConnect(ctx, ep, &error);
  if (!s) {
    ++run.connect_failures;
    run.Fail(error);
  }
  run.Settle();
  co_await WaitStart(run);
  beast::flat_buffer buffer;
  std::vector<std::string> bodies;
  for (const auto& q : *run.queries) bodies.push_back(nlohmann::json{{"sql", q}}.dump());
  size_t next = static_cast<size_t>(offset);
  while (run.Running()) {
    if (!s) {
      s = co_await HttpsConnect(ctx, ep, &error);
      if (!s) {
        run.Fail(error);
        continue;
      }
      buffer.clear();
    }
    http::request<http::string_body> req{http::verb::post, target, 11};
    req.set(http::field::host, "127.0.0.1");
    req.set(http::field::authorization, auth);
    req.set(http::field::content_type, "application/json");
    req.keep_alive(true);
    req.body() = bodies[next++ % bodies.size()];
    req.prepare_payload();
    const auto t0 = Clock::now();
    ++run.in_flight;
    beast::get_lowest_layer(*s).expires_after(std::chrono::seconds(60));
    auto [ec, n] = co_await http::async_write(*s, req, kTuple);
    http::response_parser<http::string_body> parser;
    parser.body_limit(64u << 20);
    if (!ec) std::tie(ec, n) = co_await http::async_read(*s, buffer, parser, kTuple);
    --run.in_flight;
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    if (ec) {
      run.Fail("transport: " + ec.message());
      s.reset();
      continue;
    }
    const auto& res = parser.get();
    if (res.result_int() != 200 || res.body().find("\"error\":") != std::string::npos) {
      run.Fail(std::to_string(res.result_int()) + " " + res.body().substr(0, 200));
      if (!res.keep_alive()) s.reset();
      continue;
    }
    ++run.successes;
    run.latencies_ms.push_back(ms);
    if (!res.keep_alive()) s.reset();
  }
  if (s) {
    beast::error_code ignored;
    beast::get_lowest_layer(*s).socket().close(ignored);
  }
}

// A libpq connection whose socket Asio watches; the descriptor is released,
// never closed, because libpq owns the socket.
struct PgConn {
  PGconn* conn = nullptr;
  asio::posix::stream_descriptor sd;
  explicit PgConn(asio::any_io_executor ex) : sd(ex) {}
  ~PgConn() { Reset(); }
  void Reset() {
    if (sd.is_open()) sd.release();
    if (conn != nullptr) PQfinish(conn);
    conn = nullptr;
  }
  void Track() {
    const int fd = PQsocket(conn);
    if (sd.is_open() && sd.native_handle() == fd) return;
    if (sd.is_open()) sd.release();
    if (fd >= 0) sd.assign(fd);
  }
  asio::awaitable<bool> Wait(bool read) {
    auto [ec] = co_await sd.async_wait(read ? asio::posix::stream_descriptor::wait_read
                                            : asio::posix::stream_descriptor::wait_write,
                                       kTuple);
    co_return !ec;
  }
};

asio::awaitable<bool> PgConnect(PgConn& c, const std::string& conninfo, std::string* error) {
  c.Reset();
  c.conn = PQconnectStart(conninfo.c_str());
  if (c.conn == nullptr || PQstatus(c.conn) == CONNECTION_BAD) {
    *error = c.conn ? PQerrorMessage(c.conn) : "PQconnectStart failed";
    co_return false;
  }
  c.Track();
  PostgresPollingStatusType st = PGRES_POLLING_WRITING;
  while (st != PGRES_POLLING_OK) {
    if (st == PGRES_POLLING_FAILED) {
      *error = std::string("connect: ") + PQerrorMessage(c.conn);
      co_return false;
    }
    if (!co_await c.Wait(st == PGRES_POLLING_READING)) {
      *error = "connect: wait failed";
      co_return false;
    }
    st = PQconnectPoll(c.conn);
    c.Track();
  }
  PQsetnonblocking(c.conn, 1);
  co_return true;
}

asio::awaitable<bool> PgQuery(PgConn& c, const std::string& sql, std::string* error) {
  if (!PQsendQuery(c.conn, sql.c_str())) {
    *error = PQerrorMessage(c.conn);
    co_return false;
  }
  int f;
  while ((f = PQflush(c.conn)) == 1) {
    if (!co_await c.Wait(false)) break;
  }
  if (f != 0) {
    *error = "flush failed";
    co_return false;
  }
  bool ok = true;
  for (;;) {
    while (PQisBusy(c.conn)) {
      if (!co_await c.Wait(true) || !PQconsumeInput(c.conn)) {
        *error = std::string("read: ") + PQerrorMessage(c.conn);
        co_return false;
      }
    }
    PGresult* r = PQgetResult(c.conn);
    if (r == nullptr) break;
    const auto status = PQresultStatus(r);
    if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
      if (ok) *error = PQresultErrorMessage(r);
      ok = false;
    }
    PQclear(r);
  }
  co_return ok;
}

asio::awaitable<void> PgUser(Run& run, std::string conninfo, int offset) {
  PgConn c(co_await asio::this_coro::executor);
  std::string error;
  bool connected = co_await PgConnect(c, conninfo, &error);
  if (!connected) {
    ++run.connect_failures;
    run.Fail(error);
  }
  run.Settle();
  co_await WaitStart(run);
  size_t next = static_cast<size_t>(offset);
  while (run.Running()) {
    if (!connected) {
      connected = co_await PgConnect(c, conninfo, &error);
      if (!connected) {
        run.Fail(error);
        continue;
      }
    }
    const auto t0 = Clock::now();
    ++run.in_flight;
    const bool ok = co_await PgQuery(c, (*run.queries)[next++ % run.queries->size()], &error);
    --run.in_flight;
    if (!ok) {
      run.Fail(error);
      if (PQstatus(c.conn) != CONNECTION_OK) connected = false;
      continue;
    }
    ++run.successes;
    run.latencies_ms.push_back(
        std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
}

}  // namespace

LoadLevel RunLoad(const Grant& grant, const std::string& transport, const std::string& /*ca*/,
                  int users, double duration_s, const std::vector<std::string>& queries) {
  asio::io_context io(1);
  Run run;
  run.users = users;
  run.duration_s = duration_s;
  run.queries = &queries;
  run.gate = std::make_unique<asio::steady_timer>(io, Clock::time_point::max());
  // The server's certificate is not what is measured: no verification cost.
  ssl::context ctx(ssl::context::tls_client);
  ctx.set_verify_mode(ssl::verify_none);
  const test::TunnelTarget t = test::ParseTunnelUrl(grant.url);
  const tcp::endpoint ep(asio::ip::make_address(t.host.empty() ? "127.0.0.1" : t.host), t.port);
  const std::string conninfo =
      "host=" + grant.raw.value("host", "127.0.0.1") +
      " port=" + std::to_string(grant.raw.value("port", 0)) +
      " user=" + grant.raw.value("user", "") + " dbname=" + grant.raw.value("database", "") +
      " password=" + grant.credential + " sslmode=require gssencmode=disable connect_timeout=60";
  for (int u = 0; u < users; ++u) {
    if (transport == "https") {
      asio::co_spawn(io,
                     HttpsUser(run, ctx, ep, t.prefix + "/query", "Bearer " + grant.credential, u),
                     asio::detached);
    } else {
      asio::co_spawn(io, PgUser(run, conninfo, u), asio::detached);
    }
  }
  // Users that cannot connect within a minute do not hold the others back.
  asio::steady_timer give_up(io, std::chrono::seconds(60));
  give_up.async_wait([&](const boost::system::error_code&) { run.Begin(); });
  // Run until the deadline has passed and in-flight queries finished (30 s grace).
  while (run.start == Clock::time_point{} || Clock::now() < run.deadline) {
    io.run_for(std::chrono::milliseconds(100));
  }
  give_up.cancel();
  const auto hard_stop = Clock::now() + std::chrono::seconds(30);
  while (!io.stopped() && Clock::now() < hard_stop) io.run_for(std::chrono::milliseconds(100));
  if (!io.stopped() && run.in_flight > 0) {
    run.failures += run.in_flight;
    if (run.first_error.empty()) run.first_error = "query still running 30 s after the end";
  }
  io.stop();

  LoadLevel level;
  level.users = users;
  level.successes = run.successes;
  level.failures = run.failures;
  level.connect_failures = run.connect_failures;
  level.seconds = duration_s;
  const Summary s = Summarize(run.latencies_ms);
  level.avg_ms = s.mean;
  level.p50_ms = s.p50;
  level.p95_ms = s.p95;
  level.p99_ms = s.p99;
  level.max_ms = s.max;
  level.qps = static_cast<double>(run.successes) / duration_s;
  const int64_t total = run.successes + run.failures;
  level.error_rate = total > 0 ? static_cast<double>(run.failures) / static_cast<double>(total) : 0;
  level.first_error = run.first_error;
  return level;
}

}  // namespace airlock::bench
