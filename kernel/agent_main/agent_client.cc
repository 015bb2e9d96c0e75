#include "kernel/agent_main/agent_client.h"

#include <sys/socket.h>
#include <sys/time.h>

#include <spdlog/spdlog.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <filesystem>

#include "kernel/agent/agent_ca.h"
#include "kernel/agent_main/proxy_connect.h"
#include "kernel/common/crypto.h"
#include "kernel/core/describe_run.h"
#include "kernel/plugin_host/secret_reference.h"

namespace airlock::agent {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using nlohmann::json;
using tcp = asio::ip::tcp;

namespace {

int64_t NowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Writes the certificate and its key as one PEM file (see identity_file()).
Status WriteIdentity(const std::string& path, std::string_view certificate,
                     std::string_view key_pem) {
  std::string pem(certificate);
  if (!pem.empty() && pem.back() != '\n') pem += '\n';
  pem += key_pem;
  Status written = WritePrivateFile(path, pem);
  SecureWipe(pem.data(), pem.size());
  return written;
}

// Every connection to the kernel offers the link's ALPN protocol, so that a
// kernel whose HTTPS API shares the agents' port hands it to them.
void OfferLinkAlpn(ssl::context& tls) {
  SSL_CTX_set_alpn_protos(tls.native_handle(),
                          reinterpret_cast<const unsigned char*>(kLinkAlpnWire.data()),
                          static_cast<unsigned>(kLinkAlpnWire.size()));
}

int64_t WallMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string Trimmed(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
    text.pop_back();
  }
  return text;
}

}  // namespace

AgentClient::AgentClient(AgentConfig config, const plugin_host::IsolatorPlugin& isolator,
                         json isolation)
    : config_(std::move(config)),
      isolator_(isolator),
      isolation_(std::move(isolation)),
      reconnect_timer_(io_),
      heartbeat_timer_(io_),
      sync_timer_(io_),
      site_(config_.site, config_.config_dir,
            isolation_.is_object() && isolation_.value("egress", "") == "forwarded") {}

AgentClient::~AgentClient() {
  TerminateAll();
  dial_pool_.join();
  provision_pool_.join();
}

Status AgentClient::AskToEnroll(const KernelAddress& kernel, const Secret& token,
                                const std::string& csr_pem, json* reply) {
  try {
    ssl::context tls(ssl::context::tlsv13_client);
    tls.load_verify_file(config_.ca_file);
    tls.set_verify_mode(ssl::verify_peer);
    OfferLinkAlpn(tls);
    asio::io_context io;
    TlsStream stream(io, tls);
    SSL_set_tlsext_host_name(stream.native_handle(), kernel.server_name.c_str());
    stream.set_verify_callback(ssl::host_name_verification(kernel.server_name));
    tcp::resolver resolver(io);
    AIRLOCK_ASSIGN_OR_RETURN(const Hop hop, FirstHop(kernel));
    asio::connect(stream.lowest_layer(), resolver.resolve(hop.host, std::to_string(hop.port)));
    timeval timeout{static_cast<time_t>(config_.connect_timeout_ms / 1000),
                    static_cast<suseconds_t>((config_.connect_timeout_ms % 1000) * 1000)};
    ::setsockopt(stream.lowest_layer().native_handle(), SOL_SOCKET, SO_RCVTIMEO, &timeout,
                 sizeof timeout);
    ::setsockopt(stream.lowest_layer().native_handle(), SOL_SOCKET, SO_SNDTIMEO, &timeout,
                 sizeof timeout);
    if (hop.proxied) {
      AIRLOCK_ASSIGN_OR_RETURN(std::string request, ProxyRequest(kernel));
      AIRLOCK_RETURN_IF_ERROR(
          ProxyConnect(stream.next_layer(), std::move(request), config_.https_proxy));
    }
    stream.handshake(ssl::stream_base::client);
    json enroll = {{"type", "enroll"},
                   {"agent", config_.name},
                   {"token", std::string(token.Reveal())},
                   {"csr", csr_pem}};
    std::string frame = EncodeLinkFrame(LinkFrameType::kControl, 0, enroll.dump());
    enroll["token"] = nullptr;
    asio::write(stream, asio::buffer(frame));
    SecureWipe(frame.data(), frame.size());
    unsigned char header[kLinkHeaderBytes];
    asio::read(stream, asio::buffer(header, sizeof header));
    AIRLOCK_ASSIGN_OR_RETURN(LinkHeader parsed, DecodeLinkHeader(header, kMaxEnrollmentFrameBytes));
    std::string payload(parsed.payload_bytes, '\0');
    asio::read(stream, asio::buffer(payload.data(), payload.size()));
    *reply = json::parse(payload, nullptr, false);
  } catch (const std::exception& e) {
    return Status::Unavailable("enrollment with the kernel at " + kernel.ToString() +
                               " failed: " + e.what());
  }
  return Status::Ok();
}

