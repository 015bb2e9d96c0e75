#include "kernel/state/postgres_state_store.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "kernel/common/crypto.h"
#include "kernel/common/one_shot_signal.h"
#include "kernel/state/page_token.h"
#include "kernel/state/postgres_target.h"
#include "kernel/state/stored_row.h"

namespace airlock {
namespace {

// Column order shared by every SELECT (RowView).
constexpr const char* kColumns =
    "id, state, version, requester_subject, created_at_us, updated_at_us, deadline_us, reason, "
    "requester, request, decision, approvals, enclave, tunnel";
enum Column : int {
  kId,
  kState,
  kVersion,
  kRequesterSubject,
  kCreatedAt,
  kUpdatedAt,
  kDeadline,
  kReason,
  kRequester,
};

// The schema, oldest first; see schema_migrations.h. Only ever append.
//
// Ids and subjects compare bytewise (COLLATE "C"), as in SQLite, so listing
// order and page tokens mean the same on both backends whatever the
// database's locale. The documents are text, not jsonb: LoadText returns
// them byte for byte as Save wrote them.
//
// airlock_save_requests applies a group of saves (a JSON array of objects
// built by Save) in one statement and answers, per save (ord: 1-based
// position in the array), whether it was applied and else the stored
// version (NULL: no such request). Saves are applied by id, then position,
// so that concurrent groups from several replicas lock rows in one order.
// A save that finds its own write token at its version was applied by an
// earlier attempt of the same group (a commit whose answer was lost).
constexpr SchemaMigration kMigrations[] = {
    {1, "requests with newest-first indexes; airlock_save_requests for group commits", R"sql(
CREATE TABLE requests (
  id text COLLATE "C" PRIMARY KEY,
  state text NOT NULL,
  version bigint NOT NULL,
  requester_subject text COLLATE "C" NOT NULL,
  created_at_us bigint NOT NULL,
  updated_at_us bigint NOT NULL,
  deadline_us bigint NOT NULL,
  reason text NOT NULL,
  requester text NOT NULL,
  request text NOT NULL,
  decision text NOT NULL,
  approvals text NOT NULL,
  enclave text NOT NULL,
  tunnel text NOT NULL,
  write_token text NOT NULL
);
CREATE INDEX requests_by_created ON requests (created_at_us DESC, id DESC);
CREATE INDEX requests_by_state ON requests (state, created_at_us DESC, id DESC);
CREATE INDEX requests_by_requester ON requests (requester_subject, created_at_us DESC, id DESC);

CREATE FUNCTION airlock_save_requests(batch jsonb)
RETURNS TABLE (ord bigint, applied boolean, stored_version bigint)
LANGUAGE plpgsql AS $fn$
DECLARE
  e jsonb;
  changed bigint;
  token text;
BEGIN
  FOR e, ord IN
    SELECT s.value, s.ordinality FROM jsonb_array_elements(batch) WITH ORDINALITY AS s
    ORDER BY s.value->>'id' COLLATE "C", s.ordinality
  LOOP
    IF (e->>'version')::bigint = 1 THEN
      INSERT INTO requests (id, state, version, requester_subject, created_at_us, updated_at_us,
                            deadline_us, reason, requester, request, decision, approvals,
                            enclave, tunnel, write_token)
      VALUES (e->>'id', e->>'state', 1, e->>'subject', (e->>'created')::bigint,
              (e->>'updated')::bigint, (e->>'deadline')::bigint, e->>'reason', e->>'requester',
              e->>'request', e->>'decision', e->>'approvals', e->>'enclave', e->>'tunnel',
              e->>'token')
      ON CONFLICT (id) DO NOTHING;
    ELSE
      UPDATE requests SET state = e->>'state', version = (e->>'version')::bigint,
             requester_subject = e->>'subject', updated_at_us = (e->>'updated')::bigint,
             deadline_us = (e->>'deadline')::bigint, reason = e->>'reason',
             requester = e->>'requester', request = e->>'request', decision = e->>'decision',
             approvals = e->>'approvals', enclave = e->>'enclave', tunnel = e->>'tunnel',
             write_token = e->>'token'
       WHERE id = e->>'id' AND version = (e->>'version')::bigint - 1;
    END IF;
    GET DIAGNOSTICS changed = ROW_COUNT;
    applied := changed = 1;
    stored_version := NULL;
    IF NOT applied THEN
      SELECT r.version, r.write_token INTO stored_version, token
        FROM requests r WHERE r.id = e->>'id';
      applied := coalesce(stored_version = (e->>'version')::bigint AND token = e->>'token',
                          false);
    END IF;
    RETURN NEXT;
  END LOOP;
END
$fn$;
)sql"},
    {2, "replicas: each kernel replica's last heartbeat by the database clock", R"sql(
CREATE TABLE replicas (
  replica_id text COLLATE "C" PRIMARY KEY,
  version text NOT NULL,
  api_url text NOT NULL,
  started_at_us bigint NOT NULL,
  last_heartbeat_us bigint NOT NULL
);
)sql"},
    // The audit chain every replica appends to (kernel/audit/
    // postgres_audit_log.h): each record's line as written (the hash covers
    // it), its request for GET /v1/audit, and the head, one row locked by
    // each appending transaction so that seqs follow commit order.
    {3, "audit_records and audit_head: one audit hash chain for every replica", R"sql(
CREATE TABLE audit_records (
  seq bigint PRIMARY KEY,
  request_id text COLLATE "C",
  hash text NOT NULL,
  line text NOT NULL
);
CREATE INDEX audit_records_by_request ON audit_records (request_id, seq)
  WHERE request_id IS NOT NULL;
CREATE TABLE audit_head (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  seq bigint NOT NULL,
  hash text NOT NULL
);
INSERT INTO audit_head (seq, hash)
  VALUES (0, '0000000000000000000000000000000000000000000000000000000000000000');
)sql"},
    // Replica leases: a replica renews only while it holds the current
    // epoch; a survivor fences a silent one by moving its epoch on.
    {4, "replicas.lease_epoch: the lease each replica renews with its heartbeat", R"sql(
ALTER TABLE replicas ADD COLUMN lease_epoch bigint NOT NULL DEFAULT 0;
)sql"},
    // Signed checkpoints of the shared audit chain, published by whichever
    // replica signed them (kernel/audit/postgres_checkpoints.h): each the
    // same JSON line a checkpoints file holds, in publication order.
    {5, "audit_checkpoints: the signed checkpoints of the shared audit chain", R"sql(
CREATE TABLE audit_checkpoints (
  id bigserial PRIMARY KEY,
  seq bigint NOT NULL,
  line text NOT NULL,
  replica text NOT NULL DEFAULT ''
);
)sql"},
    // Agents enroll once and link with any replica: the enrollment book
    // (kernel/agent/enrollment_book.h) and the agent CA every replica must
    // share, pinned by its certificate's fingerprint.
    {6, "agent_enrollments and agent_ca: agents enrolled once for every replica", R"sql(
CREATE TABLE agent_enrollments (
  agent text COLLATE "C" PRIMARY KEY,
  token_sha256 text NOT NULL,
  serial text NOT NULL,
  previous_serial text NOT NULL DEFAULT '',
  enrolled_at_us bigint NOT NULL
);
CREATE TABLE agent_ca (
  id integer PRIMARY KEY CHECK (id = 1),
  fingerprint text NOT NULL
);
)sql"},
    // Which replica holds each agent's link: a request for that agent's
    // datasets is served there.
    {7, "agent_links: the replica each agent is linked with", R"sql(
CREATE TABLE agent_links (
  agent text COLLATE "C" PRIMARY KEY,
  replica_id text NOT NULL,
  linked_at_us bigint NOT NULL
);
)sql"},
    // The notification outbox (kernel/notify/): messages queued in the
    // transaction of the change they tell of. airlock_save_requests now
    // also inserts a save's messages (its entry's "outbox" array), in the
    // same statement and only when that save's row was written; an entry
    // without the key (a replica of the previous release, during an
    // upgrade) queues nothing. The payload is text, not jsonb: delivered
    // byte for byte as queued. The first index serves the claim (a
    // notifier's pending messages in due order), the second the purge.
    {8, "notification_outbox, queued by airlock_save_requests with the changes it saves", R"sql(
CREATE TABLE notification_outbox (
  id text COLLATE "C" PRIMARY KEY,
  notifier text COLLATE "C" NOT NULL,
  request_id text COLLATE "C" NOT NULL,
  payload text NOT NULL,
  status text NOT NULL CHECK (status IN ('pending', 'delivered', 'abandoned')),
  created_at_us bigint NOT NULL,
  next_attempt_at_us bigint NOT NULL,
  attempts bigint NOT NULL,
  last_error text NOT NULL,
  settled_at_us bigint NOT NULL,
  claimed_by text COLLATE "C",
  claimed_until_us bigint
);
CREATE INDEX notification_outbox_due
  ON notification_outbox (notifier, status, next_attempt_at_us, created_at_us, id);
CREATE INDEX notification_outbox_settled ON notification_outbox (settled_at_us)
  WHERE status <> 'pending';

CREATE OR REPLACE FUNCTION airlock_save_requests(batch jsonb)
RETURNS TABLE (ord bigint, applied boolean, stored_version bigint)
LANGUAGE plpgsql AS $fn$
DECLARE
  e jsonb;
  changed bigint;
  token text;
BEGIN
  FOR e, ord IN
    SELECT s.value, s.ordinality FROM jsonb_array_elements(batch) WITH ORDINALITY AS s
    ORDER BY s.value->>'id' COLLATE "C", s.ordinality
  LOOP
    IF (e->>'version')::bigint = 1 THEN
      INSERT INTO requests (id, state, version, requester_subject, created_at_us, updated_at_us,
                            deadline_us, reason, requester, request, decision, approvals,
                            enclave, tunnel, write_token)
      VALUES (e->>'id', e->>'state', 1, e->>'subject', (e->>'created')::bigint,
              (e->>'updated')::bigint, (e->>'deadline')::bigint, e->>'reason', e->>'requester',
              e->>'request', e->>'decision', e->>'approvals', e->>'enclave', e->>'tunnel',
              e->>'token')
      ON CONFLICT (id) DO NOTHING;
    ELSE
      UPDATE requests SET state = e->>'state', version = (e->>'version')::bigint,
             requester_subject = e->>'subject', updated_at_us = (e->>'updated')::bigint,
             deadline_us = (e->>'deadline')::bigint, reason = e->>'reason',
             requester = e->>'requester', request = e->>'request', decision = e->>'decision',
             approvals = e->>'approvals', enclave = e->>'enclave', tunnel = e->>'tunnel',
             write_token = e->>'token'
       WHERE id = e->>'id' AND version = (e->>'version')::bigint - 1;
    END IF;
    GET DIAGNOSTICS changed = ROW_COUNT;
    applied := changed = 1;
    stored_version := NULL;
    IF applied THEN
      -- An earlier attempt of this group that did commit (found by its
      -- token below) queued these messages with the row it wrote.
      INSERT INTO notification_outbox (id, notifier, request_id, payload, status, created_at_us,
                                       next_attempt_at_us, attempts, last_error, settled_at_us)
      SELECT m->>'id', m->>'notifier', m->>'request_id', m->>'payload', 'pending',
             (m->>'created')::bigint, (m->>'next')::bigint, (m->>'attempts')::bigint,
             m->>'error', 0
        FROM jsonb_array_elements(coalesce(e->'outbox', '[]'::jsonb)) AS m
      ON CONFLICT (id) DO NOTHING;
    ELSE
      SELECT r.version, r.write_token INTO stored_version, token
        FROM requests r WHERE r.id = e->>'id';
      applied := coalesce(stored_version = (e->>'version')::bigint AND token = e->>'token',
                          false);
    END IF;
    RETURN NEXT;
  END LOOP;
END
$fn$;
)sql"},
    // Where each audit export destination stands on the shared chain, and
    // the replica exporting it until held_until (the database's clock):
    // kernel/audit/postgres_export_cursors.h.
    {9, "audit_export_cursors: the shared chain's export cursors, one replica exporting each",
     R"sql(
CREATE TABLE audit_export_cursors (
  name text COLLATE "C" PRIMARY KEY,
  seq bigint NOT NULL DEFAULT 0,
  position bigint NOT NULL DEFAULT 0,
  holder text NOT NULL DEFAULT '',
  held_until timestamptz NOT NULL DEFAULT '-infinity'
);
)sql"},
    // Sites an admin suspended (SiteSuspension): every replica refuses them.
    {10, "site_suspensions: sites an admin suspended, refused until resumed", R"sql(
CREATE TABLE site_suspensions (
  agent text COLLATE "C" PRIMARY KEY,
  reason text NOT NULL,
  suspended_by text NOT NULL,
  since_us bigint NOT NULL
);
)sql"},
    // What each site owns (StoredSiteCatalog): every replica knows it.
    {11, "site_catalogs: the metadata of the datasets each site owns", R"sql(
CREATE TABLE site_catalogs (
  agent text COLLATE "C" PRIMARY KEY,
  datasets text NOT NULL,
  received_at_us bigint NOT NULL
);
)sql"},
    // Each request's tenant (RequesterTenant) as a column, so that List
    // filters by it in the index and its pages stay full. Rows saved before
    // take it from their requester document. airlock_save_requests now
    // writes an entry's "tenant"; an entry without the key (a replica of the
    // previous release, during an upgrade) gets it from its requester the
    // same way. airlock_requester_tenant is RequesterTenant in SQL: the
    // requester's "tenant" when it is a string, else ''. A document may
    // hold an escaped NUL character in most places (Save refuses one only
    // in the subject and the tenant), which PostgreSQL will not read as
    // text at all: it reads as U+FFFD instead, so that the rest of the
    // document can be read.
    {12, "requests.tenant, backfilled; airlock_save_requests writes it", R"sql(
CREATE FUNCTION airlock_requester_tenant(requester text) RETURNS text
LANGUAGE sql IMMUTABLE AS $fn$
  SELECT CASE WHEN json_typeof(d -> 'tenant') = 'string' THEN d ->> 'tenant' ELSE '' END
    FROM (SELECT replace(requester, E'\\u0000', E'\\ufffd')::json AS d) AS r
$fn$;

ALTER TABLE requests ADD COLUMN tenant text COLLATE "C" NOT NULL DEFAULT '';
UPDATE requests SET tenant = airlock_requester_tenant(requester)
  WHERE airlock_requester_tenant(requester) <> '';
CREATE INDEX requests_by_tenant ON requests (tenant, created_at_us DESC, id DESC);

CREATE OR REPLACE FUNCTION airlock_save_requests(batch jsonb)
RETURNS TABLE (ord bigint, applied boolean, stored_version bigint)
LANGUAGE plpgsql AS $fn$
DECLARE
  e jsonb;
  changed bigint;
  token text;
BEGIN
  FOR e, ord IN
    SELECT s.value, s.ordinality FROM jsonb_array_elements(batch) WITH ORDINALITY AS s
    ORDER BY s.value->>'id' COLLATE "C", s.ordinality
  LOOP
    IF (e->>'version')::bigint = 1 THEN
      INSERT INTO requests (id, state, version, requester_subject, created_at_us, updated_at_us,
                            deadline_us, reason, requester, request, decision, approvals,
                            enclave, tunnel, write_token, tenant)
      VALUES (e->>'id', e->>'state', 1, e->>'subject', (e->>'created')::bigint,
              (e->>'updated')::bigint, (e->>'deadline')::bigint, e->>'reason', e->>'requester',
              e->>'request', e->>'decision', e->>'approvals', e->>'enclave', e->>'tunnel',
              e->>'token', coalesce(e->>'tenant', airlock_requester_tenant(e->>'requester')))
      ON CONFLICT (id) DO NOTHING;
    ELSE
      UPDATE requests SET state = e->>'state', version = (e->>'version')::bigint,
             requester_subject = e->>'subject', updated_at_us = (e->>'updated')::bigint,
             deadline_us = (e->>'deadline')::bigint, reason = e->>'reason',
             requester = e->>'requester', request = e->>'request', decision = e->>'decision',
             approvals = e->>'approvals', enclave = e->>'enclave', tunnel = e->>'tunnel',
             write_token = e->>'token',
             tenant = coalesce(e->>'tenant', airlock_requester_tenant(e->>'requester'))
       WHERE id = e->>'id' AND version = (e->>'version')::bigint - 1;
    END IF;
    GET DIAGNOSTICS changed = ROW_COUNT;
    applied := changed = 1;
    stored_version := NULL;
    IF applied THEN
      -- An earlier attempt of this group that did commit (found by its
      -- token below) queued these messages with the row it wrote.
      INSERT INTO notification_outbox (id, notifier, request_id, payload, status, created_at_us,
                                       next_attempt_at_us, attempts, last_error, settled_at_us)
      SELECT m->>'id', m->>'notifier', m->>'request_id', m->>'payload', 'pending',
             (m->>'created')::bigint, (m->>'next')::bigint, (m->>'attempts')::bigint,
             m->>'error', 0
        FROM jsonb_array_elements(coalesce(e->'outbox', '[]'::jsonb)) AS m
      ON CONFLICT (id) DO NOTHING;
    ELSE
      SELECT r.version, r.write_token INTO stored_version, token
        FROM requests r WHERE r.id = e->>'id';
      applied := coalesce(stored_version = (e->>'version')::bigint AND token = e->>'token',
                          false);
    END IF;
    RETURN NEXT;
  END LOOP;
END
$fn$;
)sql"},
};

constexpr const char* kSchemaVersionTable =
    "CREATE TABLE IF NOT EXISTS schema_version (version integer PRIMARY KEY, "
    "description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())";
// Serialises concurrent migrators (several replicas' operators, or a
// deployment tool on every node).
constexpr const char* kMigrationLock =
    "SELECT pg_advisory_xact_lock(hashtextextended('airlock.state.schema', 0))";

constexpr const char* kSaveStatement = "airlock_save";
constexpr const char* kLoadStatement = "airlock_load";
constexpr const char* kActiveStatement = "airlock_active";
constexpr const char* kAcquireLeaseStatement = "airlock_acquire_lease";
constexpr const char* kHeartbeatStatement = "airlock_heartbeat";
constexpr const char* kFenceStatement = "airlock_fence_replica";
constexpr const char* kReleaseLeaseStatement = "airlock_release_lease";
constexpr const char* kReplicasStatement = "airlock_replicas";
constexpr const char* kRecordAgentLinksStatement = "airlock_record_agent_links";
constexpr const char* kAgentLinksStatement = "airlock_agent_links";
constexpr const char* kOutboxEnqueueStatement = "airlock_outbox_enqueue";
constexpr const char* kOutboxClaimStatement = "airlock_outbox_claim";
constexpr const char* kOutboxSettleStatement = "airlock_outbox_settle";
constexpr const char* kOutboxLoadStatement = "airlock_outbox_load";
constexpr const char* kOutboxCountAllStatement = "airlock_outbox_count_all";
constexpr const char* kOutboxCountOneStatement = "airlock_outbox_count_one";
constexpr const char* kOutboxPurgeStatement = "airlock_outbox_purge";
constexpr const char* kOutboxReleaseStatement = "airlock_outbox_release";
// Microseconds since the epoch by the database's clock (not the
// transaction's start: a heartbeat says "now").
constexpr const char* kDatabaseNowUs = "(extract(epoch FROM clock_timestamp()) * 1000000)::bigint";
// List variants: bit 0 state filter, bit 1 requester filter, bit 2 cursor,
// bit 3 tenant filter.
constexpr int kListVariants = 16;

std::string ListStatement(int variant) {
  return "airlock_list_" + std::to_string(variant);
}

// Parameters are numbered in the order state, requester, tenant, cursor,
// limit.
std::string ListSql(int variant) {
  std::string sql = std::string("SELECT ") + kColumns + " FROM requests WHERE true";
  int n = 0;
  if (variant & 1) sql += " AND state = $" + std::to_string(++n);
  if (variant & 2) sql += " AND requester_subject = $" + std::to_string(++n);
  if (variant & 8) sql += " AND tenant = $" + std::to_string(++n);
  if (variant & 4) {
    sql += " AND (created_at_us, id) < ($" + std::to_string(n + 1) + "::bigint, $" +
           std::to_string(n + 2) + ")";
    n += 2;
  }
  sql += " ORDER BY created_at_us DESC, id DESC LIMIT $" + std::to_string(++n) + "::bigint";
  return sql;
}

// $1 a JSON array of messages as OutboxJson builds it (the same elements
// airlock_save_requests reads from a save's "outbox").
void PrepareOutboxStatements(pqxx::connection& conn) {
  conn.prepare(kOutboxEnqueueStatement,
               "INSERT INTO notification_outbox (id, notifier, request_id, payload, status, "
               "created_at_us, next_attempt_at_us, attempts, last_error, settled_at_us) "
               "SELECT m->>'id', m->>'notifier', m->>'request_id', m->>'payload', 'pending', "
               "(m->>'created')::bigint, (m->>'next')::bigint, (m->>'attempts')::bigint, "
               "m->>'error', 0 FROM jsonb_array_elements($1::jsonb) AS m "
               "ON CONFLICT (id) DO NOTHING");
  // $1 notifier, $2 claimer, $3 now, $4 claimed until, $5 limit. Rows
  // another claimer is locking right now are skipped, not waited for: two
  // replicas claiming at once get disjoint messages. A claim is running
  // until its claimed_until_us has passed, whoever holds it: a claimer that
  // claims again while its deliveries are in flight must not get them
  // twice. RETURNING has no order: the caller sorts.
  conn.prepare(kOutboxClaimStatement,
               std::string("UPDATE notification_outbox SET claimed_by = $2, "
                           "claimed_until_us = $4::bigint WHERE id IN (SELECT id FROM "
                           "notification_outbox WHERE notifier = $1 AND status = 'pending' AND "
                           "next_attempt_at_us <= $3::bigint AND (claimed_by IS NULL OR "
                           "claimed_until_us < $3::bigint) ORDER BY "
                           "next_attempt_at_us, created_at_us, id LIMIT $5::bigint "
                           "FOR UPDATE SKIP LOCKED) RETURNING ") +
                   kOutboxColumns);
  // $1 id, $2 claimer, $3 status, $4 error, $5 settled_at_us, $6 next
  // attempt (used only while pending). Settling gives the claim up.
  conn.prepare(kOutboxSettleStatement,
               "UPDATE notification_outbox SET status = $3, attempts = attempts + 1, "
               "last_error = $4, settled_at_us = $5::bigint, next_attempt_at_us = CASE WHEN "
               "$3 = 'pending' THEN $6::bigint ELSE next_attempt_at_us END, claimed_by = NULL, "
               "claimed_until_us = NULL WHERE id = $1 AND claimed_by = $2 AND status = 'pending'");
  conn.prepare(kOutboxLoadStatement,
               std::string("SELECT ") + kOutboxColumns + " FROM notification_outbox WHERE id = $1");
  conn.prepare(kOutboxCountAllStatement,
               "SELECT status, count(*) FROM notification_outbox GROUP BY status");
  conn.prepare(kOutboxCountOneStatement,
               "SELECT status, count(*) FROM notification_outbox WHERE notifier = $1 "
               "GROUP BY status");
  conn.prepare(kOutboxReleaseStatement,
               "UPDATE notification_outbox SET claimed_by = NULL, claimed_until_us = NULL "
               "WHERE claimed_by = $1 AND status = 'pending'");
  conn.prepare(kOutboxPurgeStatement,
               "DELETE FROM notification_outbox WHERE status <> 'pending' AND "
               "settled_at_us < $1::bigint");
}

void PrepareStatements(pqxx::connection& conn) {
  conn.prepare(kSaveStatement,
               "SELECT ord, applied, stored_version FROM airlock_save_requests($1::jsonb)");
  conn.prepare(kLoadStatement, std::string("SELECT ") + kColumns + " FROM requests WHERE id = $1");
  conn.prepare(kActiveStatement, std::string("SELECT ") + kColumns +
                                     " FROM requests WHERE state IN (" + NonTerminalStatesSql() +
                                     ") ORDER BY created_at_us, id");
  for (int variant = 0; variant < kListVariants; ++variant) {
    conn.prepare(ListStatement(variant), ListSql(variant));
  }
  conn.prepare(
      kAcquireLeaseStatement,
      std::string("INSERT INTO replicas AS r (replica_id, version, api_url, started_at_us, "
                  "last_heartbeat_us, lease_epoch) VALUES ($1, $2, $3, $4, ") +
          kDatabaseNowUs +
          ", 1) ON CONFLICT (replica_id) DO UPDATE SET version = excluded.version, "
          "api_url = excluded.api_url, started_at_us = excluded.started_at_us, "
          "last_heartbeat_us = excluded.last_heartbeat_us, lease_epoch = r.lease_epoch + 1 "
          "RETURNING lease_epoch");
  conn.prepare(kHeartbeatStatement,
               std::string("UPDATE replicas SET version = $2, api_url = $3, last_heartbeat_us = ") +
                   kDatabaseNowUs + " WHERE replica_id = $1 AND lease_epoch = $4");
  conn.prepare(kFenceStatement,
               std::string("UPDATE replicas SET lease_epoch = lease_epoch + 1 WHERE replica_id = "
                           "$1 AND lease_epoch = $2 AND last_heartbeat_us <= ") +
                   kDatabaseNowUs + " - $3");
  conn.prepare(kReleaseLeaseStatement,
               "UPDATE replicas SET last_heartbeat_us = 0 WHERE replica_id = $1 AND "
               "lease_epoch = $2");
  conn.prepare(kReplicasStatement,
               std::string("SELECT replica_id, version, api_url, started_at_us, "
                           "last_heartbeat_us, ") +
                   kDatabaseNowUs + ", lease_epoch FROM replicas ORDER BY replica_id");
  // $1 the replica, $2 the agents it holds, $3 those it claims (JSON
  // arrays of names). One statement: its parts see one snapshot, and touch
  // disjoint agents (dropped ones are not held; claimed and the rest of the
  // held ones do not overlap).
  conn.prepare(kRecordAgentLinksStatement,
               std::string("WITH dropped AS (DELETE FROM agent_links WHERE replica_id = $1 AND "
                           "agent NOT IN (SELECT jsonb_array_elements_text($2::jsonb))), "
                           "claimed AS (INSERT INTO agent_links (agent, replica_id, linked_at_us) "
                           "SELECT a, $1, ") +
                   kDatabaseNowUs +
                   " FROM jsonb_array_elements_text($3::jsonb) a ON CONFLICT (agent) DO UPDATE "
                   "SET replica_id = excluded.replica_id, linked_at_us = excluded.linked_at_us) "
                   "INSERT INTO agent_links (agent, replica_id, linked_at_us) SELECT a, $1, " +
                   kDatabaseNowUs +
                   " FROM jsonb_array_elements_text($2::jsonb) a WHERE a NOT IN (SELECT "
                   "jsonb_array_elements_text($3::jsonb)) ON CONFLICT (agent) DO NOTHING");
  conn.prepare(kAgentLinksStatement,
               "SELECT agent, replica_id, linked_at_us FROM agent_links ORDER BY agent");
  PrepareOutboxStatements(conn);
}

std::string_view FieldText(const pqxx::field& field) {
  return std::string_view(field.c_str(), field.size());
}

StoredRowView RowView(const pqxx::row& row) {
  StoredRowView view;
  view.id = FieldText(row[kId]);
  view.state = FieldText(row[kState]);
  view.version = row[kVersion].as<int64_t>();
  view.requester_subject = FieldText(row[kRequesterSubject]);
  view.created_at_us = row[kCreatedAt].as<int64_t>();
  view.updated_at_us = row[kUpdatedAt].as<int64_t>();
  view.deadline_us = row[kDeadline].as<int64_t>();
  view.reason = FieldText(row[kReason]);
  for (int i = 0; i < 6; ++i) view.documents[i] = FieldText(row[kRequester + i]);
  return view;
}

// Messages as the outbox statements and airlock_save_requests read them.
// Throws nlohmann::json::exception for a string that is not valid UTF-8.
nlohmann::json OutboxJson(const std::vector<OutboxMessage>& messages) {
  nlohmann::json array = nlohmann::json::array();
  for (const OutboxMessage& m : messages) {
    array.push_back({{"id", m.id},
                     {"notifier", m.notifier},
                     {"request_id", m.request_id},
                     {"payload", m.payload},
                     {"created", m.created_at_us},
                     {"next", m.next_attempt_at_us},
                     {"attempts", m.attempts},
                     {"error", m.last_error}});
  }
  return array;
}

Result<OutboxMessage> RowToOutbox(const pqxx::row& row) {
  StoredOutboxView view;
  view.id = FieldText(row[0]);
  view.notifier = FieldText(row[1]);
  view.request_id = FieldText(row[2]);
  view.payload = FieldText(row[3]);
  view.status = FieldText(row[4]);
  view.created_at_us = row[5].as<int64_t>();
  view.next_attempt_at_us = row[6].as<int64_t>();
  view.attempts = row[7].as<int64_t>();
  view.last_error = FieldText(row[8]);
  view.settled_at_us = row[9].as<int64_t>();
  return OutboxFromRow(view);
}

// Text parameters travel as C strings: one with a NUL byte would arrive cut.
bool HasNul(std::string_view text) {
  return text.find('\0') != std::string_view::npos;
}

Result<std::vector<RequestRecord>> RowsToRecords(const pqxx::result& result) {
  std::vector<RequestRecord> records;
  records.reserve(result.size());
  for (const auto& row : result) {
    AIRLOCK_ASSIGN_OR_RETURN(RequestRecord record, RecordFromRow(RowView(row)));
    records.push_back(std::move(record));
  }
  return records;
}

// The schema version recorded in the database (0: none yet).
int StoredSchemaVersion(pqxx::transaction_base& tx) {
  if (!tx.exec1("SELECT to_regclass('schema_version') IS NOT NULL")[0].as<bool>()) return 0;
  return tx.exec1("SELECT coalesce(max(version), 0) FROM schema_version")[0].as<int>();
}

pg::TargetOptions TargetOptionsOf(const PostgresStateStoreOptions& options) {
  pg::TargetOptions target;
  target.tls = options.tls;
  target.connect_timeout_seconds = options.connect_timeout_seconds;
  return target;
}

// A Save waiting for the writer; lives on the caller's stack until the
// writer posts `committed` (after setting `status`). The caller builds its
// entry of the group's JSON array, so the writer only concatenates.
struct PendingSave {
  const RequestRecord* record = nullptr;
  std::string entry;
  Status status;
  OneShotSignal<bool> committed;
};

using Connection = std::unique_ptr<pqxx::connection>;

class PostgresStateStoreImpl final : public PostgresStateStore {
 public:
  PostgresStateStoreImpl(pg::Target target, PostgresStateStoreOptions options)
      : target_(std::move(target)),
        options_(options),
        free_readers_(std::max<size_t>(1, options.read_connections)) {}

