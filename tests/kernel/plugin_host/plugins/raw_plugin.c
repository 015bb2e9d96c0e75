/*
 * Hand-written ABI fixtures, one per build variant (RAW_VARIANT_*), for the
 * cases the SDK's C++ layer never produces: malformed manifests and tables,
 * failing entry points, invalid documents, optional members left NULL.
 */
#include <stdlib.h>
#include <string.h>

#include "airlock/c/airlock_plugin.h"

static void release_error(airlock_type_error* error) {
  free(error->message);
  error->message = NULL;
  error->release = NULL;
}

static airlock_type_status fail(airlock_type_error* error, airlock_type_status code,
                                const char* message) {
  size_t n = strlen(message);
  error->message = (char*)malloc(n + 1);
  if (error->message != NULL) {
    memcpy(error->message, message, n + 1);
    error->release = &release_error;
  }
  return code;
}

static void release_buffer(airlock_type_buffer* buffer) {
  free((void*)buffer->data);
  buffer->data = NULL;
  buffer->length = 0;
  buffer->release = NULL;
}

static void fill_buffer(airlock_type_buffer* buffer, const char* text) {
  size_t n = strlen(text);
  char* copy = (char*)malloc(n + 1);
  if (copy == NULL) return;
  memcpy(copy, text, n + 1);
  buffer->data = copy;
  buffer->length = n;
  buffer->release = &release_buffer;
}

static int g_instance_token = 0;

static airlock_type_status raw_create(const char* config, size_t length, void** instance,
                                      airlock_type_error* error) {
  (void)config;
  (void)length;
  (void)error;
  *instance = &g_instance_token;
  return AIRLOCK_OK;
}

static void raw_destroy(void* instance) {
  (void)instance;
}

/* Finds `name` among the request's headers (exact case) and returns its value. */
static const char* header(const airlock_type_http_request_view* request, const char* name,
                          size_t* length) {
  size_t i;
  size_t n = strlen(name);
  for (i = 0; i < request->header_count; ++i) {
    const airlock_type_header* h = &request->headers[i];
    if (h->name_length == n && memcmp(h->name, name, n) == 0) {
      *length = h->value_length;
      return h->value;
    }
  }
  return NULL;
}

static int value_is(const char* value, size_t length, const char* expected) {
  return value != NULL && length == strlen(expected) && memcmp(value, expected, length) == 0;
}

/* Identity: X-Raw: garbage | no-subject | no-buffer | huge; else NOT_APPLICABLE. */
static airlock_type_status raw_authenticate(void* instance,
                                            const airlock_type_http_request_view* request,
                                            airlock_type_buffer* principal,
                                            airlock_type_error* error) {
  size_t length = 0;
  const char* mode = header(request, "X-Raw", &length);
  (void)instance;
  if (value_is(mode, length, "garbage")) {
    fill_buffer(principal, "this is not json {");
  } else if (value_is(mode, length, "no-subject")) {
    fill_buffer(principal, "{\"kind\":\"human\",\"groups\":[]}");
  } else if (value_is(mode, length, "bad-kind")) {
    fill_buffer(principal, "{\"subject\":\"x\",\"kind\":\"robot\"}");
  } else if (value_is(mode, length, "no-buffer")) {
    /* OK without a document. */
  } else if (value_is(mode, length, "huge")) {
    size_t n = 70 * 1024;
    char* big = (char*)malloc(n + 1);
    if (big != NULL) {
      memset(big, ' ', n);
      big[0] = '{';
      big[n - 1] = '}';
      big[n] = '\0';
      fill_buffer(principal, big);
      free(big);
    }
  } else if (value_is(mode, length, "odd-code")) {
    return fail(error, 999, "a status code from the future");
  } else {
    return fail(error, AIRLOCK_ERR_NOT_APPLICABLE, "no X-Raw header");
  }
  return AIRLOCK_OK;
}

static airlock_type_status raw_evaluate(void* instance, const char* input, size_t length,
                                        airlock_type_buffer* decision, airlock_type_error* error) {
  (void)instance;
  (void)input;
  (void)length;
  (void)error;
  fill_buffer(decision, "{\"effect\":\"deny\",\"reason\":\"raw says no\",\"rule\":\"raw\"}");
  return AIRLOCK_OK;
}

static airlock_type_status raw_describe(void* instance, airlock_type_buffer* catalog,
                                        airlock_type_error* error) {
  (void)instance;
  (void)error;
  fill_buffer(catalog, "{\"datasets\":[]}");
  return AIRLOCK_OK;
}

static airlock_type_status raw_pull(void* instance, const char* pull_json, size_t length,
                                    const airlock_type_batch_sink* sink,
                                    airlock_type_error* error) {
  (void)instance;
  (void)pull_json;
  (void)length;
  (void)sink;
  return fail(error, AIRLOCK_ERR_NOT_FOUND, "nothing here");
}

static airlock_type_status raw_provision(void* instance, const char* spec, size_t length,
                                         airlock_type_enclave_launch* launch,
                                         airlock_type_error* error) {
  (void)instance;
  (void)spec;
  (void)length;
  (void)launch;
  return fail(error, AIRLOCK_ERR_UNAVAILABLE, "no enclaves here");
}

static airlock_type_status raw_terminate(void* instance, void* enclave, airlock_type_error* error) {
  (void)instance;
  (void)enclave;
  (void)error;
  return AIRLOCK_OK;
}

static airlock_type_status raw_describe_isolation(void* instance, airlock_type_buffer* description,
                                                  airlock_type_error* error) {
  (void)instance;
  (void)error;
  fill_buffer(description, "{\"mechanisms\":{}}"); /* no "isolation": invalid */
  return AIRLOCK_OK;
}

