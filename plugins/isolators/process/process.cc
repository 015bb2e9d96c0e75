#include "process.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <fstream>
#include <iterator>
#include <sstream>
#include <system_error>
#include <thread>

namespace airlock::isolators::process {
namespace {

constexpr size_t kMaxRequestIdLength = 256;
constexpr int64_t kDefaultOpenFiles = 1024;
constexpr int64_t kDefaultPids = 512;
constexpr size_t kMaxRecordBytes = 64 * 1024;

std::string ErrnoText(int err) {
  return std::error_code(err, std::generic_category()).message();
}

std::string ReadSmallFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string text;
  char buf[4096];
  while (in && text.size() < kMaxRecordBytes) {
    in.read(buf, sizeof buf);
    text.append(buf, static_cast<size_t>(in.gcount()));
  }
  return text;
}

// Field 22 of /proc/<pid>/stat (start time in clock ticks), or empty.
std::string StartTime(pid_t pid) {
  const std::string stat = ReadSmallFile("/proc/" + std::to_string(pid) + "/stat");
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return {};
  std::istringstream fields(stat.substr(close + 2));
  std::string field;
  for (int i = 3; i <= 22 && fields >> field; ++i) {
    if (i == 22) return field;
  }
  return {};
}

// True when /proc/<pid>/cmdline's argv[0] names airlock-enclave.
bool RunsEnclave(pid_t pid) {
  const std::string cmdline = ReadSmallFile("/proc/" + std::to_string(pid) + "/cmdline");
  const std::string argv0 = cmdline.substr(0, cmdline.find('\0'));
  const size_t slash = argv0.rfind('/');
  return argv0.substr(slash == std::string::npos ? 0 : slash + 1) == "airlock-enclave";
}

// [A-Za-z0-9_.-], at most 64 characters: safe as a path component.
std::string SafeName(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (out.size() == 64) break;
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-' || c == '.';
    out.push_back(ok ? c : '_');
  }
  if (out.empty() || out[0] == '.') out.insert(out.begin(), 'r');
  return out;
}

Status ReadLimit(const Json& limits, const char* key, int64_t* out, int64_t min, int64_t max) {
  AIRLOCK_RETURN_IF_ERROR(json_read::Int(limits, key, out, false, "spec.limits"));
  if (*out < min || *out > max) {
    return Status::InvalidArgument("spec.limits." + std::string(key) + " must be between " +
                                   std::to_string(min) + " and " + std::to_string(max));
  }
  return Status::Ok();
}

// The instance identity when the host gives none: FNV-1a (64 bits) of the
// state directory's canonical path, so restarts with the same configuration
// keep it and kernels with their own state directories differ.
std::string DerivedInstanceId(const std::string& state_dir) {
  char resolved[PATH_MAX];
  const std::string path =
      ::realpath(state_dir.c_str(), resolved) != nullptr ? resolved : state_dir;
  uint64_t hash = 14695981039346656037ull;
  for (unsigned char c : path) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  static const char kHex[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, hash >>= 4) out[static_cast<size_t>(i)] = kHex[hash & 15];
  return "d" + out;
}

// [a-z0-9], 1 to 64 characters: what an instance identity may be, so that it
// is a safe path and cgroup name component.
bool IsInstanceId(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return false;
  }
  return true;
}

// SIGKILLs a process that may not be our child, and reaps it if it is.
void KillOrphan(pid_t pid) {
  ::kill(pid, SIGKILL);
  for (int i = 0; i < 100; ++i) {
    const pid_t done = ::waitpid(pid, nullptr, WNOHANG);
    if (done == pid || (done < 0 && errno == ECHILD)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

// The state directory must be ours and closed to others: records in it
// decide which processes get killed.
Status PrepareStateDir(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Status::FailedPrecondition("cannot create state_dir " + dir + ": " + ErrnoText(errno));
  }
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Status::FailedPrecondition("state_dir " + dir + " is not a directory");
  }
  if (st.st_uid != ::geteuid() || (st.st_mode & 0022) != 0) {
    return Status::FailedPrecondition("state_dir " + dir +
                                      " must be owned by this user and not group/other writable");
  }
  return Status::Ok();
}

}  // namespace

// ---------------------------------------------------------------------------
// LauncherThread

LauncherThread::LauncherThread() : thread_([this] { Loop(); }) {}

LauncherThread::~LauncherThread() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void LauncherThread::Run(const std::function<void()>& work) {
  std::mutex done_mutex;
  std::condition_variable done_cv;
  bool done = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back([&] {
      work();
      std::lock_guard<std::mutex> done_lock(done_mutex);
      done = true;
      done_cv.notify_all();
    });
  }
  wake_.notify_all();
  std::unique_lock<std::mutex> lock(done_mutex);
  done_cv.wait(lock, [&] { return done; });
}

