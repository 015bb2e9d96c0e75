// The agent enrollment book's contract against both books: the file of a
// one-machine kernel and the replicas' PostgreSQL tables (a real PostgreSQL
// started by the test). A token enrolls once; a renewal moves the current
// certificate to previous only from the serial it names, so of two replicas
// renewing the same certificate exactly one wins; the agent CA is pinned by
// the first fingerprint recorded.
#include <atomic>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <gtest/gtest.h>

#include "kernel/agent/enrollment_book.h"
#include "kernel/agent/postgres_enrollment_book.h"
#include "tests/kernel/state/state_backends.h"
#include "tests/support/temp_dir.h"

namespace airlock::test {
namespace {

using agent::EnrollmentBook;
using agent::EnrollmentRecord;

class FileBook {
 public:
  static constexpr const char* kName = "file";
  static constexpr bool kShared = false;  // one kernel's
  std::unique_ptr<EnrollmentBook> Open() { return agent::OpenFileEnrollmentBook(dir_.path()); }

 private:
  TempDir dir_{"airlock-enrollment-book-"};
};

class PostgresBook {
 public:
  static constexpr const char* kName = "postgres";
  static constexpr bool kShared = true;  // every replica's
  PostgresBook() : database_(CreatePgStateDatabase(PgCluster::Shared())) {}
  std::unique_ptr<EnrollmentBook> Open() {
    agent::PostgresBookOptions options;
    options.tls = PgStateOptions(PgCluster::Shared()).tls;
    auto book = agent::OpenPostgresEnrollmentBook(Secret(std::string(database_.dsn)), options);
    if (!book.ok()) throw std::runtime_error(book.status().ToString());
    return std::move(book).value();
  }

 private:
  PgStateDatabase database_;
};

template <class Book>
class EnrollmentBookContractTest : public ::testing::Test {
 protected:
  Book book_;
};

using Books = ::testing::Types<FileBook, PostgresBook>;
struct BookNames {
  template <class Book>
  static std::string GetName(int) {
    return Book::kName;
  }
};
TYPED_TEST_SUITE(EnrollmentBookContractTest, Books, BookNames);

EnrollmentRecord Record(const std::string& token, const std::string& serial) {
  return {token, serial, "", 1000};
}

TYPED_TEST(EnrollmentBookContractTest, ATokenEnrollsOnceAndTheRecordOutlivesTheBook) {
  auto book = this->book_.Open();
  auto none = book->Find("edge");
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_FALSE(none->has_value());
  auto first = book->Enroll("edge", Record("tok-1", "S1"));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_TRUE(*first);
  auto again = book->Enroll("edge", Record("tok-1", "S2"));
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);  // a spent token
  // A new token enrolls the agent afresh.
  auto fresh = book->Enroll("edge", Record("tok-2", "S3"));
  ASSERT_TRUE(fresh.ok());
  EXPECT_TRUE(*fresh);
  auto reopened = this->book_.Open()->Find("edge");
  ASSERT_TRUE(reopened.ok());
  ASSERT_TRUE(reopened->has_value());
  EXPECT_EQ((*reopened)->serial, "S3");
  EXPECT_EQ((*reopened)->token_sha256, "tok-2");
}

TYPED_TEST(EnrollmentBookContractTest, ARenewalMovesFromTheNamedSerialOnly) {
  auto book = this->book_.Open();
  ASSERT_TRUE(*book->Enroll("edge", Record("tok-1", "S1")));
  auto stale = book->Renew("edge", "S0", "S9");
  ASSERT_TRUE(stale.ok()) << stale.status().ToString();
  EXPECT_FALSE(*stale);
  auto renewed = book->Renew("edge", "S1", "S2");
  ASSERT_TRUE(renewed.ok());
  EXPECT_TRUE(*renewed);
  auto record = this->book_.Open()->Find("edge");
  ASSERT_TRUE(record.ok() && record->has_value());
  EXPECT_EQ((*record)->serial, "S2");
  EXPECT_EQ((*record)->previous_serial, "S1");
  EXPECT_EQ((*record)->token_sha256, "tok-1");
  auto unknown = book->Renew("nobody", "S1", "S2");
  ASSERT_TRUE(unknown.ok());
  EXPECT_FALSE(*unknown);
}

// Two books on the same storage (two replicas) renew the same certificate
// at once, many times: each round has exactly one winner.
TYPED_TEST(EnrollmentBookContractTest, ConcurrentRenewalsOfOneCertificateHaveOneWinner) {
  if constexpr (!TypeParam::kShared) {
    GTEST_SKIP() << "the file book belongs to one kernel";
  } else {
    auto a = this->book_.Open();
    auto b = this->book_.Open();
    ASSERT_TRUE(*a->Enroll("edge", Record("tok-1", "S0")));
    for (int round = 1; round <= 20; ++round) {
      const std::string current = "S" + std::to_string(round - 1);
      std::atomic<int> wins{0};
      std::thread other([&] {
        auto won = b->Renew("edge", current, "B" + std::to_string(round));
        if (won.ok() && *won) ++wins;
      });
      auto won = a->Renew("edge", current, "S" + std::to_string(round));
      if (won.ok() && *won) ++wins;
      other.join();
      ASSERT_EQ(wins.load(), 1) << "round " << round;
      // Whoever won, the next round starts from the current serial.
      auto record = a->Find("edge");
      ASSERT_TRUE(record.ok() && record->has_value());
      EXPECT_EQ((*record)->previous_serial, current);
      if ((*record)->serial != "S" + std::to_string(round)) {
        ASSERT_TRUE(*a->Renew("edge", (*record)->serial, "S" + std::to_string(round)));
      }
    }
  }
}

// Replicas pin the first CA recorded; one kernel's book has only its own.
TYPED_TEST(EnrollmentBookContractTest, TheFirstCaPinnedStaysOnASharedBook) {
  auto book = this->book_.Open();
  auto first = book->PinCa("fp-one");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(*first, "fp-one");
  auto second = this->book_.Open()->PinCa("fp-two");
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*second, TypeParam::kShared ? "fp-one" : "fp-two");
  EXPECT_FALSE(book->Describe().empty());
}

