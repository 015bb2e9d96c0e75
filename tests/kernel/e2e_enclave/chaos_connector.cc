// "chaos": a connector for enclave tests that misbehaves on purpose. The
// dataset's `object` picks the behaviour:
//   crash            SIGSEGV in the middle of the pull
//   probe:P1,P2,...  tries a TCP connection to 127.0.0.1:Pi for each port and
//                    delivers (port, outcome, greeting): outcome "connected"
//                    or the errno name; greeting is the first line the peer sent
//   secret           resolves config.secret (a secret reference) and delivers
//                    only its length and whether it matched config.expect_length
//   memory:N         allocates and touches N MiB, then delivers one row
//   rows:N           delivers N rows (n int64, label utf8)
//   peek:P1|P2|...   opens each host path for reading and delivers (path, outcome):
//                    "readable" or the errno name
//   syscalls         tries calls the sandbox must refuse and delivers (call, outcome)
// Test-only: never build it into a deployment.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "airlock/cpp/plugin.hpp"

namespace chaos {

using airlock::Json;
using airlock::Result;
using airlock::Status;
namespace arrow = airlock::arrow;

std::vector<std::string> Split(const std::string& text, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    const size_t at = text.find(sep, start);
    out.push_back(text.substr(start, at - start));
    if (at == std::string::npos) return out;
    start = at + 1;
  }
}

// Connects to 127.0.0.1:port and reads the greeting line; returns the outcome.
std::string Probe(int port, std::string* greeting) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "socket_failed";
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    const std::string why = errno == ECONNREFUSED ? "refused" : "errno_" + std::to_string(errno);
    ::close(fd);
    return why;
  }
  char buffer[256];
  std::string line;
  pollfd p{fd, POLLIN, 0};
  while (line.find('\n') == std::string::npos && ::poll(&p, 1, 5000) == 1) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n <= 0) break;
    line.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  *greeting = line.substr(0, line.find('\n'));
  // A relay that accepted but could not reach the endpoint closes at once.
  return greeting->empty() ? "closed" : "connected";
}

// "ok" or the errno's name.
std::string Outcome(long rc) {
  if (rc >= 0) return "ok";
  const char* name = ::strerrorname_np(errno);
  return name != nullptr ? name : "errno_" + std::to_string(errno);
}

class ChaosConnector : public airlock::sdk::Connector {
 public:
  static Result<std::unique_ptr<ChaosConnector>> Create(const Json& config,
                                                        const airlock::sdk::Host& host) {
    auto made = std::make_unique<ChaosConnector>();
    made->host_ = host;
    made->config_ = config;
    return made;
  }

  Result<airlock::Catalog> Describe() override { return airlock::Catalog{}; }