void LauncherThread::Loop() {
  for (;;) {
    std::function<void()> work;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;
      work = std::move(queue_.front());
      queue_.pop_front();
    }
    work();
  }
}

// ---------------------------------------------------------------------------
// EnclaveProcess

void EnclaveProcess::Kill() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (reaped_) return;
  // Still our unreaped child, so the pid cannot have been reused. Killing the
  // init of a PID namespace kills every process in it.
  KillAndReap(pid_);
  reaped_ = true;
  cgroup_.reset();
  if (!record_path_.empty()) ::unlink(record_path_.c_str());
  record_path_.clear();
}

// ---------------------------------------------------------------------------
// ProcessIsolator

Result<std::unique_ptr<ProcessIsolator>> ProcessIsolator::Create(const Json& config,
                                                                 const sdk::Host& host) {
  AIRLOCK_ASSIGN_OR_RETURN(ProcessConfig parsed, ParseConfig(config));
  std::unique_ptr<ProcessIsolator> self(new ProcessIsolator(std::move(parsed), host));
  ProcessConfig& cfg = self->config_;
  self->executable_ = cfg.enclave_executable.empty() ? host.EnclaveExecutable()
                                                     : host.ResolvePath(cfg.enclave_executable);
  if (self->executable_.empty()) {
    host.Warn("no airlock-enclave executable is known; provisioning will fail");
  } else if (::access(self->executable_.c_str(), X_OK) != 0) {
    return Status::FailedPrecondition("enclave executable " + self->executable_ +
                                      " is not executable: " + ErrnoText(errno));
  }
  if (!cfg.state_dir.empty()) {
    cfg.state_dir = host.ResolvePath(cfg.state_dir);
  } else if (!host.state_dir().empty()) {
    cfg.state_dir = host.state_dir();  // inside the kernel's state directory
  } else {
    cfg.state_dir = "/tmp/airlock-process-isolator-" + std::to_string(::geteuid());
  }
  AIRLOCK_RETURN_IF_ERROR(PrepareStateDir(cfg.state_dir));
  // Everything this object starts is tagged with the kernel's identity, and
  // only what carries it is ever reaped: a state_dir or cgroup tree shared
  // with another kernel is safe.
  self->instance_id_ = host.instance_id();
  if (self->instance_id_.empty()) {
    self->instance_id_ = DerivedInstanceId(cfg.state_dir);
  } else if (!IsInstanceId(self->instance_id_)) {
    return Status::InvalidArgument("the host's instance identity is not 1 to 64 of [a-z0-9]");
  }
  self->records_dir_ = cfg.state_dir + "/instance-" + self->instance_id_;
  AIRLOCK_RETURN_IF_ERROR(PrepareStateDir(self->records_dir_));
  if (!cfg.cgroup_root.empty()) cfg.cgroup_root = host.ResolvePath(cfg.cgroup_root);
  for (const auto& name : cfg.min_isolation) self->required_ |= MechanismBit(name);

  auto program = BuildSeccompProgram();
  if (program.ok()) {
    self->seccomp_program_ = std::move(*program);
  } else {
    host.Warn("seccomp unavailable: " + program.status().ToString());
  }
  self->cgroups_ = ProbeCgroups(cfg.cgroup_root, self->instance_id_);

  // The mount point of every enclave's private root (each mounts its own
  // tmpfs over it, inside its own mount namespace).
  self->root_mount_point_ = cfg.state_dir + "/root";
  if (::mkdir(self->root_mount_point_.c_str(), 0700) != 0 && errno != EEXIST) {
    return Status::FailedPrecondition("cannot create " + self->root_mount_point_ + ": " +
                                      ErrnoText(errno));
  }

  // Probe with a child that sets everything up and exits instead of exec'ing;
  // first with a private root, then, if the host refuses it, without.
  Result<SpawnResult> probe = Status::Internal("probe did not run");
  SpawnRequest request;
  request.probe_only = true;
  request.memory_bytes = cfg.default_memory_bytes;
  request.seccomp = self->seccomp_program_.empty() ? nullptr : &self->seccomp_program_;
  RootInputs root_inputs;
  root_inputs.new_root = self->root_mount_point_;
  root_inputs.uid = ::getuid();
  root_inputs.gid = ::getgid();
  auto root_plan = PlanPrivateRoot(root_inputs);
  if (root_plan.ok()) {
    request.root = &*root_plan;
    self->launcher_.Run([&] { probe = Spawn(request); });
  }
  if (!root_plan.ok() || !probe.ok()) {
    self->root_unavailable_ =
        root_plan.ok() ? probe.status().message() : root_plan.status().message();
    request.root = nullptr;
    self->launcher_.Run([&] { probe = Spawn(request); });
  }
  if (!probe.ok()) {
    return Status::FailedPrecondition("cannot start a sandboxed process: " +
                                      probe.status().ToString());
  }
  self->supported_ = probe->applied;
  if (self->cgroups_.version != 0) self->supported_ |= kCgroupMemory | kCgroupPids;
  const std::string missing = MissingMechanisms(self->required_, self->supported_);
  if (!missing.empty()) {
    std::string why;
    if ((self->required_ & (kCgroupMemory | kCgroupPids)) && self->cgroups_.version == 0) {
      why = "; cgroup " + self->cgroups_.Describe();
    }
    if ((self->required_ & kPivotRoot) && !self->root_unavailable_.empty()) {
      why += "; private root: " + self->root_unavailable_;
    }
    return Status::FailedPrecondition(
        "min_isolation requires mechanisms this host does not allow: " + missing + why);
  }
  host.Info("process isolator: instance " + self->instance_id_ + "; mechanisms " +
            MechanismsJson(self->supported_).dump() + "; cgroup " + self->cgroups_.Describe() +
            (self->root_unavailable_.empty() ? std::string()
                                             : "; no private root: " + self->root_unavailable_));
  return self;
}

