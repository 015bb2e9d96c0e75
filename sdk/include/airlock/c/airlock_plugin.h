/*
 * Airlock plugin ABI, major version 1.
 *
 * This header is the whole contract between the Airlock kernel (the host) and
 * a plugin (a shared object). It is C99 and uses only standard headers so that
 * plugins can be built with any compiler and any C++ standard library.
 *
 * CONVENTIONS (stated once, as in LevelDB's c.h):
 *  - Names: airlock_type_* are types, airlock_on_* are functions a plugin
 *    implements (reached through its tables), airlock_host_* are functions the
 *    kernel implements (reached through airlock_host_services).
 *  - Every table and every struct that may grow starts with `size_t size`,
 *    set by its producer to sizeof() as it was compiled. Members are only ever
 *    APPENDED; a reader never touches a member whose end lies past `size`.
 *    Each minor revision has a *_1_N_SIZE constant. Never reorder, remove or
 *    reuse a member.
 *  - Strings are UTF-8, passed as pointer + length; they need not be
 *    NUL-terminated unless a comment says so.
 *  - Structured values (principal, access request, decision, scope, catalog)
 *    cross as JSON documents whose schemas are documented in docs/sdk.md;
 *    unknown JSON members must be ignored by readers, so documents can grow.
 *  - Record batches cross as the Arrow C Data Interface (arrow_c_data.h).
 *  - Errors: a function returns an airlock_type_status. On failure it may fill
 *    the caller-provided airlock_type_error (which the caller zero-initialises);
 *    the caller then calls error->release if it is not NULL.
 *  - Handles are opaque `void*` with one owner: whoever creates a handle names
 *    the function that releases it (OWNERSHIP lines below).
 *  - No exceptions, no C++ types, no RTTI cross this boundary. A C++ plugin
 *    must catch everything at its entry points (the SDK's C++ layer does).
 *
 * TRUST MODEL: a plugin runs with the privileges of the process that loads it.
 * Identity, policy, tunnel, isolator and notifier plugins run in the kernel and are
 * trusted code chosen by the operator (pinned by SHA-256 in configuration).
 * Connectors run inside data enclaves, never in the kernel, so a crashing or
 * hostile connector takes down only its own enclave.
 */
#ifndef AIRLOCK_C_AIRLOCK_PLUGIN_H_
#define AIRLOCK_C_AIRLOCK_PLUGIN_H_

#include <stddef.h>
#include <stdint.h>

#include "airlock/c/arrow_c_data.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Versions and export                                                      */
/* ------------------------------------------------------------------------ */

/** ABI major version: a new major gets a new entry point symbol. */
#define AIRLOCK_ABI_MAJOR 1
/** ABI minor version: minors only append members to tables. */
#define AIRLOCK_ABI_MINOR 3

/** Name of the entry point every ABI-1 plugin exports (see airlock_on_plugin_entry_v1). */
#define AIRLOCK_PLUGIN_ENTRY_V1_SYMBOL "airlock_plugin_entry_v1"

#if defined(_WIN32)
#define AIRLOCK_EXPORT __declspec(dllexport)
#else
#define AIRLOCK_EXPORT __attribute__((visibility("default")))
#endif

/* ------------------------------------------------------------------------ */
/* Status and errors                                                        */
/* ------------------------------------------------------------------------ */

/** Status codes. Values are frozen; new codes are appended. */
typedef int32_t airlock_type_status;
enum {
  AIRLOCK_OK = 0,
  AIRLOCK_ERR_UNKNOWN = 1,
  AIRLOCK_ERR_INVALID_ARGUMENT = 2,        /* bad configuration, bad input document */
  AIRLOCK_ERR_NOT_FOUND = 3,               /* object missing (dataset, table, file) */
  AIRLOCK_ERR_PERMISSION_DENIED = 4,       /* authenticated but not allowed */
  AIRLOCK_ERR_UNAUTHENTICATED = 5,         /* credential missing/invalid (caller or source) */
  AIRLOCK_ERR_UNAVAILABLE = 6,             /* source or service unreachable */
  AIRLOCK_ERR_CANCELLED = 7,               /* the host asked to stop */
  AIRLOCK_ERR_DEADLINE_EXCEEDED = 8,       /* a time bound was hit */
  AIRLOCK_ERR_RESOURCE_EXHAUSTED = 9,      /* memory, rows, rate limits */
  AIRLOCK_ERR_NOT_IMPLEMENTED = 10,        /* optional function or ABI minor not served */
  AIRLOCK_ERR_TYPE_NOT_REPRESENTABLE = 11, /* a source type has no Arrow mapping */
  AIRLOCK_ERR_INTERNAL = 12,
  AIRLOCK_ERR_NOT_APPLICABLE = 13, /* identity: no credential of this provider's kind */
  AIRLOCK_ERR_FAILED_PRECONDITION = 14,
  AIRLOCK_ERR_ALREADY_EXISTS = 15,
  AIRLOCK_ERR_CONFLICT = 16 /* state does not allow the operation */
};

