"""Bodies that carry objects wrapped or in part: Tables and PartialObjectMetadata.

``kubectl get`` (and ``get -w``) asks for ``as=Table``: the answer, and each
watch event, is a ``meta.k8s.io`` Table whose ``rows[].object`` holds each
object's metadata as a ``PartialObjectMetadata`` (or the whole object with
``includeObject=Object``).  Metadata-only clients (controller-runtime's
``metav1.PartialObjectMetadata`` watches) ask for ``as=PartialObjectMetadata``
and get that kind, or a ``PartialObjectMetadataList``, directly.

The objects inside identify the op and feed the state like any body.  A whole
object is a version as it is.  Partial metadata carries only what it carries:
it updates ``metadata`` key by key on the object as last seen (kind and
apiVersion from the request), and never erases the fields it lacks (spec,
status, or a metadata key it does not send).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import msgspec

from replay_tui.engine.format import ObjectHead, decode_head

TABLE, PARTIAL, PARTIAL_LIST = "Table", "PartialObjectMetadata", "PartialObjectMetadataList"
WRAPPER_KINDS = frozenset({TABLE, PARTIAL, PARTIAL_LIST})


class _Row(msgspec.Struct):
    object: msgspec.Raw = msgspec.Raw(b"null")  # (msgspec.Raw cannot be in a union with None)


class _Wrapper(msgspec.Struct):
    kind: str = ""
    rows: list[_Row] | None = None  # Table
    items: list[msgspec.Raw] | None = None  # PartialObjectMetadataList


_decode_wrapper = msgspec.json.Decoder(_Wrapper).decode


class Carried(NamedTuple):
    """One object a wrapper carries: its JSON as sent, its head, and whether it is metadata only."""

    raw: bytes
    head: ObjectHead
    partial: bool


def carried(data: bytes, kind: str) -> list[Carried]:
    """The named objects inside a body of wrapper ``kind`` (a Table row without an object is skipped)."""
    if kind == PARTIAL:
        raws: list[bytes] = [data]
    else:
        try:
            wrapper = _decode_wrapper(data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return []
        if kind == TABLE:
            raws = [bytes(r.object) for r in wrapper.rows or () if bytes(r.object) != b"null"]
        else:
            raws = [bytes(r) for r in wrapper.items or ()]
    out = []
    for raw in raws:
        try:
            head = decode_head(raw)
        except (msgspec.DecodeError, msgspec.ValidationError):
            continue
        if head.metadata is None or not head.metadata.name:
            continue
        out.append(Carried(raw, head, head.kind in ("", PARTIAL)))
    return out


def object_head(data: bytes) -> ObjectHead | None:
    """The head of the one object a body is about: the body's own, or, for a Table or a
    PartialObjectMetadata, the carried object's with its kind left empty (the request's resource
    names it).  None for a body that is not one object (a list, a Status, not JSON)."""
    try:
        head = decode_head(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    if head.kind not in WRAPPER_KINDS:
        return head
    inside = carried(data, head.kind) if head.kind != PARTIAL_LIST else []
    if len(inside) != 1:
        return None
    found = inside[0].head
    return ObjectHead(kind="" if inside[0].partial else found.kind, apiVersion="" if inside[0].partial
                      else found.apiVersion, metadata=found.metadata)


def merge_partial(previous: Any, partial: bytes, kind: str, api_version: str) -> dict[str, Any] | None:
    """The object ``previous`` (decoded, or None when unknown) updated by partial metadata:
    each metadata key it carries replaces the previous one; everything else is kept."""
    try:
        meta = msgspec.json.decode(partial).get("metadata")
    except (msgspec.DecodeError, AttributeError):
        return None
    if not isinstance(meta, dict):
        return None
    if isinstance(previous, dict):
        merged = dict(previous)
        merged["metadata"] = {**(previous.get("metadata") or {}), **meta}
        return merged
    return {"kind": kind, "apiVersion": api_version, "metadata": meta}
