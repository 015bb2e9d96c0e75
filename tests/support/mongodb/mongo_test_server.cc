#include "tests/support/mongodb/mongo_test_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <optional>

#include "tests/support/mongodb/bson_query.h"

namespace airlock::testing::mongodb {
namespace {

constexpr int32_t kOpReply = 1;
constexpr int32_t kOpQuery = 2004;
constexpr int32_t kOpMsg = 2013;
constexpr int64_t kDefaultFirstBatch = 101;

// Owns a bson_t made with bson_new / bson_init.
struct BsonDeleter {
  void operator()(bson_t* b) const { bson_destroy(b); }
};
using BsonPtr = std::unique_ptr<bson_t, BsonDeleter>;

bool ReadFull(int fd, uint8_t* data, size_t n) {
  while (n > 0) {
    const ssize_t got = ::recv(fd, data, n, 0);
    if (got <= 0) return false;
    data += got;
    n -= static_cast<size_t>(got);
  }
  return true;
}

bool WriteFull(int fd, const uint8_t* data, size_t n) {
  while (n > 0) {
    const ssize_t put = ::send(fd, data, n, MSG_NOSIGNAL);
    if (put <= 0) return false;
    data += put;
    n -= static_cast<size_t>(put);
  }
  return true;
}

int32_t LoadI32(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return BSON_UINT32_FROM_LE(v);
}

void PutI32(std::string& out, int32_t v) {
  v = static_cast<int32_t>(BSON_UINT32_TO_LE(static_cast<uint32_t>(v)));
  out.append(reinterpret_cast<const char*>(&v), 4);
}

void Fail(bson_t* reply, int32_t code, const std::string& name, const std::string& message) {
  bson_reinit(reply);
  BSON_APPEND_DOUBLE(reply, "ok", 0.0);
  BSON_APPEND_UTF8(reply, "errmsg", message.c_str());
  BSON_APPEND_INT32(reply, "code", code);
  BSON_APPEND_UTF8(reply, "codeName", name.c_str());
}

std::string Utf8Field(const bson_t* cmd, const char* key) {
  bson_iter_t it;
  if (bson_iter_init_find(&it, cmd, key) && BSON_ITER_HOLDS_UTF8(&it)) {
    return bson_iter_utf8(&it, nullptr);
  }
  return {};
}

// A document-valued field, borrowed from `cmd`; nullopt when absent.
std::optional<BsonView> DocField(const bson_t* cmd, const char* key) {
  bson_iter_t it;
  if (!bson_iter_init_find(&it, cmd, key)) return std::nullopt;
  if (!BSON_ITER_HOLDS_DOCUMENT(&it) && !BSON_ITER_HOLDS_ARRAY(&it)) {
    BadValue(std::string("'") + key + "' must be a document");
  }
  uint32_t len = 0;
  const uint8_t* data = nullptr;
  if (BSON_ITER_HOLDS_DOCUMENT(&it)) {
    bson_iter_document(&it, &len, &data);
  } else {
    bson_iter_array(&it, &len, &data);
  }
  return BsonView(data, len);
}

int64_t IntField(const bson_t* cmd, const char* key, int64_t fallback) {
  bson_iter_t it;
  if (bson_iter_init_find(&it, cmd, key) && BSON_ITER_HOLDS_NUMBER(&it)) {
    return bson_iter_as_int64(&it);
  }
  return fallback;
}

// The collection name a command addresses (its first value).
std::string Target(const bson_t* cmd) {
  bson_iter_t it;
  if (bson_iter_init(&it, cmd) && bson_iter_next(&it) && BSON_ITER_HOLDS_UTF8(&it)) {
    return bson_iter_utf8(&it, nullptr);
  }
  BadValue("collection name has invalid type");
}

Doc WithId(const bson_t* doc) {
  bson_iter_t it;
  if (bson_iter_init_find(&it, doc, "_id")) return ToDoc(doc);
  bson_t out = BSON_INITIALIZER;
  bson_oid_t oid;
  bson_oid_init(&oid, nullptr);
  BSON_APPEND_OID(&out, "_id", &oid);
  bson_concat(&out, doc);
  Doc d = ToDoc(&out);
  bson_destroy(&out);
  return d;
}

}  // namespace

struct MongoTestServer::Cursor {
  struct Stage {
    enum Kind { kMatch, kProject, kAddFields, kSkip, kLimit } kind;
    Doc spec;
    int64_t n = 0;
    int64_t seen = 0;
    std::optional<Projector> projector;  // kProject: parsed once
  };
  std::string ns;
  std::shared_ptr<const std::vector<std::string>> source;
  size_t position = 0;
  std::vector<Stage> stages;
  bool exhausted = false;

