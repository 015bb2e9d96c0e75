#!/usr/bin/python3
"""A test-only stand-in for a Kubernetes API server plus a simulated kubelet.

This is NOT Kubernetes. It exists because no real kube-apiserver can run on
the test machines. It does speak the real wire protocol of the parts it
covers, as the Kubernetes API reference defines it: JSON over HTTP/1.1 and
TLS, bearer-token authentication, Status objects for every error (with the
reason, code, details and message wording of a real API server), integer
resourceVersions, and chunked watch streams of newline-separated
{"type", "object"} events with replay from a resourceVersion and
"410 Expired" after compaction. Python 3 standard library only.

Usage:

  fake_kube_apiserver.py --cert CERT --key KEY --token-file FILE \\
      --work-dir DIR [--forbid VERB:RESOURCE ...]
      [--enclave-env NAME=VALUE ...]
      [--user USER] [--verbose]

It listens on 127.0.0.1 on an ephemeral port (TLS 1.2+, HTTP/1.1 with
keep-alive) and prints the port number alone on a line on stdout once it
accepts connections. On SIGTERM (or SIGINT) it kills the process group of
every simulated pod and exits 0.

Authentication: each /api and /apis request must carry
"Authorization: Bearer <token>", where <token> is the stripped content of
--token-file, re-read on every request (tokens rotate). Otherwise: 401.

Authorization: --forbid create:networkpolicies (verbs get, list, watch,
create, update, patch, delete, deletecollection; resources pods, pods/log,
secrets, networkpolicies) answers 403 Forbidden, worded as real RBAC does for
the user given by --user (default
system:serviceaccount:airlock:airlock-kernel).

Resources (namespaced, any namespace name; no Namespace objects needed):
  /api/v1/namespaces/NS/pods[/NAME[/log|/status]]          Pod, PodList
  /api/v1/namespaces/NS/secrets[/NAME]                      Secret, SecretList
  /apis/networking.k8s.io/v1/namespaces/NS/networkpolicies[/NAME]
  /api/v1/pods, /api/v1/secrets, /apis/networking.k8s.io/v1/networkpolicies
      (all namespaces; list and watch only)
Verbs: POST (create), GET (get, list, watch with ?watch=1), PUT (update,
optimistic concurrency on metadata.resourceVersion), PATCH (only
application/merge-patch+json; strategic-merge-patch+json is treated as a
merge patch), DELETE (item and collection). Also /version, /healthz, /livez,
/readyz, and minimal discovery documents at /api, /apis, /api/v1 and
/apis/networking.k8s.io/v1.

Test control endpoints (no authentication, not recorded):
  GET  /_test/requests       every /api* request so far, in order:
                             [{"method","path","query":{k: v},"body","status"}]
  POST /_test/compact        horizon := current resourceVersion; ends every
                             open watch with an ERROR 410 event
                             -> {"horizon": rv}
  GET  /_test/objects        {"pods": [...], "secrets": [...],
                              "networkpolicies": [...]}
  GET  /_test/pod-log?namespace=NS&name=X   captured stdout+stderr (text)
  GET  /_test/pod-pid?namespace=NS&name=X   {"pid": N|null, "running": bool}
  POST /_test/pod-oom?namespace=NS&name=X   SIGKILLs the pod's process as the
                             OOM killer would; the pod ends OOMKilled, 137
  POST /_test/pod-status?namespace=NS&name=X  body replaces the pod's status

Simulated kubelet: pods are scheduled onto "fake-node-1" and the first
container's command+args run as a real local process (its own session and
process group, cwd DIR/pods/NS/POD, output to DIR/pods/NS/POD/log). Volumes
(secret, emptyDir) become directories DIR/pods/NS/POD/<volume name>/, and
every volume mountPath found in command, args and literal env values is
rewritten to that directory. The process environment is PATH=/usr/bin:/bin,
overridden by the --enclave-env pairs (as an image's env would be),
overridden by the pod's resolved env. Images whose name contains
"pull-fails" or "oom-killed", and pods whose nodeSelector has the key
"airlock.test/unschedulable", produce the matching failure statuses.
"""

import argparse
import base64
import binascii
import bisect
import copy
import datetime
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DEFAULT_USER = "system:serviceaccount:airlock:airlock-kernel"
NODE_NAME = "fake-node-1"
LOOPBACK = "127.0.0.1"
MAX_BODY = 3 * 1024 * 1024  # the real API server's request body limit
MAX_SECRET_BYTES = 1024 * 1024
UNSCHEDULABLE_KEY = "airlock.test/unschedulable"
KILL_GRACE_CAP = 2.0  # seconds between SIGTERM and SIGKILL, at most
MOUNT_RETRY_FOR = 10.0
MOUNT_RETRY_EVERY = 0.2


class ResourceInfo:
    def __init__(self, plural, kind, group, version):
        self.plural = plural
        self.kind = kind
        self.list_kind = kind + "List"
        self.group = group
        self.api_version = f"{group}/{version}" if group else version
        # "pods" for the core group, "networkpolicies.networking.k8s.io" else.
        self.qualified = f"{plural}.{group}" if group else plural
        self.qualified_kind = f"{kind}.{group}" if group else kind


RESOURCES = {
    "pods": ResourceInfo("pods", "Pod", "", "v1"),
    "secrets": ResourceInfo("secrets", "Secret", "", "v1"),
    "networkpolicies": ResourceInfo("networkpolicies", "NetworkPolicy",
                                    "networking.k8s.io", "v1"),
}
CORE_RESOURCES = ("pods", "secrets")
GROUP_RESOURCES = {"networking.k8s.io/v1": ("networkpolicies",)}
KNOWN_VERBS = ("get", "list", "watch", "create", "update", "patch", "delete",
               "deletecollection")
KNOWN_FORBID_RESOURCES = ("pods", "pods/log", "pods/status", "secrets",
                          "networkpolicies")


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------- Status ---

class ApiError(Exception):
    """An error answered as a Kubernetes Status object."""

    def __init__(self, code, reason, message, details=None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details


def status_object(code, reason, message, details=None):
    obj = {"kind": "Status", "apiVersion": "v1", "metadata": {},
           "status": "Failure", "message": message, "reason": reason}
    if details is not None:
        obj["details"] = details
    obj["code"] = code
    return obj


def error_details(info, name=None):
    """StatusDetails as the API server fills them: empty fields omitted."""
    details = {}
    if name:
        details["name"] = name
    if info.group:
        details["group"] = info.group
    details["kind"] = info.plural
    return details


def not_found(info, name):
    return ApiError(404, "NotFound", f'{info.qualified} "{name}" not found',
                    error_details(info, name))


def bad_request(message):
    return ApiError(400, "BadRequest", message)


# ------------------------------------------------------------ validation ---

DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN_FMT = DNS1123_LABEL_FMT + "(\\." + DNS1123_LABEL_FMT + ")*"
DNS1123_LABEL_RE = re.compile("^" + DNS1123_LABEL_FMT + "$")
DNS1123_SUBDOMAIN_RE = re.compile("^" + DNS1123_SUBDOMAIN_FMT + "$")
QNAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
QNAME_RE = re.compile("^" + QNAME_FMT + "$")
LABEL_VALUE_FMT = "(" + QNAME_FMT + ")?"
LABEL_VALUE_RE = re.compile("^" + LABEL_VALUE_FMT + "$")
CONFIG_KEY_RE = re.compile(r"^[-._a-zA-Z0-9]+$")
ENV_NAME_RE = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")

DNS1123_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
    "characters, '-' or '.', and must start and end with an alphanumeric "
    "character (e.g. 'example.com', regex used for validation is '"
    + DNS1123_SUBDOMAIN_FMT + "')")
DNS1123_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric "
    "characters or '-', and must start and end with an alphanumeric character "
    "(e.g. 'my-name',  or '123-abc', regex used for validation is '"
    + DNS1123_LABEL_FMT + "')")
QNAME_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and "
    "must start and end with an alphanumeric character (e.g. 'MyName',  or "
    "'my.name',  or '123-abc', regex used for validation is '"
    + QNAME_FMT + "')")
LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric "
    "characters, '-', '_' or '.', and must start and end with an alphanumeric "
    "character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for "
    "validation is '" + LABEL_VALUE_FMT + "')")
CONFIG_KEY_MSG = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or "
    "'.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for "
    "validation is '[-._a-zA-Z0-9]+')")
ENV_NAME_MSG = (
    "a valid environment variable name must consist of alphabetic characters, "
    "digits, '_', '-', or '.', and must not start with a digit (e.g. "
    "'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', regex used for "
    "validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')")


