#!/usr/bin/env python3
"""Renders deploy/kubernetes's overlays with `kubectl kustomize` (offline) and
checks what a cluster would receive.

    kubernetes_manifests_test.py SOURCE_DIR

Checked for each overlay (single, ha):
  * RBAC: one Role, in the isolator's namespace, granting exactly pods
    get/list/watch/create/delete, secrets create/delete and
    networkpolicies create/delete/list (no wildcard, no secrets get); its
    RoleBinding binds it to the kernel's ServiceAccount and nothing else does;
    no ClusterRole or ClusterRoleBinding.
  * Pods: no container privileged or allowed to escalate; every container
    non-root, read-only root file system, ALL capabilities dropped,
    RuntimeDefault seccomp; no host namespaces or hostPath volumes.
  * The kernel (the workload airlockd, whatever its kind): ports https 8443
    and enclave-link 9444, POD_IP and HOSTNAME from the downward API,
    liveness and readiness HTTPS GET /healthz on 8443, configuration and TLS
    mounted read-only, resources and a termination grace period set, the
    kernel's ServiceAccount with its token. A StatefulSet's serviceName is a
    rendered headless Service selecting the kernel on 8443 that publishes
    not-ready pods.
  * Shape: replicas 1 on a PersistentVolumeClaim, never two pods at once
    (a StatefulSet, or a Deployment with Recreate) (single); 3 with
    anti-affinity by host name, a PodDisruptionBudget minAvailable 2, updated
    one pod at a time (ha; single has no PodDisruptionBudget).
  * The peer link (ha): a StatefulSet with setHostnameAsFQDN, so each
    replica's host name is its name under the headless Service (at most 64
    characters); airlock.json's state.peer with a secret reference, a CA
    file, and no url (one configuration for every replica); the server
    listening on every address, so the published URL is the host name's.
    single has no state.peer (SQLite refuses it).
  * The ConfigMap's airlock.json parses, names the kubernetes isolator with
    the Role's namespace, and the state backend of the overlay; every env:
    reference the kernel resolves itself is in the kernel's environment, and
    the state DSN and the peer secret come from Secrets; every file it names
    is in a mounted volume.
  * NetworkPolicies: default deny (ingress and egress) in both namespaces;
    the kernel open on 8443 to anyone (other replicas included), on 9444 to
    enclave pods only; egress to DNS, the Kubernetes API and (ha only)
    PostgreSQL and the other replicas' 8443.
  * The kernel image comes from the overlay's `images:` entry, and an
    overlay of the overlay replaces it.

Then each check is shown to catch what it is for: mutated copies of the
rendered objects (privileged: true, secrets get, peer link removed, ...)
must each fail; some breakages apply to one overlay only.

Exit status: 0 passed, 1 failed, 77 skipped (no kubectl, no PyYAML).
"""

import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile

try:
    import yaml
except ImportError:
    print("SKIP: PyYAML is not installed (Debian: python3-yaml)")
    sys.exit(77)

SKIP = 77
KERNEL_NAMESPACE = "airlock"
ENCLAVE_NAMESPACE = "airlock-enclaves"
KERNEL_SERVICE_ACCOUNT = "airlock-kernel"
KERNEL_WORKLOAD = "airlockd"
KERNEL_CONTAINER = "airlockd"
ENCLAVE_POD_LABEL = ("app.kubernetes.io/name", "airlock-enclave")
HTTPS_PORT = 8443
LINK_PORT = 9444

# (apiGroup, resource, verb): what the kubernetes isolator may do, and no more.
EXPECTED_ROLE = frozenset(
    [("", "pods", v) for v in ("get", "list", "watch", "create", "delete")]
    + [("", "secrets", v) for v in ("create", "delete")]
    + [("networking.k8s.io", "networkpolicies", v) for v in ("create", "delete", "list")]
)

OVERLAYS = {
    "single": {"replicas": 1, "backend": "sqlite", "pdb": False, "postgres_egress": False, "peer": False},
    "ha": {"replicas": 3, "backend": "postgres", "pdb": True, "postgres_egress": True, "peer": True},
}

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job")
CLUSTER_DOMAIN = "cluster.local"
# Linux limits a host name to 64 characters; with setHostnameAsFQDN a pod
# whose FQDN is longer does not start.
MAX_HOSTNAME = 64


# ---------------------------------------------------------------- rendering

def kubectl():
    return shutil.which("kubectl") or ("/usr/bin/kubectl" if os.access("/usr/bin/kubectl", os.X_OK) else None)


