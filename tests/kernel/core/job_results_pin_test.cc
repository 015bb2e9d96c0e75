#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "kernel/core/job_results.h"
#include "tests/support/temp_dir.h"

namespace airlock {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// A download authorized just before retention deletes the result keeps its
// file; one that comes after is told the result is gone, not a server error.
TEST(JobResultPin, APinnedResultOutlivesRetentionAndALatePinIsGone) {
  test::TempDir dir;
  const std::string results = dir.File("results");
  const std::string path = JobResultPath(results, "req-1", 0);
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path) << "{\"columns\":[]}\n[1]\n";

  auto pinned = PinJobResult(results, "req-1", 0);
  ASSERT_TRUE(pinned.ok()) << pinned.status().ToString();
  EXPECT_NE(*pinned, path);
  RemoveJobResults(results, "req-1");
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_EQ(ReadAll(*pinned), "{\"columns\":[]}\n[1]\n");
  EXPECT_EQ(std::filesystem::status(std::filesystem::path(*pinned).parent_path()).permissions() &
                std::filesystem::perms::all,
            std::filesystem::perms::owner_all);

  auto late = PinJobResult(results, "req-1", 0);
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.status().code(), StatusCode::kFailedPrecondition);
}

TEST(JobResultPin, EachPinHasItsOwnName) {
  test::TempDir dir;
  const std::string results = dir.File("results");
  const std::string path = JobResultPath(results, "req-2", 3);
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path) << "x";
  auto a = PinJobResult(results, "req-2", 3);
  auto b = PinJobResult(results, "req-2", 3);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);
}

}  // namespace
}  // namespace airlock
