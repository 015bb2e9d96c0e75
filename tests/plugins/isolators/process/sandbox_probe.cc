// sandbox_probe --fd N: started by sandbox_test in place of airlock-enclave,
// under the same sandbox. Reads one command per line from fd N, tries it and
// answers "ok <detail>" or "err <errno>" on the same descriptor.
#include <dirent.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

namespace {

std::string Errno(long rc) {
  return rc < 0 ? "err " + std::to_string(errno) : "ok";
}

// The sandboxed clone must be refused; if it ever succeeds, the child leaves at once.
std::string TryClone(unsigned long flags) {
  const long rc = ::syscall(SYS_clone, flags | SIGCHLD, nullptr, nullptr, nullptr, nullptr);
  if (rc == 0) ::_exit(0);
  return Errno(rc);
}

std::string ReadFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno(-1);
  char buf[256];
  const ssize_t n = ::read(fd, buf, sizeof buf);
  const int err = errno;
  ::close(fd);
  if (n < 0) return "err " + std::to_string(err);
  std::string text(buf, static_cast<size_t>(n));
  for (char& c : text) c = c == '\n' ? '|' : c;  // one answer per line
  return "ok " + text.substr(0, 64);
}

// A descriptor passed over a socketpair with SCM_RIGHTS, then used.
std::string PassDescriptor() {
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) return Errno(-1);
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return Errno(-1);
  char byte = 'x';
  iovec iov{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &pipe_fds[1], sizeof(int));
  if (::sendmsg(pair[0], &msg, 0) != 1) return Errno(-1);
  msghdr in{};
  char got = 0;
  iovec in_iov{&got, 1};
  alignas(cmsghdr) char in_control[CMSG_SPACE(sizeof(int))] = {};
  in.msg_iov = &in_iov;
  in.msg_iovlen = 1;
  in.msg_control = in_control;
  in.msg_controllen = sizeof in_control;
  if (::recvmsg(pair[1], &in, MSG_CMSG_CLOEXEC) != 1) return Errno(-1);
  int received = -1;
  std::memcpy(&received, CMSG_DATA(CMSG_FIRSTHDR(&in)), sizeof(int));
  if (::write(received, "p", 1) != 1) return Errno(-1);
  char p = 0;
  if (::read(pipe_fds[0], &p, 1) != 1 || p != 'p') return "err 0";
  for (int fd : {pair[0], pair[1], pipe_fds[0], pipe_fds[1], received}) ::close(fd);
  return "ok";
}

// A TCP connection over the namespace's loopback (brought up by the sandbox).
std::string Loopback() {
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (listener < 0 || ::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listener, 1) != 0 ||
      ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return Errno(-1);
  }
  const int client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (client < 0 || ::connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return Errno(-1);
  }
  const int served = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  if (served < 0) return Errno(-1);
  for (int fd : {listener, client, served}) ::close(fd);
  return "ok";
}

std::string Run(const std::string& line) {
  const size_t space = line.find(' ');
  const std::string command = line.substr(0, space);
  const std::string arg = space == std::string::npos ? "" : line.substr(space + 1);
  if (command == "ptrace") return Errno(::ptrace(PTRACE_TRACEME, 0, nullptr, nullptr));
  if (command == "netlink") return Errno(::socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE));
  if (command == "packet") return Errno(::socket(AF_PACKET, SOCK_RAW, 0));
  if (command == "unshare") return Errno(::unshare(CLONE_NEWUSER | CLONE_NEWNS));
  if (command == "mount") return Errno(::mount("none", "/tmp", "tmpfs", 0, nullptr));
  if (command == "clone_newns") return TryClone(CLONE_NEWNS);
  if (command == "fork") return TryClone(0);
  if (command == "memfd") return Errno(::syscall(SYS_memfd_create, "x", 0));
  if (command == "io_uring") return Errno(::syscall(SYS_io_uring_setup, 1, nullptr));
  if (command == "bpf") return Errno(::syscall(SYS_bpf, 0, nullptr, 0));
  if (command == "setns") return Errno(::setns(0, 0));
  if (command == "wx") {
    void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
    if (p == MAP_FAILED) return Errno(-1);
    ::munmap(p, 4096);
    return "ok";
  }
  if (command == "thread") {
    int value = 0;
    std::thread([&] { value = 42; }).join();
    return value == 42 ? "ok" : "err 0";
  }
  if (command == "unix") return PassDescriptor();
  if (command == "loopback") return Loopback();
  if (command == "getpid") return "ok " + std::to_string(::getpid());
  if (command == "read") return ReadFile(arg);
  if (command == "create") {
    const int fd = ::open(arg.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0) ::close(fd);
    return Errno(fd);
  }
  if (command == "count" || command == "pids") {  // entries of a directory / processes in /proc
    DIR* dir = ::opendir(arg.empty() ? "/proc" : arg.c_str());
    if (dir == nullptr) return Errno(-1);
    int n = 0;
    while (const dirent* e = ::readdir(dir)) {
      n += command == "pids" ? (e->d_name[0] >= '0' && e->d_name[0] <= '9') : e->d_name[0] != '.';
    }
    ::closedir(dir);
    return "ok " + std::to_string(n);
  }
  return "err 0 unknown command";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3 || std::strcmp(argv[1], "--fd") != 0) return 2;
  const int fd = std::atoi(argv[2]);
  std::string pending;
  char buf[512];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return 0;
    pending.append(buf, static_cast<size_t>(n));
    size_t newline;
    while ((newline = pending.find('\n')) != std::string::npos) {
      const std::string answer = Run(pending.substr(0, newline)) + "\n";
      pending.erase(0, newline + 1);
      if (::write(fd, answer.data(), answer.size()) != static_cast<ssize_t>(answer.size())) {
        return 1;
      }
    }
  }
}