def go_quote(value):
    """Roughly Go's %q / %#v for the values the API server quotes."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(value)


class FieldErrors:
    """Collects field.ErrorList entries, formatted as the API server does."""

    def __init__(self):
        self.items = []  # (reason, field, text-after-field, cause-message)

    def invalid(self, field, value, detail):
        msg = f"Invalid value: {go_quote(value)}: {detail}"
        self.items.append(("FieldValueInvalid", field, msg))

    def required(self, field, detail=""):
        msg = "Required value" + (f": {detail}" if detail else "")
        self.items.append(("FieldValueRequired", field, msg))

    def not_supported(self, field, value, supported):
        opts = ", ".join(go_quote(s) for s in supported)
        msg = f"Unsupported value: {go_quote(value)}: supported values: {opts}"
        self.items.append(("FieldValueNotSupported", field, msg))

    def not_found(self, field, value):
        self.items.append(("FieldValueNotFound", field,
                           f"Not found: {go_quote(value)}"))

    def duplicate(self, field, value):
        self.items.append(("FieldValueDuplicate", field,
                           f"Duplicate value: {go_quote(value)}"))

    def too_long(self, field, limit):
        self.items.append(("FieldValueTooLong", field,
                           f"Too long: must have at most {limit} bytes"))

    def raise_if_any(self, info, name):
        if not self.items:
            return
        texts = [f"{field}: {msg}" for _, field, msg in self.items]
        joined = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
        details = {}
        if name:
            details["name"] = name
        if info.group:
            details["group"] = info.group
        details["kind"] = info.kind
        details["causes"] = [{"reason": r, "message": m, "field": f}
                             for r, f, m in self.items]
        raise ApiError(422, "Invalid",
                       f'{info.qualified_kind} "{name}" is invalid: {joined}',
                       details)


def check_dns1123_subdomain(errs, field, value):
    if len(value) > 253:
        errs.invalid(field, value, "must be no more than 253 characters")
    if not DNS1123_SUBDOMAIN_RE.match(value):
        errs.invalid(field, value, DNS1123_SUBDOMAIN_MSG)


def check_dns1123_label(errs, field, value):
    if len(value) > 63:
        errs.invalid(field, value, "must be no more than 63 characters")
    if not DNS1123_LABEL_RE.match(value):
        errs.invalid(field, value, DNS1123_LABEL_MSG)


def qualified_name_problems(key):
    problems = []
    parts = key.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            problems.append("prefix part must be non-empty")
        else:
            if len(prefix) > 253:
                problems.append(
                    "prefix part must be no more than 253 characters")
            if not DNS1123_SUBDOMAIN_RE.match(prefix):
                problems.append("prefix part " + DNS1123_SUBDOMAIN_MSG)
    else:
        return ["a qualified name " + QNAME_MSG[len("name part "):]
                + " with an optional DNS subdomain prefix and '/' "
                "(e.g. 'example.com/MyName')"]
    if not name:
        problems.append("name part must be non-empty")
    else:
        if len(name) > 63:
            problems.append("name part must be no more than 63 characters")
        if not QNAME_RE.match(name):
            problems.append(QNAME_MSG)
    return problems


def validate_object_meta(errs, meta, name, generate_name):
    if not name and not generate_name:
        errs.required("metadata.name", "name or generateName is required")
    elif name:
        check_dns1123_subdomain(errs, "metadata.name", name)
    labels = meta.get("labels")
    if labels is not None and not isinstance(labels, dict):
        errs.invalid("metadata.labels", labels, "must be a map")
        labels = {}
    for key, value in (labels or {}).items():
        for problem in qualified_name_problems(key):
            errs.invalid("metadata.labels", key, problem)
        if not isinstance(value, str):
            errs.invalid(f"metadata.labels", value, "must be a string")
            continue
        if len(value) > 63:
            errs.invalid("metadata.labels", value,
                         "must be no more than 63 characters")
        if not LABEL_VALUE_RE.match(value):
            errs.invalid("metadata.labels", value, LABEL_VALUE_MSG)
    annotations = meta.get("annotations")
    for key in (annotations or {}) if isinstance(annotations, dict) else ():
        for problem in qualified_name_problems(key.lower()):
            errs.invalid("metadata.annotations", key, problem)


def validate_pod(errs, obj):
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        spec = {}
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        errs.required("spec.containers")
        containers = []
    volume_names = set()
    for i, vol in enumerate(spec.get("volumes") or []):
        vname = vol.get("name", "") if isinstance(vol, dict) else ""
        field = f"spec.volumes[{i}].name"
        if not vname:
            errs.required(field)
            continue
        check_dns1123_label(errs, field, vname)
        if vname in volume_names:
            errs.duplicate(field, vname)
        volume_names.add(vname)
    seen = set()
    for i, c in enumerate(containers):
        base = f"spec.containers[{i}]"
        if not isinstance(c, dict):
            errs.invalid(base, c, "must be an object")
            continue
        cname = c.get("name") or ""
        if not cname:
            errs.required(base + ".name")
        else:
            check_dns1123_label(errs, base + ".name", cname)
            if cname in seen:
                errs.duplicate(base + ".name", cname)
            seen.add(cname)
        if not c.get("image"):
            errs.required(base + ".image")
        for j, e in enumerate(c.get("env") or []):
            ename = e.get("name") if isinstance(e, dict) else None
            if not ename:
                errs.required(f"{base}.env[{j}].name")
            elif not ENV_NAME_RE.match(ename):
                errs.invalid(f"{base}.env[{j}].name", ename, ENV_NAME_MSG)
        mount_paths = set()
        for j, vm in enumerate(c.get("volumeMounts") or []):
            vname = vm.get("name", "") if isinstance(vm, dict) else ""
            field = f"{base}.volumeMounts[{j}]"
            if not vname:
                errs.required(field + ".name")
            elif vname not in volume_names:
                errs.not_found(field + ".name", vname)
            mp = vm.get("mountPath", "") if isinstance(vm, dict) else ""
            if not mp:
                errs.required(field + ".mountPath")
            elif mp in mount_paths:
                errs.invalid(field + ".mountPath", mp, "must be unique")
            mount_paths.add(mp)
    rp = spec.get("restartPolicy")
    if rp is not None and rp not in ("Always", "OnFailure", "Never"):
        errs.not_supported("spec.restartPolicy", rp,
                           ["Always", "OnFailure", "Never"])
    ads = spec.get("activeDeadlineSeconds")
    if ads is not None and (not isinstance(ads, int) or isinstance(ads, bool)
                            or ads < 1 or ads > 2147483647):
        errs.invalid("spec.activeDeadlineSeconds", ads,
                     "must be between 1 and 2147483647, inclusive")


def validate_secret(errs, obj):
    data = obj.get("data") or {}
    total = 0
    for key, value in data.items():
        if not CONFIG_KEY_RE.match(key) or len(key) > 253:
            errs.invalid(f"data[{key}]", key, CONFIG_KEY_MSG)
        total += len(base64.b64decode(value))
    if total > MAX_SECRET_BYTES:
        errs.too_long("data", MAX_SECRET_BYTES)


def validate_networkpolicy(errs, obj):
    spec = obj.get("spec") or {}
    for i, ptype in enumerate(spec.get("policyTypes") or []):
        if ptype not in ("Ingress", "Egress"):
            errs.not_supported(f"spec.policyTypes[{i}]", ptype,
                               ["Ingress", "Egress"])


VALIDATORS = {"pods": validate_pod, "secrets": validate_secret,
              "networkpolicies": validate_networkpolicy}


def check_secret_base64(info, obj):
    """The API server decodes Secret.data as []byte: bad base64 is a 400."""
    data = obj.get("data")
    if data is None:
        return
    if not isinstance(data, dict):
        raise bad_request(f'{info.kind} in version "v1" cannot be handled as '
                          f'a {info.kind}: json: cannot unmarshal '
                          f'{type(data).__name__} into Go struct field '
                          f'Secret.data of type map[string][]uint8')
    for key, value in data.items():
        problem = None
        if not isinstance(value, str):
            problem = "expected a base64 string"
        else:
            try:
                base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                alphabet = re.compile(r"[^A-Za-z0-9+/=]")
                m = alphabet.search(value)
                pos = m.start() if m else max(0, len(value) - len(value) % 4)
                problem = f"illegal base64 data at input byte {pos}"
        if problem:
            raise bad_request(f'{info.kind} in version "v1" cannot be handled '
                              f'as a {info.kind}: {problem}')


def apply_defaults(resource, obj):
    spec = obj.get("spec")
    if resource == "pods":
        spec.setdefault("restartPolicy", "Always")
        spec.setdefault("terminationGracePeriodSeconds", 30)
        spec.setdefault("dnsPolicy", "ClusterFirst")
        spec.setdefault("serviceAccountName", "default")
        spec.setdefault("securityContext", {})
        spec.setdefault("schedulerName", "default-scheduler")
        spec.setdefault("enableServiceLinks", True)
        spec.setdefault("priority", 0)
        for c in spec["containers"]:
            image = c.get("image", "")
            tagged = ":" in image.rsplit("/", 1)[-1] or "@" in image
            latest = image.endswith(":latest") or not tagged
            c.setdefault("imagePullPolicy", "Always" if latest
                         else "IfNotPresent")
            c.setdefault("resources", {})
            c.setdefault("terminationMessagePath", "/dev/termination-log")
            c.setdefault("terminationMessagePolicy", "File")
        obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
    elif resource == "secrets":
        obj.setdefault("type", "Opaque")
    elif resource == "networkpolicies":
        if spec is None:
            spec = obj["spec"] = {}
        spec.setdefault("podSelector", {})
        if "policyTypes" not in spec:
            types = ["Ingress"]
            if spec.get("egress"):
                types.append("Egress")
            spec["policyTypes"] = types


# ------------------------------------------------------------ selectors ---

SEL_KEY = r"[A-Za-z0-9][-A-Za-z0-9_./]*"
SEL_VALUE = r"[-A-Za-z0-9_.]*"
SEL_EQ_RE = re.compile(rf"^({SEL_KEY})\s*(==|!=|=)\s*({SEL_VALUE})$")
SEL_SET_RE = re.compile(rf"^({SEL_KEY})\s+(in|notin)\s*\(([^)]*)\)$")
SEL_EXISTS_RE = re.compile(rf"^({SEL_KEY})$")
SEL_NOT_EXISTS_RE = re.compile(rf"^!\s*({SEL_KEY})$")


def split_selector(text):
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def parse_label_selector(text):
    """Returns a predicate over a labels dict; raises ApiError (400)."""
    reqs = []
    for part in split_selector(text or ""):
        m = SEL_NOT_EXISTS_RE.match(part)
        if m:
            reqs.append(("!", m.group(1), None))
            continue
        m = SEL_SET_RE.match(part)
        if m:
            values = {v.strip() for v in m.group(3).split(",") if v.strip()}
            reqs.append((m.group(2), m.group(1), values))
            continue
        m = SEL_EQ_RE.match(part)
        if m:
            op = "=" if m.group(2) == "==" else m.group(2)
            reqs.append((op, m.group(1), m.group(3)))
            continue
        m = SEL_EXISTS_RE.match(part)
        if m:
            reqs.append(("exists", m.group(1), None))
            continue
        raise bad_request(f"unable to parse requirement: found '{part}', "
                          "expected: label selector requirement")

    def match(labels):
        labels = labels or {}
        for op, key, value in reqs:
            have = key in labels
            if op == "=" and not (have and labels[key] == value):
                return False
            if op == "!=" and have and labels[key] == value:
                return False
            if op == "exists" and not have:
                return False
            if op == "!" and have:
                return False
            if op == "in" and not (have and labels[key] in value):
                return False
            if op == "notin" and have and labels[key] in value:
                return False
        return True
    return match


FIELD_GETTERS = {
    "metadata.name": lambda o: o.get("metadata", {}).get("name", ""),
    "metadata.namespace": lambda o: o.get("metadata", {}).get("namespace", ""),
}
POD_FIELD_GETTERS = {
    "status.phase": lambda o: (o.get("status") or {}).get("phase", ""),
    "spec.nodeName": lambda o: (o.get("spec") or {}).get("nodeName", ""),
    "spec.restartPolicy":
        lambda o: (o.get("spec") or {}).get("restartPolicy", ""),
    "status.podIP": lambda o: (o.get("status") or {}).get("podIP", ""),
}
SECRET_FIELD_GETTERS = {"type": lambda o: o.get("type", "")}


def parse_field_selector(resource, text):
    getters = dict(FIELD_GETTERS)
    if resource == "pods":
        getters.update(POD_FIELD_GETTERS)
    elif resource == "secrets":
        getters.update(SECRET_FIELD_GETTERS)
    reqs = []
    for part in split_selector(text or ""):
        m = re.match(r"^([^=!]+?)\s*(==|!=|=)\s*(.*)$", part)
        if not m:
            raise bad_request(f"invalid selector: '{text}'; can't understand "
                              f"'{part}'")
        field, op, value = m.group(1).strip(), m.group(2), m.group(3).strip()
        if field not in getters:
            raise bad_request(f'field label not supported: {field}')
        reqs.append((getters[field], op != "!=", value))

    def match(obj):
        return all((get(obj) == value) == want for get, want, value in reqs)
    return match


def make_matcher(resource, namespace, query):
    labels = parse_label_selector(query.get("labelSelector", ""))
    fields = parse_field_selector(resource, query.get("fieldSelector", ""))

    def match(obj):
        meta = obj.get("metadata", {})
        if namespace is not None and meta.get("namespace") != namespace:
            return False
        return labels(meta.get("labels")) and fields(obj)
    return match


# ----------------------------------------------------------------- store ---

class Event:
    __slots__ = ("rv", "resource", "type", "obj", "prev")

    def __init__(self, rv, resource, etype, obj, prev):
        self.rv = rv
        self.resource = resource
        self.type = etype
        self.obj = obj
        self.prev = prev


class Store:
    """Objects, the event history and the request log, under one lock.

    Watchers wait on `changed` (same lock). Every change takes the next
    resourceVersion from one global counter, as etcd's revision does.
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.rv = 1
        self.objects = {r: {} for r in RESOURCES}  # GUARDED_BY(lock)
        self.history = []       # Event, increasing rv; GUARDED_BY(lock)
        self.history_rvs = []   # parallel list of rv for bisect
        self.horizon = 0        # watches from rv < horizon get 410
        self.epoch = 0          # bumped by compaction; ends open watches
        self.requests = []

    # All _methods require self.lock held.
    def _bump(self):
        self.rv += 1
        return self.rv

    def _record(self, resource, etype, obj, prev):
        ev = Event(self.rv, resource, etype, copy.deepcopy(obj),
                   copy.deepcopy(prev) if prev is not None else None)
        self.history.append(ev)
        self.history_rvs.append(ev.rv)
        self.changed.notify_all()

    def create(self, resource, ns, obj, info):
        with self.lock:
            meta = obj["metadata"]
            table = self.objects[resource]
            if meta.get("generateName") and not meta.get("name"):
                for _ in range(100):
                    candidate = (meta["generateName"][:58] + "".join(
                        random.choice("bcdfghjklmnpqrstvwxz2456789")
                        for _ in range(5)))
                    if (ns, candidate) not in table:
                        break
                meta["name"] = candidate
            name = meta["name"]
            if (ns, name) in table:
                raise ApiError(409, "AlreadyExists",
                               f'{info.qualified} "{name}" already exists',
                               error_details(info, name))
            meta["namespace"] = ns
            meta["uid"] = str(uuid.uuid4())
            meta["resourceVersion"] = str(self._bump())
            meta["creationTimestamp"] = now_rfc3339()
            for transient in ("deletionTimestamp",
                              "deletionGracePeriodSeconds", "selfLink"):
                meta.pop(transient, None)
            table[(ns, name)] = obj
            self._record(resource, "ADDED", obj, None)
            return copy.deepcopy(obj)

    def get(self, resource, ns, name):
        with self.lock:
            obj = self.objects[resource].get((ns, name))
            return copy.deepcopy(obj) if obj is not None else None

    def list(self, resource, match):
        with self.lock:
            items = [copy.deepcopy(o) for o in self._sorted(resource)
                     if match(o)]
            return str(self.rv), items

    def _sorted(self, resource):
        table = self.objects[resource]
        return [table[k] for k in sorted(table)]

    def update(self, resource, ns, name, mutate, uid=None):
        """Applies mutate(copy) and stores it; None if absent or uid differs.

        mutate may raise ApiError; it may return False to skip the write.
        """
        with self.lock:
            cur = self.objects[resource].get((ns, name))
            if cur is None or (uid and cur["metadata"].get("uid") != uid):
                return None
            new = copy.deepcopy(cur)
            if mutate(new) is False:
                return copy.deepcopy(cur)
            new["metadata"]["resourceVersion"] = str(self._bump())
            self.objects[resource][(ns, name)] = new
            self._record(resource, "MODIFIED", new, cur)
            return copy.deepcopy(new)

    def delete(self, resource, ns, name, uid=None, mutate=None):
        with self.lock:
            cur = self.objects[resource].get((ns, name))
            if cur is None or (uid and cur["metadata"].get("uid") != uid):
                return None
            del self.objects[resource][(ns, name)]
            obj = copy.deepcopy(cur)
            if mutate:
                mutate(obj)
            obj["metadata"]["resourceVersion"] = str(self._bump())
            self._record(resource, "DELETED", obj, cur)
            return copy.deepcopy(obj)

    def compact(self):
        with self.lock:
            self.horizon = self.rv
            cut = bisect.bisect_right(self.history_rvs, self.horizon)
            del self.history[:cut]
            del self.history_rvs[:cut]
            self.epoch += 1
            self.changed.notify_all()
            return self.horizon

    def _events_after(self, rv, resource):
        start = bisect.bisect_right(self.history_rvs, rv)
        return [e for e in self.history[start:] if e.resource == resource]

    def snapshot(self):
        with self.lock:
            return {r: [copy.deepcopy(o) for o in self._sorted(r)]
                    for r in RESOURCES}

    def log_request(self, entry):
        with self.lock:
            self.requests.append(entry)

    def request_log(self):
        with self.lock:
            return copy.deepcopy(self.requests)


