#include "kernel/mcp/mcp_server.h"

#include <algorithm>
#include <cctype>
#include <optional>
#include <utility>

#include "kernel/audit/audit_log.h"
#include "kernel/common/strict_json.h"
#include "kernel/mcp/approval_wait.h"
#include "kernel/mcp/mcp_tools.h"

namespace airlock::mcp {
namespace {

using nlohmann::json;

// JSON-RPC 2.0 error codes.
constexpr int kParseError = -32700;
constexpr int kInvalidRequest = -32600;
constexpr int kMethodNotFound = -32601;
constexpr int kInvalidParams = -32602;
constexpr int kInternalError = -32603;
// MCP: a resource that does not exist.
constexpr int kResourceNotFound = -32002;

struct RpcError {
  int code;
  std::string message;
};

// What a method answers: its result, or an error; or a stream that ends
// with the answer.
struct RpcAnswer {
  json result;
  std::optional<RpcError> error;
  std::shared_ptr<ResponseStream> stream;
};

RpcAnswer Fail(int code, std::string message) {
  return {json(), RpcError{code, std::move(message)}};
}

HttpResponse JsonRpc(unsigned status, const json& id, const RpcAnswer& answer) {
  json body = {{"jsonrpc", "2.0"}, {"id", id}};
  if (answer.error) {
    body["error"] = {{"code", answer.error->code}, {"message", answer.error->message}};
  } else {
    body["result"] = answer.result;
  }
  HttpResponse response;
  response.status = status;
  response.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  return response;
}

HttpResponse Accepted() {
  HttpResponse response;
  response.status = 202;
  response.content_type = "application/json";
  return response;
}

bool Supported(std::string_view version) {
  return std::find(std::begin(kProtocolVersions), std::end(kProtocolVersions), version) !=
         std::end(kProtocolVersions);
}

// "Host" as a client may send it: a name or address and a port, nothing
// that could bend a URL built from it.
bool PlainHost(std::string_view host) {
  return !host.empty() && host.size() <= 255 && std::all_of(host.begin(), host.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':' ||
           c == '[' || c == ']';
  });
}

json ToolListing(const Tool& tool) {
  return {{"name", tool.name},
          {"title", tool.title},
          {"description", tool.description},
          {"inputSchema", tool.input_schema},
          {"outputSchema", tool.output_schema}};
}

json InitializeResult(std::string_view asked_version, const std::string& server_version) {
  const std::string_view version = Supported(asked_version) ? asked_version : kProtocolVersions[0];
  return {{"protocolVersion", version},
          {"capabilities",
           {{"tools", {{"listChanged", false}}}, {"resources", {{"listChanged", false}}}}},
          {"serverInfo", {{"name", "airlock"}, {"title", "Airlock"}, {"version", server_version}}},
          {"instructions",
           "Airlock gives time-boxed access to datasets. list_datasets shows what the policy would "
           "answer you; request_access asks (a human may have to approve: follow it with "
           "request_status); once the request is ready, list_tables and query read its data. "
           "Every call is audited."}};
}

// A tool's answer as MCP's CallToolResult: the structured content and the
// same as text, or the error as text with isError.
json CallToolResult(const ToolOutcome& outcome) {
  if (!outcome.status.ok()) {
    return {{"content", {{{"type", "text"}, {"text", outcome.status.message()}}}},
            {"isError", true}};
  }
  const std::string text = outcome.structured.dump(-1, ' ', false, json::error_handler_t::replace);
  return {{"content", {{{"type", "text"}, {"text", text}}}},
          {"structuredContent", outcome.structured},
          {"isError", false}};
}

json PrincipalOf(const Principal& caller) {
  json ref = {{"subject", caller.subject}, {"kind", PrincipalKindName(caller.kind)}};
  if (!caller.tenant.empty()) ref["tenant"] = caller.tenant;
  return ref;
}

// A request_access call that asked to wait, and whose request has not
// settled: the answer becomes a stream (approval_wait.h).
std::shared_ptr<ResponseStream> MaybeWait(const McpServerOptions& options,
                                          boost::asio::thread_pool* waits, const Principal& caller,
                                          const json& rpc_id, const json& params,
                                          const ToolOutcome& outcome) {
  const json& arguments = params.value("arguments", json::object());
  const int64_t wait = arguments.is_object() ? arguments.value("wait_seconds", int64_t{0}) : 0;
  const std::string state = outcome.structured.value("state", "");
  if (options.events == nullptr || waits == nullptr || wait <= 0 || SettledState(state)) {
    return nullptr;
  }
  ApprovalWait::Call call;
  call.caller = caller;
  call.request_id = outcome.structured.value("id", "");
  call.rpc_id = rpc_id;
  const json meta = params.value("_meta", json::object());
  call.progress_token = meta.is_object() ? meta.value("progressToken", json()) : json();
  call.wait = std::chrono::seconds(wait);
  call.result = [](const json& request) {
    ToolOutcome settled;
    settled.structured = request;
    return CallToolResult(settled);
  };
  return ApprovalWait::Start(options.events, options.requests, waits->get_executor(),
                             std::move(call), state);
}

RpcAnswer CallTool(const McpServerOptions& options, boost::asio::thread_pool* waits,
                   const Principal& caller, const json& rpc_id, const json& params) {
  const auto name = params.find("name");
  if (name == params.end() || !name->is_string()) return Fail(kInvalidParams, "name is required");
  const Tool* tool = FindTool(name->get<std::string>());
  if (tool == nullptr) {
    return Fail(kInvalidParams, "no tool named '" + name->get<std::string>().substr(0, 64) + "'");
  }
  const json no_arguments = json::object();
  const auto arguments = params.find("arguments");
  const json& args = arguments == params.end() || arguments->is_null() ? no_arguments : *arguments;
  ToolOutcome outcome = tool->run(options, caller, args);
  json event = {{"event", "mcp.tool_call"},
                {"principal", PrincipalOf(caller)},
                {"tool", tool->name},
                {"outcome", outcome.status.ok() ? "ok" : StatusCodeName(outcome.status.code())}};
  for (auto& [key, value] : outcome.audit.items()) event[key] = value;
  if (!outcome.status.ok()) event["reason"] = outcome.status.message().substr(0, 512);
  // Fail closed: a call that cannot be recorded is not answered.
  if (!options.audit->Append(std::move(event)).ok()) {
    return Fail(kInternalError, "the audit log is unavailable");
  }
  if (outcome.status.ok() && tool->name == "request_access") {
    if (auto stream = MaybeWait(options, waits, caller, rpc_id, params, outcome)) {
      return {json(), std::nullopt, std::move(stream)};
    }
  }
  return {CallToolResult(outcome), std::nullopt};
}

RpcAnswer ReadResourceCall(const McpServerOptions& options, const Principal& caller,
                           const json& params) {
  const auto uri = params.find("uri");
  if (uri == params.end() || !uri->is_string()) return Fail(kInvalidParams, "uri is required");
  auto read = ReadResource(options, caller, uri->get<std::string>());
  json event = {{"event", "mcp.resource_read"},
                {"principal", PrincipalOf(caller)},
                {"uri", uri->get<std::string>().substr(0, 256)},
                {"outcome", read.ok() ? "ok" : StatusCodeName(read.status().code())}};
  if (!options.audit->Append(std::move(event)).ok()) {
    return Fail(kInternalError, "the audit log is unavailable");
  }
  if (!read.ok()) return Fail(kResourceNotFound, read.status().message());
  return {std::move(*read), std::nullopt};
}

RpcAnswer Dispatch(const McpServerOptions& options, boost::asio::thread_pool* waits,
                   const Principal& caller, const json& rpc_id, const std::string& method,
                   const json& params) {
  if (method == "initialize") {
    return {InitializeResult(StringMember(params, "protocolVersion"), options.server_version),
            std::nullopt};
  }
  if (method == "ping") return {json::object(), std::nullopt};
  if (method == "tools/list") {
    json tools = json::array();
    for (const Tool& tool : Tools()) tools.push_back(ToolListing(tool));
    return {{{"tools", std::move(tools)}}, std::nullopt};
  }
  if (method == "tools/call") return CallTool(options, waits, caller, rpc_id, params);
  if (method == "resources/list") return {ListResources(options, caller), std::nullopt};
  if (method == "resources/templates/list") return {ListResourceTemplates(), std::nullopt};
  if (method == "resources/read") return ReadResourceCall(options, caller, params);
  return Fail(kMethodNotFound, "no method '" + method.substr(0, 64) + "' on this server");
}

}  // namespace