ProcessIsolator::~ProcessIsolator() {
  std::vector<std::shared_ptr<EnclaveProcess>> still_running;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& weak : started_) {
      if (auto process = weak.lock()) still_running.push_back(std::move(process));
    }
    started_.clear();
  }
  for (auto& process : still_running) process->Kill();
  // Empty now unless a handle outlives this object; then they stay for the
  // next instance with this identity to reap.
  ::rmdir(records_dir_.c_str());
  if (!cgroups_.memory_base.empty()) ::rmdir(cgroups_.memory_base.c_str());
  if (!cgroups_.pids_base.empty()) ::rmdir(cgroups_.pids_base.c_str());
}

Status ProcessIsolator::WriteRecord(const std::string& path, pid_t pid,
                                    const std::string& request_id,
                                    const std::vector<std::string>& cgroup_dirs) {
  const Json record{{"pid", pid},
                    {"instance", instance_id_},
                    {"request_id", request_id},
                    {"start_time", StartTime(pid)},
                    {"cgroups", cgroup_dirs}};
  const std::string temp = path + ".tmp";
  {
    std::ofstream out(temp, std::ios::trunc);
    out << record.dump();
    if (!out) return Status::Unavailable("cannot write orphan record " + temp);
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    return Status::Unavailable("cannot write orphan record " + path + ": " + ErrnoText(errno));
  }
  return Status::Ok();
}

