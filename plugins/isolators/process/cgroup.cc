#include "cgroup.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <fstream>
#include <system_error>
#include <thread>

#include "sandbox.h"

namespace airlock::isolators::process {
namespace {

std::string ErrnoText(int err) {
  return std::error_code(err, std::generic_category()).message();
}

bool Exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

Status WriteText(const std::string& path, const std::string& text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return Status::Unavailable("cannot open " + path + ": " + ErrnoText(errno));
  const ssize_t n = ::write(fd, text.data(), text.size());
  const int err = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(text.size())) {
    return Status::Unavailable("cannot write " + path + ": " + ErrnoText(err));
  }
  return Status::Ok();
}

std::string ReadText(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  char buf[4096];
  const ssize_t n = ::read(fd, buf, sizeof buf);
  ::close(fd);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

// True when `word` is one of the space/newline separated words of `text`.
bool HasWord(const std::string& text, const std::string& word) {
  size_t pos = 0;
  while ((pos = text.find(word, pos)) != std::string::npos) {
    const bool starts = pos == 0 || text[pos - 1] == ' ' || text[pos - 1] == '\n';
    const size_t end = pos + word.size();
    const bool ends = end == text.size() || text[end] == ' ' || text[end] == '\n';
    if (starts && ends) return true;
    pos = end;
  }
  return false;
}

Status MakeDir(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
    return Status::Unavailable("cannot create " + path + ": " + ErrnoText(errno));
  }
  return Status::Ok();
}

}  // namespace

std::string CgroupSite::Describe() const {
  if (version == 0) return "unavailable (" + reason + ")";
  std::string out = "v" + std::to_string(version) + " at " + memory_base;
  if (version == 1) out += pids_base.empty() ? " (no pids hierarchy)" : ", " + pids_base;
  return out;
}

CgroupSite ProbeCgroups(const std::string& root_override, const std::string& instance) {
  CgroupSite site;
  const std::string root = root_override.empty() ? "/sys/fs/cgroup" : root_override;
  std::string memory_hierarchy, pids_hierarchy;
  if (Exists(root + "/cgroup.controllers")) {
    // cgroup v2: the memory controller must be available to this subtree.
    if (!HasWord(ReadText(root + "/cgroup.controllers"), "memory")) {
      site.reason = "the memory controller is not enabled in the cgroup v2 hierarchy at " + root;
      return site;
    }
    site.version = 2;
    memory_hierarchy = root;
  } else if (Exists(root + "/memory.limit_in_bytes")) {
    site.version = 1;  // an explicit v1 memory hierarchy
    memory_hierarchy = root;
  } else if (root_override.empty() && Exists(root + "/memory/memory.limit_in_bytes")) {
    site.version = 1;
    memory_hierarchy = root + "/memory";
    if (Exists(root + "/pids/cgroup.procs")) pids_hierarchy = root + "/pids";
  } else {
    site.reason = "no cgroup v1 memory or v2 hierarchy at " + root;
    return site;
  }
  site.memory_base = memory_hierarchy + "/airlock/" + instance;
  Status made = MakeDir(memory_hierarchy + "/airlock");
  if (made.ok()) made = MakeDir(site.memory_base);
  if (!made.ok()) {
    site = CgroupSite{};
    site.reason = made.message();
    return site;
  }
  if (site.version == 2) {
    // Delegate the controllers down to the per-enclave directories.
    (void)WriteText(memory_hierarchy + "/cgroup.subtree_control", "+memory +pids");
    (void)WriteText(memory_hierarchy + "/airlock/cgroup.subtree_control", "+memory +pids");
    (void)WriteText(site.memory_base + "/cgroup.subtree_control", "+memory +pids");
  } else if (!pids_hierarchy.empty()) {
    site.pids_base = pids_hierarchy + "/airlock/" + instance;
    if (!MakeDir(pids_hierarchy + "/airlock").ok() || !MakeDir(site.pids_base).ok()) {
      site.pids_base.clear();
    }
  }
  return site;
}

Result<std::unique_ptr<EnclaveCgroup>> EnclaveCgroup::Create(const CgroupSite& site,
                                                             const std::string& name,
                                                             int64_t memory_bytes,
                                                             int64_t pids_max) {
  if (site.version == 0) return Status::Unavailable(site.reason);
  std::unique_ptr<EnclaveCgroup> group(new EnclaveCgroup());
  group->version_ = site.version;
  group->memory_dir_ = site.memory_base + "/" + name;
  AIRLOCK_RETURN_IF_ERROR(MakeDir(group->memory_dir_));
  group->dirs_.push_back(group->memory_dir_);
  const std::string bytes = std::to_string(memory_bytes);
  if (site.version == 2) {
    group->memory_limited_ = WriteText(group->memory_dir_ + "/memory.max", bytes).ok();
    (void)WriteText(group->memory_dir_ + "/memory.swap.max", "0");
    if (pids_max > 0) {
      group->pids_limited_ =
          WriteText(group->memory_dir_ + "/pids.max", std::to_string(pids_max)).ok();
    }
  } else {
    group->memory_limited_ = WriteText(group->memory_dir_ + "/memory.limit_in_bytes", bytes).ok();
    (void)WriteText(group->memory_dir_ + "/memory.memsw.limit_in_bytes", bytes);
    if (pids_max > 0 && !site.pids_base.empty()) {
      group->pids_dir_ = site.pids_base + "/" + name;
      if (MakeDir(group->pids_dir_).ok()) {
        group->dirs_.push_back(group->pids_dir_);
        group->pids_limited_ =
            WriteText(group->pids_dir_ + "/pids.max", std::to_string(pids_max)).ok();
      } else {
        group->pids_dir_.clear();
      }
    }
  }
  return group;
}

Result<uint32_t> EnclaveCgroup::AddProcess(pid_t pid) {
  const std::string text = std::to_string(pid);
  uint32_t applied = 0;
  if (WriteText(memory_dir_ + "/cgroup.procs", text).ok()) {
    if (memory_limited_) applied |= kCgroupMemory;
    if (version_ == 2 && pids_limited_) applied |= kCgroupPids;
  }
  if (version_ == 1 && !pids_dir_.empty() && WriteText(pids_dir_ + "/cgroup.procs", text).ok() &&
      pids_limited_) {
    applied |= kCgroupPids;
  }
  return applied;
}

EnclaveCgroup::~EnclaveCgroup() {
  for (const auto& dir : dirs_) RemoveCgroupDir(dir);
}

void RemoveCgroupDir(const std::string& dir) {
  for (int attempt = 0; attempt < 50; ++attempt) {
    if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) return;
    if (errno != EBUSY) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

std::vector<std::string> ListCgroupChildren(const std::string& base) {
  std::vector<std::string> out;
  if (base.empty()) return out;
  DIR* dir = ::opendir(base.c_str());
  if (dir == nullptr) return out;
  while (const dirent* entry = ::readdir(dir)) {
    const std::string name = entry->d_name;
    if (name == "." || name == "..") continue;
    const std::string path = base + "/" + name;
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) out.push_back(path);
  }
  ::closedir(dir);
  return out;
}

std::vector<pid_t> CgroupProcesses(const std::string& dir) {
  std::vector<pid_t> out;
  std::ifstream in(dir + "/cgroup.procs");
  std::string line;
  while (out.size() < 4096 && std::getline(in, line)) {
    pid_t pid = 0;
    const auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), pid);
    if (ec == std::errc() && end == line.data() + line.size() && pid > 1) out.push_back(pid);
  }
  return out;
}

}  // namespace airlock::isolators::process
