#include "kernel/agent/agent_registry.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <openssl/x509.h>
#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>

#include "kernel/agent/agent_ca.h"
#include "kernel/agent/enrollment_book.h"
#include "kernel/agent/kernel_bridge.h"
#include "kernel/agent/link_connection.h"
#include "kernel/audit/audit_log.h"
#include "kernel/common/crypto.h"
#include "kernel/enclave/channel.h"

namespace airlock::agent {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using nlohmann::json;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::chrono::seconds kHandshakeTimeout{10};
constexpr std::chrono::hours kServerCertificateLifetime{24 * 30};
constexpr size_t kMaxEnclavesPerHello = 4096;

int64_t NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string Bounded(const std::string& text, size_t limit = 200) {
  return text.size() <= limit ? text : text.substr(0, limit) + "...";
}

}  // namespace

// One configured agent.
struct AgentSlot {
  std::string name;
  std::string status = "never_connected";
  std::string reason;
  int64_t last_seen_us = 0;
  int64_t connected_at_us = 0;
  std::string certificate_serial;
  int64_t certificate_not_after_s = 0;
  bool egress_forwarded = false;
  bool hello_seen = false;
  std::shared_ptr<LinkConnection> link;
  std::map<uint32_t, std::shared_ptr<KernelBridge>> bridges;
  std::map<uint32_t, std::shared_ptr<std::promise<Status>>> provisioning;
  std::map<uint32_t, std::string> requests;  // stream -> request id, while the enclave lives
};

// Handlers capture the Impl by plain pointer: they run only on `thread`,
// which Stop() joins before the Impl can go, and a pointer (unlike a
// shared_ptr) forms no cycle through the io_context's pending handlers.
struct AgentRegistry::Impl {
  AgentsConfig config;
  AuditLog* audit = nullptr;
  std::unique_ptr<AgentCa> ca;
  asio::io_context io;
  ssl::context tls{ssl::context::tlsv13_server};
  std::unique_ptr<tcp::acceptor> acceptor;
  std::unique_ptr<asio::steady_timer> sweep;
  std::thread thread;
  uint16_t port = 0;
  std::once_flag stop_once;

  mutable std::mutex mu;
  std::map<std::string, AgentSlot> slots;  // GUARDED_BY(mu)
  uint32_t next_stream = 1;                // GUARDED_BY(mu)
  std::unique_ptr<EnrollmentBook> book;    // who enrolled, with which certificate
  SiteCatalog* sites = nullptr;            // the datasets sites own; may be null

  void Audit(json event) {
    const Status s = audit->Append(std::move(event));
    if (!s.ok()) spdlog::error("audit append failed: {}", s.ToString());
  }

  void Accept() {
    acceptor->async_accept([self = this](boost::system::error_code ec, tcp::socket socket) {
      if (ec) {
        if (ec == asio::error::operation_aborted || !self->acceptor->is_open()) return;
        return self->Accept();
      }
      self->Handshake(std::move(socket));
      self->Accept();
    });
  }

