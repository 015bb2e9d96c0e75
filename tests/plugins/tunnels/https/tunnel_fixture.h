// The fixture of the HTTPS tunnel suites: loads the built
// airlock_tunnel_https.so through the C ABI and talks to it over real TLS on
// 127.0.0.1. Queries run on a real SQL engine (SQLite in memory, see
// sqlite_channel.h) whose rows reach the tunnel as Arrow batches.
#pragma once

#include <poll.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <nlohmann/json.hpp>

#include "airlock/c/airlock_plugin.h"
#include "airlock/cpp/abi_util.hpp"
#include "kernel/plugin_host/plugin_instances.h"
#include "kernel/plugin_host/plugin_loader.h"
#include "scripted_channel.h"
#include "sqlite_channel.h"
#include "tests/support/dl_plugin.h"
#include "tests/support/http_client.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_pki.h"

namespace airlock::testing::https_tunnel {

using airlock::abi::BufferHolder;
using airlock::abi::ErrorHolder;
using airlock::test::ClientResponse;
using airlock::test::ClientTls;
using airlock::test::HttpClient;
using airlock::testing::DlPlugin;
using airlock::testing::SqliteChannel;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr char kPluginPath[] = AIRLOCK_PLUGIN_DIR "/airlock_tunnel_https.so";

inline int64_t SystemNowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Host services: captures every log line; a clock the test may pin.
struct TestHost {
  std::mutex mutex;
  std::vector<std::pair<int32_t, std::string>> logs;
  std::atomic<int64_t> pinned_now_micros{0};
  airlock_host_services services{};

  TestHost() {
    services.size = sizeof(services);
    services.abi_major = AIRLOCK_ABI_MAJOR;
    services.abi_minor = AIRLOCK_ABI_MINOR;
    services.host_data = this;
    services.log = [](void* data, int32_t level, const char* plugin, const char* message,
                      size_t length) {
      auto* self = static_cast<TestHost*>(data);
      std::lock_guard<std::mutex> lock(self->mutex);
      self->logs.emplace_back(level, std::string(plugin) + ": " + std::string(message, length));
    };
    services.now_unix_micros = [](void* data) -> int64_t {
      const int64_t pinned = static_cast<TestHost*>(data)->pinned_now_micros.load();
      return pinned != 0 ? pinned : SystemNowMicros();
    };
  }

  std::string AllLogs() {
    std::lock_guard<std::mutex> lock(mutex);
    std::string all;
    for (const auto& [level, line] : logs) all += std::to_string(level) + " " + line + "\n";
    return all;
  }
  bool Logged(int32_t level, const std::string& needle) {
    std::lock_guard<std::mutex> lock(mutex);
    return std::any_of(logs.begin(), logs.end(), [&](const auto& entry) {
      return entry.first == level && entry.second.find(needle) != std::string::npos;
    });
  }
};

// What open() returned, unpacked.
struct Opened {
  void* endpoint = nullptr;
  json grant;
  std::string credential;
  uint16_t port = 0;
  std::string base_path;  // "/t/<id>"
};

// A TLS connection driven by hand, to watch a kept-alive connection be dropped.
class RawTlsConnection {
 public:
  RawTlsConnection(uint16_t port, const std::string& ca_file)
      : ssl_(boost::asio::ssl::context::tls_client), stream_(io_, ssl_) {
    ssl_.set_verify_mode(boost::asio::ssl::verify_peer);
    ssl_.load_verify_file(ca_file);
    auto& tcp = boost::beast::get_lowest_layer(stream_);
    tcp.expires_after(std::chrono::seconds(5));
    tcp.connect(boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port));
    stream_.handshake(boost::asio::ssl::stream_base::client);
  }

