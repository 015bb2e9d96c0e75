#include "bench/e2e/control_plane.h"

#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <thread>

#include "tests/support/postgres/subprocess.h"

extern char** environ;

namespace airlock::bench {
namespace {

using nlohmann::json;

double ToMs(double value, const std::string& unit) {
  if (unit == "us") return value / 1000.0;
  if (unit == "s") return value * 1000.0;
  if (unit == "m") return value * 60000.0;
  return value;  // ms
}

uint16_t FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// nginx in the foreground as a child; stopped (QUIT, then KILL) on destruction.
class Nginx {
 public:
  Nginx(const std::string& dir, const std::string& root, const test::TestPki& pki)
      : dir_(dir), plain_port_(FreePort()), tls_port_(FreePort()) {
    std::filesystem::create_directories(dir_ + "/logs");
    std::ofstream(dir_ + "/nginx.conf")
        << "daemon off;\nuser root;\nworker_processes auto;\npid " << dir_ << "/nginx.pid;\n"
        << "error_log " << dir_ << "/logs/error.log warn;\n"
        << "events { worker_connections 4096; }\n"
        << "http {\n  access_log off;\n  keepalive_requests 10000000;\n  keepalive_timeout 120s;\n"
        << "  default_type application/json;\n"
        << "  server {\n    listen 127.0.0.1:" << plain_port_ << ";\n"
        << "    listen 127.0.0.1:" << tls_port_ << " ssl;\n"
        << "    ssl_certificate " << pki.server.cert_file << ";\n"
        << "    ssl_certificate_key " << pki.server.key_file << ";\n"
        << "    root " << root << ";\n  }\n}\n";
    const std::string conf = dir_ + "/nginx.conf";
    std::vector<std::string> args = {"/usr/sbin/nginx",       "-p", dir_, "-c", conf, "-e",
                                     dir_ + "/logs/error.log"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (::posix_spawn(&pid_, argv[0], nullptr, nullptr, argv.data(), environ) != 0) pid_ = -1;
    // Ready when it answers.
    for (int i = 0; i < 100 && pid_ > 0; ++i) {
      test::HttpClient probe("127.0.0.1", plain_port_);
      if (probe.Get("/").status != 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  ~Nginx() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGQUIT);
    int status = 0;
    for (int i = 0; i < 50; ++i) {
      if (::waitpid(pid_, &status, WNOHANG) == pid_) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status, 0);
  }
  bool running() const { return pid_ > 0; }
  uint16_t plain_port() const { return plain_port_; }
  uint16_t tls_port() const { return tls_port_; }

 private:
  std::string dir_;
  uint16_t plain_port_, tls_port_;
  pid_t pid_ = -1;
};

std::string LuaHeaders(const std::string& token) {
  return "wrk.headers[\"Authorization\"] = \"Bearer " + std::string(token) + "\"\n";
}

json ToJson(const WrkResult& r) {
  json j = {{"connections", r.connections}, {"requests_per_s", r.requests_per_s},
            {"avg_ms", r.avg_ms},           {"p50_ms", r.p50_ms},
            {"p90_ms", r.p90_ms},           {"p99_ms", r.p99_ms},
            {"requests", r.requests},       {"errors", r.errors}};
  if (!r.error.empty()) j["error"] = r.error;
  return j;
}

}  // namespace

WrkResult RunWrk(const std::string& url, int connections, double seconds, const std::string& lua,
                 const std::string& dir) {
  WrkResult out;
  out.connections = connections;
  const std::string script = dir + "/wrk-" + std::to_string(::getpid()) + ".lua";
  std::ofstream(script) << lua;
  const int threads = connections >= 2 ? 2 : 1;
  std::vector<std::string> argv = {"wrk",
                                   "-t" + std::to_string(threads),
                                   "-c" + std::to_string(connections),
                                   "-d" + std::to_string(static_cast<int>(seconds)) + "s",
                                   "--timeout",
                                   "10s",
                                   "--latency",
                                   "-s",
                                   script,
                                   url};
  test::pg_internal::ProcessResult r;
  try {
    r = test::pg_internal::RunProcess(argv);
  } catch (const std::exception& e) {
    out.error = e.what();
    return out;
  }
  if (r.exit_code != 0) {
    out.error = "wrk exited " + std::to_string(r.exit_code) + ": " + r.err.substr(0, 300);
    return out;
  }
  std::smatch m;
  const std::string& s = r.out;
  if (std::regex_search(s, m, std::regex(R"(Requests/sec:\s+([0-9.]+))"))) {
    out.requests_per_s = std::stod(m[1]);
  }
  if (std::regex_search(s, m, std::regex(R"((\d+) requests in)"))) out.requests = std::stoll(m[1]);
  if (std::regex_search(s, m, std::regex(R"(Latency\s+([0-9.]+)(us|ms|s|m))"))) {
    out.avg_ms = ToMs(std::stod(m[1]), m[2]);
  }
  auto pct = [&](const char* p) {
    std::smatch pm;
    if (std::regex_search(s, pm,
                          std::regex(std::string(R"(\s)") + p + R"(%\s+([0-9.]+)(us|ms|s|m))"))) {
      return ToMs(std::stod(pm[1]), pm[2]);
    }
    return 0.0;
  };
  out.p50_ms = pct("50");
  out.p90_ms = pct("90");
  out.p99_ms = pct("99");
  if (std::regex_search(s, m, std::regex(R"(Non-2xx or 3xx responses:\s+(\d+))"))) {
    out.errors += std::stoll(m[1]);
  }
  if (std::regex_search(
          s, m,
          std::regex(R"(Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+))"))) {
    for (int i = 1; i <= 4; ++i) out.errors += std::stoll(m[i]);
  }
  return out;
}

json RunControlPlane(Sources& sources, const std::string& dir, const std::vector<int>& levels,
                     double seconds) {
  json section = {{"connections", levels}, {"seconds_per_level", seconds}};
  const Scale tiny{10, 10, 10, "cp"};
  sources.Load(tiny);
  const test::TestPki pki = test::GenerateTestPki(dir);
  std::string static_json;
  const std::string post_lua =
      LuaHeaders(kRequesterToken) +
      "wrk.method = \"POST\"\n"
      "wrk.headers[\"Content-Type\"] = \"application/json\"\n"
      "wrk.body = '{\"datasets\": [\"regions\"], \"purpose\": \"bench\"}'\n";
  const std::string get_lua = LuaHeaders(kRequesterToken);
  // The ceiling: nginx serving the first kernel's answer as a static file.
  // Each kernel GET level is followed at once by nginx at the same level, so
  // the two figures of a ratio are measured seconds apart, not minutes
  // (other tenants of a shared machine come and go).
  const std::string root = dir + "/nginx-root";
  std::filesystem::create_directories(root);
  std::unique_ptr<Nginx> nginx;
  json nginx_runs = {{"plain", json::array()}, {"tls", json::array()}};
  for (bool tls : {false, true}) {
    const std::string mode = tls ? "tls" : "plain";
    const std::string kdir = dir + "/kernel-" + mode;
    std::filesystem::create_directories(kdir);
    KernelOptions o;
    o.isolator = "inprocess";
    o.auto_approve = true;
    o.api_tls = tls;
    test::KernelProcess kernel(kdir, KernelConfig(sources, tiny, kdir, pki, o));
    if (!kernel.Start()) {
      section["kernel_" + mode] = {{"error", "kernel did not start"}};
      std::fprintf(stderr, "control plane kernel:\n%s\n", kernel.log().c_str());
      continue;
    }
    Api api(kernel.port(), tls ? pki.ca.cert_file : "");
    std::string error;
    const std::string id = api.Create(&error);
    if (nginx == nullptr) {
      static_json = api.Get(id).dump();
      std::ofstream(root + "/request.json") << static_json;
      nginx = std::make_unique<Nginx>(dir + "/nginx", root, pki);
    }
    const std::string base =
        std::string(tls ? "https" : "http") + "://127.0.0.1:" + std::to_string(kernel.port());
    const std::string static_url = std::string(tls ? "https" : "http") + "://127.0.0.1:" +
                                   std::to_string(tls ? nginx->tls_port() : nginx->plain_port()) +
                                   "/request.json";
    json get = json::array(), post = json::array();
    for (int c : levels) {
      get.push_back(ToJson(RunWrk(base + "/v1/requests/" + id, c, seconds, get_lua, kdir)));
      nginx_runs[mode].push_back(ToJson(RunWrk(static_url, c, seconds, get_lua, dir)));
      std::fprintf(stderr, "  control %s GET c=%d: %.0f req/s (nginx %.0f req/s)\n", mode.c_str(),
                   c, get.back().value("requests_per_s", 0.0),
                   nginx_runs[mode].back().value("requests_per_s", 0.0));
    }
    for (int c : levels) {
      post.push_back(ToJson(RunWrk(base + "/v1/requests", c, seconds, post_lua, kdir)));
      std::fprintf(stderr, "  control %s POST c=%d: %.0f req/s\n", mode.c_str(), c,
                   post.back().value("requests_per_s", 0.0));
    }
    section["kernel_" + mode] = {{"get", get}, {"post", post}};
    kernel.Stop();
  }
  section["nginx_plain"] = nginx_runs["plain"];
  section["nginx_tls"] = nginx_runs["tls"];
  section["static_bytes"] = static_json.size();
  // Ratios: authenticated GET against nginx at the same connections.
  json ratios = json::object();
  for (const char* mode : {"plain", "tls"}) {
    json r = json::array();
    const json& k = section[std::string("kernel_") + mode];
    const json& n = section[std::string("nginx_") + mode];
    for (size_t i = 0; i < levels.size(); ++i) {
      const double kr = k.contains("get") ? k["get"][i].value("requests_per_s", 0.0) : 0.0;
      const double nr = i < n.size() ? n[i].value("requests_per_s", 0.0) : 0.0;
      r.push_back(nr > 0 ? kr / nr : 0.0);
    }
    ratios[std::string("get_vs_nginx_") + mode] = r;
  }
  section["ratios"] = ratios;
  return section;
}

}  // namespace airlock::bench
