#include "https.h"

#include <openssl/ssl.h>

#include <exception>
#include <optional>
#include <string>

#include <boost/asio/ip/address.hpp>

#include "airlock/cpp/tunnel_tls.hpp"
#include "credential.h"
#include "http_util.h"

namespace airlock::tunnels::https {
namespace {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;

Result<ssl::context> MakeTlsContext(const TlsFiles& files) {
  return sdk::tunnel::MakeServerTlsContext(files, "tunnel configuration");
}

std::string UrlHost(const std::string& host) {
  return host.find(':') != std::string::npos ? "[" + host + "]" : host;
}

}  // namespace

HttpsEndpoint::~HttpsEndpoint() {
  registry_->Close(state_);
  host_.Info("tunnel endpoint for request '" + state_->request_id() + "' closed (" +
             std::string(DescribeClosed(state_->close_reason()).code) + ")");
}

HttpsTunnel::HttpsTunnel(HttpsTunnelConfig config, sdk::Host host)
    : config_(std::move(config)),
      host_(std::move(host)),
      router_(*registry_, config_, host_),
      query_pool_(config_.query_threads),
      session_context_{config_,
                       host_,
                       router_,
                       query_pool_,
                       QueryLimits{config_.max_rows, config_.query_timeout},
                       sdk::ConnectionBudget(config_.connections)},
      work_(net::make_work_guard(io_)) {}

namespace {

// The parsed configuration with its TLS paths resolved against the kernel
// configuration's directory.
Result<HttpsTunnelConfig> ResolvedConfig(const Json& config, const sdk::Host& host) {
  AIRLOCK_ASSIGN_OR_RETURN(HttpsTunnelConfig parsed, ParseConfig(config));
  if (parsed.tls.has_value()) {
    parsed.tls->certificate_file = host.ResolvePath(parsed.tls->certificate_file);
    parsed.tls->private_key_file = host.ResolvePath(parsed.tls->private_key_file);
  }
  return parsed;
}

}  // namespace

Status HttpsTunnel::CheckConfig(const Json& config, const sdk::Host& host) {
  AIRLOCK_ASSIGN_OR_RETURN(HttpsTunnelConfig parsed, ResolvedConfig(config, host));
  boost::system::error_code ec;
  (void)net::ip::make_address(parsed.listen_address, ec);
  if (ec) {
    return Status::InvalidArgument("listen_address \"" + parsed.listen_address +
                                   "\" is not an IP address");
  }
  if (parsed.tls.has_value()) AIRLOCK_RETURN_IF_ERROR(MakeTlsContext(*parsed.tls).status());
  return Status::Ok();
}

Result<std::unique_ptr<HttpsTunnel>> HttpsTunnel::Create(const Json& config,
                                                         const sdk::Host& host) {
  AIRLOCK_ASSIGN_OR_RETURN(HttpsTunnelConfig parsed, ResolvedConfig(config, host));
  std::unique_ptr<HttpsTunnel> tunnel(new HttpsTunnel(std::move(parsed), host));
  AIRLOCK_RETURN_IF_ERROR(tunnel->Start());
  return tunnel;
}

Status HttpsTunnel::Start() {
  if (config_.tls.has_value()) {
    AIRLOCK_ASSIGN_OR_RETURN(auto tls, MakeTlsContext(*config_.tls));
    tls_.emplace(std::move(tls));
  }
  listener_ =
      std::make_shared<Listener>(io_, session_context_, tls_.has_value() ? &*tls_ : nullptr);
  const auto address = net::ip::make_address(config_.listen_address);
  AIRLOCK_RETURN_IF_ERROR(listener_->Open({address, config_.port}));
  port_ = listener_->port();
  listener_->Start();
  io_threads_.reserve(config_.io_threads);
  for (unsigned i = 0; i < config_.io_threads; ++i) {
    io_threads_.emplace_back([this] {
      // A handler that throws (out of memory, say) loses its connection, not the process.
      for (;;) {
        try {
          io_.run();
          return;
        } catch (const std::exception& e) {
          host_.Error(std::string("tunnel I/O handler failed: ") + e.what());
        }
      }
    });
  }
  const std::string scheme = config_.plaintext() ? "http" : "https";
  host_.Info("tunnel listening on " + scheme + "://" + UrlHost(config_.listen_address) + ":" +
             std::to_string(port_) + " (published as " + UrlHost(config_.public_host) + ")");
  if (config_.plaintext()) {
    host_.Warn(
        "tunnel serves PLAIN HTTP (allow_plaintext): credentials and query results cross the "
        "network unencrypted; development only");
  }
  return Status::Ok();
}

HttpsTunnel::~HttpsTunnel() {
  // Revoke everything first, while the I/O threads still run: queries are
  // cancelled and their writes fail fast on the dropped connections.
  registry_->CloseAll();
  if (listener_ != nullptr) listener_->Stop();
  query_pool_.join();
  work_.reset();
  io_.stop();
  for (auto& thread : io_threads_) {
    if (thread.joinable()) thread.join();
  }
}

Result<sdk::TunnelOpening> HttpsTunnel::Open(const Json& spec, sdk::QueryChannel channel) {
  if (!spec.is_object()) return Status::InvalidArgument("endpoint spec must be a JSON object");
  std::string request_id;
  AIRLOCK_RETURN_IF_ERROR(
      json_read::String(spec, "request_id", &request_id, true, "endpoint spec"));
  if (!IsValidEndpointId(request_id)) {
    return Status::InvalidArgument(
        "endpoint spec.request_id must be 1-128 characters of A-Z a-z 0-9 . _ ~ -");
  }
  int64_t not_after = 0;
  AIRLOCK_RETURN_IF_ERROR(json_read::Int(spec, "not_after", &not_after, true, "endpoint spec"));
  if (not_after <= NowUnixSeconds(host_)) {
    return Status::InvalidArgument("endpoint spec.not_after is not in the future");
  }
  std::string subject;
  if (auto it = spec.find("principal"); it != spec.end() && !it->is_null()) {
    if (!it->is_object()) {
      return Status::InvalidArgument("endpoint spec.principal must be an object");
    }
    AIRLOCK_RETURN_IF_ERROR(
        json_read::String(*it, "subject", &subject, false, "endpoint spec.principal"));
  }

  // Opened again for a credential issued earlier (by any kernel replica):
  // that one stays valid and none is issued.
  std::string verifier;
  AIRLOCK_RETURN_IF_ERROR(json_read::String(spec, "verifier", &verifier, false, "endpoint spec"));
  std::optional<IssuedCredential> issued;
  CredentialHash hash{};
  if (!verifier.empty()) {
    AIRLOCK_ASSIGN_OR_RETURN(hash, ParseCredentialVerifier(verifier));
  } else {
    AIRLOCK_ASSIGN_OR_RETURN(IssuedCredential credential, IssueCredential());
    hash = credential.hash();
    issued.emplace(std::move(credential));
  }
  auto state = std::make_shared<EndpointState>(request_id, subject, hash, not_after, channel,
                                               config_.rate_limit_per_minute,
                                               config_.max_concurrent_queries);
  AIRLOCK_RETURN_IF_ERROR(registry_->Add(state));

  const std::string scheme = config_.plaintext() ? "http" : "https";
  sdk::TunnelOpening opening;
  opening.grant = Json{{"url", scheme + "://" + UrlHost(config_.public_host) + ":" +
                                   std::to_string(port_) + "/t/" + request_id},
                       {"verifier", CredentialVerifier(hash)},
                       {"expires_at", not_after},
                       {"transport", scheme}};
  if (issued) opening.grant["credential"] = issued->token();
  opening.endpoint = std::make_unique<HttpsEndpoint>(registry_, std::move(state), host_);
  host_.Info("tunnel endpoint for request '" + request_id + "' opened" +
             (subject.empty() ? std::string() : " for '" + subject + "'") + ", valid until " +
             std::to_string(not_after));
  return opening;
}

}  // namespace airlock::tunnels::https
