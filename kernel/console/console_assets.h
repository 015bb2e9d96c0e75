// The web console's files (kernel/console/web/*), embedded into the kernel
// at build time and served at /console/ (index.html) and /console/<name>.
// They hold no data and no credential: the page asks for a token (or signs
// in with the identity provider) and calls the JSON API with it, keeping it
// in memory only.
#pragma once

#include <string>
#include <string_view>

namespace airlock {

struct ConsoleAsset {
  std::string_view name;  // "app.js"
  std::string_view content_type;
  std::string_view body;
};

// The embedded file `name`, or null.
const ConsoleAsset* FindConsoleAsset(std::string_view name);

// Scripts, styles and fetches of its own origin only; no inline script or
// style, no framing, no form submission, no <base>, and Trusted Types
// enforced so that no HTML sink can be used even by mistake.
inline constexpr char kConsoleContentSecurityPolicy[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; form-action 'none'; frame-ancestors 'none'; base-uri 'none'; "
    "require-trusted-types-for 'script'; trusted-types 'none'";

// The same policy, letting the page also fetch from `origin` (the OpenID
// provider's discovery and token endpoints). `origin` is a checked https
// origin ("https://idp.example.com:8443").
std::string ConsolePolicyWith(std::string_view origin);

}  // namespace airlock
