#!/usr/bin/python3
"""Self-test of fake_kube_apiserver.py: starts it as a real child process on
127.0.0.1 with certificates made by the openssl command line, and talks to it
over TLS with the standard library only. Watch streams are read with a raw
chunk parser so the framing (one JSON event plus "\\n" per chunk, clean
terminating chunk) is checked, not just the decoded content.
"""

import base64
import http.client
import json
import os
import queue
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "fake_kube_apiserver.py")
PYTHON = "/usr/bin/python3"
TOKEN = "t0k3n-first"
USER = "system:serviceaccount:airlock:airlock-kernel"

TMP = None
CA_FILE = CERT_FILE = KEY_FILE = None
CTX = None
MAIN = None  # the shared server


def b64(text):
    return base64.b64encode(text.encode()).decode()


def make_pki(directory):
    def run(*args):
        subprocess.run(["openssl", *args], cwd=directory, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
        "-out", "ca.crt", "-days", "2", "-subj", "/CN=fake-kube-test-ca",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key",
        "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    with open(os.path.join(directory, "server.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                "keyUsage=digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey",
        "ca.key", "-CAcreateserial", "-out", "server.crt", "-days", "2",
        "-extfile", "server.ext")
    return (os.path.join(directory, "ca.crt"),
            os.path.join(directory, "server.crt"),
            os.path.join(directory, "server.key"))


