/*
 * Arrow C Data Interface structures.
 *
 * These are the published, frozen ABI of the Apache Arrow C Data Interface
 * (format/CDataInterface). They are reproduced here under the standard
 * ARROW_C_DATA_INTERFACE guard so that a plugin which already includes Arrow's
 * own definition sees exactly one copy. Record batches cross the Airlock plugin
 * boundary in this layout without copying.
 *
 * Ownership (from the Arrow specification): the consumer allocates the outer
 * struct; the producer owns everything it points to and fills `release`. The
 * consumer's only lever is `release`, which frees children and then sets
 * itself to NULL. A NULL `release` means "already released". A move is a
 * bitwise copy followed by setting the source's `release` to NULL.
 */
#ifndef AIRLOCK_C_ARROW_C_DATA_H_
#define AIRLOCK_C_ARROW_C_DATA_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef ARROW_C_DATA_INTERFACE
#define ARROW_C_DATA_INTERFACE

#define ARROW_FLAG_DICTIONARY_ORDERED 1
#define ARROW_FLAG_NULLABLE 2
#define ARROW_FLAG_MAP_KEYS_SORTED 4

struct ArrowSchema {
  const char* format;
  const char* name;
  const char* metadata;
  int64_t flags;
  int64_t n_children;
  struct ArrowSchema** children;
  struct ArrowSchema* dictionary;
  void (*release)(struct ArrowSchema*);
  void* private_data;
};

struct ArrowArray {
  int64_t length;
  int64_t null_count;
  int64_t offset;
  int64_t n_buffers;
  int64_t n_children;
  const void** buffers;
  struct ArrowArray** children;
  struct ArrowArray* dictionary;
  void (*release)(struct ArrowArray*);
  void* private_data;
};

#endif /* ARROW_C_DATA_INTERFACE */

#ifdef __cplusplus
}
#endif

#endif /* AIRLOCK_C_ARROW_C_DATA_H_ */