Status AgentClient::EnsureEnrolled() {
  std::error_code ec;
  std::filesystem::create_directories(config_.state_dir, ec);
  std::filesystem::permissions(config_.state_dir, std::filesystem::perms::owner_all,
                               std::filesystem::perm_options::replace, ec);
  if (std::filesystem::exists(identity_file())) return Status::Ok();
  if (config_.enrollment_token_file.empty()) {
    return Status::FailedPrecondition(
        "not enrolled yet and no enrollment_token_file is configured");
  }
  AIRLOCK_ASSIGN_OR_RETURN(std::string token_text, ReadSmallFile(config_.enrollment_token_file));
  Secret token(Trimmed(std::move(token_text)));
  AIRLOCK_ASSIGN_OR_RETURN(KeyAndPem request, MakeKeyAndCsr(config_.name));
  // Any replica enrolls: each is tried in turn until one answers.
  json reply;
  // The caller says why once while it stays the same: one message naming
  // each replica's failure.
  Status reached = Status::Unavailable("no kernel address is configured");
  std::string failures;
  for (const KernelAddress& kernel : config_.kernels) {
    reached = AskToEnroll(kernel, token, request.pem, &reply);
    if (reached.ok()) break;
    failures += (failures.empty() ? "" : "; ") + reached.message();
  }
  if (!reached.ok()) return Status(reached.code(), failures);
  if (!reply.is_object() || reply.value("type", "") != "enrolled" ||
      !reply["certificate"].is_string()) {
    return Status::PermissionDenied(reply.is_object() ? reply.value("message", "enrollment refused")
                                                      : "enrollment refused");
  }
  AIRLOCK_RETURN_IF_ERROR(WriteIdentity(identity_file(), reply["certificate"].get<std::string>(),
                                        request.key_pem.Reveal()));
  spdlog::info("enrolled with the kernel as agent '{}'", config_.name);
  return Status::Ok();
}

void AgentClient::Run() {
  asio::post(io_, [this] { Connect(); });
  io_.run();
}

void AgentClient::Stop() {
  asio::post(io_, [this] {
    if (link_) link_->Close(Status::Cancelled("agent stopping"));
    link_.reset();
    TerminateAll();
    reconnect_timer_.cancel();
    heartbeat_timer_.cancel();
    io_.stop();
  });
}

