// The connection budget's books, without sockets: who is admitted, who is
// shed to make room, who is refused.
#include "airlock/cpp/connection_budget.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

namespace airlock::sdk {
namespace {

// Admits connections and records which of them the budget shed.
class Books {
 public:
  explicit Books(ConnectionLimits limits) : budget_(limits) {}

  // The new connection's index, or -1 when refused.
  int Admit(const std::string& address) {
    const int index = static_cast<int>(tickets_.size());
    auto ticket = budget_.Admit(address, [this, index] { shed_.push_back(index); });
    tickets_.push_back(std::move(ticket));
    return tickets_.back().has_value() ? index : -1;
  }
  ConnectionBudget::Ticket& ticket(int index) { return *tickets_[static_cast<size_t>(index)]; }
  void Close(int index) { tickets_[static_cast<size_t>(index)].reset(); }
  const std::vector<int>& shed() const { return shed_; }
  ConnectionBudgetStats stats() const { return budget_.stats(); }

 private:
  ConnectionBudget budget_;
  std::vector<std::optional<ConnectionBudget::Ticket>> tickets_;
  std::vector<int> shed_;
};

TEST(ConnectionBudgetTest, AnAddressOverItsQuotaShedsItsOwnOldestIdleConnection) {
  Books books({/*max_connections=*/100, /*max_preauth_connections=*/50,
               /*max_preauth_connections_per_address=*/2, 0});
  EXPECT_EQ(books.Admit("10.0.0.1"), 0);
  EXPECT_EQ(books.Admit("10.0.0.2"), 1);
  EXPECT_EQ(books.Admit("10.0.0.1"), 2);
  EXPECT_EQ(books.Admit("10.0.0.1"), 3);
  EXPECT_EQ(books.shed(), std::vector<int>{0});
  EXPECT_EQ(books.Admit("10.0.0.1"), 4);
  EXPECT_EQ(books.shed(), (std::vector<int>{0, 2}));
  EXPECT_EQ(books.stats().preauth, 3u);
  EXPECT_EQ(books.stats().shed, 2u);
}

TEST(ConnectionBudgetTest, AFullPoolShedsFromTheAddressHoldingTheMost) {
  Books books({100, /*max_preauth_connections=*/4, /*per_address=*/4, 0});
  books.Admit("10.0.0.9");  // 0: the oldest of all, but its address holds one
  books.Admit("10.0.0.1");  // 1
  books.Admit("10.0.0.1");  // 2
  books.Admit("10.0.0.1");  // 3
  EXPECT_EQ(books.Admit("10.0.0.5"), 4);
  EXPECT_EQ(books.shed(), std::vector<int>{1});
  EXPECT_EQ(books.Admit("10.0.0.5"), 5);
  EXPECT_EQ(books.shed(), (std::vector<int>{1, 2}));
}

TEST(ConnectionBudgetTest, BusyConnectionsAreNotShedAndIdleAgainTheyAreTheYoungest) {
  Books books({100, 2, 2, 0});
  books.Admit("a");  // 0
  books.Admit("a");  // 1
  books.ticket(0).SetBusy(true);
  EXPECT_EQ(books.Admit("a"), 2);
  EXPECT_EQ(books.shed(), std::vector<int>{1});
  books.ticket(2).SetBusy(true);
  EXPECT_EQ(books.Admit("a"), -1) << "every connection is busy: nothing to shed";
  EXPECT_EQ(books.stats().refused, 1u);
  // Idle again, in this order: 0 is now the oldest idle one.
  books.ticket(0).SetBusy(false);
  books.ticket(2).SetBusy(false);
  EXPECT_EQ(books.Admit("a"), 4);
  EXPECT_EQ(books.shed(), (std::vector<int>{1, 0}));
}

TEST(ConnectionBudgetTest, AuthenticatedConnectionsKeepTheReservedPlaces) {
  Books books({/*max_connections=*/3, /*max_preauth_connections=*/2, 2, 0});
  books.Admit("a");  // 0
  books.Admit("a");  // 1
  ASSERT_TRUE(books.ticket(0).Authenticate());
  ASSERT_TRUE(books.ticket(1).Authenticate());
  EXPECT_TRUE(books.ticket(0).authenticated());
  books.Admit("b");  // 2: the last place
  EXPECT_EQ(books.Admit("c"), 3) << "the idle pre-auth connection makes room";
  EXPECT_EQ(books.shed(), std::vector<int>{2});
  ASSERT_TRUE(books.ticket(3).Authenticate());
  EXPECT_EQ(books.Admit("c"), -1) << "all places authenticated: refused";
  books.Close(0);
  EXPECT_EQ(books.Admit("c"), 5);
  EXPECT_EQ(books.stats().open, 3u);
  EXPECT_EQ(books.stats().preauth, 1u);
}

TEST(ConnectionBudgetTest, EachEndpointHasItsOwnShare) {
  Books books({100, 50, 50, /*max_connections_per_endpoint=*/2});
  for (int i = 0; i < 4; ++i) books.Admit("a");
  EXPECT_TRUE(books.ticket(0).Authenticate("req_1"));
  EXPECT_TRUE(books.ticket(1).Authenticate("req_1"));
  EXPECT_FALSE(books.ticket(2).Authenticate("req_1"));
  EXPECT_FALSE(books.ticket(2).authenticated());
  EXPECT_TRUE(books.ticket(3).Authenticate("req_2"));
  EXPECT_EQ(books.stats().endpoint_refused, 1u);
  books.Close(0);
  EXPECT_TRUE(books.ticket(2).Authenticate("req_1"));
  EXPECT_TRUE(books.ticket(2).Authenticate("req_2")) << "the first endpoint keeps it";
}

TEST(ConnectionBudgetTest, AShedTicketGivesNothingBackTwice) {
  Books books({100, 1, 1, 0});
  books.Admit("a");  // 0
  books.Admit("a");  // 1, sheds 0
  EXPECT_FALSE(books.ticket(0).Authenticate()) << "shed: it cannot authenticate any more";
  books.Close(0);
  EXPECT_EQ(books.stats().open, 1u);
  EXPECT_EQ(books.stats().preauth, 1u);
  books.Close(1);
  EXPECT_EQ(books.stats().open, 0u);
  EXPECT_EQ(books.stats().preauth, 0u);
}

TEST(ConnectionBudgetTest, TicketsOutliveTheBudget) {
  std::optional<ConnectionBudget::Ticket> ticket;
  {
    ConnectionBudget budget({4, 2, 2, 0});
    ticket = budget.Admit("a", [] {});
  }
  ASSERT_TRUE(ticket.has_value());
  EXPECT_TRUE(ticket->Authenticate());
  ticket.reset();
}

TEST(ConnectionBudgetTest, LimitsAreChecked) {
  EXPECT_EQ(ConnectionLimits{}.Check(), "");
  EXPECT_NE(ConnectionLimits({4, 4, 1, 0}).Check().find("smaller than max_connections"),
            std::string::npos);
  EXPECT_NE(ConnectionLimits({8, 4, 5, 0}).Check().find("per_address"), std::string::npos);
  EXPECT_NE(ConnectionLimits({8, 0, 1, 0}).Check(), "");

  ConnectionLimits limits{64, 16, 8, 0};
  EXPECT_TRUE(ReadConnectionLimits(Json::parse(R"({"max_connections": 32,
      "max_preauth_connections": 8, "max_preauth_connections_per_address": 2,
      "max_connections_per_endpoint": 3})"),
                                   "tunnel configuration", true, &limits)
                  .ok());
  EXPECT_EQ(limits.max_connections, 32u);
  EXPECT_EQ(limits.max_preauth_connections, 8u);
  EXPECT_EQ(limits.max_preauth_connections_per_address, 2u);
  EXPECT_EQ(limits.max_connections_per_endpoint, 3u);
  const Status bad = ReadConnectionLimits(Json::parse(R"({"max_preauth_connections": "many"})"),
                                          "tunnel configuration", false, &limits);
  EXPECT_EQ(bad.message(), "tunnel configuration.max_preauth_connections must be an integer");
  const Status inverted = ReadConnectionLimits(Json::parse(R"({"max_preauth_connections": 64})"),
                                               "tunnel configuration", false, &limits);
  EXPECT_NE(
      inverted.message().find("tunnel configuration: max_preauth_connections must be smaller"),
      std::string::npos)
      << inverted.message();
}

TEST(ConnectionBudgetTest, AddressKeysGroupWhatOneClientOwns) {
  EXPECT_EQ(ClientAddressKey("127.0.0.2"), "127.0.0.2");
  EXPECT_EQ(ClientAddressKey("::ffff:10.1.2.3"), "10.1.2.3");
  EXPECT_EQ(ClientAddressKey("2001:db8:1:2:aaaa::1"), "2001:0db8:0001:0002::/64");
  EXPECT_EQ(ClientAddressKey("[2001:db8:1:2::ffff]"), "2001:0db8:0001:0002::/64");
  EXPECT_EQ(ClientAddressKey("fe80::1%lo"), "fe80:0000:0000:0000::/64");
}

}  // namespace
}  // namespace airlock::sdk
