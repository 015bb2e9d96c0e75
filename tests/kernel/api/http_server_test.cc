// HttpServer over real loopback sockets, plain and TLS.
#include "kernel/api/http_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/ssl.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/http_client.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_pki.h"

namespace airlock {
namespace {

using ::airlock::test::ClientTls;
using ::airlock::test::HttpClient;
using ::airlock::test::SendRaw;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using namespace std::chrono_literals;

std::unique_ptr<HttpServer> MustStart(HttpServerOptions options, HttpHandler handler) {
  auto server = HttpServer::Start(std::move(options), std::move(handler));
  EXPECT_TRUE(server.ok()) << server.status().ToString();
  if (!server.ok()) return nullptr;
  return std::move(server).value();
}

// Answers with what it saw, so tests can check parsing end to end.
HttpResponse Echo(const HttpRequest& request) {
  nlohmann::json query = nlohmann::json::array();
  for (const auto& [key, value] : request.query) query.push_back({key, value});
  HttpResponse response =
      HttpResponse::Json(200, {{"method", request.method},
                               {"target", request.target},
                               {"path", request.path},
                               {"query", query},
                               {"x_test", request.header("x-TEST")},
                               {"state", request.query_param("state").value_or("<none>")},
                               {"body", request.body},
                               {"remote", request.remote_address},
                               {"tls", request.tls},
                               {"peer_pem", request.peer_certificate_pem}});
  response.headers.emplace_back("X-Reply", "yes");
  return response;
}

// Records how many times the handler ran.
struct CountingEcho {
  std::shared_ptr<std::atomic<int>> calls = std::make_shared<std::atomic<int>>(0);
  HttpHandler handler() const {
    return [calls = calls](const HttpRequest& request) {
      calls->fetch_add(1);
      return Echo(request);
    };
  }
};

TEST(HttpServerTest, RoundTripCarriesMethodPathQueryHeadersAndBody) {
  auto server = MustStart({}, Echo);
  ASSERT_TRUE(server);
  HttpClient client("127.0.0.1", server->port());
  auto response = client.Request("PUT", "/v1/items%20x?state=ready&name=a%2Bb+c&flag", R"({"k":1})",
                                 {{"X-Test", "hello"}});
  ASSERT_EQ(response.status, 200u) << response.error;
  const auto json = response.json();
  EXPECT_EQ(json["method"], "PUT");
  EXPECT_EQ(json["target"], "/v1/items%20x?state=ready&name=a%2Bb+c&flag");
  EXPECT_EQ(json["path"], "/v1/items x");
  EXPECT_EQ(json["query"],
            nlohmann::json::parse(R"([["state","ready"],["name","a+b c"],["flag",""]])"));
  EXPECT_EQ(json["state"], "ready");
  EXPECT_EQ(json["x_test"], "hello");
  EXPECT_EQ(json["body"], R"({"k":1})");
  EXPECT_THAT(json["remote"].get<std::string>(), StartsWith("127.0.0.1:"));
  EXPECT_EQ(json["tls"], false);

  EXPECT_EQ(response.header("content-type"), "application/json");
  EXPECT_EQ(response.header("content-length"), std::to_string(response.body.size()));
  EXPECT_EQ(response.header("cache-control"), "no-store");
  EXPECT_EQ(response.header("x-content-type-options"), "nosniff");
  EXPECT_EQ(response.header("x-reply"), "yes");
}

TEST(HttpServerTest, LargeBodyWithinLimitArrivesWhole) {
  HttpServerOptions options;
  options.body_limit = 1 << 20;
  auto server = MustStart(options, [](const HttpRequest& request) {
    HttpResponse response;
    response.content_type = "application/octet-stream";
    response.body = request.body;
    return response;
  });
  ASSERT_TRUE(server);
  std::string body(900 * 1024, '\0');
  for (size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>('a' + i % 26);
  HttpClient client("127.0.0.1", server->port());
  auto response = client.Post("/upload", body, {{"Content-Type", "application/octet-stream"}});
  ASSERT_EQ(response.status, 200u) << response.error;
  EXPECT_EQ(response.body, body);
  EXPECT_EQ(response.header("content-type"), "application/octet-stream");
}

TEST(HttpServerTest, KeepAliveServesTwoRequestsOnOneConnection) {
  auto server = MustStart({}, Echo);
  ASSERT_TRUE(server);
  HttpClient client("127.0.0.1", server->port());
  auto first = client.Get("/one");
  auto second = client.Get("/two");
  ASSERT_EQ(first.status, 200u) << first.error;
  ASSERT_EQ(second.status, 200u) << second.error;
  EXPECT_EQ(first.json()["path"], "/one");
  EXPECT_EQ(second.json()["path"], "/two");
  // Same client port on the server side: the same TCP connection.
  EXPECT_EQ(first.json()["remote"], second.json()["remote"]);
  EXPECT_EQ(client.connections_opened(), 1);
}

TEST(HttpServerTest, PipelinedRequestsAreAnsweredInOrder) {
  auto server = MustStart({}, Echo);
  ASSERT_TRUE(server);
  const std::string reply = SendRaw("127.0.0.1", server->port(),
                                    "GET /first HTTP/1.1\r\nHost: x\r\n\r\n"
                                    "GET /second HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  const auto first = reply.find("\"path\":\"/first\"");
  const auto second = reply.find("\"path\":\"/second\"");
  ASSERT_NE(first, std::string::npos) << reply;
  ASSERT_NE(second, std::string::npos) << reply;
  EXPECT_LT(first, second);
}

TEST(HttpServerTest, OversizedBodyGets413WithoutCallingHandler) {
  HttpServerOptions options;
  options.body_limit = 1024;
  CountingEcho echo;
  auto server = MustStart(options, echo.handler());
  ASSERT_TRUE(server);
  HttpClient client("127.0.0.1", server->port());
  auto response = client.Post("/v1/requests", std::string(64 * 1024, 'x'));
  ASSERT_EQ(response.status, 413u) << response.error;
  EXPECT_EQ(response.json()["error"], "payload_too_large");
  EXPECT_EQ(response.header("cache-control"), "no-store");

  // A chunked body is measured as it arrives.
  std::string chunked =
      "POST /v1/requests HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 4; ++i) chunked += "200\r\n" + std::string(0x200, 'y') + "\r\n";
  chunked += "0\r\n\r\n";
  EXPECT_THAT(SendRaw("127.0.0.1", server->port(), chunked), StartsWith("HTTP/1.1 413"));

  // Just under the limit is fine.
  auto fits = client.Post("/v1/requests", std::string(1024, 'x'));
  EXPECT_EQ(fits.status, 200u) << fits.error;
  EXPECT_EQ(echo.calls->load(), 1);
}

TEST(HttpServerTest, TooManyHeadersGets431) {
  HttpServerOptions options;
  options.max_header_count = 8;
  CountingEcho echo;
  auto server = MustStart(options, echo.handler());
  ASSERT_TRUE(server);
  test::Headers headers;
  for (int i = 0; i < 20; ++i) headers.emplace_back("X-H" + std::to_string(i), "v");
  HttpClient client("127.0.0.1", server->port());
  auto response = client.Get("/", headers);
  ASSERT_EQ(response.status, 431u) << response.error;
  EXPECT_EQ(response.json()["error"], "too_many_headers");
  EXPECT_EQ(echo.calls->load(), 0);

  headers.resize(6);  // plus Host = 7 fields
  auto fits = client.Get("/", headers);
  EXPECT_EQ(fits.status, 200u) << fits.error;
}

TEST(HttpServerTest, OversizedHeaderBlockGets431) {
  HttpServerOptions options;
  options.header_limit = 1024;
  CountingEcho echo;
  auto server = MustStart(options, echo.handler());
  ASSERT_TRUE(server);
  HttpClient client("127.0.0.1", server->port());
  auto response = client.Get("/", {{"X-Big", std::string(2048, 'a')}});
  ASSERT_EQ(response.status, 431u) << response.error;
  EXPECT_EQ(response.json()["error"], "headers_too_large");
  EXPECT_EQ(echo.calls->load(), 0);
}

TEST(HttpServerTest, GarbageGets400AndClose) {
  CountingEcho echo;
  auto server = MustStart({}, echo.handler());
  ASSERT_TRUE(server);
  const auto start = std::chrono::steady_clock::now();
  const std::string reply =
      SendRaw("127.0.0.1", server->port(), std::string("\x16\x03\x01 not http at all\r\n\r\n"));
  EXPECT_THAT(reply, StartsWith("HTTP/1.1 400"));
  EXPECT_THAT(reply, HasSubstr("\"error\":\"bad_request\""));
  EXPECT_THAT(reply, HasSubstr("Connection: close"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 4s) << "the server did not close";

  EXPECT_THAT(SendRaw("127.0.0.1", server->port(), "GET / HTTP/2.7\r\nHost: x\r\n\r\n"),
              StartsWith("HTTP/1.1 400"));
  EXPECT_THAT(SendRaw("127.0.0.1", server->port(), "GET / HTTP/1.1\r\nBad Header\r\n\r\n"),
              StartsWith("HTTP/1.1 400"));
  EXPECT_EQ(echo.calls->load(), 0);
}

TEST(HttpServerTest, MalformedTargetGets400WithoutCallingHandler) {
  CountingEcho echo;
  auto server = MustStart({}, echo.handler());
  ASSERT_TRUE(server);
  HttpClient client("127.0.0.1", server->port());
  for (const char* target : {"/bad%zzescape", "http://example.com/x", "*", "/nul%00byte"}) {
    auto response = client.Get(target);
    EXPECT_EQ(response.status, 400u) << target << " " << response.error;
    EXPECT_EQ(response.json()["error"], "bad_request") << target;
  }
  EXPECT_EQ(echo.calls->load(), 0);
  // The connection survives a rejected target.
  EXPECT_EQ(client.Get("/ok").status, 200u);
  EXPECT_EQ(client.connections_opened(), 1);
}

TEST(HttpServerTest, HandlerExceptionGives500WithoutItsText) {
  auto server = MustStart({}, [](const HttpRequest&) -> HttpResponse {
    throw std::runtime_error("token=s3cr3t-value");
  });
  ASSERT_TRUE(server);
  HttpClient client("127.0.0.1", server->port());
  auto response = client.Get("/boom");
  ASSERT_EQ(response.status, 500u) << response.error;
  EXPECT_EQ(response.json()["error"], "internal");
  EXPECT_EQ(response.json()["message"], "internal error");
  EXPECT_THAT(response.body, Not(HasSubstr("s3cr3t")));
  // The connection stays usable.
  EXPECT_EQ(client.Get("/again").status, 500u);
  EXPECT_EQ(client.connections_opened(), 1);
}

TEST(HttpServerTest, HandlerHeadersCannotInjectOrReframe) {
  auto server = MustStart({}, [](const HttpRequest&) {
    HttpResponse response = HttpResponse::Json(200, {{"ok", true}});
    response.headers = {{"X-Evil", "a\r\nInjected: yes"},    {"Bad Name", "v"},
                        {"Content-Length", "999"},           {"Cache-Control", "public"},
                        {"X-Huge", std::string(70000, 'h')}, {"X-Fine", "kept"}};
    return response;
  });
  ASSERT_TRUE(server);
  HttpClient client("127.0.0.1", server->port());
  auto response = client.Get("/");
  ASSERT_EQ(response.status, 200u) << response.error;
  EXPECT_EQ(response.header("injected"), "");
  EXPECT_EQ(response.header("x-evil"), "");
  EXPECT_EQ(response.header("x-huge"), "");
  EXPECT_EQ(response.header("content-length"), std::to_string(response.body.size()));
  EXPECT_EQ(response.header("cache-control"), "no-store");
  EXPECT_EQ(response.header("x-fine"), "kept");
  EXPECT_EQ(response.json()["ok"], true);
}

TEST(HttpServerTest, NoContentAndHeadHaveNoBody) {
  auto server = MustStart({}, [](const HttpRequest& request) {
    if (request.path == "/empty") return HttpResponse{204, "application/json", "", {}};
    return HttpResponse::Json(200, {{"hello", "world"}});
  });
  ASSERT_TRUE(server);
  HttpClient client("127.0.0.1", server->port());
  auto empty = client.Get("/empty");
  EXPECT_EQ(empty.status, 204u) << empty.error;
  EXPECT_EQ(empty.body, "");
  EXPECT_EQ(empty.header("content-length"), "");
  const std::string head = SendRaw("127.0.0.1", server->port(),
                                   "HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_THAT(head, StartsWith("HTTP/1.1 200"));
  EXPECT_THAT(head, HasSubstr("Content-Length: 17\r\n"));
  EXPECT_THAT(head, Not(HasSubstr("hello")));
}

TEST(HttpServerTest, ExpectContinueGetsInterimResponse) {
  HttpServerOptions options;
  options.read_timeout = 300ms;
  auto server = MustStart(options, Echo);
  ASSERT_TRUE(server);
  // Headers only: the server must invite the body before it arrives.
  const std::string reply = SendRaw(
      "127.0.0.1", server->port(),
      "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n", 3s);
  EXPECT_THAT(reply, StartsWith("HTTP/1.1 100 Continue\r\n\r\n"));
}

TEST(HttpServerTest, ConcurrentClientsAreAllAnswered) {
  auto server = MustStart({}, Echo);
  ASSERT_TRUE(server);
  constexpr int kThreads = 16;
  constexpr int kRequests = 50;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      HttpClient client("127.0.0.1", server->port());
      for (int i = 0; i < kRequests; ++i) {
        const std::string target = "/c?t=" + std::to_string(t) + "&i=" + std::to_string(i);
        auto response = client.Get(target);
        if (response.status == 200 && response.json()["target"] == target) ok.fetch_add(1);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(ok.load(), kThreads * kRequests);
}

TEST(HttpServerTest, SlowHandlerDoesNotBlockOtherConnections) {
  HttpServerOptions options;
  options.io_threads = 1;  // if a handler ran on it, everything would stall
  options.handler_threads = 2;
  std::mutex mutex;
  std::condition_variable changed;
  bool slow_entered = false;
  bool release_slow = false;
  auto server = MustStart(options, [&](const HttpRequest& request) {
    if (request.path == "/slow") {
      if (request.on_io_thread) return HttpResponse::RunOnHandlerPool();
      std::unique_lock lock(mutex);
      slow_entered = true;
      changed.notify_all();
      changed.wait(lock, [&] { return release_slow; });
    }
    return HttpResponse::Json(200, {{"path", request.path}});
  });
  ASSERT_TRUE(server);

  auto slow = std::async(std::launch::async, [&] {
    HttpClient client("127.0.0.1", server->port());
    return client.Get("/slow");
  });
  {
    std::unique_lock lock(mutex);
    ASSERT_TRUE(changed.wait_for(lock, 10s, [&] { return slow_entered; }));
  }
  HttpClient fast_client("127.0.0.1", server->port());
  fast_client.set_timeout(5s);
  auto fast = fast_client.Get("/fast");
  bool slow_still_blocked;
  {
    std::lock_guard lock(mutex);
    slow_still_blocked = !release_slow;
    release_slow = true;
  }
  changed.notify_all();
  EXPECT_EQ(fast.status, 200u) << fast.error;
  EXPECT_TRUE(slow_still_blocked);
  auto slow_response = slow.get();
  EXPECT_EQ(slow_response.status, 200u) << slow_response.error;
  EXPECT_EQ(slow_response.json()["path"], "/slow");
}

// What one handler call saw.
struct Call {
  std::string path;
  bool on_io_thread = false;
  std::thread::id thread;
};

// Answers /quick wherever it is called and defers /blocking from the I/O
// thread to the handler pool; records every call.
struct RecordingHandler {
  std::shared_ptr<std::mutex> mutex = std::make_shared<std::mutex>();
  std::shared_ptr<std::vector<Call>> calls = std::make_shared<std::vector<Call>>();
  HttpHandler handler() const {
    return [mutex = mutex, calls = calls](const HttpRequest& request) {
      {
        std::lock_guard lock(*mutex);
        calls->push_back({request.path, request.on_io_thread, std::this_thread::get_id()});
      }
      if (request.path == "/blocking" && request.on_io_thread) {
        return HttpResponse::RunOnHandlerPool();
      }
      return HttpResponse::Json(200, {{"path", request.path}, {"io", request.on_io_thread}});
    };
  }
  std::vector<Call> Snapshot() const {
    std::lock_guard lock(*mutex);
    return *calls;
  }
};

TEST(HttpServerTest, QuickAnswersComeFromTheIoThreadWithoutTheHandlerPool) {
  RecordingHandler recorder;
  auto server = MustStart({}, recorder.handler());
  ASSERT_TRUE(server);
  HttpClient client("127.0.0.1", server->port());
  for (int i = 0; i < 3; ++i) {
    auto response = client.Get("/quick");
    ASSERT_EQ(response.status, 200u) << response.error;
    EXPECT_EQ(response.json()["io"], true);
  }
  const auto calls = recorder.Snapshot();
  ASSERT_EQ(calls.size(), 3u);  // one call per request: never again on the pool
  for (const auto& call : calls) EXPECT_TRUE(call.on_io_thread);
}

TEST(HttpServerTest, DeferredRequestIsCalledAgainOnTheHandlerPool) {
  HttpServerOptions options;
  options.io_threads = 1;
  RecordingHandler recorder;
  auto server = MustStart(options, recorder.handler());
  ASSERT_TRUE(server);
  HttpClient client("127.0.0.1", server->port());
  auto quick = client.Get("/quick");
  auto blocking = client.Post("/blocking", "{}");
  ASSERT_EQ(quick.status, 200u) << quick.error;
  ASSERT_EQ(blocking.status, 200u) << blocking.error;
  EXPECT_EQ(blocking.json()["io"], false);  // the pool's answer is the one sent
  const auto calls = recorder.Snapshot();
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_EQ(calls[0].path, "/quick");
  EXPECT_EQ(calls[1].path, "/blocking");
  EXPECT_TRUE(calls[1].on_io_thread);
  EXPECT_EQ(calls[2].path, "/blocking");
  EXPECT_FALSE(calls[2].on_io_thread);
  // The single I/O thread answered /quick and offered /blocking; the second
  // call of /blocking ran elsewhere.
  EXPECT_EQ(calls[0].thread, calls[1].thread);
  EXPECT_NE(calls[2].thread, calls[1].thread);
}

TEST(HttpServerTest, DeferringFromTheHandlerPoolIsA500) {
  auto server = MustStart({}, [](const HttpRequest&) { return HttpResponse::RunOnHandlerPool(); });
  ASSERT_TRUE(server);
  HttpClient client("127.0.0.1", server->port());
  auto response = client.Get("/");
  EXPECT_EQ(response.status, 500u) << response.error;
  EXPECT_EQ(response.json()["error"], "internal");
}

TEST(HttpServerTest, IoThreadOfferCanBeTurnedOff) {
  HttpServerOptions options;
  options.call_handlers_on_io_threads = false;
  RecordingHandler recorder;
  auto server = MustStart(options, recorder.handler());
  ASSERT_TRUE(server);
  HttpClient client("127.0.0.1", server->port());
  auto response = client.Get("/quick");
  ASSERT_EQ(response.status, 200u) << response.error;
  EXPECT_EQ(response.json()["io"], false);
  const auto calls = recorder.Snapshot();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_FALSE(calls[0].on_io_thread);
}

// Echo that vouches for every request, as the identity chain does for a
// valid credential: the connection leaves the pre-authentication pool.
HttpResponse AuthenticatedEcho(const HttpRequest& request) {
  request.MarkAuthenticated();
  return Echo(request);
}

TEST(HttpServerTest, PreauthTimeoutClosesAStalledFirstRequest) {
  HttpServerOptions options;
  options.preauth_timeout = 200ms;
  auto server = MustStart(options, Echo);
  ASSERT_TRUE(server);
  const auto start = std::chrono::steady_clock::now();
  const std::string reply =
      SendRaw("127.0.0.1", server->port(), "GET / HTTP/1.1\r\nHost: x\r\n", 5s);
  EXPECT_EQ(reply, "");
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s) << "the stalled request was not cut";
}

TEST(HttpServerTest, ReadTimeoutClosesAStalledRequestOnAnAuthenticatedConnection) {
  HttpServerOptions options;
  options.read_timeout = 200ms;
  auto server = MustStart(options, AuthenticatedEcho);
  ASSERT_TRUE(server);
  const auto start = std::chrono::steady_clock::now();
  const std::string reply = SendRaw("127.0.0.1", server->port(),
                                    "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\n", 5s);
  EXPECT_THAT(reply, StartsWith("HTTP/1.1 200"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s) << "the stalled request was not cut";
}

TEST(HttpServerTest, IdleTimeoutClosesKeptAliveConnection) {
  HttpServerOptions options;
  options.idle_timeout = 200ms;
  auto server = MustStart(options, AuthenticatedEcho);
  ASSERT_TRUE(server);
  const auto start = std::chrono::steady_clock::now();
  const std::string reply =
      SendRaw("127.0.0.1", server->port(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 5s);
  EXPECT_THAT(reply, StartsWith("HTTP/1.1 200"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s) << "the idle connection was kept";
}

// Before authentication the keep-alive wait is preauth_timeout, not the
// (long) idle_timeout; after it, the reverse.
TEST(HttpServerTest, KeepAliveWaitIsShortOnlyUntilAuthenticated) {
  HttpServerOptions options;
  options.idle_timeout = 60s;
  options.preauth_timeout = 300ms;
  auto server = MustStart(options, [](const HttpRequest& request) {
    if (request.header("Authorization") == "Bearer good") request.MarkAuthenticated();
    return Echo(request);
  });
  ASSERT_TRUE(server);
  const auto start = std::chrono::steady_clock::now();
  const std::string reply =
      SendRaw("127.0.0.1", server->port(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 5s);
  EXPECT_THAT(reply, StartsWith("HTTP/1.1 200"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s) << "the unauthenticated one was kept";

  HttpClient client("127.0.0.1", server->port());
  ASSERT_EQ(client.Get("/", {{"Authorization", "Bearer good"}}).status, 200u);
  std::this_thread::sleep_for(600ms);  // twice preauth_timeout
  ASSERT_EQ(client.Get("/").status, 200u);
  EXPECT_EQ(client.connections_opened(), 1) << "the authenticated connection was not kept";
}

TEST(HttpServerTest, ConnectionsBeyondTheLimitAreRefusedWhenNoneCanBeShed) {
  HttpServerOptions options;
  options.max_connections = 2;
  options.max_preauth_connections = 1;
  options.max_preauth_connections_per_address = 1;
  std::atomic<int> refused{0};
  options.on_connection_limited = [&refused](ConnectionLimitEvent event) {
    if (event == ConnectionLimitEvent::kRefused) refused.fetch_add(1);
  };
  auto server = MustStart(options, AuthenticatedEcho);
  ASSERT_TRUE(server);
  HttpClient a("127.0.0.1", server->port());
  HttpClient b("127.0.0.1", server->port());
  ASSERT_EQ(a.Get("/").status, 200u);
  ASSERT_EQ(b.Get("/").status, 200u);
  // Both places are held by authenticated connections: nothing to shed.
  HttpClient c("127.0.0.1", server->port());
  c.set_timeout(5s);
  EXPECT_EQ(c.Get("/").status, 0u);
  EXPECT_GE(refused.load(), 1);
  EXPECT_EQ(server->connection_stats().open, 2u);
  // Once a connection leaves, there is room again (the server notices the
  // close asynchronously, hence the bounded retry).
  a.Disconnect();
  unsigned status = 0;
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (status != 200 && std::chrono::steady_clock::now() < deadline) {
    status = c.Get("/").status;
    if (status != 200) std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(status, 200u);
}

TEST(HttpServerTest, StopWithIdleConnectionsReturnsPromptly) {
  HttpServerOptions options;
  options.idle_timeout = 60s;
  auto server = MustStart(options, Echo);
  ASSERT_TRUE(server);
  std::vector<std::unique_ptr<HttpClient>> clients;
  for (int i = 0; i < 8; ++i) {
    clients.push_back(std::make_unique<HttpClient>("127.0.0.1", server->port()));
    ASSERT_EQ(clients.back()->Get("/").status, 200u);
  }
  const auto start = std::chrono::steady_clock::now();
  server->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  server->Stop();  // idempotent
  // The kept-alive connections are gone and nothing listens any more.
  clients.front()->set_timeout(2s);
  EXPECT_EQ(clients.front()->Get("/").status, 0u);
}

TEST(HttpServerTest, StartRejectsBadOptions) {
  HttpServerOptions bad_address;
  bad_address.address = "not-an-address";
  EXPECT_EQ(HttpServer::Start(bad_address, Echo).status().code(), StatusCode::kInvalidArgument);

  auto first = MustStart({}, Echo);
  ASSERT_TRUE(first);
  HttpServerOptions taken;
  taken.port = first->port();
  EXPECT_EQ(HttpServer::Start(taken, Echo).status().code(), StatusCode::kUnavailable);

  HttpServerOptions missing_tls;
  missing_tls.tls = TlsOptions{"/nonexistent/server.crt", "/nonexistent/server.key", ""};
  EXPECT_EQ(HttpServer::Start(missing_tls, Echo).status().code(), StatusCode::kInvalidArgument);

  EXPECT_EQ(HttpServer::Start({}, nullptr).status().code(), StatusCode::kInvalidArgument);
}

class HttpServerTlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = std::make_unique<test::TempDir>("airlock-http-tls-");
    pki_ = std::make_unique<test::TestPki>(test::GenerateTestPki(dir_->path()));
  }
  static void TearDownTestSuite() {
    pki_.reset();
    dir_.reset();
  }

  static HttpServerOptions TlsServerOptions(bool request_client_cert) {
    HttpServerOptions options;
    options.tls = TlsOptions{pki_->server.cert_file, pki_->server.key_file,
                             request_client_cert ? pki_->ca.cert_file : ""};
    return options;
  }

  static inline std::unique_ptr<test::TempDir> dir_;
  static inline std::unique_ptr<test::TestPki> pki_;
};

TEST_F(HttpServerTlsTest, HandshakeWithTestCaAndRoundTrip) {
  auto server = MustStart(TlsServerOptions(false), Echo);
  ASSERT_TRUE(server);
  HttpClient client("127.0.0.1", server->port(), ClientTls{pki_->ca.cert_file, "", ""});
  auto first = client.Post("/v1/x?state=ready", "payload", {{"X-Test", "tls"}});
  ASSERT_EQ(first.status, 200u) << first.error;
  EXPECT_EQ(first.json()["tls"], true);
  EXPECT_EQ(first.json()["body"], "payload");
  EXPECT_EQ(first.json()["state"], "ready");
  EXPECT_EQ(first.json()["peer_pem"], "");
  EXPECT_EQ(first.header("x-content-type-options"), "nosniff");
  auto second = client.Get("/again");
  EXPECT_EQ(second.status, 200u) << second.error;
  EXPECT_EQ(client.connections_opened(), 1);

  HttpClient by_name("localhost", server->port(), ClientTls{pki_->ca.cert_file, "", ""});
  EXPECT_EQ(by_name.Get("/").status, 200u);
}

// A bare handshake with the protocol range pinned on the client side; the
// client's security level is lowered so that only the server can refuse.
bool HandshakeSucceeds(uint16_t port, const std::string& ca_file, int min_version,
                       int max_version) {
  namespace net = boost::asio;
  net::io_context ioc;
  net::ssl::context context(net::ssl::context::tls_client);
  SSL_CTX_set_security_level(context.native_handle(), 0);
  SSL_CTX_set_cipher_list(context.native_handle(), "ALL:@SECLEVEL=0");
  SSL_CTX_set_min_proto_version(context.native_handle(), min_version);
  SSL_CTX_set_max_proto_version(context.native_handle(), max_version);
  context.load_verify_file(ca_file);
  context.set_verify_mode(net::ssl::verify_peer);
  net::ssl::stream<net::ip::tcp::socket> stream(ioc, context);
  boost::system::error_code ec;
  stream.next_layer().connect({net::ip::make_address("127.0.0.1"), port}, ec);
  if (ec) return false;
  stream.handshake(net::ssl::stream_base::client, ec);
  return !ec;
}

TEST_F(HttpServerTlsTest, OnlyTls12AndLaterAreAccepted) {
  auto server = MustStart(TlsServerOptions(false), Echo);
  ASSERT_TRUE(server);
  EXPECT_FALSE(HandshakeSucceeds(server->port(), pki_->ca.cert_file, TLS1_VERSION, TLS1_VERSION));
  EXPECT_FALSE(
      HandshakeSucceeds(server->port(), pki_->ca.cert_file, TLS1_1_VERSION, TLS1_1_VERSION));
  EXPECT_TRUE(
      HandshakeSucceeds(server->port(), pki_->ca.cert_file, TLS1_2_VERSION, TLS1_2_VERSION));
  EXPECT_TRUE(
      HandshakeSucceeds(server->port(), pki_->ca.cert_file, TLS1_3_VERSION, TLS1_3_VERSION));
}

TEST_F(HttpServerTlsTest, ClientRejectsServerFromAnotherCa) {
  auto server = MustStart(TlsServerOptions(false), Echo);
  ASSERT_TRUE(server);
  HttpClient client("127.0.0.1", server->port(), ClientTls{pki_->other_ca.cert_file, "", ""});
  auto response = client.Get("/");
  EXPECT_EQ(response.status, 0u);
  EXPECT_THAT(response.error, HasSubstr("handshake"));
}

TEST_F(HttpServerTlsTest, PlaintextOnTlsPortGetsNoHttpAnswer) {
  CountingEcho echo;
  auto server = MustStart(TlsServerOptions(false), echo.handler());
  ASSERT_TRUE(server);
  const std::string reply =
      SendRaw("127.0.0.1", server->port(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 3s);
  EXPECT_THAT(reply, Not(HasSubstr("HTTP/1.1")));
  EXPECT_EQ(echo.calls->load(), 0);
}

TEST_F(HttpServerTlsTest, LargeBodyOverTls) {
  auto server = MustStart(TlsServerOptions(false), [](const HttpRequest& request) {
    return HttpResponse{200, "text/plain", request.body, {}};
  });
  ASSERT_TRUE(server);
  HttpClient client("127.0.0.1", server->port(), ClientTls{pki_->ca.cert_file, "", ""});
  const std::string body(700 * 1024, 'z');
  auto response = client.Post("/echo", body);
  ASSERT_EQ(response.status, 200u) << response.error;
  EXPECT_EQ(response.body, body);

  auto too_big = client.Post("/echo", std::string(2 << 20, 'q'));
  EXPECT_EQ(too_big.status, 413u) << too_big.error;
}

TEST_F(HttpServerTlsTest, ClientCertificateChainReachesHandler) {
  auto server = MustStart(TlsServerOptions(true), Echo);
  ASSERT_TRUE(server);
  HttpClient client("127.0.0.1", server->port(),
                    ClientTls{pki_->ca.cert_file, pki_->client_chain_file, pki_->client.key_file});
  auto response = client.Get("/whoami");
  ASSERT_EQ(response.status, 200u) << response.error;
  EXPECT_EQ(response.json()["peer_pem"].get<std::string>(),
            test::ReadFile(pki_->client.cert_file) + test::ReadFile(pki_->ca.cert_file));
}

TEST_F(HttpServerTlsTest, AnyClientCertificateIsPassedUpForTheIdentityLayerToJudge) {
  auto server = MustStart(TlsServerOptions(true), Echo);
  ASSERT_TRUE(server);
  for (const auto* cert : {&pki_->foreign_client, &pki_->expired_client}) {
    HttpClient client("127.0.0.1", server->port(),
                      ClientTls{pki_->ca.cert_file, cert->cert_file, cert->key_file});
    auto response = client.Get("/whoami");
    ASSERT_EQ(response.status, 200u) << cert->cert_file << " " << response.error;
    EXPECT_EQ(response.json()["peer_pem"].get<std::string>(), test::ReadFile(cert->cert_file));
  }
  // Presenting none is allowed too: the certificate is requested, not required.
  HttpClient anonymous("127.0.0.1", server->port(), ClientTls{pki_->ca.cert_file, "", ""});
  auto response = anonymous.Get("/whoami");
  ASSERT_EQ(response.status, 200u) << response.error;
  EXPECT_EQ(response.json()["peer_pem"], "");
}

TEST_F(HttpServerTlsTest, StopWithIdleTlsConnectionsReturnsPromptly) {
  auto server = MustStart(TlsServerOptions(true), Echo);
  ASSERT_TRUE(server);
  std::vector<std::unique_ptr<HttpClient>> clients;
  for (int i = 0; i < 4; ++i) {
    clients.push_back(std::make_unique<HttpClient>(
        "127.0.0.1", server->port(),
        ClientTls{pki_->ca.cert_file, pki_->client.cert_file, pki_->client.key_file}));
    ASSERT_EQ(clients.back()->Get("/").status, 200u);
  }
  const auto start = std::chrono::steady_clock::now();
  server.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
}

}  // namespace
}  // namespace airlock
