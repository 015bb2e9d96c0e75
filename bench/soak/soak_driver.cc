// The soak load: many keep-alive API clients, continuous request lifecycles
// and tunnel queries against one running airlockd, for a fixed duration, on
// loopback. bench/soak/run.sh starts the kernel and runs this; see
// bench/soak/README.md.
//
// Everything runs as coroutines on one thread (one io_context): 1000 clients
// are 1000 connections, not 1000 threads. The run is bounded: it stops by
// itself at the deadline, lets in-flight work finish (at most 60 s), resolves
// every request it created, checks that GET /v1/requests accounts for each of
// them, and writes a JSON report. Any unexpected answer, transport error or
// unaccounted request is an error; the exit status is 0 only with no errors.
#include <dirent.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/e2e/stats.h"

namespace airlock::bench::soak {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using nlohmann::json;
using Clock = std::chrono::steady_clock;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr auto kIoTimeout = std::chrono::seconds(30);
constexpr size_t kMaxErrorsKept = 20;

struct Options {
  uint16_t api_port = 0;
  std::string ca_file;
  int clients = 1000;
  double duration_s = 600;
  int lifecycles = 2;    // concurrent lifecycle loops
  int tunnel_users = 8;  // users querying one long-lived ready request
  int think_ms = 1000;   // mean pause of an API client between calls
  int post_percent = 4;  // share of API client calls that are POSTs
  int queries_per_lifecycle = 10;
  int sample_every_s = 30;
  int kernel_pid = 0;
  std::string alice, bob, carol;  // API tokens: requester, approver, admin
  std::string out;
};

// One /proc sample of the kernel.
struct Sample {
  double t_s = 0;
  std::string phase;
  int64_t rss_kb = 0;
  int64_t fds = 0;
  int64_t threads = 0;
  // From the kernel's /metrics (samples under load): where the RSS goes.
  int64_t heap_kb = -1;        // what the kernel holds from its allocator
  int64_t sqlite_kb = -1;      // SQLite's memory, caches included
  int64_t page_cache_kb = -1;  // of which SQLite's page caches
  int64_t audit_index = -1;    // requests in the audit log\'s in-memory index
  int64_t view_cache = -1;     // rendered request views kept
};

// A gauge's value in Prometheus text, or -1.
int64_t GaugeValue(const std::string& text, const std::string& name) {
  const std::string prefix = "\n" + name + " ";
  const size_t at = text.find(prefix);
  if (at == std::string::npos) return -1;
  return std::atoll(text.c_str() + at + prefix.size());
}

Sample SampleKernel(int pid, double t_s, const std::string& phase) {
  Sample s;
  s.t_s = t_s;
  s.phase = phase;
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) s.rss_kb = std::atoll(line.c_str() + 6);
    if (line.rfind("Threads:", 0) == 0) s.threads = std::atoll(line.c_str() + 8);
  }
  if (DIR* dir = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str())) {
    while (const dirent* e = ::readdir(dir)) {
      if (e->d_name[0] != '.') ++s.fds;
    }
    ::closedir(dir);
  }
  return s;
}

// Everything the coroutines share; one thread touches it, so no locks.
struct Run {
  Options opt;
  Clock::time_point t0 = Clock::now();
  Clock::time_point start{}, deadline{};
  std::unique_ptr<asio::steady_timer> gate;  // cancelled when every client is connected
  int clients_settled = 0;
  int workers_running = 0;
  std::mt19937 rng{12345};

  int64_t calls = 0, errors = 0, reconnects = 0;
  std::map<std::string, int64_t> calls_by_kind;
  std::vector<std::string> error_samples;
  std::vector<double> api_ms, query_ms;
  int64_t lifecycles_done = 0, tunnel_queries = 0;
  // Every request this run created and the state it must end in.
  std::map<std::string, std::string> expected;
  std::vector<std::string> known_ids;  // for GET /v1/requests/{id}
  std::vector<Sample> samples;