void AgentClient::Connect() {
  std::shared_ptr<ssl::context> tls;
  std::unique_ptr<TlsStream> stream;
  try {
    tls = std::make_shared<ssl::context>(ssl::context::tlsv13_client);
    tls->load_verify_file(config_.ca_file);
    tls->use_certificate_chain_file(identity_file());
    tls->use_private_key_file(identity_file(), ssl::context::pem);
    tls->set_verify_mode(ssl::verify_peer);
    OfferLinkAlpn(*tls);
    stream = std::make_unique<TlsStream>(io_, *tls);
    SSL_set_tlsext_host_name(stream->native_handle(), kernel().server_name.c_str());
    stream->set_verify_callback(ssl::host_name_verification(kernel().server_name));
  } catch (const std::exception& e) {
    spdlog::error("cannot prepare the link: {}", e.what());
    return ScheduleReconnect();
  }
  auto holder = std::make_shared<std::unique_ptr<TlsStream>>(std::move(stream));
  auto resolver = std::make_shared<tcp::resolver>(io_);
  auto deadline = std::make_shared<asio::steady_timer>(
      io_, std::chrono::milliseconds(config_.connect_timeout_ms));
  deadline->async_wait([holder](boost::system::error_code ec) {
    if (!ec && *holder) {
      boost::system::error_code ignored;
      (*holder)->lowest_layer().close(ignored);
    }
  });
  auto hop = FirstHop(kernel());
  if (!hop.ok()) {
    spdlog::error("cannot reach the kernel: {}", hop.status().message());
    deadline->cancel();
    return ScheduleReconnect();
  }
  // TLS with the kernel, directly or inside the proxy's tunnel.
  auto handshake = [this, tls, holder, deadline] {
    (*holder)->async_handshake(
        ssl::stream_base::client, [this, tls, holder, deadline](boost::system::error_code ec) {
          deadline->cancel();
          if (ec) {
            spdlog::warn("TLS handshake with the kernel at {} failed: {}", kernel().ToString(),
                         ec.message());
            return ScheduleReconnect();
          }
          OnConnected(LinkConnection::Make(std::move(*holder), kMaxLinkFrameBytes));
        });
  };
  resolver->async_resolve(
      hop->host, std::to_string(hop->port),
      [this, holder, resolver, deadline, handshake, proxied = hop->proxied](
          boost::system::error_code ec, tcp::resolver::results_type results) {
        if (ec || !*holder) {
          spdlog::warn(
              "cannot resolve {}: {}",
              proxied ? "the proxy " + config_.https_proxy : "the kernel at " + kernel().ToString(),
              ec.message());
          deadline->cancel();
          return ScheduleReconnect();
        }
        asio::async_connect((*holder)->lowest_layer(), results,
                            [this, holder, deadline, handshake, proxied](
                                boost::system::error_code ec, const tcp::endpoint&) {
                              if (ec) {
                                spdlog::warn("cannot reach {}: {}",
                                             proxied ? "the proxy " + config_.https_proxy
                                                     : "the kernel at " + kernel().ToString(),
                                             ec.message());
                                deadline->cancel();
                                return ScheduleReconnect();
                              }
                              if (!proxied) return handshake();
                              auto request = ProxyRequest(kernel());
                              if (!request.ok()) {
                                spdlog::error("{}", request.status().message());
                                deadline->cancel();
                                return ScheduleReconnect();
                              }
                              AsyncProxyConnect(
                                  (*holder)->next_layer(), std::move(request).value(),
                                  config_.https_proxy, [this, deadline, handshake](Status tunnel) {
                                    if (!tunnel.ok()) {
                                      // Said once while it stays the same:
                                      // the agent retries every reconnect_ms.
                                      if (tunnel.message() != last_proxy_refusal_) {
                                        spdlog::warn("{}", tunnel.message());
                                        last_proxy_refusal_ = tunnel.message();
                                      } else {
                                        spdlog::debug("{}", tunnel.message());
                                      }
                                      deadline->cancel();
                                      return ScheduleReconnect();
                                    }
                                    if (!last_proxy_refusal_.empty()) {
                                      spdlog::info("the proxy lets the link through again");
                                      last_proxy_refusal_.clear();
                                    }
                                    handshake();
                                  });
                            });
      });
}

Result<AgentClient::Hop> AgentClient::FirstHop(const KernelAddress& kernel) const {
  if (config_.https_proxy.empty()) return Hop{kernel.host, kernel.port, false};
  AIRLOCK_ASSIGN_OR_RETURN(ProxyAddress proxy, ParseProxyUrl(config_.https_proxy));
  return Hop{proxy.host, proxy.port, true};
}

Result<std::string> AgentClient::ProxyRequest(const KernelAddress& kernel) const {
  if (config_.proxy_credentials.empty()) return ConnectRequest(kernel.host, kernel.port, "");
  auto credentials = plugin_host::ResolveSecretReference(config_.proxy_credentials);
  if (!credentials.ok()) {
    return credentials.status().WithContext("kernel.proxy_credentials");
  }
  return ConnectRequest(kernel.host, kernel.port, credentials->Reveal());
}

void AgentClient::OnConnected(std::shared_ptr<LinkConnection> link) {
  link_ = link;
  std::weak_ptr<LinkConnection> weak = link;
  LinkConnection::Handlers handlers;
  handlers.on_frame = [this, weak](LinkFrame frame) {
    if (auto l = weak.lock()) OnFrame(l, std::move(frame));
  };
  handlers.on_closed = [this, weak](const Status& why) {
    if (weak.lock() == link_) OnClosed(why);
  };
  link->Start(std::move(handlers));
  json live = json::array();
  {
    std::lock_guard lock(mu_);
    for (const auto& [stream, enclave] : enclaves_) live.push_back(stream);
  }
  link->SendControl({{"type", "hello"}, {"enclaves", live}, {"isolation", isolation_}});
  spdlog::info("connected to the kernel at {}", kernel().ToString());
  Heartbeat(weak);
}

