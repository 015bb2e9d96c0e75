#include "cli/settings.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace airlock::cli {

namespace {

namespace fs = std::filesystem;

std::string Env(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? std::string(value) : std::string();
}

Status MakePrivateDir(const std::string& path) {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) return Status::Unavailable("cannot create " + path + ": " + ec.message());
  if (::chmod(path.c_str(), 0700) != 0) {
    return Status::Unavailable("cannot restrict " + path + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

// Writes `text` to `path` through a 0600 temporary file and a rename.
Status WritePrivate(const std::string& path, const std::string& text) {
  const std::string temporary = path + ".tmp";
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::Unavailable("cannot write " + path + ": " + std::strerror(errno));
  size_t written = 0;
  while (written < text.size()) {
    const ssize_t n = ::write(fd, text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      return Status::Unavailable("cannot write " + path + ": " + std::strerror(errno));
    }
    written += static_cast<size_t>(n);
  }
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  if (!synced || ::rename(temporary.c_str(), path.c_str()) != 0) {
    return Status::Unavailable("cannot write " + path + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

Result<std::optional<nlohmann::json>> ReadJson(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::optional<nlohmann::json>();
  std::stringstream text;
  text << in.rdbuf();
  auto parsed = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_object()) return Status::InvalidArgument(path + " is not a JSON object");
  return std::optional<nlohmann::json>(std::move(parsed));
}

bool SafeId(const std::string& id) {
  return !id.empty() && id.size() <= 64 &&
         id.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") ==
             std::string::npos;
}

}  // namespace

std::string ConfigDir() {
  if (std::string dir = Env("AIRLOCK_CONFIG_DIR"); !dir.empty()) return dir;
  if (std::string xdg = Env("XDG_CONFIG_HOME"); !xdg.empty()) return xdg + "/airlock";
  return Env("HOME") + "/.config/airlock";
}

Result<Settings> LoadSettings() {
  Settings settings;
  AIRLOCK_ASSIGN_OR_RETURN(auto stored, ReadJson(ConfigDir() + "/config.json"));
  if (stored) {
    settings.server = stored->value("server", "");
    settings.ca_file = stored->value("ca_file", "");
    settings.token = stored->value("token", "");
  }
  if (std::string server = Env("AIRLOCK_SERVER"); !server.empty()) settings.server = server;
  if (std::string token = Env("AIRLOCK_TOKEN"); !token.empty()) settings.token = token;
  if (std::string ca = Env("AIRLOCK_CA_FILE"); !ca.empty()) settings.ca_file = ca;
  return settings;
}

Status SaveSettings(const Settings& settings) {
  AIRLOCK_RETURN_IF_ERROR(MakePrivateDir(ConfigDir()));
  const nlohmann::json stored = {
      {"server", settings.server}, {"ca_file", settings.ca_file}, {"token", settings.token}};
  return WritePrivate(ConfigDir() + "/config.json", stored.dump(2) + "\n");
}

Status ForgetLogin() {
  AIRLOCK_ASSIGN_OR_RETURN(auto stored, ReadJson(ConfigDir() + "/config.json"));
  std::error_code ec;
  fs::remove_all(ConfigDir() + "/grants", ec);
  if (!stored) return Status::Ok();
  (*stored)["token"] = "";
  return WritePrivate(ConfigDir() + "/config.json", stored->dump(2) + "\n");
}

std::optional<nlohmann::json> LoadGrant(const std::string& id) {
  if (!SafeId(id)) return std::nullopt;
  auto grant = ReadJson(ConfigDir() + "/grants/" + id + ".json");
  if (!grant.ok() || !*grant) return std::nullopt;
  return **grant;
}

Status SaveGrant(const std::string& id, const nlohmann::json& grant) {
  if (!SafeId(id)) return Status::InvalidArgument("not a request id: " + id);
  AIRLOCK_RETURN_IF_ERROR(MakePrivateDir(ConfigDir()));
  AIRLOCK_RETURN_IF_ERROR(MakePrivateDir(ConfigDir() + "/grants"));
  return WritePrivate(ConfigDir() + "/grants/" + id + ".json", grant.dump() + "\n");
}

}  // namespace airlock::cli
