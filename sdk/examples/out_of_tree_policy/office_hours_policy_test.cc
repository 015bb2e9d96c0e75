// Loads the built office-hours policy through its entry point, as the kernel
// does (airlock/testing/plugin_harness.hpp), and drives its C table: allow in
// office hours with the window capped, deny with a reason outside them or for
// anyone in no named group, refuse bad configurations, reload safely.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include <airlock/cpp/abi_util.hpp>
#include <airlock/cpp/values.hpp>
#include <airlock/testing/plugin_harness.hpp>

namespace {

using airlock::Json;
namespace conformance = airlock::conformance;

constexpr int64_t kWednesday = 1704240000;  // 2024-01-03T00:00:00Z
constexpr int64_t kSaturday = 1704499200;   // 2024-01-06T00:00:00Z
constexpr int64_t kHour = 3600;

const Json kConfig = {{"groups", {"analysts", "oncall"}},
                      {"opens_hour", 9},
                      {"closes_hour", 17},
                      {"max_window_seconds", 3600}};

const airlock_type_plugin_info& Manifest() {
  static const airlock_type_plugin_info* info = [] {
    auto entered = conformance::EnterPluginFile(OFFICE_HOURS_PLUGIN_PATH);
    if (!entered.ok()) {
      ADD_FAILURE() << entered.status().message();
      return static_cast<const airlock_type_plugin_info*>(nullptr);
    }
    return *entered;
  }();
  if (info == nullptr) std::abort();
  return *info;
}

const airlock_type_policy_vtable& Table() {
  return *static_cast<const airlock_type_policy_vtable*>(Manifest().vtable);
}

// What create() or check_config answered.
struct Refusal {
  airlock_type_status status;
  std::string message;
};

Refusal TryCreate(const std::string& config) {
  void* instance = nullptr;
  airlock::abi::ErrorHolder error;
  const airlock_type_status status =
      Table().create(config.data(), config.size(), &instance, error.get());
  if (instance != nullptr) {
    if (status != AIRLOCK_OK) ADD_FAILURE() << "create() failed but made an instance";
    Table().destroy(instance);
  }
  return {status, error.message()};
}

Refusal TryCheck(const std::string& config) {
  airlock::abi::ErrorHolder error;
  return {Manifest().check_config(config.data(), config.size(), error.get()), error.message()};
}

// One instance, created from `config`.
class Policy {
 public:
  explicit Policy(const Json& config) {
    const std::string text = config.dump();
    airlock::abi::ErrorHolder error;
    EXPECT_EQ(Table().create(text.data(), text.size(), &instance_, error.get()), AIRLOCK_OK)
        << error.message();
  }
  ~Policy() { Table().destroy(instance_); }
  Policy(const Policy&) = delete;
  Policy& operator=(const Policy&) = delete;

  // The decision for `subject` in `groups` asking at `now`, checked to be a
  // valid decision document.
  airlock::Decision Decide(const std::string& subject, const std::vector<std::string>& groups,
                           int64_t now) const {
    const Json input = {
        {"principal", {{"subject", subject}, {"kind", "human"}, {"groups", groups}}},
        {"request",
         {{"id", "r-1"}, {"datasets", {"orders"}}, {"window_seconds", 7200}, {"purpose", "x"}}},
        {"datasets", Json::array()},
        {"now", now}};
    airlock::abi::BufferHolder out;
    const airlock_type_status status = Evaluate(input.dump(), out);
    EXPECT_EQ(status, AIRLOCK_OK);
    auto decision = airlock::Decision::FromJson(Json::parse(out.view(), nullptr, false));
    EXPECT_TRUE(decision.ok()) << decision.status().message() << ": " << out.view();
    return decision.ok() ? *decision : airlock::Decision{};
  }

  airlock_type_status Evaluate(const std::string& input, airlock::abi::BufferHolder& out) const {
    airlock::abi::ErrorHolder error;
    return Table().evaluate(instance_, input.data(), input.size(), out.get(), error.get());
  }