  ~PostgresStateStoreImpl() override {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    writer_cv_.notify_all();
    if (writer_thread_.joinable()) writer_thread_.join();
  }

  Status Init();

  Status SaveWithOutbox(const RequestRecord& record,
                        const std::vector<OutboxMessage>& outbox) override;
  Status EnqueueOutbox(const std::vector<OutboxMessage>& messages) override;
  Result<std::vector<OutboxMessage>> ClaimOutbox(std::string_view notifier,
                                                 std::string_view claimer, int64_t now_us,
                                                 int64_t lease_us, size_t limit) override;
  Result<bool> SettleOutbox(std::string_view id, std::string_view claimer, OutboxOutcome outcome,
                            int64_t next_attempt_at_us, std::string_view error,
                            int64_t now_us) override;
  Result<std::optional<OutboxMessage>> LoadOutbox(std::string_view id) override;
  Result<OutboxCounts> CountOutbox(std::string_view notifier) override;
  Result<size_t> PurgeOutbox(int64_t before_us) override;
  Result<size_t> ReleaseOutboxClaims(std::string_view claimer) override;
  Result<std::optional<RequestRecord>> Load(std::string_view id) override;
  Result<std::shared_ptr<const StoredRequestText>> LoadText(std::string_view id) override;
  Result<RequestPage> List(const RequestFilter& filter) override;
  Result<std::vector<RequestRecord>> LoadActive() override;
  Result<int64_t> AcquireLease(const ReplicaHeartbeat& beat) override;
  Status RecordHeartbeat(const ReplicaHeartbeat& beat) override;
  Result<bool> FenceReplica(std::string_view replica_id, int64_t lease_epoch,
                            int64_t stale_after_us) override;
  Status ReleaseLease(std::string_view replica_id, int64_t lease_epoch) override;
  Result<std::vector<ReplicaStatus>> ListReplicas() override;
  Status RecordAgentLinks(std::string_view replica_id, const std::vector<std::string>& held,
                          const std::vector<std::string>& claimed) override;
  Result<std::vector<AgentLink>> ListAgentLinks() override;
  Result<bool> SuspendSite(const SiteSuspension& suspension) override;
  Result<bool> ResumeSite(std::string_view agent) override;
  Result<std::vector<SiteSuspension>> ListSiteSuspensions() override;
  Status RecordSiteCatalog(const StoredSiteCatalog& catalog) override;
  Result<std::vector<StoredSiteCatalog>> ListSiteCatalogs() override;