  // The next document out of the stages, or nullopt at the end.
  std::optional<Doc> Next() {
    while (!exhausted && position < source->size()) {
      const Doc& raw = (*source)[position++];
      std::optional<Doc> current;  // set once a stage rewrote the document
      bool keep = true;
      for (Stage& s : stages) {
        const Doc& doc = current ? *current : raw;
        BsonView view = View(doc);
        BsonView spec = View(s.spec);
        switch (s.kind) {
          case Stage::kMatch:
            keep = Matches(view.get(), spec.get());
            break;
          case Stage::kProject:
            if (!s.projector) s.projector.emplace(spec.get());
            current = s.projector->Apply(view.get());
            break;
          case Stage::kAddFields:
            current = AddFields(view.get(), spec.get());
            break;
          case Stage::kSkip:
            keep = s.seen++ >= s.n;
            break;
          case Stage::kLimit:
            if (s.seen >= s.n) {
              exhausted = true;
              return std::nullopt;
            }
            ++s.seen;
            break;
        }
        if (!keep) break;
      }
      if (keep) return current ? std::move(*current) : raw;
    }
    exhausted = true;
    return std::nullopt;
  }

  // Runs everything so far through the stages and sorts it: later stages
  // then read the sorted documents.
  void SortNow(const bson_t* sort) {
    auto sorted = std::make_shared<std::vector<std::string>>();
    while (auto doc = Next()) sorted->push_back(std::move(*doc));
    SortDocs(*sorted, sort);
    source = std::move(sorted);
    position = 0;
    stages.clear();
    exhausted = false;
  }
};

struct MongoTestServer::Connection {
  int fd = -1;
  int64_t id = 0;
  bool authenticated = false;
  std::unique_ptr<ScramConversation> scram;
  int scram_step = 0;
  bool skip_empty_exchange = false;
};

MongoTestServer::MongoTestServer(MongoServerOptions options) : options_(std::move(options)) {
  for (const MongoUser& user : options_.users) {
    credentials_[user.name] = ScramCredential::Derive(user.password);
  }
}

std::unique_ptr<MongoTestServer> MongoTestServer::Start(MongoServerOptions options,
                                                        std::string* error) {
  std::unique_ptr<MongoTestServer> server(new MongoTestServer(std::move(options)));
  auto fail = [&](const char* what) -> std::unique_ptr<MongoTestServer> {
    if (error != nullptr) *error = std::string(what) + ": " + std::strerror(errno);
    return nullptr;
  };
  server->listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (server->listen_fd_ < 0) return fail("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(server->listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return fail("bind");
  }
  if (::listen(server->listen_fd_, 64) != 0) return fail("listen");
  socklen_t len = sizeof addr;
  if (::getsockname(server->listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return fail("getsockname");
  }
  server->port_ = ntohs(addr.sin_port);
  server->acceptor_ = std::thread([s = server.get()] { s->AcceptLoop(); });
  return server;
}

MongoTestServer::~MongoTestServer() {
  stopping_ = true;
  if (acceptor_.joinable()) acceptor_.join();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (int fd : client_fds_) ::shutdown(fd, SHUT_RDWR);
    threads.swap(threads_);
  }
  for (auto& t : threads) t.join();
}

std::string MongoTestServer::uri() const {
  return "mongodb://127.0.0.1:" + std::to_string(port_) + "/?serverSelectionTimeoutMS=5000";
}

void MongoTestServer::AcceptLoop() {
  while (!stopping_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ++connections_;
    std::lock_guard<std::mutex> lock(mutex_);
    client_fds_.insert(fd);
    threads_.emplace_back([this, fd] { Serve(fd); });
  }
}

void MongoTestServer::Serve(int fd) {
  Connection conn;
  conn.fd = fd;
  conn.id = static_cast<int64_t>(connections_.load());
  std::vector<uint8_t> message;
  while (!stopping_) {
    uint8_t header[16];
    if (!ReadFull(fd, header, sizeof header)) break;
    const int32_t length = LoadI32(header);
    const int32_t request_id = LoadI32(header + 4);
    const int32_t opcode = LoadI32(header + 12);
    if (length < 16 || static_cast<size_t>(length) > options_.max_message_bytes) break;
    message.resize(static_cast<size_t>(length) - 16);
    if (!ReadFull(fd, message.data(), message.size())) break;

    BsonPtr command(bson_new());
    std::string db;
    bool legacy = false;
    bool more_to_come = false;
    bool ok = false;
    if (opcode == kOpMsg && message.size() >= 5) {
      const uint32_t flags = static_cast<uint32_t>(LoadI32(message.data()));
      more_to_come = (flags & 2u) != 0;
      size_t end = message.size() - ((flags & 1u) != 0 ? 4 : 0);
      size_t pos = 4;
      ok = true;
      // (pointer, length) of each document: a bson_t made by bson_init_static
      // points into itself, so it must not be copied.
      std::vector<std::pair<std::string, std::vector<std::pair<const uint8_t*, size_t>>>> sequences;
      bool have_body = false;
      while (ok && pos < end) {
        const uint8_t kind = message[pos++];
        if (pos + 4 > end) {
          ok = false;
          break;
        }
        const int32_t size = LoadI32(message.data() + pos);
        if (size < 5 || pos + static_cast<size_t>(size) > end) {
          ok = false;
          break;
        }
        if (kind == 0) {
          bson_t body;
          ok = !have_body &&
               bson_init_static(&body, message.data() + pos, static_cast<size_t>(size));
          if (ok) bson_concat(command.get(), &body);
          have_body = true;
        } else if (kind == 1) {
          const size_t section_end = pos + static_cast<size_t>(size);
          size_t p = pos + 4;
          const void* nul = std::memchr(message.data() + p, 0, section_end - p);
          if (nul == nullptr) {
            ok = false;
            break;
          }
          std::string id(reinterpret_cast<const char*>(message.data() + p));
          p += id.size() + 1;
          std::vector<std::pair<const uint8_t*, size_t>> docs;
          while (ok && p + 4 <= section_end) {
            const int32_t dlen = LoadI32(message.data() + p);
            if (dlen < 5 || p + static_cast<size_t>(dlen) > section_end) {
              ok = false;
              break;
            }
            docs.emplace_back(message.data() + p, static_cast<size_t>(dlen));
            p += static_cast<size_t>(dlen);
          }
          sequences.emplace_back(std::move(id), std::move(docs));
        } else {
          ok = false;
          break;
        }
        pos += static_cast<size_t>(size);
      }
      ok = ok && have_body && bson_validate(command.get(), BSON_VALIDATE_NONE, nullptr);
      for (auto& [id, docs] : sequences) {
        bson_t array;
        bson_append_array_begin(command.get(), id.c_str(), -1, &array);
        for (size_t i = 0; i < docs.size(); ++i) {
          const std::string key = std::to_string(i);
          bson_t d;
          ok = ok && bson_init_static(&d, docs[i].first, docs[i].second) &&
               bson_append_document(&array, key.c_str(), -1, &d);
        }
        bson_append_array_end(command.get(), &array);
      }
      db = Utf8Field(command.get(), "$db");
    } else if (opcode == kOpQuery && message.size() >= 4 + 1 + 8 + 5) {
      legacy = true;
      size_t pos = 4;
      const void* nul = std::memchr(message.data() + pos, 0, message.size() - pos);
      if (nul != nullptr) {
        const std::string ns(reinterpret_cast<const char*>(message.data() + pos));
        pos += ns.size() + 1 + 8;
        if (pos + 4 <= message.size()) {
          const int32_t qlen = LoadI32(message.data() + pos);
          bson_t query;
          if (qlen >= 5 && pos + static_cast<size_t>(qlen) <= message.size() &&
              bson_init_static(&query, message.data() + pos, static_cast<size_t>(qlen))) {
            auto wrapped = DocField(&query, "$query");
            bson_concat(command.get(), wrapped ? wrapped->get() : &query);
            db = ns.substr(0, ns.find('.'));
            ok = bson_validate(command.get(), BSON_VALIDATE_NONE, nullptr);
          }
        }
      }
    }
    if (!ok) break;  // malformed or unsupported message: drop the connection

    bson_t reply = BSON_INITIALIZER;
    Dispatch(command.get(), db, conn, &reply);
    if (more_to_come) {
      bson_destroy(&reply);
      continue;
    }
    std::string out;
    PutI32(out, 0);  // length, patched below
    PutI32(out, next_request_id_++);
    PutI32(out, request_id);
    if (legacy) {
      PutI32(out, kOpReply);
      PutI32(out, 0);       // responseFlags
      out.append(8, '\0');  // cursorID
      PutI32(out, 0);       // startingFrom
      PutI32(out, 1);       // numberReturned
    } else {
      PutI32(out, kOpMsg);
      PutI32(out, 0);       // flagBits
      out.push_back('\0');  // section kind 0
    }
    out.append(reinterpret_cast<const char*>(bson_get_data(&reply)), reply.len);
    bson_destroy(&reply);
    const int32_t total =
        static_cast<int32_t>(BSON_UINT32_TO_LE(static_cast<uint32_t>(out.size())));
    std::memcpy(out.data(), &total, 4);
    if (!WriteFull(fd, reinterpret_cast<const uint8_t*>(out.data()), out.size())) break;
  }
  std::lock_guard<std::mutex> lock(mutex_);
  client_fds_.erase(fd);
  ::close(fd);
}

void MongoTestServer::Record(const bson_t* command, const std::string& name) {
  std::string text;
  if (name == "saslStart" || name == "saslContinue") {
    text = "{ \"" + name + "\" : \"<sasl>\" }";
  } else {
    size_t len = 0;
    char* json = bson_as_relaxed_extended_json(command, &len);
    text.assign(json != nullptr ? json : "", json != nullptr ? len : 0);
    bson_free(json);
  }
  std::lock_guard<std::mutex> lock(mutex_);
  log_.push_back(std::move(text));
}

void MongoTestServer::Dispatch(const bson_t* command, const std::string& db, Connection& conn,
                               bson_t* reply) {
  bson_iter_t it;
  if (!bson_iter_init(&it, command) || !bson_iter_next(&it)) {
    Fail(reply, 59, "CommandNotFound", "empty command");
    return;
  }
  const std::string name = bson_iter_key(&it);
  Record(command, name);
  // Built apart, so a failure half-way through (a child document still
  // open) never leaves a broken reply behind.
  bson_t* answer = bson_new();
  try {
    Run(command, name, db.empty() ? "admin" : db, conn, answer);
    bson_concat(reply, answer);
  } catch (const CommandError& e) {
    Fail(reply, e.code, e.code_name, e.what());
  } catch (const std::exception& e) {
    Fail(reply, 1, "InternalError", e.what());
  }
  bson_destroy(answer);
}

void MongoTestServer::Run(const bson_t* cmd, const std::string& name, const std::string& db,
                          Connection& conn, bson_t* reply) {
  static const char* const kOpen[] = {"hello",       "isMaster",  "ismaster",
                                      "buildInfo",   "buildinfo", "ping",
                                      "endSessions", "saslStart", "saslContinue"};
  const bool open =
      std::any_of(std::begin(kOpen), std::end(kOpen), [&](const char* n) { return name == n; });
  if (!open && !options_.users.empty() && !conn.authenticated) {
    throw CommandError(13, "Unauthorized", "command " + name + " requires authentication");
  }
  if (name == "hello" || name == "isMaster" || name == "ismaster") return Hello(cmd, conn, reply);
  if (name == "buildInfo" || name == "buildinfo") {
    BSON_APPEND_UTF8(reply, "version", "6.0.0-airlock-test");
    bson_t arr;
    BSON_APPEND_ARRAY_BEGIN(reply, "versionArray", &arr);
    for (int i = 0; i < 4; ++i) {
      const std::string key = std::to_string(i);
      bson_append_int32(&arr, key.c_str(), -1, i == 0 ? 6 : 0);
    }
    bson_append_array_end(reply, &arr);
    BSON_APPEND_DOUBLE(reply, "ok", 1.0);
    return;
  }
  if (name == "ping" || name == "endSessions") {
    BSON_APPEND_DOUBLE(reply, "ok", 1.0);
    return;
  }
  if (name == "saslStart") return SaslStart(cmd, conn, reply);
  if (name == "saslContinue") return SaslContinue(cmd, conn, reply);
  if (name == "find") return Find(cmd, db, reply);
  if (name == "aggregate") return Aggregate(cmd, db, reply);
  if (name == "count") return Count(cmd, db, reply);
  if (name == "getMore") return GetMore(cmd, db, reply);
  if (name == "killCursors") return KillCursors(cmd, reply);
  if (name == "insert") return InsertCommand(cmd, db, reply);
  if (name == "listCollections") return ListCollections(cmd, db, reply);
  if (name == "drop") return Drop(cmd, db, reply);
  throw CommandError(59, "CommandNotFound", "no such command: '" + name + "'");
}

void MongoTestServer::Hello(const bson_t* cmd, Connection& conn, bson_t* reply) {
  BSON_APPEND_BOOL(reply, "helloOk", true);
  BSON_APPEND_BOOL(reply, "ismaster", true);
  BSON_APPEND_BOOL(reply, "isWritablePrimary", true);
  BSON_APPEND_INT32(reply, "maxBsonObjectSize", 16 * 1024 * 1024);
  BSON_APPEND_INT32(reply, "maxMessageSizeBytes", static_cast<int32_t>(options_.max_message_bytes));
  BSON_APPEND_INT32(reply, "maxWriteBatchSize", 100000);
  BSON_APPEND_DATE_TIME(reply, "localTime",
                        std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count());
  BSON_APPEND_INT32(reply, "logicalSessionTimeoutMinutes", 30);
  BSON_APPEND_INT64(reply, "connectionId", conn.id);
  BSON_APPEND_INT32(reply, "minWireVersion", 0);
  BSON_APPEND_INT32(reply, "maxWireVersion", 17);
  BSON_APPEND_BOOL(reply, "readOnly", false);
  bson_iter_t it;
  if (!options_.users.empty() && bson_iter_init_find(&it, cmd, "saslSupportedMechs")) {
    bson_t mechs;
    BSON_APPEND_ARRAY_BEGIN(reply, "saslSupportedMechs", &mechs);
    BSON_APPEND_UTF8(&mechs, "0", "SCRAM-SHA-256");
    bson_append_array_end(reply, &mechs);
  }
  BSON_APPEND_DOUBLE(reply, "ok", 1.0);
}

namespace {

std::string Payload(const bson_t* cmd) {
  bson_iter_t it;
  if (!bson_iter_init_find(&it, cmd, "payload")) return {};
  if (BSON_ITER_HOLDS_BINARY(&it)) {
    bson_subtype_t subtype;
    uint32_t len = 0;
    const uint8_t* data = nullptr;
    bson_iter_binary(&it, &subtype, &len, &data);
    return std::string(reinterpret_cast<const char*>(data), len);
  }
  if (BSON_ITER_HOLDS_UTF8(&it)) return bson_iter_utf8(&it, nullptr);
  return {};
}

void SaslReply(bson_t* reply, bool done, std::string_view payload) {
  BSON_APPEND_INT32(reply, "conversationId", 1);
  BSON_APPEND_BOOL(reply, "done", done);
  bson_append_binary(reply, "payload", -1, BSON_SUBTYPE_BINARY,
                     reinterpret_cast<const uint8_t*>(payload.data()),
                     static_cast<uint32_t>(payload.size()));
  BSON_APPEND_DOUBLE(reply, "ok", 1.0);
}

[[noreturn]] void AuthFailed() {
  throw CommandError(18, "AuthenticationFailed", "Authentication failed.");
}

}  // namespace

void MongoTestServer::SaslStart(const bson_t* cmd, Connection& conn, bson_t* reply) {
  if (Utf8Field(cmd, "mechanism") != "SCRAM-SHA-256") {
    throw CommandError(334, "MechanismUnavailable", "Unsupported mechanism");
  }
  conn.authenticated = false;
  conn.scram = std::make_unique<ScramConversation>();
  conn.scram_step = 1;
  conn.skip_empty_exchange = false;
  if (auto options = DocField(cmd, "options")) {
    bson_iter_t it;
    conn.skip_empty_exchange =
        bson_iter_init_find(&it, options->get(), "skipEmptyExchange") && bson_iter_as_bool(&it);
  }
  auto server_first = conn.scram->Start(Payload(cmd), [this](const std::string& user) {
    auto found = credentials_.find(user);
    return found == credentials_.end() ? std::nullopt
                                       : std::optional<ScramCredential>(found->second);
  });
  if (!server_first) AuthFailed();
  SaslReply(reply, false, *server_first);
}

void MongoTestServer::SaslContinue(const bson_t* cmd, Connection& conn, bson_t* reply) {
  if (!conn.scram || IntField(cmd, "conversationId", 0) != 1) {
    throw CommandError(17, "ProtocolError", "No SASL session state found");
  }
  if (conn.scram_step == 1) {
    auto server_final = conn.scram->Finish(Payload(cmd));
    if (!server_final) {
      conn.scram.reset();
      AuthFailed();
    }
    conn.authenticated = true;
    conn.scram_step = 2;
    SaslReply(reply, conn.skip_empty_exchange, *server_final);
    if (conn.skip_empty_exchange) conn.scram.reset();
    return;
  }
  conn.scram.reset();
  SaslReply(reply, true, "");
}

std::shared_ptr<const std::vector<std::string>> MongoTestServer::Snapshot(
    const std::string& ns) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = collections_.find(ns);
  if (it == collections_.end()) return std::make_shared<const std::vector<std::string>>();
  return it->second;
}