/**
 * An error message produced by the callee.
 * The caller zero-initialises it and passes it in; on failure the callee may
 * set `message` (NUL-terminated) and `release`. The caller calls `release`
 * (if not NULL) when done; `release` frees the message and sets itself NULL.
 * OWNERSHIP: producer (callee) owns `message` until `release`.
 * Messages never contain secret values.
 * @since ABI 1.0
 */
typedef struct airlock_type_error {
  char* message;
  void (*release)(struct airlock_type_error* error);
  void* private_data;
} airlock_type_error;

/**
 * A byte buffer produced by one side and released by the other.
 * OWNERSHIP: producer owns `data` until the consumer calls `release`.
 * @since ABI 1.0
 */
typedef struct airlock_type_buffer {
  const char* data;
  size_t length;
  void (*release)(struct airlock_type_buffer* buffer);
  void* private_data;
} airlock_type_buffer;

/**
 * Secret bytes (a password, a key). The consumer must not copy them into
 * longer-lived memory, log them or put them in an error message.
 * `release` wipes the bytes (not merely frees them) and sets itself NULL.
 * OWNERSHIP: producer (the host) owns `data` until the consumer calls `release`.
 * @since ABI 1.0
 */
typedef struct airlock_type_secret {
  const uint8_t* data;
  size_t length;
  void (*release)(struct airlock_type_secret* secret);
  void* private_data;
} airlock_type_secret;

/* ------------------------------------------------------------------------ */
/* Host services: the only way a plugin reaches the kernel                  */
/* ------------------------------------------------------------------------ */

/** Log levels for airlock_host_services.log. */
enum { AIRLOCK_LOG_DEBUG = 0, AIRLOCK_LOG_INFO = 1, AIRLOCK_LOG_WARN = 2, AIRLOCK_LOG_ERROR = 3 };

/**
 * Services the host offers a plugin. Passed to the entry point; valid until
 * the library is unloaded (the host outlives every instance).
 * WARNING: append members only, and guard each group with a size constant.
 * Thread-safety: every function may be called from any thread.
 * @since ABI 1.0
 */
typedef struct airlock_host_services {
  size_t size;
  uint32_t abi_major;
  uint32_t abi_minor;
  /** Opaque host state; pass as first argument to every function below. */
  void* host_data;

  /** [in] level, plugin name (NUL-terminated), message (ptr+len). Never pass secrets. */
  void (*log)(void* host_data, int32_t level, const char* plugin, const char* message,
              size_t message_length);

  /**
   * Appends a record to the tamper-evident audit log.
   * [in] event_json: a JSON object; the host adds time, sequence and hash.
   * Returns AIRLOCK_OK once the record is durable, an error otherwise.
   */
  airlock_type_status (*audit_emit)(void* host_data, const char* event_json, size_t length);

  /** Wall clock, microseconds since the Unix epoch (tests may control it). */
  int64_t (*now_unix_micros)(void* host_data);

  /**
   * Resolves a secret reference (`env:NAME`, `file:/path`).
   * An enclave host resolves the references of its connectors; the kernel
   * resolves only references written in the configuration of the plugins it
   * runs itself and answers AIRLOCK_ERR_PERMISSION_DENIED for any other
   * (intake never holds data-source secrets).
   * [out] secret: filled on success; caller calls secret->release.
   */
  airlock_type_status (*secret_resolve)(void* host_data, const char* reference, size_t length,
                                        airlock_type_secret* secret, airlock_type_error* error);

  /**
   * Runs the enclave runtime on a connected control channel (a stream socket)
   * in the calling thread until the kernel closes the channel. Isolators use
   * it to host an enclave; the runtime loads connectors and the in-memory SQL
   * engine. OWNERSHIP: the call takes `fd` and closes it before returning.
   */
  airlock_type_status (*enclave_serve)(void* host_data, int fd, airlock_type_error* error);

  /**
   * Absolute path (NUL-terminated) of the airlock-enclave executable the
   * isolator should start, or NULL when the host has none. Valid as long as
   * this table is.
   */
  const char* enclave_executable;
} airlock_host_services;

