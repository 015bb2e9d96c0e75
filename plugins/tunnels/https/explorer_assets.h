// The web explorer served at /t/<id>/: one HTML page, its script and its
// stylesheet (explorer/*.{html,js,css}, embedded into the plugin at build
// time). They hold no data and need no credential; the script asks the user
// for the credential and calls the endpoint's JSON API with it.
#pragma once

#include <string_view>

#include "http_util.h"

namespace airlock::tunnels::https {

// Same-origin scripts, styles and fetches only; no inline script or style, no
// framing, no form submission, no <base>, and Trusted Types enforced so that
// no HTML sink can be used even by mistake.
inline constexpr char kExplorerContentSecurityPolicy[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "form-action 'none'; frame-ancestors 'none'; base-uri 'none'; "
    "require-trusted-types-for 'script'; trusted-types 'none'";

// The page, script or stylesheet for `action` (kExplorerPage, kExplorerScript,
// kExplorerStyle) with its security headers, or the 308 redirect from
// /t/<id> to /t/<id>/ for kExplorerRedirect.
Response ExplorerResponse(Action action, std::string_view endpoint_id, unsigned version,
                          bool keep_alive);

}  // namespace airlock::tunnels::https
