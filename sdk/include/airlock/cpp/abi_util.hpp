// Helpers for filling and consuming the ABI's error and buffer structs from
// C++. Used by both sides of the boundary: every allocation is released by
// the callback of the side that made it.
#pragma once

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "airlock/c/airlock_plugin.h"
#include "airlock/cpp/status.hpp"

namespace airlock::abi {

// Fills `error` (if not null) with a copy of `message`; safe to call on a
// zero-initialised struct. The message is released with free().
inline void FillError(airlock_type_error* error, std::string_view message) {
  if (error == nullptr) return;
  if (error->release != nullptr) error->release(error);
  char* copy = static_cast<char*>(std::malloc(message.size() + 1));
  if (copy == nullptr) return;
  std::memcpy(copy, message.data(), message.size());
  copy[message.size()] = '\0';
  error->message = copy;
  error->private_data = nullptr;
  error->release = [](airlock_type_error* e) {
    std::free(e->message);
    e->message = nullptr;
    e->release = nullptr;
  };
}

// Reports `status` through the ABI: fills the error, returns the code.
inline airlock_type_status Report(const Status& status, airlock_type_error* error) {
  if (!status.ok()) FillError(error, status.message());
  return static_cast<airlock_type_status>(status.code());
}

// Moves `text` into `buffer`; the consumer releases it with buffer->release.
inline void FillBuffer(airlock_type_buffer* buffer, std::string text) {
  auto owned = std::make_unique<std::string>(std::move(text));
  buffer->data = owned->data();
  buffer->length = owned->size();
  buffer->private_data = owned.release();
  buffer->release = [](airlock_type_buffer* b) {
    // Buffers may carry a one-time credential (a tunnel grant): wipe, then free.
    auto* owned_text = static_cast<std::string*>(b->private_data);
    volatile char* bytes = owned_text->data();
    for (size_t i = 0; i < owned_text->size(); ++i) bytes[i] = 0;
    std::unique_ptr<std::string>(owned_text).reset();
    b->data = nullptr;
    b->length = 0;
    b->private_data = nullptr;
    b->release = nullptr;
  };
}

// Consumer-side owner of an airlock_type_error: releases it on scope exit.
class ErrorHolder {
 public:
  ErrorHolder() { std::memset(&error_, 0, sizeof(error_)); }
  ~ErrorHolder() {
    if (error_.release != nullptr) error_.release(&error_);
  }
  ErrorHolder(const ErrorHolder&) = delete;
  ErrorHolder& operator=(const ErrorHolder&) = delete;

  airlock_type_error* get() { return &error_; }
  std::string message() const { return error_.message != nullptr ? error_.message : ""; }

  // Converts a raw ABI status plus this error into a Status.
  Status ToStatus(airlock_type_status raw, std::string_view fallback) const {
    if (raw == AIRLOCK_OK) return Status::Ok();
    std::string msg = message();
    if (msg.empty()) msg = std::string(fallback);
    return Status(StatusCodeFromAbi(raw), std::move(msg));
  }

 private:
  airlock_type_error error_;
};

// Consumer-side owner of an airlock_type_buffer.
class BufferHolder {
 public:
  BufferHolder() { std::memset(&buffer_, 0, sizeof(buffer_)); }
  ~BufferHolder() {
    if (buffer_.release != nullptr) buffer_.release(&buffer_);
  }
  BufferHolder(const BufferHolder&) = delete;
  BufferHolder& operator=(const BufferHolder&) = delete;

  airlock_type_buffer* get() { return &buffer_; }
  std::string_view view() const {
    return buffer_.data != nullptr ? std::string_view(buffer_.data, buffer_.length)
                                   : std::string_view();
  }

 private:
  airlock_type_buffer buffer_;
};

// True when a table of `size` bytes contains the member ending at `end`.
constexpr bool Has(size_t size, size_t end) {
  return size >= end;
}

}  // namespace airlock::abi

// True when `table` (a pointer to a size-prefixed struct) includes `member`.
#define AIRLOCK_ABI_HAS(table, type, member) \
  ((table)->size >= offsetof(type, member) + sizeof(((type*)nullptr)->member))