  double Elapsed() const { return std::chrono::duration<double>(Clock::now() - t0).count(); }
  bool Running() const { return start != Clock::time_point{} && Clock::now() < deadline; }
  void Error(const std::string& what) {
    ++errors;
    if (error_samples.size() < kMaxErrorsKept) error_samples.push_back(what);
  }
  void Begin() {
    if (start != Clock::time_point{}) return;
    start = Clock::now();
    deadline = start + std::chrono::duration_cast<Clock::duration>(
                           std::chrono::duration<double>(opt.duration_s));
    gate->cancel();
  }
  int Uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); }
};

asio::awaitable<void> WaitStart(Run& run) {
  if (run.start == Clock::time_point{}) co_await run.gate->async_wait(kTuple);
}

asio::awaitable<void> Pause(std::chrono::milliseconds d) {
  asio::steady_timer timer(co_await asio::this_coro::executor, d);
  co_await timer.async_wait(kTuple);
}

struct Reply {
  unsigned status = 0;  // 0: transport error
  std::string body;
  std::string error;
  json Json() const { return json::parse(body, nullptr, false); }
};

using TlsStream = beast::ssl_stream<beast::tcp_stream>;

beast::tcp_stream& Lowest(beast::tcp_stream& s) {
  return s;
}
beast::tcp_stream& Lowest(TlsStream& s) {
  return beast::get_lowest_layer(s);
}

// One keep-alive HTTP(S) connection, opened on first use and reopened when
// the server closed it.
template <class Stream>
class Connection {
 public:
  Connection(tcp::endpoint ep, ssl::context* tls) : ep_(ep), tls_(tls) {}

  bool open() const { return stream_ != nullptr; }

  asio::awaitable<std::string> Connect() {
    auto ex = co_await asio::this_coro::executor;
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      stream_ = std::make_unique<Stream>(ex, *tls_);
    } else {
      stream_ = std::make_unique<Stream>(ex);
    }
    buffer_.clear();
    Lowest(*stream_).expires_after(kIoTimeout);
    auto [ec] = co_await Lowest(*stream_).async_connect(ep_, kTuple);
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      if (!ec) std::tie(ec) = co_await stream_->async_handshake(ssl::stream_base::client, kTuple);
    }
    if (ec) {
      stream_.reset();
      co_return "connect: " + ec.message();
    }
    Lowest(*stream_).socket().set_option(tcp::no_delay(true));
    co_return std::string();
  }

  // Sends one request. A kept-alive connection the server closed while idle
  // (nothing sent back) is reopened once and counted in `*reconnects`.
  asio::awaitable<Reply> Call(http::verb verb, const std::string& target, const std::string& body,
                              const std::string& auth, int64_t* reconnects) {
    for (int attempt = 0;; ++attempt) {
      const bool reused = stream_ != nullptr;
      if (!reused) {
        std::string error = co_await Connect();
        if (!error.empty()) co_return Reply{0, "", error};
      }
      http::request<http::string_body> req{verb, target, 11};
      req.set(http::field::host, "127.0.0.1");
      if (!auth.empty()) req.set(http::field::authorization, "Bearer " + auth);
      if (!body.empty()) req.set(http::field::content_type, "application/json");
      req.keep_alive(true);
      req.body() = body;
      req.prepare_payload();
      Lowest(*stream_).expires_after(kIoTimeout);
      auto [ec, n] = co_await http::async_write(*stream_, req, kTuple);
      http::response_parser<http::string_body> parser;
      parser.body_limit(16u << 20);
      if (!ec) std::tie(ec, n) = co_await http::async_read(*stream_, buffer_, parser, kTuple);
      if (ec) {
        stream_.reset();
        const bool idle_close = ec == http::error::end_of_stream ||
                                ec == asio::error::connection_reset || ec == asio::error::eof ||
                                ec == ssl::error::stream_truncated;
        if (reused && attempt == 0 && idle_close && n == 0) {
          ++*reconnects;
          continue;
        }
        co_return Reply{0, "", "transport: " + ec.message()};
      }
      const auto& res = parser.get();
      Reply reply{res.result_int(), res.body(), ""};
      if (!res.keep_alive()) stream_.reset();
      co_return reply;
    }
  }

  void Close() {
    if (!stream_) return;
    beast::error_code ignored;
    Lowest(*stream_).socket().shutdown(tcp::socket::shutdown_both, ignored);
    Lowest(*stream_).socket().close(ignored);
    stream_.reset();
  }

 private:
  tcp::endpoint ep_;
  ssl::context* tls_;
  std::unique_ptr<Stream> stream_;
  beast::flat_buffer buffer_;
};

