// The kernel instance identity: stable across restarts of one state
// directory, different for every other (another path, or the same path with
// another nonce), and refused when its nonce file is damaged.
#include "kernel/core/instance_identity.h"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "tests/support/temp_dir.h"

namespace airlock {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

std::string Identity(const std::string& dir) {
  auto id = LoadInstanceId(dir);
  EXPECT_TRUE(id.ok()) << id.status().ToString();
  return id.ok() ? *id : std::string();
}

TEST(InstanceIdentity, IsStableForOneStateDirectory) {
  TempDir dir("airlock-instance-");
  const std::string first = Identity(dir.path());
  ASSERT_EQ(first.size(), 32u);
  EXPECT_EQ(first.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(Identity(dir.path()), first) << "a restart keeps the identity";
  EXPECT_EQ(Identity(dir.path() + "/."), first) << "the canonical path counts";
  struct stat st {};
  ASSERT_EQ(::stat(dir.File("instance.nonce").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(InstanceIdentity, DiffersForAnotherDirectoryEvenWithTheSameNonce) {
  TempDir one("airlock-instance-"), two("airlock-instance-");
  const std::string a = Identity(one.path());
  EXPECT_NE(Identity(two.path()), a);
  // A copy of the state directory (restored beside the original) is another kernel.
  fs::create_directories(two.File("copy"));
  fs::copy_file(one.File("instance.nonce"), two.File("copy/instance.nonce"));
  EXPECT_NE(Identity(two.File("copy")), a);
}

TEST(InstanceIdentity, DiffersForTheSamePathWithAnotherNonce) {
  // Two containers using one path on one host: each state directory has its own nonce.
  TempDir dir("airlock-instance-");
  const std::string a = Identity(dir.path());
  fs::remove(dir.File("instance.nonce"));
  EXPECT_NE(Identity(dir.path()), a);
}

TEST(InstanceIdentity, RefusesADamagedNonceByName) {
  TempDir dir("airlock-instance-");
  std::ofstream(dir.File("instance.nonce")) << "not a nonce\n";
  auto id = LoadInstanceId(dir.path());
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(id.status().message().find("instance.nonce"), std::string::npos);
  EXPECT_EQ(LoadInstanceId(dir.File("missing")).status().code(), StatusCode::kUnavailable);
}

TEST(InstanceIdentity, AnnotatesTheIsolatorConfiguration) {
  nlohmann::json config = {{"min_isolation", {"seccomp"}}};
  AnnotateIsolatorConfig(config, "/var/lib/airlock", "0123abcd");
  EXPECT_EQ(config["$state_dir"], "/var/lib/airlock/isolator");
  EXPECT_EQ(config["$instance_id"], "0123abcd");
  EXPECT_EQ(config["min_isolation"], nlohmann::json({"seccomp"}));
}

}  // namespace
}  // namespace airlock
