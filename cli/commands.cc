// What every command shares.
#include "cli/commands.h"

namespace airlock::cli {

int Fail(Invocation& in, const Status& status) {
  in.err << "airlock: " << status.message() << "\n";
  return ExitCodeFor(status);
}

}  // namespace airlock::cli