  Refusal Reload(const std::string& config) const {
    airlock::abi::ErrorHolder error;
    return {Table().reload(instance_, config.data(), config.size(), error.get()), error.message()};
  }

 private:
  void* instance_ = nullptr;
};

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(OfficeHoursPolicy, LoadsAsAPolicyThroughItsEntryPoint) {
  ASSERT_TRUE(conformance::CheckManifest(Manifest(), AIRLOCK_KIND_POLICY, "policy").ok());
  EXPECT_STREQ(Manifest().name, "office-hours");
  ASSERT_GE(Table().size, AIRLOCK_POLICY_VTABLE_1_0_SIZE);
  EXPECT_NE(Table().reload, nullptr);
  EXPECT_NE(Manifest().check_config, nullptr);
}

TEST(OfficeHoursPolicy, AllowsANamedGroupInOfficeHours) {
  Policy policy(kConfig);
  const auto decision = policy.Decide("alice", {"staff", "oncall"}, kWednesday + 10 * kHour);
  EXPECT_EQ(decision.effect, airlock::Effect::kAllow) << decision.reason;
  EXPECT_EQ(decision.rule, "office-hours");
  EXPECT_EQ(decision.max_window_seconds, 3600);
  EXPECT_TRUE(Contains(decision.reason, "oncall")) << decision.reason;
}

TEST(OfficeHoursPolicy, TheWindowEndsAtClosingTime) {
  Policy policy(kConfig);
  const auto decision = policy.Decide("alice", {"analysts"}, kWednesday + 16 * kHour + 1800);
  EXPECT_EQ(decision.effect, airlock::Effect::kAllow) << decision.reason;
  EXPECT_EQ(decision.max_window_seconds, 1800);
}

TEST(OfficeHoursPolicy, DeniesOutsideOfficeHoursWithAReason) {
  Policy policy(kConfig);
  const struct {
    int64_t now;
    const char* said;
  } cases[] = {{kWednesday + 17 * kHour, "wed 17:00"},
               {kWednesday + 9 * kHour - 60, "wed 08:59"},
               {kSaturday + 10 * kHour, "sat 10:00"}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.said);
    const auto decision = policy.Decide("alice", {"analysts"}, c.now);
    EXPECT_EQ(decision.effect, airlock::Effect::kDeny);
    EXPECT_EQ(decision.rule, "office-hours");
    EXPECT_TRUE(Contains(decision.reason, "outside office hours")) << decision.reason;
    EXPECT_TRUE(Contains(decision.reason, c.said)) << decision.reason;
  }
  Json every_day = kConfig;
  every_day["weekdays_only"] = false;
  Policy weekends(every_day);
  EXPECT_EQ(weekends.Decide("alice", {"analysts"}, kSaturday + 10 * kHour).effect,
            airlock::Effect::kAllow);
}

TEST(OfficeHoursPolicy, DeniesAnyoneInNoNamedGroup) {
  Policy policy(kConfig);
  const auto decision = policy.Decide("bob", {"sales"}, kWednesday + 10 * kHour);
  EXPECT_EQ(decision.effect, airlock::Effect::kDeny);
  EXPECT_TRUE(Contains(decision.reason, "bob is in none of the groups")) << decision.reason;
  EXPECT_TRUE(Contains(decision.reason, "analysts, oncall")) << decision.reason;
}

TEST(OfficeHoursPolicy, TheHoursAreLocalToTheOffset) {
  Json berlin = kConfig;
  berlin["utc_offset_minutes"] = 60;
  Policy plus_one(berlin);
  // 08:30 UTC is 09:30 there: open, and closing is 7.5 hours away.
  EXPECT_EQ(plus_one.Decide("alice", {"analysts"}, kWednesday + 8 * kHour + 1800).effect,
            airlock::Effect::kAllow);
  // 16:30 UTC is 17:30 there: closed.
  EXPECT_EQ(plus_one.Decide("alice", {"analysts"}, kWednesday + 16 * kHour + 1800).effect,
            airlock::Effect::kDeny);
  Json new_york = kConfig;
  new_york["utc_offset_minutes"] = -300;
  Policy minus_five(new_york);
  // Thursday 02:00 UTC is Wednesday 21:00 there.
  const auto late = minus_five.Decide("alice", {"analysts"}, kWednesday + 26 * kHour);
  EXPECT_EQ(late.effect, airlock::Effect::kDeny);
  EXPECT_TRUE(Contains(late.reason, "wed 21:00 there")) << late.reason;
  EXPECT_TRUE(Contains(late.reason, "UTC-05:00")) << late.reason;
  // Friday 20:00 UTC is 15:00 there: open.
  EXPECT_EQ(minus_five.Decide("alice", {"analysts"}, kSaturday - 4 * kHour).effect,
            airlock::Effect::kAllow);
}