using ApiConnection = Connection<beast::tcp_stream>;
using TunnelConnection = Connection<TlsStream>;

// Calls the API and checks the status; false (an error is recorded) otherwise.
asio::awaitable<bool> Expect(Run& run, ApiConnection& conn, const std::string& kind,
                             http::verb verb, const std::string& target, const std::string& body,
                             const std::string& token, unsigned expected, Reply* out = nullptr) {
  const auto t0 = Clock::now();
  Reply reply = co_await conn.Call(verb, target, body, token, &run.reconnects);
  run.api_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  ++run.calls;
  ++run.calls_by_kind[kind];
  if (out != nullptr) *out = reply;
  if (reply.status != expected) {
    run.Error(kind + " " + target + ": " +
              (reply.status == 0 ? reply.error
                                 : std::to_string(reply.status) + " " + reply.body.substr(0, 200)));
    co_return false;
  }
  co_return true;
}

// The asks, built outside coroutines (GCC 12 miscompiles braced lists of
// string literals inside them).
json Ask(const std::vector<std::string>& datasets, const std::string& purpose) {
  return {{"datasets", datasets}, {"window_seconds", 3600}, {"purpose", purpose}};
}
json LifecycleAsk(const std::string& purpose) {
  return Ask({"customers", "orders"}, purpose);
}
json ClientAsk() {
  return Ask({"orders"}, "soak");
}

// Creates a request as alice; "" on failure.
asio::awaitable<std::string> Create(Run& run, ApiConnection& conn, const json& ask) {
  Reply reply;
  if (!co_await Expect(run, conn, "POST create", http::verb::post, "/v1/requests", ask.dump(),
                       run.opt.alice, 201, &reply)) {
    co_return std::string();
  }
  const std::string id = reply.Json().value("id", "");
  if (id.empty()) {
    run.Error("POST create: no id in " + reply.body.substr(0, 200));
    co_return std::string();
  }
  run.expected[id] = "pending_approval";
  run.known_ids.push_back(id);
  co_return id;
}

// Polls until the request is ready; false (with an error) if it fails or
// takes longer than a minute.
asio::awaitable<bool> AwaitReady(Run& run, ApiConnection& conn, const std::string& id) {
  const auto give_up = Clock::now() + std::chrono::seconds(60);
  while (Clock::now() < give_up) {
    Reply reply;
    if (!co_await Expect(run, conn, "GET poll", http::verb::get, "/v1/requests/" + id, "",
                         run.opt.alice, 200, &reply)) {
      co_return false;
    }
    const std::string state = reply.Json().value("state", "");
    if (state == "ready") co_return true;
    if (state != "approved" && state != "provisioning" && state != "ingesting") {
      run.Error("request " + id + " became " + state +
                " instead of ready: " + reply.body.substr(0, 300));
      co_return false;
    }
    co_await Pause(std::chrono::milliseconds(50));
  }
  run.Error("request " + id + " not ready within 60 s");
  co_return false;
}

// create → approve → ready; "" on failure.
asio::awaitable<std::string> ReadyRequest(Run& run, ApiConnection& conn, const std::string& why) {
  const std::string id = co_await Create(run, conn, LifecycleAsk(why));
  if (id.empty()) co_return std::string();
  if (!co_await Expect(run, conn, "POST approve", http::verb::post,
                       "/v1/requests/" + id + "/approve", "{}", run.opt.bob, 200)) {
    co_return std::string();
  }
  run.expected[id] = "ready";
  if (!co_await AwaitReady(run, conn, id)) co_return std::string();
  co_return id;
}

