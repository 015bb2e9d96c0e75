// The MCP endpoint's tools and resources: each tool with its input and
// output JSON schemas and what it runs (the API's own operations, for the
// calling agent).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "airlock/cpp/status.hpp"
#include "airlock/cpp/values.hpp"
#include "kernel/mcp/mcp_server.h"

namespace airlock::mcp {

// The longest a request_access call waits for its request to settle.
inline constexpr int64_t kMaxWaitSeconds = 300;

// What a tool call came to: its structured content, or an error the agent
// is shown (a tool result with isError), and what the audit record adds
// (request_id, sql_sha256, rows, ...). Members are assigned whole JSON
// values (json{...}), not braced lists: clang 14's unoptimised code leaked
// the replaced value of such an assignment to a returned ToolOutcome.
struct ToolOutcome {
  Status status;
  nlohmann::json structured = nlohmann::json::object();
  nlohmann::json audit = nlohmann::json::object();
};

struct Tool {
  std::string_view name;
  std::string_view title;
  std::string_view description;
  nlohmann::json input_schema;
  nlohmann::json output_schema;
  ToolOutcome (*run)(const McpServerOptions& options, const Principal& caller,
                     const nlohmann::json& arguments);
};

// Every tool, in the order tools/list gives them.
const std::vector<Tool>& Tools();
const Tool* FindTool(std::string_view name);

// resources/list: one resource per dataset, its schema.
nlohmann::json ListResources(const McpServerOptions& options, const Principal& caller);
// resources/templates/list.
nlohmann::json ListResourceTemplates();
// resources/read of `uri`; NotFound for a URI that names no dataset.
Result<nlohmann::json> ReadResource(const McpServerOptions& options, const Principal& caller,
                                    std::string_view uri);

}  // namespace airlock::mcp
