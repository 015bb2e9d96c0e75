#include "kubeconfig.h"

#include <yaml-cpp/yaml.h>

#include <filesystem>

#include "airlock/cpp/base64url.hpp"

namespace airlock::isolators::kubernetes {
namespace {

constexpr size_t kMaxKubeconfigBytes = 1 << 20;

// A named entry of a kubeconfig list ("clusters", "users", "contexts").
YAML::Node Named(const YAML::Node& root, const char* list, const std::string& name) {
  const YAML::Node entries = root[list];
  if (!entries || !entries.IsSequence()) return YAML::Node();
  for (const auto& entry : entries) {
    if (entry.IsMap() && entry["name"] && entry["name"].as<std::string>("") == name) return entry;
  }
  return YAML::Node();
}

std::string Text(const YAML::Node& node, const char* key) {
  const YAML::Node v = node[key];
  return v && v.IsScalar() ? v.as<std::string>("") : "";
}

Result<std::string> Base64Decode(const std::string& text, const std::string& what) {
  std::string clean;
  for (char c : text) {
    if (c != '\n' && c != '\r' && c != ' ') clean += c;
  }
  auto decoded = sdk::Base64Decode(clean);
  if (!decoded) return Status::InvalidArgument(what + " is not base64");
  return std::move(*decoded);
}

std::string Relative(const std::string& dir, const std::string& path) {
  if (path.empty() || path[0] == '/') return path;
  return dir + "/" + path;
}

}  // namespace

Result<ClusterAccess> ReadKubeconfig(const std::string& path, const std::string& context) {
  const std::string where = "kubeconfig " + path;
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) return Status::FailedPrecondition(where + ": cannot read it: " + ec.message());
  if (size > kMaxKubeconfigBytes) return Status::InvalidArgument(where + " is larger than 1 MiB");
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    // The position, not the text: a kubeconfig holds keys and tokens.
    return Status::InvalidArgument(where + " is not valid YAML (line " +
                                   std::to_string(e.mark.line + 1) + ")");
  }
  if (!root.IsMap()) return Status::InvalidArgument(where + " is not a kubeconfig");
  const std::string dir = std::filesystem::path(path).parent_path().string();
  try {
    const std::string name = context.empty() ? Text(root, "current-context") : context;
    if (name.empty()) {
      return Status::InvalidArgument(where + " has no current-context; name one as context");
    }
    const YAML::Node ctx = Named(root, "contexts", name)["context"];
    if (!ctx || !ctx.IsMap()) {
      return Status::InvalidArgument(where + " has no context '" + name.substr(0, 128) + "'");
    }
    const std::string cluster_name = Text(ctx, "cluster");
    const std::string user_name = Text(ctx, "user");
    const YAML::Node cluster = Named(root, "clusters", cluster_name)["cluster"];
    if (!cluster || !cluster.IsMap()) {
      return Status::InvalidArgument(where + ": context '" + name.substr(0, 128) +
                                     "' names no cluster it defines");
    }
    ClusterAccess access;
    access.server = Text(cluster, "server");
    while (!access.server.empty() && access.server.back() == '/') access.server.pop_back();
    if (access.server.rfind("https://", 0) != 0) {
      return Status::InvalidArgument(where + ": cluster '" + cluster_name.substr(0, 128) +
                                     "' has no https:// server");
    }
    if (cluster["insecure-skip-tls-verify"] &&
        cluster["insecure-skip-tls-verify"].as<bool>(false)) {
      return Status::InvalidArgument(where + ": cluster '" + cluster_name.substr(0, 128) +
                                     "' skips TLS verification; the isolator always verifies "
                                     "the API server (give certificate-authority)");
    }
    if (cluster["proxy-url"]) {
      return Status::NotImplemented(where + ": proxy-url is not supported");
    }
    access.ca_file = Relative(dir, Text(cluster, "certificate-authority"));
    if (const std::string data = Text(cluster, "certificate-authority-data"); !data.empty()) {
      AIRLOCK_ASSIGN_OR_RETURN(access.ca_pem,
                               Base64Decode(data, where + ": certificate-authority-data"));
    }
    if (access.ca_file.empty() && access.ca_pem.empty()) {
      return Status::InvalidArgument(where + ": cluster '" + cluster_name.substr(0, 128) +
                                     "' has no certificate-authority");
    }

    const YAML::Node user = Named(root, "users", user_name)["user"];
    if (!user || !user.IsMap()) {
      return Status::InvalidArgument(where + ": context '" + name.substr(0, 128) +
                                     "' names no user it defines");
    }
    if (user["exec"] || user["auth-provider"]) {
      return Status::NotImplemented(
          where + ": user '" + user_name.substr(0, 128) +
          "' gets its credential from a plugin (exec or auth-provider), which the isolator does "
          "not run; give it a token (kubectl create token) or a client certificate");
    }
    if (user["username"] || user["password"]) {
      return Status::NotImplemented(where + ": basic authentication is not supported");
    }
    access.token = Text(user, "token");
    access.token_file = Relative(dir, Text(user, "tokenFile"));
    access.client_certificate_file = Relative(dir, Text(user, "client-certificate"));
    access.client_key_file = Relative(dir, Text(user, "client-key"));
    if (const std::string data = Text(user, "client-certificate-data"); !data.empty()) {
      AIRLOCK_ASSIGN_OR_RETURN(access.client_certificate_pem,
                               Base64Decode(data, where + ": client-certificate-data"));
    }
    if (const std::string data = Text(user, "client-key-data"); !data.empty()) {
      AIRLOCK_ASSIGN_OR_RETURN(access.client_key_pem,
                               Base64Decode(data, where + ": client-key-data"));
    }
    const bool has_certificate =
        !access.client_certificate_file.empty() || !access.client_certificate_pem.empty();
    const bool has_key = !access.client_key_file.empty() || !access.client_key_pem.empty();
    if (has_certificate != has_key) {
      return Status::InvalidArgument(where + ": user '" + user_name.substr(0, 128) +
                                     "' has a client certificate without its key, or a key "
                                     "without its certificate");
    }
    if (access.token.empty() && access.token_file.empty() && !has_certificate) {
      return Status::InvalidArgument(where + ": user '" + user_name.substr(0, 128) +
                                     "' has no token, tokenFile or client certificate");
    }
    return access;
  } catch (const YAML::Exception&) {
    return Status::InvalidArgument(where + " is not a kubeconfig the isolator can read");
  }
}

}  // namespace airlock::isolators::kubernetes
