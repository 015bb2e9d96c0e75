#!/usr/bin/env python3
"""Writes the seed corpora under tests/fuzz/corpus/<target>/ (committed).

The seeds are small, valid or nearly valid inputs in each target's input
format (see the comment at the top of each fuzz_<target>.cc); the fuzzers grow
their own corpora from them. Rerun after changing a format:
    tests/fuzz/make_seeds.py
"""
import base64
import hashlib
import json
import os
import re
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")


def write(target, name, data):
    directory = os.path.join(CORPUS, target)
    os.makedirs(directory, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)


def compact(doc):
    return json.dumps(doc, separators=(",", ":"))


# --- HTTP API ---------------------------------------------------------------

def http_request():
    body = compact({"datasets": ["customers", "orders"], "window_seconds": 3600,
                    "purpose": "quarterly report", "mode": "interactive"})
    write("http_request", "post_requests",
          "POST /v1/requests HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
          "Authorization: Bearer tok_alice\r\nContent-Type: application/json\r\n"
          f"Content-Length: {len(body)}\r\n\r\n{body}")
    write("http_request", "get_list_pipelined",
          "GET /v1/requests?state=ready&limit=10&mine=true HTTP/1.1\r\nHost: x\r\n\r\n"
          "GET /v1/requests/req_01%2Fx?page_token=a+b%20c HTTP/1.1\r\nHost: x\r\n"
          "X-Echo-Trace: abc\r\nConnection: close\r\n\r\n")
    write("http_request", "chunked_approve",
          "POST /v1/requests/req_1/approve HTTP/1.1\r\nHost: x\r\n"
          "Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
          "d\r\n{\"comment\":1}\r\n0\r\n\r\n")
    write("http_request", "http10_head", "HEAD /healthz HTTP/1.0\r\nX-Content-Type: text/plain\r\n\r\n")
    write("http_request", "expect_continue",
          "PUT /v1/admin/policy/reload HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
          "Content-Length: 2\r\n\r\n{}")


# --- JSON request bodies ----------------------------------------------------

def json_body():
    write("json_body", "create_interactive",
          compact({"datasets": ["customers"], "window_seconds": 600, "purpose": "audit",
                   "mode": "interactive"}))
    write("json_body", "create_job",
          compact({"datasets": ["orders"], "mode": "job",
                   "queries": ["SELECT count(*) FROM orders", "SELECT 1"]}))
    write("json_body", "policy_input", compact({
        "principal": {"subject": "alice", "kind": "human", "groups": ["analysts"],
                      "tenant": "acme", "attributes": {"issuer": "https://issuer"}},
        "request": {"id": "req_1", "datasets": ["customers"], "window_seconds": 60},
        "datasets": [{"name": "customers", "connector": "files", "tags": ["pii"],
                      "columns": [{"name": "id", "type": "int64"}]}],
        "now": 1767225600}))
    write("json_body", "decision", compact({
        "effect": "needs_approval", "reason": "pii", "rule": "r1", "max_window_seconds": 60,
        "approval": {"groups": ["owners"], "count": 2, "timeout_seconds": 30},
        "obligations": {"customers": {
            "columns": ["id", "email", "country"], "masks": {"email": "hash"},
            "row_filter": [{"column": "country", "op": "in", "value": ["DE", "AT"]},
                           {"column": "id", "op": "ge", "value": 10},
                           {"column": "email", "op": "is_null"}]}}}))
    write("json_body", "pull_spec", compact({
        "dataset": "customers", "object": "customers.csv",
        "scope": {"columns": ["id"], "masks": {"id": "last4"},
                  "row_filter": [{"column": "id", "op": "like", "value": "4%"}]}}))
    write("json_body", "comment", compact({"comment": "ok \u00e9 \ud83d\ude00"}))


# --- kernel configuration ---------------------------------------------------

