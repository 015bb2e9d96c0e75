#include "kernel/core/event_hub.h"

#include <atomic>
#include <vector>

#include <gtest/gtest.h>

namespace airlock {
namespace {

TEST(EventHub, NumbersEventsAndGivesWhatCameAfterAnId) {
  EventHub hub(3);
  EXPECT_EQ(hub.last_id(), 0u);
  EXPECT_TRUE(hub.Since(0, 10).events.empty());
  EXPECT_FALSE(hub.Since(0, 10).reset);
  hub.Publish("r1", "request.pending_approval", "pending_approval", 1);
  hub.Publish("r1", "request.approved", "approved", 2);
  EXPECT_EQ(hub.last_id(), 2u);
  auto batch = hub.Since(0, 10);
  ASSERT_EQ(batch.events.size(), 2u);
  EXPECT_FALSE(batch.reset);
  EXPECT_EQ(batch.events[0].id, 1u);
  EXPECT_EQ(batch.events[1].event, "request.approved");
  EXPECT_EQ(batch.events[1].state, "approved");
  EXPECT_EQ(batch.events[1].version, 2);
  ASSERT_EQ(hub.Since(1, 10).events.size(), 1u);
  EXPECT_EQ(hub.Since(0, 1).events.size(), 1u);  // bounded
  EXPECT_TRUE(hub.Since(2, 10).events.empty());
  // An id never given resets.
  EXPECT_TRUE(hub.Since(7, 10).reset);
}

TEST(EventHub, AWatcherBehindTheKeptEventsIsToldToReset) {
  EventHub hub(2);
  for (int i = 0; i < 5; ++i) hub.Publish("r", "request.x", "x", i + 1);
  auto behind = hub.Since(1, 10);
  EXPECT_TRUE(behind.reset);
  ASSERT_EQ(behind.events.size(), 2u);
  EXPECT_EQ(behind.events[0].id, 4u);
  auto caught_up = hub.Since(3, 10);  // 4 and 5 are kept
  EXPECT_FALSE(caught_up.reset);
  EXPECT_EQ(caught_up.events.size(), 2u);
}

TEST(EventHub, AWaiterWakesOnceOnTheNextEventUnlessCancelled) {
  EventHub hub;
  std::atomic<int> woken{0}, cancelled{0};
  hub.Wait(0, [&] { ++woken; });
  const uint64_t token = hub.Wait(0, [&] { ++cancelled; });
  EXPECT_EQ(woken.load(), 0);
  hub.CancelWait(token);
  hub.Publish("r", "request.x", "x", 1);
  hub.Publish("r", "request.y", "y", 2);
  EXPECT_EQ(woken.load(), 1);
  EXPECT_EQ(cancelled.load(), 0);
  // Something after the id already: woken at once.
  hub.Wait(1, [&] { ++woken; });
  EXPECT_EQ(woken.load(), 2);
}

TEST(EventHub, WhatIsPublishedHereIsRelayedAndWhatCameThroughTheRelayIsNot) {
  EventHub hub;
  std::vector<HubEvent> relayed;
  hub.set_relay([&](const HubEvent& e) { relayed.push_back(e); });
  hub.Publish("req_here", "request.approved", "approved", 3);
  hub.PublishRelayed("req_there", "request.denied", "denied", 2);
  ASSERT_EQ(relayed.size(), 1u);
  EXPECT_EQ(relayed[0].request_id, "req_here");
  EXPECT_EQ(relayed[0].id, 1u);
  // Both are this hub's events, numbered in the order they came.
  auto all = hub.Since(0, 10);
  ASSERT_EQ(all.events.size(), 2u);
  EXPECT_EQ(all.events[1].request_id, "req_there");
  EXPECT_EQ(all.events[1].id, 2u);
}

TEST(EventHub, ARelayedEventSurvivesTheWireWithoutItsNumber) {
  const HubEvent sent{41, "req_1", "request.ready", "ready", 7};
  const auto back = DecodeRelayedEvent(EncodeRelayedEvent(sent));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->id, 0u);
  EXPECT_EQ(back->request_id, "req_1");
  EXPECT_EQ(back->event, "request.ready");
  EXPECT_EQ(back->state, "ready");
  EXPECT_EQ(back->version, 7);
  for (const char* bad :
       {"", "[]", "not json", R"({"request_id":"","event":"e","state":"s","version":1})",
        R"({"request_id":"r","event":"e","state":"s","version":"1"})",
        R"({"request_id":"r","event":"e","version":1})"}) {
    EXPECT_FALSE(DecodeRelayedEvent(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace airlock
