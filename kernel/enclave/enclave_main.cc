// airlock-enclave: a data enclave in a process of its own.
//
//   airlock-enclave --fd N
//   airlock-enclave --dial HOST:PORT --link-dir DIR
//   airlock-enclave --check-plugin PATH
//
// N is a connected SOCK_STREAM socket to the kernel (inherited from the
// isolator that started this process). The process serves exactly one
// enclave and exits 0 after an orderly end, 1 when the channel could not be
// served, 2 on bad usage.
//
// --dial is the enclave of a pod (the kubernetes isolator): it connects out
// to the kernel's enclave link over mutual TLS with the credentials in DIR
// (ca.crt, tls.crt, tls.key) and serves the channel over that connection.
//
// --check-plugin loads the connector plugin at PATH the way an enclave does
// (no instance is made) and prints its name and version, then on a second
// line its configuration schema if it declares one (exit 0), or why it was
// refused (exit 1). The kernel runs it, with an empty environment, to
// check connector files without mapping them into its own process.
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>

#include <charconv>
#include <cstdio>
#include <cstring>
#include <string_view>

#include "kernel/enclave/enclave_dial.h"
#include "kernel/enclave/enclave_runtime.h"

namespace {

int Usage() {
  std::fprintf(stderr,
               "usage: airlock-enclave --fd N | --dial HOST:PORT --link-dir DIR | "
               "--check-plugin PATH\n");
  return 2;
}

int CheckPlugin(const char* path) {
  const auto checked = airlock::enclave::CheckConnectorPlugin(path);
  if (!checked.ok()) {
    std::fprintf(stdout, "%s\n", checked.status().message().c_str());
    return 1;
  }
  // The summary, then the configuration schema on a line of its own.
  std::fprintf(stdout, "%s\n", checked->summary.c_str());
  if (!checked->config_schema.is_null()) {
    std::fprintf(stdout, "%s\n", checked->config_schema.dump().c_str());
  }
  return 0;
}

int Dial(const char* kernel, const char* link_dir) {
  ::signal(SIGPIPE, SIG_IGN);
  airlock::enclave::DialOptions options;
  options.kernel = kernel;
  options.link_dir = link_dir;
  airlock::enclave::EnclaveEnvironment env;
  env.owns_process = true;
  const airlock::Status status = airlock::enclave::DialAndServe(options, std::move(env));
  if (!status.ok()) {
    std::fprintf(stderr, "airlock-enclave: %s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::strcmp(argv[1], "--check-plugin") == 0) return CheckPlugin(argv[2]);
  if (argc == 5 && std::strcmp(argv[1], "--dial") == 0 && std::strcmp(argv[3], "--link-dir") == 0) {
    return Dial(argv[2], argv[4]);
  }
  int fd = -1;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    std::string_view value;
    if (arg == "--fd" && i + 1 < argc) {
      value = argv[++i];
    } else if (arg.rfind("--fd=", 0) == 0) {
      value = arg.substr(5);
    } else {
      return Usage();
    }
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), fd);
    if (ec != std::errc() || end != value.data() + value.size() || fd < 0) return Usage();
  }
  if (fd < 0) return Usage();

  int type = 0;
  socklen_t length = sizeof(type);
  if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) != 0 || type != SOCK_STREAM) {
    std::fprintf(stderr, "airlock-enclave: --fd %d is not a connected stream socket\n", fd);
    return 2;
  }
  // The descriptor must not leak into anything a connector might start.
  ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  // Writes to a closed channel fail with EPIPE instead of killing the process.
  ::signal(SIGPIPE, SIG_IGN);

  airlock::enclave::EnclaveEnvironment env;
  env.owns_process = true;
  const airlock::Status status = airlock::enclave::ServeEnclave(fd, std::move(env));
  if (!status.ok()) {
    std::fprintf(stderr, "airlock-enclave: %s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}