/* The host table the entry point was given (TUNNEL_1_0 logs through it). */
static const airlock_host_services* g_host = NULL;

static airlock_type_status raw_open(void* instance, const char* spec, size_t length,
                                    const airlock_type_query_channel* channel, void** endpoint,
                                    airlock_type_buffer* grant, airlock_type_error* error) {
  (void)instance;
  (void)spec;
  (void)length;
  (void)channel;
  (void)error;
  *endpoint = malloc(1);
  fill_buffer(grant, "{\"url\":\"raw://endpoint\",\"credential\":\"raw\"}");
  return AIRLOCK_OK;
}

static void raw_close(void* instance, void* endpoint) {
  (void)instance;
  free(endpoint);
  if (g_host != NULL && g_host->log != NULL) {
    g_host->log(g_host->host_data, AIRLOCK_LOG_INFO, "raw", "closed", 6);
  }
}

#if defined(RAW_VARIANT_IDENTITY_GARBAGE)
static const airlock_type_identity_vtable kVtable = {sizeof(airlock_type_identity_vtable),
                                                     &raw_create, &raw_destroy, &raw_authenticate};
#define RAW_KIND AIRLOCK_KIND_IDENTITY
#elif defined(RAW_VARIANT_POLICY_NO_RELOAD)
static const airlock_type_policy_vtable kVtable = {sizeof(airlock_type_policy_vtable), &raw_create,
                                                   &raw_destroy, &raw_evaluate, NULL};
#define RAW_KIND AIRLOCK_KIND_POLICY
#elif defined(RAW_VARIANT_ISOLATOR_NO_REAP)
static const airlock_type_isolator_vtable kVtable = {sizeof(airlock_type_isolator_vtable),
                                                     &raw_create,
                                                     &raw_destroy,
                                                     &raw_provision,
                                                     &raw_terminate,
                                                     &raw_describe_isolation,
                                                     NULL};
#define RAW_KIND AIRLOCK_KIND_ISOLATOR
#elif defined(RAW_VARIANT_TUNNEL_1_0)
/* A tunnel built for ABI 1.0: its table ends at close (no close_with_reason). */
static const airlock_type_tunnel_vtable kVtable = {AIRLOCK_TUNNEL_VTABLE_1_0_SIZE, &raw_create,
                                                   &raw_destroy, &raw_open, &raw_close, NULL};
#define RAW_KIND AIRLOCK_KIND_TUNNEL
#elif defined(RAW_VARIANT_SMALL_VTABLE)
/* Claims a table that ends before pull. */
static const airlock_type_connector_vtable kVtable = {offsetof(airlock_type_connector_vtable, pull),
                                                      &raw_create, &raw_destroy, &raw_describe,
                                                      &raw_pull};
#define RAW_KIND AIRLOCK_KIND_CONNECTOR
#elif defined(RAW_VARIANT_NULL_FUNCTION)
static const airlock_type_connector_vtable kVtable = {sizeof(airlock_type_connector_vtable),
                                                      &raw_create, &raw_destroy, NULL, &raw_pull};
#define RAW_KIND AIRLOCK_KIND_CONNECTOR
#else
/* Every manifest-level variant carries a valid connector table. */
static const airlock_type_connector_vtable kVtable = {
    sizeof(airlock_type_connector_vtable), &raw_create, &raw_destroy, &raw_describe, &raw_pull};
#define RAW_KIND AIRLOCK_KIND_CONNECTOR
#endif

#if defined(RAW_VARIANT_UNKNOWN_KIND)
#undef RAW_KIND
#define RAW_KIND 42
#endif

#if defined(RAW_VARIANT_ABI_MAJOR_2)
#define RAW_ABI_MAJOR 2
#else
#define RAW_ABI_MAJOR AIRLOCK_ABI_MAJOR
#endif

#if defined(RAW_VARIANT_SMALL_MANIFEST)
#define RAW_INFO_SIZE offsetof(airlock_type_plugin_info, vtable)
#elif defined(RAW_VARIANT_TUNNEL_1_0)
#define RAW_INFO_SIZE AIRLOCK_PLUGIN_INFO_1_0_SIZE /* ends before check_config */
#else
#define RAW_INFO_SIZE sizeof(airlock_type_plugin_info)
#endif

#if defined(RAW_VARIANT_BAD_SCHEMA)
#define RAW_SCHEMA "{not a schema"
#else
#define RAW_SCHEMA NULL
#endif

static const airlock_type_plugin_info kInfo = {RAW_INFO_SIZE, RAW_ABI_MAJOR, AIRLOCK_ABI_MINOR,
                                               RAW_KIND,      RAW_NAME,      "0.0.1",
                                               "ABI fixture", RAW_SCHEMA,    &kVtable};

#if defined(RAW_VARIANT_NO_ENTRY)
/* Exports nothing: the would-be entry point has hidden visibility and another name. */
airlock_type_status raw_not_an_entry(const airlock_host_services* host,
                                     const airlock_type_plugin_info** info,
                                     airlock_type_error* error) {
  (void)host;
  (void)error;
  *info = &kInfo;
  return AIRLOCK_OK;
}
#else
AIRLOCK_EXPORT airlock_type_status airlock_plugin_entry_v1(const airlock_host_services* host,
                                                           const airlock_type_plugin_info** info,
                                                           airlock_type_error* error) {
  g_host = host;
#if defined(RAW_VARIANT_ENTRY_FAILS)
  (void)info;
  return fail(error, AIRLOCK_ERR_NOT_IMPLEMENTED, "this plugin needs ABI minor 7");
#elif defined(RAW_VARIANT_NO_MANIFEST)
  (void)error;
  *info = NULL;
  return AIRLOCK_OK;
#else
  (void)error;
  *info = &kInfo;
  return AIRLOCK_OK;
#endif
}
#endif
