"""Kubernetes API paths and verbs: what a request is about, from its method, path and query.

Shared by the recording proxy, the client hook and the test emulator, so the
three agree on what ``/api/v1/namespaces/ns/pods/p/status`` means.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote

import msgspec

from replay_tui.engine.format import CREATE, DELETE, DELETECOLLECTION, GET, LIST, PATCH, UPDATE, WATCH

# Query parameters worth keeping with an op (the rest, e.g. pretty or fieldManager, is noise).
KEPT_QUERY = ("labelSelector", "fieldSelector", "resourceVersion", "resourceVersionMatch", "watch",
              "limit", "continue", "timeoutSeconds", "allowWatchBookmarks", "sendInitialEvents",
              "dryRun", "propagationPolicy", "gracePeriodSeconds", "follow")


class ApiPath(msgspec.Struct, frozen=True):
    """The parts of a Kubernetes API path; ``resource`` is empty for non-resource paths."""

    group: str = ""
    version: str = ""
    resource: str = ""
    namespace: str = ""
    name: str = ""
    subresource: str = ""
    legacy_watch: bool = False  # /api/v1/watch/... (deprecated, still served)
    path: str = ""

    @property
    def api_version(self) -> str:
        if not self.version:
            return ""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def is_resource(self) -> bool:
        return bool(self.resource)


def parse_path(path: str) -> ApiPath:
    """Split an API path; anything that is not a resource path (``/apis``, ``/version``) keeps only ``path``."""
    parts = [unquote(p) for p in path.split("?", 1)[0].strip("/").split("/") if p]
    if len(parts) >= 2 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return ApiPath(path=path)
    legacy_watch = False
    if rest and rest[0] == "watch":
        legacy_watch, rest = True, rest[1:]
    if not rest:
        return ApiPath(group=group, version=version, path=path)
    namespace = ""
    if rest[0] == "namespaces" and len(rest) >= 3 and not (len(rest) == 3 and rest[2] in ("status", "finalize")):
        namespace, rest = rest[1], rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    subresource = "/".join(rest[2:])
    return ApiPath(group=group, version=version, resource=resource, namespace=namespace, name=name,
                   subresource=subresource, legacy_watch=legacy_watch, path=path)


def parse_query(query: str) -> dict[str, str]:
    return dict(parse_qsl(query, keep_blank_values=True))


def is_watch(api: ApiPath, query: dict[str, str]) -> bool:
    return api.legacy_watch or query.get("watch", "").lower() in ("true", "1")


def verb_for(method: str, api: ApiPath, query: dict[str, str]) -> str:
    """The Kubernetes verb of an HTTP request (``get`` for anything unrecognised)."""
    method = method.upper()
    if method == "GET":
        if is_watch(api, query):
            return WATCH
        return GET if api.name or not api.is_resource else LIST
    if method == "POST":
        return CREATE
    if method == "PUT":
        return UPDATE
    if method == "PATCH":
        return PATCH
    if method == "DELETE":
        return DELETE if api.name else DELETECOLLECTION
    return GET


def kept_query(query: dict[str, str]) -> dict[str, str] | None:
    kept = {k: query[k] for k in KEPT_QUERY if k in query}
    return kept or None


# Non-resource paths kept as they are in a template (discovery and health); any other
# non-resource path is cut after its first segment, so templates stay a bounded set.
_PLAIN_PATHS = ("/api", "/apis", "/version", "/healthz", "/livez", "/readyz", "/metrics", "/openapi")


def template(api: ApiPath) -> str:
    """The path with names replaced, for logs and metrics whose label values must stay few:
    ``/api/v1/namespaces/{ns}/pods/{name}/status``."""
    if not api.version:
        path = "/" + api.path.split("?", 1)[0].strip("/")
        top = "/" + path.split("/")[1]
        if top not in _PLAIN_PATHS:
            return "/" if path == "/" else "/..."
        return path if path.count("/") <= 3 else top + "/..."
    parts = ["/api/" + api.version if not api.group else f"/apis/{api.group}/{api.version}"]
    if api.legacy_watch:
        parts.append("watch")
    if not api.resource:
        return "/".join(parts)
    if api.namespace:
        parts.append("namespaces/{ns}")
    parts.append(api.resource)
    if api.name:
        parts.append("{name}")
    if api.subresource:  # pods/proxy/ANY/PATH: the rest is the caller's
        sub = api.subresource.split("/", 1)
        parts.append(sub[0] + ("/..." if len(sub) > 1 else ""))
    return "/".join(parts)
