// Arrow structs a plugin produced carry release callbacks that live in the
// plugin's code. Pinning wraps such a struct so that its release first calls
// the producer's release and then drops a reference (`pin`) that keeps the
// library mapped. Children are wrapped too (down to a fixed depth), so a
// consumer that moves a column out of a batch still holds the library.
#pragma once

#include <memory>

#include "airlock/cpp/arrow.hpp"

namespace airlock::plugin_host {

// Children nested deeper than this are not wrapped (they are still released,
// pinned, by their parent's release unless moved out).
inline constexpr int kMaxPinDepth = 8;

arrow::OwnedArray PinToLibrary(arrow::OwnedArray array, std::shared_ptr<const void> pin);
arrow::OwnedSchema PinToLibrary(arrow::OwnedSchema schema, std::shared_ptr<const void> pin);

}  // namespace airlock::plugin_host
