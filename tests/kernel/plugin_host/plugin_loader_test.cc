#include "kernel/plugin_host/plugin_loader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "tests/kernel/plugin_host/test_support.h"

namespace airlock::plugin_host {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using testing::RecordingCallbacks;
using testing::TempDir;
using testing::TestPlugin;

class PluginLoaderTest : public ::testing::Test {
 protected:
  // Expects `path` to be refused with `code`, a message naming the file and `reason`.
  void ExpectRefused(const std::string& path, StatusCode code, const std::string& reason,
                     const std::optional<std::string>& pin = std::nullopt,
                     std::optional<airlock_type_plugin_kind> kind = std::nullopt) {
    auto loaded = loader_.Load(path, pin, kind);
    ASSERT_FALSE(loaded.ok()) << path << " was loaded";
    EXPECT_EQ(loaded.status().code(), code) << loaded.status().ToString();
    EXPECT_THAT(loaded.status().message(), AllOf(HasSubstr(path), HasSubstr(reason)));
    EXPECT_TRUE(loader_.Loaded().empty());
  }

  RecordingCallbacks callbacks_;
  HostServicesTable table_{callbacks_};
  PluginLoader loader_{table_.get()};
};

TEST_F(PluginLoaderTest, LoadsAPlainCPluginAndReportsItsManifest) {
  const std::string path = TestPlugin("c_numbers");
  auto loaded = loader_.Load(path, std::nullopt);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  const PluginManifest& manifest = (*loaded)->manifest();
  EXPECT_EQ(manifest.path, std::filesystem::canonical(path).string());
  EXPECT_EQ(manifest.sha256, testing::Sha256sum(path));
  EXPECT_EQ(manifest.name, "c-numbers");
  EXPECT_EQ(manifest.version, "0.1.0");
  EXPECT_EQ(manifest.description, "Three numbers, from plain C");
  EXPECT_EQ(manifest.kind, AIRLOCK_KIND_CONNECTOR);
  EXPECT_EQ(manifest.abi_major, 1u);
  EXPECT_EQ(manifest.abi_minor, static_cast<uint32_t>(AIRLOCK_ABI_MINOR));
  EXPECT_EQ(manifest.config_schema, nlohmann::json::parse(R"({"type":"object","properties":{}})"));
  EXPECT_EQ((*loaded)->vtable_size(), sizeof(airlock_type_connector_vtable));
  EXPECT_NE((*loaded)->vtable(), nullptr);
  const auto all = loader_.Loaded();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].name, "c-numbers");
}

TEST_F(PluginLoaderTest, SdkPluginsDeclareTheirKindAndSchema) {
  struct Expected {
    const char* file;
    const char* name;
    airlock_type_plugin_kind kind;
  };
  for (const Expected& e : {Expected{"test_identity", "test-identity", AIRLOCK_KIND_IDENTITY},
                            Expected{"test_policy", "test-policy", AIRLOCK_KIND_POLICY},
                            Expected{"test_squares", "test-squares", AIRLOCK_KIND_CONNECTOR},
                            Expected{"test_tunnel", "test-tunnel", AIRLOCK_KIND_TUNNEL},
                            Expected{"test_isolator", "test-isolator", AIRLOCK_KIND_ISOLATOR}}) {
    auto loaded = loader_.Load(TestPlugin(e.file), std::nullopt, e.kind);
    ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
    EXPECT_EQ((*loaded)->manifest().name, e.name);
    EXPECT_EQ((*loaded)->manifest().kind, e.kind);
  }
  EXPECT_EQ(loader_.Loaded().size(), 5u);
  auto identity = loader_.Load(TestPlugin("test_identity"), std::nullopt);
  ASSERT_TRUE(identity.ok());
  EXPECT_EQ((*identity)->manifest().config_schema["properties"]["tenant"]["type"], "string");
  auto policy = loader_.Load(TestPlugin("test_policy"), std::nullopt);
  ASSERT_TRUE(policy.ok());
  EXPECT_TRUE((*policy)->manifest().config_schema.is_null());
}

TEST_F(PluginLoaderTest, SamePathGivesTheSameLibraryEvenWhenRelative) {
  const std::string path = TestPlugin("c_numbers");
  auto first = loader_.Load(path, std::nullopt);
  ASSERT_TRUE(first.ok());
  const std::string relative =
      std::filesystem::relative(path, std::filesystem::current_path()).string();
  ASSERT_NE(relative, path);
  auto second = loader_.Load(relative, std::nullopt);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(first->get(), second->get());
  auto third =
      loader_.Load(std::string(PLUGIN_HOST_TEST_PLUGIN_DIR) + "/./c_numbers.so", std::nullopt);
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(first->get(), third->get());
  EXPECT_EQ(loader_.Loaded().size(), 1u);
}

