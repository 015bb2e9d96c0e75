/*
 * A connector written in plain C99 against airlock_plugin.h alone: no SDK
 * C++ layer. describe() returns a fixed catalog; pull() builds a real Arrow
 * struct batch (int64 "id", utf8 "word"; 3 rows) in malloc'ed memory with
 * release callbacks, and delivers schema and batch to the host's sink.
 */
#include <stdlib.h>
#include <string.h>

#include "airlock/c/airlock_plugin.h"

static const airlock_host_services* g_host = NULL;

/* ---- errors and buffers ------------------------------------------------- */

static void release_error(airlock_type_error* error) {
  free(error->message);
  error->message = NULL;
  error->release = NULL;
}

static airlock_type_status fail(airlock_type_error* error, airlock_type_status code,
                                const char* message) {
  if (error != NULL) {
    size_t n = strlen(message);
    if (error->release != NULL) error->release(error);
    error->message = (char*)malloc(n + 1);
    if (error->message != NULL) {
      memcpy(error->message, message, n + 1);
      error->release = &release_error;
    }
  }
  return code;
}

static void release_buffer(airlock_type_buffer* buffer) {
  free((void*)buffer->data);
  buffer->data = NULL;
  buffer->length = 0;
  buffer->release = NULL;
}

static airlock_type_status fill_buffer(airlock_type_buffer* buffer, const char* text,
                                       airlock_type_error* error) {
  size_t n = strlen(text);
  char* copy = (char*)malloc(n + 1);
  if (copy == NULL) return fail(error, AIRLOCK_ERR_RESOURCE_EXHAUSTED, "out of memory");
  memcpy(copy, text, n + 1);
  buffer->data = copy;
  buffer->length = n;
  buffer->private_data = NULL;
  buffer->release = &release_buffer;
  return AIRLOCK_OK;
}

static void host_log(int32_t level, const char* message) {
  if (g_host != NULL && g_host->log != NULL) {
    g_host->log(g_host->host_data, level, "c-numbers", message, strlen(message));
  }
}

/* ---- Arrow schema ------------------------------------------------------- */

/* Releases a schema node whose children (and the children array) were malloc'ed. */
static void release_schema(struct ArrowSchema* schema) {
  int64_t i;
  for (i = 0; i < schema->n_children; ++i) {
    struct ArrowSchema* child = schema->children[i];
    if (child->release != NULL) child->release(child);
    free(child);
  }
  free(schema->children);
  schema->children = NULL;
  schema->release = NULL;
}

static void init_leaf_schema(struct ArrowSchema* schema, const char* format, const char* name) {
  memset(schema, 0, sizeof(*schema));
  schema->format = format; /* string literals: static storage */
  schema->name = name;
  schema->flags = ARROW_FLAG_NULLABLE;
  schema->release = &release_schema;
}

static int make_schema(struct ArrowSchema* out) {
  struct ArrowSchema** children = (struct ArrowSchema**)malloc(2 * sizeof(*children));
  if (children == NULL) return 0;
  children[0] = (struct ArrowSchema*)malloc(sizeof(struct ArrowSchema));
  children[1] = (struct ArrowSchema*)malloc(sizeof(struct ArrowSchema));
  if (children[0] == NULL || children[1] == NULL) {
    free(children[0]);
    free(children[1]);
    free(children);
    return 0;
  }
  init_leaf_schema(children[0], "l", "id");
  init_leaf_schema(children[1], "u", "word");
  memset(out, 0, sizeof(*out));
  out->format = "+s";
  out->name = "";
  out->n_children = 2;
  out->children = children;
  out->release = &release_schema;
  return 1;
}

/* ---- Arrow array -------------------------------------------------------- */

/* private_data of every array node: the malloc'ed value buffers to free. */
typedef struct array_owned {
  void* blocks[3];
} array_owned;

static void release_array(struct ArrowArray* array) {
  int64_t i;
  array_owned* owned = (array_owned*)array->private_data;
  for (i = 0; i < array->n_children; ++i) {
    struct ArrowArray* child = array->children[i];
    if (child->release != NULL) child->release(child);
    free(child);
  }
  free(array->children);
  if (owned != NULL) {
    for (i = 0; i < 3; ++i) free(owned->blocks[i]);
    free(owned);
  }
  free((void*)array->buffers);
  array->private_data = NULL;
  array->release = NULL;
}

/* A node with `n_buffers` buffers (validity NULL) taking ownership of `blocks`. */
static int init_array(struct ArrowArray* array, int64_t length, int64_t n_buffers, void* b1,
                      void* b2) {
  const void** buffers = (const void**)calloc((size_t)n_buffers, sizeof(void*));
  array_owned* owned = (array_owned*)calloc(1, sizeof(array_owned));
  if (buffers == NULL || owned == NULL) {
    free((void*)buffers);
    free(owned);
    free(b1);
    free(b2);
    return 0;
  }
  if (n_buffers > 1) buffers[1] = b1;
  if (n_buffers > 2) buffers[2] = b2;
  owned->blocks[0] = b1;
  owned->blocks[1] = b2;
  memset(array, 0, sizeof(*array));
  array->length = length;
  array->n_buffers = n_buffers;
  array->buffers = buffers;
  array->private_data = owned;
  array->release = &release_array;
  return 1;
}

