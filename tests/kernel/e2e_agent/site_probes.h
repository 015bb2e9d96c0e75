// What the agent suites look at from outside the processes they start: a
// process's memory and a directory's files (is a value there?), the
// configuration of a real airlock-agent, and network namespaces that give an
// agent its own network whose only route leads to the kernel.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/kernel/e2e/kernel_process.h"
#include "tests/kernel/e2e/tunnel_session.h"

namespace airlock::test {

inline std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

template <typename Predicate>
bool WaitUntil(Predicate predicate, std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (predicate()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  return predicate();
}

// Whether `needle` appears in any readable mapping of process `pid`'s
// memory (read through /proc/<pid>/mem: the test started it). Mappings over
// 1 GiB (sanitizer shadow and reserves) are skipped.
inline bool MemoryHolds(pid_t pid, const std::string& needle) {
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  const int mem = ::open(("/proc/" + std::to_string(pid) + "/mem").c_str(), O_RDONLY);
  if (mem < 0) return false;
  std::string line, chunk;
  bool found = false;
  while (!found && std::getline(maps, line)) {
    unsigned long begin = 0, end = 0;
    char perms[5] = {};
    if (std::sscanf(line.c_str(), "%lx-%lx %4s", &begin, &end, perms) != 3) continue;
    if (perms[0] != 'r' || end - begin > (1ul << 30)) continue;
    // Overlapping reads so that a match across two chunks is seen.
    constexpr size_t kChunk = 1 << 20;
    for (unsigned long at = begin; at < end && !found; at += kChunk) {
      const size_t want = std::min<size_t>(kChunk + needle.size(), end - at);
      chunk.resize(want);
      const ssize_t got = ::pread(mem, chunk.data(), want, static_cast<off_t>(at));
      if (got <= 0) break;
      found = std::string_view(chunk.data(), static_cast<size_t>(got)).find(needle) !=
              std::string_view::npos;
    }
  }
  ::close(mem);
  return found;
}

// Whether any file under `dir` holds `needle`.
inline bool FilesHold(const std::string& dir, const std::string& needle) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir, ec)) {
    if (entry.is_regular_file(ec) &&
        Slurp(entry.path().string()).find(needle) != std::string::npos) {
      return true;
    }
  }
  return false;
}

// The records of the kernel's audit file at `path`, oldest first.
inline std::vector<nlohmann::json> AuditRecords(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    nlohmann::json record = nlohmann::json::parse(line, nullptr, false);
    if (!record.is_object()) continue;
    out.push_back(record.contains("event") ? record : record.value("record", record));
  }
  return out;
}

// A query on `tunnel` that would run for minutes, cut short by `act`.
struct CutShortQuery {
  bool ran_until_act = false;  // still running when `act` began
  ClientResponse answer;
  // From the start of `act` to the query's end.
  std::chrono::steady_clock::duration ended_after{};
};

