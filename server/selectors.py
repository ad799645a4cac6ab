"""Label and field selectors, parsed as kube-apiserver parses them and compiled to predicates."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from replay_tui.server.errors import bad_request

_REQ = re.compile(r"^\s*(!?)\s*([A-Za-z0-9_./-]+)\s*(?:(==|=|!=)\s*([A-Za-z0-9_.-]*)"
                  r"|\s+(in|notin)\s*\(([^)]*)\))?\s*$")

# Field selectors kube-apiserver supports beyond metadata.name and metadata.namespace (per kind).
FIELD_SELECTORS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
            "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName"),
    "Event": ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
              "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
              "reason", "reportingComponent", "source", "type"),
    "Secret": ("type",),
    "Namespace": ("status.phase",),
    "Node": ("spec.unschedulable",),
    "ReplicaSet": ("status.replicas",),
    "ReplicationController": ("status.replicas",),
    "Job": ("status.successful",),
}

Predicate = Callable[[dict[str, Any]], bool]


def split_selector(text: str) -> list[str]:
    """Requirements separated by commas outside parentheses (``a in (x,y),b``)."""
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
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
    return [p for p in parts if p.strip()]


def _label_test(neg: str, key: str, op: str | None, value: str | None, setop: str | None,
                values: str | None) -> Callable[[dict[str, str]], bool]:
    if op in ("=", "=="):
        return lambda lb: lb.get(key) == value
    if op == "!=":
        return lambda lb: lb.get(key) != value
    if setop:
        choices = {v.strip() for v in (values or "").split(",") if v.strip()}
        if setop == "in":
            return lambda lb: lb.get(key) in choices
        return lambda lb: lb.get(key) not in choices
    if neg:
        return lambda lb: key not in lb
    return lambda lb: key in lb


def label_matcher(selector: str) -> Callable[[dict[str, str]], bool]:
    """A predicate over labels for a label selector (=, ==, !=, in, notin, exists, !exists)."""
    tests: list[Callable[[dict[str, str]], bool]] = []
    for part in split_selector(selector or ""):
        m = _REQ.match(part)
        if not m:
            raise bad_request(f"unable to parse requirement: {part!r}")
        tests.append(_label_test(*m.groups()))
    if not tests:
        return lambda labels: True
    return lambda labels: all(t(labels) for t in tests)


def _field_value(obj: dict[str, Any], path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _field_test(path: str, op: str, value: str) -> Predicate:
    if op == "!=":
        return lambda obj: _field_value(obj, path) != value
    return lambda obj: _field_value(obj, path) == value


def field_matcher(selector: str, kind: str = "") -> Predicate:
    """A predicate over objects for a field selector: metadata.name and metadata.namespace for every
    kind, and the fields kube-apiserver indexes for some (``status.phase`` of a Pod, ...)."""
    tests: list[Predicate] = []
    allowed = ("metadata.name", "metadata.namespace", *FIELD_SELECTORS.get(kind, ()))
    for part in split_selector(selector or ""):
        m = re.match(r"^\s*([A-Za-z.]+)\s*(==|=|!=)\s*(.*?)\s*$", part)
        if not m or m.group(1) not in allowed:
            field = m.group(1) if m else part.strip()
            raise bad_request(f'"{field}" is not a known field selector: only '
                              + ", ".join(f'"{a}"' for a in allowed))
        tests.append(_field_test(*m.groups()))
    if not tests:
        return lambda obj: True
    return lambda obj: all(t(obj) for t in tests)
