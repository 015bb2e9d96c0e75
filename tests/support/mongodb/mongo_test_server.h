// A MongoDB TEST DOUBLE that speaks the real wire protocol on 127.0.0.1.
//
// Why it exists: no MongoDB server is packaged for the build machines, and
// the JavaScript wire-protocol server available from npm does not keep BSON
// numeric types (int64 comes back as int32 or double), which is exactly what
// the connector's type mapping must be tested on. This server stores every
// document as the raw BSON bytes it received, so int32, int64, double,
// Decimal128, dates, binary and ObjectId come back bit for bit.
//
// Protocol: OP_MSG (kind 0 body and kind 1 document sequences, checksum flag
// tolerated) and OP_QUERY/OP_REPLY for the legacy handshake drivers start
// with. Every message is bounded (Options::max_message_bytes); anything else
// closes the connection.
//
// Commands: hello/isMaster, buildInfo, ping, endSessions, insert, find
// (filter, projection, sort, skip, limit, batchSize, singleBatch), getMore,
// killCursors, aggregate ($match, $project, $addFields, $limit, $skip, $sort),
// count (query, skip, limit; what estimatedDocumentCount sends), listCollections
// (with a filter), drop, saslStart/saslContinue. Filter and
// expression subset: see bson_query.h. Unknown commands answer
// CommandNotFound (59), unsupported operators BadValue (2).
//
// Authentication: a real SCRAM-SHA-256 exchange (scram_sha256.h) when
// Options::users is not empty. Then every command except the handshake,
// ping, buildInfo, endSessions and the SASL commands requires an
// authenticated connection (Unauthorized, 13), and a failed exchange answers
// AuthenticationFailed (18) like mongod. Options::forbidden_namespaces makes
// reads of a namespace answer Unauthorized (13) even when authenticated, to
// test "authenticated but not allowed".
//
// Thread-safety: all public methods may be called from any thread while the
// server runs; one thread per connection.
#pragma once

#include <bson/bson.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/mongodb/scram_sha256.h"

namespace airlock::testing::mongodb {

struct MongoUser {
  std::string name;
  std::string password;
};

struct MongoServerOptions {
  std::vector<MongoUser> users;                  // non-empty: authentication required
  std::set<std::string> forbidden_namespaces;    // "db.collection": reads answer code 13
  size_t max_message_bytes = 48u * 1000 * 1000;  // as mongod advertises
  size_t max_batch_bytes = 16u * 1024 * 1024 - 64 * 1024;
};

class MongoTestServer {
 public:
  // Listens on 127.0.0.1 on a free port. Null (with *error) on failure.
  static std::unique_ptr<MongoTestServer> Start(MongoServerOptions options = {},
                                                std::string* error = nullptr);
  ~MongoTestServer();  // closes every connection and joins every thread
  MongoTestServer(const MongoTestServer&) = delete;
  MongoTestServer& operator=(const MongoTestServer&) = delete;

  uint16_t port() const { return port_; }
  // "mongodb://127.0.0.1:<port>/?serverSelectionTimeoutMS=5000"
  std::string uri() const;

  // Seeds documents without the wire (fast, for large collections). Each
  // document without _id gets an ObjectId first, as an insert would.
  void Insert(const std::string& db, const std::string& collection,
              const std::vector<const bson_t*>& documents);
  // Same, from canonical or relaxed Extended JSON texts. Returns false if one
  // does not parse.
  bool InsertJson(const std::string& db, const std::string& collection,
                  const std::vector<std::string>& documents);

  // Observations for tests.
  uint64_t cursors_killed() const { return cursors_killed_.load(); }
  size_t open_cursors() const;
  // Every command received, in order, as relaxed Extended JSON of the body
  // (SASL payloads are replaced by "<sasl>").
  std::vector<std::string> commands() const;
  // The last command named `name` (e.g. "aggregate"), or "".
  std::string last_command(const std::string& name) const;
  uint64_t connections_accepted() const { return connections_.load(); }

 private:
  struct Cursor;
  struct Connection;

  explicit MongoTestServer(MongoServerOptions options);
  void AcceptLoop();
  void Serve(int fd);
  // Runs one command document; always produces a reply document.
  void Dispatch(const bson_t* command, const std::string& db, Connection& conn, bson_t* reply);
  void Run(const bson_t* command, const std::string& name, const std::string& db, Connection& conn,
           bson_t* reply);
  void Record(const bson_t* command, const std::string& name);

  void Find(const bson_t* cmd, const std::string& db, bson_t* reply);
  void Aggregate(const bson_t* cmd, const std::string& db, bson_t* reply);
  void Count(const bson_t* cmd, const std::string& db, bson_t* reply);
  void GetMore(const bson_t* cmd, const std::string& db, bson_t* reply);
  void KillCursors(const bson_t* cmd, bson_t* reply);
  void InsertCommand(const bson_t* cmd, const std::string& db, bson_t* reply);
  void ListCollections(const bson_t* cmd, const std::string& db, bson_t* reply);
  void Drop(const bson_t* cmd, const std::string& db, bson_t* reply);
  void Hello(const bson_t* cmd, Connection& conn, bson_t* reply);
  void SaslStart(const bson_t* cmd, Connection& conn, bson_t* reply);
  void SaslContinue(const bson_t* cmd, Connection& conn, bson_t* reply);

  // Answers a batch of `cursor` and registers it (under `id_if_more`, or a
  // new id when 0) if documents remain.
  void ReplyWithCursor(std::unique_ptr<Cursor> cursor, int64_t batch_size, bool first,
                       bson_t* reply, int64_t id_if_more = 0);
  std::shared_ptr<const std::vector<std::string>> Snapshot(const std::string& ns) const;
  void CheckReadAllowed(const std::string& ns) const;

  const MongoServerOptions options_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;

  mutable std::mutex mutex_;
  // namespace -> documents (copy-on-write, so cursors read a stable snapshot)
  std::map<std::string, std::shared_ptr<const std::vector<std::string>>> collections_;
  std::map<int64_t, std::unique_ptr<Cursor>> cursors_;
  std::vector<std::string> log_;
  std::vector<std::thread> threads_;
  std::set<int> client_fds_;

  std::atomic<uint64_t> cursors_killed_{0};
  std::atomic<uint64_t> connections_{0};
  std::atomic<int64_t> next_cursor_id_{1};
  std::atomic<int32_t> next_request_id_{1};
  std::map<std::string, ScramCredential> credentials_;  // derived once at start
};

}  // namespace airlock::testing::mongodb
