// The isolator's part of enclave egress: the kernel lists the approved source
// endpoints with the loopback address each must appear on inside the enclave
// (see kernel/enclave/egress_forwarder.h); the isolator brings the private
// namespace's loopback up and makes approved host names resolve there.
#pragma once

#include <string>
#include <vector>

#include "airlock/cpp/status.hpp"
#include "airlock/cpp/values.hpp"

namespace airlock::isolators::process {

struct EgressMapping {
  std::string host;     // a DNS name or a 127.x.y.z literal
  std::string address;  // 127.x.y.z inside the enclave
};

// Reads spec.egress ([{"endpoint","host","port","address"}]); InvalidArgument
// for anything that could not be written safely into a hosts file.
Result<std::vector<EgressMapping>> ParseEgress(const Json& spec);

// /etc/hosts for the enclave: localhost plus one line per approved host name
// (literal addresses need none). Empty when no name needs mapping.
std::string HostsFileText(const std::vector<EgressMapping>& egress);

// A file that exists until this object goes (removed on destruction).
class HostsFile {
 public:
  HostsFile() = default;
  static Result<HostsFile> Write(const std::string& path, const std::string& text);
  ~HostsFile();
  HostsFile(HostsFile&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }
  HostsFile& operator=(HostsFile&& other) noexcept;
  HostsFile(const HostsFile&) = delete;
  HostsFile& operator=(const HostsFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace airlock::isolators::process