#define AIRLOCK_HOST_SERVICES_1_0_SIZE \
  (offsetof(airlock_host_services, enclave_executable) + sizeof(const char*))

/* ------------------------------------------------------------------------ */
/* Plugin manifest and entry point                                          */
/* ------------------------------------------------------------------------ */

/** Plugin kinds. */
typedef int32_t airlock_type_plugin_kind;
enum {
  AIRLOCK_KIND_IDENTITY = 1,
  AIRLOCK_KIND_POLICY = 2,
  AIRLOCK_KIND_CONNECTOR = 3,
  AIRLOCK_KIND_TUNNEL = 4,
  AIRLOCK_KIND_ISOLATOR = 5,
  AIRLOCK_KIND_NOTIFIER = 6 /* since ABI 1.2 */
};

/**
 * Checks a configuration without making an instance: everything create()
 * would refuse (unknown keys, bad values, unreadable files named in it, TLS
 * material that does not load) is refused here with the same message, but
 * nothing is started (no listener bound, no thread, no enclave, no outbound
 * connection). The host calls it for `airlockd check-config`.
 * [in]  config JSON (ptr+len), exactly as create() would receive it.
 * [out] error: filled on failure.
 * Returns AIRLOCK_OK when create() would accept the configuration as far as
 * it can be told without starting anything.
 * Thread-safety: may be called from any thread, before or after create().
 * @since ABI 1.1
 */
typedef airlock_type_status (*airlock_on_check_config_plugin_ptr)(const char* config_json,
                                                                  size_t length,
                                                                  airlock_type_error* error);

/**
 * What a plugin is. Returned by the entry point; static storage in the plugin.
 * OWNERSHIP: plugin; valid until the library is unloaded.
 * WARNING: append members only.
 * @since ABI 1.0
 */
typedef struct airlock_type_plugin_info {
  size_t size;
  uint32_t abi_major; /* must equal AIRLOCK_ABI_MAJOR of the entry point */
  uint32_t abi_minor; /* the minor the plugin was built against */
  airlock_type_plugin_kind kind;
  const char* name;          /* NUL-terminated, e.g. "files" */
  const char* version;       /* NUL-terminated, the plugin's own version */
  const char* description;   /* NUL-terminated, one line */
  const char* config_schema; /* NUL-terminated JSON Schema of create()'s config, or NULL */
  /** Kind-specific function table (airlock_type_<kind>_vtable); starts with size. */
  const void* vtable;

  /* since ABI 1.1 */
  /** Configuration check without side effects (may be NULL: the host then
   *  has no way to check the configuration but to call create()). */
  airlock_on_check_config_plugin_ptr check_config;
} airlock_type_plugin_info;

#define AIRLOCK_PLUGIN_INFO_1_0_SIZE \
  (offsetof(airlock_type_plugin_info, vtable) + sizeof(const void*))
#define AIRLOCK_PLUGIN_INFO_1_1_SIZE \
  (offsetof(airlock_type_plugin_info, check_config) + sizeof(airlock_on_check_config_plugin_ptr))

/**
 * The entry point: `airlock_type_status airlock_plugin_entry_v1(...)`,
 * exported with C linkage under AIRLOCK_PLUGIN_ENTRY_V1_SYMBOL.
 * [in]  host: services table; outlives the library. The plugin may keep it.
 * [out] info: set to the plugin's static manifest on success.
 * [out] error: filled on failure.
 * Returns AIRLOCK_OK, or AIRLOCK_ERR_NOT_IMPLEMENTED if the plugin cannot
 * serve this host's ABI minor. Called once per load, before anything else.
 * @since ABI 1.0
 */
