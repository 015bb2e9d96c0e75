// The HTTP API's route table: each route is a method, a path pattern, who may
// call it and whether it may be answered on an I/O thread. Patterns are
// literal segments and "{name}" parameters ("/v1/requests/{id}/approve"); a
// parameter matches exactly one non-empty segment. The table is checked
// against docs/api/openapi.json by a test, so the document and the code name
// the same routes.
//
// Thread-safety: immutable after construction; Find may run concurrently.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace airlock {

// Who may call a route.
enum class RouteAccess {
  kPublic,         // no credential (health, metrics, the API description)
  kAuthenticated,  // any principal the identity chain accepts
  kAdmin,          // an admin: of the platform, or (with tenants) of the caller's tenant
  kPlatformAdmin,  // an admin of the platform (access.admin_groups), never a tenant's
  kPeer,           // another kernel replica (the shared peer secret), never a principal
};

struct RouteSpec {
  std::string_view method;   // "GET", "POST", ...
  std::string_view pattern;  // "/v1/requests/{id}"
  RouteAccess access = RouteAccess::kAuthenticated;
  // May be answered on an HTTP I/O thread: a read that waits on no commit,
  // no network and no long lock (see HttpHandler). Authentication must not
  // block either, which the caller checks separately.
  bool answers_on_io_thread = false;
};

// The values of a matched route's "{name}" segments, as views into the path.
class PathParams {
 public:
  static constexpr size_t kMaxParams = 4;
  // The value of parameter `name`; empty when the route has none such.
  std::string_view Get(std::string_view name) const;
  bool Add(std::string_view name, std::string_view value);

 private:
  std::array<std::pair<std::string_view, std::string_view>, kMaxParams> params_{};
  size_t size_ = 0;
};

// Splits "/v1/requests/req_1/approve" into {"v1","requests","req_1","approve"};
// empty segments (repeated slashes) are skipped.
std::vector<std::string_view> PathSegments(std::string_view path);

class RouteMatcher {
 public:
  // Aborts on a malformed table (a programming error, found by every test
  // that builds the API): an unbalanced "{", more than kMaxParams parameters,
  // or a method and pattern named twice.
  explicit RouteMatcher(std::vector<RouteSpec> specs);

  struct Match {
    // Index into specs() of the route for this method and path; -1 if none.
    int index = -1;
    PathParams params;
    // When the path matches but the method does not: the methods it allows,
    // comma-separated ("GET, POST"), and whether any of them is public.
    std::string allowed_methods;
    bool path_is_public = false;
  };
  Match Find(std::string_view method, const std::vector<std::string_view>& segments) const;

  const std::vector<RouteSpec>& specs() const { return specs_; }

 private:
  struct Compiled {
    std::vector<std::string_view> segments;  // "{id}" kept as is
  };
  bool Matches(const Compiled& route, const std::vector<std::string_view>& segments,
               PathParams* params) const;

  std::vector<RouteSpec> specs_;
  std::vector<Compiled> compiled_;
};

}  // namespace airlock