void MongoTestServer::CheckReadAllowed(const std::string& ns) const {
  if (options_.forbidden_namespaces.count(ns) != 0) {
    const std::string db = ns.substr(0, ns.find('.'));
    throw CommandError(13, "Unauthorized", "not authorized on " + db + " to execute command");
  }
}

void MongoTestServer::Find(const bson_t* cmd, const std::string& db, bson_t* reply) {
  auto cursor = std::make_unique<Cursor>();
  cursor->ns = db + "." + Target(cmd);
  CheckReadAllowed(cursor->ns);
  cursor->source = Snapshot(cursor->ns);
  if (auto filter = DocField(cmd, "filter")) {
    ValidateFilter(filter->get());
    cursor->stages.push_back({Cursor::Stage::kMatch, ToDoc(filter->get())});
  }
  if (auto sort = DocField(cmd, "sort")) cursor->SortNow(sort->get());
  if (const int64_t skip = IntField(cmd, "skip", 0); skip > 0) {
    cursor->stages.push_back({Cursor::Stage::kSkip, {}, skip});
  }
  if (const int64_t limit = IntField(cmd, "limit", 0); limit > 0) {
    cursor->stages.push_back({Cursor::Stage::kLimit, {}, limit});
  }
  if (auto projection = DocField(cmd, "projection")) {
    cursor->stages.push_back({Cursor::Stage::kProject, ToDoc(projection->get())});
  }
  int64_t batch = IntField(cmd, "batchSize", kDefaultFirstBatch);
  bson_iter_t it;
  if (bson_iter_init_find(&it, cmd, "singleBatch") && bson_iter_as_bool(&it)) {
    batch = std::numeric_limits<int64_t>::max();
  }
  ReplyWithCursor(std::move(cursor), batch, true, reply);
}

