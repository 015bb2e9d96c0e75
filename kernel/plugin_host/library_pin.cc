#include "kernel/plugin_host/library_pin.h"

#include <utility>
#include <vector>

namespace airlock::plugin_host {
namespace {

// private_data of a wrapper. `inner` is the producer's struct, moved here;
// `children` are wrappers of its children (moved out of it), which the
// wrapper's `children` pointers expose in their place.
template <typename T>
struct Pinned {
  T inner{};
  std::vector<T> children;
  std::vector<T*> child_pointers;
  std::shared_ptr<const void> pin;
};

template <typename T>
void ReleasePinned(T* wrapper) {
  std::unique_ptr<Pinned<T>> pinned(static_cast<Pinned<T>*>(wrapper->private_data));
  for (T& child : pinned->children) {
    if (child.release != nullptr) child.release(&child);
  }
  if (pinned->inner.release != nullptr) pinned->inner.release(&pinned->inner);
  wrapper->private_data = nullptr;
  wrapper->release = nullptr;
  // `pinned` (and with it the library reference) goes last, after every
  // callback into the library has returned.
}

// Replaces the live struct `*target` with a pinned wrapper around it.
template <typename T>
void Wrap(T* target, const std::shared_ptr<const void>& pin, int depth) {
  auto pinned = std::make_unique<Pinned<T>>();
  pinned->inner = *target;  // move: bitwise copy, then the source no longer owns it
  target->release = nullptr;
  pinned->pin = pin;
  T wrapper = pinned->inner;
  const T& inner = pinned->inner;
  if (depth < kMaxPinDepth && inner.n_children > 0 && inner.children != nullptr) {
    const auto n = static_cast<size_t>(inner.n_children);
    pinned->children.resize(n);  // sized once: the pointers below stay valid
    pinned->child_pointers.resize(n);
    for (size_t i = 0; i < n; ++i) {
      T* child = inner.children[i];
      if (child == nullptr) continue;
      pinned->child_pointers[i] = &pinned->children[i];
      if (child->release == nullptr) continue;  // already moved out or released
      pinned->children[i] = *child;
      child->release = nullptr;  // the producer's release now skips it
      Wrap(&pinned->children[i], pin, depth + 1);
    }
    wrapper.children = pinned->child_pointers.data();
  }
  wrapper.private_data = pinned.release();
  wrapper.release = &ReleasePinned<T>;
  *target = wrapper;
}

template <typename Owned, typename T>
Owned Pin(Owned owned, std::shared_ptr<const void> pin) {
  if (!owned.valid() || pin == nullptr) return owned;
  T raw{};
  owned.MoveTo(&raw);
  Wrap(&raw, pin, 0);
  return Owned::TakeFrom(&raw);
}

}  // namespace

arrow::OwnedArray PinToLibrary(arrow::OwnedArray array, std::shared_ptr<const void> pin) {
  return Pin<arrow::OwnedArray, ArrowArray>(std::move(array), std::move(pin));
}

arrow::OwnedSchema PinToLibrary(arrow::OwnedSchema schema, std::shared_ptr<const void> pin) {
  return Pin<arrow::OwnedSchema, ArrowSchema>(std::move(schema), std::move(pin));
}

}  // namespace airlock::plugin_host
