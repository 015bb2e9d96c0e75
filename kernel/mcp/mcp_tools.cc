#include "kernel/mcp/mcp_tools.h"

#include <string>

#include "kernel/common/crypto.h"
#include "kernel/core/arrow_json.h"
#include "kernel/core/request_manager.h"

namespace airlock::mcp {
namespace {

using nlohmann::json;

constexpr size_t kMaxSqlBytes = 100000;
constexpr std::string_view kSchemaUriPrefix = "airlock://datasets/";
constexpr std::string_view kSchemaUriSuffix = "/schema";

// --- arguments ---------------------------------------------------------------

// Arguments are checked here, not trusted from the schema: the message
// names the argument, for the agent to correct its call.
Status OnlyKnown(const json& arguments, std::initializer_list<std::string_view> known) {
  if (!arguments.is_object()) return Status::InvalidArgument("arguments must be an object");
  for (const auto& [key, value] : arguments.items()) {
    bool found = false;
    for (std::string_view k : known) found = found || key == k;
    if (!found) return Status::InvalidArgument("unknown argument '" + key + "'");
  }
  return Status::Ok();
}

Result<std::string> RequiredString(const json& arguments, const char* key, size_t max_bytes) {
  auto it = arguments.find(key);
  if (it == arguments.end()) return Status::InvalidArgument(std::string(key) + " is required");
  if (!it->is_string() || it->get_ref<const std::string&>().empty() ||
      it->get_ref<const std::string&>().size() > max_bytes) {
    return Status::InvalidArgument(std::string(key) + " must be a string of 1.." +
                                   std::to_string(max_bytes) + " bytes");
  }
  return it->get<std::string>();
}

Result<std::string> RequestIdArgument(const json& arguments) {
  AIRLOCK_ASSIGN_OR_RETURN(std::string id, RequiredString(arguments, "request_id", 64));
  if (!ValidRequestId(id)) return Status::InvalidArgument("request_id is not a request id");
  return id;
}

// --- schemas -----------------------------------------------------------------

json ObjectSchema(json properties, json required = json::array()) {
  json schema = {{"type", "object"}, {"properties", std::move(properties)}};
  if (!required.empty()) schema["required"] = std::move(required);
  return schema;
}

const json& StringSchema() {
  static const json schema = {{"type", "string"}};
  return schema;
}

// What the policy would answer the caller (RequestManager::PreviewCatalog).
json ForMeSchema() {
  return ObjectSchema(
      {{"effect", {{"type", "string"}, {"enum", {"allow", "deny", "needs_approval"}}}},
       {"reason", StringSchema()},
       {"obligations", {{"type", "object"}}},
       {"approval", {{"type", "object"}}},
       {"max_window_seconds", {{"type", "integer"}}}},
      {"effect", "reason"});
}

json ColumnsSchema() {
  return {{"type", "array"},
          {"items", ObjectSchema({{"name", StringSchema()}, {"type", StringSchema()}}, {"name"})}};
}

json DatasetSchema() {
  return ObjectSchema({{"name", StringSchema()},
                       {"description", StringSchema()},
                       {"tags", {{"type", "array"}, {"items", StringSchema()}}},
                       {"columns", ColumnsSchema()},
                       {"for_me", ForMeSchema()}},
                      {"name", "for_me"});
}

// A request as GET /v1/requests/{id} shows it.
json RequestSchema() {
  return ObjectSchema({{"id", StringSchema()},
                       {"state", StringSchema()},
                       {"reason", StringSchema()},
                       {"datasets", {{"type", "array"}, {"items", StringSchema()}}}},
                      {"id", "state"});
}

// --- catalog -----------------------------------------------------------------

json PublicDataset(json dataset) {
  dataset.erase("connector");
  return dataset;
}

ToolOutcome ListDatasets(const McpServerOptions& options, const Principal& caller,
                         const json& arguments) {
  ToolOutcome out;
  out.status = OnlyKnown(arguments, {});
  if (!out.status.ok()) return out;
  auto catalog = options.requests->PreviewCatalog(caller, options.catalog(caller));
  if (!catalog.ok()) {
    out.status = catalog.status();
    return out;
  }
  json datasets = json::array();
  for (json& dataset : (*catalog)["datasets"])
    datasets.push_back(PublicDataset(std::move(dataset)));
  out.structured = json{{"datasets", std::move(datasets)}};
  return out;
}

ToolOutcome DescribeDataset(const McpServerOptions& options, const Principal& caller,
                            const json& arguments) {
  ToolOutcome out;
  out.status = OnlyKnown(arguments, {"name"});
  if (!out.status.ok()) return out;
  auto name = RequiredString(arguments, "name", 256);
  if (!name.ok()) {
    out.status = name.status();
    return out;
  }
  // The policy is asked about this dataset alone, not the whole catalog.
  for (const json& dataset : options.catalog(caller).value("datasets", json::array())) {
    if (dataset.value("name", "") != *name) continue;
    auto previewed =
        options.requests->PreviewCatalog(caller, json{{"datasets", json::array({dataset})}});
    if (!previewed.ok()) {
      out.status = previewed.status();
      return out;
    }
    out.structured = PublicDataset(std::move((*previewed)["datasets"][0]));
    return out;
  }
  options.requests->NoteUnknownDataset(caller, *name);
  out.status = Status::NotFound("no dataset named '" + *name + "' (list_datasets names them)");
  return out;
}

// --- requests ----------------------------------------------------------------

ToolOutcome RequestAccess(const McpServerOptions& options, const Principal& caller,
                          const json& arguments) {
  ToolOutcome out;
  out.status =
      OnlyKnown(arguments, {"datasets", "purpose", "window_seconds", "columns", "wait_seconds"});
  if (!out.status.ok()) return out;
  if (!arguments.contains("purpose")) {
    out.status = Status::InvalidArgument("purpose is required");
    return out;
  }
  // How long the call may wait for a human (mcp_server.cc answers it).
  if (auto wait = arguments.find("wait_seconds"); wait != arguments.end()) {
    if (!wait->is_number_integer() || wait->get<int64_t>() < 0 ||
        wait->get<int64_t>() > kMaxWaitSeconds) {
      out.status = Status::InvalidArgument("wait_seconds must be an integer from 0 to " +
                                           std::to_string(kMaxWaitSeconds));
      return out;
    }
  }
  json ask = arguments;
  ask.erase("wait_seconds");
  // The ask is checked as the API checks it (RequestManager::Create).
  auto created = options.requests->Create(caller, ask);
  if (!created.ok()) {
    out.status = created.status();
    return out;
  }
  out.audit = json{{"request_id", created->value("id", "")}};
  out.structured = std::move(*created);
  return out;
}

// A tool whose one argument is a request id: `read` answers for it.
template <typename Read>
ToolOutcome ForRequest(const json& arguments, Read read) {
  ToolOutcome out;
  out.status = OnlyKnown(arguments, {"request_id"});
  if (!out.status.ok()) return out;
  auto id = RequestIdArgument(arguments);
  if (!id.ok()) {
    out.status = id.status();
    return out;
  }
  out.audit = json{{"request_id", *id}};
  Result<json> answer = read(*id);
  if (!answer.ok()) {
    out.status = answer.status();
    return out;
  }
  out.structured = std::move(*answer);
  return out;
}

ToolOutcome RequestStatus(const McpServerOptions& options, const Principal& caller,
                          const json& arguments) {
  return ForRequest(arguments,
                    [&](const std::string& id) { return options.requests->Get(caller, id); });
}

// --- the grant ---------------------------------------------------------------

ToolOutcome ListTables(const McpServerOptions& options, const Principal& caller,
                       const json& arguments) {
  return ForRequest(arguments, [&](const std::string& id) {
    return options.requests->TablesAsRequester(caller, id);
  });
}

// Runs `text` (SQL or an aggregate call) on the caller's grant of request
// `arguments.request_id`, keeping at most `arguments.max_rows` rows.
ToolOutcome RunOnGrant(const McpServerOptions& options, const Principal& caller,
                       const json& arguments, const std::string& text) {
  auto id = RequestIdArgument(arguments);
  if (!id.ok()) return {id.status()};
  size_t max_rows = options.max_rows;
  if (auto it = arguments.find("max_rows"); it != arguments.end()) {
    if (!it->is_number_integer() || it->get<int64_t>() < 1 ||
        it->get<int64_t>() > static_cast<int64_t>(options.max_rows)) {
      return {Status::InvalidArgument("max_rows must be an integer from 1 to " +
                                      std::to_string(options.max_rows))};
    }
    max_rows = it->get<size_t>();
  }
  ToolOutcome out;
  out.audit = json{{"request_id", *id}, {"sql_sha256", Sha256Hex(text)}};
  JsonRowCollector rows(max_rows);
  Status ran = options.requests->QueryAsRequester(caller, *id, text, "mcp", rows);
  // Stopped by the row cap: the rows kept are the answer.
  if (ran.code() == StatusCode::kCancelled && rows.truncated()) ran = Status::Ok();
  out.audit["rows"] = rows.rows().size();
  if (!ran.ok()) {
    out.status = ran;
    return out;
  }
  const size_t count = rows.rows().size();
  out.structured = json{{"columns", rows.columns()},
                        {"rows", std::move(rows.rows())},
                        {"row_count", count},
                        {"truncated", rows.truncated()}};
  return out;
}

ToolOutcome Query(const McpServerOptions& options, const Principal& caller, const json& arguments) {
  if (Status known = OnlyKnown(arguments, {"request_id", "sql", "max_rows"}); !known.ok()) {
    return {known};
  }
  auto sql = RequiredString(arguments, "sql", kMaxSqlBytes);
  if (!sql.ok()) return {sql.status()};
  return RunOnGrant(options, caller, arguments, *sql);
}

// The enclave builds the SQL of an aggregate call itself (and keeps a clean
// room's rules): the agent names what to group, compute and filter.
ToolOutcome Aggregate(const McpServerOptions& options, const Principal& caller,
                      const json& arguments) {
  if (Status known = OnlyKnown(
          arguments, {"request_id", "dataset", "dimensions", "metrics", "filters", "max_rows"});
      !known.ok()) {
    return {known};
  }
  auto dataset = RequiredString(arguments, "dataset", 256);
  if (!dataset.ok()) return {dataset.status()};
  json call = {{"dataset", *dataset}};
  for (const char* key : {"dimensions", "metrics", "filters"}) {
    if (arguments.contains(key)) call[key] = arguments[key];
  }
  if (!call.contains("metrics")) return {Status::InvalidArgument("metrics is required")};
  const std::string text = "AGGREGATE " + call.dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > kMaxSqlBytes)
    return {Status::InvalidArgument("the aggregate call is too long")};
  return RunOnGrant(options, caller, arguments, text);
}

json ResultSchema() {
  return ObjectSchema({{"columns", ColumnsSchema()},
                       {"rows", {{"type", "array"}, {"items", {{"type", "array"}}}}},
                       {"row_count", {{"type", "integer"}}},
                       {"truncated", {{"type", "boolean"}}}},
                      {"columns", "rows", "row_count", "truncated"});
}

json RequestIdInput() {
  return ObjectSchema({{"request_id", {{"type", "string"}, {"description", "The request's id"}}}},
                      {"request_id"});
}

}  // namespace