void MongoTestServer::Aggregate(const bson_t* cmd, const std::string& db, bson_t* reply) {
  auto cursor = std::make_unique<Cursor>();
  cursor->ns = db + "." + Target(cmd);
  CheckReadAllowed(cursor->ns);
  cursor->source = Snapshot(cursor->ns);
  auto pipeline = DocField(cmd, "pipeline");
  if (!pipeline) BadValue("'pipeline' option must be specified as an array");
  bson_iter_t it;
  if (!bson_iter_init(&it, pipeline->get())) BadValue("malformed pipeline");
  while (bson_iter_next(&it)) {
    if (!BSON_ITER_HOLDS_DOCUMENT(&it)) BadValue("each pipeline stage must be an object");
    uint32_t len = 0;
    const uint8_t* data = nullptr;
    bson_iter_document(&it, &len, &data);
    bson_t stage;
    bson_init_static(&stage, data, len);
    bson_iter_t s;
    if (!bson_iter_init(&s, &stage) || !bson_iter_next(&s) || bson_count_keys(&stage) != 1) {
      throw CommandError(40323, "Location40323",
                         "A pipeline stage specification object must contain exactly one field.");
    }
    const std::string name = bson_iter_key(&s);
    if (name == "$limit" || name == "$skip") {
      if (!BSON_ITER_HOLDS_NUMBER(&s) || bson_iter_as_int64(&s) < 0)
        BadValue(name + " must be a non-negative number");
      cursor->stages.push_back({name == "$limit" ? Cursor::Stage::kLimit : Cursor::Stage::kSkip,
                                {},
                                bson_iter_as_int64(&s)});
      continue;
    }
    if (!BSON_ITER_HOLDS_DOCUMENT(&s)) BadValue(name + " must be an object");
    uint32_t slen = 0;
    const uint8_t* sdata = nullptr;
    bson_iter_document(&s, &slen, &sdata);
    bson_t spec;
    bson_init_static(&spec, sdata, slen);
    if (name == "$match") {
      ValidateFilter(&spec);
      cursor->stages.push_back({Cursor::Stage::kMatch, ToDoc(&spec)});
    } else if (name == "$project") {
      cursor->stages.push_back({Cursor::Stage::kProject, ToDoc(&spec)});
    } else if (name == "$addFields" || name == "$set") {
      cursor->stages.push_back({Cursor::Stage::kAddFields, ToDoc(&spec)});
    } else if (name == "$sort") {
      cursor->SortNow(&spec);
    } else {
      throw CommandError(40324, "Location40324",
                         "Unrecognized pipeline stage name: '" + name + "'");
    }
  }
  int64_t batch = kDefaultFirstBatch;
  if (auto options = DocField(cmd, "cursor")) batch = IntField(options->get(), "batchSize", batch);
  ReplyWithCursor(std::move(cursor), batch, true, reply);
}

