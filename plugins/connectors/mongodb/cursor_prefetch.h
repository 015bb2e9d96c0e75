// Reads a libmongoc cursor on a thread of its own, one server batch ahead of
// the thread that converts documents to Arrow.
//
// Why: a cursor asks for the next batch (getMore) only once the current one
// is consumed, and then waits for the server to build it. Converting a batch
// (row_writer.h) and building the next one on the server were therefore
// strictly sequential; with the reader copying each batch's documents out of
// libmongoc's reply buffer, the server builds batch N+1 while batch N is
// converted.
//
// Memory: at most `max_chunks` chunks wait, each of at most `chunk_documents`
// documents or about `chunk_bytes` bytes (a chunk always holds at least one
// document, and a BSON document is at most 16 MiB).
//
// Thread-safety: Next/error are called from one thread. The cursor is used
// only by the reader thread from construction until Next returns false or the
// prefetcher is destroyed; the destructor stops the reader and joins it (it
// may wait for one server round trip to end).
#pragma once

#include <bson/bson.h>
#include <mongoc/mongoc.h>

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

namespace airlock::connectors::mongodb {

// Documents copied back to back; document i spans [ends[i-1], ends[i]).
struct DocumentChunk {
  std::vector<uint8_t> bytes;
  std::vector<size_t> ends;

  size_t size() const { return ends.size(); }
  // A read-only view of document `i`, valid while the chunk lives.
  bool View(size_t i, bson_t* out) const {
    const size_t begin = i == 0 ? 0 : ends[i - 1];
    return bson_init_static(out, bytes.data() + begin, ends[i] - begin);
  }
};

class CursorPrefetcher {
 public:
  CursorPrefetcher(mongoc_cursor_t* cursor, size_t chunk_documents, size_t chunk_bytes,
                   size_t max_chunks = 2);
  ~CursorPrefetcher();
  CursorPrefetcher(const CursorPrefetcher&) = delete;
  CursorPrefetcher& operator=(const CursorPrefetcher&) = delete;

  // Blocks for the next chunk. False once the cursor is exhausted or failed
  // (then error() tells which); `out` is replaced on success.
  bool Next(DocumentChunk* out);

  // After Next returned false: the cursor's error, if it ended with one.
  bool error(bson_error_t* out) const;

 private:
  void Read();

  mongoc_cursor_t* const cursor_;
  const size_t chunk_documents_;
  const size_t chunk_bytes_;
  const size_t max_chunks_;

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<DocumentChunk> ready_;  // GUARDED_BY(mutex_)
  bool finished_ = false;            // GUARDED_BY(mutex_): the reader wrote its last chunk
  bool stopping_ = false;            // GUARDED_BY(mutex_)
  bool failed_ = false;              // written by the reader before finished_
  bson_error_t error_{};             // written by the reader before finished_
  std::thread reader_;
};

}  // namespace airlock::connectors::mongodb