# --------------------------------------------------------------- kubelet ---

def kill_group(pid, sig):
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def expand_vars(text, env):
    """Kubernetes $(VAR) expansion: $$ -> $, unknown references kept."""
    out, i, n = [], 0, len(text)
    while i < n:
        ch = text[i]
        if ch != "$" or i + 1 >= n:
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "(":
            end = text.find(")", i + 2)
            if end == -1:
                out.append("$(")
                i += 2
            else:
                name = text[i + 2:end]
                out.append(env[name] if name and name in env
                           else text[i:end + 1])
                i = end + 1
        else:
            out.append("$" + nxt)
            i += 2
    return "".join(out)


class MountRewriter:
    """Replaces container mountPaths by their local directories in strings."""

    def __init__(self, mounts):
        self.mounts = {}
        for mount_path, local in mounts:
            mount_path = mount_path.rstrip("/")
            if mount_path:
                self.mounts[mount_path] = local
        if self.mounts:
            alts = "|".join(re.escape(m) for m in
                            sorted(self.mounts, key=len, reverse=True))
            self.regex = re.compile(
                r"(?<![A-Za-z0-9_.\-/])(" + alts +
                r")(?=/|$|[^A-Za-z0-9_.\-])")
        else:
            self.regex = None

    def __call__(self, text):
        if self.regex is None:
            return text
        return self.regex.sub(lambda m: self.mounts[m.group(1)], text)


class ConfigError(Exception):
    def __init__(self, reason, message):
        super().__init__(message)
        self.reason = reason
        self.message = message


class PodRuntime:
    def __init__(self, ns, name, uid, pod_dir):
        self.ns = ns
        self.name = name
        self.uid = uid
        self.dir = pod_dir
        self.lock = threading.RLock()  # serialises kubelet actions on the pod
        self.stop = threading.Event()
        self.finished = False  # GUARDED_BY(lock): no more kubelet updates
        self.proc = None       # GUARDED_BY(lock)
        self.oom_killed = False  # set by /_test/pod-oom before the kill


def condition(ctype, status, reason=None, message=None):
    cond = {"type": ctype, "status": status, "lastProbeTime": None,
            "lastTransitionTime": now_rfc3339()}
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    return cond


