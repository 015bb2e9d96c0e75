#include "kernel/plugin_host/kernel_secrets.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

namespace airlock::plugin_host {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(KernelSecretsTest, ResolvesOnlyReferencesOfKernelSidePlugins) {
  ASSERT_EQ(::setenv("AIRLOCK_KS_POLICY", "policy-token-value", 1), 0);
  ASSERT_EQ(::setenv("AIRLOCK_KS_DB", "database-password-value", 1), 0);
  KernelSecrets secrets;
  // A policy plugin's configuration, with the reference nested in it.
  secrets.AllowReferencesOf(nlohmann::json::parse(
      R"({"url": "https://opa:8181", "auth": {"bearer_token_secret": "env:AIRLOCK_KS_POLICY"},
          "paths": ["file-not-a-ref", "envy"], "retries": 2})"));

  auto allowed = secrets.Resolve("env:AIRLOCK_KS_POLICY");
  ASSERT_TRUE(allowed.ok()) << allowed.status().ToString();
  EXPECT_EQ(allowed->Reveal(), "policy-token-value");

  // A data-source credential (it appears only in a connector configuration,
  // which is never allowed here) is refused without its value.
  auto refused = secrets.Resolve("env:AIRLOCK_KS_DB");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kPermissionDenied);
  EXPECT_THAT(refused.status().message(), HasSubstr("inside enclaves"));
  EXPECT_THAT(refused.status().message(), Not(HasSubstr("database-password-value")));
  // Plain strings that merely start like a scheme name are not references.
  EXPECT_FALSE(secrets.Resolve("envy").ok());
  ::unsetenv("AIRLOCK_KS_POLICY");
  ::unsetenv("AIRLOCK_KS_DB");
}

TEST(KernelSecretsTest, AllowedButUnresolvableReferenceSaysWhy) {
  ::unsetenv("AIRLOCK_KS_MISSING");
  KernelSecrets secrets;
  secrets.AllowReferencesOf(nlohmann::json{{"token", "env:AIRLOCK_KS_MISSING"}});
  auto missing = secrets.Resolve("env:AIRLOCK_KS_MISSING");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
}

TEST(KernelSecretsTest, NothingIsAllowedByDefault) {
  ASSERT_EQ(::setenv("AIRLOCK_KS_ANY", "x", 1), 0);
  KernelSecrets secrets;
  EXPECT_EQ(secrets.Resolve("env:AIRLOCK_KS_ANY").status().code(), StatusCode::kPermissionDenied);
  ::unsetenv("AIRLOCK_KS_ANY");
}

}  // namespace
}  // namespace airlock::plugin_host