TEST_F(PluginLoaderTest, KindOtherThanExpectedIsRefused) {
  ExpectRefused(TestPlugin("c_numbers"), StatusCode::kInvalidArgument,
                "is a connector plugin, expected a policy plugin", std::nullopt,
                AIRLOCK_KIND_POLICY);
  // Also when the library is already loaded.
  ASSERT_TRUE(loader_.Load(TestPlugin("c_numbers"), std::nullopt).ok());
  auto again = loader_.Load(TestPlugin("c_numbers"), std::nullopt, AIRLOCK_KIND_IDENTITY);
  ASSERT_FALSE(again.ok());
  EXPECT_THAT(again.status().message(),
              HasSubstr("is a connector plugin, expected an identity plugin"));
}

TEST_F(PluginLoaderTest, WrongAbiMajorIsRefused) {
  ExpectRefused(TestPlugin("raw_abi_major_2"), StatusCode::kInvalidArgument,
                "built for ABI major 2, host speaks 1");
}

TEST_F(PluginLoaderTest, MissingEntryPointIsRefused) {
  ExpectRefused(TestPlugin("raw_no_entry"), StatusCode::kInvalidArgument,
                "does not export airlock_plugin_entry_v1: not an Airlock ABI-1 plugin");
}

TEST_F(PluginLoaderTest, ManifestTooSmallIsRefused) {
  ExpectRefused(
      TestPlugin("raw_small_manifest"), StatusCode::kInvalidArgument,
      "manifest too small: " + std::to_string(offsetof(airlock_type_plugin_info, vtable)) + " < " +
          std::to_string(AIRLOCK_PLUGIN_INFO_1_0_SIZE));
}

TEST_F(PluginLoaderTest, MissingManifestIsRefused) {
  ExpectRefused(TestPlugin("raw_no_manifest"), StatusCode::kInvalidArgument,
                "entry point returned no manifest");
}

TEST_F(PluginLoaderTest, VtableTooSmallIsRefused) {
  ExpectRefused(TestPlugin("raw_small_vtable"), StatusCode::kInvalidArgument,
                "connector function table too small: " +
                    std::to_string(offsetof(airlock_type_connector_vtable, pull)) + " < " +
                    std::to_string(AIRLOCK_CONNECTOR_VTABLE_1_0_SIZE));
}

TEST_F(PluginLoaderTest, NullMandatoryFunctionIsRefused) {
  ExpectRefused(TestPlugin("raw_null_function"), StatusCode::kInvalidArgument,
                "connector function table member 'describe' is NULL");
}

TEST_F(PluginLoaderTest, FailingEntryPointIsRefusedWithItsMessage) {
  ExpectRefused(TestPlugin("raw_entry_fails"), StatusCode::kFailedPrecondition,
                "entry point failed (not_implemented): this plugin needs ABI minor 7");
}

TEST_F(PluginLoaderTest, UnknownKindIsRefused) {
  ExpectRefused(TestPlugin("raw_unknown_kind"), StatusCode::kInvalidArgument,
                "unknown plugin kind 42");
}

TEST_F(PluginLoaderTest, ConfigSchemaThatIsNotJsonIsRefused) {
  ExpectRefused(TestPlugin("raw_bad_schema"), StatusCode::kInvalidArgument,
                "config schema is not a JSON Schema document");
}

TEST_F(PluginLoaderTest, Sha256PinMismatchShowsExpectedAndActual) {
  const std::string path = TestPlugin("c_numbers");
  const std::string actual = testing::Sha256sum(path);
  const std::string wrong(64, 'a');
  ExpectRefused(path, StatusCode::kFailedPrecondition,
                "SHA-256 mismatch: expected " + wrong + ", actual " + actual, wrong);
}

TEST_F(PluginLoaderTest, MatchingSha256PinLoadsInAnyCase) {
  const std::string path = TestPlugin("c_numbers");
  std::string pin = testing::Sha256sum(path);
  std::transform(pin.begin(), pin.end(), pin.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  auto loaded = loader_.Load(path, pin);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  // Once loaded, a different pin is still refused.
  auto again = loader_.Load(path, std::string(64, 'b'));
  ASSERT_FALSE(again.ok());
  EXPECT_THAT(again.status().message(), HasSubstr("SHA-256 mismatch"));
}

TEST_F(PluginLoaderTest, SkippingUnpinnedHashesStillChecksEveryPin) {
  PluginLoader loader(table_.get(), PluginLoader::UnpinnedHashing::kSkip);
  const std::string path = TestPlugin("c_numbers");
  const std::string other = TestPlugin("test_squares");
  const std::string wrong(64, 'a');
  // A pinned load is hashed and checked as with the default loader.
  auto refused = loader.Load(path, wrong);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr("SHA-256 mismatch: expected " + wrong +
                                                    ", actual " + testing::Sha256sum(path)));
  auto pinned = loader.Load(path, testing::Sha256sum(path));
  ASSERT_TRUE(pinned.ok()) << pinned.status().ToString();
  EXPECT_EQ((*pinned)->manifest().sha256, testing::Sha256sum(path));
  // An unpinned load is not hashed...
  auto unpinned = loader.Load(other, std::nullopt);
  ASSERT_TRUE(unpinned.ok()) << unpinned.status().ToString();
  EXPECT_EQ((*unpinned)->manifest().sha256, "");
  // ...so a later pin on that mapped library cannot be checked and is refused,
  // even when it is the file's true hash.
  auto late = loader.Load(other, testing::Sha256sum(other));
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(late.status().message(), HasSubstr("already loaded unpinned without a hash"));
}

