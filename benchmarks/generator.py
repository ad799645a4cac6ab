"""Synthetic operator traffic: a deterministic, realistic session for demos and benchmarks.

An operator (``webapp-operator``) reconciles ``WebApp`` objects (``example.com/v1``)
that own a ConfigMap, a Deployment and a Service; the Deployment's Pods come and
go under the (simulated) deployment controller.  What gets recorded is what
such an operator's API traffic looks like: watch events that trigger reconcile
spans, gets and lists, creates, updates, merge/strategic patches, status
subresource updates, 409 Conflicts retried, 404s, the odd 500 or timeout,
log-normal latencies with a slow tail, and one *hot loop*: an object whose
status write re-triggers its own reconcile, forever, without a spec change.

Generation is cheap so that it does not dominate ingest measurements: every
object is JSON encoded once into a template (the bytes between the fields that
change), each version is rendered once by joining bytes, latencies come from a
pre-drawn table, and the watch event that echoes a write, the GETs and the list
items carry the very same bytes (the writer de-duplicates identical bodies).
"""

from __future__ import annotations

import math
import random
import time
from collections import OrderedDict
from typing import Any

import msgspec

from replay_tui.engine.format import (
    ADDED,
    CREATE,
    DELETE,
    DELETED,
    GET,
    LIST,
    MODIFIED,
    PATCH,
    UPDATE,
    Operation,
)
from replay_tui.engine.writer import RecordingWriter, SessionWriter

START_NS = 1_714_557_600_000_000_000  # 2024-05-01T10:00:00Z
ACTOR = "webapp-operator"
RECONCILER = "webapp"
GROUP, VERSION = "example.com", "v1"
NAMESPACES = ("shop", "payments", "search", "platform")
APPS_PER_NAMESPACE = 8
HOT = ("platform", "flappy")  # the hot-loop WebApp
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"

_encode = msgspec.json.encode


_RENDER = object()  # flaky(): render the request body only if it is needed


class _Stop(Exception):
    """Raised when the session has its ops; unwinds whatever is being simulated."""


