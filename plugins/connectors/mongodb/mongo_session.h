// One pull's (or one describe's) connection to MongoDB through libmongoc.
//
// Credentials: the password (password_secret), a URI held as a secret
// (uri_secret) and the TLS key password are resolved through the host when
// the session opens, never earlier. The NUL-terminated copies libmongoc needs
// are wiped as soon as libmongoc has taken its own; the resolved SecretBytes
// live only as long as the session, so that error text can be scrubbed of
// them, and are released (wiped by the host) when it closes. libmongoc's own
// copy lives in the client and goes with it; see README.md for what libmongoc
// keeps beyond that.
//
// Errors (Classify): unreachable or timed out -> Unavailable; authentication
// failed -> Unauthenticated; not authorized (code 13) -> PermissionDenied;
// namespace not found (26) -> NotFound; a bad pipeline or query (2, 9, 40324,
// ...) -> InvalidArgument. Messages never contain secret values.
//
// Thread-safety: a session is used by one thread.
#pragma once

#include <mongoc/mongoc.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "airlock/cpp/host.hpp"
#include "airlock/cpp/status.hpp"
#include "config.h"

namespace airlock::connectors::mongodb {

// Owning handles for libmongoc objects. Destroying a cursor that still has a
// server-side id sends killCursors.
struct DatabaseFree {
  void operator()(mongoc_database_t* d) const { mongoc_database_destroy(d); }
};
struct CollectionFree {
  void operator()(mongoc_collection_t* c) const { mongoc_collection_destroy(c); }
};
struct CursorFree {
  void operator()(mongoc_cursor_t* c) const { mongoc_cursor_destroy(c); }
};
using Database = std::unique_ptr<mongoc_database_t, DatabaseFree>;
using Collection = std::unique_ptr<mongoc_collection_t, CollectionFree>;
using Cursor = std::unique_ptr<mongoc_cursor_t, CursorFree>;

// Calls mongoc_init() once per process and silences libmongoc's own logging.
void EnsureMongocInitialised();

// InvalidArgument when `uri` does not parse or embeds a password (without
// echoing it); otherwise the URI's database name (may be empty).
Result<std::string> ValidatePlainUri(const std::string& uri);

class MongoSession {
 public:
  static Result<std::unique_ptr<MongoSession>> Open(const MongoConfig& config,
                                                    const sdk::Host& host);
  ~MongoSession();
  MongoSession(const MongoSession&) = delete;
  MongoSession& operator=(const MongoSession&) = delete;

  mongoc_client_t* client() const { return client_; }
  const std::string& database() const { return database_; }

  // A Status for a libmongoc error, prefixed with `what`, with any secret
  // value scrubbed from the text.
  Status Classify(const bson_error_t& error, std::string_view what) const;

 private:
  MongoSession() = default;
  std::string Scrub(std::string text) const;

  mongoc_uri_t* uri_ = nullptr;
  mongoc_client_t* client_ = nullptr;
  std::string database_;
  std::vector<sdk::SecretBytes> secrets_;  // for scrubbing; released on close
};

}  // namespace airlock::connectors::mongodb