  uint64_t commit_count() const override { return commit_count_.load(std::memory_order_relaxed); }
  uint64_t save_count() const override { return save_count_.load(std::memory_order_relaxed); }
  uint64_t round_trip_count() const override {
    return round_trip_count_.load(std::memory_order_relaxed);
  }
  const std::string& target() const override { return target_.Describe(); }

 private:
  // A pooled read connection (null until connected), returned on scope exit.
  class ReaderLease {
   public:
    ReaderLease(PostgresStateStoreImpl* store, Connection conn)
        : store_(store), conn_(std::move(conn)) {}
    ~ReaderLease() { store_->ReleaseReader(std::move(conn_)); }
    ReaderLease(const ReaderLease&) = delete;
    ReaderLease& operator=(const ReaderLease&) = delete;
    Connection& conn() { return conn_; }

   private:
    PostgresStateStoreImpl* store_;
    Connection conn_;
  };

  Result<Connection> Connect() const;
  ReaderLease AcquireReader();
  void ReleaseReader(Connection conn);

  void DropIdleReaders() {
    std::vector<Connection> dropped;
    std::lock_guard lock(pool_mu_);
    dropped.swap(idle_);
  }

  // Runs `read` in a nontransaction on a pooled connection. A pooled
  // connection found broken is dropped and the read tried once more on a
  // fresh one (the server may have restarted since it was last used).
  template <class Read>
  auto WithReader(std::string_view what, Read read)
      -> decltype(read(std::declval<pqxx::nontransaction&>())) {
    using Answer = decltype(read(std::declval<pqxx::nontransaction&>()));
    for (int attempt = 0;; ++attempt) {
      ReaderLease lease = AcquireReader();
      bool fresh = false;
      if (!lease.conn()) {
        Result<Connection> connected = Connect();
        if (!connected.ok()) return Answer(connected.status());
        lease.conn() = std::move(connected).value();
        fresh = true;
      }
      try {
        pqxx::nontransaction tx(*lease.conn());
        return read(tx);
      } catch (const std::exception& e) {
        const bool broken =
            dynamic_cast<const pqxx::broken_connection*>(&e) != nullptr || !lease.conn()->is_open();
        if (broken) {
          lease.conn().reset();
          // Whatever broke this one (a server restart) broke its idle
          // siblings too: the retry connects afresh.
          DropIdleReaders();
          if (!fresh && attempt == 0) continue;
        }
        return Answer(target_.Failure(what, e));
      }
    }
  }