Result<sdk::EnclaveLaunch> ProcessIsolator::Provision(const Json& spec) {
  if (!spec.is_object()) return Status::InvalidArgument("enclave spec must be a JSON object");
  std::string request_id;
  AIRLOCK_RETURN_IF_ERROR(json_read::String(spec, "request_id", &request_id, false, "spec"));
  if (request_id.size() > kMaxRequestIdLength) {
    return Status::InvalidArgument("spec.request_id is longer than 256 bytes");
  }
  SpawnRequest request;
  request.executable = executable_;
  request.memory_bytes = config_.default_memory_bytes;
  request.open_files = kDefaultOpenFiles;
  const Json limits = spec.contains("limits") ? spec["limits"] : Json::object();
  if (!limits.is_null() && !limits.is_object()) {
    return Status::InvalidArgument("spec.limits must be an object");
  }
  if (limits.is_object()) {
    AIRLOCK_RETURN_IF_ERROR(ReadLimit(limits, "memory_bytes", &request.memory_bytes,
                                      int64_t{64} << 20, int64_t{1} << 46));
    AIRLOCK_RETURN_IF_ERROR(ReadLimit(limits, "cpu_seconds", &request.cpu_seconds, 0, 1 << 30));
    AIRLOCK_RETURN_IF_ERROR(ReadLimit(limits, "open_files", &request.open_files, 16, 1 << 20));
    AIRLOCK_RETURN_IF_ERROR(ReadLimit(limits, "processes", &request.processes, 0, 1 << 20));
  }
  AIRLOCK_ASSIGN_OR_RETURN(std::vector<EgressMapping> egress, ParseEgress(spec));
  if (!egress.empty()) {
    if (!(supported_ & kNetworkNamespace)) {
      return Status::FailedPrecondition(
          "enclave for request '" + request_id +
          "': egress needs a private network namespace, which this host does not allow");
    }
    request.loopback_up = true;
  }
  if (executable_.empty()) {
    return Status::FailedPrecondition("no airlock-enclave executable is known");
  }
  request.seccomp = seccomp_program_.empty() ? nullptr : &seccomp_program_;
  std::vector<std::string> read_paths;
  AIRLOCK_RETURN_IF_ERROR(json_read::StringList(spec, "read_paths", &read_paths, false, "spec"));
  std::vector<std::string> secret_env;
  AIRLOCK_RETURN_IF_ERROR(ParseSecretEnv(spec, &secret_env));
  const EnclaveEnvironment environment(secret_env);
  request.envp = environment.envp();

  static std::atomic<uint64_t> counter{0};
  const std::string name = SafeName(request_id) + "." + std::to_string(::getpid()) + "." +
                           std::to_string(counter.fetch_add(1));
  std::unique_ptr<EnclaveCgroup> cgroup;
  if (cgroups_.version != 0) {
    auto made = EnclaveCgroup::Create(cgroups_, name, request.memory_bytes,
                                      request.processes > 0 ? request.processes : kDefaultPids);
    if (made.ok()) {
      cgroup = std::move(*made);
    } else {
      host_.Warn("enclave for request '" + request_id + "': cgroup unavailable (" +
                 made.status().message() + ")");
    }
  }
  if (cgroup) {
    EnclaveCgroup* group = cgroup.get();
    request.before_exec = [group](pid_t pid) { return group->AddProcess(pid); };
  }

  // Approved host names resolve, inside the enclave, to the loopback address
  // its forwarder listens on. The file only needs to live until the bind mount.
  std::string hosts_text = HostsFileText(egress);
  HostsFile hosts;
  RootPlan root_plan;
  if (supported_ & kPivotRoot) {
    // The hosts file is written into the private root instead of bound.
    RootInputs inputs;
    inputs.new_root = root_mount_point_;
    inputs.executable = executable_;
    inputs.read_paths = read_paths;
    inputs.hosts_text = hosts_text;
    inputs.uid = ::getuid();
    inputs.gid = ::getgid();
    AIRLOCK_ASSIGN_OR_RETURN(root_plan, PlanPrivateRoot(inputs));
    for (const auto& skipped : root_plan.skipped) {
      host_.Warn("enclave for request '" + request_id + "': read path " + skipped + " not bound");
    }
    request.root = &root_plan;
  } else if (!hosts_text.empty()) {
    AIRLOCK_ASSIGN_OR_RETURN(
        hosts, HostsFile::Write(config_.state_dir + "/" + name + ".hosts", hosts_text));
    request.hosts_file = hosts.path();
  }

  int ends[2] = {-1, -1};
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) != 0) {
    return Status::ResourceExhausted("socketpair failed: " + ErrnoText(errno));
  }
  request.enclave_fd = ends[1];
  Result<SpawnResult> spawned = Status::Internal("spawn did not run");
  launcher_.Run([&] { spawned = Spawn(request); });
  ::close(ends[1]);
  if (!spawned.ok()) {
    ::close(ends[0]);
    return spawned.status();
  }
  std::vector<std::string> cgroup_dirs;
  if (cgroup) cgroup_dirs = cgroup->dirs();
  const std::string record_path = records_dir_ + "/" + std::to_string(spawned->pid) + ".json";
  auto process =
      std::make_shared<EnclaveProcess>(spawned->pid, request_id, std::move(cgroup), record_path);
  const std::string missing = MissingMechanisms(required_, spawned->applied);
  if (!missing.empty()) {
    process->Kill();
    ::close(ends[0]);
    return Status::FailedPrecondition("enclave for request '" + request_id +
                                      "': min_isolation mechanisms did not apply: " + missing);
  }
  if (const Status recorded = WriteRecord(record_path, spawned->pid, request_id, cgroup_dirs);
      !recorded.ok()) {
    host_.Warn(recorded.ToString() + "; the enclave cannot be reaped after a crash");
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    std::erase_if(started_, [](const std::weak_ptr<EnclaveProcess>& w) { return w.expired(); });
    started_.push_back(process);
  }
  host_.Info("enclave for request '" + request_id + "' started as pid " +
             std::to_string(spawned->pid) + "; applied " + MechanismsJson(spawned->applied).dump());

  sdk::EnclaveLaunch launch;
  launch.control_fd = ends[0];
  launch.enclave = std::make_unique<ProcessEnclave>(std::move(process));
  return launch;
}