def render(directory):
    """`kubectl kustomize DIRECTORY` as a list of objects (no cluster, no network)."""
    env = dict(os.environ)
    # kustomize needs no cluster; an empty kubeconfig keeps kubectl from looking for one.
    env["KUBECONFIG"] = os.devnull
    result = subprocess.run([kubectl(), "kustomize", directory], capture_output=True, text=True,
                            env=env, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {directory} failed:\n{result.stderr}")
    return [o for o in yaml.safe_load_all(result.stdout) if o]


# ---------------------------------------------------------------- helpers

def meta(obj, key, default=None):
    return (obj.get("metadata") or {}).get(key, default)


def find(objs, kind, name=None, namespace=None):
    return [o for o in objs if o.get("kind") == kind
            and (name is None or meta(o, "name") == name)
            and (namespace is None or meta(o, "namespace") == namespace)]


def pod_templates(objs):
    """(label, pod spec, pod labels) of every workload and bare pod."""
    out = []
    for o in objs:
        kind = o.get("kind")
        label = f"{kind}/{meta(o, 'namespace')}/{meta(o, 'name')}"
        if kind in WORKLOAD_KINDS:
            template = (o.get("spec") or {}).get("template") or {}
            out.append((label, template.get("spec") or {}, (template.get("metadata") or {}).get("labels") or {}))
        elif kind == "CronJob":
            template = o["spec"]["jobTemplate"]["spec"]["template"]
            out.append((label, template.get("spec") or {}, (template.get("metadata") or {}).get("labels") or {}))
        elif kind == "Pod":
            out.append((label, o.get("spec") or {}, meta(o, "labels", {}) or {}))
    return out


def all_containers(spec):
    return ([("container", c) for c in spec.get("containers") or []]
            + [("initContainer", c) for c in spec.get("initContainers") or []]
            + [("ephemeralContainer", c) for c in spec.get("ephemeralContainers") or []])


def kernel_workload(objs):
    """The kernel's workload (airlockd), whatever its kind; None unless exactly one."""
    found = [o for kind in WORKLOAD_KINDS for o in find(objs, kind, KERNEL_WORKLOAD, KERNEL_NAMESPACE)]
    return found[0] if len(found) == 1 else None


def secret_env(container, name):
    """The secretKeyRef an environment variable comes from, or None."""
    for e in container.get("env") or []:
        if e.get("name") == name:
            return ((e.get("valueFrom") or {}).get("secretKeyRef")) or None
    return None


def kernel_container(workload):
    for c in workload["spec"]["template"]["spec"].get("containers") or []:
        if c.get("name") == KERNEL_CONTAINER:
            return c
    return None


def selector_matches(match_labels, labels):
    return bool(match_labels) and all(labels.get(k) == v for k, v in match_labels.items())


def resolve_port(port, container):
    if isinstance(port, int):
        return port
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return p.get("containerPort")
    return None


def embedded_config(objs, workload):
    """The airlock.json of the ConfigMap the kernel mounts, parsed; or an error string."""
    volumes = workload["spec"]["template"]["spec"].get("volumes") or []
    names = [v["configMap"]["name"] for v in volumes if "configMap" in v]
    if len(names) != 1:
        return None, f"the kernel should mount exactly one ConfigMap, found {names}"
    maps = find(objs, "ConfigMap", names[0], KERNEL_NAMESPACE)
    if len(maps) != 1:
        return None, f"ConfigMap {names[0]} mounted by the kernel is not rendered"
    text = (maps[0].get("data") or {}).get("airlock.json")
    if text is None:
        return None, f"ConfigMap {names[0]} has no airlock.json"
    try:
        return json.loads(text), None
    except json.JSONDecodeError as e:
        return None, f"airlock.json does not parse: {e}"


# ---------------------------------------------------------------- checks

def check_rbac(objs, errors, isolator_namespace):
    roles = find(objs, "Role")
    if len(roles) != 1:
        errors.append(f"expected one Role, found {[meta(r, 'name') for r in roles]}")
        return
    role = roles[0]
    if meta(role, "namespace") != ENCLAVE_NAMESPACE:
        errors.append(f"Role is in namespace {meta(role, 'namespace')}, not {ENCLAVE_NAMESPACE}")
    if isolator_namespace is not None and meta(role, "namespace") != isolator_namespace:
        errors.append(f"Role is in namespace {meta(role, 'namespace')} but the isolator puts "
                      f"enclaves in {isolator_namespace}")
    granted = set()
    for rule in role.get("rules") or []:
        if rule.get("resourceNames") or rule.get("nonResourceURLs"):
            errors.append(f"Role rule {rule} uses resourceNames/nonResourceURLs")
        for field in ("apiGroups", "resources", "verbs"):
            if "*" in (rule.get(field) or []):
                errors.append(f"Role rule {rule} has a wildcard in {field}")
        for group in rule.get("apiGroups") or []:
            for resource in rule.get("resources") or []:
                for verb in rule.get("verbs") or []:
                    granted.add((group, resource, verb))
    if ("", "secrets", "get") in granted or ("", "secrets", "list") in granted:
        errors.append("Role lets the kernel get Secrets")
    extra = sorted(granted - EXPECTED_ROLE)
    missing = sorted(EXPECTED_ROLE - granted)
    if extra:
        errors.append(f"Role grants more than the isolator needs: {extra}")
    if missing:
        errors.append(f"Role lacks what the isolator needs: {missing}")

    for kind in ("ClusterRole", "ClusterRoleBinding"):
        if find(objs, kind):
            errors.append(f"no {kind} expected, found {[meta(o, 'name') for o in find(objs, kind)]}")
    bindings = find(objs, "RoleBinding")
    to_role = [b for b in bindings if (b.get("roleRef") or {}).get("kind") == "Role"
               and b["roleRef"].get("name") == meta(role, "name")
               and meta(b, "namespace") == meta(role, "namespace")]
    if len(to_role) != 1:
        errors.append(f"expected one RoleBinding of Role {meta(role, 'name')} in "
                      f"{meta(role, 'namespace')}, found {len(to_role)}")
    else:
        binding = to_role[0]
        if binding["roleRef"].get("apiGroup") != "rbac.authorization.k8s.io":
            errors.append("RoleBinding roleRef.apiGroup is not rbac.authorization.k8s.io")
        subjects = binding.get("subjects") or []
        expected = [{"kind": "ServiceAccount", "name": KERNEL_SERVICE_ACCOUNT, "namespace": KERNEL_NAMESPACE}]
        if subjects != expected:
            errors.append(f"RoleBinding subjects are {subjects}, expected {expected}")
    for b in bindings:
        if b not in to_role:
            errors.append(f"unexpected RoleBinding {meta(b, 'namespace')}/{meta(b, 'name')}")

    accounts = find(objs, "ServiceAccount", KERNEL_SERVICE_ACCOUNT, KERNEL_NAMESPACE)
    if len(accounts) != 1:
        errors.append(f"ServiceAccount {KERNEL_NAMESPACE}/{KERNEL_SERVICE_ACCOUNT} missing")
    elif accounts[0].get("automountServiceAccountToken") is False:
        errors.append("the kernel's ServiceAccount does not mount its token (the isolator needs it)")


def effective(container, pod_sc, key):
    sc = container.get("securityContext") or {}
    return sc[key] if key in sc else pod_sc.get(key)


def check_pod_security(objs, errors):
    templates = pod_templates(objs)
    if not templates:
        errors.append("no workload rendered")
    for label, spec, _ in templates:
        pod_sc = spec.get("securityContext") or {}
        for field in ("hostNetwork", "hostPID", "hostIPC"):
            if spec.get(field):
                errors.append(f"{label}: {field} is set")
        for v in spec.get("volumes") or []:
            if "hostPath" in v:
                errors.append(f"{label}: volume {v.get('name')} is a hostPath")
        for what, c in all_containers(spec):
            where = f"{label} {what} {c.get('name')}"
            sc = c.get("securityContext") or {}
            if sc.get("privileged"):
                errors.append(f"{where}: privileged")
            if sc.get("allowPrivilegeEscalation") is not False:
                errors.append(f"{where}: allowPrivilegeEscalation is not false")
            if effective(c, pod_sc, "runAsNonRoot") is not True:
                errors.append(f"{where}: runAsNonRoot is not true")
            uid = effective(c, pod_sc, "runAsUser")
            if uid is None or uid == 0:
                errors.append(f"{where}: runAsUser is {uid}, not a non-root uid")
            if sc.get("readOnlyRootFilesystem") is not True:
                errors.append(f"{where}: root file system is not read-only")
            caps = sc.get("capabilities") or {}
            if "ALL" not in (caps.get("drop") or []):
                errors.append(f"{where}: does not drop ALL capabilities")
            if caps.get("add"):
                errors.append(f"{where}: adds capabilities {caps['add']}")
            seccomp = effective(c, pod_sc, "seccompProfile") or {}
            if seccomp.get("type") != "RuntimeDefault":
                errors.append(f"{where}: seccomp profile is {seccomp.get('type')}, not RuntimeDefault")


def check_kernel(objs, errors, shape, config):
    workload = kernel_workload(objs)
    if workload is None:
        errors.append(f"the kernel's workload {KERNEL_NAMESPACE}/{KERNEL_WORKLOAD} is missing "
                      f"(or rendered twice)")
        return
    kind = workload.get("kind")
    if kind not in ("Deployment", "StatefulSet"):
        errors.append(f"the kernel is a {kind}, not a Deployment or StatefulSet")
    spec = workload["spec"]
    pod = spec["template"]["spec"]
    pod_labels = spec["template"]["metadata"].get("labels") or {}
    if spec.get("replicas") != shape["replicas"]:
        errors.append(f"replicas is {spec.get('replicas')}, expected {shape['replicas']}")
    if pod.get("serviceAccountName") != KERNEL_SERVICE_ACCOUNT:
        errors.append(f"kernel runs as ServiceAccount {pod.get('serviceAccountName')}")
    if pod.get("automountServiceAccountToken") is False:
        errors.append("kernel pod does not mount its token (the isolator needs it)")
    if not isinstance(pod.get("terminationGracePeriodSeconds"), int):
        errors.append("terminationGracePeriodSeconds is not set")

    c = kernel_container(workload)
    if c is None:
        errors.append(f"container {KERNEL_CONTAINER} missing")
        return
    ports = {p.get("name"): p.get("containerPort") for p in c.get("ports") or []}
    if ports.get("https") != HTTPS_PORT or ports.get("enclave-link") != LINK_PORT:
        errors.append(f"kernel ports are {ports}; expected https {HTTPS_PORT}, enclave-link {LINK_PORT}")
    env = {e.get("name"): e for e in c.get("env") or []}
    field_of = lambda n: (((env.get(n) or {}).get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath")
    if field_of("POD_IP") != "status.podIP":
        errors.append("POD_IP is not the downward API's status.podIP")
    if field_of("HOSTNAME") != "metadata.name":
        errors.append("HOSTNAME is not the downward API's metadata.name")
    for probe_name in ("livenessProbe", "readinessProbe"):
        get = (c.get(probe_name) or {}).get("httpGet") or {}
        if (get.get("path") != "/healthz" or get.get("scheme") != "HTTPS"
                or resolve_port(get.get("port"), c) != HTTPS_PORT):
            errors.append(f"{probe_name} is not HTTPS GET /healthz on {HTTPS_PORT}: {get}")
    resources = c.get("resources") or {}
    if not (resources.get("requests") and resources.get("limits")):
        errors.append("kernel container has no resource requests and limits")

    volumes = {v.get("name"): v for v in pod.get("volumes") or []}
    mounts = {m.get("name"): m for m in c.get("volumeMounts") or []}
    kinds = lambda key: [n for n, v in volumes.items() if key in v]
    for key, what in (("configMap", "configuration"), ("secret", "TLS certificate")):
        names = [n for n in kinds(key) if n in mounts]
        if not names:
            errors.append(f"the {what} ({key}) is not mounted in the kernel")
        for n in names:
            if mounts[n].get("readOnly") is not True:
                errors.append(f"volume {n} ({what}) is not mounted read-only")
    tls_secrets = [volumes[n]["secret"].get("secretName") for n in kinds("secret") if n in mounts]
    if "airlock-tls" not in tls_secrets:
        errors.append(f"the kernel mounts no airlock-tls Secret (mounts {tls_secrets})")

    state_dir = (config or {}).get("state_dir", "state")
    state_mounts = [m for m in c.get("volumeMounts") or [] if m.get("mountPath") == state_dir]
    claim_templates = [meta(t, "name") for t in spec.get("volumeClaimTemplates") or []] \
        if kind == "StatefulSet" else []
    state_name = None
    if len(state_mounts) != 1:
        errors.append(f"state_dir {state_dir} is not a mounted volume")
        state_volume = {}
    else:
        state_name = state_mounts[0]["name"]
        state_volume = volumes.get(state_name) or {}
        if state_mounts[0].get("readOnly"):
            errors.append("the state directory is mounted read-only")

    if shape["backend"] == "sqlite":
        claim = (state_volume.get("persistentVolumeClaim") or {}).get("claimName")
        if state_name in claim_templates and state_name not in volumes:
            pass  # a claim of its own per pod, from the StatefulSet's volumeClaimTemplates
        elif not claim:
            errors.append("with SQLite the state directory must be a PersistentVolumeClaim")
        elif not find(objs, "PersistentVolumeClaim", claim, KERNEL_NAMESPACE):
            errors.append(f"PersistentVolumeClaim {claim} is not rendered")
        # One kernel per state.db: a StatefulSet never runs two pods of one
        # name; a Deployment must stop the old pod before starting the new.
        if kind == "Deployment" and (spec.get("strategy") or {}).get("type") != "Recreate":
            errors.append("with SQLite a Deployment's update strategy must be Recreate (one kernel per state.db)")
    else:
        if kind == "StatefulSet":
            update = spec.get("updateStrategy") or {}
            rolling = update.get("rollingUpdate") or {}
            if update.get("type", "RollingUpdate") != "RollingUpdate":
                errors.append(f"updateStrategy is {update.get('type')}: an update would wait for each pod "
                              "to be deleted by hand")
            if str(rolling.get("maxUnavailable", 1)) != "1" or rolling.get("partition", 0) != 0:
                errors.append(f"the update does not replace every replica one at a time: {rolling}")
        elif kind == "Deployment":
            rolling = (spec.get("strategy") or {}).get("rollingUpdate") or {}
            if str(rolling.get("maxUnavailable")) != "1":
                errors.append(f"the update does not replace one replica at a time: {rolling}")
        terms = ((pod.get("affinity") or {}).get("podAntiAffinity") or {})
        selectors = [t for t in terms.get("requiredDuringSchedulingIgnoredDuringExecution") or []]
        selectors += [t.get("podAffinityTerm") or {} for t in
                      terms.get("preferredDuringSchedulingIgnoredDuringExecution") or []]
        if not any(t.get("topologyKey") == "kubernetes.io/hostname"
                   and selector_matches((t.get("labelSelector") or {}).get("matchLabels"), pod_labels)
                   for t in selectors):
            errors.append("no pod anti-affinity by kubernetes.io/hostname on the kernel's own labels")

    pdbs = find(objs, "PodDisruptionBudget")
    if shape["pdb"]:
        if len(pdbs) != 1:
            errors.append(f"expected one PodDisruptionBudget, found {len(pdbs)}")
        else:
            pdb = pdbs[0]["spec"]
            if pdb.get("minAvailable") != 2:
                errors.append(f"PodDisruptionBudget minAvailable is {pdb.get('minAvailable')}, expected 2")
            if not selector_matches((pdb.get("selector") or {}).get("matchLabels"), pod_labels):
                errors.append("PodDisruptionBudget does not select the kernel's pods")
    elif pdbs:
        errors.append("a PodDisruptionBudget is rendered for a single replica")

    services = find(objs, "Service", None, KERNEL_NAMESPACE)
    if not any(selector_matches(s["spec"].get("selector"), pod_labels)
               and s["spec"].get("clusterIP") != "None"
               and any(p.get("port") == HTTPS_PORT for p in s["spec"].get("ports") or [])
               for s in services):
        errors.append(f"no Service (with a cluster IP) selects the kernel on port {HTTPS_PORT}")

    if kind == "StatefulSet" and spec.get("serviceName"):
        check_headless_service(objs, errors, spec["serviceName"], pod_labels)
    if shape["peer"]:
        check_peer_names(errors, workload)

    if config is not None:
        check_config_against_pod(config, c, errors)


def check_headless_service(objs, errors, name, pod_labels):
    """A StatefulSet's serviceName: the headless Service giving each pod its DNS name."""
    found = find(objs, "Service", name, KERNEL_NAMESPACE)
    if len(found) != 1:
        errors.append(f"the StatefulSet's serviceName {name} is not a rendered Service: "
                      "its pods would have no DNS names")
        return
    svc = found[0]["spec"]
    if svc.get("clusterIP") != "None":
        errors.append(f"Service {name} is not headless (clusterIP is {svc.get('clusterIP', 'unset')}, "
                      "not None)")
    if not selector_matches(svc.get("selector"), pod_labels):
        errors.append(f"Service {name} does not select the kernel's pods")
    if not any(p.get("port") == HTTPS_PORT for p in svc.get("ports") or []):
        errors.append(f"Service {name} has no port {HTTPS_PORT}")
    if svc.get("publishNotReadyAddresses") is not True:
        errors.append(f"Service {name} does not publish not-ready pods: a replica's name would not "
                      "resolve until it is ready")


def check_peer_names(errors, workload):
    """Each replica publishes https://<its host name>:8443; that name must be its own and resolvable."""
    if workload.get("kind") != "StatefulSet":
        errors.append(f"the kernel is a {workload.get('kind')}, not a StatefulSet: its replicas have no "
                      "stable names other replicas can resolve (the peer link)")
        return
    spec = workload["spec"]
    pod = spec["template"]["spec"]
    service = spec.get("serviceName")
    if not service:
        errors.append("the StatefulSet names no serviceName: its pods have no DNS names (the peer link)")
        return
    if pod.get("setHostnameAsFQDN") is not True:
        errors.append("setHostnameAsFQDN is not true: each replica would publish its bare pod name, "
                      "which the others cannot resolve (the peer link)")
    if pod.get("subdomain") not in (None, service):
        errors.append(f"the pod template's subdomain {pod.get('subdomain')} is not the serviceName {service}")
    if pod.get("hostname"):
        errors.append(f"the pod template sets hostname {pod['hostname']}: every replica would have it")
    last = max(int(spec.get("replicas") or 1) - 1, 0)
    fqdn = f"{meta(workload, 'name')}-{last}.{service}.{KERNEL_NAMESPACE}.svc.{CLUSTER_DOMAIN}"
    if len(fqdn) > MAX_HOSTNAME:
        errors.append(f"host name {fqdn} is {len(fqdn)} characters, over Linux's {MAX_HOSTNAME}: "
                      "the pod would not start")


def check_config_against_pod(config, container, errors):
    """The kernel's configuration and its pod agree: ports, files, secrets."""
    args = container.get("args") or []
    mounts = [m.get("mountPath") for m in container.get("volumeMounts") or []]
    if "--config" not in args or not any(args[args.index("--config") + 1].startswith(m + "/") for m in mounts):
        errors.append(f"the kernel's --config is not in a mounted volume: {args}")
    server = config.get("server") or {}
    if server.get("port") != HTTPS_PORT or not (server.get("tls") or {}).get("certificate_file"):
        errors.append(f"server is not HTTPS on {HTTPS_PORT}: {server}")
    files = [server.get("tls", {}).get(k) for k in ("certificate_file", "private_key_file")]
    files += [(config.get("state", {}).get("tls") or {}).get("ca_file")]
    files += [(config.get("state", {}).get("peer") or {}).get("ca_file")]
    for path in filter(None, files):
        if not any(path.startswith(m + "/") for m in mounts):
            errors.append(f"{path} (named in airlock.json) is not in a volume the kernel mounts")
    link = ((config.get("isolator") or {}).get("config") or {}).get("link") or {}
    listen_port = link.get("port", 9444)
    if str(listen_port) != str(LINK_PORT):
        errors.append(f"isolator link listens on port {listen_port!r}, not the enclave-link port {LINK_PORT}")
    # env: references resolved by the kernel itself must be in its environment.
    env = {e.get("name"): e for e in container.get("env") or []}
    state = config.get("state") or {}
    peer_secret = (state.get("peer") or {}).get("secret")
    kernel_refs = [state.get("dsn_secret"), peer_secret,
                   ((config.get("audit") or {}).get("checkpoints") or {}).get("signing_key")]
    for ref in filter(None, kernel_refs):
        if isinstance(ref, str) and ref.startswith("env:") and ref[4:] not in env:
            errors.append(f"airlock.json names {ref} but the kernel container has no such variable")
    for ref, what in ((state.get("dsn_secret"), "the state DSN"), (peer_secret, "the peer secret")):
        if isinstance(ref, str) and ref.startswith("env:") and ref[4:] in env:
            if not secret_env(container, ref[4:]):
                errors.append(f"{ref[4:]} ({what}) does not come from a Secret")


def check_config(config, errors, shape, role_namespace):
    isolator = config.get("isolator") or {}
    iconfig = isolator.get("config") or {}
    if isolator.get("name") != "kubernetes" or "kubernetes" not in str(isolator.get("plugin", "")):
        errors.append(f"airlock.json's isolator is {isolator.get('name')} ({isolator.get('plugin')}), not kubernetes")
    if iconfig.get("namespace") != role_namespace:
        errors.append(f"isolator namespace {iconfig.get('namespace')!r} is not the Role's {role_namespace!r}")
    backend = (config.get("state") or {}).get("backend", "sqlite")
    if backend != shape["backend"]:
        errors.append(f"state backend is {backend}, expected {shape['backend']}")
    if backend == "postgres" and not str(config["state"].get("dsn_secret", "")).startswith(("env:", "file:")):
        errors.append("state.dsn_secret is not a secret reference")
    check_peer_config(config, errors, shape)
    for name, connector in (config.get("connectors") or {}).items():
        password = (connector.get("config") or {}).get("password")
        if password is not None and not str(password).startswith(("env:", "file:")):
            errors.append(f"connector {name}'s password is not a secret reference")
        # The isolator resolves a connector's env: references from the enclave
        # namespace's Secrets; one it cannot map would leave the pull without it.
        if isinstance(password, str) and password.startswith("env:") \
                and password[4:] not in (iconfig.get("secrets") or {}):
            errors.append(f"connector {name} names {password}, which the isolator's secrets do not map")


def check_peer_config(config, errors, shape):
    """state.peer: on every replica of a shared database (ha), nowhere on SQLite."""
    peer = (config.get("state") or {}).get("peer")
    if not shape["peer"]:
        if peer is not None:
            errors.append("state.peer is set with the sqlite backend, which the kernel refuses")
        return
    if not isinstance(peer, dict):
        errors.append("state.peer is not configured: a replica cannot collect a credential or run a "
                      "tunnel query for a request another replica serves, and the Service sends "
                      "connections to any replica")
        return
    unknown = sorted(set(peer) - {"secret", "ca_file", "url"})
    if unknown:
        errors.append(f"state.peer has keys the kernel does not know: {unknown}")
    if not str(peer.get("secret", "")).startswith(("env:", "file:")):
        errors.append("state.peer.secret is not a secret reference (env:NAME or file:/path)")
    if "url" in peer:
        errors.append(f"state.peer.url ({peer['url']}) is in the configuration every replica shares: "
                      "all of them would publish that one address")
    if not peer.get("ca_file"):
        errors.append("state.peer.ca_file is not set: the replicas' certificate, for cluster names, "
                      "would be checked against the system's CAs")
    listen = (config.get("server") or {}).get("listen_address", "")
    if "url" not in peer and listen not in ("", "0.0.0.0", "::"):
        errors.append(f"server.listen_address is {listen}: the published URL would be that address, "
                      "not the replica's host name")
    if not (config.get("server") or {}).get("tls"):
        errors.append("the API is not served over TLS: the peer secret would cross the network in clear")


def check_network(objs, errors, shape):
    policies = find(objs, "NetworkPolicy")
    for ns in (KERNEL_NAMESPACE, ENCLAVE_NAMESPACE):
        deny = [p for p in policies if meta(p, "namespace") == ns
                and p["spec"].get("podSelector") in ({}, None)
                and {"Ingress", "Egress"} <= set(p["spec"].get("policyTypes") or [])
                and not p["spec"].get("ingress") and not p["spec"].get("egress")]
        if not deny:
            errors.append(f"no default-deny (ingress and egress) NetworkPolicy in {ns}")
    for p in policies:
        if meta(p, "namespace") == ENCLAVE_NAMESPACE and (p["spec"].get("ingress") or p["spec"].get("egress")):
            errors.append(f"NetworkPolicy {meta(p, 'name')} opens traffic in {ENCLAVE_NAMESPACE}; "
                          "the isolator adds each enclave's own")

    workload = kernel_workload(objs)
    if workload is None:
        return
    labels = workload["spec"]["template"]["metadata"].get("labels") or {}
    container = kernel_container(workload) or {}
    kernel_policies = [p for p in policies if meta(p, "namespace") == KERNEL_NAMESPACE
                       and (p["spec"].get("podSelector") in ({}, None)
                            or selector_matches(p["spec"]["podSelector"].get("matchLabels"), labels))]

    def covers(rule, port, protocol="TCP"):
        ports = rule.get("ports")
        if not ports:
            return True
        return any(p.get("protocol", "TCP") == protocol
                   and (p.get("port") is None or resolve_port(p.get("port"), container) == port)
                   for p in ports)

    def rules(direction):
        return [r for p in kernel_policies for r in p["spec"].get(direction) or []]

    ingress_https = [r for r in rules("ingress") if covers(r, HTTPS_PORT)]
    if not any(not r.get("from") for r in ingress_https):
        errors.append(f"the kernel's {HTTPS_PORT} is not open to API users")
    ingress_link = [r for r in rules("ingress") if covers(r, LINK_PORT)]
    if not ingress_link:
        errors.append(f"no ingress to the enclave link ({LINK_PORT})")
    for r in ingress_link:
        peers = r.get("from") or []
        # Each peer must be both: pods labelled as enclaves, in the enclave namespace.
        ok = bool(peers) and all(
            ((peer.get("namespaceSelector") or {}).get("matchLabels") or {})
            .get("kubernetes.io/metadata.name") == ENCLAVE_NAMESPACE
            and ((peer.get("podSelector") or {}).get("matchLabels") or {})
            .get(ENCLAVE_POD_LABEL[0]) == ENCLAVE_POD_LABEL[1]
            and not peer.get("ipBlock")
            for peer in peers)
        if not ok:
            errors.append(f"ingress rule {r} lets more than enclave pods reach the link ({LINK_PORT})")
    for r in rules("ingress"):
        if not r.get("ports") and not r.get("from"):
            errors.append(f"ingress rule {r} opens every port to everyone")

    egress = rules("egress")
    for r in egress:
        if not r.get("ports"):
            errors.append(f"egress rule {r} opens every port")
    for protocol in ("UDP", "TCP"):
        dns = [r for r in egress if covers(r, 53, protocol) and any(
            ((t.get("podSelector") or {}).get("matchLabels") or {}).get("k8s-app") == "kube-dns"
            for t in r.get("to") or [])]
        if not dns:
            errors.append(f"no egress to kube-dns on {protocol} 53")
    for port in (443, 6443):
        if not any(covers(r, port) for r in egress):
            errors.append(f"no egress to the Kubernetes API on {port}")
    postgres = any(covers(r, 5432) for r in egress)
    if postgres != shape["postgres_egress"]:
        errors.append(f"egress to PostgreSQL (5432) is {'open' if postgres else 'closed'}, "
                      f"expected {'open' if shape['postgres_egress'] else 'closed'}")

    # The peer link: a replica calls the others' API. Ingress on 8443 is open
    # to everyone (checked above), so the sending side decides.
    def reaches_kernels(rule):
        peers = rule.get("to") or []
        return not peers or any(
            selector_matches((peer.get("podSelector") or {}).get("matchLabels"), labels)
            and ("namespaceSelector" not in peer
                 or ((peer["namespaceSelector"] or {}).get("matchLabels") or {})
                 .get("kubernetes.io/metadata.name") == KERNEL_NAMESPACE)
            for peer in peers)
    peer_egress = any(covers(r, HTTPS_PORT) and reaches_kernels(r) for r in egress)
    if peer_egress != shape["peer"]:
        errors.append(f"egress to the other kernels' {HTTPS_PORT} (the peer link) is "
                      f"{'open' if peer_egress else 'closed'}, expected {'open' if shape['peer'] else 'closed'}")


def check_namespaces(objs, errors):
    names = {meta(o, "name") for o in find(objs, "Namespace")}
    for ns in (KERNEL_NAMESPACE, ENCLAVE_NAMESPACE):
        if ns not in names:
            errors.append(f"Namespace {ns} is not rendered")


def check_rendered(objs, overlay):
    """Every check on one overlay's rendered objects; returns the failures."""
    shape = OVERLAYS[overlay]
    errors = []
    check_namespaces(objs, errors)
    check_pod_security(objs, errors)
    workload = kernel_workload(objs)
    config = None
    if workload is not None:
        config, problem = embedded_config(objs, workload)
        if problem:
            errors.append(problem)
    roles = find(objs, "Role")
    role_namespace = meta(roles[0], "namespace") if len(roles) == 1 else None
    isolator_namespace = (((config or {}).get("isolator") or {}).get("config") or {}).get("namespace")
    check_rbac(objs, errors, isolator_namespace)
    if config is not None:
        check_config(config, errors, shape, role_namespace)
    check_kernel(objs, errors, shape, config)
    check_network(objs, errors, shape)
    return errors


def base_workload(source):
    """The kernel's workload as the base declares it (whatever its kind and file name)."""
    base_dir = os.path.join(source, "deploy/kubernetes/base")
    for name in sorted(os.listdir(base_dir)):
        if not name.endswith((".yaml", ".yml")):
            continue
        with open(os.path.join(base_dir, name)) as f:
            for d in yaml.safe_load_all(f):
                if d and d.get("kind") in WORKLOAD_KINDS and meta(d, "name") == KERNEL_WORKLOAD:
                    return d
    return None


def check_images(source, overlay, objs, errors):
    """The kernel's image comes from the overlay's `images:` and can be overridden on top."""
    overlay_dir = os.path.join(source, "deploy/kubernetes/overlays", overlay)
    base = base_workload(source)
    if base is None:
        errors.append(f"no file of deploy/kubernetes/base holds the kernel's workload {KERNEL_WORKLOAD}")
        return
    base_image = kernel_container(base)["image"]
    with open(os.path.join(overlay_dir, "kustomization.yaml")) as f:
        kustomization = yaml.safe_load(f)
    entries = [i for i in kustomization.get("images") or [] if i.get("name") == base_image]
    if len(entries) != 1:
        errors.append(f"{overlay}: kustomization.yaml has no images entry for {base_image}")
        return
    entry = entries[0]
    expected = f"{entry.get('newName', base_image)}:{entry['newTag']}" if "newTag" in entry else None
    images = {c.get("image") for _, spec, _ in pod_templates(objs) for _, c in all_containers(spec)}
    if expected and images != {expected}:
        errors.append(f"{overlay}: rendered images {images}, expected {expected} from `images:`")
    config, _ = embedded_config(objs, kernel_workload(objs)) if kernel_workload(objs) else (None, None)
    enclave_image = (((config or {}).get("isolator") or {}).get("config") or {}).get("image", "")
    if "newTag" in entry and not enclave_image.endswith(":" + str(entry["newTag"])):
        errors.append(f"{overlay}: enclave image {enclave_image} is not the kernel's version {entry['newTag']}")

    override = "registry.invalid/airlock/airlockd"
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "kustomization.yaml"), "w") as f:
            yaml.safe_dump({"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                            "resources": [os.path.relpath(overlay_dir, tmp)],
                            "images": [{"name": base_image, "newName": override, "newTag": "9.9.9"}]}, f)
        rendered = render(tmp)
    images = {c.get("image") for _, spec, _ in pod_templates(rendered) for _, c in all_containers(spec)}
    if images != {f"{override}:9.9.9"}:
        errors.append(f"{overlay}: an overlay's `images:` did not replace the kernel image: {images}")


# ---------------------------------------------------------------- the checks' own test

def set_config(objs, mutate):
    workload = kernel_workload(objs)
    config, _ = embedded_config(objs, workload)
    mutate(config)
    name = [v["configMap"]["name"] for v in workload["spec"]["template"]["spec"]["volumes"] if "configMap" in v][0]
    find(objs, "ConfigMap", name)[0]["data"]["airlock.json"] = json.dumps(config)


def kernel_sc(objs):
    return kernel_container(kernel_workload(objs))["securityContext"]


def role_rule(objs, resource):
    return [r for r in find(objs, "Role")[0]["rules"] if resource in r["resources"]][0]


def drop(objs, kind, name, namespace):
    objs.remove(find(objs, kind, name, namespace)[0])


def network_rule(objs, name, direction):
    return find(objs, "NetworkPolicy", name, KERNEL_NAMESPACE)[0]["spec"][direction]


PEER_SERVICE = "airlockd-peers"
PEER_SECRET_ENV = "AIRLOCK_PEER_SECRET"


def pod_spec(objs):
    return kernel_workload(objs)["spec"]["template"]["spec"]


def as_deployment(objs):
    """The kernel as a Deployment again: no stable names, no headless Service of its own."""
    workload = kernel_workload(objs)
    workload["kind"] = "Deployment"
    for key in ("serviceName", "podManagementPolicy", "updateStrategy", "volumeClaimTemplates"):
        workload["spec"].pop(key, None)


def rename_peer_service(objs, name):
    find(objs, "Service", PEER_SERVICE, KERNEL_NAMESPACE)[0]["metadata"]["name"] = name
    kernel_workload(objs)["spec"]["serviceName"] = name


def toggle_peer(objs, overlay):
    """ha without state.peer; single (SQLite) with one."""
    if OVERLAYS[overlay]["peer"]:
        set_config(objs, lambda c: c["state"].pop("peer"))
    else:
        set_config(objs, lambda c: c["state"].update(peer={"secret": f"env:{PEER_SECRET_ENV}"}))


def toggle_peer_egress(objs, overlay):
    """ha without egress to the other kernels on 8443; single with it."""
    if OVERLAYS[overlay]["peer"]:
        drop(objs, "NetworkPolicy", "airlockd-egress-peers", KERNEL_NAMESPACE)
    else:
        kernel = {"podSelector": {"matchLabels": {"app.kubernetes.io/name": KERNEL_WORKLOAD}}}
        objs.append({"kind": "NetworkPolicy", "metadata": {"name": "x", "namespace": KERNEL_NAMESPACE},
                     "spec": dict(kernel, policyTypes=["Egress"],
                                  egress=[{"to": [kernel], "ports": [{"port": HTTPS_PORT, "protocol": "TCP"}]}])})


def peer_secret_literal_env(objs):
    for e in kernel_container(kernel_workload(objs))["env"]:
        if e["name"] == PEER_SECRET_ENV:
            e.pop("valueFrom")
            e["value"] = "0123456789abcdef0123456789abcdef"


def without_env(objs, name):
    c = kernel_container(kernel_workload(objs))
    c["env"] = [e for e in c["env"] if e["name"] != name]


def without_mount(objs, name):
    c = kernel_container(kernel_workload(objs))
    c["volumeMounts"] = [m for m in c["volumeMounts"] if m["name"] != name]


# (name, mutation, the overlays it applies to: all when absent)
MUTATIONS = [
    ("privileged container", lambda o, _: kernel_sc(o).update(privileged=True)),
    ("privilege escalation", lambda o, _: kernel_sc(o).update(allowPrivilegeEscalation=True)),
    ("root user", lambda o, _: kernel_sc(o).update(runAsUser=0)),
    ("runAsNonRoot dropped", lambda o, _: (kernel_sc(o).pop("runAsNonRoot"),
                                           kernel_workload(o)["spec"]["template"]["spec"]["securityContext"].pop("runAsNonRoot"))),
    ("writable root fs", lambda o, _: kernel_sc(o).update(readOnlyRootFilesystem=False)),
    ("capabilities kept", lambda o, _: kernel_sc(o)["capabilities"].update(drop=["NET_RAW"])),
    ("capability added", lambda o, _: kernel_sc(o)["capabilities"].update(add=["NET_ADMIN"])),
    ("seccomp unconfined", lambda o, _: (kernel_sc(o).update(seccompProfile={"type": "Unconfined"}))),
    ("host network", lambda o, _: kernel_workload(o)["spec"]["template"]["spec"].update(hostNetwork=True)),
    ("privileged sidecar", lambda o, _: kernel_workload(o)["spec"]["template"]["spec"]["containers"].append(
        {"name": "debug", "image": "busybox", "securityContext": {"privileged": True}})),
    ("secrets get", lambda o, _: role_rule(o, "secrets")["verbs"].append("get")),
    ("wildcard verb", lambda o, _: role_rule(o, "pods").update(verbs=["*"])),
    ("wildcard resource", lambda o, _: role_rule(o, "networkpolicies").update(resources=["*"])),
    ("pods/exec granted", lambda o, _: find(o, "Role")[0]["rules"].append(
        {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]})),
    ("pods watch missing", lambda o, _: role_rule(o, "pods")["verbs"].remove("watch")),
    ("Role in kernel namespace", lambda o, _: find(o, "Role")[0]["metadata"].update(namespace=KERNEL_NAMESPACE)),
    ("ClusterRole added", lambda o, _: o.append({"kind": "ClusterRole", "metadata": {"name": "x"}, "rules": []})),
    ("binding to default SA", lambda o, _: find(o, "RoleBinding")[0]["subjects"][0].update(name="default")),
    ("binding to another Role", lambda o, _: find(o, "RoleBinding")[0]["roleRef"].update(name="edit")),
    ("isolator namespace differs", lambda o, _: set_config(o, lambda c: c["isolator"]["config"].update(namespace="default"))),
    ("process isolator", lambda o, _: set_config(o, lambda c: c["isolator"].update(name="process", plugin="airlock_isolator_process.so"))),
    ("state backend swapped", lambda o, s: set_config(o, lambda c: c.update(
        state={"backend": "postgres", "dsn_secret": "env:X"} if OVERLAYS[s]["backend"] == "sqlite" else {"backend": "sqlite"}))),
    ("airlock.json broken", lambda o, _: [cm["data"].update({"airlock.json": "{not json"}) for cm in find(o, "ConfigMap")]),
    ("literal password", lambda o, _: set_config(o, lambda c: c["connectors"]["sales-db"]["config"].update(password="hunter2"))),
    ("replicas", lambda o, s: kernel_workload(o)["spec"].update(replicas=OVERLAYS[s]["replicas"] + 1)),
    ("PDB toggled", lambda o, s: drop(o, "PodDisruptionBudget", "airlockd", KERNEL_NAMESPACE) if OVERLAYS[s]["pdb"]
        else o.append({"kind": "PodDisruptionBudget", "metadata": {"name": "x", "namespace": KERNEL_NAMESPACE},
                       "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": "airlockd"}}}})),
    ("liveness over HTTP", lambda o, _: kernel_container(kernel_workload(o))["livenessProbe"]["httpGet"].update(scheme="HTTP")),
    ("readiness elsewhere", lambda o, _: kernel_container(kernel_workload(o))["readinessProbe"]["httpGet"].update(path="/")),
    ("config writable", lambda o, _: [m.update(readOnly=False) for m in kernel_container(kernel_workload(o))["volumeMounts"] if m["name"] == "config"]),
    ("link port differs", lambda o, _: set_config(o, lambda c: c["isolator"]["config"]["link"].update(port=9555))),
    ("no POD_IP", lambda o, _: kernel_container(kernel_workload(o)).update(
        env=[e for e in kernel_container(kernel_workload(o))["env"] if e["name"] != "POD_IP"])),
    ("enclave default-deny gone", lambda o, _: drop(o, "NetworkPolicy", "default-deny", ENCLAVE_NAMESPACE)),
    ("kernel default-deny gone", lambda o, _: drop(o, "NetworkPolicy", "default-deny", KERNEL_NAMESPACE)),
    ("link open to all", lambda o, _: network_rule(o, "airlockd-ingress", "ingress")[1].pop("from")),
    ("egress wide open", lambda o, _: network_rule(o, "airlockd-egress", "egress").append({})),
    ("no DNS", lambda o, _: network_rule(o, "airlockd-egress", "egress").pop(0)),
    ("state not persistent", lambda o, s: [v.update({"emptyDir": {}}) or v.pop("persistentVolumeClaim", None)
                                           for v in kernel_workload(o)["spec"]["template"]["spec"]["volumes"]
                                           if v["name"] == "state"] if OVERLAYS[s]["backend"] == "sqlite"
        else kernel_workload(o)["spec"]["template"]["spec"].pop("affinity")),
    # The kernel's workload and the names replicas reach each other at.
    ("kernel as a Deployment", lambda o, _: as_deployment(o)),
    ("headless Service missing", lambda o, _: drop(o, "Service", PEER_SERVICE, KERNEL_NAMESPACE)),
    ("peers Service not headless", lambda o, _: find(o, "Service", PEER_SERVICE)[0]["spec"].pop("clusterIP")),
    ("not-ready replicas unpublished", lambda o, _: find(o, "Service", PEER_SERVICE)[0]["spec"].update(
        publishNotReadyAddresses=False)),
    ("setHostnameAsFQDN false", lambda o, _: pod_spec(o).update(setHostnameAsFQDN=False), ("ha",)),
    ("setHostnameAsFQDN removed", lambda o, _: pod_spec(o).pop("setHostnameAsFQDN"), ("ha",)),
    ("one hostname for all", lambda o, _: pod_spec(o).update(hostname="airlockd"), ("ha",)),
    ("host name too long", lambda o, _: rename_peer_service(o, "airlockd-peers-of-the-airlock-data-access-kernel"),
     ("ha",)),
    ("updates several at once", lambda o, _: kernel_workload(o)["spec"]["updateStrategy"].update(
        rollingUpdate={"maxUnavailable": 2}), ("ha",)),
    ("updates by hand", lambda o, _: kernel_workload(o)["spec"]["updateStrategy"].update(type="OnDelete"), ("ha",)),
    # The peer link's configuration.
    ("peer link toggled", lambda o, s: toggle_peer(o, s)),
    ("peer egress toggled", lambda o, s: toggle_peer_egress(o, s)),
    ("peer secret literal", lambda o, _: set_config(o, lambda c: c["state"]["peer"].update(
        secret="0123456789abcdef0123456789abcdef")), ("ha",)),
    ("peer secret not from a Secret", lambda o, _: peer_secret_literal_env(o), ("ha",)),
    ("peer secret variable missing", lambda o, _: without_env(o, PEER_SECRET_ENV), ("ha",)),
    ("peer url shared", lambda o, _: set_config(o, lambda c: c["state"]["peer"].update(
        url="https://airlockd.airlock.svc:8443")), ("ha",)),
    ("peer CA unset", lambda o, _: set_config(o, lambda c: c["state"]["peer"].pop("ca_file")), ("ha",)),
    ("peer CA not mounted", lambda o, _: without_mount(o, "peer"), ("ha",)),
    ("peer key unknown", lambda o, _: set_config(o, lambda c: c["state"]["peer"].update(urls=["x"])), ("ha",)),
    ("listening on one address", lambda o, _: set_config(o, lambda c: c["server"].update(
        listen_address="127.0.0.1")), ("ha",)),
]