TEST_F(PluginLoaderTest, MalformedPinIsRefused) {
  ExpectRefused(TestPlugin("c_numbers"), StatusCode::kInvalidArgument,
                "SHA-256 pin must be 64 hexadecimal digits", std::string("abc"));
}

TEST_F(PluginLoaderTest, WorldOrGroupWritableFileIsRefused) {
  TempDir dir;
  const std::string copy = dir.path() + "/c_numbers.so";
  testing::CopyFile(TestPlugin("c_numbers"), copy);
  ASSERT_EQ(::chmod(copy.c_str(), 0757), 0);
  ExpectRefused(copy, StatusCode::kFailedPrecondition,
                "is writable by group or others (mode 0757)");
  ASSERT_EQ(::chmod(copy.c_str(), 0775), 0);
  ExpectRefused(copy, StatusCode::kFailedPrecondition,
                "is writable by group or others (mode 0775)");
  ASSERT_EQ(::chmod(copy.c_str(), 0755), 0);
  EXPECT_TRUE(loader_.Load(copy, std::nullopt).ok());
}

TEST_F(PluginLoaderTest, DirectoryWritableByOthersIsRefusedUnlessSticky) {
  TempDir dir;
  const std::string copy = dir.path() + "/c_numbers.so";
  testing::CopyFile(TestPlugin("c_numbers"), copy);
  ASSERT_EQ(::chmod(dir.path().c_str(), 0777), 0);
  ExpectRefused(copy, StatusCode::kFailedPrecondition,
                "its directory " + dir.path() + " is writable by group or others (mode 0777)");
  ASSERT_EQ(::chmod(dir.path().c_str(), 01777), 0);
  auto loaded = loader_.Load(copy, std::nullopt);
  EXPECT_TRUE(loaded.ok()) << loaded.status().ToString();
  ASSERT_EQ(::chmod(dir.path().c_str(), 0700), 0);
}

TEST_F(PluginLoaderTest, SymlinkIsRefused) {
  TempDir dir;
  const std::string link = dir.path() + "/link.so";
  ASSERT_EQ(::symlink(TestPlugin("c_numbers").c_str(), link.c_str()), 0);
  ExpectRefused(link, StatusCode::kFailedPrecondition, "is a symbolic link");
}

TEST_F(PluginLoaderTest, NonexistentFileIsRefused) {
  TempDir dir;
  ExpectRefused(dir.path() + "/missing.so", StatusCode::kFailedPrecondition, "file does not exist");
}

TEST_F(PluginLoaderTest, DirectoryIsRefused) {
  TempDir dir;
  ExpectRefused(dir.path(), StatusCode::kFailedPrecondition, "is not a regular file");
}

TEST_F(PluginLoaderTest, FileThatIsNotASharedObjectReportsTheLoaderError) {
  TempDir dir;
  const std::string fake = dir.Write("fake.so", "#!/bin/sh\necho not a library\n");
  ExpectRefused(fake, StatusCode::kFailedPrecondition, "cannot be loaded: ");
  auto loaded = loader_.Load(fake, std::nullopt);
  // The dynamic loader's own words reach the message.
  EXPECT_THAT(loaded.status().message(),
              ::testing::AnyOf(HasSubstr("invalid ELF header"), HasSubstr("file too short")));
}

TEST(PluginKindTest, NamesRoundTrip) {
  for (airlock_type_plugin_kind kind :
       {AIRLOCK_KIND_IDENTITY, AIRLOCK_KIND_POLICY, AIRLOCK_KIND_CONNECTOR, AIRLOCK_KIND_TUNNEL,
        AIRLOCK_KIND_ISOLATOR}) {
    const auto parsed = ParsePluginKind(PluginKindName(kind));
    ASSERT_TRUE(parsed.has_value());
    EXPECT_EQ(*parsed, kind);
  }
  EXPECT_STREQ(PluginKindName(99), "unknown");
  EXPECT_FALSE(ParsePluginKind("Identity").has_value());
  EXPECT_FALSE(ParsePluginKind("").has_value());
}

}  // namespace
}  // namespace airlock::plugin_host
