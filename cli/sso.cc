#include "cli/sso.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <map>
#include <memory>
#include <optional>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/url/parse.hpp>
#include <nlohmann/json.hpp>

#include "airlock/cpp/base64url.hpp"
#include "kernel/common/http_call.h"

extern char** environ;

namespace airlock::cli {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using json = nlohmann::json;
using tcp = asio::ip::tcp;

// A request to the loopback port is a browser's redirect: small.
constexpr size_t kMaxCallbackBytes = 16 * 1024;
constexpr auto kConnectionTimeout = std::chrono::seconds(10);
// Error texts from the provider are shown, bounded and printable only.
constexpr size_t kMaxShownError = 300;

std::string RandomUrlSafe(size_t bytes) {
  std::string raw(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1) {
    return {};
  }
  return sdk::Base64UrlEncode(raw);
}

std::string S256(const std::string& verifier) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(verifier.data()), verifier.size(), digest);
  return sdk::Base64UrlEncode(
      std::string_view(reinterpret_cast<const char*>(digest), sizeof digest));
}

bool SameSecret(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char differ = 0;
  for (size_t i = 0; i < a.size(); ++i) differ |= static_cast<unsigned char>(a[i] ^ b[i]);
  return differ == 0;
}

std::string Shown(std::string text) {
  if (text.size() > kMaxShownError) text.resize(kMaxShownError);
  for (char& c : text) {
    if (static_cast<unsigned char>(c) < ' ' || c == 127) c = ' ';
  }
  return text;
}

struct Endpoints {
  std::string authorization;
  std::string token;
};

// The provider's discovery document: its issuer must be the one configured.
Result<Endpoints> Discover(const SsoSettings& settings) {
  HttpCall call;
  call.url = settings.issuer + "/.well-known/openid-configuration";
  call.ca_file = settings.ca_file;
  call.timeout_seconds = 30;
  auto answer = HttpSend(call);
  if (!answer.ok()) {
    return Status::Unavailable("cannot reach the sign-in provider " + settings.issuer + ": " +
                               answer.status().message());
  }
  if (answer->status != 200) {
    return Status::Unavailable("the sign-in provider " + settings.issuer + " answered " +
                               std::to_string(answer->status) + " for its discovery document");
  }
  const json doc = json::parse(answer->body, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) {
    return Status::Unavailable("the sign-in provider's discovery document is not JSON");
  }
  if (doc.value("issuer", "") != settings.issuer) {
    return Status::FailedPrecondition("the sign-in provider's discovery document names issuer '" +
                                      Shown(doc.value("issuer", "")) + "', not " + settings.issuer);
  }
  Endpoints endpoints{doc.value("authorization_endpoint", ""), doc.value("token_endpoint", "")};
  for (const std::string* url : {&endpoints.authorization, &endpoints.token}) {
    if (url->rfind("https://", 0) != 0) {
      return Status::FailedPrecondition(
          "the sign-in provider's discovery document lacks an https authorization or token "
          "endpoint");
    }
  }
  return endpoints;
}

std::string Query(const std::vector<std::pair<std::string, std::string>>& params) {
  std::string out;
  for (const auto& [name, value] : params) {
    out += (out.empty() ? "" : "&") + name + "=" + UrlEncode(value);
  }
  return out;
}

// The page the browser shows once it came back.
std::string Page(const std::string& headline, const std::string& detail) {
  return "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Airlock</title>"
         "</head><body><h1>" +
         headline + "</h1><p>" + detail + "</p></body></html>\n";
}

