"""The state at a position, created in a real cluster (kind, kwok, a dev cluster): for when a fork's
emulation is not enough.

The plan, from the objects that exist at the position:

* CustomResourceDefinitions first (then the cluster's discovery is read again, once they are
  established), then Namespaces, then the other objects, owners before what they own;
* system namespaces (``kube-system``, ``kube-public``, ``kube-node-lease``) and their objects are
  skipped, and so are Events (history, not state) and objects that were being deleted;
* a Secret whose values the recorder redacted (``redacted:hmac-sha256:...``) is refused with a
  warning: the real values were never stored;
* fields the server sets are stripped (uid, resourceVersion, creationTimestamp, generation,
  managedFields, selfLink, deletion fields), and those a cluster assigns (a Service's clusterIP,
  a Pod's nodeName); owner references point at the restored owners' new uids (a reference to
  an owner not restored is dropped: the cluster's garbage collector would delete the object);
* status is written through the status subresource after the create, where the resource has one.

An object that already exists is left as it is.  ``--dry-run`` prints the plan and writes nothing.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from typing import Any

import msgspec

from replay_tui.engine.format import ObjectKey
from replay_tui.engine.schema import RecordingError
from replay_tui.server.apiserver import crd_types
from replay_tui.server.discovery import types_from_resource_list
from replay_tui.server.resources import SYSTEM_NAMESPACES, ResourceType

SERVER_FIELDS = ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields", "selfLink",
                 "deletionTimestamp", "deletionGracePeriodSeconds")
REDACTED = "redacted:hmac-sha256:"
SKIPPED_KINDS = frozenset({("", "Event"), ("events.k8s.io", "Event")})
ESTABLISH_TIMEOUT_S = 30.0
_ORDER = {"ServiceAccount": 2, "Secret": 3, "ConfigMap": 3}  # core kinds others refer to, first


class Step(msgspec.Struct, kw_only=True):
    """One object of the plan, and what became of it."""

    key: str
    action: str  # create | skip | refuse
    reason: str = ""
    outcome: str = ""  # created | exists | failed: ... | would create


def redacted(obj: dict[str, Any]) -> bool:
    values = [*(obj.get("data") or {}).values(), *(obj.get("stringData") or {}).values()]
    return any(isinstance(v, str) and v.startswith(REDACTED) for v in values)


def prepare(obj: dict[str, Any]) -> dict[str, Any]:
    """The object as a create request carries it: server-set and cluster-assigned fields stripped."""
    out = copy.deepcopy(obj)
    meta = out.setdefault("metadata", {})
    for key in SERVER_FIELDS:
        meta.pop(key, None)
    spec = out.get("spec")
    if isinstance(spec, dict):
        if obj.get("kind") == "Service":
            spec.pop("clusterIP", None)
            spec.pop("clusterIPs", None)
        if obj.get("kind") == "Pod":
            spec.pop("nodeName", None)
    return out


def plan(items: list[tuple[ObjectKey, dict[str, Any]]],
         namespaces: list[str]) -> tuple[list[Step], list[dict[str, Any]]]:
    """Which objects to create, in order (with the steps skipped and why)."""
    steps: list[Step] = []
    chosen: list[tuple[ObjectKey, dict[str, Any]]] = []
    wanted = set(namespaces)
    for key, obj in items:
        ns = key.namespace or (key.name if key.kind == "Namespace" and not key.group else "")
        if key.kind == "CustomResourceDefinition":
            chosen.append((key, obj))
            continue
        if ns in SYSTEM_NAMESPACES:
            steps.append(Step(key=str(key), action="skip", reason="a system namespace"))
        elif wanted and (ns not in wanted if ns else True):
            steps.append(Step(key=str(key), action="skip", reason="not in --namespace"))
        elif (key.group, key.kind) in SKIPPED_KINDS:
            steps.append(Step(key=str(key), action="skip", reason="events are history, not state"))
        elif (obj.get("metadata") or {}).get("deletionTimestamp"):
            steps.append(Step(key=str(key), action="skip", reason="it was being deleted"))
        elif key.kind == "Secret" and not key.group and redacted(obj):
            steps.append(Step(key=str(key), action="refuse",
                              reason="its values were redacted when recorded: restore it by hand"))
        else:
            chosen.append((key, obj))
    if wanted:  # CRDs only for the custom resources restored
        used = {(k.group, k.kind) for k, _ in chosen}
        chosen = [(k, o) for k, o in chosen if k.kind != "CustomResourceDefinition"
                  or any((rt.group, rt.kind) in used for rt in crd_types(o))]
    uids = {(o.get("metadata") or {}).get("uid"): o for _, o in chosen}

    def depth(obj: dict[str, Any], seen: frozenset[int] = frozenset()) -> int:
        owners = [uids.get(r.get("uid")) for r in (obj.get("metadata") or {}).get("ownerReferences") or []
                  if isinstance(r, dict)]
        return 1 + max((depth(o, seen | {id(obj)}) for o in owners if o is not None and id(o) not in seen), default=0)

    def stage(key: ObjectKey) -> int:
        return 0 if key.kind == "CustomResourceDefinition" else 1 if key.kind == "Namespace" and not key.group else 2

    chosen.sort(key=lambda ko: (stage(ko[0]), depth(ko[1]), _ORDER.get(ko[0].kind, 4) if not ko[0].group else 4,
                                ko[0]))
    steps += [Step(key=str(k), action="create") for k, _ in chosen]
    return steps, [o for _, o in chosen]


class Cluster:
    """The target cluster through the kubeconfig's credentials (the recording proxy's upstream loader)."""

    def __init__(self, upstream: Any):
        import aiohttp

        self.upstream = upstream
        self.types: dict[tuple[str, str], ResourceType] = {}
        connector = aiohttp.TCPConnector(ssl=upstream.ssl_context if upstream.ssl_context else False)
        self.http = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60))

    async def close(self) -> None:
        await self.http.close()

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        import aiohttp

        headers = {"Accept": "application/json"}
        if self.upstream.authorization:
            headers["Authorization"] = self.upstream.authorization
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = msgspec.json.encode(body)
        try:
            async with self.http.request(method, self.upstream.url + path, data=data, headers=headers,
                                         server_hostname=self.upstream.server_hostname,
                                         proxy=self.upstream.proxy) as resp:
                raw = await resp.read()
                try:
                    return resp.status, msgspec.json.decode(raw) if raw else None
                except msgspec.DecodeError:
                    return resp.status, raw.decode(errors="replace")[:200]
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            from replay_tui.recorder.proxy import describe

            raise RecordingError(f"cannot reach the cluster at {self.upstream.url}: {describe(exc)}") from None

    async def discover(self) -> None:
        """The kinds the cluster serves (preferred versions), with scope and status subresource."""
        status, doc = await self.request("GET", "/api/v1")
        if status != 200:
            raise RecordingError(f"{self.upstream.url}/api/v1 answered {status}: is this a Kubernetes API server?")
        found = types_from_resource_list(doc)
        status, groups = await self.request("GET", "/apis")
        for group in (groups or {}).get("groups") or [] if status == 200 else []:
            preferred = (group.get("preferredVersion") or {}).get("groupVersion")
            if preferred:
                code, doc = await self.request("GET", f"/apis/{preferred}")
                if code == 200:
                    found += types_from_resource_list(doc)
        self.types = {(rt.group, rt.kind): rt for rt in found}

    def path(self, rt: ResourceType, namespace: str, name: str = "", sub: str = "") -> str:
        base = f"/apis/{rt.group}/{rt.version}" if rt.group else f"/api/{rt.version}"
        if rt.namespaced:
            base += f"/namespaces/{namespace}"
        base += f"/{rt.plural}"
        if name:
            base += f"/{name}"
        return base + (f"/{sub}" if sub else "")

    async def established(self, names: list[str]) -> None:
        """Wait until the CRDs are established (their resources served)."""
        rt = self.types.get(("apiextensions.k8s.io", "CustomResourceDefinition"))
        if rt is None:
            return
        deadline = asyncio.get_running_loop().time() + ESTABLISH_TIMEOUT_S
        for name in names:
            while True:
                code, crd = await self.request("GET", self.path(rt, "", name))
                conditions = ((crd or {}).get("status") or {}).get("conditions") or [] if code == 200 else []
                if any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions):
                    break
                if asyncio.get_running_loop().time() > deadline:
                    raise RecordingError(f"CustomResourceDefinition {name} was not established in time")
                await asyncio.sleep(0.2)


async def restore(items: list[tuple[ObjectKey, dict[str, Any]]], upstream: Any, *, namespaces: list[str],
                  dry_run: bool, say: Callable[[Step], None]) -> list[Step]:
    """Create the objects in the cluster (or, with ``dry_run``, only say what would be); every step is
    told through ``say`` as it is done."""
    steps, objects = plan(items, namespaces)
    todo = [s for s in steps if s.action == "create"]
    cluster = Cluster(upstream)
    try:
        await cluster.discover()  # an unreachable cluster fails here, before anything is said
        for step in steps:
            if step.action != "create":
                say(step)
        uids: dict[str, str] = {}  # recorded uid -> the restored object's uid
        crds_done = False
        for step, obj in zip(todo, objects):
            kind, group = obj.get("kind", ""), str(obj.get("apiVersion", "")).rpartition("/")[0]
            if not crds_done and kind != "CustomResourceDefinition":
                crds_done = True
                created = [(o.get("metadata") or {}).get("name") for s, o in zip(todo, objects)
                           if o.get("kind") == "CustomResourceDefinition"
                           and s.outcome.startswith(("created", "exists"))]
                if created and not dry_run:
                    await cluster.established([n for n in created if n])
                    await cluster.discover()
                elif dry_run:
                    for o in objects:
                        if o.get("kind") == "CustomResourceDefinition":
                            cluster.types.update({(rt.group, rt.kind): rt for rt in crd_types(o)})
            rt = cluster.types.get((group, kind))
            if rt is None:
                step.action, step.reason = "skip", "the cluster does not serve this kind"
                say(step)
                continue
            await _create(cluster, rt, step, obj, uids, dry_run)
            say(step)
    finally:
        await cluster.close()
    return steps


async def _create(cluster: Cluster, rt: ResourceType, step: Step, obj: dict[str, Any], uids: dict[str, str],
                  dry_run: bool) -> None:
    meta = obj.get("metadata") or {}
    body = prepare(obj)
    status = body.pop("status", None) if rt.status else None
    refs = []
    for ref in (body["metadata"].get("ownerReferences") or []):
        if isinstance(ref, dict) and ref.get("uid") in uids:
            refs.append({**ref, "uid": uids[ref["uid"]]})
        elif not dry_run:
            step.reason = "an owner reference to an object not restored was dropped"
    if refs:
        body["metadata"]["ownerReferences"] = refs
    else:
        body["metadata"].pop("ownerReferences", None)
    ns = meta.get("namespace", "") if rt.namespaced else ""
    if dry_run:
        step.outcome = "would create" + (", then its status" if status else "")
        if isinstance(meta.get("uid"), str):
            uids[meta["uid"]] = meta["uid"]
        return
    code, answer = await cluster.request("POST", cluster.path(rt, ns), body)
    if code == 409:
        step.outcome = "exists"
        code, answer = await cluster.request("GET", cluster.path(rt, ns, meta.get("name", "")))
        status = None  # left as it is
    elif code not in (200, 201):
        step.outcome = f"failed: {code} {_message(answer)}"
        return
    else:
        step.outcome = "created"
    new_uid = ((answer or {}).get("metadata") or {}).get("uid") if isinstance(answer, dict) else None
    if isinstance(meta.get("uid"), str) and isinstance(new_uid, str):
        uids[meta["uid"]] = new_uid
    if status and isinstance(answer, dict):
        answer["status"] = status
        code, reply = await cluster.request("PUT", cluster.path(rt, ns, meta.get("name", ""), "status"), answer)
        step.outcome += ", status written" if code == 200 else f", status failed: {code} {_message(reply)}"


def _message(answer: Any) -> str:
    if isinstance(answer, dict):
        return str(answer.get("message") or answer.get("reason") or "")[:200]
    return str(answer or "")[:200]
