"""The three patch formats of the Kubernetes API: JSON merge patch, JSON patch, strategic merge patch.

* merge patch: RFC 7386 (``null`` removes a key, lists are replaced whole);
* JSON patch: RFC 6902 (add, remove, replace, move, copy, test over RFC 6901 pointers);
* strategic merge patch: a merge patch in which the lists kube-apiserver merges by a key
  (``containers`` by ``name``, ``conditions`` by ``type``, ``finalizers`` as a set, ...) are
  merged item by item, with the ``$patch: delete|replace`` and ``$deleteFromPrimitiveList``
  directives.  The merge keys come from a table of the built-in types' fields, not from their
  OpenAPI schemas: a field the table does not know is replaced, like in a merge patch.  For
  custom resources kube-apiserver itself refuses strategic merge patches; here they are taken
  as merge patches, which is what clients that send them expect.
"""

from __future__ import annotations

import copy
from typing import Any

# Lists merged item by item, by this key (field name -> merge key), as the built-in types declare
# them (patchStrategy=merge, patchMergeKey=...).
MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name", "env": "name",
    "volumes": "name", "volumeMounts": "mountPath", "volumeDevices": "devicePath", "conditions": "type",
    "imagePullSecrets": "name", "ownerReferences": "uid", "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey", "ports": "containerPort", "resourceClaims": "name",
}
# Lists of scalars merged as sets (patchStrategy=merge on a primitive list).
SET_LISTS = frozenset({"finalizers"})


class PatchError(ValueError):
    """A patch that cannot be applied (answered 422 Invalid)."""


# --- merge patch ------------------------------------------------------------------------------

def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch; the result shares nothing with ``target`` or ``patch``."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def merge_diff(old: Any, new: Any) -> Any:
    """The merge patch that turns ``old`` into ``new`` (lists are replaced whole)."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return copy.deepcopy(new)
    out: dict[str, Any] = {}
    for key in old.keys() - new.keys():
        out[key] = None
    for key, value in new.items():
        if key not in old:
            out[key] = copy.deepcopy(value)
        elif old[key] != value:
            out[key] = merge_diff(old[key], value) if isinstance(value, dict) and isinstance(old[key], dict) \
                else copy.deepcopy(value)
    return out


# --- strategic merge patch -------------------------------------------------------------------

def _list_key(field: str, items: list[Any]) -> str | None:
    key = MERGE_KEYS.get(field)
    if key == "containerPort" and items and all(isinstance(i, dict) and "containerPort" not in i
                                                 and "port" in i for i in items):
        return "port"  # a Service's ports merge by port
    return key


def strategic_merge(target: Any, patch: Any) -> Any:
    """A strategic merge patch (see the module docstring); the result shares nothing with its inputs."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key == "$patch" or key == "$retainKeys" or key.startswith("$setElementOrder/"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(result.get(field), list) and isinstance(value, list):
                result[field] = [v for v in result[field] if v not in value]
            continue
        if value is None or (isinstance(value, dict) and value.get("$patch") == "delete"):
            result.pop(key, None)
        elif isinstance(value, list):
            result[key] = _merge_list(key, result.get(key), value)
        else:
            result[key] = strategic_merge(result.get(key), value)
    return result