// As mongod: a missing collection counts 0; skip and limit apply to the
// matching documents (a negative limit counts like its absolute value); "n"
// is an int32 below 2^30 and an int64 from there (BSONObjBuilder::appendNumber).
void MongoTestServer::Count(const bson_t* cmd, const std::string& db, bson_t* reply) {
  const std::string ns = db + "." + Target(cmd);
  CheckReadAllowed(ns);
  auto query = DocField(cmd, "query");
  if (query) ValidateFilter(query->get());
  const int64_t skip = IntField(cmd, "skip", 0);
  if (skip < 0) BadValue("skip value is negative in count query");
  int64_t n = 0;
  for (const auto& doc : *Snapshot(ns)) {
    if (!query || Matches(View(doc).get(), query->get())) ++n;
  }
  n = std::max<int64_t>(0, n - skip);
  if (const int64_t limit = std::abs(IntField(cmd, "limit", 0)); limit > 0) {
    n = std::min(n, limit);
  }
  if (n < (int64_t{1} << 30)) {
    BSON_APPEND_INT32(reply, "n", static_cast<int32_t>(n));
  } else {
    BSON_APPEND_INT64(reply, "n", n);
  }
  BSON_APPEND_DOUBLE(reply, "ok", 1.0);
}

void MongoTestServer::ReplyWithCursor(std::unique_ptr<Cursor> cursor, int64_t batch_size,
                                      bool first, bson_t* reply, int64_t id_if_more) {
  if (batch_size <= 0) batch_size = std::numeric_limits<int64_t>::max();
  bson_t cursor_doc, batch;
  BSON_APPEND_DOCUMENT_BEGIN(reply, "cursor", &cursor_doc);
  bson_append_array_begin(&cursor_doc, first ? "firstBatch" : "nextBatch", -1, &batch);
  size_t bytes = 0;
  int64_t count = 0;
  bool more = true;
  while (count < batch_size && bytes < options_.max_batch_bytes) {
    auto doc = cursor->Next();
    if (!doc) {
      more = false;
      break;
    }
    BsonView view = View(*doc);
    char key[16];
    const char* k = nullptr;
    const size_t klen = bson_uint32_to_string(static_cast<uint32_t>(count), &k, key, sizeof key);
    bson_append_document(&batch, k, static_cast<int>(klen), view.get());
    bytes += doc->size();
    ++count;
  }
  if (more && cursor->exhausted) more = false;
  bson_append_array_end(&cursor_doc, &batch);
  int64_t id = 0;
  if (more) id = id_if_more != 0 ? id_if_more : next_cursor_id_++;
  BSON_APPEND_INT64(&cursor_doc, "id", id);
  BSON_APPEND_UTF8(&cursor_doc, "ns", cursor->ns.c_str());
  bson_append_document_end(reply, &cursor_doc);
  BSON_APPEND_DOUBLE(reply, "ok", 1.0);
  if (more) {
    std::lock_guard<std::mutex> lock(mutex_);
    cursors_[id] = std::move(cursor);
  }
}