struct Grant {
  tcp::endpoint endpoint;
  std::string prefix;
  std::string credential;
};

asio::awaitable<bool> Collect(Run& run, ApiConnection& conn, const std::string& id, Grant* grant) {
  Reply reply;
  if (!co_await Expect(run, conn, "POST credentials", http::verb::post,
                       "/v1/requests/" + id + "/credentials", "", run.opt.alice, 200, &reply)) {
    co_return false;
  }
  const json body = reply.Json();
  static const std::regex kUrl(R"(https://([^:/]+):(\d+)(/.*)?)");
  std::smatch m;
  const std::string url = body.value("url", "");
  if (!std::regex_match(url, m, kUrl)) {
    run.Error("credentials: unexpected url " + url);
    co_return false;
  }
  grant->endpoint = tcp::endpoint(asio::ip::make_address(m[1].str()),
                                  static_cast<uint16_t>(std::stoi(m[2].str())));
  grant->prefix = m[3].str();
  grant->credential = body.value("credential", "");
  co_return true;
}

const std::vector<std::string>& Queries() {
  static const std::vector<std::string> queries = {
      R"({"sql":"SELECT count(*) FROM orders"})",
      R"({"sql":"SELECT c.name, SUM(o.amount) FROM customers c JOIN orders o ON o.customer_id = c.id GROUP BY c.id ORDER BY c.id"})",
      R"({"sql":"SELECT * FROM customers WHERE id = 2"})"};
  return queries;
}

asio::awaitable<bool> TunnelQuery(Run& run, TunnelConnection& conn, const Grant& grant,
                                  size_t index) {
  const auto t0 = Clock::now();
  Reply reply =
      co_await conn.Call(http::verb::post, grant.prefix + "/query",
                         Queries()[index % Queries().size()], grant.credential, &run.reconnects);
  run.query_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  ++run.tunnel_queries;
  if (reply.status != 200 || reply.body.find("\"rows\"") == std::string::npos) {
    run.Error("tunnel query: " +
              (reply.status == 0 ? reply.error
                                 : std::to_string(reply.status) + " " + reply.body.substr(0, 200)));
    co_return false;
  }
  co_return true;
}

// A keep-alive API client: mostly reads, some asks it later denies or
// revokes itself, paced by a random think time.
asio::awaitable<void> ApiClient(Run& run, tcp::endpoint api, int index) {
  ApiConnection conn(api, nullptr);
  const std::string error = co_await conn.Connect();
  if (!error.empty()) run.Error("client " + std::to_string(index) + " " + error);
  if (++run.clients_settled == run.opt.clients) run.Begin();
  co_await WaitStart(run);
  // Spread the first calls over one think time.
  co_await Pause(std::chrono::milliseconds(run.Uniform(0, run.opt.think_ms)));
  std::vector<std::string> mine;  // created by this client, still pending
  bool deny_next = (index % 2) == 0;
  while (run.Running()) {
    const int roll = run.Uniform(0, 99);
    if (roll < run.opt.post_percent) {
      if (mine.empty()) {
        const std::string id = co_await Create(run, conn, ClientAsk());
        if (!id.empty()) mine.push_back(id);
      } else {
        const std::string id = mine.back();
        mine.pop_back();
        const bool deny = deny_next;
        deny_next = !deny_next;
        // Plain locals: no temporaries inside the co_await expression.
        const std::string kind = deny ? "POST deny" : "POST revoke";
        const std::string target = "/v1/requests/" + id + (deny ? "/deny" : "/revoke");
        const std::string& token = deny ? run.opt.bob : run.opt.alice;
        if (co_await Expect(run, conn, kind, http::verb::post, target, "{}", token, 200)) {
          run.expected[id] = deny ? "denied" : "closed";
        }
      }
    } else if (roll < 50 && !run.known_ids.empty()) {
      const std::string& id = run.known_ids[static_cast<size_t>(
          run.Uniform(0, static_cast<int>(run.known_ids.size()) - 1))];
      co_await Expect(run, conn, "GET request", http::verb::get, "/v1/requests/" + id, "",
                      run.opt.carol, 200);
    } else if (roll < 75) {
      co_await Expect(run, conn, "GET list", http::verb::get, "/v1/requests?mine=true&limit=20", "",
                      run.opt.alice, 200);
    } else if (roll < 90) {
      co_await Expect(run, conn, "GET catalog", http::verb::get, "/v1/catalog", "", run.opt.alice,
                      200);
    } else {
      co_await Expect(run, conn, "GET healthz", http::verb::get, "/healthz", "", "", 200);
    }
    const int think = run.Uniform(run.opt.think_ms / 2, run.opt.think_ms * 3 / 2);
    co_await Pause(std::chrono::milliseconds(think));
  }
  // Leave nothing pending: whatever this client asked for it also ends.
  for (const std::string& id : mine) {
    if (co_await Expect(run, conn, "POST revoke", http::verb::post,
                        "/v1/requests/" + id + "/revoke", "{}", run.opt.alice, 200)) {
      run.expected[id] = "closed";
    }
  }
  conn.Close();
  --run.workers_running;
}