// A one-machine kernel's file carried into a book: the records it holds go
// in once (one the book already has stays), the file is renamed, and a
// malformed file is refused by name and left where it is.
TYPED_TEST(EnrollmentBookContractTest, AOneMachineFileIsImportedOnceAndABadOneRefused) {
  TempDir dir("airlock-enrollment-import-");
  {
    auto one_machine = agent::OpenFileEnrollmentBook(dir.path());
    ASSERT_TRUE(*one_machine->Enroll("edge", Record("tok-edge", "E1")));
    ASSERT_TRUE(*one_machine->Enroll("lab", Record("tok-lab", "L1")));
  }
  auto book = this->book_.Open();
  ASSERT_TRUE(*book->Enroll("lab", Record("tok-lab-2", "L9")));
  auto imported = agent::ImportEnrollmentFile(dir.path(), *book);
  ASSERT_TRUE(imported.ok()) << imported.status().ToString();
  EXPECT_EQ(*imported, std::vector<std::string>{"edge"});
  EXPECT_EQ((*book->Find("edge"))->serial, "E1");
  EXPECT_EQ((*book->Find("lab"))->serial, "L9");
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/enrollments.json"));
  EXPECT_TRUE(std::filesystem::exists(dir.path() + "/enrollments.json.imported"));
  auto again = agent::ImportEnrollmentFile(dir.path(), *book);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->empty());

  std::ofstream(dir.path() + "/enrollments.json") << "not json";
  auto bad = agent::ImportEnrollmentFile(dir.path(), *book);
  EXPECT_EQ(bad.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(bad.status().message().find(dir.path() + "/enrollments.json"), std::string::npos)
      << bad.status().message();
  EXPECT_TRUE(std::filesystem::exists(dir.path() + "/enrollments.json"));
}

}  // namespace
}  // namespace airlock::test
