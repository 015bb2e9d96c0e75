// Where the CLI keeps what it must remember, all under one directory of the
// user's ($AIRLOCK_CONFIG_DIR, else $XDG_CONFIG_HOME/airlock, else
// ~/.config/airlock; mode 0700):
//   config.json          {"server","ca_file","token"}; mode 0600
//   grants/<id>.json     a request's tunnel grant, collected once from the
//                        kernel and kept for connect and query; mode 0600
// $AIRLOCK_SERVER and $AIRLOCK_TOKEN override what config.json says (for
// scripts; a token never goes on a command line).
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "airlock/cpp/status.hpp"

namespace airlock::cli {

struct Settings {
  std::string server;   // https://airlock.example.com:8443
  std::string ca_file;  // empty: the system's trust store
  std::string token;
};

std::string ConfigDir();

// What config.json says, with the environment's overrides; an absent file
// is an empty Settings.
Result<Settings> LoadSettings();
// Writes config.json atomically, 0600 (the directory 0700).
Status SaveSettings(const Settings& settings);
// Removes the stored token (and every kept grant).
Status ForgetLogin();

// The kept grant of request `id`, if any.
std::optional<nlohmann::json> LoadGrant(const std::string& id);
Status SaveGrant(const std::string& id, const nlohmann::json& grant);

}  // namespace airlock::cli