void MongoTestServer::GetMore(const bson_t* cmd, const std::string& db, bson_t* reply) {
  bson_iter_t it;
  if (!bson_iter_init_find(&it, cmd, "getMore") || !BSON_ITER_HOLDS_INT64(&it)) {
    BadValue("getMore must be an int64 cursor id");
  }
  const int64_t id = bson_iter_int64(&it);
  std::unique_ptr<Cursor> cursor;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = cursors_.find(id);
    if (found != cursors_.end()) {
      cursor = std::move(found->second);
      cursors_.erase(found);
    }
  }
  if (!cursor) {
    throw CommandError(43, "CursorNotFound", "cursor id " + std::to_string(id) + " not found");
  }
  if (cursor->ns != db + "." + Utf8Field(cmd, "collection")) {
    throw CommandError(13, "Unauthorized", "requested getMore on a different namespace");
  }
  // The id stays the same while documents remain.
  ReplyWithCursor(std::move(cursor), IntField(cmd, "batchSize", 0), false, reply, id);
}

void MongoTestServer::KillCursors(const bson_t* cmd, bson_t* reply) {
  auto ids = DocField(cmd, "cursors");
  if (!ids) BadValue("cursors must be an array");
  bson_t killed, not_found;
  std::vector<int64_t> k, nf;
  bson_iter_t it;
  if (bson_iter_init(&it, ids->get())) {
    while (bson_iter_next(&it)) {
      const int64_t id = bson_iter_as_int64(&it);
      std::lock_guard<std::mutex> lock(mutex_);
      if (cursors_.erase(id) != 0) {
        k.push_back(id);
        ++cursors_killed_;
      } else {
        nf.push_back(id);
      }
    }
  }
  BSON_APPEND_ARRAY_BEGIN(reply, "cursorsKilled", &killed);
  for (size_t i = 0; i < k.size(); ++i) {
    bson_append_int64(&killed, std::to_string(i).c_str(), -1, k[i]);
  }
  bson_append_array_end(reply, &killed);
  BSON_APPEND_ARRAY_BEGIN(reply, "cursorsNotFound", &not_found);
  for (size_t i = 0; i < nf.size(); ++i) {
    bson_append_int64(&not_found, std::to_string(i).c_str(), -1, nf[i]);
  }
  bson_append_array_end(reply, &not_found);
  BSON_APPEND_DOUBLE(reply, "ok", 1.0);
}

