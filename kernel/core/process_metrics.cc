#include "kernel/core/process_metrics.h"

#include <dirent.h>
#include <malloc.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <fstream>

#include "kernel/common/process_memory.h"

// Exported by tcmalloc when it is linked in (AIRLOCK_ALLOCATOR), and by the
// sanitizers' allocator in a sanitized build; null with glibc's malloc.
extern "C" int MallocExtension_GetNumericProperty(const char* property, size_t* value)
    __attribute__((weak));
extern "C" size_t __sanitizer_get_current_allocated_bytes() __attribute__((weak));

namespace airlock {
namespace {

int64_t OpenDescriptors() {
  int64_t n = 0;
  if (DIR* dir = ::opendir("/proc/self/fd")) {
    while (const dirent* e = ::readdir(dir)) {
      if (e->d_name[0] != '.') ++n;
    }
    ::closedir(dir);
    --n;  // the directory stream's own descriptor
  }
  return n;
}

// Bytes the program holds from the allocator (not its free lists or caches).
int64_t HeapAllocatedBytes() {
  if (MallocExtension_GetNumericProperty != nullptr) {
    size_t allocated = 0;
    if (MallocExtension_GetNumericProperty("generic.current_allocated_bytes", &allocated)) {
      return static_cast<int64_t>(allocated);
    }
  }
  if (__sanitizer_get_current_allocated_bytes != nullptr) {
    return static_cast<int64_t>(__sanitizer_get_current_allocated_bytes());
  }
  const struct mallinfo2 info = ::mallinfo2();
  return static_cast<int64_t>(info.uordblks + info.hblkhd);
}

int64_t SqliteStatus(int op, bool highwater) {
  sqlite3_int64 current = 0, high = 0;
  if (sqlite3_status64(op, &current, &high, 0) != SQLITE_OK) return 0;
  return highwater ? high : current;
}

}  // namespace

void RefreshProcessGauges(Metrics& metrics) {
  metrics.Get("process_resident_memory_bytes", "Resident memory size in bytes", "gauge")
      .Set(ResidentMemoryBytes());
  metrics.Get("process_open_fds", "Number of open file descriptors", "gauge")
      .Set(OpenDescriptors());
  metrics
      .Get("airlock_heap_allocated_bytes",
           "Heap bytes the kernel holds from its allocator (not the allocator's free lists)",
           "gauge")
      .Set(HeapAllocatedBytes());
  metrics
      .Get("airlock_sqlite_memory_bytes",
           "Memory SQLite holds in the kernel process, caches included", "gauge")
      .Set(SqliteStatus(SQLITE_STATUS_MEMORY_USED, false));
  metrics
      .Get("airlock_sqlite_memory_highwater_bytes",
           "The most memory SQLite has held in the kernel process", "gauge")
      .Set(SqliteStatus(SQLITE_STATUS_MEMORY_USED, true));
  metrics
      .Get("airlock_sqlite_page_cache_bytes",
           "SQLite page cache memory in the kernel process (all connections)", "gauge")
      .Set(SqliteStatus(SQLITE_STATUS_PAGECACHE_OVERFLOW, false));
}

}  // namespace airlock
