#include "kernel/plugin_host/secret_reference.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/kernel/plugin_host/test_support.h"

namespace airlock::plugin_host {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::TempDir;

TEST(SecretReferenceTest, EnvironmentVariable) {
  ASSERT_EQ(::setenv("AIRLOCK_SR_TEST", "s3cr3t value", 1), 0);
  auto secret = ResolveSecretReference("env:AIRLOCK_SR_TEST");
  ASSERT_TRUE(secret.ok()) << secret.status().ToString();
  EXPECT_EQ(secret->Reveal(), "s3cr3t value");
  ::unsetenv("AIRLOCK_SR_TEST");
}

TEST(SecretReferenceTest, UnsetOrEmptyVariableIsRefused) {
  ::unsetenv("AIRLOCK_SR_UNSET");
  auto unset = ResolveSecretReference("env:AIRLOCK_SR_UNSET");
  ASSERT_FALSE(unset.ok());
  EXPECT_EQ(unset.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(unset.status().message(), HasSubstr("env:AIRLOCK_SR_UNSET"));

  ASSERT_EQ(::setenv("AIRLOCK_SR_EMPTY", "", 1), 0);
  EXPECT_EQ(ResolveSecretReference("env:AIRLOCK_SR_EMPTY").status().code(),
            StatusCode::kFailedPrecondition);
  ::unsetenv("AIRLOCK_SR_EMPTY");
}

TEST(SecretReferenceTest, MalformedReferencesNeverEchoTheirText) {
  for (const char* reference : {"env:", "env:1ABC", "env:my password!", "file:relative/hunter2",
                                "file:", "hunter2", ":hunter2"}) {
    auto result = ResolveSecretReference(reference);
    ASSERT_FALSE(result.ok()) << reference;
    EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument) << reference;
    EXPECT_THAT(result.status().message(), Not(HasSubstr("hunter2"))) << reference;
    EXPECT_THAT(result.status().message(), Not(HasSubstr("password"))) << reference;
  }
}

TEST(SecretReferenceTest, UnknownSchemeIsNamedButTheValueIsNot) {
  auto result = ResolveSecretReference("vault:secret/data/db#pw");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(result.status().message(), HasSubstr("'vault'"));
  EXPECT_THAT(result.status().message(), Not(HasSubstr("secret/data")));
}

TEST(SecretReferenceTest, FileStripsExactlyOneTrailingNewline) {
  TempDir dir;
  const std::string lf = dir.Write("lf", "pass\n\n");
  const std::string crlf = dir.Write("crlf", "pass\r\n");
  const std::string none = dir.Write("none", "pass");
  auto a = ResolveSecretReference("file:" + lf);
  auto b = ResolveSecretReference("file:" + crlf);
  auto c = ResolveSecretReference("file:" + none);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->Reveal(), "pass\n");
  EXPECT_EQ(b->Reveal(), "pass");
  EXPECT_EQ(c->Reveal(), "pass");
}

TEST(SecretReferenceTest, FileThroughASymlinkIsFollowed) {
  // Mounted secret volumes (Kubernetes) present files through symlinks.
  TempDir dir;
  const std::string target = dir.Write("real", "via-link");
  const std::string link = dir.path() + "/link";
  ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0);
  auto secret = ResolveSecretReference("file:" + link);
  ASSERT_TRUE(secret.ok()) << secret.status().ToString();
  EXPECT_EQ(secret->Reveal(), "via-link");
}

TEST(SecretReferenceTest, FileSizeIsCapped) {
  TempDir dir;
  const std::string exact = dir.Write("exact", std::string(kMaxSecretFileBytes, 'k'));
  auto ok = ResolveSecretReference("file:" + exact);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->Reveal().size(), kMaxSecretFileBytes);

  const std::string big = dir.Write("big", std::string(kMaxSecretFileBytes + 1, 'k'));
  auto refused = ResolveSecretReference("file:" + big);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kResourceExhausted);
  EXPECT_THAT(refused.status().message(), HasSubstr(big));
  EXPECT_THAT(refused.status().message(), Not(HasSubstr("kkkk")));
}

TEST(SecretReferenceTest, MissingFileDirectoryAndEmptyFileAreRefused) {
  TempDir dir;
  auto missing = ResolveSecretReference("file:" + dir.path() + "/nope");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  auto directory = ResolveSecretReference("file:" + dir.path());
  EXPECT_EQ(directory.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(directory.status().message(), HasSubstr("not a regular file"));
  const std::string empty = dir.Write("empty", "\n");
  EXPECT_EQ(ResolveSecretReference("file:" + empty).status().code(),
            StatusCode::kFailedPrecondition);
  const std::string fifo = dir.path() + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_EQ(ResolveSecretReference("file:" + fifo).status().code(),
            StatusCode::kFailedPrecondition);  // and does not block
}

}  // namespace
}  // namespace airlock::plugin_host