def kernel_config():
    with open(os.path.join(HERE, "..", "..", "configs", "quickstart.json")) as f:
        quickstart = json.load(f)
    quickstart["policy"]["config_file"] = "policy.json"
    write("kernel_config", "quickstart", json.dumps(quickstart))
    full = {
        "server": {"listen_address": "::1", "port": 0, "body_limit_bytes": 4096,
                   "max_header_count": 10, "read_timeout_ms": 1000, "io_threads": 1,
                   "handler_threads": 2},
        "state_dir": "state",
        "plugin_dir": "plugins",
        "identity": [{"name": "jwt", "plugin": "airlock_identity_oidc_jwt",
                      "sha256": "A" * 64, "config": {"issuer": "x"}}],
        "policy": {"plugin": "airlock_policy_rules.so", "config_file": "broken.json"},
        "isolator": {"plugin": "airlock_isolator_inprocess.so"},
        "tunnel": {"plugin": "airlock_tunnel_pgwire.so", "config": {}},
        "connectors": {
            "pg": {"plugin": "airlock_connector_postgres.so", "egress": ["db.internal:5432"],
                   "agent": "site-a", "config": {"password": "env:PGPASSWORD"}},
            "files": {"plugin": "airlock_connector_files.so", "read_paths": ["data/../x"]}},
        "datasets": [
            {"name": "orders", "connector": "pg", "object": "public.orders", "tags": ["sales"]},
            {"name": "customers", "connector": "files", "object": "customers.csv"}],
        "access": {"admin_groups": ["admins"], "reviewer_groups": ["owners"]},
        "limits": {"max_window_seconds": 600, "default_window_seconds": 60,
                   "approval_timeout_seconds": 60, "query_timeout_ms": 100,
                   "max_result_rows": 10, "enclave_memory_bytes": 1048576,
                   "max_datasets_per_request": 2, "provision_timeout_ms": 1000,
                   "job_results_retention_seconds": 60, "max_job_result_bytes": 1024},
        "agents": {"listen_address": "127.0.0.1", "port": 0, "server_names": ["kernel.local"],
                   "certificate_lifetime_seconds": 3600, "heartbeat_interval_ms": 1000,
                   "offline_after_ms": 3000, "provision_timeout_ms": 1000,
                   "agents": {"site-a": {"enrollment_token_sha256": "b" * 64}}}}
    write("kernel_config", "everything", json.dumps(full))


# --- policy files -----------------------------------------------------------

def policy_rules():
    with open(os.path.join(HERE, "..", "..", "configs", "quickstart-policy.json")) as f:
        write("policy_rules", "quickstart", f.read())
    doc = {"version": 1, "default_max_window_seconds": 3600, "rules": [
        {"name": "freeze", "effect": "deny", "subjects": {"kinds": ["agent", "service"]},
         "tags": ["finance"], "when": {"timezone": "Europe/Berlin", "days": ["fri"],
                                       "from": "18:00", "to": "06:00"}},
        {"name": "analysts", "effect": "allow",
         "subjects": {"groups": ["analysts"], "kinds": ["human"], "tenants": ["acme"]},
         "datasets": ["orders", "customers"], "purposes": ["quarterly report"],
         "max_window_seconds": 7200,
         "approval": {"groups": ["owners"], "count": 1, "timeout_seconds": 86400},
         "obligations": {"customers": {"columns": ["id", "email"], "masks": {"email": "hash"},
                                       "row_filter": [{"column": "id", "op": "in",
                                                       "value": [1, 2]}]},
                         "*": {"masks": {"email": "last4"}}}},
        {"name": "agents", "effect": "allow", "subjects": {"users": ["bot-7"]},
         "datasets": ["*"], "when": {"timezone": "UTC", "days": ["mon", "thu"],
                                    "from": "00:00", "to": "23:59"}}]}
    write("policy_rules", "rules", json.dumps(doc))


# --- pgwire -----------------------------------------------------------------

def pg_message(kind, body):
    return kind.encode() + struct.pack(">i", len(body) + 4) + body


def cstr(text):
    return text.encode() + b"\0"