void AgentClient::OnFrame(const std::shared_ptr<LinkConnection>& link, LinkFrame frame) {
  if (frame.type == LinkFrameType::kControl) {
    auto doc = enclave::ParseJsonObject(frame.payload, "control document");
    if (!doc.ok()) return link->Close(doc.status());
    return OnControl(link, *doc);
  }
  std::shared_ptr<AgentEnclave> enclave;
  {
    std::lock_guard lock(mu_);
    auto it = enclaves_.find(frame.stream);
    if (it != enclaves_.end()) enclave = it->second;
  }
  if (!enclave || frame.type != LinkFrameType::kEnclave) return;
  enclave::FrameType type;
  std::string_view payload;
  const Status decoded = DecodeEnclavePayload(frame.payload, &type, &payload);
  if (!decoded.ok()) return link->Close(decoded);
  if (type == enclave::FrameType::kSpec && !site_.empty()) {
    // The kernel leaves a site dataset's connector and object out: they
    // are this host's to know. An enclave whose spec cannot be completed
    // gets it as it came and fails on it.
    auto completed = site_.CompleteEnclaveSpec(payload);
    if (!completed.ok()) {
      spdlog::warn("enclave {}: {}", frame.stream, completed.status().message());
    } else {
      return enclave->FromKernel(type, *completed);
    }
  }
  enclave->FromKernel(type, payload);
}

void AgentClient::OnControl(const std::shared_ptr<LinkConnection>& link, const json& doc) {
  const std::string type = doc.value("type", "");
  if (type == "welcome") {
    if (!site_.empty()) SyncCatalog(link);
    heartbeat_ms_ = std::max<int64_t>(50, doc.value("heartbeat_interval_ms", int64_t{1000}));
    certificate_lifetime_s_ = doc.value("certificate_lifetime_seconds", int64_t{0});
    offline_after_ms_ =
        std::max<int64_t>(heartbeat_ms_ * 2, doc.value("offline_after_ms", offline_after_ms_));
    return;
  }
  if (type == "pong") return;
  if (type == "provision") {
    const uint32_t stream = doc.value("stream", 0u);
    json spec = doc.value("spec", json::object());
    asio::post(provision_pool_, [this, link, stream, spec]() mutable {
      // A request over the site's own datasets: their connectors' files,
      // environment and endpoints are added here.
      auto completed = site_.CompleteIsolatorSpec(spec);
      auto made = completed.ok()
                      ? AgentEnclave::Provision(isolator_, stream, spec, link, dial_pool_)
                      : Result<std::unique_ptr<AgentEnclave>>(completed.status());
      if (!made.ok()) {
        spdlog::warn("enclave {}: provisioning failed: {}", stream, made.status().ToString());
        link->SendControl({{"type", "provision_failed"},
                           {"stream", stream},
                           {"message", made.status().message()}});
        return;
      }
      std::shared_ptr<AgentEnclave> enclave(std::move(made).value());
      bool cancelled;
      {
        std::lock_guard lock(mu_);
        // The kernel gave up on it (terminate arrived first), or the link died
        // meanwhile: nobody controls this enclave, so it goes at once.
        cancelled = cancelled_.erase(stream) > 0 || link->closed();
        if (!cancelled) enclaves_[stream] = enclave;
      }
      if (cancelled) {
        enclave->Terminate();
        return;
      }
      spdlog::info("enclave {} provisioned", stream);
      link->SendControl({{"type", "provisioned"}, {"stream", stream}});
    });
    return;
  }
  if (type == "terminate") {
    const uint32_t stream = doc.value("stream", 0u);
    std::shared_ptr<AgentEnclave> enclave;
    {
      std::lock_guard lock(mu_);
      auto it = enclaves_.find(stream);
      if (it == enclaves_.end()) {
        // Still being provisioned (the kernel stopped waiting): cancel it.
        if (cancelled_.size() < 4096) cancelled_.insert(stream);
        return;
      }
      enclave = std::move(it->second);
      enclaves_.erase(it);
    }
    asio::post(provision_pool_, [enclave] { enclave->Terminate(); });
    spdlog::info("enclave {} terminated at the kernel's request", stream);
    return;
  }
  if (type == "renewed") {
    renewing_ = false;
    const std::string certificate = doc.value("certificate", "");
    Secret key(std::move(pending_key_pem_));
    pending_key_pem_.clear();
    if (certificate.empty() || !InspectCertificate(certificate).ok()) {
      spdlog::error("the kernel sent an unusable renewed certificate");
      return;
    }
    const Status written = WriteIdentity(identity_file(), certificate, key.Reveal());
    if (!written.ok()) {
      spdlog::error("cannot store the renewed certificate: {}", written.ToString());
    } else {
      spdlog::info("certificate renewed");
    }
    return;
  }
  if (type == "error") {
    renewing_ = false;
    spdlog::warn("kernel: {}", doc.value("message", ""));
    return;
  }
}