McpServer::McpServer(McpServerOptions options)
    : options_(std::move(options)), waits_(std::make_unique<boost::asio::thread_pool>(1)) {}

McpServer::~McpServer() {
  Shutdown();
}

void McpServer::Shutdown() {
  if (!waits_) return;
  // Pending deadlines would hold join() for their whole wait.
  waits_->stop();
  waits_->join();
}

std::string McpServer::BaseUrl(const HttpRequest& request) const {
  if (!options_.public_url.empty()) return options_.public_url;
  const std::string_view host = request.header("Host");
  return std::string(request.tls ? "https://" : "http://") +
         (PlainHost(host) ? std::string(host) : std::string("localhost"));
}

json McpServer::ResourceMetadata(const HttpRequest& request) const {
  const std::string base = BaseUrl(request);
  return {{"resource", base + "/mcp"},
          {"authorization_servers", options_.authorization_servers},
          {"bearer_methods_supported", {"header"}},
          {"resource_name", "Airlock"},
          {"resource_documentation", base + "/v1/openapi.json"}};
}

std::string McpServer::Challenge(const HttpRequest& request) const {
  return "Bearer realm=\"airlock\", resource_metadata=\"" + BaseUrl(request) +
         "/.well-known/oauth-protected-resource/mcp\"";
}