  template <class T, class FromRow>
  Result<std::optional<T>> LoadRow(std::string_view id, FromRow from_row) {
    if (id.empty() || id.size() > kMaxRequestIdBytes) return std::optional<T>();
    const std::string key(id);
    return WithReader("loading request", [&](pqxx::nontransaction& tx) -> Result<std::optional<T>> {
      const pqxx::result result = tx.exec_prepared(kLoadStatement, key);
      if (result.empty()) return std::optional<T>();
      AIRLOCK_ASSIGN_OR_RETURN(T value, from_row(RowView(result[0])));
      return std::optional<T>(std::move(value));
    });
  }

  void WriterLoop();
  void CommitGroup(const std::vector<PendingSave*>& group);

  const pg::Target target_;
  const PostgresStateStoreOptions options_;

  Connection writer_;  // writer thread only (after Init)

  std::mutex pool_mu_;
  std::condition_variable pool_cv_;
  size_t free_readers_;           // guarded by pool_mu_
  std::vector<Connection> idle_;  // guarded by pool_mu_; connected ones

  std::mutex mu_;
  std::condition_variable writer_cv_;  // queue_ gained an entry or stopping_
  std::deque<PendingSave*> queue_;     // guarded by mu_
  bool stopping_ = false;              // guarded by mu_
  std::thread writer_thread_;

