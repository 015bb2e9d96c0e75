#include "kernel/notify/notification_composer.h"

#include <algorithm>
#include <chrono>

#include "kernel/audit/audit_chain.h"

namespace airlock {
namespace {

using nlohmann::json;

constexpr int64_t kMicros = 1000000;

std::string Timestamp(int64_t unix_us) {
  return audit_internal::FormatTimestamp(
      std::chrono::system_clock::time_point(std::chrono::microseconds(unix_us)));
}

bool Wants(const std::vector<std::string>& list, const std::string& value) {
  return list.empty() || std::find(list.begin(), list.end(), value) != list.end();
}

// Whether a notifier for `tenants` tells of a request of `tenant`.
bool CarriesTenant(const std::vector<std::string>& tenants, const std::string& tenant) {
  return Wants(tenants, "*") || Wants(tenants, tenant);
}

// What the requester is told of, by the state the request moved to. The
// decisions the policy made at once (denied, approved at submission) are
// not here: the requester had the answer to their ask.
std::optional<std::string> RequesterEvent(RequestState to, RequestState from) {
  switch (to) {
    case RequestState::kApproved:
    case RequestState::kDenied:
      // Told only when someone decided after the requester had left.
      if (from != RequestState::kPendingApproval) return std::nullopt;
      return "request." + std::string(RequestStateName(to));
    case RequestState::kReady:
    case RequestState::kExpired:
    case RequestState::kClosed:
    case RequestState::kFailed:
    case RequestState::kCancelled:
      return "request." + std::string(RequestStateName(to));
    default:
      return std::nullopt;
  }
}

}  // namespace

NotificationComposer::NotificationComposer(const NotificationsConfig& config)
    : console_url_(config.console_url),
      expiring_notice_us_(config.expiring_notice_seconds * kMicros) {
  for (const auto& [name, entry] : config.notifiers) {
    routes_.push_back({name, entry.events, entry.audiences, entry.tenants});
  }
}

std::vector<OutboxMessage> NotificationComposer::ForTransition(
    const RequestRecord& record, RequestState from, const std::optional<std::string>& actor) const {
  std::vector<OutboxMessage> out;
  if (routes_.empty()) return out;
  const std::string version_key = record.id + "/v" + std::to_string(record.version);
  if (record.state == RequestState::kPendingApproval) {
    Compose(record, "request.pending_approval", "approvers", version_key, record.updated_at_us,
            &out);
    return out;
  }
  const auto event = RequesterEvent(record.state, from);
  if (!event) return out;
  // What the requester did themselves (closing early, cancelling) needs no telling.
  if (actor && *actor == record.requester_subject()) return out;
  // Access someone else ended is revoked, not just closed.
  const std::string told =
      record.state == RequestState::kClosed && actor ? std::string(kRevokedEvent) : *event;
  Compose(record, told, "requester", version_key, record.updated_at_us, &out);
  if (record.state == RequestState::kReady) ComposeExpiring(record, &out);
  return out;
}

std::vector<OutboxMessage> NotificationComposer::ForEvent(
    const RequestRecord& record, const std::string& event,
    const std::optional<std::string>& actor) const {
  std::vector<OutboxMessage> out;
  if (routes_.empty()) return out;
  const std::string version_key = record.id + "/v" + std::to_string(record.version);
  if (event == kExtensionRequestedEvent) {
    Compose(record, event, "approvers", version_key, record.updated_at_us, &out);
    return out;
  }
  if (event != kExtendedEvent && event != kExtensionDeniedEvent) return out;
  if (!actor || *actor != record.requester_subject()) {
    Compose(record, event, "requester", version_key, record.updated_at_us, &out);
  }
  if (event == kExtendedEvent) ComposeExpiring(record, &out);
  return out;
}

void NotificationComposer::ComposeExpiring(const RequestRecord& record,
                                           std::vector<OutboxMessage>* out) const {
  if (expiring_notice_us_ <= 0 || record.deadline_us <= 0 ||
      record.deadline_us - record.updated_at_us <= expiring_notice_us_) {
    return;
  }
  // Due before the window ends; the dispatcher drops it if the request is
  // no longer ready with this window by then (ExpiringStillTrue).
  Compose(record, kExpiringEvent, "requester",
          record.id + "/expiring/" + std::to_string(record.deadline_us),
          record.deadline_us - expiring_notice_us_, out);
}

bool NotificationComposer::ExpiringStillTrue(const RequestRecord& record,
                                             const json& notification) {
  const json* request = notification.contains("request") ? &notification["request"] : nullptr;
  if (request == nullptr || !request->is_object()) return false;
  return record.state == RequestState::kReady &&
         request->value("not_after_us", int64_t{-1}) == record.deadline_us;
}

void NotificationComposer::Compose(const RequestRecord& record, const std::string& event,
                                   const std::string& audience, const std::string& key,
                                   int64_t due_us, std::vector<OutboxMessage>* out) const {
  json document;  // made once, for the first notifier that wants it
  const std::string tenant = RequesterTenant(record.requester);
  for (const Route& route : routes_) {
    if (!Wants(route.events, event) || !Wants(route.audiences, audience)) continue;
    if (!CarriesTenant(route.tenants, tenant)) continue;
    if (document.is_null()) document = Document(record, event, audience);
    OutboxMessage message;
    message.id = key + "/" + route.notifier;
    message.notifier = route.notifier;
    message.request_id = record.id;
    document["id"] = message.id;
    message.payload = document.dump(-1, ' ', false, json::error_handler_t::replace);
    message.created_at_us = record.updated_at_us;
    message.next_attempt_at_us = due_us;
    out->push_back(std::move(message));
  }
}

json NotificationComposer::Document(const RequestRecord& record, const std::string& event,
                                    const std::string& audience) const {
  const json& requester = record.requester;
  json who = {{"subject", requester.value("subject", "")}, {"kind", requester.value("kind", "")}};
  std::vector<std::string> emails;
  if (auto attributes = requester.find("attributes");
      attributes != requester.end() && attributes->is_object()) {
    if (auto email = attributes->find("email"); email != attributes->end() && email->is_string()) {
      who["email"] = *email;
      emails.push_back(email->get<std::string>());
    }
  }
  // Who approves: the decision's approvers, or the extension's when it is
  // the extension that waits.
  const json* extension = nullptr;
  if (auto it = record.request.find("extension"); it != record.request.end() && it->is_object()) {
    extension = &*it;
  }
  const bool extension_waits =
      event == kExtensionRequestedEvent && extension != nullptr && extension->contains("decision");
  const json& decision = extension_waits ? extension->at("decision") : record.decision;
  json approval = json::object();
  if (auto it = decision.find("approval"); it != decision.end() && it->is_object()) {
    approval = {{"groups", it->value("groups", json::array())}, {"count", it->value("count", 1)}};
  }
  json request = {{"id", record.id},
                  {"state", RequestStateName(record.state)},
                  {"requester", who},
                  {"datasets", record.request.value("datasets", json::array())},
                  {"purpose", record.request.value("purpose", "")},
                  {"window_seconds", record.request.value("window_seconds", 0)},
                  {"reason", record.reason},
                  {"policy_reason", record.decision.value("reason", "")},
                  {"approval", approval}};
  if (extension_waits) {
    request["extension"] = {
        {"window_end", Timestamp(extension->value("window_end_us", int64_t{0}))},
        {"added_seconds", extension->value("added_seconds", int64_t{0})},
        {"purpose", extension->value("purpose", "")}};
    request["policy_reason"] = decision.value("reason", "");
  }
  // A scheduled start still to come: when access begins.
  if (const int64_t start = record.request.value("not_before", int64_t{0});
      start > 0 && start * kMicros > record.updated_at_us) {
    request["not_before"] = Timestamp(start * kMicros);
  }
  if (record.deadline_us > 0 && (record.state == RequestState::kReady || event == kExpiringEvent ||
                                 record.state == RequestState::kPendingApproval)) {
    // The window's end once ready; the approval deadline while pending.
    request["not_after"] = Timestamp(record.deadline_us);
    request["not_after_us"] = record.deadline_us;
  }
  json recipients = {{"groups", json::array()}, {"subjects", json::array()}, {"emails", emails}};
  if (audience == "approvers") {
    recipients["groups"] = approval.value("groups", json::array());
    recipients["emails"] = json::array();
  } else {
    recipients["subjects"] = json::array({requester.value("subject", "")});
  }
  json document = {{"event", event},
                   {"occurred_at", Timestamp(record.updated_at_us)},
                   {"audience", audience},
                   {"recipients", std::move(recipients)},
                   {"request", std::move(request)}};
  if (!console_url_.empty()) {
    document["links"] = {{"console", console_url_ + "/console/#/requests/" + record.id}};
  }
  return document;
}

}  // namespace airlock
