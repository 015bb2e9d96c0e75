#include "kernel/core/request_view.h"

#include <string_view>

namespace airlock {
namespace {

using nlohmann::json;

std::string Dump(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

// Appends `"key":` then the value text. Keys are appended in the order
// nlohmann's object (a std::map) would serialise them.
void Member(std::string& out, std::string_view key, std::string_view value_text) {
  if (out.size() > 1) out += ',';
  out += '"';
  out += key;
  out += "\":";
  out += value_text;
}

}  // namespace

bool HasTunnelVerifier(const std::string& stored_tunnel) {
  return stored_tunnel.find("\"verifier\"") != std::string::npos;
}

std::string TunnelWithoutVerifier(const std::string& stored_tunnel) {
  json tunnel = json::parse(stored_tunnel, nullptr, /*allow_exceptions=*/false);
  if (!tunnel.is_object()) return stored_tunnel;
  tunnel.erase("verifier");
  return Dump(tunnel);
}

std::optional<std::string> StoredEnclaveAgent(const StoredRequestText& stored) {
  // Cheap test first: most enclaves run on this host.
  if (stored.enclave.find("\"agent\"") == std::string::npos) return std::nullopt;
  const json enclave = json::parse(stored.enclave, nullptr, /*allow_exceptions=*/false);
  if (!enclave.is_object()) return std::nullopt;
  const auto it = enclave.find("agent");
  if (it == enclave.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

Result<std::string> RenderRequestView(const StoredRequestText& stored, const json& live_progress,
                                      const std::optional<json>& agent_status) {
  std::string enclave_text;
  const bool changes_enclave = !live_progress.empty() || agent_status.has_value();
  if (changes_enclave) {
    json enclave = json::parse(stored.enclave, nullptr, /*allow_exceptions=*/false);
    if (enclave.is_null()) enclave = json::object();  // as operator[] on null would
    if (!enclave.is_object()) {
      return Status::Internal("stored request " + stored.id + " has a corrupt enclave document");
    }
    if (!live_progress.empty()) enclave["progress"] = live_progress;
    if (agent_status) enclave["agent_status"] = *agent_status;
    enclave_text = Dump(enclave);
  }
  std::string out;
  out.reserve(stored.requester.size() + stored.request.size() + stored.decision.size() +
              stored.approvals.size() + stored.enclave.size() + stored.tunnel.size() +
              stored.reason.size() + stored.id.size() + 256);
  out += '{';
  Member(out, "approvals", stored.approvals);
  Member(out, "created_at_us", std::to_string(stored.created_at_us));
  Member(out, "deadline_us", std::to_string(stored.deadline_us));
  Member(out, "decision", stored.decision);
  Member(out, "enclave", changes_enclave ? std::string_view(enclave_text) : stored.enclave);
  Member(out, "id", Dump(json(stored.id)));
  Member(out, "reason", Dump(json(stored.reason)));
  Member(out, "request", stored.request);
  Member(out, "requester", stored.requester);
  Member(out, "state", Dump(json(RequestStateName(stored.state))));
  // Cheap test first: only a request whose tunnel opened has a verifier.
  const bool hide_verifier = HasTunnelVerifier(stored.tunnel);
  const std::string tunnel_text = hide_verifier ? TunnelWithoutVerifier(stored.tunnel) : "";
  Member(out, "tunnel", hide_verifier ? std::string_view(tunnel_text) : stored.tunnel);
  Member(out, "updated_at_us", std::to_string(stored.updated_at_us));
  Member(out, "version", std::to_string(stored.version));
  out += '}';
  return out;
}

}  // namespace airlock