  void Handshake(tcp::socket socket) {
    auto stream = std::make_shared<std::unique_ptr<TlsStream>>(
        std::make_unique<TlsStream>(std::move(socket), tls));
    auto timer = std::make_shared<asio::steady_timer>(io, kHandshakeTimeout);
    timer->async_wait([stream](boost::system::error_code ec) {
      if (!ec && *stream) {
        boost::system::error_code ignored;
        (*stream)->lowest_layer().close(ignored);
      }
    });
    TlsStream& raw = **stream;
    raw.async_handshake(
        ssl::stream_base::server, [self = this, stream, timer](boost::system::error_code ec) {
          timer->cancel();
          if (ec) {
            spdlog::info("agent link refused during the TLS handshake: {}", ec.message());
            return;
          }
          std::unique_ptr<TlsStream> owned = std::move(*stream);
          X509* peer = SSL_get1_peer_certificate(owned->native_handle());
          if (peer == nullptr) return self->ServeEnrollment(std::move(owned));
          char cn[128] = {0};
          const int length =
              X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn, sizeof cn);
          std::string serial;
          if (BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(peer), nullptr)) {
            if (char* hex = BN_bn2hex(bn)) {
              serial = hex;
              OPENSSL_free(hex);
            }
            BN_free(bn);
          }
          struct tm parts {};
          int64_t not_after = 0;
          if (ASN1_TIME_to_tm(X509_get0_notAfter(peer), &parts) == 1) not_after = timegm(&parts);
          X509_free(peer);
          self->ServeLink(std::move(owned), length > 0 ? std::string(cn, length) : "", serial,
                          not_after);
        });
  }

  // --- enrollment ---------------------------------------------------------

  void ServeEnrollment(std::unique_ptr<TlsStream> stream) {
    auto link = LinkConnection::Make(std::move(stream), kMaxEnrollmentFrameBytes);
    std::weak_ptr<LinkConnection> weak = link;
    auto timer = std::make_shared<asio::steady_timer>(io, kHandshakeTimeout);
    timer->async_wait([weak](boost::system::error_code ec) {
      if (auto l = weak.lock(); l && !ec)
        l->Close(Status::DeadlineExceeded("enrollment timed out"));
    });
    LinkConnection::Handlers handlers;
    handlers.on_frame = [self = this, weak, timer](LinkFrame frame) {
      auto l = weak.lock();
      if (!l) return;
      timer->cancel();
      json reply = self->Enroll(frame);
      l->SendControl(reply);
      l->CloseAfterFlush(Status::Ok());
    };
    handlers.on_closed = [timer](const Status&) { timer->cancel(); };
    link->Start(std::move(handlers));
  }

  json Refuse(const std::string& agent, const std::string& reason) {
    json event = {{"event", "agent.enrollment_refused"}, {"reason", reason}};
    if (!agent.empty()) event["agent"] = Bounded(agent, 63);
    Audit(std::move(event));
    return {{"type", "error"}, {"message", "enrollment refused: " + reason}};
  }

  json Enroll(const LinkFrame& frame) {
    if (frame.type != LinkFrameType::kControl) return Refuse("", "expected an enroll document");
    auto doc = enclave::ParseJsonObject(frame.payload, "enrollment");
    if (!doc.ok() || doc->value("type", "") != "enroll") {
      return Refuse("", "expected an enroll document (or present a client certificate)");
    }
    const std::string agent = (*doc)["agent"].is_string() ? (*doc)["agent"].get<std::string>() : "";
    const std::string csr = (*doc)["csr"].is_string() ? (*doc)["csr"].get<std::string>() : "";
    Secret token((*doc)["token"].is_string() ? (*doc)["token"].get<std::string>() : "");
    (*doc)["token"] = nullptr;
    auto it = config.agents.find(agent);
    if (it == config.agents.end()) return Refuse("", "unknown agent");
    const std::string presented = Sha256Hex(token.Reveal());
    if (token.empty() || !ConstantTimeEquals(presented, it->second.enrollment_token_sha256)) {
      return Refuse(agent, "invalid enrollment token");
    }
    {
      auto previous = book->Find(agent);
      if (!previous.ok()) {
        spdlog::error("agent enrollment: {}", previous.status().message());
        return Refuse(agent, "the kernel could not read the enrollments");
      }
      if (*previous && (*previous)->token_sha256 == it->second.enrollment_token_sha256) {
        return Refuse(agent, "enrollment token already used (configure a new one to re-enroll)");
      }
    }
    auto signed_cert =
        ca->SignClientCsr(csr, agent, std::chrono::seconds(config.certificate_lifetime_seconds));
    if (!signed_cert.ok()) return Refuse(agent, signed_cert.status().message());
    auto info = InspectCertificate(*signed_cert);
    EnrollmentRecord record;
    record.token_sha256 = it->second.enrollment_token_sha256;
    record.enrolled_at_us = NowMicros();
    record.serial = info.ok() ? info->serial_hex : "";
    auto recorded = book->Enroll(agent, record);
    if (!recorded.ok()) {
      spdlog::error("agent enrollment: {}", recorded.status().message());
      return Refuse(agent, "the kernel could not record the enrollment");
    }
    // Another replica took the same token first.
    if (!*recorded) {
      return Refuse(agent, "enrollment token already used (configure a new one to re-enroll)");
    }
    Audit({{"event", "agent.enrolled"}, {"agent", agent}});
    Audit({{"event", "agent.certificate_issued"},
           {"agent", agent},
           {"serial", info.ok() ? info->serial_hex : ""},
           {"not_after_s", info.ok() ? info->not_after_s : 0}});
    return {{"type", "enrolled"}, {"certificate", *signed_cert}, {"ca", ca->certificate_pem()}};
  }

  // --- links --------------------------------------------------------------

  void ServeLink(std::unique_ptr<TlsStream> stream, const std::string& agent,
                 const std::string& serial, int64_t not_after) {
    auto link = LinkConnection::Make(std::move(stream), kMaxLinkFrameBytes);
    std::shared_ptr<LinkConnection> replaced;
    bool superseded = false;
    auto found = book->Find(agent);
    if (!found.ok()) {
      spdlog::error("agent link of '{}' refused: {}", agent, found.status().message());
      link->Close(Status::Unavailable("the kernel cannot read its enrollments"));
      return;
    }
    const EnrollmentRecord record = found->value_or(EnrollmentRecord{});
    {
      std::lock_guard lock(mu);
      auto it = slots.find(agent);
      if (it == slots.end()) {
        spdlog::warn("agent link refused: certificate names no configured agent");
        link->Close(Status::PermissionDenied("unknown agent"));
        return;
      }
      // Only the latest certificate (or the one it replaced, should the agent
      // have missed the renewal's answer) opens a link: a renewal or a new
      // enrollment retires older certificates before they expire.
      if (serial.empty() || (serial != record.serial && serial != record.previous_serial)) {
        superseded = true;
      } else {
        replaced = std::move(it->second.link);
        it->second.link = link;
      }
    }
    if (superseded) {
      spdlog::warn("agent link refused: a superseded certificate for agent '{}'", agent);
      Audit({{"event", "agent.connection_refused"},
             {"agent", agent},
             {"certificate_serial", serial},
             {"reason", "certificate superseded by a newer one"}});
      link->Close(Status::PermissionDenied("certificate superseded"));
      return;
    }
    {
      std::lock_guard lock(mu);
      auto it = slots.find(agent);
      it->second.hello_seen = false;
      it->second.certificate_serial = serial;
      it->second.certificate_not_after_s = not_after;
    }
    if (replaced) replaced->Close(Status::Unavailable("replaced by a newer connection"));
    std::weak_ptr<LinkConnection> weak = link;
    LinkConnection::Handlers handlers;
    handlers.on_frame = [self = this, agent, weak](LinkFrame frame) {
      if (auto l = weak.lock()) self->OnFrame(agent, l, std::move(frame));
    };
    handlers.on_closed = [self = this, agent, weak](const Status& why) {
      self->OnClosed(agent, weak.lock(), why);
    };
    link->Start(std::move(handlers));
  }

  void OnFrame(const std::string& agent, const std::shared_ptr<LinkConnection>& link,
               LinkFrame frame) {
    std::shared_ptr<KernelBridge> bridge;
    {
      std::lock_guard lock(mu);
      AgentSlot& slot = slots[agent];
      if (slot.link != link) return;
      slot.last_seen_us = NowMicros();
      if (frame.type != LinkFrameType::kControl) {
        if (!slot.hello_seen) return link->Close(Status::InvalidArgument("data before hello"));
        auto it = slot.bridges.find(frame.stream);
        if (it != slot.bridges.end()) bridge = it->second;
      }
    }
    if (frame.type == LinkFrameType::kEnclave) {
      if (!bridge) return;
      enclave::FrameType type;
      std::string_view payload;
      const Status decoded = DecodeEnclavePayload(frame.payload, &type, &payload);
      if (!decoded.ok()) return link->Close(decoded);
      return bridge->FromAgent(type, payload);
    }
    if (frame.type == LinkFrameType::kClosed) {
      if (bridge) bridge->EndedByAgent();
      return;
    }
    auto doc = enclave::ParseJsonObject(frame.payload, "control document");
    if (!doc.ok()) return link->Close(doc.status());
    OnControl(agent, link, *doc);
  }

  void OnControl(const std::string& agent, const std::shared_ptr<LinkConnection>& link,
                 const json& doc) {
    const std::string type = doc.value("type", "");
    if (type == "hello") return OnHello(agent, link, doc);
    if (type == "ping") return link->SendControl({{"type", "pong"}});
    if (type == "renew") return OnRenew(agent, link, doc);
    if (type == "egress") return OnEgress(agent, doc);
    if (type == "catalog") return OnCatalog(agent, doc);
    if (type == "provisioned" || type == "provision_failed") {
      const uint32_t stream = doc.value("stream", 0u);
      std::shared_ptr<std::promise<Status>> waiter;
      {
        std::lock_guard lock(mu);
        auto& pending = slots[agent].provisioning;
        if (auto it = pending.find(stream); it != pending.end()) {
          waiter = it->second;
          pending.erase(it);
        }
      }
      if (waiter) {
        waiter->set_value(type == "provisioned"
                              ? Status::Ok()
                              : Status::Unavailable(Bounded(doc.value("message", "failed"), 1000)));
      }
      return;
    }
    link->Close(Status::InvalidArgument("unknown control document"));
  }

  // The agent served an enclave's egress dial on its host: audit it like the
  // kernel's own (enclave.egress), with the request and the agent.
  void OnEgress(const std::string& agent, const json& doc) {
    const uint32_t stream = doc.value("stream", 0u);
    std::string request_id;
    {
      std::lock_guard lock(mu);
      auto& slot = slots[agent];
      auto it = slot.requests.find(stream);
      if (it == slot.requests.end()) return;  // not an enclave of this agent
      request_id = it->second;
    }
    json event = {{"event", "enclave.egress"},
                  {"request_id", request_id},
                  {"agent", agent},
                  {"endpoint", Bounded(doc.value("endpoint", ""), 300)},
                  {"outcome", Bounded(doc.value("outcome", ""), 64)}};
    if (doc.contains("reason") && doc["reason"].is_string()) {
      event["reason"] = Bounded(doc["reason"].get<std::string>(), 1000);
    }
    Audit(std::move(event));
  }

  // A site's metadata sync. Audited when what the site owns changed (or
  // was refused); the catalog's freshness follows every sync.
  void OnCatalog(const std::string& agent, const json& doc) {
    if (sites == nullptr) return;
    auto replaced = sites->Replace(agent, doc, NowMicros());
    if (!replaced.ok()) {
      spdlog::warn("agent {}: catalog refused: {}", agent, replaced.status().message());
      Audit({{"event", "agent.catalog_refused"},
             {"agent", agent},
             {"reason", Bounded(replaced.status().message(), 1000)}});
      return;
    }
    if (!replaced->changed) return;
    json names = json::array();
    for (const SiteDataset& d : sites->All()) {
      if (d.agent == agent) names.push_back(d.info.name);
    }
    spdlog::info("agent {}: its site owns {} dataset(s)", agent, replaced->datasets);
    Audit({{"event", "agent.catalog_synced"}, {"agent", agent}, {"datasets", std::move(names)}});
  }

  void OnHello(const std::string& agent, const std::shared_ptr<LinkConnection>& link,
               const json& doc) {
    std::set<uint32_t> alive;
    if (auto e = doc.find("enclaves"); e != doc.end() && e->is_array()) {
      for (const auto& id : *e) {
        if (id.is_number_unsigned() && alive.size() < kMaxEnclavesPerHello) {
          alive.insert(id.get<uint32_t>());
        }
      }
    }
    std::vector<std::shared_ptr<KernelBridge>> resumed, lost;
    std::string serial;
    int64_t not_after = 0;
    {
      std::lock_guard lock(mu);
      AgentSlot& slot = slots[agent];
      slot.hello_seen = true;
      slot.status = "online";
      slot.reason.clear();
      slot.connected_at_us = NowMicros();
      const json isolation = doc.value("isolation", json::object());
      slot.egress_forwarded = isolation.is_object() && isolation.value("egress", "") == "forwarded";
      for (auto& [stream, bridge] : slot.bridges) {
        (alive.count(stream) ? resumed : lost).push_back(bridge);
      }
      serial = slot.certificate_serial;
      not_after = slot.certificate_not_after_s;
    }
    for (auto& b : resumed) b->Online(link);
    for (auto& b : lost) {
      b->Lost("the enclave on agent '" + agent + "' was lost while the agent was offline");
    }
    Audit({{"event", "agent.connected"},
           {"agent", agent},
           {"certificate_serial", serial},
           {"certificate_not_after_s", not_after}});
    link->SendControl({{"type", "welcome"},
                       {"heartbeat_interval_ms", config.heartbeat_interval_ms},
                       {"offline_after_ms", config.offline_after_ms},
                       {"certificate_lifetime_seconds", config.certificate_lifetime_seconds}});
  }

  void OnRenew(const std::string& agent, const std::shared_ptr<LinkConnection>& link,
               const json& doc) {
    const std::string csr = doc.value("csr", "");
    auto signed_cert =
        ca->SignClientCsr(csr, agent, std::chrono::seconds(config.certificate_lifetime_seconds));
    if (!signed_cert.ok()) {
      return link->SendControl({{"type", "error"}, {"message", signed_cert.status().message()}});
    }
    auto info = InspectCertificate(*signed_cert);
    if (!info.ok()) {
      return link->SendControl({{"type", "error"}, {"message", "renewal failed"}});
    }
    auto current = book->Find(agent);
    auto renewed =
        current.ok() && *current
            ? book->Renew(agent, (*current)->serial, info->serial_hex)
            : Result<bool>(current.ok() ? Status::NotFound("not enrolled") : current.status());
    if (!renewed.ok() || !*renewed) {
      if (!renewed.ok()) spdlog::error("agent renewal: {}", renewed.status().message());
      return link->SendControl(
          {{"type", "error"}, {"message", "the kernel could not record the renewal"}});
    }
    {
      std::lock_guard lock(mu);
      AgentSlot& slot = slots[agent];
      slot.certificate_serial = info->serial_hex;
      slot.certificate_not_after_s = info->not_after_s;
    }
    Audit({{"event", "agent.certificate_renewed"},
           {"agent", agent},
           {"serial", info->serial_hex},
           {"not_after_s", info->not_after_s}});
    link->SendControl({{"type", "renewed"}, {"certificate", *signed_cert}});
  }

  void OnClosed(const std::string& agent, const std::shared_ptr<LinkConnection>& link,
                const Status& why) {
    std::vector<std::shared_ptr<KernelBridge>> bridges;
    std::vector<std::shared_ptr<std::promise<Status>>> waiters;
    const std::string reason = why.ok() ? "connection closed" : why.message();
    bool was_online;
    {
      std::lock_guard lock(mu);
      AgentSlot& slot = slots[agent];
      if (link == nullptr || slot.link != link) return;  // an older, replaced link
      slot.link.reset();
      was_online = slot.status == "online";
      slot.status = "offline";
      slot.reason = reason;
      for (auto& [stream, bridge] : slot.bridges) bridges.push_back(bridge);
      for (auto& [stream, waiter] : slot.provisioning) waiters.push_back(waiter);
      slot.provisioning.clear();
    }
    for (auto& b : bridges) b->Offline(reason);
    for (auto& w : waiters)
      w->set_value(Status::Unavailable("agent '" + agent + "' went offline: " + reason));
    if (was_online) Audit({{"event", "agent.disconnected"}, {"agent", agent}, {"reason", reason}});
  }

  // Closes links that went quiet or whose certificate expired.
  void Sweep() {
    sweep->expires_after(std::chrono::milliseconds(config.heartbeat_interval_ms));
    sweep->async_wait([self = this](boost::system::error_code ec) {
      if (ec) return;
      std::vector<std::pair<std::shared_ptr<LinkConnection>, Status>> to_close;
      const auto now = Clock::now();
      const int64_t now_s = NowMicros() / 1000000;
      {
        std::lock_guard lock(self->mu);
        for (auto& [name, slot] : self->slots) {
          if (!slot.link) continue;
          if (now - slot.link->last_received() >
              std::chrono::milliseconds(self->config.offline_after_ms)) {
            to_close.emplace_back(
                slot.link,
                Status::DeadlineExceeded("no heartbeat for " +
                                         std::to_string(self->config.offline_after_ms) + " ms"));
          } else if (slot.certificate_not_after_s != 0 && slot.certificate_not_after_s < now_s) {
            to_close.emplace_back(slot.link,
                                  Status::Unauthenticated("the agent's certificate expired"));
          }
        }
      }
      for (auto& [link, why] : to_close) link->Close(why);
      self->Sweep();
    });
  }

  json SlotJson(const AgentSlot& slot) const {
    json out = {{"name", slot.name}, {"status", slot.status}, {"enclaves", slot.bridges.size()}};
    if (!slot.reason.empty()) out["reason"] = slot.reason;
    if (slot.last_seen_us != 0) out["last_seen_us"] = slot.last_seen_us;
    if (slot.connected_at_us != 0) out["connected_at_us"] = slot.connected_at_us;
    if (!slot.certificate_serial.empty()) {
      out["certificate"] = {{"serial", slot.certificate_serial},
                            {"not_after_s", slot.certificate_not_after_s}};
    }
    return out;
  }
};