HttpResponse McpServer::Handle(const HttpRequest& request, const Principal& caller) const {
  // A browser page of another origin must not drive an agent's session
  // (DNS rebinding): a stated Origin must be this API's.
  if (const std::string_view origin = request.header("Origin");
      !origin.empty() && origin != BaseUrl(request)) {
    return HttpResponse::Error(
        403, "forbidden",
        "requests from origin " + std::string(origin.substr(0, 256)) + " are not accepted");
  }
  const std::string_view type = request.header("Content-Type");
  if (!type.starts_with("application/json")) {
    return HttpResponse::Error(415, "unsupported_media_type",
                               "an MCP message is sent as application/json");
  }
  if (const std::string_view version = request.header("MCP-Protocol-Version");
      !version.empty() && !Supported(version)) {
    return JsonRpc(400, nullptr,
                   Fail(kInvalidRequest,
                        "unsupported MCP-Protocol-Version " + std::string(version.substr(0, 32)) +
                            "; this server speaks " + std::string(kProtocolVersions[0])));
  }
  auto parsed = ParseStrictJson(request.body, "MCP message");
  if (!parsed.ok()) return JsonRpc(400, nullptr, Fail(kParseError, parsed.status().message()));
  const json& message = *parsed;
  if (!message.is_object() || StringMember(message, "jsonrpc") != "2.0") {
    return JsonRpc(400, nullptr,
                   Fail(kInvalidRequest, "one JSON-RPC 2.0 message (an object) per POST"));
  }
  const auto method = message.find("method");
  const auto id = message.find("id");
  // A notification, or the client's answer to a request of ours: taken.
  if (method == message.end() || id == message.end()) {
    if (method != message.end() && !method->is_string()) {
      return JsonRpc(400, nullptr, Fail(kInvalidRequest, "method must be a string"));
    }
    return Accepted();
  }
  if (!method->is_string() || !(id->is_string() || id->is_number_integer())) {
    return JsonRpc(400, nullptr,
                   Fail(kInvalidRequest,
                        "a request has a string method and a string or "
                        "integer id"));
  }
  const json no_params = json::object();
  const auto params = message.find("params");
  if (params != message.end() && !params->is_object()) {
    return JsonRpc(200, *id, Fail(kInvalidParams, "params must be an object"));
  }
  const json& p = params == message.end() ? no_params : *params;
  RpcAnswer answer = Dispatch(options_, waits_.get(), caller, *id, method->get<std::string>(), p);
  if (answer.stream) {
    HttpResponse streamed;
    streamed.content_type = "text/event-stream";
    streamed.stream = std::move(answer.stream);
    return streamed;
  }
  return JsonRpc(200, *id, answer);
}

}  // namespace airlock::mcp
