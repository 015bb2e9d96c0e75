// A stand-in for airlock-enclave, for the isolator's test: started as
// `stand_in_enclave --fd N` like the real one, it writes its environment to
// the control socket (one variable per line, then an empty line) and then
// holds the channel until the other end closes it, as an enclave does.
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

extern char** environ;

int main(int argc, char** argv) {
  if (argc != 3 || std::strcmp(argv[1], "--fd") != 0) return 2;
  const int fd = std::atoi(argv[2]);
  std::string hello;
  for (char** entry = environ; *entry != nullptr; ++entry) hello += std::string(*entry) + "\n";
  hello += "\n";
  for (size_t sent = 0; sent < hello.size();) {
    const ssize_t n = ::write(fd, hello.data() + sent, hello.size() - sent);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return 1;
    sent += static_cast<size_t>(n);
  }
  char buffer[4096];
  while (true) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n == 0) return 0;
    if (n < 0 && errno != EINTR) return 1;
  }
}