// Waits on 127.0.0.1:<port> for the browser's return to /callback with the
// `state` this sign-in sent; answers every visit. Other visits (a favicon,
// a stale tab, a forged answer) get an error page and waiting goes on.
class Callback {
 public:
  Status Listen() {
    beast::error_code ec;
    acceptor_.open(tcp::v4(), ec);
    if (!ec) acceptor_.bind(tcp::endpoint(asio::ip::make_address_v4("127.0.0.1"), 0), ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return Status::Unavailable("cannot listen on a loopback port: " + ec.message());
    return Status::Ok();
  }
  uint16_t port() const { return acceptor_.local_endpoint().port(); }

  // The answer's parameters (code, or error and error_description).
  Result<std::map<std::string, std::string>> Wait(const std::string& state,
                                                  std::chrono::seconds timeout) {
    state_ = state;
    Accept();
    io_.run_for(timeout);
    if (!answer_) {
      return Status::DeadlineExceeded("nobody came back from the sign-in page within " +
                                      std::to_string(timeout.count()) + " s");
    }
    return *answer_;
  }

 private:
  struct Visit {
    explicit Visit(tcp::socket socket) : stream(std::move(socket)) {}
    beast::tcp_stream stream;
    beast::flat_buffer buffer;
    http::request_parser<http::empty_body> parser;
    http::response<http::string_body> response;
  };

  void Accept() {
    acceptor_.async_accept([this](beast::error_code ec, tcp::socket socket) {
      if (ec || answer_) return;
      auto visit = std::make_shared<Visit>(std::move(socket));
      visit->parser.header_limit(kMaxCallbackBytes);
      visit->stream.expires_after(kConnectionTimeout);
      http::async_read(visit->stream, visit->buffer, visit->parser,
                       [this, visit](beast::error_code read_ec, size_t) {
                         if (!read_ec) Answer(visit);
                       });
      Accept();
    });
  }

  void Answer(const std::shared_ptr<Visit>& visit) {
    const auto& request = visit->parser.get();
    std::map<std::string, std::string> params;
    bool ours = false;
    auto target = boost::urls::parse_origin_form(
        std::string_view(request.target().data(), request.target().size()));
    if (target && request.method() == http::verb::get && target->path() == "/callback") {
      for (const auto& param : target->params()) params[param.key] = param.value;
      ours = SameSecret(params["state"], state_);
    }
    std::string headline, detail;
    visit->response.result(http::status::ok);
    if (!ours) {
      visit->response.result(http::status::bad_request);
      headline = "Not this sign-in";
      detail = "This page does not belong to the sign-in airlock login is waiting for.";
    } else if (params.count("code") && !params["code"].empty()) {
      headline = "Signed in";
      detail = "You may close this tab and go back to the terminal.";
    } else {
      visit->response.result(http::status::unauthorized);
      headline = "Sign-in refused";
      detail = "The provider refused the sign-in; the terminal says why.";
    }
    visit->response.version(11);
    visit->response.set(http::field::content_type, "text/html; charset=utf-8");
    visit->response.set(http::field::cache_control, "no-store");
    visit->response.set(http::field::connection, "close");
    visit->response.set("Content-Security-Policy", "default-src 'none'");
    visit->response.body() = Page(headline, detail);
    visit->response.prepare_payload();
    http::async_write(visit->stream, visit->response,
                      [this, visit, ours, params](beast::error_code, size_t) {
                        beast::error_code ignored;
                        visit->stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
                        if (ours && !answer_) {
                          answer_ = params;
                          io_.stop();
                        }
                      });
  }

  asio::io_context io_;
  tcp::acceptor acceptor_{io_};
  std::string state_;
  std::optional<std::map<std::string, std::string>> answer_;
};

// Starts the desktop's browser on `url` (xdg-open); false when there is none.
bool OpenBrowser(const std::string& url) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  std::string program = "xdg-open", target = url;
  char* argv[] = {program.data(), target.data(), nullptr};
  pid_t pid = -1;
  const int spawned = ::posix_spawnp(&pid, "xdg-open", &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) return false;
  int status = 0;
  return ::waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// The ID token's claims, decoded (not verified: the kernel verifies it).
Result<json> Claims(const std::string& id_token) {
  const size_t first = id_token.find('.');
  const size_t second = first == std::string::npos ? first : id_token.find('.', first + 1);
  if (second == std::string::npos) return Status::Unauthenticated("the ID token is not a JWT");
  const auto payload =
      sdk::Base64UrlDecode(std::string_view(id_token).substr(first + 1, second - first - 1));
  json claims = payload ? json::parse(*payload, nullptr, false) : json();
  if (!claims.is_object()) return Status::Unauthenticated("the ID token's claims are not JSON");
  return claims;
}

// Exchanges the code; the ID token after checking it answers this sign-in.
Result<std::string> Redeem(const SsoSettings& settings, const Endpoints& endpoints,
                           const std::string& code, const std::string& redirect_uri,
                           const std::string& verifier, const std::string& nonce) {
  HttpCall call;
  call.method = "POST";
  call.url = endpoints.token;
  call.ca_file = settings.ca_file;
  call.timeout_seconds = 30;
  call.headers = {{"Content-Type", "application/x-www-form-urlencoded"},
                  {"Accept", "application/json"}};
  call.body = Query({{"grant_type", "authorization_code"},
                     {"code", code},
                     {"redirect_uri", redirect_uri},
                     {"client_id", settings.client_id},
                     {"code_verifier", verifier}});
  auto answer = HttpSend(call);
  if (!answer.ok()) {
    return Status::Unavailable("cannot reach the provider's token endpoint: " +
                               answer.status().message());
  }
  const json tokens = json::parse(answer->body, nullptr, /*allow_exceptions=*/false);
  if (answer->status != 200 || !tokens.is_object()) {
    const std::string why = tokens.is_object() ? tokens.value("error", "") + ": " +
                                                     tokens.value("error_description", "")
                                               : "it answered " + std::to_string(answer->status);
    return Status::Unauthenticated("the provider did not hand out tokens (" + Shown(why) + ")");
  }
  const std::string id_token = tokens.value("id_token", "");
  if (id_token.empty()) return Status::Unauthenticated("the provider's answer has no ID token");
  AIRLOCK_ASSIGN_OR_RETURN(json claims, Claims(id_token));
  if (!claims.contains("nonce") || !claims["nonce"].is_string() ||
      !SameSecret(claims["nonce"].get<std::string>(), nonce)) {
    return Status::Unauthenticated("the ID token was not issued for this sign-in (nonce)");
  }
  if (claims.value("iss", "") != settings.issuer) {
    return Status::Unauthenticated("the ID token names another issuer");
  }
  const json& aud = claims.contains("aud") ? claims["aud"] : json();
  const bool for_us =
      aud == json(settings.client_id) ||
      (aud.is_array() && std::find(aud.begin(), aud.end(), json(settings.client_id)) != aud.end());
  if (!for_us) return Status::Unauthenticated("the ID token is meant for another client");
  return id_token;
}

}  // namespace