void MongoTestServer::InsertCommand(const bson_t* cmd, const std::string& db, bson_t* reply) {
  const std::string ns = db + "." + Target(cmd);
  auto docs = DocField(cmd, "documents");
  if (!docs) BadValue("documents must be an array");
  std::vector<Doc> added;
  bson_iter_t it;
  if (bson_iter_init(&it, docs->get())) {
    while (bson_iter_next(&it)) {
      if (!BSON_ITER_HOLDS_DOCUMENT(&it)) BadValue("documents must be objects");
      uint32_t len = 0;
      const uint8_t* data = nullptr;
      bson_iter_document(&it, &len, &data);
      bson_t d;
      bson_init_static(&d, data, len);
      added.push_back(WithId(&d));
    }
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto& slot = collections_[ns];
    auto grown = slot ? std::make_shared<std::vector<std::string>>(*slot)
                      : std::make_shared<std::vector<std::string>>();
    for (auto& d : added) grown->push_back(std::move(d));
    slot = std::move(grown);
  }
  BSON_APPEND_INT32(reply, "n", static_cast<int32_t>(bson_count_keys(docs->get())));
  BSON_APPEND_DOUBLE(reply, "ok", 1.0);
}

void MongoTestServer::ListCollections(const bson_t* cmd, const std::string& db, bson_t* reply) {
  std::vector<std::string> names;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    const std::string prefix = db + ".";
    for (const auto& [ns, docs] : collections_) {
      if (ns.compare(0, prefix.size(), prefix) == 0) names.push_back(ns.substr(prefix.size()));
    }
  }
  auto filter = DocField(cmd, "filter");
  if (filter) ValidateFilter(filter->get());
  auto infos = std::make_shared<std::vector<std::string>>();
  for (const auto& name : names) {
    bson_t info = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&info, "name", name.c_str());
    BSON_APPEND_UTF8(&info, "type", "collection");
    bson_t empty;
    BSON_APPEND_DOCUMENT_BEGIN(&info, "options", &empty);
    bson_append_document_end(&info, &empty);
    if (!filter || Matches(&info, filter->get())) infos->push_back(ToDoc(&info));
    bson_destroy(&info);
  }
  auto cursor = std::make_unique<Cursor>();
  cursor->ns = db + ".$cmd.listCollections";
  cursor->source = std::move(infos);
  ReplyWithCursor(std::move(cursor), std::numeric_limits<int64_t>::max(), true, reply);
}