class ServerProcess:
    def __init__(self, name, extra_args=(), env_extra=None):
        self.dir = os.path.join(TMP, name)
        os.makedirs(self.dir)
        self.token_file = os.path.join(self.dir, "token")
        self.set_token(TOKEN)
        self.work_dir = os.path.join(self.dir, "work")
        env = dict(os.environ)
        env.update(env_extra or {})
        self.stderr = open(os.path.join(self.dir, "stderr"), "wb")
        self.proc = subprocess.Popen(
            [PYTHON, SERVER, "--cert", CERT_FILE, "--key", KEY_FILE,
             "--token-file", self.token_file, "--work-dir", self.work_dir,
             *extra_args],
            stdout=subprocess.PIPE, stderr=self.stderr, env=env)
        ready, _, _ = select.select([self.proc.stdout], [], [], 10)
        if not ready:
            self.stop()
            raise RuntimeError("server did not print its port")
        line = self.proc.stdout.readline().decode().strip()
        if not line.isdigit():
            self.stop()
            raise RuntimeError(f"server printed {line!r}, not a port")
        self.port = int(line)

    def set_token(self, token):
        with open(self.token_file, "w") as f:
            f.write(token + "\n")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.stderr.close()

    # -- plain requests -----------------------------------------------------
    def connect(self):
        return http.client.HTTPSConnection("127.0.0.1", self.port,
                                           context=CTX, timeout=10)

    def call(self, method, path, body=None, token=TOKEN, headers=None,
             conn=None):
        """-> (status, headers, parsed JSON or text)."""
        own = conn is None
        conn = conn or self.connect()
        try:
            hdrs = {"Accept": "application/json"}
            if token is not None:
                hdrs["Authorization"] = f"Bearer {token}"
            data = None
            if body is not None:
                data = body if isinstance(body, bytes) else \
                    json.dumps(body).encode()
                hdrs["Content-Type"] = "application/json"
            hdrs.update(headers or {})
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            raw = resp.read()
            ctype = resp.getheader("Content-Type", "")
            parsed = json.loads(raw) if ctype.startswith(
                "application/json") else raw.decode()
            return resp.status, resp, parsed
        finally:
            if own:
                conn.close()

    def test_get(self, path):
        conn = self.connect()
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            raw = resp.read()
            if resp.getheader("Content-Type", "").startswith(
                    "application/json"):
                return resp.status, json.loads(raw)
            return resp.status, raw.decode()
        finally:
            conn.close()

    def test_post(self, path, body=None):
        conn = self.connect()
        try:
            conn.request("POST", path, body=json.dumps(body).encode()
                         if body is not None else b"",
                         headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            return resp.status, json.loads(resp.read())
        finally:
            conn.close()

    def watch(self, path, token=TOKEN):
        return WatchStream(self.port, path, token)

    def wait_pod(self, ns, name, pred, timeout=5.0):
        deadline = time.monotonic() + timeout
        pod = None
        while time.monotonic() < deadline:
            code, _, pod = self.call("GET", f"/api/v1/namespaces/{ns}/pods/"
                                     f"{name}")
            if code == 200 and pred(pod):
                return pod
            time.sleep(0.05)
        raise AssertionError(f"pod {ns}/{name} never matched; last: "
                             f"{json.dumps(pod)[:2000]}")

    def pod_pid(self, ns, name):
        code, info = self.test_get(
            f"/_test/pod-pid?namespace={ns}&name={name}")
        assert code == 200, info
        return info


class WatchStream:
    """Reads a watch response chunk by chunk on a background thread."""

    def __init__(self, port, path, token):
        raw = socket.create_connection(("127.0.0.1", port), timeout=15)
        self.sock = CTX.wrap_socket(raw, server_hostname="127.0.0.1")
        request = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                   f"Authorization: Bearer {token}\r\n"
                   "Accept: application/json\r\n\r\n")
        self.sock.sendall(request.encode())
        self.file = self.sock.makefile("rb")
        status_line = self.file.readline().decode()
        self.status = int(status_line.split()[1])
        self.headers = {}
        while True:
            line = self.file.readline().decode()
            if line in ("\r\n", "\n", ""):
                break
            key, _, value = line.partition(":")
            self.headers[key.strip().lower()] = value.strip()
        self.queue = queue.Queue()
        self.clean_end = False
        self.framing_errors = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        try:
            while True:
                size_line = self.file.readline()
                if not size_line:
                    self.framing_errors.append("EOF without terminating chunk")
                    return
                size = int(size_line.split(b";")[0].strip(), 16)
                if size == 0:
                    if self.file.readline() == b"\r\n":
                        self.clean_end = True
                    else:
                        self.framing_errors.append("bad chunked trailer")
                    return
                data = self.file.read(size)
                if self.file.read(2) != b"\r\n":
                    self.framing_errors.append("chunk not followed by CRLF")
                    return
                if not data.endswith(b"\n") or data.count(b"\n") != 1:
                    self.framing_errors.append(
                        f"chunk is not exactly one line: {data!r}")
                    return
                self.queue.put(json.loads(data))
        except (OSError, ValueError) as exc:
            self.framing_errors.append(repr(exc))
        finally:
            self.queue.put(None)

    def next(self, timeout=5.0):
        try:
            ev = self.queue.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no watch event within timeout")
        if ev is None:
            self.queue.put(None)
            raise AssertionError(f"watch ended (clean={self.clean_end}, "
                                 f"errors={self.framing_errors})")
        return ev

    def until(self, pred, timeout=5.0):
        """Events up to and including the first one matching pred."""
        seen = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    "watch: no matching event; saw "
                    + json.dumps([(e["type"], e["object"].get("status", {})
                                   .get("phase")) for e in seen]))
            ev = self.next(left)
            seen.append(ev)
            if pred(ev):
                return seen

    def wait_end(self, timeout=5.0):
        self.thread.join(timeout)
        return not self.thread.is_alive()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def pod_body(name, command, image="registry.example/tool:1.0", **spec):
    body = {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": "selftest"}},
            "spec": {"restartPolicy": "Never", "containers": [{
                "name": "main", "image": image, "command": command}]}}
    body["spec"].update(spec)
    return body