typedef airlock_type_status (*airlock_on_plugin_entry_v1_plugin_ptr)(
    const airlock_host_services* host, const airlock_type_plugin_info** info,
    airlock_type_error* error);

/*
 * Every kind's table starts with these three members, in this order:
 *
 *   size_t size;
 *   create:  [in] config JSON (ptr+len); [out] *instance. On failure *instance
 *            stays NULL and error is filled. OWNERSHIP: the host releases the
 *            instance with destroy().
 *   destroy: releases an instance made by create(). NULL is ignored.
 *
 * Thread-safety: unless stated otherwise, the functions of one instance may be
 * called concurrently from several threads; a plugin serialises internally.
 */
typedef airlock_type_status (*airlock_on_create_plugin_ptr)(const char* config_json, size_t length,
                                                            void** instance,
                                                            airlock_type_error* error);
typedef void (*airlock_on_destroy_plugin_ptr)(void* instance);

/* ------------------------------------------------------------------------ */
/* Identity providers                                                       */
/* ------------------------------------------------------------------------ */

/** One HTTP header (name as received; compare case-insensitively). */
typedef struct airlock_type_header {
  const char* name;
  size_t name_length;
  const char* value;
  size_t value_length;
} airlock_type_header;

/**
 * A read-only view of an HTTP request. OWNERSHIP: host; valid for the call only.
 * @since ABI 1.0
 */
typedef struct airlock_type_http_request_view {
  size_t size;
  const char* method;
  size_t method_length;
  const char* target;
  size_t target_length;
  const airlock_type_header* headers;
  size_t header_count;
  const char* remote_address;
  size_t remote_address_length;
  /** Client certificate chain presented over TLS, PEM, leaf first; empty if none. */
  const char* peer_certificate_pem;
  size_t peer_certificate_pem_length;
} airlock_type_http_request_view;

#define AIRLOCK_HTTP_REQUEST_VIEW_1_0_SIZE \
  (offsetof(airlock_type_http_request_view, peer_certificate_pem_length) + sizeof(size_t))

/**
 * Identity provider table.
 * authenticate:
 *   [in]  request view.
 *   [out] principal: JSON {"subject","kind":"human|service|agent","groups":[],
 *         "tenant","attributes":{}} on AIRLOCK_OK; released by the host.
 *   Returns AIRLOCK_OK, AIRLOCK_ERR_NOT_APPLICABLE (no credential this provider
 *   understands: the host tries the next provider), or
 *   AIRLOCK_ERR_UNAUTHENTICATED with a reason in error.
 * @since ABI 1.0
 */
typedef struct airlock_type_identity_vtable {
  size_t size;
  airlock_on_create_plugin_ptr create;
  airlock_on_destroy_plugin_ptr destroy;
  airlock_type_status (*authenticate)(void* instance, const airlock_type_http_request_view* request,
                                      airlock_type_buffer* principal, airlock_type_error* error);
} airlock_type_identity_vtable;

#define AIRLOCK_IDENTITY_VTABLE_1_0_SIZE \
  (offsetof(airlock_type_identity_vtable, authenticate) + sizeof(void*))

/* ------------------------------------------------------------------------ */
/* Policy backends                                                          */
/* ------------------------------------------------------------------------ */

/**
 * Policy backend table.
 * evaluate:
 *   [in]  input JSON {"principal","request","datasets":[metadata],"now"}.
 *   [out] decision JSON {"effect":"allow|deny|needs_approval","reason","rule",
 *         "max_window_seconds","approval":{"groups":[],"count","timeout_seconds"},
 *         "obligations":{"<dataset>":{"columns":[],"masks":{},"row_filter":[]}}};
 *         released by the host.
 * reload (may be NULL): [in] new config JSON. On failure the old policy stays
 *   in force and error says why.
 * @since ABI 1.0
 */
typedef struct airlock_type_policy_vtable {
  size_t size;
  airlock_on_create_plugin_ptr create;
  airlock_on_destroy_plugin_ptr destroy;
  airlock_type_status (*evaluate)(void* instance, const char* input_json, size_t length,
                                  airlock_type_buffer* decision, airlock_type_error* error);
  airlock_type_status (*reload)(void* instance, const char* config_json, size_t length,
                                airlock_type_error* error);
} airlock_type_policy_vtable;

