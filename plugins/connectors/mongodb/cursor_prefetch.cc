#include "cursor_prefetch.h"

#include <algorithm>
#include <cstring>

namespace airlock::connectors::mongodb {

CursorPrefetcher::CursorPrefetcher(mongoc_cursor_t* cursor, size_t chunk_documents,
                                   size_t chunk_bytes, size_t max_chunks)
    : cursor_(cursor),
      chunk_documents_(std::max<size_t>(1, chunk_documents)),
      chunk_bytes_(std::max<size_t>(1, chunk_bytes)),
      max_chunks_(std::max<size_t>(1, max_chunks)) {
  reader_ = std::thread([this] { Read(); });
}

CursorPrefetcher::~CursorPrefetcher() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  reader_.join();
}

void CursorPrefetcher::Read() {
  bool more = true;
  size_t last_bytes = 0;
  while (more) {
    DocumentChunk chunk;
    chunk.bytes.reserve(last_bytes);
    chunk.ends.reserve(chunk_documents_);
    const bson_t* doc = nullptr;
    while (chunk.size() < chunk_documents_ && chunk.bytes.size() < chunk_bytes_) {
      more = mongoc_cursor_next(cursor_, &doc);
      if (!more) break;
      const uint8_t* data = bson_get_data(doc);
      chunk.bytes.insert(chunk.bytes.end(), data, data + doc->len);
      chunk.ends.push_back(chunk.bytes.size());
    }
    last_bytes = chunk.bytes.size();
    std::unique_lock<std::mutex> lock(mutex_);
    if (!more) {
      failed_ = mongoc_cursor_error(cursor_, &error_);
    }
    changed_.wait(lock, [&] { return ready_.size() < max_chunks_ || stopping_; });
    if (stopping_) break;
    if (chunk.size() > 0) ready_.push_back(std::move(chunk));
    changed_.notify_all();
  }
  std::lock_guard<std::mutex> lock(mutex_);
  finished_ = true;
  changed_.notify_all();
}

bool CursorPrefetcher::Next(DocumentChunk* out) {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [&] { return !ready_.empty() || finished_; });
  if (ready_.empty()) return false;
  *out = std::move(ready_.front());
  ready_.pop_front();
  changed_.notify_all();
  return true;
}

bool CursorPrefetcher::error(bson_error_t* out) const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!failed_) return false;
  std::memcpy(out, &error_, sizeof error_);
  return true;
}

}  // namespace airlock::connectors::mongodb
