// The identity conformance kit: one GoogleTest suite any identity provider
// runs against itself, through the C ABI exactly as the kernel drives it.
//
// A provider's author writes a fixture that says how to load the plugin,
// with which configuration, which requests it must accept (and as whom),
// which requests carrying its kind of credential it must refuse (wrong,
// expired, forged, for another audience...), and which secrets must never
// show in an error or a log line; then instantiates the suite once:
//
//   #include <airlock/testing/identity_conformance.hpp>
//
//   class MyFixture : public airlock::conformance::IdentityFixture {
//    public:
//     airlock::Result<airlock::conformance::IdentitySetup> Prepare() override { ... }
//   };
//   AIRLOCK_IDENTITY_CONFORMANCE_SUITE(MyProvider, MyFixture);   // at global scope
//
// The kit checks: the manifest (kind identity, ABI 1); a configuration with
// an unknown key refused and a malformed one refused without a crash; every
// accepted request authenticates as its subject with its groups, as a
// well-formed principal; a request with no credential is "not applicable"
// (the next provider may try); every refused request is refused
// (unauthenticated, or not applicable for a form of credential other
// providers share), never accepted; malformed credentials (huge, binary, empty, repeated
// headers) are refused without a crash; no secret in any error message or
// log line; no exception across the ABI; concurrent calls on one instance.
//
// Header-only. Depends on the SDK headers, GoogleTest and dlopen (link
// ${CMAKE_DL_LIBS}).
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "airlock/c/airlock_plugin.h"
#include "airlock/cpp/abi_util.hpp"
#include "airlock/cpp/status.hpp"
#include "airlock/testing/plugin_harness.hpp"

namespace airlock::conformance {

// An HTTP request as the kernel hands it to a provider.
struct IdentityRequest {
  std::string method = "GET";
  std::string target = "/v1/me";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string remote_address = "127.0.0.1";
  std::string peer_certificate_pem;  // a client certificate chain over TLS, PEM
};

struct AcceptedRequest {
  std::string label;
  IdentityRequest request;
  std::string subject;              // the principal's subject
  std::vector<std::string> groups;  // each among the principal's groups
};

struct RefusedRequest {
  std::string label;  // what is wrong with it: "wrong token", "expired", ...
  IdentityRequest request;
};

struct IdentitySetup {
  std::string plugin_path;
  std::string config_json;  // a JSON object
  // Secret references the kit's host resolves (env: and file: resolve too).
  std::map<std::string, std::string> secret_references;
  std::vector<AcceptedRequest> accepted;  // at least one
  std::vector<RefusedRequest> refused;    // at least one
  // Texts that must appear in no error message and no log line: the
  // credentials above, key material.
  std::vector<std::string> secrets;
};

class IdentityFixture {
 public:
  virtual ~IdentityFixture() = default;
  virtual Result<IdentitySetup> Prepare() = 0;
};

namespace identity_detail {

// The outcome of one authenticate() call.
struct Outcome {
  airlock_type_status status = AIRLOCK_ERR_INTERNAL;
  std::string error;
  nlohmann::json principal;
};

class Provider {
 public:
  Provider(const airlock_type_identity_vtable* table, const std::string& config) : table_(table) {
    abi::ErrorHolder error;
    status_ = table_->create(config.data(), config.size(), &instance_, error.get());
    error_ = error.message();
    if (status_ != AIRLOCK_OK && instance_ != nullptr) {
      table_->destroy(instance_);
      instance_ = nullptr;
      leaked_instance_ = true;
    }
  }
  ~Provider() {
    if (instance_ != nullptr) table_->destroy(instance_);
  }
  Provider(const Provider&) = delete;
  Provider& operator=(const Provider&) = delete;

  airlock_type_status created() const { return status_; }
  const std::string& create_error() const { return error_; }
  bool leaked_instance() const { return leaked_instance_; }

  Outcome Authenticate(const IdentityRequest& request) const {
    std::vector<airlock_type_header> headers;
    for (const auto& [name, value] : request.headers) {
      headers.push_back({name.data(), name.size(), value.data(), value.size()});
    }
    airlock_type_http_request_view view{};
    view.size = sizeof(view);
    view.method = request.method.data();
    view.method_length = request.method.size();
    view.target = request.target.data();
    view.target_length = request.target.size();
    view.headers = headers.data();
    view.header_count = headers.size();
    view.remote_address = request.remote_address.data();
    view.remote_address_length = request.remote_address.size();
    view.peer_certificate_pem = request.peer_certificate_pem.data();
    view.peer_certificate_pem_length = request.peer_certificate_pem.size();
    abi::BufferHolder principal;
    abi::ErrorHolder error;
    Outcome out;
    out.status = table_->authenticate(instance_, &view, principal.get(), error.get());
    out.error = error.message();
    if (out.status == AIRLOCK_OK) {
      out.principal = nlohmann::json::parse(principal.view(), nullptr, false);
    }
    return out;
  }