#define AIRLOCK_POLICY_VTABLE_1_0_SIZE \
  (offsetof(airlock_type_policy_vtable, reload) + sizeof(void*))

/* ------------------------------------------------------------------------ */
/* Connectors                                                               */
/* ------------------------------------------------------------------------ */

/**
 * Where a producer delivers record batches (host-implemented for pulls,
 * host-implemented for tunnel queries).
 * on_schema: called once, before any batch. Takes ownership of *schema (moves
 *            it: the producer must not release it afterwards).
 * on_batch:  takes ownership of *batch (moved). A non-OK return means stop:
 *            the producer returns that status.
 * is_cancelled: non-zero when the producer should stop and return
 *            AIRLOCK_ERR_CANCELLED. Cheap; poll it between batches.
 * on_progress: rows and bytes delivered so far (cumulative); may be NULL.
 * OWNERSHIP: host; valid for the duration of the call it was passed to.
 * Thread-safety: call from one thread at a time.
 * @since ABI 1.0
 */
typedef struct airlock_type_batch_sink {
  size_t size;
  void* host_data;
  airlock_type_status (*on_schema)(void* host_data, struct ArrowSchema* schema);
  airlock_type_status (*on_batch)(void* host_data, struct ArrowArray* batch);
  int32_t (*is_cancelled)(void* host_data);
  void (*on_progress)(void* host_data, uint64_t rows, uint64_t bytes);
} airlock_type_batch_sink;

#define AIRLOCK_BATCH_SINK_1_0_SIZE (offsetof(airlock_type_batch_sink, on_progress) + sizeof(void*))

/**
 * Connector table. Connectors run inside enclaves.
 * describe:
 *   [out] catalog JSON {"datasets":[{"name","columns":[{"name","type"}],
 *         "description"}]}; released by the host.
 * pull:
 *   [in]  pull JSON {"dataset","object","scope":{"columns":[],"masks":{},
 *         "row_filter":[]}}: only scoped columns and rows may be delivered.
 *   [in]  sink: receives the schema, then the batches.
 *   Credentials: resolve secret references from the config through
 *   host->secret_resolve at pull time; release them as soon as possible.
 * @since ABI 1.0
 */
typedef struct airlock_type_connector_vtable {
  size_t size;
  airlock_on_create_plugin_ptr create;
  airlock_on_destroy_plugin_ptr destroy;
  airlock_type_status (*describe)(void* instance, airlock_type_buffer* catalog,
                                  airlock_type_error* error);
  airlock_type_status (*pull)(void* instance, const char* pull_json, size_t length,
                              const airlock_type_batch_sink* sink, airlock_type_error* error);
} airlock_type_connector_vtable;

#define AIRLOCK_CONNECTOR_VTABLE_1_0_SIZE \
  (offsetof(airlock_type_connector_vtable, pull) + sizeof(void*))

/* ------------------------------------------------------------------------ */
/* Tunnel transports                                                        */
/* ------------------------------------------------------------------------ */

/**
 * A host-implemented channel onto a sealed enclave. The host audits every
 * query (principal, request, SQL hash, rows, duration, outcome) and enforces
 * read-only execution, time and size bounds.
 * query: [in] SQL (ptr+len); [in] sink receives the result schema and batches.
 * tables: [out] JSON {"tables":[{"name","rows","columns":[{"name","type"}]}]}.
 * OWNERSHIP: host; valid from open() until close() returns.
 * Thread-safety: query may be called concurrently.
 * @since ABI 1.0
 */
typedef struct airlock_type_query_channel {
  size_t size;
  void* host_data;
  airlock_type_status (*query)(void* host_data, const char* sql, size_t length,
                               const airlock_type_batch_sink* sink, airlock_type_error* error);
  airlock_type_status (*tables)(void* host_data, airlock_type_buffer* tables,
                                airlock_type_error* error);
} airlock_type_query_channel;

#define AIRLOCK_QUERY_CHANNEL_1_0_SIZE \
  (offsetof(airlock_type_query_channel, tables) + sizeof(void*))

