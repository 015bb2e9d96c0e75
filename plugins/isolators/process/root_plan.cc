#include "root_plan.h"

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <set>

namespace airlock::isolators::process {
namespace {

constexpr size_t kMaxReadPaths = 256;
constexpr size_t kMaxPathBytes = 4096;

// Host directories every enclave needs, bound when they exist.
constexpr const char* kSystemDirs[] = {"/usr/lib",   "/usr/lib64",
                                       "/usr/lib32", "/usr/libx32",
                                       "/etc/ssl",   "/usr/share/ca-certificates",
                                       "/etc/pki",   "/usr/share/zoneinfo"};
constexpr const char* kSystemFiles[] = {"/etc/ld.so.cache", "/etc/localtime"};
// Top-level library links of a merged-/usr system (/lib -> usr/lib), or
// directories of their own on older layouts.
constexpr const char* kLibraryRoots[] = {"/lib", "/lib64", "/lib32", "/libx32"};
constexpr const char* kDevices[] = {"/dev/null", "/dev/zero", "/dev/random", "/dev/urandom"};

bool IsUnder(const std::string& path, const std::string& dir) {
  if (dir == "/") return true;
  return path == dir || (path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
                         path[dir.size()] == '/');
}

class Planner {
 public:
  explicit Planner(RootPlan* plan) : plan_(plan) {}

  // mkdir -p of `path`'s directories inside the new root (not `path` itself).
  void Parents(const std::string& path) {
    std::string prefix;
    size_t pos = 1;
    while ((pos = path.find('/', pos)) != std::string::npos) {
      prefix = path.substr(0, pos);
      Mkdir(prefix);
      ++pos;
    }
  }
  void Mkdir(const std::string& path) {
    if (made_.insert(path).second) Add(RootStep::kMkdir, path, "");
  }
  void Add(RootStep::Kind kind, const std::string& path, std::string source) {
    plan_->steps.push_back({kind, plan_->new_root + path, std::move(source)});
  }
  // Binds an existing host directory or file read-only at the same path.
  // Paths inside something already bound are visible already.
  void Bind(const std::string& path, bool device = false) {
    for (const auto& done : bound_) {
      if (IsUnder(path, done)) return;
    }
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return;
    Parents(path);
    if (S_ISDIR(st.st_mode)) {
      Mkdir(path);
    } else if (S_ISREG(st.st_mode) || (device && S_ISCHR(st.st_mode))) {
      Add(RootStep::kTouch, path, "");
    } else {
      plan_->skipped.push_back(path + " (not a file or directory)");
      return;
    }
    Add(device ? RootStep::kBindDev : RootStep::kBind, path, path);
    bound_.push_back(path);
  }
  bool Exists(const std::string& path) const {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
  }