def _merge_list(field: str, current: Any, patch: list[Any]) -> list[Any]:
    if not isinstance(current, list):
        current = []
    if field in SET_LISTS and all(not isinstance(v, (dict, list)) for v in patch):
        return [*copy.deepcopy(current), *(v for v in patch if v not in current)]
    key = _list_key(field, patch) or _list_key(field, current)
    if key is None or not all(isinstance(i, dict) for i in patch):
        return [strategic_merge(None, i) if isinstance(i, dict) else copy.deepcopy(i) for i in patch
                if not (isinstance(i, dict) and i.get("$patch") == "delete")]
    if any(isinstance(i, dict) and i.get("$patch") == "replace" for i in patch):
        return [{k: copy.deepcopy(v) for k, v in i.items() if k != "$patch"} for i in patch
                if not (i.get("$patch") == "replace" and len(i) == 1)]
    out = copy.deepcopy(current)
    for item in patch:
        match = next((n for n, old in enumerate(out) if isinstance(old, dict) and key in item
                      and old.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if match is not None:
                del out[match]
        elif match is not None:
            out[match] = strategic_merge(out[match], item)
        else:
            out.append(strategic_merge(None, item))
    return out


# --- JSON patch ---------------------------------------------------------------------------------

def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str) or (path and not path.startswith("/")):
        raise PatchError(f"invalid JSON pointer {path!r}")
    if path == "":
        return []
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _index(container: list[Any], token: str, *, adding: bool) -> int:
    if adding and token == "-":
        return len(container)
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise PatchError(f"invalid array index {token!r}")
    i = int(token)
    if i > len(container) or (i == len(container) and not adding):
        raise PatchError(f"array index {i} out of range")
    return i


def _parent(doc: Any, parts: list[str]) -> Any:
    node = doc
    for token in parts[:-1]:
        if isinstance(node, dict):
            if token not in node:
                raise PatchError(f"path /{'/'.join(parts)}: {token!r} does not exist")
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, adding=False)]
        else:
            raise PatchError(f"path /{'/'.join(parts)}: {token!r} is inside a scalar")
    return node


def _get(doc: Any, parts: list[str]) -> Any:
    if not parts:
        return doc
    parent = _parent(doc, parts)
    token = parts[-1]
    if isinstance(parent, dict):
        if token not in parent:
            raise PatchError(f"path /{'/'.join(parts)} does not exist")
        return parent[token]
    if isinstance(parent, list):
        return parent[_index(parent, token, adding=False)]
    raise PatchError(f"path /{'/'.join(parts)} does not exist")


def _add(doc: Any, parts: list[str], value: Any) -> Any:
    if not parts:
        return value
    parent = _parent(doc, parts)
    token = parts[-1]
    if isinstance(parent, dict):
        parent[token] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, token, adding=True), value)
    else:
        raise PatchError(f"path /{'/'.join(parts)}: the parent is a scalar")
    return doc


def _remove(doc: Any, parts: list[str]) -> Any:
    if not parts:
        raise PatchError("cannot remove the whole document")
    parent = _parent(doc, parts)
    token = parts[-1]
    if isinstance(parent, dict):
        if token not in parent:
            raise PatchError(f"path /{'/'.join(parts)} does not exist")
        return parent.pop(token)
    if isinstance(parent, list):
        return parent.pop(_index(parent, token, adding=False))
    raise PatchError(f"path /{'/'.join(parts)} does not exist")


def json_patch(doc: Any, operations: Any) -> Any:
    """RFC 6902: apply every operation in order, or none (raises :class:`PatchError`)."""
    if not isinstance(operations, list):
        raise PatchError("a JSON patch must be a list of operations")
    doc = copy.deepcopy(doc)
    for op in operations:
        if not isinstance(op, dict) or "op" not in op:
            raise PatchError(f"not a JSON patch operation: {op!r}")
        name, parts = op["op"], _pointer(op.get("path"))
        if name in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f"{name} needs a value")
        if name == "add":
            doc = _add(doc, parts, copy.deepcopy(op["value"]))
        elif name == "remove":
            _remove(doc, parts)
        elif name == "replace":
            _get(doc, parts)
            if not parts:
                doc = copy.deepcopy(op["value"])
            else:
                _remove(doc, parts)
                doc = _add(doc, parts, copy.deepcopy(op["value"]))
        elif name in ("move", "copy"):
            source = _pointer(op.get("from"))
            value = _get(doc, source)
            if name == "move":
                if parts[:len(source)] == source and parts != source:
                    raise PatchError("cannot move a value into itself")
                _remove(doc, source)
            doc = _add(doc, parts, copy.deepcopy(value))
        elif name == "test":
            if _get(doc, parts) != op["value"]:
                raise PatchError(f"test failed at {op.get('path')}")
        else:
            raise PatchError(f"unknown JSON patch operation {name!r}")
    return doc