class Kubelet:
    def __init__(self, store, work_dir, enclave_env):
        self.store = store
        self.work_dir = work_dir
        self.enclave_env = enclave_env
        self.lock = threading.Lock()
        self.runtimes = {}       # uid -> PodRuntime; GUARDED_BY(lock)
        self.by_name = {}        # (ns, name) -> latest PodRuntime
        self.shutting_down = False

    def pod_dir(self, ns, name):
        return os.path.join(self.work_dir, "pods", ns, name)

    def start(self, pod):
        meta = pod["metadata"]
        rt = PodRuntime(meta["namespace"], meta["name"], meta["uid"],
                        self.pod_dir(meta["namespace"], meta["name"]))
        with self.lock:
            self.runtimes[rt.uid] = rt
            self.by_name[(rt.ns, rt.name)] = rt
        threading.Thread(target=self._run_guarded, args=(rt,),
                         daemon=True).start()

    def runtime(self, uid):
        with self.lock:
            return self.runtimes.get(uid)

    def runtime_by_name(self, ns, name):
        with self.lock:
            return self.by_name.get((ns, name))

    # -- status updates -------------------------------------------------
    def update(self, rt, mutate, terminal=False, force=False):
        """Writes a pod change unless the pod is gone or already finished."""
        with rt.lock:
            if rt.finished and not force:
                return False
            res = self.store.update("pods", rt.ns, rt.name, mutate, uid=rt.uid)
            if res is None:
                rt.finished = True
                rt.stop.set()
                return False
            if terminal:
                rt.finished = True
            return True

    @staticmethod
    def _set_container_state(pod, state, ready=False, extra=None):
        c0 = pod["spec"]["containers"][0]
        status = pod.setdefault("status", {})
        prev = (status.get("containerStatuses") or [{}])[0]
        cs = {"name": c0.get("name"), "image": c0.get("image"),
              "imageID": prev.get("imageID", ""),
              "ready": ready, "restartCount": 0,
              "started": "running" in state, "state": state,
              "lastState": {}}
        if extra:
            cs.update(extra)
        for key in ("containerID",):
            if key in prev and key not in cs:
                cs[key] = prev[key]
        status["containerStatuses"] = [cs]

    @staticmethod
    def _set_conditions(pod, ready, reason=None):
        status = pod.setdefault("status", {})
        r = None if ready else (reason or "ContainersNotReady")
        msg = None if ready else (
            f"containers with unready status: "
            f"[{pod['spec']['containers'][0].get('name')}]"
            if r == "ContainersNotReady" else None)
        status["conditions"] = [
            condition("Initialized", "True"),
            condition("Ready", "True" if ready else "False", r, msg),
            condition("ContainersReady", "True" if ready else "False", r, msg),
            condition("PodScheduled", "True"),
        ]

    def _waiting(self, rt, reason, message=None):
        def mutate(pod):
            waiting = {"reason": reason}
            if message:
                waiting["message"] = message
            pod["status"]["phase"] = "Pending"
            self._set_container_state(pod, {"waiting": waiting})
        return self.update(rt, mutate)

    # -- the pod lifecycle ----------------------------------------------
    def _run_guarded(self, rt):
        try:
            self._run(rt)
        except Exception as exc:  # a kubelet bug must not kill the server
            print(f"fake kubelet: pod {rt.ns}/{rt.name}: {exc!r}",
                  file=sys.stderr, flush=True)

    def _run(self, rt):
        if rt.stop.wait(0.1):
            return
        pod = self.store.get("pods", rt.ns, rt.name)
        if pod is None or pod["metadata"]["uid"] != rt.uid:
            return
        spec = pod["spec"]
        node_selector = spec.get("nodeSelector") or {}
        if UNSCHEDULABLE_KEY in node_selector:
            def unschedulable(p):
                p["status"] = {
                    "phase": "Pending", "qosClass": "BestEffort",
                    "conditions": [condition(
                        "PodScheduled", "False", "Unschedulable",
                        "0/3 nodes are available: 3 node(s) didn't match "
                        "Pod's node affinity/selector. preemption: 0/3 nodes "
                        "are available: 3 Preemption is not helpful for "
                        "scheduling.")]}
            self.update(rt, unschedulable, terminal=True)
            return

        def scheduled(p):
            p["spec"]["nodeName"] = NODE_NAME
            p.setdefault("status", {})["conditions"] = [
                condition("PodScheduled", "True")]
        if not self.update(rt, scheduled) or rt.stop.wait(0.02):
            return

        c0 = spec["containers"][0]
        image = c0.get("image", "")
        # A fresh sandbox: a pod re-created under the same name starts clean.
        shutil.rmtree(rt.dir, ignore_errors=True)
        os.makedirs(rt.dir, mode=0o755, exist_ok=True)

        def accepted(p):
            st = p.setdefault("status", {})
            st["phase"] = "Pending"
            st["hostIP"] = LOOPBACK
            st["hostIPs"] = [{"ip": LOOPBACK}]
            st["startTime"] = now_rfc3339()
            self._set_conditions(p, ready=False)
            self._set_container_state(p, {"waiting": {
                "reason": "ContainerCreating"}})
        if not self.update(rt, accepted):
            return
        ads = spec.get("activeDeadlineSeconds")
        if isinstance(ads, int) and ads > 0:
            threading.Thread(target=self._deadline, args=(rt, ads),
                             daemon=True).start()

        if "pull-fails" in image:
            self._waiting(rt, "ErrImagePull",
                          "rpc error: code = NotFound desc = failed to pull "
                          f"and unpack image \"{image}\": not found")
            if rt.stop.wait(0.2):
                return
            self._waiting(rt, "ImagePullBackOff",
                          f'Back-off pulling image "{image}"')
            return

        # Mount volumes and build the container config; retry like the
        # kubelet's sync loop, so objects created after the pod still work.
        give_up = time.monotonic() + MOUNT_RETRY_FOR
        last_problem = ("ContainerCreating", None)
        while True:
            try:
                mounts = self._mount_volumes(rt, pod)
                env = self._resolve_env(rt, pod, c0, mounts)
                break
            except ConfigError as err:
                problem = (err.reason, err.message
                           if err.reason != "ContainerCreating" else None)
                if problem != last_problem:
                    if not self._waiting(rt, *problem):
                        return
                    last_problem = problem
            if time.monotonic() > give_up or rt.stop.wait(MOUNT_RETRY_EVERY):
                return

        if "oom-killed" in image:
            self._oom_killed(rt)
            return
        self._start_process(rt, pod, c0, mounts, env)

    def _oom_killed(self, rt):
        started = now_rfc3339()

        def running(p):
            p["status"]["phase"] = "Running"
            p["status"]["podIP"] = LOOPBACK
            p["status"]["podIPs"] = [{"ip": LOOPBACK}]
            self._set_conditions(p, ready=True)
            self._set_container_state(
                p, {"running": {"startedAt": started}}, ready=True,
                extra={"containerID": "containerd://" + uuid.uuid4().hex * 2})
        if not self.update(rt, running) or rt.stop.wait(0.3):
            return

        def oom(p):
            p["status"]["phase"] = "Failed"
            self._set_conditions(p, ready=False, reason="PodFailed")
            self._set_container_state(p, {"terminated": {
                "exitCode": 137, "reason": "OOMKilled", "startedAt": started,
                "finishedAt": now_rfc3339()}})
        self.update(rt, oom, terminal=True)

    def _mount_volumes(self, rt, pod):
        """Creates every pod volume; returns [(mountPath, local dir)]."""
        spec = pod["spec"]
        local = {}
        for vol in spec.get("volumes") or []:
            vname = vol["name"]
            vdir = os.path.join(rt.dir, vname)
            if "secret" in vol:
                self._mount_secret(rt, vol["secret"] or {}, vdir)
                local[vname] = vdir
            elif "hostPath" in vol:
                local[vname] = (vol["hostPath"] or {}).get("path", vdir)
            else:  # emptyDir and every unsupported type: an empty directory
                os.makedirs(vdir, mode=0o755, exist_ok=True)
                os.chmod(vdir, 0o755)
                local[vname] = vdir
        mounts = []
        for vm in spec["containers"][0].get("volumeMounts") or []:
            path = local.get(vm.get("name"))
            if path is None:
                continue
            if vm.get("subPath"):
                path = os.path.join(path, vm["subPath"])
            mounts.append((vm.get("mountPath", ""), path))
        return mounts

    def _mount_secret(self, rt, source, vdir):
        sname = source.get("secretName", "")
        optional = bool(source.get("optional"))
        secret = self.store.get("secrets", rt.ns, sname)
        files = {}
        default_mode = source.get("defaultMode", 0o644)
        if secret is None:
            if not optional:
                raise ConfigError("ContainerCreating",
                                  f'secret "{sname}" not found')
        else:
            data = {k: base64.b64decode(v)
                    for k, v in (secret.get("data") or {}).items()}
            items = source.get("items")
            if items:
                for item in items:
                    key = item.get("key", "")
                    if key not in data:
                        if optional:
                            continue
                        raise ConfigError(
                            "ContainerCreating",
                            f"references non-existent secret key: {key}")
                    files[item.get("path", key)] = (
                        data[key], item.get("mode", default_mode))
            else:
                files = {k: (v, default_mode) for k, v in data.items()}
        if os.path.isdir(vdir):
            shutil.rmtree(vdir)
        os.makedirs(vdir, mode=0o755, exist_ok=True)
        os.chmod(vdir, 0o755)
        for rel, (content, mode) in files.items():
            path = os.path.normpath(os.path.join(vdir, rel))
            if not path.startswith(vdir + os.sep):
                continue  # the API server rejects '..' paths
            os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
            with open(path, "wb") as f:
                f.write(content)
            os.chmod(path, mode)

    def _secret_value(self, ns, sname, key, optional):
        secret = self.store.get("secrets", ns, sname)
        if secret is None:
            if optional:
                return None
            raise ConfigError("CreateContainerConfigError",
                              f'secret "{sname}" not found')
        data = secret.get("data") or {}
        if key not in data:
            if optional:
                return None
            raise ConfigError("CreateContainerConfigError",
                              f"couldn't find key {key} in Secret "
                              f"{ns}/{sname}")
        return base64.b64decode(data[key]).decode("utf-8", "surrogateescape")

    def _resolve_env(self, rt, pod, c0, mounts):
        rewrite = MountRewriter(mounts)
        env = {}
        for src in c0.get("envFrom") or []:
            prefix = src.get("prefix", "")
            if "secretRef" in src:
                ref = src["secretRef"] or {}
                secret = self.store.get("secrets", rt.ns, ref.get("name", ""))
                if secret is None:
                    if ref.get("optional"):
                        continue
                    raise ConfigError("CreateContainerConfigError",
                                      f'secret "{ref.get("name", "")}" '
                                      "not found")
                for k, v in (secret.get("data") or {}).items():
                    env[prefix + k] = base64.b64decode(v).decode(
                        "utf-8", "surrogateescape")
            elif "configMapRef" in src:
                ref = src["configMapRef"] or {}
                if not ref.get("optional"):
                    raise ConfigError("CreateContainerConfigError",
                                      f'configmap "{ref.get("name", "")}" '
                                      "not found")
        for e in c0.get("env") or []:
            name = e["name"]
            source = e.get("valueFrom")
            if source is None:
                env[name] = rewrite(expand_vars(e.get("value", ""), env))
                continue
            if "secretKeyRef" in source:
                ref = source["secretKeyRef"] or {}
                value = self._secret_value(rt.ns, ref.get("name", ""),
                                           ref.get("key", ""),
                                           bool(ref.get("optional")))
                if value is not None:
                    env[name] = value
            elif "fieldRef" in source:
                path = (source["fieldRef"] or {}).get("fieldPath", "")
                meta = pod["metadata"]
                values = {"metadata.name": meta["name"],
                          "metadata.namespace": meta["namespace"],
                          "metadata.uid": meta["uid"],
                          "spec.nodeName": NODE_NAME,
                          "spec.serviceAccountName":
                              pod["spec"].get("serviceAccountName", ""),
                          "status.podIP": LOOPBACK,
                          "status.hostIP": LOOPBACK}
                m = re.match(r"^metadata\.(labels|annotations)\['(.*)'\]$",
                             path)
                if m:
                    env[name] = (meta.get(m.group(1)) or {}).get(
                        m.group(2), "")
                else:
                    env[name] = values.get(path, "")
            elif "configMapKeyRef" in source:
                ref = source["configMapKeyRef"] or {}
                if not ref.get("optional"):
                    raise ConfigError("CreateContainerConfigError",
                                      f'configmap "{ref.get("name", "")}" '
                                      "not found")
            else:
                env[name] = ""
        return env

    def _start_process(self, rt, pod, c0, mounts, env):
        rewrite = MountRewriter(mounts)
        command = [rewrite(expand_vars(str(a), env))
                   for a in c0.get("command") or []]
        args = [rewrite(expand_vars(str(a), env))
                for a in c0.get("args") or []]
        argv = command + args
        # The executable is a path in the image, not in a volume: it stays
        # as written (the tests name a host executable, which may well live
        # under a directory a volume is also mounted at, such as /tmp).
        raw = [expand_vars(str(a), env) for a in (c0.get("command") or []) + (c0.get("args") or [])]
        if argv and raw:
            argv[0] = raw[0]
        proc_env = {"PATH": "/usr/bin:/bin"}
        proc_env.update(self.enclave_env)
        proc_env.update(env)
        with rt.lock:
            if rt.finished or self.shutting_down:
                return
            os.makedirs(rt.dir, mode=0o755, exist_ok=True)
            started = now_rfc3339()
            container_id = "containerd://" + uuid.uuid4().hex * 2
            error = None
            if not argv:
                error = ("failed to create containerd container: "
                         "no command specified")
            else:
                try:
                    with open(os.path.join(rt.dir, "log"), "wb") as log:
                        rt.proc = subprocess.Popen(
                            argv, stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT, cwd=rt.dir,
                            env=proc_env, start_new_session=True,
                            close_fds=True)
                except OSError as exc:
                    error = ("failed to create containerd task: failed to "
                             "create shim task: OCI runtime create failed: "
                             "runc create failed: unable to start container "
                             f'process: exec: "{argv[0]}": {exc.strerror}: '
                             "unknown")
            if error:
                def start_error(p):
                    p["status"]["phase"] = "Failed"
                    self._set_conditions(p, ready=False, reason="PodFailed")
                    self._set_container_state(p, {"terminated": {
                        "exitCode": 128, "reason": "StartError",
                        "message": error, "startedAt": started,
                        "finishedAt": now_rfc3339(),
                        "containerID": container_id}},
                        extra={"containerID": container_id})
                self.update(rt, start_error, terminal=True)
                return

            def running(p):
                st = p["status"]
                st["phase"] = "Running"
                st["podIP"] = LOOPBACK
                st["podIPs"] = [{"ip": LOOPBACK}]
                self._set_conditions(p, ready=True)
                self._set_container_state(
                    p, {"running": {"startedAt": started}}, ready=True,
                    extra={"containerID": container_id})
            self.update(rt, running)
            proc = rt.proc

        rc = proc.wait()
        kill_group(proc.pid, signal.SIGKILL)  # the container's other processes

        def exited(p):
            code = rc if rc >= 0 else 128 - rc
            p["status"]["phase"] = "Succeeded" if code == 0 else "Failed"
            self._set_conditions(p, ready=False, reason="PodCompleted"
                                 if code == 0 else "PodFailed")
            self._set_container_state(p, {"terminated": {
                "exitCode": code,
                "reason": ("OOMKilled" if rt.oom_killed else
                           "Completed" if code == 0 else "Error"),
                "startedAt": started, "finishedAt": now_rfc3339(),
                "containerID": container_id}})
        self.update(rt, exited, terminal=True)

    def _deadline(self, rt, seconds):
        if rt.stop.wait(seconds):
            return
        with rt.lock:
            if rt.finished:
                return
            rt.finished = True
            rt.stop.set()
            proc = rt.proc
        rc = None
        if proc is not None:
            kill_group(proc.pid, signal.SIGKILL)
            try:
                rc = proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass

        def exceeded(p):
            st = p["status"]
            st["phase"] = "Failed"
            st["reason"] = "DeadlineExceeded"
            st["message"] = ("Pod was active on the node longer than the "
                             "specified deadline")
            self._set_conditions(p, ready=False, reason="PodFailed")
            if proc is not None:
                code = 137 if rc is None or rc < 0 else rc
                prev = (st.get("containerStatuses") or [{}])[0]
                self._set_container_state(p, {"terminated": {
                    "exitCode": code, "reason": "Error",
                    "startedAt": prev.get("state", {}).get("running", {}).get(
                        "startedAt", now_rfc3339()),
                    "finishedAt": now_rfc3339()}})
        self.update(rt, exceeded, force=True)

    def stop_pod(self, rt, grace):
        """Stops the pod's process: SIGTERM, then SIGKILL after the grace."""
        with rt.lock:
            rt.finished = True
            rt.stop.set()
            proc = rt.proc
        if proc is None:
            return
        kill_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=max(0.0, min(float(grace), KILL_GRACE_CAP)))
        except subprocess.TimeoutExpired:
            pass
        kill_group(proc.pid, signal.SIGKILL)
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            pass

    def kill_all(self):
        """For shutdown: no new processes, SIGKILL every pod's group."""
        self.shutting_down = True
        with self.lock:
            runtimes = list(self.runtimes.values())
        for rt in runtimes:
            locked = rt.lock.acquire(timeout=1)
            try:
                rt.finished = True
                rt.stop.set()
                if rt.proc is not None:
                    kill_group(rt.proc.pid, signal.SIGKILL)
            finally:
                if locked:
                    rt.lock.release()


