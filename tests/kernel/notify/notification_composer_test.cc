// What is told to whom for each transition, and the keys that make a
// notification idempotent.
#include "kernel/notify/notification_composer.h"

#include <gtest/gtest.h>

namespace airlock {
namespace {

using nlohmann::json;

constexpr int64_t kMicros = 1000000;

NotificationsConfig Config() {
  NotificationsConfig config;
  config.console_url = "https://airlock.example.com";
  config.expiring_notice_seconds = 600;
  config.notifiers["everything"] = NotifierEntry{};
  NotifierEntry approvers;
  approvers.audiences = {"approvers"};
  config.notifiers["owners-only"] = approvers;
  NotifierEntry ready;
  ready.events = {"request.ready"};
  config.notifiers["ready-only"] = ready;
  return config;
}

RequestRecord Record(RequestState state, int64_t version) {
  RequestRecord r;
  r.id = "r-1";
  r.state = state;
  r.version = version;
  r.requester = {{"subject", "alice"},
                 {"kind", "human"},
                 {"groups", {"analysts"}},
                 {"attributes", {{"email", "alice@example.com"}}}};
  r.request = {{"datasets", {"orders"}}, {"purpose", "q3"}, {"window_seconds", 3600}};
  r.decision = {{"effect", "needs_approval"},
                {"reason", "orders needs an owner"},
                {"approval", {{"groups", {"owners"}}, {"count", 1}}}};
  r.updated_at_us = 1000 * kMicros;
  r.deadline_us = r.updated_at_us + 3600 * kMicros;
  r.reason = "why";
  return r;
}

std::vector<std::string> Ids(const std::vector<OutboxMessage>& messages) {
  std::vector<std::string> ids;
  for (const auto& m : messages) ids.push_back(m.id);
  return ids;
}

TEST(NotificationComposer, ApproversHearOfAPendingRequestFromThePolicysGroups) {
  NotificationComposer composer(Config());
  const auto messages = composer.ForTransition(Record(RequestState::kPendingApproval, 1),
                                               RequestState::kEvaluating, std::string("alice"));
  EXPECT_EQ(Ids(messages), (std::vector<std::string>{"r-1/v1/everything", "r-1/v1/owners-only"}));
  const json n = json::parse(messages.at(0).payload);
  EXPECT_EQ(n["id"], "r-1/v1/everything");
  EXPECT_EQ(n["event"], "request.pending_approval");
  EXPECT_EQ(n["audience"], "approvers");
  EXPECT_EQ(n["recipients"]["groups"], json::array({"owners"}));
  EXPECT_TRUE(n["recipients"]["emails"].empty());
  EXPECT_EQ(n["request"]["requester"]["email"], "alice@example.com");
  EXPECT_EQ(n["request"]["policy_reason"], "orders needs an owner");
  EXPECT_EQ(n["links"]["console"], "https://airlock.example.com/console/#/requests/r-1");
  EXPECT_EQ(messages.at(0).notifier, "everything");
  EXPECT_EQ(messages.at(0).request_id, "r-1");
  EXPECT_EQ(messages.at(0).next_attempt_at_us, 1000 * kMicros);  // due at once
}

// With tenants, a notifier tells only of the requests of the tenants it
// names ("*": every tenant's), never of another's.
TEST(NotificationComposer, ATenantsNotifierTellsOfThatTenantsRequestsOnly) {
  NotificationsConfig config;
  NotifierEntry acme;
  acme.tenants = {"acme"};
  config.notifiers["acme-chat"] = acme;
  NotifierEntry both;
  both.tenants = {"acme", "globex"};
  config.notifiers["both"] = both;
  NotifierEntry platform;
  platform.tenants = {"*"};
  config.notifiers["platform"] = platform;
  NotificationComposer composer(config);
  auto told = [&](const std::string& tenant) {
    RequestRecord r = Record(RequestState::kPendingApproval, 1);
    if (!tenant.empty()) r.requester["tenant"] = tenant;
    return Ids(composer.ForTransition(r, RequestState::kEvaluating, std::string("alice")));
  };
  EXPECT_EQ(told("acme"),
            (std::vector<std::string>{"r-1/v1/acme-chat", "r-1/v1/both", "r-1/v1/platform"}));
  EXPECT_EQ(told("globex"), (std::vector<std::string>{"r-1/v1/both", "r-1/v1/platform"}));
  EXPECT_EQ(told("initech"), std::vector<std::string>{"r-1/v1/platform"});
  EXPECT_EQ(told(""), std::vector<std::string>{"r-1/v1/platform"});
}

TEST(NotificationComposer, TheRequesterHearsWhatOthersDecidedAndWhenTheWindowEnds) {
  NotificationComposer composer(Config());
  // Approved by bob after waiting: told.
  auto approved = composer.ForTransition(Record(RequestState::kApproved, 2),
                                         RequestState::kPendingApproval, std::string("bob"));
  EXPECT_EQ(Ids(approved), (std::vector<std::string>{"r-1/v2/everything"}));
  const json n = json::parse(approved.at(0).payload);
  EXPECT_EQ(n["audience"], "requester");
  EXPECT_EQ(n["recipients"]["subjects"], json::array({"alice"}));
  EXPECT_EQ(n["recipients"]["emails"], json::array({"alice@example.com"}));
  // Allowed at once by the policy: alice had her answer; not told.
  EXPECT_TRUE(composer
                  .ForTransition(Record(RequestState::kApproved, 1), RequestState::kEvaluating,
                                 std::string("alice"))
                  .empty());
  EXPECT_TRUE(composer
                  .ForTransition(Record(RequestState::kDenied, 1), RequestState::kEvaluating,
                                 std::string("alice"))
                  .empty());
  // Ready: told, and the "ends soon" notice is queued for later.
  const RequestRecord ready = Record(RequestState::kReady, 4);
  auto told = composer.ForTransition(ready, RequestState::kIngesting, std::nullopt);
  const std::string expiring = "r-1/expiring/" + std::to_string(ready.deadline_us);
  EXPECT_EQ(Ids(told), (std::vector<std::string>{"r-1/v4/everything", "r-1/v4/ready-only",
                                                 expiring + "/everything"}));
  EXPECT_EQ(told.at(2).next_attempt_at_us, ready.deadline_us - 600 * kMicros);
  const json notice = json::parse(told.at(2).payload);
  EXPECT_EQ(notice["event"], "request.expiring");
  EXPECT_TRUE(NotificationComposer::ExpiringStillTrue(ready, notice));
  RequestRecord extended = ready;
  extended.deadline_us += 60 * kMicros;
  EXPECT_FALSE(NotificationComposer::ExpiringStillTrue(extended, notice));
  EXPECT_FALSE(NotificationComposer::ExpiringStillTrue(Record(RequestState::kClosed, 5), notice));
  // Closing it herself: nothing to tell; closed by someone else: told.
  EXPECT_TRUE(composer
                  .ForTransition(Record(RequestState::kClosed, 5), RequestState::kReady,
                                 std::string("alice"))
                  .empty());
  auto revoked = composer.ForTransition(Record(RequestState::kClosed, 5), RequestState::kReady,
                                        std::string("bob"));
  EXPECT_EQ(Ids(revoked), (std::vector<std::string>{"r-1/v5/everything"}));
  EXPECT_EQ(json::parse(revoked.at(0).payload)["event"], "request.revoked");
  // Closed with nobody named (the kernel ending it): closed.
  auto closed =
      composer.ForTransition(Record(RequestState::kClosed, 5), RequestState::kReady, std::nullopt);
  EXPECT_EQ(json::parse(closed.at(0).payload)["event"], "request.closed");
  // Approved with a start still to come: the notice says when.
  RequestRecord scheduled = Record(RequestState::kApproved, 2);
  scheduled.request["not_before"] = 5000;
  auto later =
      composer.ForTransition(scheduled, RequestState::kPendingApproval, std::string("bob"));
  EXPECT_EQ(json::parse(later.at(0).payload)["request"]["not_before"],
            "1970-01-01T01:23:20.000000Z");
  EXPECT_FALSE(json::parse(approved.at(0).payload)["request"].contains("not_before"));
  // Steps in between are nobody's news.
  EXPECT_TRUE(composer
                  .ForTransition(Record(RequestState::kProvisioning, 3), RequestState::kApproved,
                                 std::nullopt)
                  .empty());
}

// An extension waits for the extension's approvers (not the first
// decision's); once granted the requester hears of it and gets a new "ends
// soon" notice for the new end.
TEST(NotificationComposer, AnExtensionIsToldToItsApproversAndItsOutcomeToTheRequester) {
  NotificationComposer composer(Config());
  RequestRecord waiting = Record(RequestState::kReady, 6);
  waiting.request["extension"] = {{"window_end_us", waiting.deadline_us + 1800 * kMicros},
                                  {"added_seconds", 1800},
                                  {"purpose", "one more join"},
                                  {"decision",
                                   {{"effect", "needs_approval"},
                                    {"reason", "extensions need the stewards"},
                                    {"approval", {{"groups", {"stewards"}}, {"count", 1}}}}}};
  auto asked = composer.ForEvent(waiting, kExtensionRequestedEvent, std::string("alice"));
  EXPECT_EQ(Ids(asked), (std::vector<std::string>{"r-1/v6/everything", "r-1/v6/owners-only"}));
  const json n = json::parse(asked.at(0).payload);
  EXPECT_EQ(n["event"], "request.extension_requested");
  EXPECT_EQ(n["audience"], "approvers");
  EXPECT_EQ(n["recipients"]["groups"], json::array({"stewards"}));
  EXPECT_EQ(n["request"]["extension"]["added_seconds"], 1800);
  EXPECT_EQ(n["request"]["extension"]["purpose"], "one more join");
  EXPECT_EQ(n["request"]["policy_reason"], "extensions need the stewards");

  RequestRecord extended = Record(RequestState::kReady, 7);
  extended.deadline_us += 1800 * kMicros;
  auto granted = composer.ForEvent(extended, kExtendedEvent, std::string("bob"));
  const std::string expiring = "r-1/expiring/" + std::to_string(extended.deadline_us);
  EXPECT_EQ(Ids(granted),
            (std::vector<std::string>{"r-1/v7/everything", expiring + "/everything"}));
  EXPECT_EQ(json::parse(granted.at(0).payload)["audience"], "requester");
  EXPECT_EQ(granted.at(1).next_attempt_at_us, extended.deadline_us - 600 * kMicros);
  // Granted at once by the policy: alice has her answer; only the new notice.
  EXPECT_EQ(Ids(composer.ForEvent(extended, kExtendedEvent, std::string("alice"))),
            (std::vector<std::string>{expiring + "/everything"}));
  EXPECT_EQ(Ids(composer.ForEvent(Record(RequestState::kReady, 8), kExtensionDeniedEvent,
                                  std::string("bob"))),
            (std::vector<std::string>{"r-1/v8/everything"}));
  EXPECT_TRUE(
      composer.ForEvent(Record(RequestState::kReady, 8), "request.other", std::nullopt).empty());
}

TEST(NotificationComposer, AWindowShorterThanTheNoticeGetsNoEndsSoonNotice) {
  NotificationComposer composer(Config());
  RequestRecord ready = Record(RequestState::kReady, 4);
  ready.deadline_us = ready.updated_at_us + 300 * kMicros;
  for (const auto& m : composer.ForTransition(ready, RequestState::kIngesting, std::nullopt)) {
    EXPECT_EQ(m.id.find("expiring"), std::string::npos) << m.id;
  }
  EXPECT_TRUE(NotificationComposer(NotificationsConfig{}).empty());
}

}  // namespace
}  // namespace airlock
