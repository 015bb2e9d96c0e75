// The route table: pattern matching, 405 versus 404, and agreement with the
// published OpenAPI document (every route documented, every documented
// operation routed, and who may call each one stated the same way).
#include "kernel/api/route_table.h"

#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "kernel/api/v1_api.h"

namespace airlock {
namespace {

using nlohmann::json;

RouteMatcher SampleMatcher() {
  return RouteMatcher({
      {"GET", "/healthz", RouteAccess::kPublic},
      {"GET", "/v1/things", RouteAccess::kAuthenticated},
      {"POST", "/v1/things", RouteAccess::kAuthenticated},
      {"GET", "/v1/things/latest", RouteAccess::kAuthenticated},
      {"GET", "/v1/things/{id}", RouteAccess::kAuthenticated},
      {"POST", "/v1/things/{id}/parts/{part}", RouteAccess::kAdmin},
  });
}

TEST(RouteMatcher, MatchesLiteralsAndParameters) {
  const RouteMatcher matcher = SampleMatcher();
  auto m = matcher.Find("GET", PathSegments("/v1/things/t_1"));
  ASSERT_EQ(m.index, 4);
  EXPECT_EQ(m.params.Get("id"), "t_1");
  EXPECT_EQ(m.params.Get("part"), "");

  m = matcher.Find("POST", PathSegments("//v1/things/t_2/parts/p9/"));
  ASSERT_EQ(m.index, 5);
  EXPECT_EQ(m.params.Get("id"), "t_2");
  EXPECT_EQ(m.params.Get("part"), "p9");

  // A literal listed before a parameter at the same place wins.
  EXPECT_EQ(matcher.Find("GET", PathSegments("/v1/things/latest")).index, 3);
  EXPECT_EQ(matcher.Find("POST", PathSegments("/v1/things")).index, 2);
}

TEST(RouteMatcher, TellsAWrongMethodFromAnUnknownPath) {
  const RouteMatcher matcher = SampleMatcher();
  auto m = matcher.Find("DELETE", PathSegments("/v1/things"));
  EXPECT_EQ(m.index, -1);
  EXPECT_EQ(m.allowed_methods, "GET, POST");
  EXPECT_FALSE(m.path_is_public);

  m = matcher.Find("POST", PathSegments("/healthz"));
  EXPECT_EQ(m.index, -1);
  EXPECT_EQ(m.allowed_methods, "GET");
  EXPECT_TRUE(m.path_is_public);

  for (const char* path : {"/v1/things/t_1/parts", "/v1/thing", "/", "/v1/things/t/parts/p/x"}) {
    m = matcher.Find("GET", PathSegments(path));
    EXPECT_EQ(m.index, -1) << path;
    EXPECT_EQ(m.allowed_methods, "") << path;
  }
  // Methods are case-sensitive.
  EXPECT_EQ(matcher.Find("get", PathSegments("/healthz")).index, -1);
}

TEST(RouteMatcherDeathTest, RefusesAMalformedTable) {
  EXPECT_DEATH(RouteMatcher({{"GET", "/v1/{id", RouteAccess::kPublic}}), "malformed parameter");
  EXPECT_DEATH(
      RouteMatcher({{"GET", "/v1/a", RouteAccess::kPublic}, {"GET", "/v1/a", RouteAccess::kAdmin}}),
      "named twice");
}

json LoadOpenApi() {
  std::ifstream in(std::string(AIRLOCK_SOURCE_DIR) + "/docs/api/openapi.json");
  std::stringstream text;
  text << in.rdbuf();
  return json::parse(text.str());
}

std::string AccessName(RouteAccess access) {
  switch (access) {
    case RouteAccess::kPublic:
      return "public";
    case RouteAccess::kAuthenticated:
      return "authenticated";
    case RouteAccess::kAdmin:
      return "admin";
    case RouteAccess::kPlatformAdmin:
      return "platform-admin";
    case RouteAccess::kPeer:
      return "peer";
  }
  return "?";
}

// What the document says of one operation: public when it overrides the
// global security with an empty list, admin when marked so, peer when only
// the replicas' peer secret opens it, else any authenticated principal.
std::string DocumentedAccess(const json& operation) {
  if (operation.contains("security") && operation["security"].empty()) return "public";
  if (operation.value("x-airlock-access", "") == "admin") return "admin";
  if (operation.value("x-airlock-access", "") == "platform-admin") return "platform-admin";
  if (operation.value("x-airlock-access", "") == "peer") {
    const bool peer_scheme = operation.contains("security") &&
                             operation["security"] == json::array({{{"peer", json::array()}}});
    return peer_scheme ? "peer" : "peer without the peer security scheme";
  }
  return "authenticated";
}

TEST(V1ApiRoutes, AgreeWithTheOpenApiDocument) {
  const json document = LoadOpenApi();
  ASSERT_TRUE(document.contains("paths"));
  const V1Api api(V1Api::Dependencies{});

  std::set<std::string> routed;
  for (const RouteSpec& route : api.routes()) {
    const std::string method(route.method), pattern(route.pattern);
    std::string lower = method;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    routed.insert(method + " " + pattern);
    SCOPED_TRACE(method + " " + pattern);
    ASSERT_TRUE(document["paths"].contains(pattern)) << "route missing from openapi.json";
    ASSERT_TRUE(document["paths"][pattern].contains(lower)) << "method missing from openapi.json";
    const json& operation = document["paths"][pattern][lower];
    EXPECT_EQ(DocumentedAccess(operation), AccessName(route.access));
    if (route.access != RouteAccess::kPublic) {
      EXPECT_TRUE(operation["responses"].contains("401")) << "401 not documented";
    }
    if (route.access == RouteAccess::kAdmin || route.access == RouteAccess::kPlatformAdmin) {
      EXPECT_TRUE(operation["responses"].contains("403")) << "403 not documented";
    }
  }
  static const std::set<std::string> kHttpMethods = {"get", "put", "post", "delete", "patch"};
  for (const auto& [path, item] : document["paths"].items()) {
    for (const auto& [method, operation] : item.items()) {
      if (!kHttpMethods.count(method)) continue;
      std::string upper = method;
      for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      EXPECT_TRUE(routed.count(upper + " " + path))
          << upper << " " << path << " is documented but not routed";
    }
  }
}

}  // namespace
}  // namespace airlock