# ------------------------------------------------------------------- API ---

class Response:
    def __init__(self, status, body, content_type="application/json"):
        self.status = status
        self.body = body
        self.content_type = content_type


class Stream:
    """A 200 response whose chunked body is produced by run(send)."""

    def __init__(self, run, content_type="application/json"):
        self.status = 200
        self.run = run
        self.content_type = content_type


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(target, dict):
        target = {}
    result = dict(target)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strip_type_meta(obj):
    obj = dict(obj)
    obj.pop("kind", None)
    obj.pop("apiVersion", None)
    return obj


class Api:
    """Request -> Response: routing, authn, authz and the resource verbs."""

    def __init__(self, store, kubelet, token_file, forbid, user):
        self.store = store
        self.kubelet = kubelet
        self.token_file = token_file
        self.forbid = forbid
        self.user = user
        self.port = 0

    # -- authentication / authorization ---------------------------------
    def authenticated(self, headers):
        try:
            with open(self.token_file, encoding="utf-8") as f:
                token = f.read().strip()
        except OSError:
            return False
        auth = headers.get("Authorization", "")
        scheme, _, given = auth.partition(" ")
        return bool(token) and scheme.lower() == "bearer" and \
            given.strip() == token

    def authorize(self, verb, resource, sub, ns, name):
        full = resource + ("/" + sub if sub else "")
        if (verb, full) not in self.forbid:
            return
        info = RESOURCES[resource]
        subject = f'{info.qualified} "{name}"' if name else info.qualified
        scope = (f'in the namespace "{ns}"' if ns is not None
                 else "at the cluster scope")
        raise ApiError(
            403, "Forbidden",
            f'{subject} is forbidden: User "{self.user}" cannot {verb} '
            f'resource "{full}" in API group "{info.group}" {scope}',
            error_details(info, name))

    # -- routing ----------------------------------------------------------
    @staticmethod
    def route(path):
        """-> (resource, namespace|None, name|None, subresource|None)."""
        segs = [urllib.parse.unquote(s) for s in path.strip("/").split("/")]
        if segs[:2] == ["api", "v1"]:
            rest, allowed = segs[2:], CORE_RESOURCES
        elif len(segs) >= 3 and segs[0] == "apis" and \
                "/".join(segs[1:3]) in GROUP_RESOURCES:
            rest, allowed = segs[3:], GROUP_RESOURCES["/".join(segs[1:3])]
        else:
            return None
        ns = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            ns, rest = rest[1], rest[2:]
            if not ns:
                return None
        elif len(rest) != 1:
            return None
        if not rest or rest[0] not in allowed or len(rest) > 3:
            return None
        resource, name, sub = rest[0], None, None
        if len(rest) >= 2:
            name = rest[1]
            if not name:
                return None
        if len(rest) == 3:
            sub = rest[2]
            if resource != "pods" or sub not in ("log", "status"):
                return None
        return resource, ns, name, sub

    def discovery(self, path):
        path = path.rstrip("/")
        if path == "/api":
            return {"kind": "APIVersions", "versions": ["v1"],
                    "serverAddressByClientCIDRs": [{
                        "clientCIDR": "0.0.0.0/0",
                        "serverAddress": f"{LOOPBACK}:{self.port}"}]}
        if path == "/apis":
            return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [{
                "name": "networking.k8s.io",
                "versions": [{"groupVersion": "networking.k8s.io/v1",
                              "version": "v1"}],
                "preferredVersion": {"groupVersion": "networking.k8s.io/v1",
                                     "version": "v1"}}]}
        verbs = ["create", "delete", "deletecollection", "get", "list",
                 "patch", "update", "watch"]
        if path == "/api/v1":
            return {"kind": "APIResourceList", "groupVersion": "v1",
                    "resources": [
                        {"name": "pods", "singularName": "pod",
                         "namespaced": True, "kind": "Pod", "verbs": verbs},
                        {"name": "pods/log", "singularName": "",
                         "namespaced": True, "kind": "Pod", "verbs": ["get"]},
                        {"name": "pods/status", "singularName": "",
                         "namespaced": True, "kind": "Pod",
                         "verbs": ["get", "patch", "update"]},
                        {"name": "secrets", "singularName": "secret",
                         "namespaced": True, "kind": "Secret",
                         "verbs": verbs}]}
        if path == "/apis/networking.k8s.io/v1":
            return {"kind": "APIResourceList", "apiVersion": "v1",
                    "groupVersion": "networking.k8s.io/v1",
                    "resources": [{"name": "networkpolicies",
                                   "singularName": "networkpolicy",
                                   "namespaced": True,
                                   "kind": "NetworkPolicy", "verbs": verbs}]}
        return None

    def handle(self, method, path, query, headers, body):
        is_api = path == "/api" or path == "/apis" or \
            path.startswith("/api/") or path.startswith("/apis/")
        if not is_api:
            return self.handle_non_resource(method, path, headers)
        if not self.authenticated(headers):
            return Response(401, status_object(401, "Unauthorized",
                                               "Unauthorized"))
        try:
            return self.handle_api(method, path, query, headers, body)
        except ApiError as err:
            return Response(err.code, status_object(
                err.code, err.reason, err.message, err.details))

    def handle_non_resource(self, method, path, headers):
        if headers.get("Authorization") and not self.authenticated(headers):
            return Response(401, status_object(401, "Unauthorized",
                                               "Unauthorized"))
        if method == "GET" and path == "/version":
            return Response(200, {
                "major": "1", "minor": "30", "gitVersion": "v1.30.0-fake",
                "gitCommit": "0" * 40, "gitTreeState": "clean",
                "buildDate": "2024-04-17T00:00:00Z", "goVersion": "go1.22.2",
                "compiler": "gc", "platform": "linux/amd64"})
        if method == "GET" and path in ("/healthz", "/livez", "/readyz"):
            return Response(200, b"ok", "text/plain; charset=utf-8")
        return Response(404, status_object(
            404, "NotFound", "the server could not find the requested "
            "resource", {}))

    def handle_api(self, method, path, query, headers, body):
        doc = self.discovery(path) if method == "GET" else None
        if doc is not None:
            return Response(200, doc)
        routed = self.route(path)
        if routed is None:
            raise ApiError(404, "NotFound", "the server could not find the "
                           "requested resource", {})
        resource, ns, name, sub = routed
        watching = query.get("watch", "").lower() in ("1", "true")
        if name is None:
            verb = {"GET": "watch" if watching else "list", "POST": "create",
                    "DELETE": "deletecollection"}.get(method)
        elif sub == "log":
            verb = "get" if method == "GET" else None
        else:
            verb = {"GET": "get", "PUT": "update", "PATCH": "patch",
                    "DELETE": "delete"}.get(method)
            if sub == "status" and verb not in ("get", "update", "patch"):
                verb = None
        if verb is None or (ns is None and verb not in ("list", "watch")):
            raise ApiError(405, "MethodNotAllowed", "the server does not "
                           "allow this method on the requested resource", {})
        self.authorize(verb, resource, sub, ns, name)
        info = RESOURCES[resource]
        if verb == "create":
            return self.create(info, ns, self.parse_body(body, headers))
        if verb == "get" and sub == "log":
            return self.pod_log(ns, name, query)
        if verb == "get":
            obj = self.store.get(resource, ns, name)
            if obj is None:
                raise not_found(info, name)
            return Response(200, obj)
        if verb == "list":
            match = make_matcher(resource, ns, query)
            rv, items = self.store.list(resource, match)
            return Response(200, {
                "kind": info.list_kind, "apiVersion": info.api_version,
                "metadata": {"resourceVersion": rv},
                "items": [strip_type_meta(o) for o in items]})
        if verb == "watch":
            return self.watch(info, ns, query)
        if verb == "delete":
            options = self.parse_optional_json(body)
            return self.delete(info, ns, name, query, options)
        if verb == "deletecollection":
            options = self.parse_optional_json(body)
            return self.delete_collection(info, ns, query, options)
        if verb == "update":
            return self.replace(info, ns, name, sub,
                                self.parse_body(body, headers))
        if verb == "patch":
            return self.patch(info, ns, name, sub, body, headers)
        raise ApiError(405, "MethodNotAllowed", "the server does not allow "
                       "this method on the requested resource", {})

    # -- bodies -----------------------------------------------------------
    @staticmethod
    def check_media_type(headers, accepted=("application/json",)):
        ctype = headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype and ctype not in accepted:
            raise ApiError(415, "UnsupportedMediaType",
                           "the body of the request was in an unknown format "
                           "- accepted media types include: "
                           + ", ".join(accepted), {})
        return ctype

    def parse_body(self, body, headers):
        self.check_media_type(headers)
        if not body:
            raise bad_request("the body of the request was empty")
        try:
            obj = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise bad_request(f"couldn't get version/kind; json parse error: "
                              f"{exc}")
        if not isinstance(obj, dict):
            raise bad_request("couldn't get version/kind; json parse error: "
                              "json: cannot unmarshal "
                              f"{type(obj).__name__} into Go value of type "
                              "struct { APIVersion string \"json:\\\""
                              "apiVersion,omitempty\\\"\"; Kind string "
                              "\"json:\\\"kind,omitempty\\\"\" }")
        return obj

    @staticmethod
    def parse_optional_json(body):
        if not body:
            return {}
        try:
            obj = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return {}
        return obj if isinstance(obj, dict) else {}

    @staticmethod
    def check_type_meta(info, obj):
        kind = obj.get("kind")
        api_version = obj.get("apiVersion")
        if (kind and kind != info.kind) or \
                (api_version and api_version != info.api_version):
            raise bad_request(
                f'the object provided is unrecognized (must be of type '
                f'{info.kind}): {api_version or ""}, Kind={kind or ""} '
                f'is not {info.api_version}, Kind={info.kind}')

    def normalize(self, info, ns, obj):
        """Type meta, namespace check, Secret base64 and stringData."""
        self.check_type_meta(info, obj)
        meta = obj.get("metadata")
        if meta is None:
            meta = obj["metadata"] = {}
        if not isinstance(meta, dict):
            raise bad_request("metadata must be an object")
        if meta.get("namespace") and meta["namespace"] != ns:
            raise bad_request("the namespace of the provided object does not "
                              "match the namespace sent on the request")
        if info.plural == "secrets":
            check_secret_base64(info, obj)
            string_data = obj.pop("stringData", None)
            if isinstance(string_data, dict):
                data = obj.get("data") or {}
                for k, v in string_data.items():
                    data[k] = base64.b64encode(str(v).encode()).decode()
                obj["data"] = data
        rest = {k: v for k, v in obj.items()
                if k not in ("kind", "apiVersion")}
        obj.clear()
        obj["kind"] = info.kind
        obj["apiVersion"] = info.api_version
        obj.update(rest)
        return meta

    def create(self, info, ns, obj):
        meta = self.normalize(info, ns, obj)
        errs = FieldErrors()
        name = meta.get("name") or ""
        generate = meta.get("generateName") or ""
        if not name and generate:
            # Validate the prefix the way the generated name will look.
            probe = generate[:58] + "xxxxx"
            sub = FieldErrors()
            check_dns1123_subdomain(sub, "metadata.generateName", probe)
            if sub.items:
                errs.invalid("metadata.generateName", generate,
                             DNS1123_SUBDOMAIN_MSG)
        validate_object_meta(errs, meta, name, generate)
        if info.plural == "pods" and not isinstance(obj.get("spec"), dict):
            obj["spec"] = {}
        VALIDATORS[info.plural](errs, obj)
        errs.raise_if_any(info, name)
        apply_defaults(info.plural, obj)
        stored = self.store.create(info.plural, ns, obj, info)
        if info.plural == "pods":
            self.kubelet.start(stored)
        return Response(201, stored)

    def replace(self, info, ns, name, sub, obj):
        meta = self.normalize(info, ns, obj)
        if meta.get("name") and meta["name"] != name:
            raise bad_request(f"the name of the object ({meta['name']}) does "
                              f"not match the name on the URL ({name})")
        meta["name"] = name
        errs = FieldErrors()
        validate_object_meta(errs, meta, name, "")
        if sub is None:
            if info.plural == "pods" and not isinstance(obj.get("spec"), dict):
                obj["spec"] = {}
            VALIDATORS[info.plural](errs, obj)
        errs.raise_if_any(info, name)
        want_rv = meta.get("resourceVersion")

        def mutate(cur):
            if want_rv and want_rv != cur["metadata"]["resourceVersion"]:
                raise ApiError(
                    409, "Conflict",
                    f'Operation cannot be fulfilled on {info.qualified} '
                    f'"{name}": the object has been modified; please apply '
                    'your changes to the latest version and try again',
                    error_details(info, name))
            self.merge_into(info, sub, cur, obj)
        stored = self.store.update(info.plural, ns, name, mutate)
        if stored is None:
            raise not_found(info, name)
        return Response(200, stored)

    @staticmethod
    def merge_into(info, sub, cur, new):
        """Applies an update the way the resource's strategy would."""
        keep = {k: cur["metadata"][k] for k in
                ("name", "namespace", "uid", "creationTimestamp",
                 "resourceVersion", "deletionTimestamp") if k in
                cur["metadata"]}
        if info.plural == "pods" and sub == "status":
            cur["status"] = new.get("status") or {}
            return
        if info.plural == "pods":
            # Pod specs are mostly immutable; keep spec and status.
            meta = new.get("metadata") or {}
            for key in ("labels", "annotations"):
                if key in meta:
                    cur["metadata"][key] = meta[key]
                else:
                    cur["metadata"].pop(key, None)
            return
        status = cur.get("status")
        cur.clear()
        cur.update(new)
        cur["metadata"] = dict(new.get("metadata") or {})
        cur["metadata"].update(keep)
        if status is not None:
            cur["status"] = status

    def patch(self, info, ns, name, sub, body, headers):
        ctype = self.check_media_type(
            headers, ("application/merge-patch+json",
                      "application/strategic-merge-patch+json"))
        if not ctype:
            raise ApiError(415, "UnsupportedMediaType",
                           "the body of the request was in an unknown format "
                           "- accepted media types include: "
                           "application/merge-patch+json, "
                           "application/strategic-merge-patch+json", {})
        try:
            patch = json.loads(body or b"null")
        except (ValueError, UnicodeDecodeError) as exc:
            raise bad_request(f"error decoding patch: {exc}")
        if not isinstance(patch, dict):
            raise bad_request("json: cannot unmarshal into Go value of type "
                              "map[string]interface {}")

        def mutate(cur):
            merged = merge_patch(cur, patch)
            meta = merged.get("metadata") or {}
            errs = FieldErrors()
            validate_object_meta(errs, meta, name, "")
            errs.raise_if_any(info, name)
            want_rv = (patch.get("metadata") or {}).get("resourceVersion")
            if want_rv and want_rv != cur["metadata"]["resourceVersion"]:
                raise ApiError(
                    409, "Conflict",
                    f'Operation cannot be fulfilled on {info.qualified} '
                    f'"{name}": the object has been modified; please apply '
                    'your changes to the latest version and try again',
                    error_details(info, name))
            merged["metadata"]["resourceVersion"] = \
                cur["metadata"]["resourceVersion"]
            if info.plural == "secrets":
                check_secret_base64(info, merged)
            self.merge_into(info, sub, cur, merged)
        stored = self.store.update(info.plural, ns, name, mutate)
        if stored is None:
            raise not_found(info, name)
        return Response(200, stored)

    @staticmethod
    def grace_period(query, options, pod):
        for source in (query.get("gracePeriodSeconds"),
                       options.get("gracePeriodSeconds")):
            if source is not None and source != "":
                try:
                    return max(0, int(source))
                except (TypeError, ValueError):
                    raise bad_request(f"invalid gracePeriodSeconds: {source}")
        return (pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30)

    def delete(self, info, ns, name, query, options):
        cur = self.store.get(info.plural, ns, name)
        if cur is None:
            raise not_found(info, name)
        grace = self.grace_period(query, options, cur)
        deleted = self._delete_one(info, ns, name, cur, grace)
        if deleted is None:
            raise not_found(info, name)
        return Response(200, deleted)

    def _delete_one(self, info, ns, name, cur, grace):
        uid = cur["metadata"]["uid"]
        mutate = None
        if info.plural == "pods":
            rt = self.kubelet.runtime(uid)
            if rt is not None:
                self.kubelet.stop_pod(rt, grace)

            def mutate(obj):
                obj["metadata"]["deletionTimestamp"] = now_rfc3339()
                obj["metadata"]["deletionGracePeriodSeconds"] = grace
        return self.store.delete(info.plural, ns, name, uid=uid,
                                 mutate=mutate)

    def delete_collection(self, info, ns, query, options):
        match = make_matcher(info.plural, ns, query)
        _, items = self.store.list(info.plural, match)
        deleted = []
        for obj in items:
            name = obj["metadata"]["name"]
            grace = self.grace_period(query, options, obj)
            gone = self._delete_one(info, ns, name, obj, grace)
            if gone is not None:
                deleted.append(strip_type_meta(gone))
        with self.store.lock:
            rv = str(self.store.rv)
        return Response(200, {"kind": info.list_kind,
                              "apiVersion": info.api_version,
                              "metadata": {"resourceVersion": rv},
                              "items": deleted})

    # -- pods/log ---------------------------------------------------------
    def pod_log(self, ns, name, query):
        info = RESOURCES["pods"]
        pod = self.store.get("pods", ns, name)
        if pod is None:
            raise not_found(info, name)
        cname = pod["spec"]["containers"][0].get("name", "")
        if query.get("container") and query["container"] != cname:
            raise bad_request(f'container {query["container"]} is not valid '
                              f'for pod {name}')
        path = os.path.join(self.kubelet.pod_dir(ns, name), "log")
        rt = self.kubelet.runtime(pod["metadata"]["uid"])
        if rt is None or rt.proc is None or not os.path.exists(path):
            cs = (pod.get("status", {}).get("containerStatuses") or [{}])[0]
            reason = cs.get("state", {}).get("waiting", {}).get(
                "reason", "ContainerCreating")
            raise bad_request(f'container "{cname}" in pod "{name}" is '
                              f"waiting to start: {reason}")
        if query.get("follow", "").lower() in ("1", "true"):
            def run(send):
                with open(path, "rb") as f:
                    while True:
                        chunk = f.read(65536)
                        if chunk:
                            if not send(chunk):
                                return
                            continue
                        if rt.proc.poll() is not None or rt.finished:
                            rest = f.read()
                            if rest:
                                send(rest)
                            return
                        time.sleep(0.05)
            return Stream(run, "text/plain")
        with open(path, "rb") as f:
            data = f.read()
        if query.get("tailLines"):
            try:
                n = int(query["tailLines"])
            except ValueError:
                raise bad_request("invalid tailLines")
            lines = data.splitlines(keepends=True)
            data = b"".join(lines[-n:]) if n > 0 else b""
        if query.get("limitBytes"):
            try:
                data = data[:int(query["limitBytes"])]
            except ValueError:
                raise bad_request("invalid limitBytes")
        return Response(200, data, "text/plain")

    # -- watch --------------------------------------------------------------
    def watch(self, info, ns, query):
        resource = info.plural
        match = make_matcher(resource, ns, query)
        rv_param = query.get("resourceVersion", "")
        start_rv = None
        if rv_param not in ("", "0"):
            try:
                start_rv = int(rv_param)
            except ValueError:
                raise bad_request(f'resourceVersion: Invalid value: '
                                  f'"{rv_param}": must be a valid integer')
        timeout = None
        if query.get("timeoutSeconds"):
            try:
                timeout = float(query["timeoutSeconds"])
            except ValueError:
                raise bad_request("invalid timeoutSeconds")
        bookmarks = query.get("allowWatchBookmarks", "").lower() in (
            "1", "true")
        store = self.store

        def expired(rv, horizon):
            return {"type": "ERROR", "object": status_object(
                410, "Expired",
                f"too old resource version: {rv} ({horizon})")}

        def run(send, client_gone):
            deadline = (time.monotonic() + timeout) if timeout else None
            with store.lock:
                epoch = store.epoch
                if start_rv is not None and start_rv < store.horizon:
                    send_first = [expired(start_rv, store.horizon)]
                    last = None
                elif start_rv is None:
                    send_first = [{"type": "ADDED", "object":
                                   copy.deepcopy(o)}
                                  for o in store._sorted(resource) if match(o)]
                    last = store.rv
                else:
                    send_first = []
                    last = start_rv
            for ev in send_first:
                if not send(ev):
                    return
            if last is None:
                return
            while True:
                out, finished = [], False
                with store.lock:
                    while True:
                        if store.epoch != epoch:
                            out.append(expired(last, store.horizon))
                            finished = True
                            break
                        events = store._events_after(last, resource)
                        if events:
                            for ev in events:
                                typed = self.filter_event(ev, match)
                                if typed:
                                    out.append(typed)
                            last = events[-1].rv
                            if out:
                                break
                            continue
                        wait = 1.0
                        if deadline is not None:
                            wait = min(wait, deadline - time.monotonic())
                            if wait <= 0:
                                finished = True
                                break
                        if not store.changed.wait(wait):
                            # An event may have landed between the timeout
                            # and re-taking the lock: deliver it first.
                            if store._events_after(last, resource):
                                continue
                            if bookmarks:
                                out.append({"type": "BOOKMARK", "object": {
                                    "kind": info.kind,
                                    "apiVersion": info.api_version,
                                    "metadata": {"resourceVersion":
                                                 str(store.rv)}}})
                                last = max(last, store.rv)
                            break
                for ev in out:
                    if not send(ev):
                        return
                if finished or client_gone():
                    return
        return Stream(run)

    @staticmethod
    def filter_event(ev, match):
        """Applies the selectors as the watch cache does: an object leaving
        the selection is DELETED, one entering it is ADDED."""
        now = match(ev.obj)
        if ev.type == "MODIFIED":
            before = match(ev.prev) if ev.prev is not None else False
            if now and before:
                etype = "MODIFIED"
            elif now:
                etype = "ADDED"
            elif before:
                etype = "DELETED"
            else:
                return None
        elif now:
            etype = ev.type
        else:
            return None
        return {"type": etype, "object": copy.deepcopy(ev.obj)}


