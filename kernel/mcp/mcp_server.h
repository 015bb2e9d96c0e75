// The kernel's MCP endpoint (/mcp): the Model Context Protocol's Streamable
// HTTP transport, for AI agents. Each POST carries one JSON-RPC message; a
// request is answered with one JSON object, a notification or a response
// with 202. The server keeps no session (no Mcp-Session-Id): any replica
// answers any call, and every call is authenticated by the kernel's identity
// chain like the rest of the API.
//
// The tools (mcp_tools.h) are the API's own operations seen by the agent:
// the catalog and the policy's answer for it, asking for access, following
// the ask, and querying its own ready grant. Every tool call is audited
// ("mcp.tool_call"), and a query also as a tunnel query over "mcp".
//
// A request_access call with `wait_seconds` is answered as a Server-Sent
// Events stream instead: progress notifications while the request waits
// for a human, then the response (approval_wait.h).
//
// Thread-safety: Handle may run concurrently.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/thread_pool.hpp>
#include <nlohmann/json.hpp>

#include "airlock/cpp/values.hpp"
#include "kernel/api/http_types.h"

namespace airlock {

class AuditLog;
class EventHub;
class RequestManager;

namespace mcp {

// The protocol revisions this server speaks, newest first.
inline constexpr std::string_view kProtocolVersions[] = {"2025-11-25", "2025-06-18", "2025-03-26"};

struct McpServerOptions {
  RequestManager* requests = nullptr;
  AuditLog* audit = nullptr;
  // Request transitions, for request_access calls that wait; null: such
  // calls answer at once.
  EventHub* events = nullptr;
  // {"datasets":[...]}, as GET /v1/catalog answers the caller (it changes
  // once the connectors described their datasets).
  std::function<nlohmann::json(const Principal& caller)> catalog;
  // KernelConfig::mcp: the public base URL (empty: from the Host header)
  // and the authorization servers named in the resource metadata.
  std::string public_url;
  std::vector<std::string> authorization_servers;
  size_t max_rows = 1000;
  std::string server_version;
};

class McpServer {
 public:
  explicit McpServer(McpServerOptions options);
  ~McpServer();  // Shutdown()

  // Ends the waits under way (their streams end without an answer); call
  // once the HTTP server has stopped.
  void Shutdown();

  // POST /mcp by `caller`, whose kind the door has already decided.
  HttpResponse Handle(const HttpRequest& request, const Principal& caller) const;

  // OAuth 2.0 Protected Resource Metadata (RFC 9728) of the endpoint.
  nlohmann::json ResourceMetadata(const HttpRequest& request) const;
  // The WWW-Authenticate challenge of a refused call: Bearer, with the
  // metadata's URL (as MCP's authorization specification asks).
  std::string Challenge(const HttpRequest& request) const;

  const McpServerOptions& options() const { return options_; }

 private:
  // The base URL clients reach this API at: the configured one, else the
  // request's scheme and Host header.
  std::string BaseUrl(const HttpRequest& request) const;

  McpServerOptions options_;
  // Runs the waits of request_access calls (approval_wait.h).
  std::unique_ptr<boost::asio::thread_pool> waits_;
};

}  // namespace mcp
}  // namespace airlock
