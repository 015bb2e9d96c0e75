// Pins the ABI-1 layout for x86-64 (LP64): any change to a size, an offset, a
// *_1_0_SIZE constant, a status code, a kind or the entry symbol fails here.
// Shipped structs are frozen; members may only be appended (with a new
// *_1_N_SIZE), which changes sizeof but none of the pinned offsets or 1.0 sizes.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <string>

#include "tests/sdk/abi/abi_layout.h"

namespace {

#if defined(__x86_64__)

// Build-time pins for the tables a plugin and the host hand each other.
static_assert(sizeof(airlock_host_services) == 72);
static_assert(AIRLOCK_HOST_SERVICES_1_0_SIZE == 72);
static_assert(offsetof(airlock_host_services, enclave_executable) == 64);
static_assert(sizeof(airlock_type_plugin_info) == 72);
static_assert(AIRLOCK_PLUGIN_INFO_1_0_SIZE == 64);
static_assert(AIRLOCK_PLUGIN_INFO_1_1_SIZE == 72);
static_assert(offsetof(airlock_type_plugin_info, kind) == 16);
static_assert(offsetof(airlock_type_plugin_info, name) == 24);
static_assert(AIRLOCK_IDENTITY_VTABLE_1_0_SIZE == 32);
static_assert(AIRLOCK_POLICY_VTABLE_1_0_SIZE == 40);
static_assert(AIRLOCK_CONNECTOR_VTABLE_1_0_SIZE == 40);
static_assert(AIRLOCK_TUNNEL_VTABLE_1_0_SIZE == 40);
static_assert(AIRLOCK_TUNNEL_VTABLE_1_1_SIZE == 48);
static_assert(AIRLOCK_TUNNEL_VTABLE_1_3_SIZE == 56);
static_assert(AIRLOCK_ISOLATOR_VTABLE_1_0_SIZE == 56);
static_assert(AIRLOCK_BATCH_SINK_1_0_SIZE == 48);
static_assert(AIRLOCK_QUERY_CHANNEL_1_0_SIZE == 32);
static_assert(AIRLOCK_HTTP_REQUEST_VIEW_1_0_SIZE == 88);
static_assert(sizeof(airlock_type_enclave_launch) == 24);
static_assert(sizeof(airlock_type_error) == 24);
static_assert(sizeof(airlock_type_buffer) == 32);
static_assert(sizeof(airlock_type_secret) == 32);
static_assert(sizeof(ArrowSchema) == 72);
static_assert(sizeof(ArrowArray) == 80);

// Every entry of AIRLOCK_ABI_LAYOUT, pinned.
const std::map<std::string, size_t>& Pinned() {
  static const std::map<std::string, size_t> pinned = {
      {"airlock_type_error", 24},
      {"airlock_type_error.message", 0},
      {"airlock_type_error.release", 8},
      {"airlock_type_error.private_data", 16},
      {"airlock_type_buffer", 32},
      {"airlock_type_buffer.data", 0},
      {"airlock_type_buffer.length", 8},
      {"airlock_type_buffer.release", 16},
      {"airlock_type_buffer.private_data", 24},
      {"airlock_type_secret", 32},
      {"airlock_type_secret.data", 0},
      {"airlock_type_secret.length", 8},
      {"airlock_type_secret.release", 16},
      {"airlock_type_secret.private_data", 24},
      {"airlock_host_services", 72},
      {"airlock_host_services.size", 0},
      {"airlock_host_services.abi_major", 8},
      {"airlock_host_services.abi_minor", 12},
      {"airlock_host_services.host_data", 16},
      {"airlock_host_services.log", 24},
      {"airlock_host_services.audit_emit", 32},
      {"airlock_host_services.now_unix_micros", 40},
      {"airlock_host_services.secret_resolve", 48},
      {"airlock_host_services.enclave_serve", 56},
      {"airlock_host_services.enclave_executable", 64},
      {"AIRLOCK_HOST_SERVICES_1_0_SIZE", 72},
      {"airlock_type_plugin_info", 72},
      {"airlock_type_plugin_info.size", 0},
      {"airlock_type_plugin_info.abi_major", 8},
      {"airlock_type_plugin_info.abi_minor", 12},
      {"airlock_type_plugin_info.kind", 16},
      {"airlock_type_plugin_info.name", 24},
      {"airlock_type_plugin_info.version", 32},
      {"airlock_type_plugin_info.description", 40},
      {"airlock_type_plugin_info.config_schema", 48},
      {"airlock_type_plugin_info.vtable", 56},
      {"AIRLOCK_PLUGIN_INFO_1_0_SIZE", 64},
      {"airlock_type_plugin_info.check_config", 64},
      {"AIRLOCK_PLUGIN_INFO_1_1_SIZE", 72},
      {"airlock_type_header", 32},
      {"airlock_type_header.name", 0},
      {"airlock_type_header.name_length", 8},
      {"airlock_type_header.value", 16},
      {"airlock_type_header.value_length", 24},
      {"airlock_type_http_request_view", 88},
      {"airlock_type_http_request_view.size", 0},
      {"airlock_type_http_request_view.method", 8},
      {"airlock_type_http_request_view.method_length", 16},
      {"airlock_type_http_request_view.target", 24},
      {"airlock_type_http_request_view.target_length", 32},
      {"airlock_type_http_request_view.headers", 40},
      {"airlock_type_http_request_view.header_count", 48},
      {"airlock_type_http_request_view.remote_address", 56},
      {"airlock_type_http_request_view.remote_address_length", 64},
      {"airlock_type_http_request_view.peer_certificate_pem", 72},
      {"airlock_type_http_request_view.peer_certificate_pem_length", 80},
      {"AIRLOCK_HTTP_REQUEST_VIEW_1_0_SIZE", 88},
      {"airlock_type_identity_vtable", 32},
      {"airlock_type_identity_vtable.size", 0},
      {"airlock_type_identity_vtable.create", 8},
      {"airlock_type_identity_vtable.destroy", 16},
      {"airlock_type_identity_vtable.authenticate", 24},
      {"AIRLOCK_IDENTITY_VTABLE_1_0_SIZE", 32},
      {"airlock_type_policy_vtable", 40},
      {"airlock_type_policy_vtable.size", 0},
      {"airlock_type_policy_vtable.create", 8},
      {"airlock_type_policy_vtable.destroy", 16},
      {"airlock_type_policy_vtable.evaluate", 24},
      {"airlock_type_policy_vtable.reload", 32},
      {"AIRLOCK_POLICY_VTABLE_1_0_SIZE", 40},
      {"airlock_type_batch_sink", 48},
      {"airlock_type_batch_sink.size", 0},
      {"airlock_type_batch_sink.host_data", 8},
      {"airlock_type_batch_sink.on_schema", 16},
      {"airlock_type_batch_sink.on_batch", 24},
      {"airlock_type_batch_sink.is_cancelled", 32},
      {"airlock_type_batch_sink.on_progress", 40},
      {"AIRLOCK_BATCH_SINK_1_0_SIZE", 48},
      {"airlock_type_connector_vtable", 40},
      {"airlock_type_connector_vtable.size", 0},
      {"airlock_type_connector_vtable.create", 8},
      {"airlock_type_connector_vtable.destroy", 16},
      {"airlock_type_connector_vtable.describe", 24},
      {"airlock_type_connector_vtable.pull", 32},
      {"AIRLOCK_CONNECTOR_VTABLE_1_0_SIZE", 40},
      {"airlock_type_query_channel", 32},
      {"airlock_type_query_channel.size", 0},
      {"airlock_type_query_channel.host_data", 8},
      {"airlock_type_query_channel.query", 16},
      {"airlock_type_query_channel.tables", 24},
      {"AIRLOCK_QUERY_CHANNEL_1_0_SIZE", 32},
      {"airlock_type_tunnel_vtable", 56},
      {"airlock_type_tunnel_vtable.size", 0},
      {"airlock_type_tunnel_vtable.create", 8},
      {"airlock_type_tunnel_vtable.destroy", 16},
      {"airlock_type_tunnel_vtable.open", 24},
      {"airlock_type_tunnel_vtable.close", 32},
      {"AIRLOCK_TUNNEL_VTABLE_1_0_SIZE", 40},
      {"airlock_type_tunnel_vtable.close_with_reason", 40},
      {"AIRLOCK_TUNNEL_VTABLE_1_1_SIZE", 48},
      {"airlock_type_tunnel_vtable.extend", 48},
      {"AIRLOCK_TUNNEL_VTABLE_1_3_SIZE", 56},
      {"airlock_type_enclave_launch", 24},
      {"airlock_type_enclave_launch.size", 0},
      {"airlock_type_enclave_launch.control_fd", 8},
      {"airlock_type_enclave_launch.enclave", 16},
      {"airlock_type_isolator_vtable", 56},
      {"airlock_type_isolator_vtable.size", 0},
      {"airlock_type_isolator_vtable.create", 8},
      {"airlock_type_isolator_vtable.destroy", 16},
      {"airlock_type_isolator_vtable.provision", 24},
      {"airlock_type_isolator_vtable.terminate", 32},
      {"airlock_type_isolator_vtable.describe_isolation", 40},
      {"airlock_type_isolator_vtable.reap_orphans", 48},
      {"AIRLOCK_ISOLATOR_VTABLE_1_0_SIZE", 56},
      {"airlock_type_notifier_vtable", 32},
      {"airlock_type_notifier_vtable.size", 0},
      {"airlock_type_notifier_vtable.create", 8},
      {"airlock_type_notifier_vtable.destroy", 16},
      {"airlock_type_notifier_vtable.deliver", 24},
      {"AIRLOCK_NOTIFIER_VTABLE_1_2_SIZE", 32},
      {"struct ArrowSchema", 72},
      {"struct ArrowSchema.format", 0},
      {"struct ArrowSchema.name", 8},
      {"struct ArrowSchema.metadata", 16},
      {"struct ArrowSchema.flags", 24},
      {"struct ArrowSchema.n_children", 32},
      {"struct ArrowSchema.children", 40},
      {"struct ArrowSchema.dictionary", 48},
      {"struct ArrowSchema.release", 56},
      {"struct ArrowSchema.private_data", 64},
      {"struct ArrowArray", 80},
      {"struct ArrowArray.length", 0},
      {"struct ArrowArray.null_count", 8},
      {"struct ArrowArray.offset", 16},
      {"struct ArrowArray.n_buffers", 24},
      {"struct ArrowArray.n_children", 32},
      {"struct ArrowArray.buffers", 40},
      {"struct ArrowArray.children", 48},
      {"struct ArrowArray.dictionary", 56},
      {"struct ArrowArray.release", 64},
      {"struct ArrowArray.private_data", 72},
  };
  return pinned;
}

TEST(AbiLayoutTest, EveryMemberSitsWhereAbi1PutIt) {
  size_t checked = 0;
#define X(name, value)                                               \
  do {                                                               \
    const auto it = Pinned().find(name);                             \
    if (it == Pinned().end()) {                                      \
      ADD_FAILURE() << name << " is not pinned: add it to Pinned()"; \
    } else {                                                         \
      EXPECT_EQ(static_cast<size_t>(value), it->second) << name;     \
      ++checked;                                                     \
    }                                                                \
  } while (0);
  AIRLOCK_ABI_LAYOUT
#undef X
  EXPECT_EQ(checked, Pinned().size()) << "a pinned entry is missing from AIRLOCK_ABI_LAYOUT";
}

#endif  // __x86_64__

// On every platform: the C compiler and the C++ compiler agree on the layout.
TEST(AbiLayoutTest, CAndCxxCompilersAgree) {
  size_t count = 0;
  const airlock_test_layout_entry* c_layout = airlock_test_c_layout(&count);
  std::map<std::string, size_t> cxx_layout;
#define X(name, value) cxx_layout[name] = static_cast<size_t>(value);
  AIRLOCK_ABI_LAYOUT
#undef X
  ASSERT_EQ(count, cxx_layout.size());
  for (size_t i = 0; i < count; ++i) {
    const auto it = cxx_layout.find(c_layout[i].name);
    ASSERT_NE(it, cxx_layout.end()) << c_layout[i].name;
    EXPECT_EQ(c_layout[i].value, it->second) << c_layout[i].name;
  }
}

TEST(AbiLayoutTest, FrozenConstants) {
  EXPECT_EQ(AIRLOCK_ABI_MAJOR, 1);
  EXPECT_STREQ(AIRLOCK_PLUGIN_ENTRY_V1_SYMBOL, "airlock_plugin_entry_v1");
  const std::map<std::string, int> values = {
      {"OK", AIRLOCK_OK},
      {"UNKNOWN", AIRLOCK_ERR_UNKNOWN},
      {"INVALID_ARGUMENT", AIRLOCK_ERR_INVALID_ARGUMENT},
      {"NOT_FOUND", AIRLOCK_ERR_NOT_FOUND},
      {"PERMISSION_DENIED", AIRLOCK_ERR_PERMISSION_DENIED},
      {"UNAUTHENTICATED", AIRLOCK_ERR_UNAUTHENTICATED},
      {"UNAVAILABLE", AIRLOCK_ERR_UNAVAILABLE},
      {"CANCELLED", AIRLOCK_ERR_CANCELLED},
      {"DEADLINE_EXCEEDED", AIRLOCK_ERR_DEADLINE_EXCEEDED},
      {"RESOURCE_EXHAUSTED", AIRLOCK_ERR_RESOURCE_EXHAUSTED},
      {"NOT_IMPLEMENTED", AIRLOCK_ERR_NOT_IMPLEMENTED},
      {"TYPE_NOT_REPRESENTABLE", AIRLOCK_ERR_TYPE_NOT_REPRESENTABLE},
      {"INTERNAL", AIRLOCK_ERR_INTERNAL},
      {"NOT_APPLICABLE", AIRLOCK_ERR_NOT_APPLICABLE},
      {"FAILED_PRECONDITION", AIRLOCK_ERR_FAILED_PRECONDITION},
      {"ALREADY_EXISTS", AIRLOCK_ERR_ALREADY_EXISTS},
      {"CONFLICT", AIRLOCK_ERR_CONFLICT},
      {"LOG_DEBUG", AIRLOCK_LOG_DEBUG},
      {"LOG_INFO", AIRLOCK_LOG_INFO},
      {"LOG_WARN", AIRLOCK_LOG_WARN},
      {"LOG_ERROR", AIRLOCK_LOG_ERROR},
      {"KIND_IDENTITY", AIRLOCK_KIND_IDENTITY},
      {"KIND_POLICY", AIRLOCK_KIND_POLICY},
      {"KIND_CONNECTOR", AIRLOCK_KIND_CONNECTOR},
      {"KIND_TUNNEL", AIRLOCK_KIND_TUNNEL},
      {"KIND_ISOLATOR", AIRLOCK_KIND_ISOLATOR},
      {"CLOSE_REVOKED", AIRLOCK_CLOSE_REVOKED},
      {"CLOSE_WINDOW_ENDED", AIRLOCK_CLOSE_WINDOW_ENDED},
      {"CLOSE_SHUTDOWN", AIRLOCK_CLOSE_SHUTDOWN},
      {"CLOSE_FAILED", AIRLOCK_CLOSE_FAILED},
  };
  const std::map<std::string, int> frozen = {
      {"OK", 0},
      {"UNKNOWN", 1},
      {"INVALID_ARGUMENT", 2},
      {"NOT_FOUND", 3},
      {"PERMISSION_DENIED", 4},
      {"UNAUTHENTICATED", 5},
      {"UNAVAILABLE", 6},
      {"CANCELLED", 7},
      {"DEADLINE_EXCEEDED", 8},
      {"RESOURCE_EXHAUSTED", 9},
      {"NOT_IMPLEMENTED", 10},
      {"TYPE_NOT_REPRESENTABLE", 11},
      {"INTERNAL", 12},
      {"NOT_APPLICABLE", 13},
      {"FAILED_PRECONDITION", 14},
      {"ALREADY_EXISTS", 15},
      {"CONFLICT", 16},
      {"LOG_DEBUG", 0},
      {"LOG_INFO", 1},
      {"LOG_WARN", 2},
      {"LOG_ERROR", 3},
      {"KIND_IDENTITY", 1},
      {"KIND_POLICY", 2},
      {"KIND_CONNECTOR", 3},
      {"KIND_TUNNEL", 4},
      {"KIND_ISOLATOR", 5},
      {"CLOSE_REVOKED", 1},
      {"CLOSE_WINDOW_ENDED", 2},
      {"CLOSE_SHUTDOWN", 3},
      {"CLOSE_FAILED", 4},
  };
  EXPECT_EQ(values, frozen);
  EXPECT_EQ(sizeof(airlock_type_status), 4u);
  EXPECT_EQ(sizeof(airlock_type_plugin_kind), 4u);
  EXPECT_EQ(sizeof(airlock_type_close_reason), 4u);
}

}  // namespace
