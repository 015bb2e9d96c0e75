// A private temporary directory for one test, removed with everything in it
// when the object goes away.
#pragma once

#include <string>
#include <string_view>

namespace airlock::test {

class TempDir {
 public:
  // mkdtemp under $TMPDIR (or /tmp); throws std::runtime_error on failure.
  explicit TempDir(std::string_view prefix = "airlock-test-");
  ~TempDir();  // recursive removal; errors are ignored
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path() + "/" + name (nothing is created).
  std::string File(std::string_view name) const;

 private:
  std::string path_;
};

}  // namespace airlock::test