// ask → approve → ready → credential → queries → revoke, over and over.
asio::awaitable<void> Lifecycles(Run& run, tcp::endpoint api, ssl::context& tls) {
  ApiConnection conn(api, nullptr);
  co_await WaitStart(run);
  while (run.Running()) {
    const std::string id = co_await ReadyRequest(run, conn, "soak lifecycle");
    if (id.empty()) {
      co_await Pause(std::chrono::seconds(1));
      continue;
    }
    Grant grant;
    if (co_await Collect(run, conn, id, &grant)) {
      TunnelConnection tunnel(grant.endpoint, &tls);
      for (int q = 0; q < run.opt.queries_per_lifecycle; ++q) {
        if (!co_await TunnelQuery(run, tunnel, grant, static_cast<size_t>(q))) break;
        co_await Pause(std::chrono::milliseconds(50));
      }
      tunnel.Close();
    }
    if (co_await Expect(run, conn, "POST revoke", http::verb::post,
                        "/v1/requests/" + id + "/revoke", "{}", run.opt.alice, 200)) {
      run.expected[id] = "closed";
      ++run.lifecycles_done;
    }
  }
  conn.Close();
  --run.workers_running;
}

// One user of the long-lived request: queries until the deadline.
asio::awaitable<void> TunnelUser(Run& run, ssl::context& tls, const Grant& grant, int index,
                                 int& users_left, asio::steady_timer& all_done) {
  TunnelConnection tunnel(grant.endpoint, &tls);
  size_t next = static_cast<size_t>(index);
  while (run.Running()) {
    co_await TunnelQuery(run, tunnel, grant, next++);
    co_await Pause(std::chrono::milliseconds(run.Uniform(100, 300)));
  }
  tunnel.Close();
  if (--users_left == 0) all_done.cancel();
}

// Users querying one long-lived ready request, each on its own connection.
asio::awaitable<void> TunnelUsers(Run& run, tcp::endpoint api, ssl::context& tls) {
  ApiConnection conn(api, nullptr);
  const std::string id = co_await ReadyRequest(run, conn, "soak tunnel users");
  Grant grant;
  const bool ready = !id.empty() && co_await Collect(run, conn, id, &grant);
  co_await WaitStart(run);
  if (ready) {
    auto ex = co_await asio::this_coro::executor;
    // Both outlive the users: this frame waits for the last of them.
    int users_left = run.opt.tunnel_users;
    asio::steady_timer all_done(ex, Clock::time_point::max());
    for (int u = 0; u < run.opt.tunnel_users; ++u) {
      asio::co_spawn(ex, TunnelUser(run, tls, grant, u, users_left, all_done), asio::detached);
    }
    co_await all_done.async_wait(kTuple);
  }
  if (!id.empty() && co_await Expect(run, conn, "POST revoke", http::verb::post,
                                     "/v1/requests/" + id + "/revoke", "{}", run.opt.alice, 200)) {
    run.expected[id] = "closed";
  }
  conn.Close();
  --run.workers_running;
}