# ------------------------------------------------------------------ HTTP ---

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-kube-apiserver"
    sys_version = ""
    timeout = 120  # idle keep-alive / slow client deadline, seconds

    def setup(self):
        super().setup()
        self.request.do_handshake()

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("fake-kube-apiserver: %s - %s\n" % (
                self.address_string(), fmt % args))

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_PATCH(self):
        self.dispatch("PATCH")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def read_body(self):
        """-> bytes, or None after answering 413/400 itself."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks, total = [], 0
            while True:
                line = self.rfile.readline(1024)
                try:
                    size = int(line.split(b";")[0].strip(), 16)
                except ValueError:
                    self.close_connection = True
                    self.send_json(400, status_object(
                        400, "BadRequest", "malformed chunked body"))
                    return None
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n",
                                                            b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY:
                    self.close_connection = True
                    self.too_large()
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        try:
            n = int(length)
        except ValueError:
            n = -1
        if n < 0:
            self.close_connection = True
            self.send_json(400, status_object(400, "BadRequest",
                                              "invalid Content-Length"))
            return None
        if n > MAX_BODY:
            self.close_connection = True
            self.too_large()
            return None
        return self.rfile.read(n)

    def too_large(self):
        self.send_json(413, status_object(
            413, "RequestEntityTooLarge",
            "Request entity too large: limit is 3145728"))

    def send_json(self, code, obj, content_type="application/json"):
        if isinstance(obj, (bytes, bytearray)):
            data = bytes(obj)
        elif isinstance(obj, str):
            data = obj.encode()
        else:
            data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Audit-Id", str(uuid.uuid4()))
        self.end_headers()
        self.wfile.write(data)

    def dispatch(self, method):
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        body = self.read_body()
        if body is None:
            return
        path = url.path
        server = self.server
        if path.startswith("/_test/"):
            self.test_endpoint(method, path, query, body)
            return
        try:
            result = server.api.handle(method, path, query, self.headers, body)
        except ApiError as err:  # from selector parsing etc. outside handle
            result = Response(err.code, status_object(
                err.code, err.reason, err.message, err.details))
        if path == "/api" or path == "/apis" or path.startswith("/api/") or \
                path.startswith("/apis/"):
            try:
                parsed = json.loads(body) if body else None
            except (ValueError, UnicodeDecodeError):
                parsed = None
            server.store.log_request({"method": method, "path": path,
                                      "query": query, "body": parsed,
                                      "status": result.status})
        if isinstance(result, Stream):
            self.stream(result)
        else:
            self.send_json(result.status, result.body, result.content_type)

    def stream(self, result):
        self.send_response(200)
        self.send_header("Content-Type", result.content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Audit-Id", str(uuid.uuid4()))
        self.end_headers()
        broken = [False]

        def send(item):
            if isinstance(item, (bytes, bytearray)):
                data = bytes(item)
            else:
                data = json.dumps(item).encode() + b"\n"
            try:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()
                return True
            except (OSError, ValueError):
                broken[0] = True
                return False

        def client_gone():
            # During a stream the client sends nothing; readable means it
            # closed (EOF or TLS close_notify) or misbehaves: end either way.
            try:
                readable, _, _ = select.select([self.connection], [], [], 0)
                if not readable and not self.connection.pending():
                    return False
                self.connection.settimeout(0.2)
                try:
                    data = self.connection.recv(1)
                finally:
                    self.connection.settimeout(self.timeout)
                broken[0] = True
                return True
            except (socket.timeout, ssl.SSLWantReadError):
                return False
            except (OSError, ValueError):
                broken[0] = True
                return True

        try:
            if result.content_type == "application/json":
                result.run(send, client_gone)
            else:
                result.run(send)
        finally:
            if broken[0]:
                self.close_connection = True
            else:
                try:
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
                except (OSError, ValueError):
                    self.close_connection = True

    # -- /_test/ ----------------------------------------------------------
    def test_endpoint(self, method, path, query, body):
        server = self.server
        store = server.store
        kubelet = server.kubelet
        if method == "GET" and path == "/_test/requests":
            self.send_json(200, store.request_log())
        elif method == "POST" and path == "/_test/compact":
            self.send_json(200, {"horizon": str(store.compact())})
        elif method == "GET" and path == "/_test/objects":
            self.send_json(200, store.snapshot())
        elif method == "GET" and path == "/_test/pod-log":
            log = os.path.join(kubelet.pod_dir(query.get("namespace", ""),
                                               query.get("name", "")), "log")
            try:
                with open(log, "rb") as f:
                    data = f.read()
            except OSError:
                self.send_json(404, b"no log\n", "text/plain")
                return
            self.send_json(200, data, "text/plain; charset=utf-8")
        elif method == "GET" and path == "/_test/pod-pid":
            rt = kubelet.runtime_by_name(query.get("namespace", ""),
                                         query.get("name", ""))
            proc = rt.proc if rt is not None else None
            self.send_json(200, {
                "pid": proc.pid if proc is not None else None,
                "running": proc is not None and proc.poll() is None})
        elif method == "POST" and path == "/_test/pod-oom":
            # The container's cgroup ran out of memory: the kernel's OOM
            # killer sends SIGKILL and the kubelet reports OOMKilled, 137.
            rt = kubelet.runtime_by_name(query.get("namespace", ""),
                                         query.get("name", ""))
            proc = rt.proc if rt is not None else None
            if proc is None or proc.poll() is not None:
                self.send_json(404, {"error": "no running pod process"})
                return
            rt.oom_killed = True
            kill_group(proc.pid, signal.SIGKILL)
            self.send_json(200, {"killed": proc.pid})
        elif method == "POST" and path == "/_test/pod-status":
            try:
                status = json.loads(body)
            except (ValueError, UnicodeDecodeError):
                self.send_json(400, {"error": "body must be JSON"})
                return

            def mutate(pod):
                pod["status"] = status
            res = store.update("pods", query.get("namespace", ""),
                               query.get("name", ""), mutate)
            if res is None:
                self.send_json(404, {"error": "no such pod"})
            else:
                self.send_json(200, res)
        else:
            self.send_json(404, {"error": f"no test endpoint {method} {path}"})


class TlsServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False

    def __init__(self, context, api, store, kubelet, verbose):
        self.context = context
        self.api = api
        self.store = store
        self.kubelet = kubelet
        self.verbose = verbose
        super().__init__((LOOPBACK, 0), Handler)

    def get_request(self):
        sock, addr = self.socket.accept()
        # The handshake runs in the connection's own thread (Handler.setup).
        return self.context.wrap_socket(sock, server_side=True,
                                        do_handshake_on_connect=False), addr

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (OSError, ssl.SSLError, ValueError)):
            return  # handshake failures, resets, timeouts: not our problem
        super().handle_error(request, client_address)


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Test-only stand-in for a Kubernetes API server.")
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--token-file", required=True)
    p.add_argument("--work-dir", required=True)
    p.add_argument("--forbid", action="append", default=[],
                   metavar="VERB:RESOURCE")
    p.add_argument("--enclave-env", action="append", default=[],
                   metavar="NAME=VALUE")
    p.add_argument("--user", default=DEFAULT_USER)
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args(argv)
    forbid = set()
    for item in args.forbid:
        verb, _, resource = item.partition(":")
        if verb not in KNOWN_VERBS or resource not in KNOWN_FORBID_RESOURCES:
            p.error(f"--forbid {item}: want VERB:RESOURCE with VERB in "
                    f"{', '.join(KNOWN_VERBS)} and RESOURCE in "
                    f"{', '.join(KNOWN_FORBID_RESOURCES)}")
        forbid.add((verb, resource))
    enclave_env = {}
    for item in args.enclave_env:
        name, sep, value = item.partition("=")
        if not sep or not name:
            p.error(f"--enclave-env {item}: want NAME=VALUE")
        enclave_env[name] = value
    return args, forbid, enclave_env


def main(argv):
    args, forbid, enclave_env = parse_args(argv)
    os.makedirs(args.work_dir, exist_ok=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(args.cert, args.key)
    context.set_alpn_protocols(["http/1.1"])
    store = Store()
    kubelet = Kubelet(store, os.path.abspath(args.work_dir), enclave_env)
    api = Api(store, kubelet, args.token_file, forbid, args.user)
    server = TlsServer(context, api, store, kubelet, args.verbose)
    api.port = server.server_address[1]

    def on_signal(signum, frame):
        kubelet.kill_all()
        sys.stdout.flush()
        os._exit(0)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    print(api.port, flush=True)
    server.serve_forever(poll_interval=0.5)


if __name__ == "__main__":
    main(sys.argv[1:])