void MongoTestServer::Drop(const bson_t* cmd, const std::string& db, bson_t* reply) {
  const std::string ns = db + "." + Target(cmd);
  std::lock_guard<std::mutex> lock(mutex_);
  if (collections_.erase(ns) == 0) throw CommandError(26, "NamespaceNotFound", "ns not found");
  BSON_APPEND_UTF8(reply, "ns", ns.c_str());
  BSON_APPEND_INT32(reply, "nIndexesWas", 1);
  BSON_APPEND_DOUBLE(reply, "ok", 1.0);
}

void MongoTestServer::Insert(const std::string& db, const std::string& collection,
                             const std::vector<const bson_t*>& documents) {
  std::vector<Doc> added;
  added.reserve(documents.size());
  for (const bson_t* d : documents) added.push_back(WithId(d));
  std::lock_guard<std::mutex> lock(mutex_);
  auto& slot = collections_[db + "." + collection];
  auto grown = slot ? std::make_shared<std::vector<std::string>>(*slot)
                    : std::make_shared<std::vector<std::string>>();
  grown->reserve(grown->size() + added.size());
  for (auto& d : added) grown->push_back(std::move(d));
  slot = std::move(grown);
}

bool MongoTestServer::InsertJson(const std::string& db, const std::string& collection,
                                 const std::vector<std::string>& documents) {
  std::vector<BsonPtr> owned;
  std::vector<const bson_t*> views;
  for (const auto& json : documents) {
    bson_error_t error;
    BsonPtr doc(bson_new_from_json(reinterpret_cast<const uint8_t*>(json.data()),
                                   static_cast<ssize_t>(json.size()), &error));
    if (!doc) return false;
    views.push_back(doc.get());
    owned.push_back(std::move(doc));
  }
  Insert(db, collection, views);
  return true;
}

size_t MongoTestServer::open_cursors() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return cursors_.size();
}

std::vector<std::string> MongoTestServer::commands() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return log_;
}

std::string MongoTestServer::last_command(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const std::string prefix = "{ \"" + name + "\" :";
  for (auto it = log_.rbegin(); it != log_.rend(); ++it) {
    if (it->compare(0, prefix.size(), prefix) == 0) return *it;
  }
  return {};
}

}  // namespace airlock::testing::mongodb