// RemoteEnclave over a bridge.
class RemoteAgentEnclave : public RemoteEnclave {
 public:
  RemoteAgentEnclave(std::weak_ptr<AgentRegistry::Impl> registry, std::string agent,
                     std::shared_ptr<KernelBridge> bridge, bool egress_forwarded)
      : registry_(std::move(registry)),
        agent_(std::move(agent)),
        bridge_(std::move(bridge)),
        egress_forwarded_(egress_forwarded) {}
  ~RemoteAgentEnclave() override { (void)Terminate(); }

  int ReleaseControlFd() override { return bridge_ ? bridge_->ReleaseSupervisorFd() : -1; }
  bool egress_forwarded() const override { return egress_forwarded_; }

  Status Terminate() override {
    if (!bridge_) return Status::Ok();
    std::shared_ptr<LinkConnection> link;
    if (auto registry = registry_.lock()) {
      std::lock_guard lock(registry->mu);
      auto it = registry->slots.find(agent_);
      if (it != registry->slots.end()) {
        it->second.bridges.erase(bridge_->stream());
        it->second.requests.erase(bridge_->stream());
        link = it->second.link;
      }
    }
    if (link) link->SendControl({{"type", "terminate"}, {"stream", bridge_->stream()}});
    bridge_->Close();
    bridge_.reset();
    return Status::Ok();
  }