Status ProcessIsolator::Terminate(sdk::Enclave& enclave) {
  auto* ours = dynamic_cast<ProcessEnclave*>(&enclave);
  if (ours == nullptr) {
    return Status::InvalidArgument("enclave handle was not made by the process isolator");
  }
  ours->process().Kill();
  return Status::Ok();
}

Json ProcessIsolator::DescribeIsolation() {
  return Json{
      {"isolator", "process"},
      {"isolation", "process"},
      {"development_only", false},
      {"mechanisms", MechanismsJson(supported_)},
      {"min_isolation", MechanismsJson(required_)},
      {"cgroup", cgroups_.Describe()},
      {"seccomp", seccomp_program_.empty() ? "unavailable" : "allow-list"},
      {"filesystem", (supported_ & kPivotRoot)
                         ? "pivot_root: private read-only root with the request's read "
                           "paths only"
                         : "host root (readable as the kernel's uid): " + root_unavailable_},
      {"network", (supported_ & kNetworkNamespace)
                      ? "private namespace with loopback only; approved endpoints "
                        "forwarded by the kernel"
                      : "host network (no private namespace allowed here)"},
      {"egress", (supported_ & kNetworkNamespace) ? "forwarded" : "unrestricted"}};
}

Status ProcessIsolator::ReapOrphans() {
  std::vector<pid_t> ours;
  std::vector<std::string> our_cgroups;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& weak : started_) {
      auto process = weak.lock();
      if (!process) continue;
      ours.push_back(process->pid());
      our_cgroups.insert(our_cgroups.end(), process->cgroup_dirs().begin(),
                         process->cgroup_dirs().end());
    }
  }
  const auto is_ours = [](const auto& list, const auto& item) {
    return std::find(list.begin(), list.end(), item) != list.end();
  };
  int reaped = 0;

  // Enclave cgroups of this instance: only this instance moves processes
  // there, so whatever runs in one that is not a live enclave of ours was left
  // by an earlier run (found even when its record was never written).
  for (const std::string& base : {cgroups_.memory_base, cgroups_.pids_base}) {
    for (const std::string& dir : ListCgroupChildren(base)) {
      if (is_ours(our_cgroups, dir)) continue;
      const std::vector<pid_t> pids = CgroupProcesses(dir);
      for (pid_t pid : pids) KillOrphan(pid);
      if (!pids.empty()) {
        ++reaped;
        host_.Warn("killed orphaned enclave process(es) in cgroup " + dir);
      }
      RemoveCgroupDir(dir);
    }
  }

  // Records of this instance: what finds orphans where cgroups are not
  // writable. A recorded pid is killed only while it still runs
  // airlock-enclave with the recorded start time (a reused pid has another).
  DIR* dir = ::opendir(records_dir_.c_str());
  if (dir == nullptr) {
    return Status::Unavailable("cannot read " + records_dir_ + ": " + ErrnoText(errno));
  }
  std::vector<std::string> names;
  while (const dirent* entry = ::readdir(dir)) {
    const std::string name = entry->d_name;
    if (name.size() > 5 && name.ends_with(".json")) names.push_back(name);
  }
  ::closedir(dir);

  for (const auto& name : names) {
    const std::string path = records_dir_ + "/" + name;
    auto record = json_read::Parse(ReadSmallFile(path), "orphan record");
    pid_t pid = -1;
    std::string start_time, request_id;
    if (record.ok() && record->is_object()) {
      pid = static_cast<pid_t>(record->value("pid", -1));
      start_time = record->value("start_time", "");
      request_id = record->value("request_id", "");
    }
    if (is_ours(ours, pid)) continue;
    if (pid > 1 && !start_time.empty() && StartTime(pid) == start_time && RunsEnclave(pid)) {
      KillOrphan(pid);
      ++reaped;
      host_.Warn("killed orphaned enclave pid " + std::to_string(pid) + " for request '" +
                 request_id + "'");
    }
    if (record.ok() && record->is_object() && record->contains("cgroups") &&
        (*record)["cgroups"].is_array()) {
      for (const auto& d : (*record)["cgroups"]) {
        if (d.is_string()) RemoveCgroupDir(d.get<std::string>());
      }
    }
    ::unlink(path.c_str());
  }
  if (reaped > 0) host_.Info("reaped " + std::to_string(reaped) + " orphaned enclave(s)");
  return Status::Ok();
}

}  // namespace airlock::isolators::process
