// The process isolator's sandbox, driven directly: a real child under the
// seccomp allow-list (and, where the host allows it, a private pivot_root
// file system) runs sandbox_probe, which tries forbidden and allowed work on
// command and reports the outcome. Also the cgroup v2 code path against a fake
// cgroupfs tree, since the hosts this suite runs on may only have cgroup v1.
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include <gtest/gtest.h>

#include "cgroup.h"
#include "root_plan.h"
#include "sandbox.h"
#include "seccomp_policy.h"

namespace airlock::isolators::process {
namespace {

struct TempDir {
  std::string path;
  TempDir() {
    std::string pattern = std::filesystem::temp_directory_path().string() + "/airlock-sbx-XXXXXX";
    path = ::mkdtemp(pattern.data());
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

std::string Err(int err) {
  return "err " + std::to_string(err);
}

// One sandbox_probe child; Ask() sends a command and returns its answer.
class Probe {
 public:
  Status Start(SpawnRequest request) {
    int ends[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) != 0) {
      return Status::Internal("socketpair");
    }
    fd_ = ends[0];
    request.executable = AIRLOCK_SANDBOX_PROBE;
    request.enclave_fd = ends[1];
    request.memory_bytes = int64_t{1} << 31;
    auto spawned = Spawn(request);
    ::close(ends[1]);
    if (!spawned.ok()) return spawned.status();
    pid_ = spawned->pid;
    applied_ = spawned->applied;
    return Status::Ok();
  }
  ~Probe() {
    if (fd_ >= 0) ::close(fd_);
    if (pid_ > 0) KillAndReap(pid_);
  }
  std::string Ask(const std::string& command) {
    const std::string line = command + "\n";
    if (::write(fd_, line.data(), line.size()) != static_cast<ssize_t>(line.size())) return "lost";
    std::string answer;
    char c;
    while (::read(fd_, &c, 1) == 1 && c != '\n') answer.push_back(c);
    return answer;
  }
  uint32_t applied() const { return applied_; }

 private:
  int fd_ = -1;
  pid_t pid_ = -1;
  uint32_t applied_ = 0;
};

class SandboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto program = BuildSeccompProgram();
    ASSERT_TRUE(program.ok()) << program.status().ToString();
    program_ = std::move(*program);
  }
  std::vector<sock_filter> program_;
};

TEST_F(SandboxTest, AllowListRefusesForbiddenCallsAndAllowsTheEnclavesWork) {
  SpawnRequest request;
  request.seccomp = &program_;
  request.loopback_up = true;
  Probe probe;
  ASSERT_TRUE(probe.Start(request).ok());
  ASSERT_TRUE(probe.applied() & kSeccomp);

  // Forbidden: EPERM for what the enclave must never do.
  EXPECT_EQ(probe.Ask("ptrace"), Err(EPERM));
  EXPECT_EQ(probe.Ask("unshare"), Err(EPERM));
  EXPECT_EQ(probe.Ask("mount"), Err(EPERM));
  EXPECT_EQ(probe.Ask("setns"), Err(EPERM));
  EXPECT_EQ(probe.Ask("bpf"), Err(EPERM));
  EXPECT_EQ(probe.Ask("io_uring"), Err(EPERM));
  EXPECT_EQ(probe.Ask("clone_newns"), Err(EPERM));
  EXPECT_EQ(probe.Ask("wx"), Err(EPERM));
  // Socket families other than unix and IP are "not supported".
  EXPECT_EQ(probe.Ask("netlink"), Err(EAFNOSUPPORT));
  EXPECT_EQ(probe.Ask("packet"), Err(EAFNOSUPPORT));
  // Not on the list at all: ENOSYS, as on a kernel without the call.
  EXPECT_EQ(probe.Ask("memfd"), Err(ENOSYS));

  // Allowed: what the enclave runtime does.
  EXPECT_EQ(probe.Ask("thread"), "ok");
  EXPECT_EQ(probe.Ask("fork"), "ok");
  EXPECT_EQ(probe.Ask("unix"), "ok");
  EXPECT_EQ(probe.Ask("loopback"), "ok");
  EXPECT_EQ(probe.Ask("read /proc/self/status").rfind("ok", 0), 0u);
}

TEST_F(SandboxTest, PrivateRootShowsOnlyTheReadPaths) {
  TempDir allowed, hidden, mount_point;
  WriteFile(allowed.path + "/data.csv", "id\n1\n");
  WriteFile(hidden.path + "/secret.txt", "do not read");
  RootInputs inputs;
  inputs.new_root = mount_point.path;
  inputs.executable = AIRLOCK_SANDBOX_PROBE;
  inputs.read_paths = {allowed.path};
  inputs.uid = ::getuid();
  inputs.gid = ::getgid();
  auto plan = PlanPrivateRoot(inputs);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();

  SpawnRequest request;
  request.seccomp = &program_;
  request.root = &*plan;
  Probe probe;
  const Status started = probe.Start(request);
  if (!started.ok()) {
    GTEST_SKIP() << "this host refuses a private root: " << started.ToString();
  }
  ASSERT_TRUE(probe.applied() & kPivotRoot);

  EXPECT_EQ(probe.Ask("read " + allowed.path + "/data.csv"), "ok id|1|");
  EXPECT_EQ(probe.Ask("read " + hidden.path + "/secret.txt"), Err(ENOENT));
  EXPECT_EQ(probe.Ask("read " + hidden.path), Err(ENOENT));
  // Read-only, even where the host's directory is writable.
  EXPECT_EQ(probe.Ask("create " + allowed.path + "/new.csv"), Err(EROFS));
  EXPECT_EQ(probe.Ask("create /etc/new"), Err(EROFS));
  EXPECT_FALSE(std::filesystem::exists(allowed.path + "/new.csv"));
  // /tmp is private and writable; nothing of the host's /tmp is in it but
  // the mount points of bound paths.
  EXPECT_EQ(probe.Ask("create /tmp/scratch"), "ok");
  EXPECT_FALSE(std::filesystem::exists("/tmp/scratch"));
  // Generated /etc: only the enclave's own user.
  const std::string passwd = probe.Ask("read /etc/passwd");
  EXPECT_EQ(passwd.find('|'), passwd.size() - 1) << passwd;
  EXPECT_EQ(probe.Ask("read /etc/shadow"), Err(ENOENT));
  EXPECT_EQ(probe.Ask("read /dev/urandom").rfind("ok", 0), 0u);
  // A private /proc: the probe is pid 1 and nearly alone.
  EXPECT_EQ(probe.Ask("getpid"), "ok 1");
  EXPECT_EQ(probe.Ask("pids"), "ok 1");
  EXPECT_EQ(probe.Ask("read /proc/2/status"), Err(ENOENT));
  // The host tree never leaks through the mount point left by pivot_root.
  EXPECT_EQ(probe.Ask("count /.old-root"), Err(ENOENT));
  // The seccomp filter still applies.
  EXPECT_EQ(probe.Ask("mount"), Err(EPERM));
}

TEST(RootPlanTest, RefusesReadPathsThatWouldExposeTheHost) {
  RootInputs inputs;
  inputs.new_root = "/nonexistent-root";
  for (const char* bad : {"relative/path", "/", "/proc/1", "/sys", "/dev/sda", "/a/../b", "/a/"}) {
    inputs.read_paths = {bad};
    EXPECT_EQ(PlanPrivateRoot(inputs).status().code(), StatusCode::kInvalidArgument) << bad;
  }
  inputs.read_paths = {"/nonexistent/file"};
  auto plan = PlanPrivateRoot(inputs);
  ASSERT_TRUE(plan.ok());
  ASSERT_EQ(plan->skipped.size(), 1u);
}

// The private /tmp is a fresh tmpfs: an executable installed under the
// host's /tmp must be bound after it is mounted, or the tmpfs hides it and
// the enclave cannot be started at all.
TEST(RootPlanTest, AnExecutableUnderTmpIsBoundAfterThePrivateTmpIsMounted) {
  std::string pattern = "/tmp/airlock-exe-XXXXXX";
  ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
  const std::string dir = pattern;
  WriteFile(dir + "/airlock-enclave", "");
  RootInputs inputs;
  inputs.new_root = "/nonexistent-root";
  inputs.executable = dir + "/airlock-enclave";
  auto plan = PlanPrivateRoot(inputs);
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  auto index_of = [&](RootStep::Kind kind, const std::string& path) {
    for (size_t i = 0; i < plan->steps.size(); ++i) {
      if (plan->steps[i].kind == kind && plan->steps[i].target == inputs.new_root + path) return i;
    }
    return plan->steps.size();
  };
  const size_t tmpfs = index_of(RootStep::kTmpfs, "/tmp");
  const size_t bind = index_of(RootStep::kBind, inputs.executable);
  ASSERT_LT(tmpfs, plan->steps.size());
  ASSERT_LT(bind, plan->steps.size());
  EXPECT_LT(tmpfs, bind);
}

// cgroup v2 cannot run on a cgroup v1 host, so the v2 path is checked
// against a fake cgroupfs tree: the files a real cgroupfs would create are
// made beforehand, and the test reads back what the code wrote into them.
TEST(CgroupV2Test, WritesLimitsAndMembershipIntoAUnifiedHierarchy) {
  TempDir root;
  WriteFile(root.path + "/cgroup.controllers", "cpuset cpu io memory pids\n");
  WriteFile(root.path + "/cgroup.subtree_control", "");
  std::filesystem::create_directories(root.path + "/airlock/k1/enclave-1");
  for (const char* file :
       {"cgroup.subtree_control", "k1/cgroup.subtree_control", "k1/enclave-1/memory.max",
        "k1/enclave-1/memory.swap.max", "k1/enclave-1/pids.max", "k1/enclave-1/cgroup.procs"}) {
    WriteFile(root.path + "/airlock/" + file, "");
  }

  const CgroupSite site = ProbeCgroups(root.path, "k1");
  ASSERT_EQ(site.version, 2) << site.Describe();
  EXPECT_EQ(site.memory_base, root.path + "/airlock/k1");
  EXPECT_TRUE(site.pids_base.empty());
  // The controllers reach the enclave directories through every level.
  EXPECT_EQ(ReadFile(root.path + "/cgroup.subtree_control"), "+memory +pids");
  EXPECT_EQ(ReadFile(root.path + "/airlock/cgroup.subtree_control"), "+memory +pids");
  EXPECT_EQ(ReadFile(root.path + "/airlock/k1/cgroup.subtree_control"), "+memory +pids");

  auto group = EnclaveCgroup::Create(site, "enclave-1", int64_t{256} << 20, 64);
  ASSERT_TRUE(group.ok()) << group.status().ToString();
  const std::string dir = root.path + "/airlock/k1/enclave-1";
  EXPECT_EQ(ReadFile(dir + "/memory.max"), std::to_string(int64_t{256} << 20));
  EXPECT_EQ(ReadFile(dir + "/memory.swap.max"), "0");
  EXPECT_EQ(ReadFile(dir + "/pids.max"), "64");
  auto applied = (*group)->AddProcess(4242);
  ASSERT_TRUE(applied.ok());
  EXPECT_EQ(*applied, static_cast<uint32_t>(kCgroupMemory | kCgroupPids));
  EXPECT_EQ(ReadFile(dir + "/cgroup.procs"), "4242");
  EXPECT_EQ((*group)->dirs(), std::vector<std::string>{dir});
  // What a later instance with the same identity finds there.
  EXPECT_EQ(ListCgroupChildren(site.memory_base), std::vector<std::string>{dir});
  EXPECT_EQ(CgroupProcesses(dir), std::vector<pid_t>{4242});
}

TEST(CgroupTest, InstancesKeepTheirEnclavesApart) {
  TempDir root;
  WriteFile(root.path + "/memory.limit_in_bytes", "");
  const CgroupSite one = ProbeCgroups(root.path, "one");
  const CgroupSite two = ProbeCgroups(root.path, "two");
  ASSERT_EQ(one.version, 1) << one.Describe();
  std::filesystem::create_directories(one.memory_base + "/e");
  EXPECT_EQ(ListCgroupChildren(one.memory_base).size(), 1u);
  EXPECT_TRUE(ListCgroupChildren(two.memory_base).empty());
  EXPECT_TRUE(ListCgroupChildren("").empty());
}

TEST(CgroupV2Test, UnifiedHierarchyWithoutTheMemoryControllerIsUnavailable) {
  TempDir root;
  WriteFile(root.path + "/cgroup.controllers", "cpuset cpu io pids\n");
  const CgroupSite site = ProbeCgroups(root.path, "k1");
  EXPECT_EQ(site.version, 0);
  EXPECT_NE(site.reason.find("memory controller"), std::string::npos) << site.reason;
}

TEST(CgroupV1Test, WritesLimitsIntoAMemoryHierarchy) {
  TempDir root;
  WriteFile(root.path + "/memory.limit_in_bytes", "");
  std::filesystem::create_directories(root.path + "/airlock/k1/e");
  for (const char* file :
       {"e/memory.limit_in_bytes", "e/memory.memsw.limit_in_bytes", "e/cgroup.procs"}) {
    WriteFile(root.path + "/airlock/k1/" + file, "");
  }
  const CgroupSite site = ProbeCgroups(root.path, "k1");
  ASSERT_EQ(site.version, 1) << site.Describe();
  auto group = EnclaveCgroup::Create(site, "e", int64_t{128} << 20, 16);
  ASSERT_TRUE(group.ok());
  EXPECT_EQ(ReadFile(root.path + "/airlock/k1/e/memory.limit_in_bytes"),
            std::to_string(int64_t{128} << 20));
  auto applied = (*group)->AddProcess(7);
  ASSERT_TRUE(applied.ok());
  EXPECT_EQ(*applied, static_cast<uint32_t>(kCgroupMemory));  // no pids hierarchy given
}

}  // namespace
}  // namespace airlock::isolators::process