static int make_batch(struct ArrowArray* out) {
  static const char* const kWords[3] = {"one", "two", "three"};
  int64_t* ids = (int64_t*)malloc(3 * sizeof(int64_t));
  int32_t* offsets = (int32_t*)malloc(4 * sizeof(int32_t));
  char* data = (char*)malloc(16);
  struct ArrowArray** children = (struct ArrowArray**)calloc(2, sizeof(*children));
  int i;
  int32_t used = 0;
  if (ids == NULL || offsets == NULL || data == NULL || children == NULL) goto fail;
  children[0] = (struct ArrowArray*)malloc(sizeof(struct ArrowArray));
  children[1] = (struct ArrowArray*)malloc(sizeof(struct ArrowArray));
  if (children[0] == NULL || children[1] == NULL) goto fail;
  offsets[0] = 0;
  for (i = 0; i < 3; ++i) {
    size_t n = strlen(kWords[i]);
    ids[i] = i + 1;
    memcpy(data + used, kWords[i], n);
    used += (int32_t)n;
    offsets[i + 1] = used;
  }
  if (!init_array(children[0], 3, 2, ids, NULL)) {
    ids = NULL;
    goto fail;
  }
  ids = NULL;
  if (!init_array(children[1], 3, 3, offsets, data)) {
    offsets = NULL;
    data = NULL;
    children[0]->release(children[0]);
    goto fail;
  }
  offsets = NULL;
  data = NULL;
  if (!init_array(out, 3, 1, NULL, NULL)) {
    children[0]->release(children[0]);
    children[1]->release(children[1]);
    goto fail;
  }
  out->n_children = 2;
  out->children = children;
  return 1;
fail:
  if (children != NULL) {
    free(children[0]);
    free(children[1]);
  }
  free(children);
  free(ids);
  free(offsets);
  free(data);
  return 0;
}

/* ---- connector ---------------------------------------------------------- */

typedef struct c_connector {
  int64_t pulls;
} c_connector;

static airlock_type_status c_create(const char* config, size_t length, void** instance,
                                    airlock_type_error* error) {
  c_connector* made;
  (void)config;
  (void)length;
  *instance = NULL;
  made = (c_connector*)calloc(1, sizeof(c_connector));
  if (made == NULL) return fail(error, AIRLOCK_ERR_RESOURCE_EXHAUSTED, "out of memory");
  *instance = made;
  return AIRLOCK_OK;
}

static void c_destroy(void* instance) {
  free(instance);
}

static const char kCatalog[] =
    "{\"datasets\":[{\"name\":\"numbers\",\"description\":\"three rows from C\","
    "\"columns\":[{\"name\":\"id\",\"type\":\"int64\"},{\"name\":\"word\",\"type\":\"utf8\"}]}]}";

static airlock_type_status c_describe(void* instance, airlock_type_buffer* catalog,
                                      airlock_type_error* error) {
  (void)instance;
  return fill_buffer(catalog, kCatalog, error);
}

/* True when the pull document names dataset "numbers" (the host serialises
 * the spec compactly, so a substring test is enough for a fixture). */
static int names_numbers(const char* json, size_t length) {
  static const char kNeedle[] = "\"dataset\":\"numbers\"";
  size_t n = sizeof(kNeedle) - 1;
  size_t i;
  for (i = 0; i + n <= length; ++i) {
    if (memcmp(json + i, kNeedle, n) == 0) return 1;
  }
  return 0;
}

static airlock_type_status c_pull(void* instance, const char* pull_json, size_t length,
                                  const airlock_type_batch_sink* sink, airlock_type_error* error) {
  struct ArrowSchema schema;
  struct ArrowArray batch;
  airlock_type_status rc;
  ((c_connector*)instance)->pulls += 1;
  if (!names_numbers(pull_json, length)) {
    return fail(error, AIRLOCK_ERR_NOT_FOUND, "unknown dataset");
  }
  host_log(AIRLOCK_LOG_INFO, "pulling numbers");
  if (!make_schema(&schema)) return fail(error, AIRLOCK_ERR_RESOURCE_EXHAUSTED, "out of memory");
  rc = sink->on_schema(sink->host_data, &schema);
  if (schema.release != NULL) schema.release(&schema); /* not taken */
  if (rc != AIRLOCK_OK) return fail(error, rc, "sink refused the schema");
  if (sink->is_cancelled != NULL && sink->is_cancelled(sink->host_data)) {
    return fail(error, AIRLOCK_ERR_CANCELLED, "cancelled");
  }
  if (!make_batch(&batch)) return fail(error, AIRLOCK_ERR_RESOURCE_EXHAUSTED, "out of memory");
  rc = sink->on_batch(sink->host_data, &batch);
  if (batch.release != NULL) batch.release(&batch);
  if (rc != AIRLOCK_OK) return fail(error, rc, "sink refused the batch");
  if (sink->size >= AIRLOCK_BATCH_SINK_1_0_SIZE && sink->on_progress != NULL) {
    sink->on_progress(sink->host_data, 3, 3 * 8 + 11);
  }
  return AIRLOCK_OK;
}

static const airlock_type_connector_vtable kVtable = {sizeof(airlock_type_connector_vtable),
                                                      &c_create, &c_destroy, &c_describe, &c_pull};

static const airlock_type_plugin_info kInfo = {sizeof(airlock_type_plugin_info),
                                               AIRLOCK_ABI_MAJOR,
                                               AIRLOCK_ABI_MINOR,
                                               AIRLOCK_KIND_CONNECTOR,
                                               "c-numbers",
                                               "0.1.0",
                                               "Three numbers, from plain C",
                                               "{\"type\":\"object\",\"properties\":{}}",
                                               &kVtable};

AIRLOCK_EXPORT airlock_type_status airlock_plugin_entry_v1(const airlock_host_services* host,
                                                           const airlock_type_plugin_info** info,
                                                           airlock_type_error* error) {
  if (host == NULL || host->abi_major != AIRLOCK_ABI_MAJOR) {
    return fail(error, AIRLOCK_ERR_NOT_IMPLEMENTED, "host speaks another ABI major version");
  }
  g_host = host;
  *info = &kInfo;
  return AIRLOCK_OK;
}