def pgwire():
    ssl = struct.pack(">ii", 8, 80877103)
    params = cstr("user") + cstr("req_1") + cstr("database") + cstr("req_1") + \
        cstr("application_name") + cstr("psql") + cstr("_pq_.opt") + cstr("1") + b"\0"
    startup = struct.pack(">ii", len(params) + 8, 196608) + params
    first = b"n,,n=,r=rOprNGfwEbeRWgbNEkqO"
    sasl = pg_message("p", cstr("SCRAM-SHA-256") + struct.pack(">i", len(first)) + first)
    final = pg_message("p", b"c=biws,r=@NONCE@,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
    query = pg_message("Q", cstr("BEGIN; SELECT 'a;b' AS \"x;\" /* ; */, $tag$;$tag$; SHOW search_path"))
    parse = pg_message("P", cstr("s1") + cstr("SELECT $1::int, $2, E'\\'' -- $3\n") +
                       struct.pack(">hii", 2, 23, 25))
    bind = pg_message("B", cstr("p1") + cstr("s1") + struct.pack(">hhh", 2, 0, 1) +
                      struct.pack(">h", 2) + struct.pack(">i", 2) + b"42" +
                      struct.pack(">i", 4) + b"ab'c" + struct.pack(">hh", 1, 1))
    describe = pg_message("D", b"P" + cstr("p1"))
    execute = pg_message("E", cstr("p1") + struct.pack(">i", 0))
    close = pg_message("C", b"S" + cstr("s1"))
    sync = pg_message("S", b"")
    terminate = pg_message("X", b"")
    write("pgwire", "session", ssl + startup + sasl + final + query + parse + bind + describe +
          execute + close + sync + terminate)
    cancel = struct.pack(">iiii", 16, 80877102, 1234, 5678)
    write("pgwire", "cancel", cancel)
    parse_null = pg_message("P", cstr("") + cstr("SELECT $1, $2, $3") + struct.pack(">hiii", 3, 16, 17, 1114))
    bind_null = pg_message("B", cstr("") + cstr("") + struct.pack(">h", 1) + struct.pack(">h", 1) +
                           struct.pack(">h", 3) + struct.pack(">i", -1) +
                           struct.pack(">i", 1) + b"\x01" + struct.pack(">i", 8) + b"\0" * 8 +
                           struct.pack(">h", 0))
    write("pgwire", "binary_params", startup + sasl + final + parse_null + bind_null + sync)


# --- HTTPS tunnel -----------------------------------------------------------

def https_query():
    body = compact({"sql": "SELECT * FROM customers WHERE email LIKE '%@x'"})
    write("https_query", "query_json",
          "POST /t/req_1/query?format=csv HTTP/1.1\r\nHost: x\r\n"
          "Authorization: Bearer abc.def\r\nContent-Type: application/json\r\n"
          f"Content-Length: {len(body)}\r\n\r\n{body}")
    write("https_query", "query_sql",
          "POST /t/req_1/query HTTP/1.1\r\nHost: x\r\nAccept: text/csv\r\n"
          "Content-Type: application/sql\r\nContent-Length: 8\r\n\r\nSELECT 1")
    write("https_query", "tables",
          "GET /t/req_1/tables/my%20table%C3%A9 HTTP/1.1\r\nHost: x\r\n\r\n"
          "GET /t/req_1/session HTTP/1.1\r\n\r\nGET /t/req_1/ HTTP/1.1\r\n\r\n")


# --- the enclave's query gate (clean rooms) ----------------------------------

def query_gate():
    by_region = {"dataset": "sales", "dimensions": ["region"],
                 "metrics": [{"function": "count"}, {"function": "sum", "column": "amount"}],
                 "filters": [{"column": "region", "op": "in", "value": ["EU", "US"]}]}
    write("query_gate", "aggregate", "AGGREGATE " + compact(by_region))
    write("query_gate", "aggregate_plain", "aggregate\n" + compact(
        {"dataset": "plain", "dimensions": ["a\"b"], "metrics": [
            {"function": "max", "column": "x"}],
         "filters": [{"column": "y", "op": "ge", "value": 1.5e300}]}))
    write("query_gate", "free_sql", "SELECT * FROM sales WHERE id = 7")
    write("query_gate", "wrong_types", "AGGREGATE " + compact(
        {"dataset": "sales", "dimensions": ["region"],
         "metrics": [{"function": ["EU", "US"]}],
         "filters": [{"column": "region", "op": 7, "value": 1}]}))
    write("query_gate", "isolating", "AGGREGATE " + compact(
        {"dataset": "sales", "metrics": [{"function": "count"}],
         "filters": [{"column": "id", "op": "eq", "value": "7' OR 1=1 --"}]}))


# --- the pgwire tunnel's PostgreSQL-to-enclave translator ---------------------

def pg_translate():
    statements = {
        "params": "SELECT id, customer FROM orders WHERE id % 7 = $1 AND placed >= $2 "
                  "AND customer LIKE $3 ORDER BY amount DESC NULLS LAST LIMIT $4",
        "casts": "SELECT '2026-08-01'::date, CAST('2026-08-01T10:00:00+02' AS timestamptz), "
                 "amount::int, '1 day'::interval, -3, abs(-7) FROM orders",
        "dates": "SELECT date_trunc('month', placed), extract(year FROM shipped_at), "
                 "placed + interval '2 weeks', placed - 1, now() FROM orders",
        "joins": "WITH t AS (SELECT * FROM orders) SELECT c.name, count(*) FILTER (WHERE paid) "
                 "FROM customers c LEFT JOIN t ON t.customer = c.name GROUP BY 1 HAVING "
                 "count(*) > 1",
        "setops": "SELECT customer FROM orders UNION ALL (SELECT name FROM customers ORDER BY 1 "
                  "LIMIT 2) EXCEPT SELECT 'x' ORDER BY 1",
        "window": "SELECT row_number() OVER (PARTITION BY customer ORDER BY id ROWS BETWEEN "
                  "1 PRECEDING AND CURRENT ROW), rank() OVER w FROM orders WINDOW w AS "
                  "(ORDER BY id)",
        "copy": "COPY (SELECT * FROM orders) TO STDOUT WITH (FORMAT csv, HEADER, "
                "DELIMITER ';', NULL 'null')",
        "quotes": "SELECT \"a\"\"b\", 'it''s', E'\\x41', $$dollar$$ FROM \"orders\" x(\"q;\")",
        "subquery": "SELECT name FROM customers c WHERE EXISTS (SELECT 1 FROM orders o WHERE "
                    "o.customer = c.name) AND tier IN (SELECT tier FROM customers) AND "
                    "greatest(tier, $1) BETWEEN 1 AND 3",
        "catalog": "SELECT c.relname, a.attname, pg_catalog.format_type(a.atttypid, -1) FROM "
                   "pg_catalog.pg_class c JOIN pg_attribute a ON a.attrelid = c.oid WHERE "
                   "c.relname OPERATOR(pg_catalog.~) '^(orders)$' AND c.oid = 'orders'::regclass "
                   "AND 'd' = any(c.relacl) AND (ARRAY(SELECT 1))[1] = 1",
        "cursor": "DECLARE c CURSOR WITH HOLD FOR SELECT * FROM orders",
    }
    for name, sql in statements.items():
        write("pg_translate", name, sql)


# --- enclave channel, link frames, batch codec -------------------------------

def pad8(data):
    return data + b"\0" * (-len(data) % 8)


def schema_bytes(fields):
    out = b"ALS1" + struct.pack("<I", len(fields))
    for type_id, nullable, name, tz in fields:
        out += struct.pack("<BB", type_id, 1 if nullable else 0)
        out += struct.pack("<I", len(name)) + name.encode()
        out += struct.pack("<I", len(tz)) + tz.encode()
    return out


def arrow_type_ids():
    """The numbering of airlock::arrow::Type, read from the SDK header."""
    path = os.path.join(HERE, "..", "..", "sdk", "include", "airlock", "cpp", "arrow.hpp")
    text = open(path).read()
    start = text.index("enum class Type")
    body = text[text.index("{", start) + 1:text.index("}", start)]
    return {name: int(value) for name, value in re.findall(r"(k\w+)\s*=\s*(\d+)", body)}


def batch_bytes(columns, rows):
    out = b"ALB1" + struct.pack("<IQ", len(columns), rows)
    for type_id, validity, values in columns:
        out += struct.pack("<BB", type_id, 1 if validity is not None else 0) + b"\0" * 6
        if validity is not None:
            out = pad8(out + validity)
        out = pad8(out + values)
    return out


def codec_seeds():
    t = arrow_type_ids()
    fields = [(t["kInt64"], False, "id", ""), (t["kUtf8"], True, "email", ""),
              (t["kBool"], True, "ok", ""), (t["kTimestampMicros"], True, "at", "UTC")]
    schema = schema_bytes(fields)
    rows = 2
    offsets = struct.pack("<iii", 0, 5, 5)
    text = b"a@b.c"
    utf8 = pad8(offsets) + struct.pack("<Q", len(text)) + text
    batch = batch_bytes([
        (t["kInt64"], None, struct.pack("<qq", 1, -2)),
        (t["kUtf8"], b"\x01", utf8),
        (t["kBool"], b"\x03", b"\x02"),
        (t["kTimestampMicros"], None, struct.pack("<qq", 0, 1767225600000000)),
    ], rows)
    return schema, batch


def batch_codec(schema, batch):
    write("batch_codec", "four_columns", struct.pack("<H", len(schema)) + schema + batch)
    empty = schema_bytes([])
    write("batch_codec", "empty", struct.pack("<H", len(empty)) + empty + batch_bytes([], 0))


def frame(type_id, payload):
    return struct.pack("<IB", len(payload) + 1, type_id) + payload


def id_payload(query_id, rest):
    return struct.pack("<H", len(query_id)) + query_id.encode() + rest


def enclave_frames(schema, batch):
    progress = compact({"dataset": "customers", "rows": 10, "bytes": 100, "elapsed_ms": 3,
                        "state": "ingesting"}).encode()
    state = compact({"state": "sealed"}).encode()
    end = compact({"id": "q1", "rows": 2}).encode()
    failed = compact({"id": "q2", "rows": 0, "error": "no such table", "code": "not_found"}).encode()
    tables = compact({"id": "t1", "tables": [{"name": "customers", "rows": 2}]}).encode()
    dial = compact({"id": "d1", "endpoint": "db.internal:5432"}).encode()
    return [(2, progress), (3, state), (5, id_payload("q1", schema)), (6, id_payload("q1", batch)),
            (7, end), (7, failed), (10, tables), (13, dial), (11, b"")]


def enclave_channel(frames):
    write("enclave_channel", "query_result", b"".join(frame(t, p) for t, p in frames))


def link_frame(frames):
    def link(type_id, stream, payload):
        return struct.pack("<IBI", len(payload) + 5, type_id, stream) + payload
    hello = compact({"type": "heartbeat", "enclaves": 1}).encode()
    data = link(1, 0, hello)
    for t, p in frames:
        data += link(2, 7, bytes([t]) + p)
    data += link(3, 7, compact({"reason": "finished"}).encode())
    write("link_frame", "one_enclave", data)


# --- audit ------------------------------------------------------------------

def audit_lines():
    prev = "0" * 64
    lines = []
    for seq, event in enumerate(["request.submitted", "request.approved", "tunnel.query"], 1):
        record = {"event": event, "request": "req_1", "principal": {"subject": "alice"},
                  "seq": seq, "ts": "2026-01-01T00:00:0%d.000000Z" % seq, "prev": prev}
        canonical = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        digest = hashlib.sha256((prev + canonical).encode()).hexdigest()
        lines.append(canonical[:-1] + ',"hash":"%s"}' % digest)
        prev = digest
    log = "\n".join(lines) + "\n"
    write("audit_lines", "chain", b"\0" + log.encode())
    write("audit_lines", "torn_tail", b"\0" + log.encode() + b'{"event":"x"')
    unchained = "\n".join(json.dumps({"event": e, "ts": "2026-01-01T00:00:00Z", "sql_sha256": "ab"})
                          for e in ["tunnel.query", "request.closed"]) + "\n"
    write("audit_lines", "rechain", b"\x01" + unchained.encode())
    write("audit_lines", "anchor", b"\x02" + ("%020d %s\n" % (3, prev)).encode())
    checkpoint = compact({"checkpoint": 1, "seq": 3, "hash": prev,
                          "time": "2026-01-01T00:00:03.000000Z", "key_id": "ab" * 16,
                          "sig": "cd" * 64})
    write("audit_lines", "checkpoints", b"\x03" + (checkpoint + "\n").encode())
    write("audit_lines", "shipped",
          b"\x04" + ("2026-01-01 00:00:03 [info] audit checkpoint " + checkpoint + "\n"
                     "unrelated line\n").encode())


# --- JWT / JWKS ---------------------------------------------------------------

def b64url(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt_seeds():
    header = compact({"alg": "EdDSA", "typ": "JWT", "kid": "ed"})
    payload = compact({"iss": "https://issuer.example", "aud": ["airlock"], "sub": "alice",
                       "exp": 1767229200, "nbf": 1767225000, "iat": 1767225000,
                       "realm_access": {"roles": ["analysts", "eu"]}, "kind": "robot",
                       "org": "acme"})
    write("jwt", "signed_claims", b"\x01" + f"{header}\n{payload}".encode())
    token = ".".join([b64url(compact({"alg": "ES256", "kid": "ec"})), b64url(payload),
                      b64url(b"\x01" * 64)])
    write("jwt", "raw_es256", b"\x00" + token.encode())
    token = ".".join([b64url(compact({"alg": "RS256"})), b64url(payload), b64url(b"\x02" * 256)])
    write("jwt", "raw_rs256_nokid", b"\x00" + token.encode())
    # DER ECDSA-Sig-Value: SEQUENCE { INTEGER r, INTEGER s }
    der = b"\x30\x06\x02\x01\x01\x02\x01\x02"
    write("jwt", "ecdsa_der", b"\x02" + der)
    write("jwks", "three_keys", compact({"keys": [
        {"kty": "OKP", "crv": "Ed25519", "kid": "ed", "use": "sig",
         "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
        {"kty": "EC", "crv": "P-256", "kid": "ec", "alg": "ES256",
         "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
         "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
        {"kty": "RSA", "kid": "rsa", "key_ops": ["verify"], "e": "AQAB",
         "n": b64url(b"\xc3" + b"\x17" * 255)},
        {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"}]}))
    write("jwks", "private_and_weak", compact({"keys": [
        {"kty": "RSA", "kid": "small", "e": "AQAB", "n": b64url(b"\xc3" * 64)},
        {"kty": "EC", "crv": "P-384", "kid": "p", "d": "AAAA", "x": "AAAA", "y": "AAAA"}]}))


# --- agents on the API's port, and what sites say ---------------------------

def client_hello():
    import ssl
    for name, protocols in (("agent", ["airlock-agent/1"]), ("browser", ["h2", "http/1.1"]),
                            ("none", None)):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        if protocols:
            context.set_alpn_protocols(protocols)
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        connection = context.wrap_bio(incoming, outgoing, server_hostname="kernel.example")
        try:
            connection.do_handshake()
        except ssl.SSLWantReadError:
            pass
        write("client_hello", name, outgoing.read())
    write("client_hello", "http", "GET / HTTP/1.1\r\nHost: x\r\n\r\n")


def site_catalog():
    write("site_catalog", "one", compact({"type": "catalog", "datasets": [
        {"name": "orders", "description": "Orders at the edge", "tags": ["finance"],
         "columns": [{"name": "id", "type": "int64"}, {"name": "amount", "type": "float64"}],
         "synced_at_us": 1796630400000000}]}))
    write("site_catalog", "failed", compact({"type": "catalog", "datasets": [
        {"name": "ledger", "error": "the site could not describe it", "synced_at_us": 1}]}))
    write("site_catalog", "taken", compact({"datasets": [{"name": "stock"}, {"name": "customers"}]}))


def main():
    if os.path.isdir(CORPUS):
        shutil.rmtree(CORPUS)
    http_request()
    json_body()
    kernel_config()
    policy_rules()
    pgwire()
    https_query()
    query_gate()
    pg_translate()
    schema, batch = codec_seeds()
    batch_codec(schema, batch)
    frames = enclave_frames(schema, batch)
    enclave_channel(frames)
    link_frame(frames)
    audit_lines()
    jwt_seeds()
    client_hello()
    site_catalog()


if __name__ == "__main__":
    main()