/**
 * Why the host closes a tunnel endpoint (close_with_reason). A plugin tells
 * the user which it was; it treats a value it does not know as
 * AIRLOCK_CLOSE_REVOKED. Values are frozen; new reasons are appended.
 * @since ABI 1.1
 */
typedef int32_t airlock_type_close_reason;
enum {
  AIRLOCK_CLOSE_REVOKED = 1,      /* someone revoked the request before its window ended */
  AIRLOCK_CLOSE_WINDOW_ENDED = 2, /* the access window ran out */
  AIRLOCK_CLOSE_SHUTDOWN = 3,     /* the kernel is stopping; the request ends with it */
  AIRLOCK_CLOSE_FAILED = 4        /* the request failed (its enclave was lost) */
};

/**
 * Tunnel transport table.
 * open:
 *   [in]  endpoint JSON {"request_id","principal":{...},"not_after" (unix s)},
 *         and "verifier" when the endpoint is opened again (by another kernel
 *         replica, after a takeover) for a credential issued earlier: the
 *         plugin then issues none and accepts the one the verifier verifies.
 *   [in]  channel: valid until close() returns.
 *   [out] endpoint: opaque handle; OWNERSHIP: plugin, released by close().
 *   [out] grant: JSON {"url","credential","verifier",...}. The credential is
 *         shown to the requester once; the plugin keeps only a hash of it.
 *         "verifier" (optional) is the text the plugin accepts back: a hash,
 *         never the credential; the host keeps it and never shows it. No
 *         "credential" when opened with a verifier. Released by host.
 *         A plugin that ignores "verifier" issues a new credential each open.
 * close: revokes at once: open connections are dropped, later use refused.
 *   A host that knows why calls close_with_reason instead, when present.
 * close_with_reason (since ABI 1.1, may be NULL): close() that also says why
 *   ([in] reason, an airlock_type_close_reason), so that connected clients
 *   and later attempts are told "window ended" rather than "revoked". Same
 *   effect and ownership as close(); the host calls exactly one of the two
 *   for each endpoint.
 * extend (since ABI 1.3, may be NULL): moves the endpoint's "not_after" to
 *   the later [in] not_after (unix s): the requester's window was extended.
 *   The credential stays the same. AIRLOCK_ERR_INVALID_ARGUMENT if not_after
 *   is not later than the current one. NULL: windows cannot be extended.
 * @since ABI 1.0
 */
typedef struct airlock_type_tunnel_vtable {
  size_t size;
  airlock_on_create_plugin_ptr create;
  airlock_on_destroy_plugin_ptr destroy;
  airlock_type_status (*open)(void* instance, const char* endpoint_json, size_t length,
                              const airlock_type_query_channel* channel, void** endpoint,
                              airlock_type_buffer* grant, airlock_type_error* error);
  void (*close)(void* instance, void* endpoint);

  /* since ABI 1.1 */
  void (*close_with_reason)(void* instance, void* endpoint, airlock_type_close_reason reason);

  /* since ABI 1.3 */
  airlock_type_status (*extend)(void* instance, void* endpoint, int64_t not_after,
                                airlock_type_error* error);
} airlock_type_tunnel_vtable;

#define AIRLOCK_TUNNEL_VTABLE_1_0_SIZE (offsetof(airlock_type_tunnel_vtable, close) + sizeof(void*))
#define AIRLOCK_TUNNEL_VTABLE_1_1_SIZE \
  (offsetof(airlock_type_tunnel_vtable, close_with_reason) + sizeof(void*))
#define AIRLOCK_TUNNEL_VTABLE_1_3_SIZE \
  (offsetof(airlock_type_tunnel_vtable, extend) + sizeof(void*))

/* ------------------------------------------------------------------------ */
/* Enclave isolators                                                        */
/* ------------------------------------------------------------------------ */

/**
 * What provision() hands back.
 * control_fd: a connected stream socket to an enclave runtime (the far end
 *   runs host->enclave_serve or the airlock-enclave executable).
 *   OWNERSHIP: host after provision returns AIRLOCK_OK.
 * enclave: opaque; OWNERSHIP: plugin, released by terminate().
 * @since ABI 1.0
 */