  // Sends one request and reads its response (keeping the connection).
  unsigned Exchange(boost::beast::http::verb method, const std::string& target,
                    const std::string& credential, const std::string& body = {}) {
    namespace http = boost::beast::http;
    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::host, "127.0.0.1");
    req.set(http::field::authorization, "Bearer " + credential);
    req.keep_alive(true);
    if (!body.empty()) {
      req.set(http::field::content_type, "application/json");
      req.body() = body;
    }
    req.prepare_payload();
    http::write(stream_, req);
    http::response<http::string_body> res;
    http::read(stream_, buffer_, res);
    return res.result_int();
  }

  // Sends a request without reading the response (to read it by hand).
  void Send(boost::beast::http::verb method, const std::string& target,
            const std::string& credential, const std::string& body = {}) {
    namespace http = boost::beast::http;
    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::host, "127.0.0.1");
    req.set(http::field::authorization, "Bearer " + credential);
    req.keep_alive(true);
    if (!body.empty()) {
      req.set(http::field::content_type, "application/json");
      req.body() = body;
    }
    req.prepare_payload();
    http::write(stream_, req);
  }

  // Reads raw bytes (chunk framing included) until `needle` has arrived, the
  // connection ends, or `timeout`. Returns everything read so far.
  const std::string& ReadUntil(const std::string& needle, std::chrono::milliseconds timeout) {
    const auto give_up = Clock::now() + timeout;
    while (received_.find(needle) == std::string::npos && !ended_) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(give_up - Clock::now());
      if (left.count() <= 0) break;
      ReadSome(left);
    }
    return received_;
  }

  // Reads until the server ends the connection (true) or `timeout` (false).
  bool ReadUntilClosed(std::chrono::milliseconds timeout) {
    const auto give_up = Clock::now() + timeout;
    while (!ended_) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(give_up - Clock::now());
      if (left.count() <= 0) return false;
      ReadSome(left);
    }
    return true;
  }
  const std::string& received() const { return received_; }

  // True when the server closes the connection within `timeout`; false if it
  // stays open (and usable) that long. Waits with poll() so that a timeout
  // leaves the connection intact.
  bool ClosedWithin(std::chrono::milliseconds timeout) {
    const int fd = boost::beast::get_lowest_layer(stream_).socket().native_handle();
    pollfd p{fd, POLLIN | POLLRDHUP, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return false;
    boost::system::error_code ec;
    char byte;
    stream_.read_some(boost::asio::buffer(&byte, 1), ec);
    return static_cast<bool>(ec);
  }

 private:
  // One read with a deadline. (Not poll(): the TLS layer may already hold
  // decrypted or raw bytes that the socket no longer shows.)
  void ReadSome(std::chrono::milliseconds timeout) {
    char chunk[16384];
    bool done = false;
    boost::system::error_code ec;
    size_t n = 0;
    stream_.async_read_some(boost::asio::buffer(chunk),
                            [&](boost::system::error_code read_ec, size_t read) {
                              done = true;
                              ec = read_ec;
                              n = read;
                            });
    io_.restart();
    io_.run_for(timeout);
    if (!done) {
      boost::beast::get_lowest_layer(stream_).cancel();
      io_.restart();
      io_.run();
    }
    received_.append(chunk, n);
    if (ec && ec != boost::asio::error::operation_aborted) ended_ = true;
  }

  boost::asio::io_context io_;
  boost::asio::ssl::context ssl_;
  boost::beast::ssl_stream<boost::beast::tcp_stream> stream_;
  boost::beast::flat_buffer buffer_;
  std::string received_;
  bool ended_ = false;
};

class HttpsTunnelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new airlock::test::TempDir("airlock-https-tunnel-");
    pki_ = new airlock::test::TestPki(airlock::test::GenerateTestPki(dir_->path()));
  }
  static void TearDownTestSuite() {
    delete pki_;
    delete dir_;
  }

  void SetUp() override {
    std::string error;
    plugin_ = DlPlugin::Load(kPluginPath, &host_.services, &error);
    ASSERT_NE(plugin_, nullptr) << error;
    ASSERT_EQ(plugin_->info().kind, AIRLOCK_KIND_TUNNEL);
    table_ = &plugin_->vtable<airlock_type_tunnel_vtable>();
    ASSERT_EQ("",
              db_.Exec("CREATE TABLE people (id INTEGER, name TEXT, score REAL, photo BLOB, "
                       "active BOOLEAN, born DATE, seen TIMESTAMPTZ, local_seen TIMESTAMP, "
                       "wakes TIME, note TEXT);"
                       "INSERT INTO people VALUES (1, 'Ada \"the\" Countess', 2.5, x'00ff10', 1, "
                       "'1815-12-10', 1700000000123456, 0, 25200000000, NULL);"
                       "INSERT INTO people VALUES (9007199254740993, 'Grace\nHopper ✓', 9e999, "
                       "x'', 0, '1906-12-09', -1, 86400000000, 0, 'x');"
                       "CREATE TABLE big (id INTEGER, label TEXT);"
                       "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                       "WHERE i < 20000) INSERT INTO big SELECT i, 'row number ' || i FROM n;"));
  }

  void TearDown() override {
    for (auto& [instance, endpoint] : open_endpoints_) {
      if (endpoint != nullptr) table_->close(instance, endpoint);
    }
    for (void* instance : instances_) table_->destroy(instance);
    table_ = nullptr;
    plugin_.reset();
  }

  json BaseConfig() const {
    return json{{"listen_address", "127.0.0.1"},
                {"port", 0},
                {"public_host", "127.0.0.1"},
                {"tls",
                 {{"certificate_file", pki_->server.cert_file},
                  {"private_key_file", pki_->server.key_file}}}};
  }

  airlock_type_status TryCreate(const json& config, void** instance, std::string* message) {
    const std::string text = config.dump();
    ErrorHolder error;
    const airlock_type_status rc = table_->create(text.data(), text.size(), instance, error.get());
    if (message != nullptr) *message = error.message();
    if (rc == AIRLOCK_OK) instances_.push_back(*instance);
    return rc;
  }

  void* CreateTunnel(const json& config) {
    void* instance = nullptr;
    std::string message;
    EXPECT_EQ(TryCreate(config, &instance, &message), AIRLOCK_OK) << message;
    return instance;
  }

  airlock_type_status TryOpen(void* instance, const json& spec, Opened* opened,
                              std::string* message = nullptr,
                              const airlock_type_query_channel* channel = nullptr) {
    const std::string text = spec.dump();
    BufferHolder grant;
    ErrorHolder error;
    void* endpoint = nullptr;
    const airlock_type_status rc =
        table_->open(instance, text.data(), text.size(), channel ? channel : db_.channel(),
                     &endpoint, grant.get(), error.get());
    if (message != nullptr) *message = error.message();
    if (rc != AIRLOCK_OK) return rc;
    open_endpoints_.emplace_back(instance, endpoint);
    opened->endpoint = endpoint;
    opened->grant = json::parse(grant.view());
    // None when the endpoint was opened again for an earlier credential.
    opened->credential = opened->grant.value("credential", std::string());
    std::smatch match;
    const std::string url = opened->grant.at("url").get<std::string>();
    if (std::regex_match(url, match, std::regex(R"(https?://127\.0\.0\.1:(\d+)(/t/.+))"))) {
      opened->port = static_cast<uint16_t>(std::stoi(match[1].str()));
      opened->base_path = match[2].str();
    }
    return rc;
  }

  Opened Open(void* instance, const std::string& request_id, int64_t valid_for_seconds = 3600) {
    Opened opened;
    std::string message;
    EXPECT_EQ(TryOpen(instance, Spec(request_id, valid_for_seconds), &opened, &message), AIRLOCK_OK)
        << message;
    return opened;
  }

  static json Spec(const std::string& request_id, int64_t valid_for_seconds = 3600) {
    return json{{"request_id", request_id},
                {"principal", {{"subject", "alice@example.com"}, {"kind", "human"}}},
                {"not_after", SystemNowMicros() / 1000000 + valid_for_seconds}};
  }

  // Revokes now (as the host's close() would), and forgets the handle.
  // close(), or close_with_reason() (ABI 1.1) when `reason` is given.
  void Close(void* instance, Opened& opened,
             std::optional<airlock_type_close_reason> reason = std::nullopt) {
    if (reason) {
      ASSERT_GE(table_->size, AIRLOCK_TUNNEL_VTABLE_1_1_SIZE);
      ASSERT_NE(table_->close_with_reason, nullptr);
      table_->close_with_reason(instance, opened.endpoint, *reason);
    } else {
      table_->close(instance, opened.endpoint);
    }
    for (auto& [inst, endpoint] : open_endpoints_) {
      if (endpoint == opened.endpoint) endpoint = nullptr;
    }
    opened.endpoint = nullptr;
  }

  std::unique_ptr<HttpClient> Client(uint16_t port) const {
    auto client = std::make_unique<HttpClient>("127.0.0.1", port, ClientTls{pki_->ca.cert_file});
    client->set_timeout(std::chrono::seconds(10));
    return client;
  }

  static airlock::test::Headers Bearer(const std::string& credential) {
    return {{"Authorization", "Bearer " + credential}};
  }

  ClientResponse Query(HttpClient& client, const Opened& opened, const std::string& sql) {
    return client.Post(opened.base_path + "/query", json{{"sql", sql}}.dump(),
                       Bearer(opened.credential));
  }

  // The kernel API's error shape: {"error": "<code>", "message": "..."}.
  static std::string ErrorCode(const ClientResponse& res) {
    const json body = res.json();
    if (body.is_discarded() || !body.contains("error")) return "<no error member>";
    if (!body["error"].is_string()) return "<error is not a string: " + body.dump() + ">";
    return body["error"].get<std::string>();
  }

  static inline airlock::test::TempDir* dir_ = nullptr;
  static inline airlock::test::TestPki* pki_ = nullptr;

  // A scripted channel that lives until after TearDown() closed every
  // endpoint (so a failed assertion cannot leave a query inside a dead one).
  airlock::testing::ScriptedChannel& Scripted(airlock::testing::ScriptedChannel::Script script) {
    scripted_.push_back(std::make_unique<airlock::testing::ScriptedChannel>(std::move(script)));
    return *scripted_.back();
  }

  TestHost host_;
  SqliteChannel db_;
  std::vector<std::unique_ptr<airlock::testing::ScriptedChannel>> scripted_;
  std::unique_ptr<DlPlugin> plugin_;
  const airlock_type_tunnel_vtable* table_ = nullptr;
  std::vector<void*> instances_;
  std::vector<std::pair<void*, void*>> open_endpoints_;
};

}  // namespace airlock::testing::https_tunnel