void AgentClient::Heartbeat(std::weak_ptr<LinkConnection> weak) {
  heartbeat_timer_.expires_after(std::chrono::milliseconds(heartbeat_ms_));
  heartbeat_timer_.async_wait([this, weak](boost::system::error_code ec) {
    if (ec) return;
    auto link = weak.lock();
    if (!link || link->closed() || link != link_) return;
    // A kernel that stopped answering (a silent network) is as gone as one
    // that closed the connection.
    if (std::chrono::steady_clock::now() - link->last_received() >
        std::chrono::milliseconds(offline_after_ms_)) {
      return link->Close(Status::DeadlineExceeded("the kernel stopped answering heartbeats"));
    }
    link->SendControl({{"type", "ping"}});
    MaybeRenew(link);
    Heartbeat(weak);
  });
}

void AgentClient::MaybeRenew(const std::shared_ptr<LinkConnection>& link) {
  if (renewing_) return;
  auto text = ReadSmallFile(identity_file());
  if (!text.ok()) return;
  auto info = InspectCertificate(*text);
  if (!info.ok()) return;
  const int64_t lifetime = certificate_lifetime_s_ > 0 ? certificate_lifetime_s_
                                                       : info->not_after_s - info->not_before_s;
  const int64_t remaining = info->not_after_s - NowSeconds();
  if (static_cast<double>(remaining) >
      static_cast<double>(lifetime) * config_.renew_remaining_fraction) {
    return;
  }
  auto request = MakeKeyAndCsr(config_.name);
  if (!request.ok()) return;
  renewing_ = true;
  pending_key_pem_ = std::string(request->key_pem.Reveal());
  link->SendControl({{"type", "renew"}, {"csr", request->pem}});
  spdlog::info("renewing the link certificate ({} s left)", remaining);
}

void AgentClient::OnClosed(const Status& why) {
  spdlog::warn("link to the kernel lost: {}", why.message());
  link_.reset();
  renewing_ = false;
  SecureWipe(pending_key_pem_.data(), pending_key_pem_.size());
  pending_key_pem_.clear();
  heartbeat_timer_.cancel();
  sync_timer_.cancel();
  TerminateAll();
  ScheduleReconnect();
}

void AgentClient::SyncCatalog(std::weak_ptr<LinkConnection> link) {
  asio::post(provision_pool_, [this, link] {
    const std::string id = "site-describe-" + RandomHex(8);
    DescribeRun run;
    run.isolator = &isolator_;
    run.isolator_spec = site_.DescribeIsolatorSpec(id);
    run.enclave_spec = site_.DescribeEnclaveSpec(id);
    for (const json& route : run.isolator_spec.value("egress", json::array())) {
      if (route.is_object()) run.allowed_endpoints.insert(route.value("endpoint", ""));
    }
    run.dial_pool = &dial_pool_;
    const auto started = std::chrono::steady_clock::now();
    Result<json> described = RunDescribeEnclave(run);
    if (!described.ok()) {
      spdlog::warn("describing this site's datasets failed: {}", described.status().message());
    } else {
      const json errors = described->value("errors", json::object());
      for (const auto& [name, reason] : errors.items()) {
        spdlog::warn("dataset {}: its connector could not describe it: {}", name,
                     reason.is_string() ? reason.get<std::string>() : reason.dump());
      }
    }
    const json catalog = site_.CatalogDocument(described, WallMicros());
    auto l = link.lock();
    if (!l || l->closed()) return;
    l->SendControl(catalog);
    spdlog::info("site catalog sent: {} dataset(s), described in {} ms", catalog["datasets"].size(),
                 std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now() - started)
                     .count());
    asio::post(io_, [this, link] { ScheduleSync(link); });
  });
}

void AgentClient::ScheduleSync(std::weak_ptr<LinkConnection> link) {
  auto l = link.lock();
  if (!l || l != link_) return;  // that link is gone; the next one syncs on welcome
  sync_timer_.expires_after(std::chrono::seconds(config_.sync_interval_seconds));
  sync_timer_.async_wait([this, link](boost::system::error_code ec) {
    if (!ec) SyncCatalog(link);
  });
}

void AgentClient::ScheduleReconnect() {
  // The next replica: the one just tried did not answer, or its link broke.
  next_kernel_ = (next_kernel_ + 1) % config_.kernels.size();
  reconnect_timer_.expires_after(std::chrono::milliseconds(config_.reconnect_ms));
  reconnect_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) Connect();
  });
}

void AgentClient::TerminateAll() {
  std::map<uint32_t, std::shared_ptr<AgentEnclave>> all;
  {
    std::lock_guard lock(mu_);
    all.swap(enclaves_);
    cancelled_.clear();
  }
  for (auto& [stream, enclave] : all) enclave->Terminate();
}

}  // namespace airlock::agent