 private:
  const airlock_type_identity_vtable* table_;
  void* instance_ = nullptr;
  airlock_type_status status_ = AIRLOCK_ERR_INTERNAL;
  std::string error_;
  bool leaked_instance_ = false;
};

inline Result<const airlock_type_identity_vtable*> LoadIdentity(const std::string& path) {
  return LoadTable<airlock_type_identity_vtable>(path, AIRLOCK_KIND_IDENTITY, "identity provider",
                                                 "identity", AIRLOCK_IDENTITY_VTABLE_1_0_SIZE);
}

}  // namespace identity_detail

template <typename Fixture>
class IdentityConformance : public ::testing::Test {
 protected:
  void SetUp() override {
    Fixture fixture;
    auto prepared = fixture.Prepare();
    ASSERT_TRUE(prepared.ok()) << "the fixture could not prepare: " << prepared.status().message();
    setup_ = std::move(prepared).value();
    ASSERT_FALSE(setup_.accepted.empty()) << "the fixture gives no request to accept";
    ASSERT_FALSE(setup_.refused.empty()) << "the fixture gives no request to refuse";
    KitHost::Get().Configure(setup_.secret_references);
    KitHost::Get().ClearLogs();
    auto table = identity_detail::LoadIdentity(setup_.plugin_path);
    ASSERT_TRUE(table.ok()) << table.status().message();
    table_ = *table;
    provider_ = std::make_unique<identity_detail::Provider>(table_, setup_.config_json);
    ASSERT_EQ(provider_->created(), AIRLOCK_OK)
        << "create() refused the fixture's configuration: " << provider_->create_error();
  }

  void TearDown() override {
    for (const auto& line : KitHost::Get().logs()) ExpectNoSecret(line, "a log line");
  }

  void ExpectNoSecret(const std::string& text, const std::string& where) const {
    for (const auto& secret : setup_.secrets) {
      if (!secret.empty()) {
        EXPECT_EQ(text.find(secret), std::string::npos) << where << " holds a secret: " << text;
      }
    }
  }

  // What the fixture accepts, with its credential removed: the request as
  // it would come from someone without one.
  IdentityRequest WithoutCredential() const {
    IdentityRequest request = setup_.accepted.front().request;
    request.headers.clear();
    request.peer_certificate_pem.clear();
    return request;
  }

