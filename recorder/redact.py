"""Keeping Secret values out of recordings.

Every value under a Secret's ``data`` and ``stringData`` (and its
``last-applied-configuration`` annotation, which repeats them) is replaced by
a marker ``redacted:hmac-sha256:<16 hex digits>``: an HMAC of the value under
a random key drawn for each recording and never written anywhere.  Equal
values give equal markers within a recording, so a diff still shows *that* a
value changed; a plain hash would not do, because secrets are often short or
guessable (passwords, tokens from a known format) and a hash of them can be
reversed by trying candidates, and equal values would be linkable across
recordings.  Without the key the marker reveals nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import Any

MARKER_PREFIX = "redacted:hmac-sha256:"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
_SECRET_FIELDS = ("data", "stringData")


class Redactor:
    """Replaces secret values with keyed-hash markers; one per recording."""

    def __init__(self, key: bytes | None = None):
        self._key = key if key is not None else os.urandom(32)

    def marker(self, value: Any) -> str:
        if isinstance(value, str) and value.startswith(MARKER_PREFIX):
            return value  # already redacted (e.g. a body we recorded before)
        raw = value.encode() if isinstance(value, str) else repr(value).encode()
        return MARKER_PREFIX + hmac.new(self._key, raw, hashlib.sha256).hexdigest()[:16]

    # --- bodies ------------------------------------------------------------------

    def secret_body(self, body: Any) -> Any:
        """A body sent to or received from a ``secrets`` endpoint, with every value redacted.

        Everything object-like there is a Secret, with or without ``kind``
        (list items and patches carry none): a Secret, a SecretList, a watch
        event, a Table with objects, a merge/strategic patch, a JSON patch (a
        list of operations).  Returns a new value; the input is not modified.
        """
        if isinstance(body, list):
            return [self._json_patch_op(op) for op in body]
        if not isinstance(body, dict):
            return body
        if isinstance(body.get("items"), list):
            return {**body, "items": [self._secret(i) if isinstance(i, dict) else i for i in body["items"]]}
        if "type" in body and isinstance(body.get("object"), dict):
            return {**body, "object": self._secret(body["object"])}
        if isinstance(body.get("rows"), list):
            return {**body, "rows": [{**row, "object": self._secret(row["object"])}
                                     if isinstance(row, dict) and isinstance(row.get("object"), dict) else row
                                     for row in body["rows"]]}
        return self._secret(body)

    def _secret(self, obj: dict[str, Any]) -> dict[str, Any]:
        out = dict(obj)
        for field in _SECRET_FIELDS:
            values = out.get(field)
            if isinstance(values, dict):
                out[field] = {k: (self.marker(v) if v is not None else None) for k, v in values.items()}
            elif values is not None:
                out[field] = self.marker(values)
        meta = out.get("metadata")
        if isinstance(meta, dict) and isinstance(meta.get("annotations"), dict) \
                and LAST_APPLIED in meta["annotations"]:
            annotations = dict(meta["annotations"])
            if annotations[LAST_APPLIED] is not None:
                annotations[LAST_APPLIED] = self.marker(annotations[LAST_APPLIED])
            out["metadata"] = {**meta, "annotations": annotations}
        return out

    def _json_patch_op(self, op: Any) -> Any:
        if not isinstance(op, dict) or "value" not in op:
            return op
        path = str(op.get("path", ""))
        if path in ("", "/"):
            return {**op, "value": self._secret(op["value"]) if isinstance(op["value"], dict) else op["value"]}
        top = path.split("/")[1] if path.startswith("/") else path
        if top in _SECRET_FIELDS:
            value = op["value"]
            if isinstance(value, dict):
                value = {k: self.marker(v) for k, v in value.items()}
            elif value is not None:
                value = self.marker(value)
            return {**op, "value": value}
        if top == "metadata" and LAST_APPLIED.replace("/", "~1") in path and op["value"] is not None:
            return {**op, "value": self.marker(op["value"])}
        return op


def is_secret_path(group: str, resource: str) -> bool:
    """Bodies of these endpoints hold Secret values."""
    return group == "" and resource == "secrets"