  Status Pull(const airlock::PullSpec& spec, airlock::sdk::BatchSink& sink) override {
    const std::string& object = spec.object;
    if (object == "crash") {
      std::vector<arrow::Field> fields = {{"n", arrow::Type::kInt64, "", false}};
      arrow::RecordBatchBuilder builder(fields, 1);
      AIRLOCK_RETURN_IF_ERROR(sink.SendSchema(builder.MakeSchema()));
      ::raise(SIGSEGV);
      return Status::Internal("unreachable");
    }
    if (object.rfind("probe:", 0) == 0) {
      std::vector<arrow::Field> fields = {{"port", arrow::Type::kInt64, "", false},
                                          {"outcome", arrow::Type::kUtf8, "", false},
                                          {"greeting", arrow::Type::kUtf8, "", false}};
      arrow::RecordBatchBuilder builder(fields, 16);
      AIRLOCK_RETURN_IF_ERROR(sink.SendSchema(builder.MakeSchema()));
      for (const std::string& port : Split(object.substr(6), ',')) {
        std::string greeting;
        const std::string outcome = Probe(std::stoi(port), &greeting);
        builder.AppendInt64(0, std::stoi(port));
        builder.AppendString(1, outcome);
        builder.AppendString(2, greeting);
      }
      return sink.SendBatch(builder.Finish());
    }
    if (object == "secret") {
      auto secret = host_.ResolveSecret(config_.value("secret", ""));
      if (!secret.ok()) return secret.status();
      std::vector<arrow::Field> fields = {{"secret_length", arrow::Type::kInt64, "", false}};
      arrow::RecordBatchBuilder builder(fields, 1);
      AIRLOCK_RETURN_IF_ERROR(sink.SendSchema(builder.MakeSchema()));
      builder.AppendInt64(0, static_cast<int64_t>(secret->view().size()));
      host_.Info("resolved the source credential");
      return sink.SendBatch(builder.Finish());
    }
    if (object.rfind("peek:", 0) == 0 || object == "syscalls") {
      std::vector<arrow::Field> fields = {{"what", arrow::Type::kUtf8, "", false},
                                          {"outcome", arrow::Type::kUtf8, "", false}};
      arrow::RecordBatchBuilder builder(fields, 16);
      AIRLOCK_RETURN_IF_ERROR(sink.SendSchema(builder.MakeSchema()));
      std::vector<std::pair<std::string, std::string>> rows;
      if (object == "syscalls") {
        rows.emplace_back("ptrace", Outcome(::ptrace(PTRACE_TRACEME, 0, nullptr, nullptr)));
        const int netlink = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, 0);
        rows.emplace_back("netlink", Outcome(netlink));
        if (netlink >= 0) ::close(netlink);
        rows.emplace_back("unshare", Outcome(::unshare(CLONE_NEWNS)));
        rows.emplace_back("mount", Outcome(::mount("none", "/tmp", "tmpfs", 0, nullptr)));
      } else {
        for (const std::string& path : Split(object.substr(5), '|')) {
          const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
          rows.emplace_back(path, fd >= 0 ? "readable" : Outcome(fd));
          if (fd >= 0) ::close(fd);
        }
      }
      for (const auto& [what, outcome] : rows) {
        builder.AppendString(0, what);
        builder.AppendString(1, outcome);
      }
      return sink.SendBatch(builder.Finish());
    }
    if (object.rfind("memory:", 0) == 0) {
      const size_t mib = std::stoul(object.substr(7));
      std::vector<std::unique_ptr<char[]>> blocks;
      for (size_t i = 0; i < mib; ++i) {
        blocks.push_back(std::make_unique<char[]>(1 << 20));
        std::memset(blocks.back().get(), static_cast<int>(i), 1 << 20);
      }
      std::vector<arrow::Field> fields = {{"mib", arrow::Type::kInt64, "", false}};
      arrow::RecordBatchBuilder builder(fields, 1);
      AIRLOCK_RETURN_IF_ERROR(sink.SendSchema(builder.MakeSchema()));
      builder.AppendInt64(0, static_cast<int64_t>(mib));
      return sink.SendBatch(builder.Finish());
    }
    if (object.rfind("rows:", 0) == 0) {
      const int64_t rows = std::stoll(object.substr(5));
      std::vector<arrow::Field> fields = {{"n", arrow::Type::kInt64, "", false},
                                          {"label", arrow::Type::kUtf8, "", false}};
      arrow::RecordBatchBuilder builder(fields, 4096);
      AIRLOCK_RETURN_IF_ERROR(sink.SendSchema(builder.MakeSchema()));
      for (int64_t n = 1; n <= rows; ++n) {
        builder.AppendInt64(0, n);
        builder.AppendString(1, "row-" + std::to_string(n));
        if (builder.rows() == 4096) AIRLOCK_RETURN_IF_ERROR(sink.SendBatch(builder.Finish()));
      }
      if (builder.rows() > 0) return sink.SendBatch(builder.Finish());
      return Status::Ok();
    }
    return Status::NotFound("chaos has no behaviour named '" + object + "'");
  }

 private:
  airlock::sdk::Host host_;
  Json config_;
};

}  // namespace chaos

AIRLOCK_CONNECTOR_PLUGIN(chaos::ChaosConnector, "chaos", "1.0.0",
                         "Misbehaves on purpose for enclave tests (test only)",
                         R"({"type":"object"})")