 private:
  std::weak_ptr<AgentRegistry::Impl> registry_;
  std::string agent_;
  std::shared_ptr<KernelBridge> bridge_;
  bool egress_forwarded_;
};

AgentRegistry::AgentRegistry(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

AgentRegistry::~AgentRegistry() {
  Stop();
}

Result<std::unique_ptr<AgentRegistry>> AgentRegistry::Start(const AgentsConfig& config,
                                                            AuditLog* audit,
                                                            std::unique_ptr<EnrollmentBook> book,
                                                            SiteCatalog* sites) {
  auto impl = std::make_shared<Impl>();
  impl->config = config;
  impl->audit = audit;
  impl->sites = sites;
  if (!book) {
    // One kernel keeps its enrollments beside its state, wherever its CA is.
    std::error_code ec;
    std::filesystem::create_directories(config.state_dir, ec);
    if (ec || ::chmod(config.state_dir.c_str(), 0700) != 0) {
      return Status::FailedPrecondition("cannot create the agents' state directory " +
                                        config.state_dir);
    }
    book = OpenFileEnrollmentBook(config.state_dir);
  }
  impl->book = std::move(book);
  AIRLOCK_ASSIGN_OR_RETURN(impl->ca, AgentCa::OpenOrCreate(config.ca_dir));
  // Replicas share one CA: an agent's certificate must open a link with any
  // of them, and each must verify the others' agents.
  const std::string fingerprint = Sha256Hex(impl->ca->certificate_pem());
  AIRLOCK_ASSIGN_OR_RETURN(const std::string pinned, impl->book->PinCa(fingerprint));
  if (pinned != fingerprint) {
    return Status::FailedPrecondition(
        "the agent CA in " + config.ca_dir + " (certificate SHA-256 " + fingerprint.substr(0, 16) +
        "...) is not the one the other replicas use (" + pinned.substr(0, 16) + "..., " +
        impl->book->Describe() +
        "): give every replica the same ca.key and ca.crt (agents.ca_dir)");
  }
  for (const auto& [name, entry] : config.agents) impl->slots[name].name = name;
  AIRLOCK_ASSIGN_OR_RETURN(KeyAndPem server, impl->ca->IssueServerCertificate(
                                                 config.server_names, kServerCertificateLifetime));
  try {
    impl->tls.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                          ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                          ssl::context::no_tlsv1_1 | ssl::context::no_tlsv1_2);
    impl->tls.use_certificate_chain(asio::buffer(server.pem));
    impl->tls.use_private_key(
        asio::buffer(server.key_pem.Reveal().data(), server.key_pem.Reveal().size()),
        ssl::context::pem);
    impl->tls.add_certificate_authority(asio::buffer(impl->ca->certificate_pem()));
    // A client certificate is optional at the TLS layer (enrollment has
    // none); one that is presented must chain to this CA.
    impl->tls.set_verify_mode(ssl::verify_peer);
    // Agents offer the link's ALPN protocol; it is chosen when offered.
    SSL_CTX_set_alpn_select_cb(
        impl->tls.native_handle(),
        [](SSL*, const unsigned char** out, unsigned char* out_length, const unsigned char* in,
           unsigned int in_length, void*) -> int {
          unsigned char* chosen = nullptr;
          const int outcome = SSL_select_next_proto(
              &chosen, out_length, reinterpret_cast<const unsigned char*>(kLinkAlpnWire.data()),
              static_cast<unsigned>(kLinkAlpnWire.size()), in, in_length);
          if (outcome != OPENSSL_NPN_NEGOTIATED) return SSL_TLSEXT_ERR_NOACK;
          *out = chosen;
          return SSL_TLSEXT_ERR_OK;
        },
        nullptr);
    impl->acceptor = std::make_unique<tcp::acceptor>(impl->io);
    tcp::endpoint endpoint(asio::ip::make_address(config.listen_address), config.port);
    impl->acceptor->open(endpoint.protocol());
    impl->acceptor->set_option(tcp::acceptor::reuse_address(true));
    impl->acceptor->bind(endpoint);
    impl->acceptor->listen();
    impl->port = impl->acceptor->local_endpoint().port();
  } catch (const std::exception& e) {
    return Status::Unavailable("agents.listen_address/port: cannot listen on " +
                               config.listen_address + ":" + std::to_string(config.port) + ": " +
                               e.what());
  }
  server.key_pem.Wipe();
  impl->sweep = std::make_unique<asio::steady_timer>(impl->io);
  impl->Accept();
  impl->Sweep();
  impl->thread = std::thread([raw = impl.get()] {
    for (;;) {
      try {
        raw->io.run();
        return;
      } catch (const std::exception& e) {
        spdlog::error("agent link loop: {}", e.what());
      }
    }
  });
  spdlog::info("listening for agents on {}:{}", config.listen_address, impl->port);
  return std::unique_ptr<AgentRegistry>(new AgentRegistry(std::move(impl)));
}

