// Shared by the enclave channel and agent link fuzz targets: reads one
// enclave control-channel frame's payload the way the kernel does
// (kernel/enclave/enclave_client.cc): JSON documents through
// ParseJsonObject, result schemas and batches through the IdPayload split
// and the batch codec.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "airlock/cpp/arrow.hpp"
#include "kernel/enclave/batch_codec.h"
#include "kernel/enclave/channel.h"

namespace airlock::fuzz {

// What one connection remembers between frames: the last result schema.
struct EnclaveFrameState {
  std::optional<std::vector<arrow::Field>> schema;
};

inline void ReadEnclaveFrame(enclave::FrameType type, std::string_view payload,
                             EnclaveFrameState* state) {
  using enclave::FrameType;
  (void)enclave::FrameTypeName(type);
  switch (type) {
    case FrameType::kResultSchema:
    case FrameType::kResultBatch: {
      std::string_view id, rest;
      if (!enclave::DecodeIdPayload(payload, &id, &rest).ok()) return;
      if (type == FrameType::kResultSchema) {
        auto fields = DecodeSchema(rest);
        if (fields.ok()) state->schema = std::move(fields).value();
        return;
      }
      if (state->schema) (void)DecodeBatch(*state->schema, std::string(rest));
      return;
    }
    case FrameType::kShutdown:
      return;
    default: {
      auto doc = enclave::ParseJsonObject(payload, "frame");
      if (!doc.ok()) return;
      if (auto code = doc->find("code"); code != doc->end() && code->is_string()) {
        (void)enclave::StatusCodeFromName(code->get_ref<const std::string&>());
      }
      return;
    }
  }
}

}  // namespace airlock::fuzz