def mutations_for(overlay):
    return [(m[0], m[1]) for m in MUTATIONS if len(m) < 3 or overlay in m[2]]


def self_test(objs, overlay):
    """Each mutation of the rendered objects must make check_rendered fail."""
    failures = []
    for name, mutate in mutations_for(overlay):
        broken = copy.deepcopy(objs)
        mutate(broken, overlay)
        if not check_rendered(broken, overlay):
            failures.append(f"{overlay}: the checks did not notice: {name}")
    return failures


# ---------------------------------------------------------------- main

def main():
    if len(sys.argv) != 2:
        print("usage: kubernetes_manifests_test.py SOURCE_DIR", file=sys.stderr)
        return 2
    source = os.path.abspath(sys.argv[1])
    if kubectl() is None:
        print("SKIP: kubectl is not installed (it renders the Kustomize overlays offline)")
        return SKIP
    failures = []
    for overlay in OVERLAYS:
        objs = render(os.path.join(source, "deploy/kubernetes/overlays", overlay))
        errors = check_rendered(objs, overlay)
        check_images(source, overlay, objs, errors)
        failures += [f"{overlay}: {e}" for e in errors]
        if errors:
            print(f"{overlay}: {len(objs)} objects, {len(errors)} problems")
            continue
        # The checks pass on the manifests; now they must fail on broken copies.
        missed = self_test(objs, overlay)
        failures += missed
        total = len(mutations_for(overlay))
        print(f"{overlay}: {len(objs)} objects, no problems; "
              f"{total - len(missed)} of {total} deliberate breakages caught")
    for f in failures:
        print("FAIL:", f)
    if failures:
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