void AgentRegistry::Adopt(int fd) {
  asio::post(impl_->io, [impl = impl_, fd] {
    sockaddr_storage address{};
    socklen_t length = sizeof address;
    boost::system::error_code ec;
    tcp::socket socket(impl->io);
    if (!impl->acceptor->is_open() ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      ::close(fd);
      return;
    }
    socket.assign(address.ss_family == AF_INET6 ? tcp::v6() : tcp::v4(), fd, ec);
    if (ec) {
      ::close(fd);
      return;
    }
    impl->Handshake(std::move(socket));
  });
}

void AgentRegistry::Stop() {
  std::call_once(impl_->stop_once, [this] {
    std::vector<std::shared_ptr<LinkConnection>> links;
    std::vector<std::shared_ptr<KernelBridge>> bridges;
    {
      std::lock_guard lock(impl_->mu);
      for (auto& [name, slot] : impl_->slots) {
        if (slot.link) links.push_back(slot.link);
        for (auto& [stream, bridge] : slot.bridges) bridges.push_back(bridge);
      }
    }
    asio::post(impl_->io, [impl = impl_.get()] {
      boost::system::error_code ignored;
      impl->acceptor->close(ignored);
      impl->sweep->cancel();
    });
    for (auto& link : links) link->Close(Status::Unavailable("kernel shutting down"));
    for (auto& bridge : bridges) bridge->Close();
    // Let the closes run, then stop the loop.
    asio::post(impl_->io, [impl = impl_.get()] { impl->io.stop(); });
    if (impl_->thread.joinable()) impl_->thread.join();
  });
}

