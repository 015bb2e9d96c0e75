/*
 * Every member of every ABI struct, as (name, value) pairs: sizeof, offsetof
 * and the *_1_N_SIZE constants. Expanded once by a C compiler (abi_layout_c.c)
 * and once by the C++ compiler (abi_layout_test.cc), so the test sees both
 * compilers' layouts.
 */
#ifndef AIRLOCK_TESTS_SDK_ABI_ABI_LAYOUT_H_
#define AIRLOCK_TESTS_SDK_ABI_ABI_LAYOUT_H_

#include <stddef.h>

#include "airlock/c/airlock_plugin.h"

#define AIRLOCK_LAYOUT_SIZE(T) X(#T, sizeof(T))
#define AIRLOCK_LAYOUT_AT(T, m) X(#T "." #m, offsetof(T, m))

/* X(name, value) is defined by the includer. */
#define AIRLOCK_ABI_LAYOUT                                                       \
  AIRLOCK_LAYOUT_SIZE(airlock_type_error)                                        \
  AIRLOCK_LAYOUT_AT(airlock_type_error, message)                                 \
  AIRLOCK_LAYOUT_AT(airlock_type_error, release)                                 \
  AIRLOCK_LAYOUT_AT(airlock_type_error, private_data)                            \
  AIRLOCK_LAYOUT_SIZE(airlock_type_buffer)                                       \
  AIRLOCK_LAYOUT_AT(airlock_type_buffer, data)                                   \
  AIRLOCK_LAYOUT_AT(airlock_type_buffer, length)                                 \
  AIRLOCK_LAYOUT_AT(airlock_type_buffer, release)                                \
  AIRLOCK_LAYOUT_AT(airlock_type_buffer, private_data)                           \
  AIRLOCK_LAYOUT_SIZE(airlock_type_secret)                                       \
  AIRLOCK_LAYOUT_AT(airlock_type_secret, data)                                   \
  AIRLOCK_LAYOUT_AT(airlock_type_secret, length)                                 \
  AIRLOCK_LAYOUT_AT(airlock_type_secret, release)                                \
  AIRLOCK_LAYOUT_AT(airlock_type_secret, private_data)                           \
  AIRLOCK_LAYOUT_SIZE(airlock_host_services)                                     \
  AIRLOCK_LAYOUT_AT(airlock_host_services, size)                                 \
  AIRLOCK_LAYOUT_AT(airlock_host_services, abi_major)                            \
  AIRLOCK_LAYOUT_AT(airlock_host_services, abi_minor)                            \
  AIRLOCK_LAYOUT_AT(airlock_host_services, host_data)                            \
  AIRLOCK_LAYOUT_AT(airlock_host_services, log)                                  \
  AIRLOCK_LAYOUT_AT(airlock_host_services, audit_emit)                           \
  AIRLOCK_LAYOUT_AT(airlock_host_services, now_unix_micros)                      \
  AIRLOCK_LAYOUT_AT(airlock_host_services, secret_resolve)                       \
  AIRLOCK_LAYOUT_AT(airlock_host_services, enclave_serve)                        \
  AIRLOCK_LAYOUT_AT(airlock_host_services, enclave_executable)                   \
  X("AIRLOCK_HOST_SERVICES_1_0_SIZE", AIRLOCK_HOST_SERVICES_1_0_SIZE)            \
  AIRLOCK_LAYOUT_SIZE(airlock_type_plugin_info)                                  \
  AIRLOCK_LAYOUT_AT(airlock_type_plugin_info, size)                              \
  AIRLOCK_LAYOUT_AT(airlock_type_plugin_info, abi_major)                         \
  AIRLOCK_LAYOUT_AT(airlock_type_plugin_info, abi_minor)                         \
  AIRLOCK_LAYOUT_AT(airlock_type_plugin_info, kind)                              \
  AIRLOCK_LAYOUT_AT(airlock_type_plugin_info, name)                              \
  AIRLOCK_LAYOUT_AT(airlock_type_plugin_info, version)                           \
  AIRLOCK_LAYOUT_AT(airlock_type_plugin_info, description)                       \
  AIRLOCK_LAYOUT_AT(airlock_type_plugin_info, config_schema)                     \
  AIRLOCK_LAYOUT_AT(airlock_type_plugin_info, vtable)                            \
  X("AIRLOCK_PLUGIN_INFO_1_0_SIZE", AIRLOCK_PLUGIN_INFO_1_0_SIZE)                \
  AIRLOCK_LAYOUT_AT(airlock_type_plugin_info, check_config)                      \
  X("AIRLOCK_PLUGIN_INFO_1_1_SIZE", AIRLOCK_PLUGIN_INFO_1_1_SIZE)                \
  AIRLOCK_LAYOUT_SIZE(airlock_type_header)                                       \
  AIRLOCK_LAYOUT_AT(airlock_type_header, name)                                   \
  AIRLOCK_LAYOUT_AT(airlock_type_header, name_length)                            \
  AIRLOCK_LAYOUT_AT(airlock_type_header, value)                                  \
  AIRLOCK_LAYOUT_AT(airlock_type_header, value_length)                           \
  AIRLOCK_LAYOUT_SIZE(airlock_type_http_request_view)                            \
  AIRLOCK_LAYOUT_AT(airlock_type_http_request_view, size)                        \
  AIRLOCK_LAYOUT_AT(airlock_type_http_request_view, method)                      \
  AIRLOCK_LAYOUT_AT(airlock_type_http_request_view, method_length)               \
  AIRLOCK_LAYOUT_AT(airlock_type_http_request_view, target)                      \
  AIRLOCK_LAYOUT_AT(airlock_type_http_request_view, target_length)               \
  AIRLOCK_LAYOUT_AT(airlock_type_http_request_view, headers)                     \
  AIRLOCK_LAYOUT_AT(airlock_type_http_request_view, header_count)                \
  AIRLOCK_LAYOUT_AT(airlock_type_http_request_view, remote_address)              \
  AIRLOCK_LAYOUT_AT(airlock_type_http_request_view, remote_address_length)       \
  AIRLOCK_LAYOUT_AT(airlock_type_http_request_view, peer_certificate_pem)        \
  AIRLOCK_LAYOUT_AT(airlock_type_http_request_view, peer_certificate_pem_length) \
  X("AIRLOCK_HTTP_REQUEST_VIEW_1_0_SIZE", AIRLOCK_HTTP_REQUEST_VIEW_1_0_SIZE)    \
  AIRLOCK_LAYOUT_SIZE(airlock_type_identity_vtable)                              \
  AIRLOCK_LAYOUT_AT(airlock_type_identity_vtable, size)                          \
  AIRLOCK_LAYOUT_AT(airlock_type_identity_vtable, create)                        \
  AIRLOCK_LAYOUT_AT(airlock_type_identity_vtable, destroy)                       \
  AIRLOCK_LAYOUT_AT(airlock_type_identity_vtable, authenticate)                  \
  X("AIRLOCK_IDENTITY_VTABLE_1_0_SIZE", AIRLOCK_IDENTITY_VTABLE_1_0_SIZE)        \
  AIRLOCK_LAYOUT_SIZE(airlock_type_policy_vtable)                                \
  AIRLOCK_LAYOUT_AT(airlock_type_policy_vtable, size)                            \
  AIRLOCK_LAYOUT_AT(airlock_type_policy_vtable, create)                          \
  AIRLOCK_LAYOUT_AT(airlock_type_policy_vtable, destroy)                         \
  AIRLOCK_LAYOUT_AT(airlock_type_policy_vtable, evaluate)                        \
  AIRLOCK_LAYOUT_AT(airlock_type_policy_vtable, reload)                          \
  X("AIRLOCK_POLICY_VTABLE_1_0_SIZE", AIRLOCK_POLICY_VTABLE_1_0_SIZE)            \
  AIRLOCK_LAYOUT_SIZE(airlock_type_batch_sink)                                   \
  AIRLOCK_LAYOUT_AT(airlock_type_batch_sink, size)                               \
  AIRLOCK_LAYOUT_AT(airlock_type_batch_sink, host_data)                          \
  AIRLOCK_LAYOUT_AT(airlock_type_batch_sink, on_schema)                          \
  AIRLOCK_LAYOUT_AT(airlock_type_batch_sink, on_batch)                           \
  AIRLOCK_LAYOUT_AT(airlock_type_batch_sink, is_cancelled)                       \
  AIRLOCK_LAYOUT_AT(airlock_type_batch_sink, on_progress)                        \
  X("AIRLOCK_BATCH_SINK_1_0_SIZE", AIRLOCK_BATCH_SINK_1_0_SIZE)                  \
  AIRLOCK_LAYOUT_SIZE(airlock_type_connector_vtable)                             \
  AIRLOCK_LAYOUT_AT(airlock_type_connector_vtable, size)                         \
  AIRLOCK_LAYOUT_AT(airlock_type_connector_vtable, create)                       \
  AIRLOCK_LAYOUT_AT(airlock_type_connector_vtable, destroy)                      \
  AIRLOCK_LAYOUT_AT(airlock_type_connector_vtable, describe)                     \
  AIRLOCK_LAYOUT_AT(airlock_type_connector_vtable, pull)                         \
  X("AIRLOCK_CONNECTOR_VTABLE_1_0_SIZE", AIRLOCK_CONNECTOR_VTABLE_1_0_SIZE)      \
  AIRLOCK_LAYOUT_SIZE(airlock_type_query_channel)                                \
  AIRLOCK_LAYOUT_AT(airlock_type_query_channel, size)                            \
  AIRLOCK_LAYOUT_AT(airlock_type_query_channel, host_data)                       \
  AIRLOCK_LAYOUT_AT(airlock_type_query_channel, query)                           \
  AIRLOCK_LAYOUT_AT(airlock_type_query_channel, tables)                          \
  X("AIRLOCK_QUERY_CHANNEL_1_0_SIZE", AIRLOCK_QUERY_CHANNEL_1_0_SIZE)            \
  AIRLOCK_LAYOUT_SIZE(airlock_type_tunnel_vtable)                                \
  AIRLOCK_LAYOUT_AT(airlock_type_tunnel_vtable, size)                            \
  AIRLOCK_LAYOUT_AT(airlock_type_tunnel_vtable, create)                          \
  AIRLOCK_LAYOUT_AT(airlock_type_tunnel_vtable, destroy)                         \
  AIRLOCK_LAYOUT_AT(airlock_type_tunnel_vtable, open)                            \
  AIRLOCK_LAYOUT_AT(airlock_type_tunnel_vtable, close)                           \
  X("AIRLOCK_TUNNEL_VTABLE_1_0_SIZE", AIRLOCK_TUNNEL_VTABLE_1_0_SIZE)            \
  AIRLOCK_LAYOUT_AT(airlock_type_tunnel_vtable, close_with_reason)               \
  X("AIRLOCK_TUNNEL_VTABLE_1_1_SIZE", AIRLOCK_TUNNEL_VTABLE_1_1_SIZE)            \
  AIRLOCK_LAYOUT_AT(airlock_type_tunnel_vtable, extend)                          \
  X("AIRLOCK_TUNNEL_VTABLE_1_3_SIZE", AIRLOCK_TUNNEL_VTABLE_1_3_SIZE)            \
  AIRLOCK_LAYOUT_SIZE(airlock_type_enclave_launch)                               \
  AIRLOCK_LAYOUT_AT(airlock_type_enclave_launch, size)                           \
  AIRLOCK_LAYOUT_AT(airlock_type_enclave_launch, control_fd)                     \
  AIRLOCK_LAYOUT_AT(airlock_type_enclave_launch, enclave)                        \
  AIRLOCK_LAYOUT_SIZE(airlock_type_isolator_vtable)                              \
  AIRLOCK_LAYOUT_AT(airlock_type_isolator_vtable, size)                          \
  AIRLOCK_LAYOUT_AT(airlock_type_isolator_vtable, create)                        \
  AIRLOCK_LAYOUT_AT(airlock_type_isolator_vtable, destroy)                       \
  AIRLOCK_LAYOUT_AT(airlock_type_isolator_vtable, provision)                     \
  AIRLOCK_LAYOUT_AT(airlock_type_isolator_vtable, terminate)                     \
  AIRLOCK_LAYOUT_AT(airlock_type_isolator_vtable, describe_isolation)            \
  AIRLOCK_LAYOUT_AT(airlock_type_isolator_vtable, reap_orphans)                  \
  X("AIRLOCK_ISOLATOR_VTABLE_1_0_SIZE", AIRLOCK_ISOLATOR_VTABLE_1_0_SIZE)        \
  AIRLOCK_LAYOUT_SIZE(airlock_type_notifier_vtable)                              \
  AIRLOCK_LAYOUT_AT(airlock_type_notifier_vtable, size)                          \
  AIRLOCK_LAYOUT_AT(airlock_type_notifier_vtable, create)                        \
  AIRLOCK_LAYOUT_AT(airlock_type_notifier_vtable, destroy)                       \
  AIRLOCK_LAYOUT_AT(airlock_type_notifier_vtable, deliver)                       \
  X("AIRLOCK_NOTIFIER_VTABLE_1_2_SIZE", AIRLOCK_NOTIFIER_VTABLE_1_2_SIZE)        \
  AIRLOCK_LAYOUT_SIZE(struct ArrowSchema)                                        \
  AIRLOCK_LAYOUT_AT(struct ArrowSchema, format)                                  \
  AIRLOCK_LAYOUT_AT(struct ArrowSchema, name)                                    \
  AIRLOCK_LAYOUT_AT(struct ArrowSchema, metadata)                                \
  AIRLOCK_LAYOUT_AT(struct ArrowSchema, flags)                                   \
  AIRLOCK_LAYOUT_AT(struct ArrowSchema, n_children)                              \
  AIRLOCK_LAYOUT_AT(struct ArrowSchema, children)                                \
  AIRLOCK_LAYOUT_AT(struct ArrowSchema, dictionary)                              \
  AIRLOCK_LAYOUT_AT(struct ArrowSchema, release)                                 \
  AIRLOCK_LAYOUT_AT(struct ArrowSchema, private_data)                            \
  AIRLOCK_LAYOUT_SIZE(struct ArrowArray)                                         \
  AIRLOCK_LAYOUT_AT(struct ArrowArray, length)                                   \
  AIRLOCK_LAYOUT_AT(struct ArrowArray, null_count)                               \
  AIRLOCK_LAYOUT_AT(struct ArrowArray, offset)                                   \
  AIRLOCK_LAYOUT_AT(struct ArrowArray, n_buffers)                                \
  AIRLOCK_LAYOUT_AT(struct ArrowArray, n_children)                               \
  AIRLOCK_LAYOUT_AT(struct ArrowArray, buffers)                                  \
  AIRLOCK_LAYOUT_AT(struct ArrowArray, children)                                 \
  AIRLOCK_LAYOUT_AT(struct ArrowArray, dictionary)                               \
  AIRLOCK_LAYOUT_AT(struct ArrowArray, release)                                  \
  AIRLOCK_LAYOUT_AT(struct ArrowArray, private_data)

typedef struct airlock_test_layout_entry {
  const char* name;
  size_t value;
} airlock_test_layout_entry;

#ifdef __cplusplus
extern "C" {
#endif
/* The layout as the C compiler sees it; `count` receives the number of entries. */
const airlock_test_layout_entry* airlock_test_c_layout(size_t* count);
#ifdef __cplusplus
}
#endif

#endif /* AIRLOCK_TESTS_SDK_ABI_ABI_LAYOUT_H_ */