const std::vector<Tool>& Tools() {
  static const std::vector<Tool> tools = {
      {"list_datasets", "List datasets",
       "The datasets in the catalog, each with what the policy would answer you if you asked for "
       "it (allow, needs_approval with who approves, or deny with the reason).",
       ObjectSchema(json::object()),
       ObjectSchema({{"datasets", {{"type", "array"}, {"items", DatasetSchema()}}}}, {"datasets"}),
       &ListDatasets},
      {"describe_dataset", "Describe a dataset",
       "One dataset's columns and the obligations the policy would apply to you (columns kept, "
       "masks, row filters), before you ask.",
       ObjectSchema({{"name", {{"type", "string"}, {"description", "The dataset's name"}}}},
                    {"name"}),
       DatasetSchema(), &DescribeDataset},
      {"request_access", "Request access",
       "Asks for time-boxed access to datasets, with a purpose a human approver reads. Returns "
       "the request (its id and state: ready, pending_approval, denied, ...); with wait_seconds "
       "the call waits for a human's decision, sending progress as the state changes. Else "
       "follow it with request_status; once it is ready, query it.",
       ObjectSchema({{"datasets",
                      {{"type", "array"},
                       {"items", StringSchema()},
                       {"minItems", 1},
                       {"uniqueItems", true}}},
                     {"purpose", {{"type", "string"}, {"description", "Why you need the data"}}},
                     {"window_seconds",
                      {{"type", "integer"},
                       {"minimum", 1},
                       {"description", "How long (default: policy's)"}}},
                     {"wait_seconds",
                      {{"type", "integer"},
                       {"minimum", 0},
                       {"maximum", kMaxWaitSeconds},
                       {"description",
                        "Wait up to this long for the request to settle (a human approving), "
                        "with progress notifications; 0 answers at once"}}},
                     {"columns",
                      {{"type", "object"},
                       {"description", "Per dataset, the only columns you need"},
                       {"additionalProperties", {{"type", "array"}, {"items", StringSchema()}}}}}},
                    {"datasets", "purpose"}),
       RequestSchema(), &RequestAccess},
      {"request_status", "Request status",
       "A request's state and history (pending_approval, ready, denied with the reason, closed, "
       "...).",
       RequestIdInput(), RequestSchema(), &RequestStatus},
      {"list_tables", "List tables",
       "The tables of your ready request's enclave, with their columns.", RequestIdInput(),
       ObjectSchema({{"tables", {{"type", "array"}, {"items", {{"type", "object"}}}}}}, {"tables"}),
       &ListTables},
      {"query", "Query",
       "Runs one SQL statement (SQLite dialect) on your ready request's data, inside its enclave. "
       "The answer holds at most max_rows rows (truncated says when there were more).",
       ObjectSchema({{"request_id", {{"type", "string"}}},
                     {"sql", {{"type", "string"}, {"description", "One SELECT statement"}}},
                     {"max_rows", {{"type", "integer"}, {"minimum", 1}}}},
                    {"request_id", "sql"}),
       ResultSchema(), &Query},
      {"aggregate", "Aggregate",
       "Groups a dataset of your ready request by dimension columns and computes functions "
       "(count, count_distinct, sum, avg, min, max) over metric columns, with filters on "
       "dimensions; the enclave writes the SQL. The only way to read a grant that is "
       "aggregate-only (a clean room): there, groups of fewer rows than the policy's minimum "
       "are left out, and only its dimensions, metrics and functions may be used. Answer "
       "columns: the dimensions, then <function>_<column> (count for rows).",
       ObjectSchema(
           {{"request_id", {{"type", "string"}}},
            {"dataset", {{"type", "string"}}},
            {"dimensions", {{"type", "array"}, {"items", StringSchema()}}},
            {"metrics",
             {{"type", "array"},
              {"minItems", 1},
              {"items",
               ObjectSchema({{"function",
                              {{"type", "string"},
                               {"enum", {"count", "count_distinct", "sum", "avg", "min", "max"}}}},
                             {"column", StringSchema()}},
                            {"function"})}}},
            {"filters",
             {{"type", "array"},
              {"items", ObjectSchema({{"column", StringSchema()},
                                      {"op",
                                       {{"type", "string"},
                                        {"enum", {"eq", "ne", "lt", "le", "gt", "ge", "in"}}}},
                                      {"value", json::object()}},
                                     {"column", "op", "value"})}}},
            {"max_rows", {{"type", "integer"}, {"minimum", 1}}}},
           {"request_id", "dataset", "metrics"}),
       ResultSchema(), &Aggregate},
  };
  return tools;
}