uint16_t AgentRegistry::port() const {
  return impl_->port;
}

json AgentRegistry::StatusJson() const {
  json agents = json::array();
  std::lock_guard lock(impl_->mu);
  for (const auto& [name, slot] : impl_->slots) agents.push_back(impl_->SlotJson(slot));
  return {{"listen", {{"address", impl_->config.listen_address}, {"port", impl_->port}}},
          {"ca_certificate_file", impl_->ca->certificate_file()},
          {"agents", agents}};
}

json AgentRegistry::AgentStatus(const std::string& agent) const {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->slots.find(agent);
  if (it == impl_->slots.end()) return {{"name", agent}, {"status", "unknown"}};
  return impl_->SlotJson(it->second);
}

std::map<std::string, int64_t> AgentRegistry::LinkedAgents() const {
  std::map<std::string, int64_t> linked;
  std::lock_guard lock(impl_->mu);
  for (const auto& [name, slot] : impl_->slots) {
    if (slot.link && slot.hello_seen) linked[name] = slot.connected_at_us;
  }
  return linked;
}

Result<std::unique_ptr<RemoteEnclave>> AgentRegistry::Provision(const std::string& agent,
                                                                const std::string& request_id,
                                                                const json& isolator_spec) {
  std::shared_ptr<LinkConnection> link;
  std::shared_ptr<KernelBridge> bridge;
  auto waiter = std::make_shared<std::promise<Status>>();
  bool forwarded = false;
  uint32_t stream = 0;
  {
    std::lock_guard lock(impl_->mu);
    auto it = impl_->slots.find(agent);
    if (it == impl_->slots.end()) return Status::NotFound("unknown agent '" + agent + "'");
    AgentSlot& slot = it->second;
    if (!slot.link || !slot.hello_seen) {
      return Status::Unavailable("agent '" + agent + "' is offline" +
                                 (slot.reason.empty() ? std::string() : ": " + slot.reason));
    }
    link = slot.link;
    forwarded = slot.egress_forwarded;
    stream = impl_->next_stream++;
    std::weak_ptr<LinkConnection> weak_link = link;
    auto opened = KernelBridge::Open(agent, stream, [weak_link, stream] {
      // The supervisor closed the enclave: the agent destroys it.
      if (auto l = weak_link.lock()) l->SendControl({{"type", "terminate"}, {"stream", stream}});
    });
    if (!opened.ok()) return opened.status();
    bridge = *opened;
    bridge->Online(link);
    slot.bridges[stream] = bridge;
    slot.requests[stream] = request_id;
    slot.provisioning[stream] = waiter;
  }
  link->SendControl({{"type", "provision"},
                     {"stream", stream},
                     {"request_id", request_id},
                     {"spec", isolator_spec}});
  auto enclave = std::make_unique<RemoteAgentEnclave>(impl_, agent, bridge, forwarded);
  auto future = waiter->get_future();
  Status outcome;
  if (future.wait_for(std::chrono::milliseconds(impl_->config.provision_timeout_ms)) !=
      std::future_status::ready) {
    {
      std::lock_guard lock(impl_->mu);
      impl_->slots[agent].provisioning.erase(stream);
    }
    outcome = Status::DeadlineExceeded("agent '" + agent + "' did not provision in time");
  } else {
    outcome = future.get();
  }
  if (!outcome.ok()) {
    (void)enclave->Terminate();
    return outcome;
  }
  return std::unique_ptr<RemoteEnclave>(std::move(enclave));
}

}  // namespace airlock::agent