// Periodic samples while the load runs (Main takes the ones at the edges),
// with the kernel's own memory gauges from /metrics.
asio::awaitable<void> Sampler(Run& run, tcp::endpoint api) {
  co_await WaitStart(run);
  ApiConnection conn(api, nullptr);
  while (run.Running()) {
    co_await Pause(std::chrono::seconds(run.opt.sample_every_s));
    if (!run.Running()) break;
    Sample s = SampleKernel(run.opt.kernel_pid, run.Elapsed(), "under load");
    int64_t ignored = 0;
    const Reply metrics = co_await conn.Call(http::verb::get, "/metrics", "", "", &ignored);
    if (metrics.status == 200) {
      const auto kb = [&](const char* name) {
        const int64_t bytes = GaugeValue(metrics.body, name);
        return bytes < 0 ? -1 : bytes / 1024;
      };
      s.heap_kb = kb("airlock_heap_allocated_bytes");
      s.sqlite_kb = kb("airlock_sqlite_memory_bytes");
      s.page_cache_kb = kb("airlock_sqlite_page_cache_bytes");
      s.audit_index = GaugeValue(metrics.body, "airlock_audit_index_requests");
      s.view_cache = GaugeValue(metrics.body, "airlock_request_view_cache_entries");
    }
    run.samples.push_back(s);
  }
  conn.Close();
}

// Every request this run created, as GET /v1/requests shows it now.
asio::awaitable<void> Account(Run& run, tcp::endpoint api, json* out) {
  ApiConnection conn(api, nullptr);
  std::map<std::string, std::string> listed;
  std::string token;
  for (int page = 0; page < 10000; ++page) {
    Reply reply;
    std::string target = "/v1/requests?limit=500";
    if (!token.empty()) target += "&page_token=" + token;
    if (!co_await Expect(run, conn, "GET list (accounting)", http::verb::get, target, "",
                         run.opt.carol, 200, &reply)) {
      break;
    }
    const json body = reply.Json();
    for (const json& r : body.value("requests", json::array())) {
      listed[r.value("id", "")] = r.value("state", "");
    }
    token = body.value("next_page_token", "");
    if (token.empty()) break;
  }
  conn.Close();
  int64_t accounted = 0, missing = 0, wrong = 0;
  json mismatches = json::array();
  for (const auto& [id, state] : run.expected) {
    auto it = listed.find(id);
    if (it == listed.end()) {
      ++missing;
      if (mismatches.size() < 10) mismatches.push_back({{"id", id}, {"expected", state}});
    } else if (it->second != state) {
      ++wrong;
      if (mismatches.size() < 10) {
        mismatches.push_back({{"id", id}, {"expected", state}, {"listed", it->second}});
      }
    } else {
      ++accounted;
    }
  }
  int64_t unknown = 0;
  std::map<std::string, int64_t> by_state;
  for (const auto& [id, state] : listed) {
    ++by_state[state];
    if (!run.expected.count(id)) ++unknown;
  }
  if (missing + wrong + unknown > 0) {
    run.Error("accounting: " + std::to_string(missing) + " missing, " + std::to_string(wrong) +
              " in the wrong state, " + std::to_string(unknown) + " not created by this run");
  }
  *out = {{"created", run.expected.size()}, {"listed", listed.size()},
          {"accounted", accounted},         {"missing", missing},
          {"wrong_state", wrong},           {"unknown", unknown},
          {"by_state", by_state},           {"mismatches", mismatches}};
}