 private:
  RootPlan* plan_;
  std::set<std::string> made_;
  std::vector<std::string> bound_;
};

std::string UserLine(uid_t uid, gid_t gid) {
  std::string name = "enclave";
  passwd pw{}, *found = nullptr;
  char buffer[4096];
  if (::getpwuid_r(uid, &pw, buffer, sizeof buffer, &found) == 0 && found != nullptr &&
      found->pw_name != nullptr) {
    name = found->pw_name;
  }
  return name + ":x:" + std::to_string(uid) + ":" + std::to_string(gid) +
         "::/nonexistent:/usr/sbin/nologin\n";
}

std::string GroupLine(gid_t gid) {
  std::string name = "enclave";
  group gr{}, *found = nullptr;
  char buffer[4096];
  if (::getgrgid_r(gid, &gr, buffer, sizeof buffer, &found) == 0 && found != nullptr &&
      found->gr_name != nullptr) {
    name = found->gr_name;
  }
  return name + ":x:" + std::to_string(gid) + ":\n";
}

Status CheckReadPath(const std::string& path) {
  if (path.empty() || path.size() > kMaxPathBytes || path[0] != '/' ||
      path.find('\0') != std::string::npos) {
    return Status::InvalidArgument("spec.read_paths: '" + path.substr(0, 128) +
                                   "' is not an absolute path");
  }
  if (std::filesystem::path(path).lexically_normal().string() != path || path.back() == '/') {
    return Status::InvalidArgument("spec.read_paths: '" + path.substr(0, 128) +
                                   "' is not in normal form");
  }
  for (const char* host : {"/proc", "/sys", "/dev"}) {
    if (IsUnder(path, host)) {
      return Status::InvalidArgument("spec.read_paths: '" + path.substr(0, 128) +
                                     "' would expose the host's " + host);
    }
  }
  return Status::Ok();
}

}  // namespace

Result<RootPlan> PlanPrivateRoot(const RootInputs& inputs) {
  if (inputs.read_paths.size() > kMaxReadPaths) {
    return Status::InvalidArgument("spec.read_paths has more than 256 entries");
  }
  for (const auto& path : inputs.read_paths) AIRLOCK_RETURN_IF_ERROR(CheckReadPath(path));
  if (inputs.new_root.empty() || inputs.new_root[0] != '/') {
    return Status::Internal("the private root needs an absolute mount point");
  }
  RootPlan plan;
  plan.new_root = inputs.new_root;
  Planner p(&plan);

  p.Mkdir("/.old-root");  // pivot_root puts the host's root here, then it is detached
  for (const char* link : kLibraryRoots) {
    struct stat st {};
    if (::lstat(link, &st) != 0) continue;
    if (S_ISLNK(st.st_mode)) {
      std::error_code ec;
      const std::string target = std::filesystem::read_symlink(link, ec).string();
      if (!ec && !target.empty()) p.Add(RootStep::kSymlink, link, target);
    } else {
      p.Bind(link);
    }
  }
  for (const char* dir : kSystemDirs) p.Bind(dir);
  for (const char* file : kSystemFiles) p.Bind(file);

  p.Mkdir("/dev");
  for (const char* device : kDevices) p.Bind(device, /*device=*/true);
  p.Add(RootStep::kSymlink, "/dev/fd", "/proc/self/fd");
  p.Mkdir("/proc");
  p.Add(RootStep::kProc, "/proc", "");
  p.Mkdir("/tmp");
  p.Add(RootStep::kTmpfs, "/tmp",
        "mode=1777,size=" + std::to_string(std::max<int64_t>(inputs.tmp_bytes, 1 << 20)));
  // After the private /tmp, which would hide an executable installed under
  // the host's /tmp (read paths below come after it for the same reason).
  if (!inputs.executable.empty()) p.Bind(inputs.executable);

  p.Mkdir("/etc");
  const std::string hosts = inputs.hosts_text.empty()
                                ? "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n"
                                : inputs.hosts_text;
  p.Add(RootStep::kWrite, "/etc/hosts", hosts);
  p.Add(RootStep::kWrite, "/etc/passwd", UserLine(inputs.uid, inputs.gid));
  p.Add(RootStep::kWrite, "/etc/group", GroupLine(inputs.gid));
  p.Add(RootStep::kWrite, "/etc/nsswitch.conf", "passwd: files\ngroup: files\nhosts: files\n");

  // Shorter paths first, so a path inside an earlier one is recognised as
  // visible already instead of needing a mount point inside a read-only bind.
  std::vector<std::string> reads = inputs.read_paths;
  std::sort(reads.begin(), reads.end(), [](const std::string& a, const std::string& b) {
    return a.size() != b.size() ? a.size() < b.size() : a < b;
  });
  reads.erase(std::unique(reads.begin(), reads.end()), reads.end());
  for (const auto& path : reads) {
    if (!p.Exists(path)) {
      plan.skipped.push_back(path + " (does not exist)");
      continue;
    }
    p.Bind(path);
  }
  return plan;
}

}  // namespace airlock::isolators::process
