#include "inprocess.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include "config.h"

namespace airlock::isolators::inprocess {
namespace {

constexpr size_t kMaxRequestIdLength = 256;

void CloseFd(int& fd) {
  if (fd >= 0) {
    ::close(fd);
    fd = -1;
  }
}

std::string ErrnoText(int err) {
  return std::error_code(err, std::generic_category()).message();
}

}  // namespace

// ---------------------------------------------------------------------------
// ServeThread

Status ServeThread::Start(sdk::Host host, int enclave_fd, std::string request_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  try {
    thread_ = std::thread([host = std::move(host), enclave_fd, id = std::move(request_id)] {
      // EnclaveServe owns enclave_fd from here on and closes it before returning.
      const Status served = host.EnclaveServe(enclave_fd);
      if (served.ok()) {
        host.Info("enclave for request '" + id + "' stopped");
      } else {
        host.Warn("enclave runtime for request '" + id + "' ended with " + served.ToString());
      }
    });
  } catch (const std::system_error& e) {
    int fd = enclave_fd;
    CloseFd(fd);
    CloseFd(shutdown_fd_);
    return Status::ResourceExhausted(std::string("cannot start an enclave thread: ") + e.what());
  }
  return Status::Ok();
}

void ServeThread::Stop() {
  std::lock_guard<std::mutex> lock(mutex_);
  // SHUT_RDWR acts on the socket, not on this descriptor: the runtime's reads
  // on its own descriptor return end-of-file and its writes fail, so it returns.
  if (shutdown_fd_ >= 0) ::shutdown(shutdown_fd_, SHUT_RDWR);
  if (thread_.joinable()) thread_.join();
  CloseFd(shutdown_fd_);
}

// ---------------------------------------------------------------------------
// InprocessIsolator

Result<std::unique_ptr<InprocessIsolator>> InprocessIsolator::Create(const Json& config,
                                                                     const sdk::Host& host) {
  AIRLOCK_RETURN_IF_ERROR(ParseConfig(config).status());
  host.Warn(
      "inprocess isolator is DEVELOPMENT ONLY and provides NO ISOLATION: enclaves run as "
      "threads of this process, sharing its memory and privileges; never use it with real data");
  if (host.raw() == nullptr || host.raw()->enclave_serve == nullptr) {
    host.Warn("the host offers no enclave runtime; provisioning will fail");
  }
  return std::unique_ptr<InprocessIsolator>(new InprocessIsolator(host));
}

InprocessIsolator::~InprocessIsolator() {
  std::vector<std::shared_ptr<ServeThread>> still_running;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& weak : started_) {
      if (auto serve = weak.lock()) still_running.push_back(std::move(serve));
    }
    started_.clear();
  }
  for (auto& serve : still_running) serve->Stop();
}

Result<sdk::EnclaveLaunch> InprocessIsolator::Provision(const Json& spec) {
  if (!spec.is_object()) return Status::InvalidArgument("enclave spec must be a JSON object");
  std::string request_id;
  AIRLOCK_RETURN_IF_ERROR(json_read::String(spec, "request_id", &request_id, false, "spec"));
  if (request_id.size() > kMaxRequestIdLength) {
    return Status::InvalidArgument("spec.request_id is longer than 256 bytes");
  }
  if (host_.raw() == nullptr || host_.raw()->enclave_serve == nullptr) {
    return Status::FailedPrecondition("the host offers no enclave runtime (enclave_serve)");
  }
  const bool has_limits = spec.contains("limits") && !spec["limits"].empty();
  const bool has_egress = spec.contains("egress") && !spec["egress"].empty();
  if (has_limits || has_egress) {
    host_.Warn("enclave for request '" + request_id +
               "': limits and egress rules are NOT enforced by the inprocess isolator");
  }

  int ends[2] = {-1, -1};
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) != 0) {
    return Status::ResourceExhausted("socketpair failed: " + ErrnoText(errno));
  }
  int kernel_end = ends[0];
  int enclave_end = ends[1];
  int shutdown_fd = ::fcntl(enclave_end, F_DUPFD_CLOEXEC, 0);
  if (shutdown_fd < 0) {
    const int err = errno;
    CloseFd(kernel_end);
    CloseFd(enclave_end);
    return Status::ResourceExhausted("dup of the enclave end failed: " + ErrnoText(err));
  }

  auto serve = std::make_shared<ServeThread>(shutdown_fd);
  const Status started = serve->Start(host_, enclave_end, request_id);
  if (!started.ok()) {
    CloseFd(kernel_end);
    return started;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    // Forget enclaves already terminated so the list stays as long as the live set.
    std::erase_if(started_, [](const std::weak_ptr<ServeThread>& w) { return w.expired(); });
    started_.push_back(serve);
  }
  host_.Info("enclave for request '" + request_id + "' started in-process (no isolation)");

  sdk::EnclaveLaunch launch;
  launch.control_fd = kernel_end;
  launch.enclave = std::make_unique<InprocessEnclave>(std::move(serve), std::move(request_id));
  return launch;
}

Status InprocessIsolator::Terminate(sdk::Enclave& enclave) {
  auto* ours = dynamic_cast<InprocessEnclave*>(&enclave);
  if (ours == nullptr) {
    return Status::InvalidArgument("enclave handle was not made by the inprocess isolator");
  }
  ours->serve().Stop();
  return Status::Ok();
}

Json InprocessIsolator::DescribeIsolation() {
  return Json{{"isolator", "inprocess"},
              {"isolation", "none"},
              {"development_only", true},
              {"mechanisms", Json::object()},
              {"egress", "unrestricted"},
              {"warning",
               "DEVELOPMENT ONLY: enclaves run as threads of the kernel process with no "
               "isolation; limits and egress rules are not enforced"}};
}

}  // namespace airlock::isolators::inprocess