  IdentitySetup setup_;
  const airlock_type_identity_vtable* table_ = nullptr;
  std::unique_ptr<identity_detail::Provider> provider_;
};

TYPED_TEST_SUITE_P(IdentityConformance);

TYPED_TEST_P(IdentityConformance, AcceptedRequestsAuthenticateAsTheirSubject) {
  for (const auto& accepted : this->setup_.accepted) {
    SCOPED_TRACE(accepted.label);
    const auto out = this->provider_->Authenticate(accepted.request);
    ASSERT_EQ(out.status, AIRLOCK_OK) << out.error;
    ASSERT_TRUE(out.principal.is_object()) << "the principal is not a JSON object";
    EXPECT_EQ(out.principal.value("subject", ""), accepted.subject);
    const std::string kind = out.principal.value("kind", "human");
    EXPECT_TRUE(kind == "human" || kind == "service" || kind == "agent") << kind;
    const auto groups = out.principal.value("groups", nlohmann::json::array());
    ASSERT_TRUE(groups.is_array());
    for (const auto& group : accepted.groups) {
      EXPECT_NE(std::find(groups.begin(), groups.end(), nlohmann::json(group)), groups.end())
          << "group " << group << " missing from " << out.principal.dump();
    }
    this->ExpectNoSecret(out.principal.dump(), "the principal");
  }
}

TYPED_TEST_P(IdentityConformance, ARequestWithoutItsCredentialIsNotApplicable) {
  const auto out = this->provider_->Authenticate(this->WithoutCredential());
  EXPECT_EQ(out.status, AIRLOCK_ERR_NOT_APPLICABLE)
      << "a request without this provider's credential must let the next provider try; got "
      << out.status << " " << out.error;
}

TYPED_TEST_P(IdentityConformance, RefusedCredentialsAreRefusedWithoutTheSecret) {
  for (const auto& refused : this->setup_.refused) {
    SCOPED_TRACE(refused.label);
    const auto out = this->provider_->Authenticate(refused.request);
    // Unauthenticated, or not applicable when the credential's form is one
    // other providers share (a bearer token another provider may know).
    EXPECT_TRUE(out.status == AIRLOCK_ERR_UNAUTHENTICATED ||
                out.status == AIRLOCK_ERR_NOT_APPLICABLE)
        << "status " << out.status << " (" << out.error << ") principal " << out.principal.dump();
    this->ExpectNoSecret(out.error, "the error");
  }
}

TYPED_TEST_P(IdentityConformance, MalformedCredentialsAreRefusedWithoutACrash) {
  const std::string huge(1 << 20, 'A');
  const std::string binary(std::string("\x00\xff\xfe\x01", 4) + "Bearer \x80");
  const std::vector<std::vector<std::pair<std::string, std::string>>> cases = {
      {{"Authorization", "Bearer " + huge}},
      {{"Authorization", binary}},
      {{"Authorization", "Bearer "}},
      {{"Authorization", ""}},
      {{"Authorization", "Bearer a.b.c"}},
      {{"Authorization", "Basic Zm9vOmJhcg=="}},
      {{"Authorization", "Bearer x"}, {"Authorization", "Bearer y"}},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE("malformed case " + std::to_string(i));
    IdentityRequest request = this->WithoutCredential();
    request.headers = cases[i];
    const auto out = this->provider_->Authenticate(request);
    EXPECT_NE(out.status, AIRLOCK_OK) << out.principal.dump();
    EXPECT_NE(out.status, AIRLOCK_ERR_INTERNAL)
        << "an exception or crash reached the ABI: " << out.error;
  }
  IdentityRequest garbage_certificate = this->WithoutCredential();
  garbage_certificate.peer_certificate_pem =
      "-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n";
  const auto out = this->provider_->Authenticate(garbage_certificate);
  EXPECT_NE(out.status, AIRLOCK_OK);
  EXPECT_NE(out.status, AIRLOCK_ERR_INTERNAL) << out.error;
}

TYPED_TEST_P(IdentityConformance, ConfigurationMistakesAreRefused) {
  auto config = nlohmann::json::parse(this->setup_.config_json, nullptr, false);
  ASSERT_TRUE(config.is_object()) << "config_json must be a JSON object";
  config["airlock_conformance_misspelt_key"] = true;
  const std::string misspelt = config.dump();
  identity_detail::Provider with_typo(this->table_, misspelt);
  EXPECT_NE(with_typo.created(), AIRLOCK_OK) << "an unknown configuration key was accepted";
  EXPECT_FALSE(with_typo.leaked_instance());
  const std::string broken = "{\"not json";
  identity_detail::Provider malformed(this->table_, broken);
  EXPECT_NE(malformed.created(), AIRLOCK_OK);
  EXPECT_NE(malformed.created(), AIRLOCK_ERR_INTERNAL) << malformed.create_error();
  this->ExpectNoSecret(with_typo.create_error(), "a configuration error");
}

TYPED_TEST_P(IdentityConformance, ConcurrentCallsOnOneInstanceAgree) {
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        const auto& accepted =
            this->setup_.accepted[static_cast<size_t>(t + i) % this->setup_.accepted.size()];
        const auto& refused =
            this->setup_.refused[static_cast<size_t>(t + i) % this->setup_.refused.size()];
        const auto yes = this->provider_->Authenticate(accepted.request);
        if (yes.status != AIRLOCK_OK || yes.principal.value("subject", "") != accepted.subject) {
          ++wrong;
        }
        if (this->provider_->Authenticate(refused.request).status == AIRLOCK_OK) ++wrong;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(wrong.load(), 0);
}

REGISTER_TYPED_TEST_SUITE_P(IdentityConformance, AcceptedRequestsAuthenticateAsTheirSubject,
                            ARequestWithoutItsCredentialIsNotApplicable,
                            RefusedCredentialsAreRefusedWithoutTheSecret,
                            MalformedCredentialsAreRefusedWithoutACrash,
                            ConfigurationMistakesAreRefused, ConcurrentCallsOnOneInstanceAgree);

}  // namespace airlock::conformance

// Instantiates the suite for `Fixture` (an IdentityFixture), at global scope.
#define AIRLOCK_IDENTITY_CONFORMANCE_SUITE(Name, Fixture)                               \
  namespace airlock::conformance {                                                      \
  INSTANTIATE_TYPED_TEST_SUITE_P(Name, IdentityConformance, ::testing::Types<Fixture>); \
  }                                                                                     \
  static_assert(true, "require a trailing semicolon")