typedef struct airlock_type_enclave_launch {
  size_t size;
  int32_t control_fd;
  void* enclave;
} airlock_type_enclave_launch;

#define AIRLOCK_ENCLAVE_LAUNCH_1_0_SIZE \
  (offsetof(airlock_type_enclave_launch, enclave) + sizeof(void*))

/**
 * Isolator table.
 * provision: [in] spec JSON {"request_id","limits":{"memory_bytes",...},
 *            "egress":[{"endpoint","host","port","address"}],"read_paths":[...],
 *            "secret_env":[...],"max_window_seconds" (the longest the
 *            enclave's window may become; absent for short-lived enclaves)};
 *            [out] launch (host sets launch->size before the call).
 * terminate: kills the enclave, wipes and releases its memory; the handle is
 *            invalid afterwards. Idempotent for the host's purposes.
 * describe_isolation: [out] JSON {"isolation":"none|process|...",
 *            "mechanisms":{...},"development_only":bool,"egress":"forwarded"|
 *            "direct"}; "forwarded": the host dials approved endpoints for the
 *            enclave (routes in the spec); "direct": the enclave dials them
 *            itself under the isolator's own network rules.
 * reap_orphans (may be NULL): terminates enclaves a previous kernel left.
 * @since ABI 1.0
 */
typedef struct airlock_type_isolator_vtable {
  size_t size;
  airlock_on_create_plugin_ptr create;
  airlock_on_destroy_plugin_ptr destroy;
  airlock_type_status (*provision)(void* instance, const char* spec_json, size_t length,
                                   airlock_type_enclave_launch* launch, airlock_type_error* error);
  airlock_type_status (*terminate)(void* instance, void* enclave, airlock_type_error* error);
  airlock_type_status (*describe_isolation)(void* instance, airlock_type_buffer* description,
                                            airlock_type_error* error);
  airlock_type_status (*reap_orphans)(void* instance, airlock_type_error* error);
} airlock_type_isolator_vtable;

#define AIRLOCK_ISOLATOR_VTABLE_1_0_SIZE \
  (offsetof(airlock_type_isolator_vtable, reap_orphans) + sizeof(void*))

/* ------------------------------------------------------------------------ */
/* Notifiers (since ABI 1.2)                                                */
/* ------------------------------------------------------------------------ */

/**
 * Notifier table: tells people and systems what happened to a request
 * (someone waits for your approval; your access is ready; it ends in ten
 * minutes). The kernel decides what is sent and to whom (the policy's
 * approver groups, the requester); the plugin only carries it.
 *
 * deliver:
 *   [in]  notification JSON {"id","event","occurred_at","attempt",
 *         "audience":"approvers|requester","recipients":{"groups":[],
 *         "subjects":[],"emails":[]},"request":{...},"links":{"console"}}
 *         (schema in docs/sdk.md). "id" is the idempotency key: the same
 *         notification delivered again (after a failure, or after the kernel
 *         restarted before it learnt the outcome) carries the same id, so a
 *         receiver drops what it already has.
 *   Returns AIRLOCK_OK once the receiver accepted it. AIRLOCK_ERR_UNAVAILABLE,
 *   AIRLOCK_ERR_DEADLINE_EXCEEDED or AIRLOCK_ERR_RESOURCE_EXHAUSTED: not
 *   delivered, try again later (the host retries with backoff). Any other
 *   error: the receiver refused it for good (bad address, rejected
 *   credentials); the host stops trying and audits why.
 *   Called from one host thread per instance at a time; it may block (the
 *   host bounds nothing else by it), but should give up within its own
 *   configured timeout.
 * @since ABI 1.2
 */
typedef struct airlock_type_notifier_vtable {
  size_t size;
  airlock_on_create_plugin_ptr create;
  airlock_on_destroy_plugin_ptr destroy;
  airlock_type_status (*deliver)(void* instance, const char* notification_json, size_t length,
                                 airlock_type_error* error);
} airlock_type_notifier_vtable;

#define AIRLOCK_NOTIFIER_VTABLE_1_2_SIZE \
  (offsetof(airlock_type_notifier_vtable, deliver) + sizeof(void*))

#ifdef __cplusplus
}
#endif

#endif /* AIRLOCK_C_AIRLOCK_PLUGIN_H_ */