def _iso(ns: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ns // 1_000_000_000))


def _fields(value: Any, depth: int = 0) -> Any:
    """A managedFields ``fieldsV1`` tree mirroring a value, as the API server writes it."""
    if isinstance(value, dict) and depth < 6:
        return {f"f:{k}": _fields(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list) and depth < 6:
        out: dict[str, Any] = {}
        for item in value:
            if isinstance(item, dict) and "name" in item:
                out[f'k:{{"name":"{item["name"]}"}}'] = _fields(item, depth + 1)
            elif isinstance(item, dict) and "type" in item:
                out[f'k:{{"type":"{item["type"]}"}}'] = _fields(item, depth + 1)
        return out
    return {}


def _template(kind: str, api_version: str, metadata: dict[str, Any], body: dict[str, Any],
              *, spec: bool, status: bool, generation: bool) -> list[bytes]:
    """Encode an object once, as the parts between the holes for what changes between versions.

    Holes, in order: finalizers/deletionTimestamp, resourceVersion, generation (when
    the kind has one), spec (or ConfigMap data), status (when the kind has one).

    Keys start with kind and apiVersion, in that order, as the API server writes them:
    the writer rebuilds list items (which omit both) into the very same bytes.
    """
    meta = {"@FIN@": 0, **metadata, "resourceVersion": "@RV@"}
    if generation:
        meta["generation"] = "@GEN@"
    obj: dict[str, Any] = {"kind": kind, "apiVersion": api_version, "metadata": meta, **body}
    if spec:
        obj["spec"] = "@SPEC@"
    if status:
        obj["status"] = "@STATUS@"
    raw = _encode(obj)
    for hole, mark in ((b'"@FIN@":0,', b"\x00"), (b'"@RV@"', b'"\x00"'), (b'"@GEN@"', b"\x00"),
                       (b'"@SPEC@"', b"\x00"), (b'"@STATUS@"', b"\x00")):
        if raw.count(hole) > 1:
            raise ValueError(f"template hole {hole!r} occurs twice")
        raw = raw.replace(hole, mark)
    return raw.split(b"\x00")


class _Obj:
    """One Kubernetes object of the simulation and its current rendered version."""

    __slots__ = (
        "_item",
        "api_version",
        "app",
        "body",
        "exists",
        "fin",
        "gen",
        "kind",
        "name",
        "namespace",
        "ready",
        "resource",
        "rv",
        "spec",
        "stale",
        "status",
        "tpl",
        "uid",
    )

    def __init__(self, kind: str, api_version: str, resource: str, namespace: str, name: str,
                 uid: str, app: _App | None):
        self.kind, self.api_version, self.resource = kind, api_version, resource
        self.namespace, self.name, self.uid, self.app = namespace, name, uid, app
        self.tpl: list[bytes] = []
        self.rv = b"0"
        self.gen = 1
        self.spec = b"{}"
        self.status = b"{}"
        self.fin = b""
        self.body = b""
        self.exists = False
        self.ready = False
        self.stale = False
        self._item = (b"", b"")

    def item(self) -> bytes:
        """The current version as a list item: without kind and apiVersion (cached per version)."""
        body = self.body
        if self._item[0] is not body:
            n = len(b'{"kind":"","apiVersion":"",') + len(self.kind) + len(self.api_version)
            self._item = (body, b"{" + body[n:])
        return self._item[1]

    def render(self, rv: bytes | None = None) -> bytes:
        """The object's JSON with its current fields (``rv`` overrides: a client's stale copy)."""
        p = self.tpl
        if rv is None:
            rv = self.rv
        if len(p) == 6:
            return b"".join((p[0], self.fin, p[1], rv, p[2], b"%d" % self.gen, p[3], self.spec,
                             p[4], self.status, p[5]))
        if len(p) == 5:
            return b"".join((p[0], self.fin, p[1], rv, p[2], self.spec, p[3], self.status, p[4]))
        return b"".join((p[0], self.fin, p[1], rv, p[2], self.spec, p[3]))


class _App:
    """A WebApp and the objects it owns."""

    __slots__ = (
        "children",
        "config",
        "counter",
        "env",
        "expose",
        "hot",
        "image",
        "obj",
        "observed",
        "pod_serial",
        "pods",
        "replicas",
        "reported_ready",
        "synced",
        "terminating",
    )

    def __init__(self, obj: _Obj):
        self.obj = obj
        self.children: dict[str, _Obj] = {}  # kind -> object (ConfigMap, Deployment, Service)
        self.pods: list[_Obj] = []
        self.image = "registry.example.com/webapp:1.0.0"
        self.replicas = 2
        self.expose = True
        self.synced = 0  # app generation the children were last brought to
        self.observed = 0  # status.observedGeneration last written
        self.reported_ready = -1
        self.terminating = False
        self.hot = False
        self.counter = 0
        self.env: list[dict[str, str]] = []
        self.pod_serial = 0
        self.config = 0


class _Traffic:
    """The simulation: a cluster, an operator's work queue, and the session it writes to."""

    def __init__(self, session: SessionWriter, ops: int, seed: int):
        self.w = session
        self.append = session.append
        self.limit = ops
        self.count = 0
        self.rng = random.Random(seed)
        self.now = START_NS + self.rng.randrange(0, 3_600_000_000_000)
        self.revision = 10_000 + self.rng.randrange(0, 90_000)
        self.apps: list[_App] = []  # existing WebApps, terminating ones included
        # The work queue: app -> the event that enqueued it (None: a requeue after an error).
        self.queue: OrderedDict[_App, int | None] = OrderedDict()
        self.terminating = 0
        self.echoes: list[tuple[int, Operation, _App | None]] = []
        self.app_serial = 0
        self._iso_cache = (0, "")
        rng = self.rng
        # Drawn once: a table lookup per call keeps generation cheap (and still seeded).
        self.spread = [1_000_000 * math.exp(rng.gauss(0.0, 0.6))
                       * (rng.uniform(150.0, 900.0) if rng.random() < 0.0015 else 1.0)
                       for _ in range(1 << 14)]
        self.gaps = [int(rng.expovariate(1.0 / 400_000)) for _ in range(1 << 12)]

    # --- clock, ids, latencies -------------------------------------------------------

    def iso(self) -> str:
        second = self.now // 1_000_000_000
        if self._iso_cache[0] != second:
            self._iso_cache = (second, _iso(self.now))
        return self._iso_cache[1]

    def uid(self) -> str:
        h = f"{self.rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def bump(self) -> bytes:
        self.revision += 1 + self.rng.getrandbits(5)  # other writers in the cluster move it too
        return b"%d" % self.revision

    def latency(self, median_ms: float) -> int:
        """Log-normal (sigma 0.6) with a heavy tail: about 1 call in 700 takes over a second."""
        return int(median_ms * self.spread[self.rng.getrandbits(14)])

    # --- emitting ----------------------------------------------------------------------

    def emit(self, op: Operation) -> int:
        if self.count >= self.limit:
            raise _Stop
        self.count += 1
        op.ts_ns = self.now
        self.now += op.duration_ns + self.gaps[self.rng.getrandbits(12)]
        return self.append(op)

    def request(self, verb: str, o: _Obj, rid: int, *, status: int = 200, response: Any = None,
                request: Any = None, median_ms: float = 4.0, subresource: str = "",
                patch_type: str = "", reason: str = "", message: str = "",
                query: dict[str, str] | None = None, name: str | None = None) -> int:
        # emit() and latency() inlined: this runs for every request.
        if self.echoes:
            self.drain()
        if self.count >= self.limit:
            raise _Stop
        self.count += 1
        rng = self.rng
        duration = int(median_ms * self.spread[rng.getrandbits(14)])
        now = self.now
        self.now = now + duration + self.gaps[rng.getrandbits(12)]
        return self.append(Operation(
            verb=verb, ts_ns=now, duration_ns=duration, api_version=o.api_version,
            resource=o.resource, kind=o.kind, namespace=o.namespace,
            name=o.name if name is None else name, subresource=subresource, status=status,
            reason=reason, message=message, patch_type=patch_type, query=query,
            request=request, response=response, actor=ACTOR, reconcile=rid))

    def event(self, verb: str, o: _Obj, body: bytes) -> int:
        """A watch event; events on a WebApp or anything it owns enqueue that WebApp."""
        self.drain(everything=True)  # an object's events arrive in the order it changed
        seq = self.emit(Operation(verb=verb, api_version=o.api_version, resource=o.resource,
                                  kind=o.kind, namespace=o.namespace, name=o.name,
                                  response=body, actor=ACTOR))
        app = o.app
        if app is not None and app.obj.exists and app not in self.queue:
            self.queue[app] = seq
        return seq

    def echo(self, verb: str, o: _Obj, body: bytes) -> None:
        """The watch event a write causes, arriving a little later with the same bytes."""
        op = Operation(verb=verb, api_version=o.api_version, resource=o.resource, kind=o.kind,
                       namespace=o.namespace, name=o.name, response=body, actor=ACTOR)
        self.echoes.append((self.count + self.rng.getrandbits(2) % 3, op, o.app))

    def drain(self, everything: bool = False) -> None:
        if not self.echoes:
            return
        keep = []
        for due, op, app in self.echoes:
            if everything or due <= self.count:
                seq = self.emit(op)
                if app is not None and app.obj.exists and app not in self.queue:
                    self.queue[app] = seq
            else:
                keep.append((due, op, app))
        self.echoes = keep

    def status_error(self, code: int, reason: str, message: str, o: _Obj) -> bytes:
        return _encode({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason,
            "details": {"name": o.name, "group": o.api_version.rpartition("/")[0],
                        "kind": o.resource},
            "code": code})

    # --- objects -------------------------------------------------------------------------

    def labels(self, app: str, component: str) -> dict[str, str]:
        return {"app.kubernetes.io/name": app, "app.kubernetes.io/instance": app,
                "app.kubernetes.io/component": component,
                "app.kubernetes.io/managed-by": ACTOR, "example.com/team": f"team-{len(app) % 5}"}

    def owner(self, app: _App) -> list[dict[str, Any]]:
        return [{"apiVersion": f"{GROUP}/{VERSION}", "kind": "WebApp", "name": app.obj.name,
                 "uid": app.obj.uid, "controller": True, "blockOwnerDeletion": True}]

    def managed(self, manager: str, body: dict[str, Any], op: str = "Update",
                sub: str = "") -> dict[str, Any]:
        entry = {"manager": manager, "operation": op, "apiVersion": "v1", "time": self.iso(),
                 "fieldsType": "FieldsV1", "fieldsV1": _fields(body)}
        if sub:
            entry["subresource"] = sub
        return entry

    def new_app(self, namespace: str, name: str, hot: bool = False) -> _App:
        rng = self.rng
        o = _Obj("WebApp", f"{GROUP}/{VERSION}", "webapps", namespace, name, self.uid(), None)
        app = _App(o)
        o.app = app
        app.hot = hot
        app.replicas = rng.choice((1, 2, 2, 3, 3, 4))
        app.env = [{"name": f"FEATURE_{i}_{'X' * rng.randrange(2, 12)}",
                    "value": f"{rng.getrandbits(rng.randrange(40, 120)):x}"}
                   for i in range(rng.randrange(6, 40))]
        spec_shape = {"image": "", "replicas": 0, "port": 8080, "expose": True, "env": app.env,
                      "resources": {"limits": {"cpu": "1", "memory": "512Mi"}}}
        meta = {"name": name, "namespace": namespace, "uid": o.uid, "creationTimestamp": self.iso(),
                "labels": self.labels(name, "webapp"),
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration":
                                _encode({"apiVersion": f"{GROUP}/{VERSION}", "kind": "WebApp",
                                         "metadata": {"name": name, "namespace": namespace},
                                         "spec": spec_shape}).decode()},
                "managedFields": [
                    self.managed("kubectl-client-side-apply", {"spec": spec_shape}),
                    self.managed(ACTOR, {"status": {"observedGeneration": 0, "phase": "",
                                                    "conditions": [{"type": "Ready"}]}},
                                 sub="status"),
                ]}
        o.tpl = _template("WebApp", o.api_version, meta, {}, spec=True, status=True, generation=True)
        o.fin = b'"finalizers":["example.com/cleanup"],'
        self.app_spec(app)
        self.apps.append(app)
        return app

    def app_spec(self, app: _App) -> None:
        app.obj.spec = _encode({"image": app.image, "replicas": app.replicas, "port": 8080,
                                "expose": app.expose, "env": app.env,
                                "resources": {"limits": {"cpu": "1", "memory": "512Mi"}}})

    def app_status(self, app: _App, ready: int) -> bytes:
        t = self.iso()
        phase = "Ready" if ready >= app.replicas else "Progressing"
        extra = b',"reconcileCount":%d,"lastReconcileTime":"%s"' % (app.counter, t.encode()) \
            if app.hot else b""
        return (b'{"observedGeneration":%d,"phase":"%s","readyReplicas":%d,"conditions":['
                b'{"type":"Ready","status":"%s","reason":"%s","message":"%d/%d replicas ready",'
                b'"lastTransitionTime":"%s"}]%s}' % (
                    app.obj.gen, phase.encode(), ready,
                    b"True" if phase == "Ready" else b"False",
                    b"AllReplicasReady" if phase == "Ready" else b"RollingOut",
                    ready, app.replicas, t.encode(), extra))

    def child(self, app: _App, kind: str) -> _Obj:
        """The desired child object of a kind (template built once per app)."""
        o = app.children.get(kind)
        if o is None:
            ns, name = app.obj.namespace, app.obj.name
            if kind == "ConfigMap":
                o = _Obj(kind, "v1", "configmaps", ns, f"{name}-config", "", app)
            elif kind == "Deployment":
                o = _Obj(kind, "apps/v1", "deployments", ns, name, "", app)
            else:
                o = _Obj(kind, "v1", "services", ns, name, "", app)
            app.children[kind] = o
        return o

    def build_child(self, app: _App, o: _Obj) -> bytes:
        """Give a (re)created child a uid and template; returns the create request body."""
        rng = self.rng
        o.uid = self.uid()
        name, ns = app.obj.name, app.obj.namespace
        labels = self.labels(name, o.kind.lower())
        body: dict[str, Any] = {}
        if o.kind == "ConfigMap":
            body = {"data": "@SPEC@"}
            shape: dict[str, Any] = {"data": {f"{name}-{i}.properties": "" for i in range(3)}}
        elif o.kind == "Service":
            shape = {"spec": {"selector": {"app.kubernetes.io/name": name},
                              "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}
        else:
            shape = {"spec": {"replicas": 0, "selector": {}, "template": {
                "spec": {"containers": [{"name": "web", "env": app.env}]}}}}
        annotations = {"example.com/config-hash": f"{rng.getrandbits(64):016x}",
                       "example.com/owner-generation": "1",
                       "example.com/docs": f"https://wiki.example.com/teams/{ns}/services/{name}"}
        if o.kind == "Service":
            annotations.update({
                "prometheus.io/scrape": "true", "prometheus.io/port": "9090",
                "prometheus.io/path": "/metrics",
                "service.beta.kubernetes.io/aws-load-balancer-internal": "true",
                "external-dns.alpha.kubernetes.io/hostname": f"{name}.{ns}.svc.example.com"})
        shape["metadata"] = {"labels": labels, "annotations": annotations,
                             "ownerReferences": self.owner(app)}
        if o.kind == "Service":
            shape["spec"]["ports"] = msgspec.json.decode(o.spec or b"{}").get("ports", []) or [
                {"name": n} for n in ("http", "metrics", "grpc")]
        meta = {"name": o.name, "namespace": ns, "uid": o.uid, "creationTimestamp": self.iso(),
                "labels": labels, "annotations": annotations,
                "ownerReferences": self.owner(app),
                "managedFields": [self.managed(ACTOR, shape)]}
        if o.kind == "Deployment":
            meta["annotations"]["deployment.kubernetes.io/revision"] = "1"
            meta["managedFields"].append(self.managed(
                "kube-controller-manager", {"status": {"replicas": 0, "conditions": [
                    {"type": "Available"}, {"type": "Progressing"}]}}, sub="status"))
        o.tpl = _template(o.kind, o.api_version, meta, body, spec=o.kind != "ConfigMap",
                          status=o.kind != "ConfigMap", generation=o.kind == "Deployment")
        o.gen = 1
        o.fin = b""
        self.child_spec(app, o)
        o.status = b'{"loadBalancer":{}}' if o.kind == "Service" else self.deploy_status(o, 0)
        desired = {"kind": o.kind, "apiVersion": o.api_version,
                   "metadata": {"name": o.name, "namespace": ns, "labels": labels,
                                "ownerReferences": self.owner(app)}}
        if o.kind == "ConfigMap":
            desired["data"] = msgspec.json.decode(o.spec)
        else:
            desired["spec"] = msgspec.json.decode(o.spec)
        return _encode(desired)

    def child_spec(self, app: _App, o: _Obj) -> None:
        name = app.obj.name
        if o.kind == "ConfigMap":
            o.spec = _encode({f"{name}-{i}.properties": "\n".join(
                f"{e['name'].lower()}.setting{j}={e['value']}" for j, e in enumerate(app.env[: 10 + 4 * i]))
                + f"\nrevision={app.config}\nimage={app.image}\nlog.level=info\n"
                "server.shutdown.grace=30s\nmetrics.enabled=true\nmetrics.port=9090\n"
                for i in range(2 + len(app.env) % 3)})
        elif o.kind == "Deployment":
            o.spec = _encode({
                "replicas": app.replicas,
                "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
                "template": {
                    "metadata": {"labels": {"app.kubernetes.io/name": name}},
                    "spec": {"containers": [{
                        "name": "web", "image": app.image,
                        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                        "env": app.env,
                        "resources": {"limits": {"cpu": "1", "memory": "512Mi"},
                                      "requests": {"cpu": "100m", "memory": "128Mi"}},
                        "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080},
                                           "periodSeconds": 5},
                        "volumeMounts": [{"name": "config", "mountPath": "/etc/webapp"}],
                        "imagePullPolicy": "IfNotPresent"}, {
                        "name": "metrics-exporter", "image": "registry.example.com/exporter:0.9.1",
                        "args": ["--listen=:9090", "--scrape=http://localhost:8080/metrics",
                                 "--log-format=json"],
                        "ports": [{"name": "metrics", "containerPort": 9090, "protocol": "TCP"}],
                        "resources": {"limits": {"cpu": "100m", "memory": "64Mi"}},
                        "imagePullPolicy": "IfNotPresent"}],
                        "volumes": [{"name": "config", "configMap": {"name": f"{name}-config"}}],
                        "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
                        "dnsPolicy": "ClusterFirst", "schedulerName": "default-scheduler"}},
                "strategy": {"type": "RollingUpdate",
                             "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
                "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600})
        elif o.kind == "Service":
            ip = f"10.96.{len(name)}.{app.obj.gen % 250}"
            o.spec = _encode({"selector": {"app.kubernetes.io/name": name},
                              "ports": [{"name": "http", "protocol": "TCP", "port": 80,
                                         "targetPort": 8080},
                                        {"name": "metrics", "protocol": "TCP", "port": 9090,
                                         "targetPort": 9090},
                                        {"name": "grpc", "protocol": "TCP", "port": 50051,
                                         "targetPort": 50051}],
                              "type": "ClusterIP", "clusterIP": ip, "clusterIPs": [ip],
                              "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
                              "internalTrafficPolicy": "Cluster", "sessionAffinity": "None"})

    def deploy_status(self, o: _Obj, ready: int) -> bytes:
        t = self.iso().encode()
        return (b'{"observedGeneration":%d,"replicas":%d,"updatedReplicas":%d,"readyReplicas":%d,'
                b'"availableReplicas":%d,"conditions":[{"type":"Available","status":"%s",'
                b'"lastUpdateTime":"%s","lastTransitionTime":"%s","reason":"MinimumReplicasAvailable",'
                b'"message":"Deployment has minimum availability."},{"type":"Progressing",'
                b'"status":"True","lastUpdateTime":"%s","lastTransitionTime":"%s",'
                b'"reason":"NewReplicaSetAvailable","message":"ReplicaSet has successfully progressed."}]}'
                % (o.gen, ready, ready, ready, ready, b"True" if ready else b"False", t, t, t, t))

    def new_pod(self, app: _App) -> _Obj:
        rng = self.rng
        app.pod_serial += 1
        suffix = f"{rng.getrandbits(20):05x}"
        o = _Obj("Pod", "v1", "pods", app.obj.namespace, f"{app.obj.name}-7d{app.pod_serial % 97:02d}f-{suffix}",
                 self.uid(), app)
        meta = {"name": o.name, "generateName": f"{app.obj.name}-7df-", "namespace": o.namespace,
                "uid": o.uid, "creationTimestamp": self.iso(),
                "labels": {"app.kubernetes.io/name": app.obj.name, "pod-template-hash": "7df"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                     "name": f"{app.obj.name}-7df", "uid": app.obj.uid,
                                     "controller": True, "blockOwnerDeletion": True}],
                "managedFields": [self.managed("kubelet", {"status": {"conditions": [
                    {"type": "Ready"}, {"type": "ContainersReady"}], "podIP": ""}}, sub="status")]}
        dep = app.children.get("Deployment")
        spec = msgspec.json.decode(dep.spec)["template"]["spec"] if dep is not None and dep.exists else {}
        spec["nodeName"] = f"worker-{rng.randrange(1, 9)}"
        o.tpl = _template("Pod", "v1", meta, {}, spec=True, status=True, generation=False)
        o.spec = _encode(spec)
        o.status = self.pod_status(o, False, 0)
        o.exists = True
        return o

    def pod_status(self, o: _Obj, ready: bool, restarts: int) -> bytes:
        t = self.iso().encode()
        r = b"True" if ready else b"False"
        return (b'{"phase":"%s","conditions":[{"type":"Initialized","status":"True","lastTransitionTime":"%s"},'
                b'{"type":"Ready","status":"%s","lastTransitionTime":"%s"},'
                b'{"type":"ContainersReady","status":"%s","lastTransitionTime":"%s"},'
                b'{"type":"PodScheduled","status":"True","lastTransitionTime":"%s"}],'
                b'"hostIP":"172.18.0.%d","podIP":"10.244.%d.%d","startTime":"%s",'
                b'"containerStatuses":[{"name":"web","ready":%s,"restartCount":%d,"started":%s,'
                b'"image":"registry.example.com/webapp","imageID":"sha256:%s","state":{"running":'
                b'{"startedAt":"%s"}}}],"qosClass":"Burstable"}' % (
                    b"Running" if ready else b"Pending", t, r, t, r, t, t,
                    len(o.name) % 200, len(o.namespace), len(o.name), t,
                    b"true" if ready else b"false", restarts, b"true" if ready else b"false",
                    o.uid.replace("-", "").encode(), t))

    # --- the operator --------------------------------------------------------------------

    def reconcile(self, app: _App, trigger: int | None) -> None:
        if self.count >= self.limit:
            raise _Stop
        o = app.obj
        rid = self.w.begin_reconcile(RECONCILER, kind="WebApp", namespace=o.namespace,
                                     name=o.name, trigger_seq=trigger, ts_ns=self.now)
        error = ""
        try:
            error = self._reconcile(app, rid)
        finally:
            self.w.end_reconcile(rid, error=error, ts_ns=self.now)
        if error and o.exists and app not in self.queue:
            self.queue[app] = None  # requeue after an error: no triggering event

    def flaky(self, verb: str, o: _Obj, rid: int, **kw: Any) -> str:
        """Occasionally a request fails with 500 or times out; returns the error text, or ''.

        ``request=_RENDER`` sends the object as it is now (rendered only on failure).
        """
        roll = self.rng.random()
        if roll >= 0.004:
            return ""
        if kw.get("request") is _RENDER:
            kw["request"] = o.render()
        if roll < 0.003:
            msg = "Internal error occurred: etcdserver: request timed out"
            self.request(verb, o, rid, status=500, reason="InternalError", message=msg,
                         response=self.status_error(500, "InternalError", msg, o), **kw)
            return msg
        if roll < 0.004:
            msg = ("the server was unable to return a response in the time allotted,"
                   " but may still be processing the request")
            kw["median_ms"] = 2500.0
            self.request(verb, o, rid, status=504, reason="Timeout", message=msg,
                         response=self.status_error(504, "Timeout", msg, o), **kw)
            return msg
        return ""

    def get(self, o: _Obj, rid: int) -> str:
        err = self.flaky(GET, o, rid, median_ms=3.0)
        if err:
            return err
        if o.exists:
            self.request(GET, o, rid, response=o.body, median_ms=3.0)
        else:
            group = "." + o.api_version.rpartition("/")[0] if "/" in o.api_version else ""
            msg = f'{o.resource}{group} "{o.name}" not found'
            self.request(GET, o, rid, status=404, reason="NotFound", message=msg,
                         response=self.status_error(404, "NotFound", msg, o), median_ms=2.0)
        return ""

    def write(self, verb: str, o: _Obj, rid: int, *, subresource: str = "",
              patch: bytes | None = None, patch_type: str = "", conflict: float = 0.0) -> str:
        """Update/patch ``o`` to its current fields: a new version, its echo, maybe a 409 first."""
        err = self.flaky(verb, o, rid, subresource=subresource, median_ms=8.0,
                         request=patch if patch is not None else _RENDER, patch_type=patch_type)
        if err:
            return err
        if verb == UPDATE and self.rng.random() < conflict:
            stale = o.render(rv=b"%d" % (int(o.rv) - self.rng.randrange(1, 30)))
            msg = (f'Operation cannot be fulfilled on {o.resource}'
                   f'{"." + o.api_version.rpartition("/")[0] if "/" in o.api_version else ""}'
                   f' "{o.name}": the object has been modified; please apply your changes'
                   f" to the latest version and try again")
            self.request(verb, o, rid, status=409, reason="Conflict", message=msg,
                         response=self.status_error(409, "Conflict", msg, o), request=stale,
                         subresource=subresource, median_ms=6.0)
            self.get(o, rid)  # retry.RetryOnConflict: re-read, then write again
        request = patch if patch is not None else o.render()
        o.rv = self.bump()
        o.body = o.render()
        self.request(verb, o, rid, request=request, response=o.body, subresource=subresource,
                     patch_type=patch_type, median_ms=8.0)
        self.echo(MODIFIED, o, o.body)
        return ""

    def create(self, app: _App, o: _Obj, rid: int) -> str:
        request = self.build_child(app, o)
        err = self.flaky(CREATE, o, rid, request=request, median_ms=9.0)
        if err:
            return err
        o.rv = self.bump()
        o.body = o.render()
        o.exists = True
        self.request(CREATE, o, rid, status=201, request=request, response=o.body, median_ms=9.0)
        self.echo(ADDED, o, o.body)
        if o.kind == "Deployment":
            o.stale = True  # the deployment controller will create pods
        return ""

    def delete(self, o: _Obj, rid: int) -> str:
        err = self.flaky(DELETE, o, rid, median_ms=7.0)
        if err:
            return err
        o.rv = self.bump()
        o.body = o.render()
        o.exists = False
        self.request(DELETE, o, rid, response=o.body, median_ms=7.0,
                     request=b'{"kind":"DeleteOptions","apiVersion":"v1","propagationPolicy":"Background"}')
        self.echo(DELETED, o, o.body)
        return ""

    def _reconcile(self, app: _App, rid: int) -> str:
        rng = self.rng
        o = app.obj
        err = self.get(o, rid)
        if err or not o.exists:
            return err
        if app.terminating:  # finalizer: children go with the owner; let go of it
            o.fin = b'"deletionTimestamp":"%s","finalizers":[],' % self.iso().encode()
            err = self.write(PATCH, o, rid, patch=b'{"metadata":{"finalizers":null}}',
                             patch_type=MERGE_PATCH)
            if err:
                return err
            self.drain(everything=True)
            o.exists = False
            o.rv = self.bump()
            self.event(DELETED, o, o.render())
            for child in list(app.children.values()) + app.pods:
                if child.exists:
                    child.exists = False
                    self.event(DELETED, child, child.body)
            self.remove(app)
            return ""
        dep = self.child(app, "Deployment")
        if app.hot:  # the hot loop: read, write status, our own write re-triggers us
            err = self.get(dep, rid) if dep.exists else ""
            if err:
                return err
            app.counter += 1
            o.status = self.app_status(app, sum(p.ready for p in app.pods))
            return self.write(UPDATE, o, rid, subresource="status", conflict=0.02)
        for kind in ("ConfigMap", "Deployment", "Service"):
            c = self.child(app, kind)
            if kind == "Service" and not app.expose:
                if c.exists:
                    err = self.get(c, rid) or self.delete(c, rid)
                if err:
                    return err
                continue
            if not c.exists:
                err = self.get(c, rid) or self.create(app, c, rid)
            elif app.synced < o.gen:
                if kind == "Deployment":
                    before = c.spec
                    self.child_spec(app, c)
                    if c.spec != before:  # not again when retrying a write that failed
                        c.gen += 1
                        c.stale = True
                    err = self.write(UPDATE, c, rid, conflict=0.15)
                elif kind == "Service":
                    patch = _encode({"metadata": {"annotations": {"example.com/spec-generation": str(o.gen)}}})
                    err = self.write(PATCH, c, rid, patch=patch, patch_type=STRATEGIC_PATCH)
                elif rng.random() < 0.5:
                    app.config += 1
                    self.child_spec(app, c)
                    err = self.write(UPDATE, c, rid, conflict=0.05)
            elif rng.random() < 0.35:
                err = self.get(c, rid)
            if err:
                return err
        app.synced = o.gen
        if rng.random() < 0.25:
            err = self.list_pods(app, rid)
            if err:
                return err
        ready = sum(p.ready for p in app.pods)
        if app.observed != o.gen or app.reported_ready != ready:
            o.status = self.app_status(app, ready)
            err = self.write(UPDATE, o, rid, subresource="status", conflict=0.04)
            if err:
                return err
            app.observed, app.reported_ready = o.gen, ready
        return ""

    def list_pods(self, app: _App, rid: int) -> str:
        o = app.pods[0] if app.pods else _Obj("Pod", "v1", "pods", app.obj.namespace, "", "", app)
        query = {"labelSelector": f"app.kubernetes.io/name={app.obj.name}"}
        err = self.flaky(LIST, o, rid, name="", query=query, median_ms=12.0)
        if err:
            return err
        self.request(LIST, o, rid, name="", query=query, median_ms=12.0,
                     response=self.list_body("PodList", "v1", app.pods))
        return ""

    def list_body(self, kind: str, api_version: str, objects: list[_Obj]) -> bytes:
        items = b",".join([o.item() for o in objects])
        return b'{"kind":"%s","apiVersion":"%s","metadata":{"resourceVersion":"%d"},"items":[%s]}' % (
            kind.encode(), api_version.encode(), self.revision, items)

    def resync(self) -> None:
        """The informer's periodic relist of every WebApp (outside any reconcile)."""
        apps = [a.obj for a in self.apps if a.obj.exists]
        if not apps:
            return
        self.drain()
        self.emit(Operation(
            verb=LIST, duration_ns=self.latency(25.0), api_version=f"{GROUP}/{VERSION}",
            resource="webapps", kind="WebApp", status=200, query={"resourceVersion": "0"},
            response=self.list_body("WebAppList", f"{GROUP}/{VERSION}", apps),
            actor=ACTOR))

    # --- the rest of the cluster ---------------------------------------------------------

    def remove(self, app: _App) -> None:
        self.apps.remove(app)
        self.terminating -= 1
        self.queue.pop(app, None)

    def add_app(self, namespace: str, hot: bool = False) -> None:
        self.app_serial += 1
        name = HOT[1] if hot else f"web-{self.app_serial:04d}"
        app = self.new_app(namespace, name, hot)
        o = app.obj
        o.rv = self.bump()
        o.status = b"{}"
        o.body = o.render()
        o.exists = True
        self.event(ADDED, o, o.body)

    def external(self) -> None:
        """Something the operator did not do: a user, the deployment controller, the kubelet."""
        rng = self.rng
        roll = rng.random()
        live = len(self.apps) - self.terminating
        app = self.apps[int(rng.random() * len(self.apps))] if self.apps else None
        if roll < 0.03 or app is None or app.terminating:
            if live < len(NAMESPACES) * APPS_PER_NAMESPACE + 4:
                self.add_app(NAMESPACES[int(rng.random() * len(NAMESPACES))])
            return
        o = app.obj
        if roll < 0.045 and not app.hot and live > len(NAMESPACES) * APPS_PER_NAMESPACE - 4:
            app.terminating = True  # a user deletes it: the finalizer keeps it, terminating
            self.terminating += 1
            o.fin = b'"deletionTimestamp":"%s","finalizers":["example.com/cleanup"],' % self.iso().encode()
            o.rv = self.bump()
            o.body = o.render()
            self.event(MODIFIED, o, o.body)
        elif roll < 0.17 and not app.hot:  # a user edits the spec: generation bumps
            choice = rng.random()
            if choice < 0.5:
                app.image = f"registry.example.com/webapp:1.{rng.randrange(0, 40)}.{rng.randrange(0, 10)}"
            elif choice < 0.8:
                app.replicas = rng.choice((1, 2, 3, 4, 5))
            else:
                app.expose = not app.expose
            self.app_spec(app)
            o.gen += 1
            o.rv = self.bump()
            o.body = o.render()
            self.event(MODIFIED, o, o.body)
        elif roll < 0.2:
            self.resync()
        else:
            self.controllers(app)

    def controllers(self, app: _App) -> None:
        """The deployment controller and kubelets moving an app's pods toward its spec."""
        rng = self.rng
        dep = app.children.get("Deployment")
        if dep is None or not dep.exists:
            return
        pods = app.pods
        if dep.stale and pods and any(p.stale for p in pods):  # rolling update: replace one old pod
            old = next(p for p in pods if p.stale)
            self.kill(app, old)
            return
        if len(pods) < app.replicas:
            if dep.stale:
                for p in pods:
                    p.stale = False
            pod = self.new_pod(app)
            pod.rv = self.bump()
            pod.body = pod.render()
            pods.append(pod)
            self.event(ADDED, pod, pod.body)
            return
        if len(pods) > app.replicas:
            self.kill(app, pods[-1])
            return
        waiting = [p for p in pods if not p.ready]
        if waiting:
            p = waiting[0]
            p.ready = True
            p.status = self.pod_status(p, True, 0)
            p.rv = self.bump()
            p.body = p.render()
            self.event(MODIFIED, p, p.body)
            return
        ready = len(pods)
        if dep.stale or rng.random() < 0.3:
            dep.stale = False
            dep.status = self.deploy_status(dep, ready)
            dep.rv = self.bump()
            dep.body = dep.render()
            self.event(MODIFIED, dep, dep.body)
            if dep.gen > 1 or rng.random() < 0.5:
                for p in pods:
                    p.stale = rng.random() < 0.3
            return
        p = rng.choice(pods)  # a container restart: the pod flaps
        p.ready = False
        p.status = self.pod_status(p, False, rng.randrange(1, 6))
        p.rv = self.bump()
        p.body = p.render()
        self.event(MODIFIED, p, p.body)

    def kill(self, app: _App, pod: _Obj) -> None:
        app.pods.remove(pod)
        pod.exists = False
        pod.rv = self.bump()
        self.event(DELETED, pod, pod.render())

    # --- driver ----------------------------------------------------------------------------

    def run(self) -> None:
        rng = self.rng
        try:
            for ns in NAMESPACES:
                for _ in range(APPS_PER_NAMESPACE):
                    self.add_app(ns)
            self.add_app(HOT[0], hot=True)
            while True:
                if self.queue and rng.random() < 0.7:
                    app, trigger = self.queue.popitem(last=False)
                    self.reconcile(app, trigger)
                else:
                    self.external()
        except _Stop:
            pass


def write_session(writer: RecordingWriter, ops: int, *, name: str = "synthetic", seed: int = 0,
                  **session_options: Any) -> int:
    """Write one synthetic session of exactly ``ops`` operations; returns its session id."""
    if ops < 0:
        raise ValueError("ops must be >= 0")
    session = writer.session(name, "synthetic", actor=ACTOR, cluster="kind-synthetic",
                             attributes={"generator": "benchmarks.generator", "seed": seed, "ops": ops},
                             **session_options)
    traffic = _Traffic(session, ops, seed)
    try:
        traffic.run()
    except BaseException:
        session.abort()
        raise
    session.close()
    return session.id