const Tool* FindTool(std::string_view name) {
  for (const Tool& tool : Tools()) {
    if (tool.name == name) return &tool;
  }
  return nullptr;
}

json ListResources(const McpServerOptions& options, const Principal& caller) {
  json resources = json::array();
  for (const json& dataset : options.catalog(caller).value("datasets", json::array())) {
    const std::string name = dataset.value("name", "");
    json resource = {{"uri", std::string(kSchemaUriPrefix) + name + std::string(kSchemaUriSuffix)},
                     {"name", name},
                     {"title", "Schema of " + name},
                     {"mimeType", "application/json"}};
    if (dataset.contains("description")) resource["description"] = dataset["description"];
    resources.push_back(std::move(resource));
  }
  return {{"resources", std::move(resources)}};
}

json ListResourceTemplates() {
  return {
      {"resourceTemplates",
       {{{"uriTemplate", std::string(kSchemaUriPrefix) + "{name}" + std::string(kSchemaUriSuffix)},
         {"name", "dataset-schema"},
         {"title", "A dataset's schema"},
         {"mimeType", "application/json"}}}}};
}

Result<json> ReadResource(const McpServerOptions& options, const Principal& caller,
                          std::string_view uri) {
  if (uri.starts_with(kSchemaUriPrefix) && uri.ends_with(kSchemaUriSuffix) &&
      uri.size() > kSchemaUriPrefix.size() + kSchemaUriSuffix.size()) {
    const std::string_view name = uri.substr(
        kSchemaUriPrefix.size(), uri.size() - kSchemaUriPrefix.size() - kSchemaUriSuffix.size());
    for (const json& dataset : options.catalog(caller).value("datasets", json::array())) {
      if (dataset.value("name", "") != name) continue;
      const json schema = PublicDataset(dataset);
      return json{{"contents",
                   {{{"uri", std::string(uri)},
                     {"mimeType", "application/json"},
                     {"text", schema.dump(-1, ' ', false, json::error_handler_t::replace)}}}}};
    }
    if (name.size() <= 256) options.requests->NoteUnknownDataset(caller, std::string(name));
  }
  return Status::NotFound("no resource " + std::string(uri).substr(0, 256));
}

}  // namespace airlock::mcp