Result<std::string> SignInWithSso(const SsoSettings& settings, std::ostream& say) {
  AIRLOCK_ASSIGN_OR_RETURN(Endpoints endpoints, Discover(settings));
  const std::string verifier = RandomUrlSafe(32), state = RandomUrlSafe(16),
                    nonce = RandomUrlSafe(16);
  if (verifier.empty() || state.empty() || nonce.empty()) {
    return Status::Internal("no randomness for the sign-in");
  }
  Callback callback;
  AIRLOCK_RETURN_IF_ERROR(callback.Listen());
  const std::string redirect_uri =
      "http://127.0.0.1:" + std::to_string(callback.port()) + "/callback";
  const std::string url = endpoints.authorization +
                          (endpoints.authorization.find('?') == std::string::npos ? "?" : "&") +
                          Query({{"response_type", "code"},
                                 {"client_id", settings.client_id},
                                 {"redirect_uri", redirect_uri},
                                 {"scope", settings.scopes},
                                 {"state", state},
                                 {"nonce", nonce},
                                 {"code_challenge", S256(verifier)},
                                 {"code_challenge_method", "S256"}});
  const bool opened = settings.open_browser && OpenBrowser(url);
  say << (opened ? "Sign in in the browser window that opened; if none did, open:"
                 : "To sign in, open this address in a browser on this machine:")
      << "\n  " << url << "\nWaiting for the sign-in to finish..." << std::endl;
  AIRLOCK_ASSIGN_OR_RETURN(auto params, callback.Wait(state, settings.timeout));
  if (params["code"].empty()) {
    return Status::Unauthenticated("the provider refused the sign-in (" +
                                   Shown(params["error"] + ": " + params["error_description"]) +
                                   ")");
  }
  return Redeem(settings, endpoints, params["code"], redirect_uri, verifier, nonce);
}

}  // namespace airlock::cli
