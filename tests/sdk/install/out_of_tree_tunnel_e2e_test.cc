// The out-of-tree tunnel example (sdk/examples/out_of_tree_tunnel), built
// against the installed SDK only, loaded by a real airlockd as its tunnel:
// a request goes through its whole life and is queried through the
// example's line protocol over TLS; a wrong credential is refused, the
// queries are audited by the kernel, and a revocation ends the connection.
#include <chrono>
#include <cstdlib>
#include <string>

#include <gtest/gtest.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <nlohmann/json.hpp>

#include "tests/kernel/e2e/kernel_process.h"
#include "tests/support/http_client.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_pki.h"

namespace airlock::test {
namespace {

using nlohmann::json;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

constexpr const char* kAlice = "alk_line_alice_token_1";
constexpr const char* kBob = "alk_line_bob_token_2";

// A client of the line protocol over TLS, verifying the tunnel's certificate.
class LineClient {
 public:
  LineClient(uint16_t port, const std::string& ca_file) : tls_(asio::ssl::context::tls_client) {
    tls_.load_verify_file(ca_file);
    tls_.set_verify_mode(asio::ssl::verify_peer);
    stream_ = std::make_unique<asio::ssl::stream<tcp::socket>>(io_, tls_);
    tcp::resolver resolver(io_);
    asio::connect(stream_->lowest_layer(), resolver.resolve("127.0.0.1", std::to_string(port)));
    SSL_set_tlsext_host_name(stream_->native_handle(), "localhost");
    stream_->handshake(asio::ssl::stream_base::client);
  }

  // Sends `line`; what came back up to and including the line `until`
  // (or an ERROR line), "" when the tunnel closed the connection.
  std::string Say(const std::string& line, const std::string& until) {
    boost::system::error_code ec;
    asio::write(*stream_, asio::buffer(line + "\n"), ec);
    std::string answer;
    while (!ec) {
      const size_t n = asio::read_until(*stream_, buffer_, '\n', ec);
      if (ec) break;
      std::string got(asio::buffers_begin(buffer_.data()), asio::buffers_begin(buffer_.data()) + n);
      buffer_.consume(n);
      answer += got;
      if (got == until + "\n" || got.rfind("ERROR", 0) == 0) break;
    }
    return answer;
  }

 private:
  asio::io_context io_;
  asio::ssl::context tls_;
  std::unique_ptr<asio::ssl::stream<tcp::socket>> stream_;
  asio::streambuf buffer_;
};

TEST(OutOfTreeTunnel, AKernelServesARequestThroughTheExamplesLineProtocol) {
  const char* plugin = std::getenv("AIRLOCK_OUT_OF_TREE_TUNNEL");
  ASSERT_NE(plugin, nullptr) << "set by ctest: the example built against the installed SDK";
  TempDir dir("airlock-line-tunnel-");
  const TestPki pki = GenerateTestPki(dir.path());
  json config = OrdersKernelConfig(dir.path(), pki, AliceAndBobIdentity(kAlice, kBob));
  config["tunnel"] = {{"name", "line"},
                      {"plugin", plugin},
                      {"config",
                       {{"public_host", "127.0.0.1"},
                        {"tls",
                         {{"certificate_file", pki.server.cert_file},
                          {"private_key_file", pki.server.key_file}}}}}};
  config["access"] = {{"admin_groups", {"owners"}}};
  KernelProcess kernel(dir.path(), config);
  ASSERT_TRUE(kernel.Start()) << kernel.log();
  HttpClient api("127.0.0.1", kernel.port());
  auto created =
      api.Post("/v1/requests", R"({"datasets":["orders"],"purpose":"line"})", Auth(kAlice));
  ASSERT_EQ(created.status, 201u) << created.body;
  const std::string id = created.json().value("id", "");
  ASSERT_EQ(api.Post("/v1/requests/" + id + "/approve", "{}", Auth(kBob)).status, 200u);
  ASSERT_EQ(WaitForRequestState(api, id, Auth(kAlice), "ready"), "ready") << kernel.log();
  auto grant = api.Post("/v1/requests/" + id + "/credentials", "", Auth(kAlice));
  ASSERT_EQ(grant.status, 200u) << grant.body;
  const std::string url = grant.json().value("url", "");
  const std::string credential = grant.json().value("credential", "");
  const std::string prefix = "line://127.0.0.1:";
  ASSERT_EQ(url.rfind(prefix, 0), 0u) << url;
  const uint16_t port = static_cast<uint16_t>(std::stoi(url.substr(prefix.size())));

  // A wrong credential is refused.
  LineClient stranger(port, pki.ca.cert_file);
  EXPECT_EQ(stranger.Say(id + " not-the-credential", "OK"),
            "ERROR unknown request or wrong credential\n");

  LineClient alice(port, pki.ca.cert_file);
  ASSERT_EQ(alice.Say(id + " " + credential, "OK"), "OK\n");
  EXPECT_EQ(alice.Say("SELECT order_id, amount FROM orders ORDER BY order_id", "."),
            "order_id\tamount\n1\t10\n2\t20\n.\n");
  EXPECT_EQ(alice.Say("DELETE FROM orders", ".").rfind("ERROR ", 0), 0u);

  // The kernel audits each query, whatever the transport.
  auto audited = api.Get("/v1/audit?event=tunnel.query&request=" + id, Auth(kBob));
  ASSERT_EQ(audited.status, 200u) << audited.body;
  EXPECT_EQ(audited.json()["records"].size(), 2u) << audited.body;

  // Revoked: the open connection ends, and a new one is told so.
  ASSERT_EQ(api.Post("/v1/requests/" + id + "/revoke", "{}", Auth(kAlice)).status, 200u);
  EXPECT_EQ(alice.Say("SELECT 1", "."), "");
  LineClient after(port, pki.ca.cert_file);
  EXPECT_EQ(after.Say(id + " " + credential, "OK"), "ERROR access ended\n");
}

}  // namespace
}  // namespace airlock::test
