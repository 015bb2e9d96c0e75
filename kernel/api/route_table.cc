#include "kernel/api/route_table.h"

#include <cstdio>
#include <cstdlib>

namespace airlock {

namespace {

bool IsParameter(std::string_view segment) {
  return segment.size() > 2 && segment.front() == '{' && segment.back() == '}';
}

[[noreturn]] void BadTable(std::string_view pattern, const char* why) {
  std::fprintf(stderr, "route table: %.*s: %s\n", static_cast<int>(pattern.size()), pattern.data(),
               why);
  std::abort();
}

}  // namespace

std::string_view PathParams::Get(std::string_view name) const {
  for (size_t i = 0; i < size_; ++i) {
    if (params_[i].first == name) return params_[i].second;
  }
  return {};
}

bool PathParams::Add(std::string_view name, std::string_view value) {
  if (size_ == kMaxParams) return false;
  params_[size_++] = {name, value};
  return true;
}

std::vector<std::string_view> PathSegments(std::string_view path) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (start < path.size()) {
    while (start < path.size() && path[start] == '/') ++start;
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    if (end > start) out.push_back(path.substr(start, end - start));
    start = end;
  }
  return out;
}

RouteMatcher::RouteMatcher(std::vector<RouteSpec> specs) : specs_(std::move(specs)) {
  compiled_.reserve(specs_.size());
  for (size_t i = 0; i < specs_.size(); ++i) {
    const RouteSpec& spec = specs_[i];
    Compiled compiled{PathSegments(spec.pattern)};
    size_t params = 0;
    for (std::string_view segment : compiled.segments) {
      const bool opens = segment.find('{') != std::string_view::npos;
      const bool closes = segment.find('}') != std::string_view::npos;
      if ((opens || closes) && !IsParameter(segment)) BadTable(spec.pattern, "malformed parameter");
      if (IsParameter(segment)) ++params;
    }
    if (params > PathParams::kMaxParams) BadTable(spec.pattern, "too many parameters");
    for (size_t j = 0; j < i; ++j) {
      if (specs_[j].method == spec.method && specs_[j].pattern == spec.pattern) {
        BadTable(spec.pattern, "named twice for one method");
      }
    }
    compiled_.push_back(std::move(compiled));
  }
}

bool RouteMatcher::Matches(const Compiled& route, const std::vector<std::string_view>& segments,
                           PathParams* params) const {
  if (route.segments.size() != segments.size()) return false;
  PathParams found;
  for (size_t i = 0; i < segments.size(); ++i) {
    const std::string_view want = route.segments[i];
    if (IsParameter(want)) {
      found.Add(want.substr(1, want.size() - 2), segments[i]);
    } else if (want != segments[i]) {
      return false;
    }
  }
  *params = found;
  return true;
}

RouteMatcher::Match RouteMatcher::Find(std::string_view method,
                                       const std::vector<std::string_view>& segments) const {
  Match match;
  PathParams params;
  // A literal segment beats a parameter at the same place: routes are tried
  // in table order, so the table lists "/v1/x/literal" before "/v1/x/{p}".
  for (size_t i = 0; i < compiled_.size(); ++i) {
    if (!Matches(compiled_[i], segments, &params)) continue;
    if (specs_[i].method == method) {
      match.index = static_cast<int>(i);
      match.params = params;
      match.allowed_methods.clear();
      return match;
    }
    if (match.allowed_methods.find(specs_[i].method) == std::string::npos) {
      if (!match.allowed_methods.empty()) match.allowed_methods += ", ";
      match.allowed_methods += specs_[i].method;
    }
    if (specs_[i].access == RouteAccess::kPublic) match.path_is_public = true;
  }
  return match;
}

}  // namespace airlock