json SampleJson(const Sample& s) {
  json out = {{"t_s", s.t_s},
              {"phase", s.phase},
              {"rss_kb", s.rss_kb},
              {"fds", s.fds},
              {"threads", s.threads}};
  if (s.heap_kb >= 0) out["heap_kb"] = s.heap_kb;
  if (s.sqlite_kb >= 0) out["sqlite_kb"] = s.sqlite_kb;
  if (s.page_cache_kb >= 0) out["sqlite_page_cache_kb"] = s.page_cache_kb;
  if (s.audit_index >= 0) out["audit_index_requests"] = s.audit_index;
  if (s.view_cache >= 0) out["view_cache_entries"] = s.view_cache;
  return out;
}

json SummaryJson(const std::vector<double>& ms) {
  const Summary s = Summarize(ms);
  return {{"n", s.n}, {"mean_ms", s.mean}, {"p50_ms", s.p50}, {"p99_ms", s.p99}, {"max_ms", s.max}};
}

bool ParseArgs(int argc, char** argv, Options* o) {
  std::map<std::string, std::string> flags;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::string(argv[i]).rfind("--", 0) != 0) return false;
    flags[argv[i] + 2] = argv[i + 1];
  }
  if ((argc - 1) % 2 != 0) return false;
  auto num = [&](const char* key, auto* field) {
    if (flags.count(key))
      *field = static_cast<std::remove_reference_t<decltype(*field)>>(std::stod(flags[key]));
  };
  num("api-port", &o->api_port);
  num("clients", &o->clients);
  num("duration", &o->duration_s);
  num("lifecycles", &o->lifecycles);
  num("tunnel-users", &o->tunnel_users);
  num("think-ms", &o->think_ms);
  num("post-percent", &o->post_percent);
  num("queries-per-lifecycle", &o->queries_per_lifecycle);
  num("sample-every", &o->sample_every_s);
  num("kernel-pid", &o->kernel_pid);
  o->out = flags["out"];
  // Tokens come from the environment, never argv (argv is world-readable).
  auto env = [](const char* name) {
    const char* v = std::getenv(name);
    return std::string(v ? v : "");
  };
  o->alice = env("SOAK_ALICE_TOKEN");
  o->bob = env("SOAK_BOB_TOKEN");
  o->carol = env("SOAK_CAROL_TOKEN");
  return o->api_port != 0 && o->kernel_pid > 0 && !o->alice.empty() && !o->bob.empty() &&
         !o->carol.empty() && o->clients > 0 && o->duration_s > 0 && o->think_ms > 1 &&
         o->sample_every_s > 0 && o->post_percent >= 0 && o->post_percent <= 50;
}