def pid_gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def wait_pid_gone(pid, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pid_gone(pid):
            return True
        time.sleep(0.05)
    return False


def setUpModule():
    global TMP, CA_FILE, CERT_FILE, KEY_FILE, CTX, MAIN
    TMP = tempfile.mkdtemp(prefix="fake-kube-selftest-")
    CA_FILE, CERT_FILE, KEY_FILE = make_pki(TMP)
    CTX = ssl.create_default_context(cafile=CA_FILE)
    CTX.minimum_version = ssl.TLSVersion.TLSv1_2
    MAIN = ServerProcess("main", ["--enclave-env", "ENCLAVE_MODE=simulated"],
                         env_extra={"SERVER_ONLY_SECRET": "must-not-leak"})


def tearDownModule():
    if MAIN is not None:
        MAIN.stop()
    shutil.rmtree(TMP, ignore_errors=True)


class CrudTest(unittest.TestCase):
    KINDS = [
        ("/api/v1/namespaces/crud/secrets", "Secret", "SecretList", "v1",
         {"metadata": {"name": "s1"}, "data": {"k": b64("v")}}),
        ("/apis/networking.k8s.io/v1/namespaces/crud/networkpolicies",
         "NetworkPolicy", "NetworkPolicyList", "networking.k8s.io/v1",
         {"metadata": {"name": "np1"},
          "spec": {"podSelector": {"matchLabels": {"a": "b"}},
                   "policyTypes": ["Egress"], "egress": []}}),
        ("/api/v1/namespaces/crud/pods", "Pod", "PodList", "v1",
         pod_body("p1", ["/bin/sleep", "30"])),
    ]

    def test_create_get_list_delete_each_kind(self):
        last_rv = 0
        conn = MAIN.connect()  # one keep-alive connection for all of it
        for collection, kind, list_kind, api_version, body in self.KINDS:
            with self.subTest(kind=kind):
                name = body["metadata"]["name"]
                code, resp, created = MAIN.call("POST", collection, body,
                                                conn=conn)
                self.assertEqual(code, 201, created)
                self.assertEqual(resp.getheader("Content-Type"),
                                 "application/json")
                self.assertEqual(created["kind"], kind)
                self.assertEqual(created["apiVersion"], api_version)
                meta = created["metadata"]
                self.assertEqual(meta["namespace"], "crud")
                self.assertEqual(len(meta["uid"]), 36)
                self.assertRegex(meta["creationTimestamp"],
                                 r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
                rv = int(meta["resourceVersion"])
                self.assertGreater(rv, last_rv)
                last_rv = rv
                if kind == "Pod":
                    self.assertEqual(created["status"]["phase"], "Pending")

                code, _, got = MAIN.call("GET", f"{collection}/{name}",
                                         conn=conn)
                self.assertEqual(code, 200, got)
                self.assertEqual(got["metadata"]["uid"], meta["uid"])
                self.assertEqual(got["kind"], kind)

                code, _, listed = MAIN.call("GET", collection, conn=conn)
                self.assertEqual(code, 200, listed)
                self.assertEqual(listed["kind"], list_kind)
                self.assertEqual(listed["apiVersion"], api_version)
                self.assertGreaterEqual(
                    int(listed["metadata"]["resourceVersion"]), rv)
                self.assertEqual([i["metadata"]["name"]
                                  for i in listed["items"]], [name])

                code, _, deleted = MAIN.call("DELETE",
                                             f"{collection}/{name}",
                                             body={"kind": "DeleteOptions",
                                                   "apiVersion": "v1"},
                                             conn=conn)
                self.assertEqual(code, 200, deleted)
                self.assertEqual(deleted["metadata"]["uid"], meta["uid"])
                self.assertGreater(int(deleted["metadata"]["resourceVersion"]),
                                   last_rv)
                last_rv = int(deleted["metadata"]["resourceVersion"])
                if kind == "Pod":
                    self.assertIn("deletionTimestamp", deleted["metadata"])
                code, _, gone = MAIN.call("GET", f"{collection}/{name}",
                                          conn=conn)
                self.assertEqual(code, 404, gone)
                code, _, gone = MAIN.call("DELETE", f"{collection}/{name}",
                                          conn=conn)
                self.assertEqual(code, 404, gone)
        conn.close()

    def test_generate_name_and_secret_string_data(self):
        code, _, created = MAIN.call(
            "POST", "/api/v1/namespaces/gen/secrets",
            {"metadata": {"generateName": "airlock-cred-"},
             "stringData": {"password": "s3cret"}})
        self.assertEqual(code, 201, created)
        name = created["metadata"]["name"]
        self.assertRegex(name, r"^airlock-cred-[a-z0-9]{5}$")
        self.assertEqual(created["data"], {"password": b64("s3cret")})
        self.assertNotIn("stringData", created)
        self.assertEqual(created["type"], "Opaque")

    def test_duplicate_is_409(self):
        path = "/api/v1/namespaces/dup/secrets"
        body = {"metadata": {"name": "same"}, "data": {}}
        self.assertEqual(MAIN.call("POST", path, body)[0], 201)
        code, resp, status = MAIN.call("POST", path, body)
        self.assertEqual(code, 409)
        self.assertEqual(resp.getheader("Content-Type"), "application/json")
        self.assertEqual(status, {
            "kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": 'secrets "same" already exists',
            "reason": "AlreadyExists",
            "details": {"name": "same", "kind": "secrets"}, "code": 409})

    def test_bad_name_is_422(self):
        code, _, status = MAIN.call("POST", "/api/v1/namespaces/v/pods",
                                    pod_body("Bad_Name", ["/bin/true"]))
        self.assertEqual(code, 422, status)
        self.assertEqual(status["reason"], "Invalid")
        self.assertEqual(status["code"], 422)
        self.assertTrue(status["message"].startswith(
            'Pod "Bad_Name" is invalid: metadata.name: Invalid value: '
            '"Bad_Name": a lowercase RFC 1123 subdomain must consist of'),
            status["message"])
        self.assertEqual(status["details"]["name"], "Bad_Name")
        self.assertEqual(status["details"]["kind"], "Pod")
        causes = status["details"]["causes"]
        self.assertEqual(len(causes), 1, causes)
        self.assertEqual(causes[0]["reason"], "FieldValueInvalid")
        self.assertEqual(causes[0]["field"], "metadata.name")
        # Nothing was stored.
        self.assertEqual(MAIN.call("GET", "/api/v1/namespaces/v/pods/"
                                   "Bad_Name")[0], 404)

    def test_other_validation(self):
        code, _, status = MAIN.call(
            "POST", "/apis/networking.k8s.io/v1/namespaces/v/networkpolicies",
            {"metadata": {"name": "np", "labels": {"ok": "bad value!"}},
             "spec": {}})
        self.assertEqual(code, 422, status)
        self.assertTrue(status["message"].startswith(
            'NetworkPolicy.networking.k8s.io "np" is invalid: '
            'metadata.labels: Invalid value: "bad value!"'), status["message"])
        self.assertEqual(status["details"]["group"], "networking.k8s.io")

        no_containers = pod_body("empty", ["/bin/true"])
        no_containers["spec"]["containers"] = []
        code, _, status = MAIN.call("POST", "/api/v1/namespaces/v/pods",
                                    no_containers)
        self.assertEqual(code, 422, status)
        self.assertEqual(status["details"]["causes"][0]["field"],
                         "spec.containers")

        code, _, status = MAIN.call("POST", "/api/v1/namespaces/v/secrets",
                                    {"metadata": {"name": "b"},
                                     "data": {"k": "not base64!"}})
        self.assertEqual(code, 400, status)
        self.assertEqual(status["reason"], "BadRequest")
        self.assertIn("illegal base64 data", status["message"])

        code, _, status = MAIN.call("POST", "/api/v1/namespaces/v/secrets",
                                    b"{not json")
        self.assertEqual((code, status["reason"]), (400, "BadRequest"))

        code, _, status = MAIN.call("POST", "/api/v1/namespaces/v/secrets",
                                    {"metadata": {"name": "x",
                                                  "namespace": "other"}})
        self.assertEqual((code, status["reason"]), (400, "BadRequest"))
        self.assertIn("does not match the namespace", status["message"])

    def test_not_found_status_shape(self):
        code, _, status = MAIN.call(
            "GET", "/apis/networking.k8s.io/v1/namespaces/nf/networkpolicies/"
            "nope")
        self.assertEqual(code, 404)
        self.assertEqual(status, {
            "kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure",
            "message": 'networkpolicies.networking.k8s.io "nope" not found',
            "reason": "NotFound",
            "details": {"name": "nope", "group": "networking.k8s.io",
                        "kind": "networkpolicies"}, "code": 404})
        code, _, status = MAIN.call("GET", "/api/v1/namespaces/nf/pods/nope")
        self.assertEqual(status["message"], 'pods "nope" not found')
        self.assertEqual(status["details"], {"name": "nope", "kind": "pods"})
        code, _, status = MAIN.call("GET", "/api/v1/namespaces/nf/gadgets")
        self.assertEqual(code, 404)
        self.assertEqual((status["kind"], status["reason"], status["code"]),
                         ("Status", "NotFound", 404))

    def test_authentication(self):
        path = "/api/v1/namespaces/auth/secrets"
        for token in (None, "wrong"):
            code, _, status = MAIN.call("GET", path, token=token)
            self.assertEqual(code, 401)
            self.assertEqual(status, {
                "kind": "Status", "apiVersion": "v1", "metadata": {},
                "status": "Failure", "message": "Unauthorized",
                "reason": "Unauthorized", "code": 401})
        self.assertEqual(MAIN.call("GET", path)[0], 200)
        # The token file is re-read on every request.
        MAIN.set_token("rotated-token")
        try:
            self.assertEqual(MAIN.call("GET", path)[0], 401)
            self.assertEqual(MAIN.call("GET", path, token="rotated-token")[0],
                             200)
        finally:
            MAIN.set_token(TOKEN)

    def test_request_log(self):
        MAIN.call("POST", "/api/v1/namespaces/log/secrets?fieldManager=a%20b",
                  {"metadata": {"name": "logged"}, "data": {}})
        code, log = MAIN.test_get("/_test/requests")
        self.assertEqual(code, 200)
        entry = [e for e in log if e["path"] ==
                 "/api/v1/namespaces/log/secrets"][-1]
        self.assertEqual(entry, {
            "method": "POST", "path": "/api/v1/namespaces/log/secrets",
            "query": {"fieldManager": "a b"},
            "body": {"metadata": {"name": "logged"}, "data": {}},
            "status": 201})
        code, objects = MAIN.test_get("/_test/objects")
        self.assertEqual(sorted(objects), ["networkpolicies", "pods",
                                           "secrets"])
        self.assertIn(("log", "logged"), [
            (o["metadata"]["namespace"], o["metadata"]["name"])
            for o in objects["secrets"]])


class ForbidTest(unittest.TestCase):
    def test_forbidden(self):
        server = ServerProcess("forbid", ["--forbid", "create:networkpolicies",
                                          "--forbid", "get:pods"])
        try:
            code, _, status = server.call(
                "POST",
                "/apis/networking.k8s.io/v1/namespaces/ns1/networkpolicies",
                {"metadata": {"name": "np"}, "spec": {}})
            self.assertEqual(code, 403)
            self.assertEqual(status, {
                "kind": "Status", "apiVersion": "v1", "metadata": {},
                "status": "Failure",
                "message": 'networkpolicies.networking.k8s.io is forbidden: '
                           f'User "{USER}" cannot create resource '
                           '"networkpolicies" in API group '
                           '"networking.k8s.io" in the namespace "ns1"',
                "reason": "Forbidden",
                "details": {"group": "networking.k8s.io",
                            "kind": "networkpolicies"},
                "code": 403})
            code, _, status = server.call("GET",
                                          "/api/v1/namespaces/ns1/pods/x")
            self.assertEqual(code, 403)
            self.assertEqual(
                status["message"],
                f'pods "x" is forbidden: User "{USER}" cannot get resource '
                '"pods" in API group "" in the namespace "ns1"')
            # Verbs not forbidden still work.
            self.assertEqual(server.call(
                "GET", "/apis/networking.k8s.io/v1/namespaces/ns1/"
                "networkpolicies")[0], 200)
            code, log = server.test_get("/_test/requests")
            self.assertEqual([e["status"] for e in log], [403, 403, 200])
        finally:
            server.stop()


class SelectorTest(unittest.TestCase):
    def test_label_and_field_selectors(self):
        path = "/api/v1/namespaces/sel/secrets"
        for name, labels in (("a", {"tier": "db", "env": "prod"}),
                             ("b", {"tier": "web", "env": "prod"}),
                             ("c", {"tier": "db"})):
            self.assertEqual(MAIN.call("POST", path, {
                "metadata": {"name": name, "labels": labels}})[0], 201)

        def names(selector, key="labelSelector"):
            q = urllib.parse.urlencode({key: selector})
            code, _, lst = MAIN.call("GET", f"{path}?{q}")
            self.assertEqual(code, 200, lst)
            return [i["metadata"]["name"] for i in lst["items"]]
        self.assertEqual(names("tier=db"), ["a", "c"])
        self.assertEqual(names("tier==db,env=prod"), ["a"])
        self.assertEqual(names("tier!=db"), ["b"])
        self.assertEqual(names("env"), ["a", "b"])
        self.assertEqual(names("!env"), ["c"])
        self.assertEqual(names("tier in (web,cache)"), ["b"])
        self.assertEqual(names("metadata.name=b", "fieldSelector"), ["b"])
        self.assertEqual(names("metadata.name!=b", "fieldSelector"),
                         ["a", "c"])
        code, _, status = MAIN.call("GET", path + "?labelSelector=%3D%3Dx")
        self.assertEqual((code, status["reason"]), (400, "BadRequest"))


class PodLifecycleTest(unittest.TestCase):
    NS = "life"

    def test_watch_secret_env_and_volume_then_delete(self):
        ns = self.NS
        code, _, secret = MAIN.call(
            "POST", f"/api/v1/namespaces/{ns}/secrets", {
            "metadata": {"name": "creds"},
            "data": {"greeting": b64("hello-from-env-secret"),
                     "secretfile": b64("content-of-mounted-file")}})
        self.assertEqual(code, 201, secret)
        code, _, listed = MAIN.call("GET", f"/api/v1/namespaces/{ns}/pods")
        watch = MAIN.watch(f"/api/v1/namespaces/{ns}/pods?watch=1&"
                           f"resourceVersion="
                           f"{listed['metadata']['resourceVersion']}")
        try:
            self.assertEqual(watch.status, 200)
            self.assertEqual(watch.headers.get("transfer-encoding"), "chunked")
            self.assertEqual(watch.headers.get("content-type"),
                             "application/json")
            body = pod_body("worker", ["/bin/sh", "-c",
                                       "echo $GREETING; cat /x/secretfile; "
                                       "echo; echo leak=$SERVER_ONLY_SECRET; "
                                       "echo mode=$ENCLAVE_MODE; sleep 30"])
            body["spec"]["containers"][0]["env"] = [
                {"name": "GREETING", "valueFrom": {"secretKeyRef": {
                    "name": "creds", "key": "greeting"}}}]
            body["spec"]["containers"][0]["volumeMounts"] = [
                {"name": "secret-vol", "mountPath": "/x", "readOnly": True}]
            body["spec"]["volumes"] = [
                {"name": "secret-vol", "secret": {"secretName": "creds"}}]
            code, _, created = MAIN.call(
                "POST", f"/api/v1/namespaces/{ns}/pods", body)
            self.assertEqual(code, 201, created)

            seen = watch.until(lambda e: e["object"].get("status", {}).get(
                "phase") == "Running")
            self.assertEqual(seen[0]["type"], "ADDED")
            self.assertEqual(seen[0]["object"]["status"]["phase"], "Pending")
            self.assertEqual(seen[0]["object"]["kind"], "Pod")
            self.assertTrue(all(e["type"] == "MODIFIED" for e in seen[1:]))
            running = seen[-1]["object"]
            self.assertEqual(running["spec"]["nodeName"], "fake-node-1")
            self.assertEqual(running["status"]["podIP"], "127.0.0.1")
            state = running["status"]["containerStatuses"][0]
            self.assertIn("startedAt", state["state"]["running"])
            self.assertTrue(state["ready"])
            rvs = [int(e["object"]["metadata"]["resourceVersion"])
                   for e in seen]
            self.assertEqual(rvs, sorted(set(rvs)))

            deadline = time.monotonic() + 5
            log = ""
            while time.monotonic() < deadline and "mode=" not in log:
                code, log = MAIN.test_get(f"/_test/pod-log?namespace={ns}"
                                          "&name=worker")
                time.sleep(0.05)
            self.assertIn("hello-from-env-secret\n", log)
            self.assertIn("content-of-mounted-file\n", log)
            self.assertIn("leak=\n", log)
            self.assertIn("mode=simulated\n", log)
            mounted = os.path.join(MAIN.work_dir, "pods", ns, "worker",
                                   "secret-vol", "secretfile")
            self.assertEqual(os.stat(mounted).st_mode & 0o777, 0o644)
            # The real pods/log endpoint serves the same text.
            code, _, api_log = MAIN.call(
                "GET", f"/api/v1/namespaces/{ns}/pods/worker/log")
            self.assertEqual((code, api_log), (200, log))

            pid = MAIN.pod_pid(ns, "worker")["pid"]
            self.assertFalse(pid_gone(pid))
            code, _, deleted = MAIN.call(
                "DELETE", f"/api/v1/namespaces/{ns}/pods/worker"
                "?gracePeriodSeconds=1")
            self.assertEqual(code, 200, deleted)
            self.assertIn("deletionTimestamp", deleted["metadata"])
            seen = watch.until(lambda e: e["type"] == "DELETED")
            self.assertEqual(seen[-1]["object"]["metadata"]["uid"],
                             created["metadata"]["uid"])
            self.assertTrue(wait_pid_gone(pid), f"pod process {pid} survived")
            self.assertEqual(watch.framing_errors, [])
        finally:
            watch.close()

    def test_replay_from_resource_version(self):
        path = "/api/v1/namespaces/replay/secrets"
        code, _, first = MAIN.call("POST", path, {"metadata": {"name": "one"}})
        self.assertEqual(code, 201)
        MAIN.call("POST", path, {"metadata": {"name": "two"}})
        MAIN.call("DELETE", f"{path}/one")
        # Another namespace's change must not leak into this watch.
        MAIN.call("POST", "/api/v1/namespaces/elsewhere/secrets",
                  {"metadata": {"name": "three"}})
        rv = first["metadata"]["resourceVersion"]
        watch = MAIN.watch(f"{path}?watch=true&resourceVersion={rv}"
                           "&timeoutSeconds=1")
        try:
            events = [watch.next(), watch.next()]
            self.assertEqual([(e["type"], e["object"]["metadata"]["name"])
                              for e in events],
                             [("ADDED", "two"), ("DELETED", "one")])
            self.assertTrue(watch.wait_end(3))
            self.assertTrue(watch.clean_end, watch.framing_errors)
            self.assertTrue(watch.queue.get_nowait() is None)
        finally:
            watch.close()

        # Without resourceVersion: the current objects as ADDED first.
        watch = MAIN.watch(f"{path}?watch=1&timeoutSeconds=1")
        try:
            ev = watch.next()
            self.assertEqual((ev["type"], ev["object"]["metadata"]["name"]),
                             ("ADDED", "two"))
            self.assertTrue(watch.wait_end(3))
            self.assertTrue(watch.clean_end)
        finally:
            watch.close()

    def test_compaction_gives_410(self):
        path = "/api/v1/namespaces/compact/secrets"
        code, _, old = MAIN.call("POST", path, {"metadata": {"name": "old"}})
        old_rv = old["metadata"]["resourceVersion"]
        MAIN.call("POST", path, {"metadata": {"name": "newer"}})

        open_watch = MAIN.watch(f"{path}?watch=1&resourceVersion={old_rv}")
        try:
            ev = open_watch.next()  # the watch is live before we compact
            self.assertEqual(ev["object"]["metadata"]["name"], "newer")
            code, compacted = MAIN.test_post("/_test/compact")
            self.assertEqual(code, 200)
            horizon = compacted["horizon"]
            self.assertGreater(int(horizon), int(old_rv))
            ev = open_watch.next()
            self.assertEqual(ev["type"], "ERROR")
            self.assertEqual(ev["object"]["kind"], "Status")
            self.assertEqual(ev["object"]["code"], 410)
            self.assertEqual(ev["object"]["reason"], "Expired")
            self.assertTrue(open_watch.wait_end(3))
            self.assertTrue(open_watch.clean_end)
        finally:
            open_watch.close()

        watch = MAIN.watch(f"{path}?watch=1&resourceVersion={old_rv}")
        try:
            self.assertEqual(watch.status, 200)
            ev = watch.next()
            self.assertEqual(ev, {"type": "ERROR", "object": {
                "kind": "Status", "apiVersion": "v1", "metadata": {},
                "status": "Failure",
                "message": f"too old resource version: {old_rv} ({horizon})",
                "reason": "Expired", "code": 410}})
            self.assertTrue(watch.wait_end(3))
            self.assertTrue(watch.clean_end)
        finally:
            watch.close()

        # From the horizon itself the watch works again.
        watch = MAIN.watch(f"{path}?watch=1&resourceVersion={horizon}"
                           "&timeoutSeconds=2")
        try:
            MAIN.call("POST", path, {"metadata": {"name": "after"}})
            ev = watch.next()
            self.assertEqual((ev["type"], ev["object"]["metadata"]["name"]),
                             ("ADDED", "after"))
        finally:
            watch.close()

    def test_image_pull_backoff(self):
        ns = "pull"
        image = "registry.example/pull-fails:2"
        watch = MAIN.watch(f"/api/v1/namespaces/{ns}/pods?watch=1")
        try:
            code, _, _ = MAIN.call("POST", f"/api/v1/namespaces/{ns}/pods",
                                   pod_body("puller", ["/bin/true"], image))
            self.assertEqual(code, 201)

            def waiting(e):
                cs = e["object"].get("status", {}).get("containerStatuses")
                return cs and cs[0]["state"].get("waiting", {}).get("reason")
            seen = watch.until(lambda e: waiting(e) == "ImagePullBackOff")
            reasons = [waiting(e) for e in seen if waiting(e)]
            self.assertIn("ErrImagePull", reasons)
            self.assertLess(reasons.index("ErrImagePull"),
                            reasons.index("ImagePullBackOff"))
            final = seen[-1]["object"]
            self.assertEqual(final["status"]["phase"], "Pending")
            self.assertEqual(
                final["status"]["containerStatuses"][0]["state"]["waiting"]
                ["message"], f'Back-off pulling image "{image}"')
            self.assertIsNone(MAIN.pod_pid(ns, "puller")["pid"])
        finally:
            watch.close()

    def test_unschedulable(self):
        ns = "sched"
        body = pod_body("stuck", ["/bin/true"],
                        nodeSelector={"airlock.test/unschedulable": "yes"})
        self.assertEqual(MAIN.call("POST", f"/api/v1/namespaces/{ns}/pods",
                                   body)[0], 201)
        pod = MAIN.wait_pod(ns, "stuck", lambda p: p["status"].get(
            "conditions"))
        self.assertEqual(pod["status"]["phase"], "Pending")
        cond = pod["status"]["conditions"][0]
        self.assertEqual((cond["type"], cond["status"], cond["reason"]),
                         ("PodScheduled", "False", "Unschedulable"))
        self.assertIn("didn't match Pod's node affinity/selector",
                      cond["message"])
        self.assertNotIn("nodeName", pod["spec"])

    def test_active_deadline(self):
        ns = "deadline"
        body = pod_body("slow", ["/bin/sleep", "30"],
                        activeDeadlineSeconds=1)
        self.assertEqual(MAIN.call("POST", f"/api/v1/namespaces/{ns}/pods",
                                   body)[0], 201)
        MAIN.wait_pod(ns, "slow", lambda p: p["status"]["phase"] == "Running")
        pid = MAIN.pod_pid(ns, "slow")["pid"]
        started = time.monotonic()
        pod = MAIN.wait_pod(ns, "slow", lambda p: p["status"]["phase"]
                            == "Failed", timeout=5)
        self.assertLess(time.monotonic() - started, 3)
        self.assertEqual(pod["status"]["reason"], "DeadlineExceeded")
        self.assertEqual(pod["status"]["message"], "Pod was active on the "
                         "node longer than the specified deadline")
        self.assertTrue(wait_pid_gone(pid))

    def test_exit_codes(self):
        ns = "exit"
        for name, cmd, phase, reason, code in (
                ("ok", ["/bin/true"], "Succeeded", "Completed", 0),
                ("bad", ["/bin/sh", "-c", "exit 3"], "Failed", "Error", 3)):
            self.assertEqual(MAIN.call("POST", f"/api/v1/namespaces/{ns}/pods",
                                       pod_body(name, cmd))[0], 201)
            pod = MAIN.wait_pod(ns, name, lambda p: p["status"]["phase"] in
                                ("Succeeded", "Failed"))
            term = pod["status"]["containerStatuses"][0]["state"]["terminated"]
            self.assertEqual((pod["status"]["phase"], term["reason"],
                              term["exitCode"]), (phase, reason, code))


class ShutdownTest(unittest.TestCase):
    def test_sigterm_kills_pod_processes(self):
        server = ServerProcess("shutdown")
        try:
            body = pod_body("sleeper",
                            ["/bin/sh", "-c", "sleep 60 & sleep 60"])
            self.assertEqual(server.call("POST", "/api/v1/namespaces/d/pods",
                                         body)[0], 201)
            server.wait_pod("d", "sleeper",
                            lambda p: p["status"]["phase"] == "Running")
            pid = server.pod_pid("d", "sleeper")["pid"]
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                self.assertIn(b"sleep 60", f.read())
            self.assertEqual(os.getpgid(pid), pid)
            server.proc.send_signal(signal.SIGTERM)
            self.assertEqual(server.proc.wait(timeout=5), 0)
            self.assertTrue(wait_pid_gone(pid), f"pod process {pid} survived")
            # The backgrounded child of the same process group too.
            leftovers = []
            for entry in os.listdir("/proc"):
                if entry.isdigit():
                    try:
                        if os.getpgid(int(entry)) == pid and \
                                not pid_gone(int(entry)):
                            leftovers.append(int(entry))
                    except ProcessLookupError:
                        pass
            self.assertEqual(leftovers, [])
        finally:
            server.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