  std::atomic<uint64_t> commit_count_{0};
  std::atomic<uint64_t> save_count_{0};
  std::atomic<uint64_t> round_trip_count_{0};
};

Result<Connection> PostgresStateStoreImpl::Connect() const {
  AIRLOCK_ASSIGN_OR_RETURN(Connection conn, target_.Connect());
  try {
    PrepareStatements(*conn);
  } catch (const std::exception& e) {
    return target_.Failure("preparing state store statements", e);
  }
  return conn;
}

Status PostgresStateStoreImpl::Init() {
  AIRLOCK_ASSIGN_OR_RETURN(writer_, Connect());
  const std::string store = "PostgreSQL state store " + target_.Describe();
  int version = 0;
  try {
    pqxx::nontransaction tx(*writer_);
    version = StoredSchemaVersion(tx);
  } catch (const std::exception& e) {
    return target_.Failure("reading the schema version", e);
  }
  const int latest = LatestSchemaVersion(kMigrations);
  if (version == 0) {
    return Status::FailedPrecondition(store +
                                      " has no Airlock schema: run `airlockd state migrate "
                                      "--config FILE` once before starting the kernel");
  }
  if (version > latest) return SchemaNewerThanBinary(store, version, latest);
  if (version < latest) {
    return Status::FailedPrecondition(store + ": schema version " + std::to_string(version) +
                                      " is older than this kernel's (" + std::to_string(latest) +
                                      "): run `airlockd state migrate --config FILE`");
  }
  writer_thread_ = std::thread([this] { WriterLoop(); });
  return Status::Ok();
}

PostgresStateStoreImpl::ReaderLease PostgresStateStoreImpl::AcquireReader() {
  std::unique_lock lock(pool_mu_);
  pool_cv_.wait(lock, [&] { return free_readers_ > 0; });
  --free_readers_;
  Connection conn;
  if (!idle_.empty()) {
    conn = std::move(idle_.back());
    idle_.pop_back();
  }
  return ReaderLease(this, std::move(conn));
}

void PostgresStateStoreImpl::ReleaseReader(Connection conn) {
  {
    std::lock_guard lock(pool_mu_);
    ++free_readers_;
    if (conn) idle_.push_back(std::move(conn));
  }
  pool_cv_.notify_one();
}

Status PostgresStateStoreImpl::SaveWithOutbox(const RequestRecord& record,
                                              const std::vector<OutboxMessage>& outbox) {
  AIRLOCK_ASSIGN_OR_RETURN(SerializedRecord serialized,
                           SerializeForSave(record, options_.max_record_bytes, /*text_only=*/true));
  AIRLOCK_RETURN_IF_ERROR(ValidateOutbox(outbox));
  AIRLOCK_RETURN_IF_ERROR(CheckOutboxTextOnly(outbox));
  PendingSave save;
  save.record = &record;
  try {
    nlohmann::json entry = {{"id", record.id},
                            {"state", serialized.state},
                            {"version", record.version},
                            {"subject", serialized.requester_subject},
                            {"tenant", serialized.tenant},
                            {"created", record.created_at_us},
                            {"updated", record.updated_at_us},
                            {"deadline", record.deadline_us},
                            {"reason", record.reason},
                            {"token", RandomHex(16)}};
    for (size_t i = 0; i < serialized.documents.size(); ++i) {
      entry[kStoredDocumentNames[i]] = std::move(serialized.documents[i]);
    }
    if (!outbox.empty()) entry["outbox"] = OutboxJson(outbox);
    save.entry = entry.dump();
  } catch (const nlohmann::json::exception& e) {
    // The id, reason or subject, or a message's text, is not valid UTF-8.
    return Status::InvalidArgument("request " + record.id + ": cannot serialize: " + e.what());
  }

  std::unique_lock lock(mu_);
  if (stopping_) return Status::Unavailable("state store is shutting down");
  if (queue_.size() >= options_.max_pending) {
    return Status::ResourceExhausted("state store write queue is full");
  }
  queue_.push_back(&save);
  lock.unlock();
  writer_cv_.notify_one();
  save.committed.Wait();
  return save.status;
}

void PostgresStateStoreImpl::WriterLoop() {
  std::vector<PendingSave*> group;
  const size_t max_batch = std::max<size_t>(1, options_.max_batch);
  std::unique_lock lock(mu_);
  while (true) {
    writer_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and every queued Save was answered
    // At least one Save; then as many as fit both bounds.
    size_t n = 0, bytes = 0;
    while (n < queue_.size() && n < max_batch &&
           (n == 0 || bytes + queue_[n]->entry.size() <= options_.max_batch_bytes)) {
      bytes += queue_[n]->entry.size();
      ++n;
    }
    group.assign(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
    queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
    lock.unlock();
    CommitGroup(group);
    for (PendingSave* save : group) save->committed.Post(true);
    group.clear();
    lock.lock();
  }
}

void PostgresStateStoreImpl::CommitGroup(const std::vector<PendingSave*>& group) {
  save_count_.fetch_add(group.size(), std::memory_order_relaxed);
  auto fail_all = [&](const Status& status) {
    for (PendingSave* save : group) save->status = status;
  };
  size_t bytes = 2;
  for (const PendingSave* save : group) bytes += save->entry.size() + 1;
  std::string payload;
  payload.reserve(bytes);
  payload += '[';
  for (size_t i = 0; i < group.size(); ++i) {
    if (i > 0) payload += ',';
    payload += group[i]->entry;
  }
  payload += ']';

  constexpr int kMaxRollbackRetries = 5;
  bool resent_after_break = false;
  int rollback_retries = 0;
  while (true) {
    if (!writer_) {
      Result<Connection> connected = Connect();
      if (!connected.ok()) {
        fail_all(connected.status());
        return;
      }
      writer_ = std::move(connected).value();
    }
    try {
      pqxx::nontransaction tx(*writer_);
      round_trip_count_.fetch_add(1, std::memory_order_relaxed);
      const pqxx::result result = tx.exec_prepared(kSaveStatement, payload);
      if (result.size() != group.size()) {
        fail_all(Status::Internal("the state store answered " + std::to_string(result.size()) +
                                  " outcomes for " + std::to_string(group.size()) + " saves"));
        return;
      }
      for (const auto& row : result) {
        const auto ord = row[0].as<int64_t>();
        if (ord < 1 || ord > static_cast<int64_t>(group.size())) {
          fail_all(Status::Internal("the state store answered an unknown save position"));
          return;
        }
        PendingSave* save = group[static_cast<size_t>(ord - 1)];
        if (row[1].as<bool>()) {
          save->status = Status::Ok();
        } else {
          std::optional<int64_t> stored;
          if (!row[2].is_null()) stored = row[2].as<int64_t>();
          save->status = SaveConflict(*save->record, stored);
        }
      }
      commit_count_.fetch_add(1, std::memory_order_relaxed);
      return;
    } catch (const pqxx::transaction_rollback& e) {
      // Deadlock or serialization failure: nothing was applied; try again.
      if (++rollback_retries <= kMaxRollbackRetries) continue;
      fail_all(target_.Failure("saving requests", e));
      return;
    } catch (const std::exception& e) {
      const bool broken = dynamic_cast<const pqxx::broken_connection*>(&e) != nullptr ||
                          dynamic_cast<const pqxx::in_doubt_error*>(&e) != nullptr ||
                          !writer_->is_open();
      if (!broken) {
        fail_all(target_.Failure("saving requests", e));
        return;
      }
      // The group may or may not have committed; its write tokens make
      // sending it again safe (see the header). Once: a server that is down
      // answers Unavailable now, and the next group connects again.
      writer_.reset();
      if (!resent_after_break) {
        resent_after_break = true;
        continue;
      }
      fail_all(target_.Failure("saving requests", e));
      return;
    }
  }
}

Result<std::optional<RequestRecord>> PostgresStateStoreImpl::Load(std::string_view id) {
  return LoadRow<RequestRecord>(id, RecordFromRow);
}

Result<std::shared_ptr<const StoredRequestText>> PostgresStateStoreImpl::LoadText(
    std::string_view id) {
  AIRLOCK_ASSIGN_OR_RETURN(std::optional<StoredRequestText> row,
                           LoadRow<StoredRequestText>(id, TextFromRow));
  if (!row) return std::shared_ptr<const StoredRequestText>();
  return std::shared_ptr<const StoredRequestText>(
      std::make_shared<const StoredRequestText>(std::move(*row)));
}

Result<RequestPage> PostgresStateStoreImpl::List(const RequestFilter& filter) {
  if (filter.limit == 0) return Status::InvalidArgument("list limit must be at least 1");
  const size_t limit = std::min(filter.limit, kMaxListLimit);
  std::optional<PageCursor> cursor;
  if (!filter.page_token.empty()) {
    AIRLOCK_ASSIGN_OR_RETURN(cursor, DecodePageToken(filter.page_token));
  }
  // Save refuses a subject or tenant with a NUL byte, so none matches; sent
  // as a C string, such a filter would arrive cut and match another one.
  if ((filter.requester_subject && HasNul(*filter.requester_subject)) ||
      (filter.tenant && HasNul(*filter.tenant))) {
    return RequestPage{};
  }
  const int variant = (filter.state ? 1 : 0) | (filter.requester_subject ? 2 : 0) |
                      (cursor ? 4 : 0) | (filter.tenant ? 8 : 0);
  std::vector<std::string> params;
  if (filter.state) params.emplace_back(RequestStateName(*filter.state));
  if (filter.requester_subject) params.push_back(*filter.requester_subject);
  if (filter.tenant) params.push_back(*filter.tenant);
  if (cursor) {
    params.push_back(std::to_string(cursor->created_at_us));
    params.push_back(cursor->id);
  }
  // One extra row tells whether another page follows.
  params.push_back(std::to_string(limit + 1));

  return WithReader("listing requests", [&](pqxx::nontransaction& tx) -> Result<RequestPage> {
    const pqxx::result result =
        tx.exec_prepared(ListStatement(variant), pqxx::prepare::make_dynamic_params(params));
    RequestPage page;
    AIRLOCK_ASSIGN_OR_RETURN(page.records, RowsToRecords(result));
    if (page.records.size() > limit) {
      page.records.resize(limit);
      const RequestRecord& last = page.records.back();
      page.next_page_token = EncodePageToken(PageCursor{last.created_at_us, last.id});
    }
    return page;
  });
}

Result<std::vector<RequestRecord>> PostgresStateStoreImpl::LoadActive() {
  return WithReader("loading active requests",
                    [&](pqxx::nontransaction& tx) -> Result<std::vector<RequestRecord>> {
                      return RowsToRecords(tx.exec_prepared(kActiveStatement));
                    });
}

Result<int64_t> PostgresStateStoreImpl::AcquireLease(const ReplicaHeartbeat& beat) {
  AIRLOCK_RETURN_IF_ERROR(ValidateHeartbeat(beat));
  return WithReader("acquiring the replica lease",
                    [&](pqxx::nontransaction& tx) -> Result<int64_t> {
                      return tx
                          .exec_prepared1(kAcquireLeaseStatement, beat.replica_id, beat.version,
                                          beat.api_url, beat.started_at_us)[0]
                          .as<int64_t>();
                    });
}

Status PostgresStateStoreImpl::RecordHeartbeat(const ReplicaHeartbeat& beat) {
  AIRLOCK_RETURN_IF_ERROR(ValidateHeartbeat(beat));
  return WithReader("recording the heartbeat", [&](pqxx::nontransaction& tx) -> Status {
    const pqxx::result renewed = tx.exec_prepared(kHeartbeatStatement, beat.replica_id,
                                                  beat.version, beat.api_url, beat.lease_epoch);
    if (renewed.affected_rows() == 0) return LeaseLost(beat.replica_id, beat.lease_epoch);
    return Status::Ok();
  });
}

Result<bool> PostgresStateStoreImpl::FenceReplica(std::string_view replica_id, int64_t lease_epoch,
                                                  int64_t stale_after_us) {
  return WithReader("fencing a replica", [&](pqxx::nontransaction& tx) -> Result<bool> {
    return tx.exec_prepared(kFenceStatement, std::string(replica_id), lease_epoch, stale_after_us)
               .affected_rows() == 1;
  });
}

Status PostgresStateStoreImpl::ReleaseLease(std::string_view replica_id, int64_t lease_epoch) {
  return WithReader("releasing the replica lease", [&](pqxx::nontransaction& tx) -> Status {
    tx.exec_prepared(kReleaseLeaseStatement, std::string(replica_id), lease_epoch);
    return Status::Ok();
  });
}

Result<std::vector<ReplicaStatus>> PostgresStateStoreImpl::ListReplicas() {
  return WithReader("listing replicas",
                    [&](pqxx::nontransaction& tx) -> Result<std::vector<ReplicaStatus>> {
                      std::vector<ReplicaStatus> out;
                      for (const auto& row : tx.exec_prepared(kReplicasStatement)) {
                        ReplicaStatus status;
                        status.replica_id = row[0].as<std::string>();
                        status.version = row[1].as<std::string>();
                        status.api_url = row[2].as<std::string>();
                        status.started_at_us = row[3].as<int64_t>();
                        status.last_heartbeat_us = row[4].as<int64_t>();
                        status.now_us = row[5].as<int64_t>();
                        status.lease_epoch = row[6].as<int64_t>();
                        out.push_back(std::move(status));
                      }
                      return out;
                    });
}

Status PostgresStateStoreImpl::RecordAgentLinks(std::string_view replica_id,
                                                const std::vector<std::string>& held,
                                                const std::vector<std::string>& claimed) {
  AIRLOCK_RETURN_IF_ERROR(ValidateAgentLinks(replica_id, held, claimed));
  const std::string held_json = nlohmann::json(held).dump();
  const std::string claimed_json = nlohmann::json(claimed).dump();
  return WithReader("recording agent links", [&](pqxx::nontransaction& tx) -> Status {
    tx.exec_prepared(kRecordAgentLinksStatement, std::string(replica_id), held_json, claimed_json);
    return Status::Ok();
  });
}

Result<std::vector<AgentLink>> PostgresStateStoreImpl::ListAgentLinks() {
  return WithReader(
      "listing agent links", [&](pqxx::nontransaction& tx) -> Result<std::vector<AgentLink>> {
        std::vector<AgentLink> out;
        for (const auto& row : tx.exec_prepared(kAgentLinksStatement)) {
          out.push_back({row[0].as<std::string>(), row[1].as<std::string>(), row[2].as<int64_t>()});
        }
        return out;
      });
}

// Suspensions are rare administrative acts: plain statements, not prepared.
Result<bool> PostgresStateStoreImpl::SuspendSite(const SiteSuspension& suspension) {
  AIRLOCK_RETURN_IF_ERROR(ValidateSiteSuspension(suspension));
  return WithReader(
      "suspending site " + suspension.agent, [&](pqxx::nontransaction& tx) -> Result<bool> {
        return tx.exec_params(
                     "INSERT INTO site_suspensions (agent, reason, suspended_by, "
                     "since_us) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                     suspension.agent, suspension.reason, suspension.by, suspension.since_us)
                   .affected_rows() == 1;
      });
}

Result<bool> PostgresStateStoreImpl::ResumeSite(std::string_view agent) {
  return WithReader(
      "resuming site " + std::string(agent), [&](pqxx::nontransaction& tx) -> Result<bool> {
        return tx.exec_params("DELETE FROM site_suspensions WHERE agent = $1", std::string(agent))
                   .affected_rows() == 1;
      });
}

Result<std::vector<SiteSuspension>> PostgresStateStoreImpl::ListSiteSuspensions() {
  return WithReader(
      "listing suspended sites",
      [&](pqxx::nontransaction& tx) -> Result<std::vector<SiteSuspension>> {
        std::vector<SiteSuspension> out;
        for (const auto& row : tx.exec("SELECT agent, reason, suspended_by, since_us FROM "
                                       "site_suspensions ORDER BY agent")) {
          out.push_back({row[0].as<std::string>(), row[1].as<std::string>(),
                         row[2].as<std::string>(), row[3].as<int64_t>()});
        }
        return out;
      });
}

Status PostgresStateStoreImpl::RecordSiteCatalog(const StoredSiteCatalog& catalog) {
  AIRLOCK_RETURN_IF_ERROR(ValidateSiteCatalog(catalog));
  return WithReader("recording the catalog of site " + catalog.agent,
                    [&](pqxx::nontransaction& tx) -> Status {
                      tx.exec_params(
                          "INSERT INTO site_catalogs (agent, datasets, received_at_us) VALUES "
                          "($1, $2, $3) ON CONFLICT (agent) DO UPDATE SET datasets = "
                          "excluded.datasets, received_at_us = excluded.received_at_us WHERE "
                          "excluded.received_at_us >= site_catalogs.received_at_us",
                          catalog.agent, catalog.datasets_json, catalog.received_at_us);
                      return Status::Ok();
                    });
}

Result<std::vector<StoredSiteCatalog>> PostgresStateStoreImpl::ListSiteCatalogs() {
  return WithReader(
      "listing site catalogs",
      [&](pqxx::nontransaction& tx) -> Result<std::vector<StoredSiteCatalog>> {
        std::vector<StoredSiteCatalog> out;
        for (const auto& row : tx.exec("SELECT agent, datasets, received_at_us FROM site_catalogs "
                                       "ORDER BY agent")) {
          out.push_back({row[0].as<std::string>(), row[1].as<std::string>(), row[2].as<int64_t>()});
        }
        return out;
      });
}

Status PostgresStateStoreImpl::EnqueueOutbox(const std::vector<OutboxMessage>& messages) {
  AIRLOCK_RETURN_IF_ERROR(ValidateOutbox(messages));
  AIRLOCK_RETURN_IF_ERROR(CheckOutboxTextOnly(messages));
  if (messages.empty()) return Status::Ok();
  std::string json;
  try {
    json = OutboxJson(messages).dump();
  } catch (const nlohmann::json::exception& e) {
    return Status::InvalidArgument(std::string("outbox message is not valid UTF-8: ") + e.what());
  }
  // One statement: the messages are queued together or not at all, and
  // sending it again (a retry on a fresh connection) queues nothing twice.
  return WithReader("queueing outbox messages", [&](pqxx::nontransaction& tx) -> Status {
    tx.exec_prepared(kOutboxEnqueueStatement, json);
    return Status::Ok();
  });
}

Result<std::vector<OutboxMessage>> PostgresStateStoreImpl::ClaimOutbox(std::string_view notifier,
                                                                       std::string_view claimer,
                                                                       int64_t now_us,
                                                                       int64_t lease_us,
                                                                       size_t limit) {
  AIRLOCK_RETURN_IF_ERROR(ValidateOutboxClaim(notifier, claimer, lease_us, limit));
  if (HasNul(notifier) || HasNul(claimer)) {
    return Status::InvalidArgument("notifier and claimer names must not contain NUL bytes");
  }
  const std::string notifier_text(notifier), claimer_text(claimer);
  const int64_t until = OutboxClaimUntil(now_us, lease_us);
  auto claimed = WithReader(
      "claiming outbox messages",
      [&](pqxx::nontransaction& tx) -> Result<std::vector<OutboxMessage>> {
        std::vector<OutboxMessage> out;
        for (const auto& row : tx.exec_prepared(kOutboxClaimStatement, notifier_text, claimer_text,
                                                now_us, until, static_cast<int64_t>(limit))) {
          AIRLOCK_ASSIGN_OR_RETURN(OutboxMessage message, RowToOutbox(row));
          out.push_back(std::move(message));
        }
        return out;
      });
  if (!claimed.ok()) return claimed.status();
  std::sort(claimed->begin(), claimed->end(), [](const OutboxMessage& a, const OutboxMessage& b) {
    return std::tie(a.next_attempt_at_us, a.created_at_us, a.id) <
           std::tie(b.next_attempt_at_us, b.created_at_us, b.id);
  });
  return claimed;
}

Result<bool> PostgresStateStoreImpl::SettleOutbox(std::string_view id, std::string_view claimer,
                                                  OutboxOutcome outcome, int64_t next_attempt_at_us,
                                                  std::string_view error, int64_t now_us) {
  if (!CouldHoldOutboxClaim(id, claimer) || HasNul(id) || HasNul(claimer)) return false;
  const OutboxSettlement settlement = SettlementOf(outcome, next_attempt_at_us, now_us);
  const std::string id_text(id), claimer_text(claimer);
  const std::string error_text = OutboxErrorText(error);
  return WithReader("settling an outbox message", [&](pqxx::nontransaction& tx) -> Result<bool> {
    return tx.exec_prepared(kOutboxSettleStatement, id_text, claimer_text,
                            std::string(OutboxStatusName(settlement.status)), error_text,
                            settlement.settled_at_us, settlement.next_attempt_at_us.value_or(0))
               .affected_rows() == 1;
  });
}

Result<std::optional<OutboxMessage>> PostgresStateStoreImpl::LoadOutbox(std::string_view id) {
  if (id.empty() || id.size() > kMaxOutboxIdBytes || HasNul(id)) {
    return std::optional<OutboxMessage>();
  }
  const std::string key(id);
  return WithReader("loading an outbox message",
                    [&](pqxx::nontransaction& tx) -> Result<std::optional<OutboxMessage>> {
                      const pqxx::result result = tx.exec_prepared(kOutboxLoadStatement, key);
                      if (result.empty()) return std::optional<OutboxMessage>();
                      AIRLOCK_ASSIGN_OR_RETURN(OutboxMessage message, RowToOutbox(result[0]));
                      return std::optional<OutboxMessage>(std::move(message));
                    });
}

Result<OutboxCounts> PostgresStateStoreImpl::CountOutbox(std::string_view notifier) {
  if (HasNul(notifier)) return OutboxCounts{};  // no notifier is named so
  const std::string name(notifier);
  return WithReader("counting the outbox", [&](pqxx::nontransaction& tx) -> Result<OutboxCounts> {
    const pqxx::result result = name.empty() ? tx.exec_prepared(kOutboxCountAllStatement)
                                             : tx.exec_prepared(kOutboxCountOneStatement, name);
    OutboxCounts counts;
    for (const auto& row : result) {
      AddOutboxCount(FieldText(row[0]), row[1].as<int64_t>(), &counts);
    }
    return counts;
  });
}

Result<size_t> PostgresStateStoreImpl::PurgeOutbox(int64_t before_us) {
  return WithReader("purging the outbox", [&](pqxx::nontransaction& tx) -> Result<size_t> {
    return static_cast<size_t>(tx.exec_prepared(kOutboxPurgeStatement, before_us).affected_rows());
  });
}

Result<size_t> PostgresStateStoreImpl::ReleaseOutboxClaims(std::string_view claimer) {
  return WithReader("releasing outbox claims", [&](pqxx::nontransaction& tx) -> Result<size_t> {
    return static_cast<size_t>(
        tx.exec_prepared(kOutboxReleaseStatement, std::string(claimer)).affected_rows());
  });
}

}  // namespace

int PostgresStateSchemaVersion() {
  return LatestSchemaVersion(kMigrations);
}

Result<std::unique_ptr<PostgresStateStore>> PostgresStateStore::Open(
    const Secret& dsn, PostgresStateStoreOptions options) {
  AIRLOCK_ASSIGN_OR_RETURN(pg::Target target, pg::Target::Parse(dsn, TargetOptionsOf(options)));
  auto store = std::make_unique<PostgresStateStoreImpl>(std::move(target), options);
  AIRLOCK_RETURN_IF_ERROR(store->Init());
  return std::unique_ptr<PostgresStateStore>(std::move(store));
}

Result<std::string> PostgresStateStore::CheckTarget(const Secret& dsn,
                                                    const PostgresStateStoreOptions& options) {
  AIRLOCK_ASSIGN_OR_RETURN(pg::Target target, pg::Target::Parse(dsn, TargetOptionsOf(options)));
  return target.Describe();
}

Result<SchemaMigrationReport> PostgresStateStore::Migrate(
    const Secret& dsn, const PostgresStateStoreOptions& options) {
  AIRLOCK_ASSIGN_OR_RETURN(pg::Target target, pg::Target::Parse(dsn, TargetOptionsOf(options)));
  AIRLOCK_ASSIGN_OR_RETURN(Connection conn, target.Connect());
  const std::string store = "PostgreSQL state store " + target.Describe();
  SchemaMigrationReport report;
  report.store = "postgres " + target.Describe();
  try {
    pqxx::work tx(*conn);
    tx.exec(kMigrationLock);
    tx.exec0(kSchemaVersionTable);
    report.from_version = StoredSchemaVersion(tx);
    auto pending = PendingMigrations(kMigrations, report.from_version, store);
    if (!pending.ok()) return pending.status();
    for (const SchemaMigration* migration : *pending) {
      tx.exec(migration->sql);
      tx.exec_params0("INSERT INTO schema_version (version, description) VALUES ($1, $2)",
                      migration->version, std::string(migration->description));
    }
    tx.commit();
  } catch (const std::exception& e) {
    return target.Failure("migrating the schema", e);
  }
  report.to_version = LatestSchemaVersion(kMigrations);
  return report;
}

}  // namespace airlock