int Main(int argc, char** argv) {
  Run run;
  if (!ParseArgs(argc, argv, &run.opt)) {
    std::cerr << "usage: soak_driver --api-port P --kernel-pid PID [--duration S] [--clients N]\n"
                 "  [--lifecycles N] [--tunnel-users N] [--think-ms MS] [--post-percent P]\n"
                 "  [--queries-per-lifecycle N] [--sample-every S] [--out FILE]\n"
                 "  tokens in SOAK_ALICE_TOKEN, SOAK_BOB_TOKEN, SOAK_CAROL_TOKEN\n";
    return 2;
  }
  const Options& opt = run.opt;
  asio::io_context io(1);
  // Keeps the loop alive between phases (the accounting starts after every
  // worker has finished).
  auto keep_running = asio::make_work_guard(io);
  run.gate = std::make_unique<asio::steady_timer>(io, Clock::time_point::max());
  ssl::context tls(ssl::context::tls_client);
  tls.set_verify_mode(ssl::verify_none);  // loopback, the kernel's own test certificate
  const tcp::endpoint api(asio::ip::make_address("127.0.0.1"), opt.api_port);

  run.samples.push_back(SampleKernel(opt.kernel_pid, run.Elapsed(), "before load"));
  run.workers_running = opt.clients + opt.lifecycles + (opt.tunnel_users > 0 ? 1 : 0);
  for (int i = 0; i < opt.clients; ++i) asio::co_spawn(io, ApiClient(run, api, i), asio::detached);
  for (int i = 0; i < opt.lifecycles; ++i) {
    asio::co_spawn(io, Lifecycles(run, api, tls), asio::detached);
  }
  if (opt.tunnel_users > 0) asio::co_spawn(io, TunnelUsers(run, api, tls), asio::detached);
  asio::co_spawn(io, Sampler(run, api), asio::detached);
  // Clients that cannot connect within a minute do not hold the others back.
  asio::steady_timer give_up(io, std::chrono::seconds(60));
  give_up.async_wait([&](const boost::system::error_code& ec) {
    if (!ec) run.Begin();
  });

  const auto print_every = std::chrono::seconds(60);
  auto next_print = Clock::now() + print_every;
  bool warm = false;
  while (run.start == Clock::time_point{} || Clock::now() < run.deadline) {
    io.run_for(std::chrono::milliseconds(200));
    if (!warm && run.start != Clock::time_point{}) {
      warm = true;
      run.samples.push_back(SampleKernel(opt.kernel_pid, run.Elapsed(), "clients connected"));
    }
    if (Clock::now() >= next_print) {
      next_print += print_every;
      std::cerr << "soak: " << static_cast<int>(run.Elapsed()) << " s, " << run.calls
                << " API calls, " << run.tunnel_queries << " tunnel queries, "
                << run.lifecycles_done << " lifecycles, " << run.errors << " errors\n";
    }
  }
  give_up.cancel();
  run.samples.push_back(SampleKernel(opt.kernel_pid, run.Elapsed(), "end of load"));
  // Let in-flight work finish and every client resolve its requests.
  const auto hard_stop = Clock::now() + std::chrono::seconds(60);
  while (run.workers_running > 0 && Clock::now() < hard_stop) {
    io.run_for(std::chrono::milliseconds(100));
  }
  if (run.workers_running > 0) {
    run.Error(std::to_string(run.workers_running) + " workers still busy 60 s after the end");
  }
  // Idle again: what the kernel keeps once the clients are gone.
  std::this_thread::sleep_for(std::chrono::seconds(2));
  run.samples.push_back(SampleKernel(opt.kernel_pid, run.Elapsed(), "after load"));
  json accounting;
  asio::co_spawn(io, Account(run, api, &accounting), asio::detached);
  const auto account_stop = Clock::now() + std::chrono::seconds(60);
  while (accounting.is_null() && Clock::now() < account_stop) {
    io.run_for(std::chrono::milliseconds(100));
  }
  if (accounting.is_null()) run.Error("accounting did not finish within 60 s");
  io.stop();

  json samples = json::array();
  for (const Sample& s : run.samples) samples.push_back(SampleJson(s));
  const double seconds = run.start == Clock::time_point{}
                             ? 0
                             : std::chrono::duration<double>(Clock::now() - run.start).count();
  json report = {{"options",
                  {{"clients", opt.clients},
                   {"duration_s", opt.duration_s},
                   {"lifecycles", opt.lifecycles},
                   {"tunnel_users", opt.tunnel_users},
                   {"think_ms", opt.think_ms},
                   {"post_percent", opt.post_percent},
                   {"queries_per_lifecycle", opt.queries_per_lifecycle}}},
                 {"seconds", seconds},
                 {"errors", run.errors},
                 {"error_samples", run.error_samples},
                 {"api_calls", run.calls},
                 {"api_calls_by_kind", run.calls_by_kind},
                 {"api_latency", SummaryJson(run.api_ms)},
                 {"reconnects", run.reconnects},
                 {"tunnel_queries", run.tunnel_queries},
                 {"tunnel_latency", SummaryJson(run.query_ms)},
                 {"lifecycles_completed", run.lifecycles_done},
                 {"requests", accounting},
                 {"kernel", samples}};
  if (!opt.out.empty()) std::ofstream(opt.out) << report.dump(2) << "\n";
  std::cout << report.dump(2) << "\n";
  return run.errors == 0 ? 0 : 1;
}

}  // namespace
}  // namespace airlock::bench::soak

int main(int argc, char** argv) {
  return airlock::bench::soak::Main(argc, argv);
}