TEST(OfficeHoursPolicy, AnInputWithoutTheTimeIsDenied) {
  Policy policy(kConfig);
  const auto decision = policy.Decide("alice", {"analysts"}, 0);
  EXPECT_EQ(decision.effect, airlock::Effect::kDeny);
  EXPECT_TRUE(Contains(decision.reason, "no time")) << decision.reason;
}

TEST(OfficeHoursPolicy, AMalformedInputIsAnErrorNotADecision) {
  Policy policy(kConfig);
  for (const std::string input : {"{\"principal\"", "[]", R"({"request":{"datasets":["x"]}})"}) {
    SCOPED_TRACE(input);
    airlock::abi::BufferHolder out;
    EXPECT_EQ(policy.Evaluate(input, out), AIRLOCK_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(out.view().empty());
  }
}

TEST(OfficeHoursPolicy, BadConfigurationsAreRefusedNamingTheKey) {
  const auto with = [](const char* key, Json value) {
    Json config = kConfig;
    config[key] = std::move(value);
    return config.dump();
  };
  Json no_groups = kConfig;
  no_groups.erase("groups");
  const struct {
    std::string config;
    const char* names;
  } cases[] = {{no_groups.dump(), "groups"},
               {with("groups", Json::array()), "groups"},
               {with("groups", "analysts"), "groups"},
               {with("opening_hour", 8), "opening_hour"},
               {with("opens_hour", 17), "closes_hour"},
               {with("closes_hour", 25), "closes_hour"},
               {with("utc_offset_minutes", 900), "utc_offset_minutes"},
               {with("weekdays_only", "yes"), "weekdays_only"},
               {with("max_window_seconds", 0), "max_window_seconds"},
               {"{\"groups\": [", "not valid JSON"}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.config);
    const Refusal created = TryCreate(c.config);
    EXPECT_EQ(created.status, AIRLOCK_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(Contains(created.message, c.names)) << created.message;
    const Refusal checked = TryCheck(c.config);
    EXPECT_EQ(checked.status, AIRLOCK_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(checked.message, created.message);
  }
  EXPECT_EQ(TryCreate(kConfig.dump()).status, AIRLOCK_OK);
  EXPECT_EQ(TryCheck(kConfig.dump()).status, AIRLOCK_OK);
}

TEST(OfficeHoursPolicy, AFailedReloadKeepsThePolicyInForce) {
  Policy policy(kConfig);
  const int64_t ten = kWednesday + 10 * kHour;
  const Refusal refused = policy.Reload(R"({"groups": []})");
  EXPECT_EQ(refused.status, AIRLOCK_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(Contains(refused.message, "groups")) << refused.message;
  EXPECT_EQ(policy.Decide("alice", {"analysts"}, ten).effect, airlock::Effect::kAllow);

  EXPECT_EQ(policy.Reload(R"({"groups": ["auditors"], "max_window_seconds": 600})").status,
            AIRLOCK_OK);
  EXPECT_EQ(policy.Decide("alice", {"analysts"}, ten).effect, airlock::Effect::kDeny);
  const auto auditor = policy.Decide("carol", {"auditors"}, ten);
  EXPECT_EQ(auditor.effect, airlock::Effect::kAllow);
  EXPECT_EQ(auditor.max_window_seconds, 600);
}

}  // namespace