// Starts the long query, lets it run half a second, then calls `act` and
// waits for the query to end.
inline CutShortQuery QueryCutShortBy(TunnelSession& tunnel, const std::function<void()>& act) {
  CutShortQuery out;
  std::atomic<bool> done{false};
  std::chrono::steady_clock::time_point ended;
  std::thread running([&] {
    out.answer = TunnelQuery(tunnel,
                             "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE "
                             "x < 4000000000) SELECT count(*) FROM c");
    ended = std::chrono::steady_clock::now();
    done = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  out.ran_until_act = !done.load();
  const auto acting = std::chrono::steady_clock::now();
  act();
  running.join();
  out.ended_after = ended - acting;
  return out;
}

// Runs `command` through /bin/sh; true when it exits 0.
inline bool Shell(const std::string& command) {
  return std::system(command.c_str()) == 0;
}

// An airlock-agent's configuration in `dir`: named `agent_name`, dialling
// the kernel at `kernel_address`:`kernel_port` (trusting the kernel's agent
// CA under <dir>/state/agents), its state in <dir>/<state>, its enrollment
// token in <dir>/<file>.token, enclaves under the `process` isolator
// requiring `min_isolation`.
inline nlohmann::json SiteAgentConfig(const std::string& dir, const std::string& file,
                                      const std::string& state, const std::string& token,
                                      const std::string& agent_name,
                                      const std::string& kernel_address, uint16_t kernel_port,
                                      const nlohmann::json& min_isolation) {
  const std::string token_file = dir + "/" + file + ".token";
  std::ofstream(token_file) << token << "\n";
  std::filesystem::permissions(
      token_file, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  return {{"name", agent_name},
          {"kernel",
           {{"address", kernel_address},
            {"port", kernel_port},
            {"ca_file", dir + "/state/agents/ca.crt"}}},
          {"state_dir", dir + "/" + state},
          {"enrollment_token_file", token_file},
          {"reconnect_ms", 100},
          {"isolator",
           {{"plugin", PluginPath("airlock_isolator_process")},
            {"config",
             {{"state_dir", dir + "/" + state + "-enclaves"}, {"min_isolation", min_isolation}}}}}};
}

// Network namespaces. The test moves itself (and the kernel it starts) into
// a namespace of its own first (unshare(CLONE_NEWNET)), then links each
// agent's namespace to it by a veth pair on a /30 of loopback-range
// addresses (route_localnet lets them travel on a veth). Only 127.0.0.1 is
// local on either side, not all of 127.0.0.0/8.

// The kernel's side of link `name` ("vk0"), holding `address`/30.
inline bool AddKernelSideLink(const std::string& name, const std::string& peer,
                              const std::string& address) {
  return Shell("ip link set lo up && ip link add " + name + " type veth peer name " + peer +
               " && (ip route del local 127.0.0.0/8 dev lo table local 2>/dev/null; true) && "
               "sysctl -qw net.ipv4.conf.all.route_localnet=1 && ip addr add " +
               address + "/30 dev " + name + " && sysctl -qw net.ipv4.conf." + name +
               ".route_localnet=1 && ip link set " + name + " up");
}

// Waits until process `pid` (started as `unshare --net -- ...`) is in a
// network namespace other than this process's. Its command line names the
// agent before `unshare` has made that namespace, so only the namespace
// itself tells; a link moved earlier would land in this namespace.
inline bool WaitForOwnNetwork(pid_t pid) {
  const std::string own = "/proc/self/ns/net";
  const std::string theirs = "/proc/" + std::to_string(pid) + "/ns/net";
  return WaitUntil([&] {
    std::error_code a, b;
    const auto mine = std::filesystem::read_symlink(own, a);
    const auto its = std::filesystem::read_symlink(theirs, b);
    return !a && !b && mine != its;
  });
}

// Moves `peer` into the network namespace of process `pid` and gives it
// `address`/30 there: that process's only way out.
inline bool GiveLinkTo(pid_t pid, const std::string& peer, const std::string& address) {
  const std::string p = std::to_string(pid);
  return Shell("ip link set " + peer + " netns " + p + " && nsenter -t " + p +
               " -n sh -c 'ip link set lo up && "
               "ip route del local 127.0.0.0/8 dev lo table local && "
               "sysctl -qw net.ipv4.conf.all.route_localnet=1 && ip addr add " +
               address + "/30 dev " + peer + " && sysctl -qw net.ipv4.conf." + peer +
               ".route_localnet=1 && ip link set " + peer + " up'");
}

// Whether process `pid`'s network namespace reaches `address`:`port`.
inline bool NamespaceReaches(pid_t pid, const std::string& address, uint16_t port) {
  return Shell("nsenter -t " + std::to_string(pid) + " -n bash -c 'exec 3<>/dev/tcp/" + address +
               "/" + std::to_string(port) + "' 2>/dev/null");
}

}  // namespace airlock::test
