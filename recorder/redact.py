"""Keeping Secret values out of recordings: the one redaction every recording path applies.

Every value under a Secret's ``data`` and ``stringData`` (and its
``last-applied-configuration`` annotation, which repeats them) is replaced by
a marker ``redacted:hmac-sha256:<16 hex digits>``: an HMAC of the value under
a random key drawn for each recording and never written anywhere.  Equal
values give equal markers within a recording, so a diff still shows *that* a
value changed; a plain hash would not do, because secrets are often short or
guessable (passwords, tokens from a known format) and a hash of them can be
reversed by trying candidates, and equal values would be linkable across
recordings.  Without the key the marker reveals nothing.

The proxy, the client hook and every importer call :meth:`Redactor.json` on the
bodies they store.  It does not trust a body's shape:

* a body of the ``secrets`` endpoint is walked whole: every ``data`` and
  ``stringData`` at any depth, every last-applied annotation, wherever it sits
  (an object, a list, a Table's ``rows[].object``, a watch event, or a body that
  carries several of those at once, such as a Secret with an extra ``"items": []``);
* a JSON patch (a list of operations) keeps an operation's value only when its
  path is known to hold no secret (``/metadata/...``, ``/type``, ``/immutable``);
  a path without a leading slash is read like one with it, and a value whose path
  cannot be read is replaced by a marker as a whole;
* any other body is searched for embedded ``kind: Secret`` (and ``SecretList``)
  objects, which are redacted the same way;
* a body of the ``secrets`` endpoint that is not valid JSON is stored as an
  opaque marker, never as text.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import Any

import msgspec

MARKER_PREFIX = "redacted:hmac-sha256:"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
_SECRET_FIELDS = frozenset({"data", "stringData"})
# JSON patch paths under these top-level fields of a Secret hold no secret value.
_SAFE_PATCH_FIELDS = frozenset({"metadata", "type", "immutable", "apiVersion", "kind"})
_SECRET_KINDS = frozenset({"Secret", "SecretList"})

_decode = msgspec.json.decode
_encode = msgspec.json.Encoder().encode


class Redactor:
    """Replaces secret values with keyed-hash markers; one per recording.

    ``count`` is the number of values replaced so far (the session attribute
    ``redacted_values``).
    """

    def __init__(self, key: bytes | None = None):
        self._key = key if key is not None else os.urandom(32)
        self.count = 0

    def marker(self, value: Any) -> str:
        if isinstance(value, str) and value.startswith(MARKER_PREFIX):
            return value  # already redacted (e.g. a body we recorded before)
        if isinstance(value, str):
            raw = value.encode("utf-8", "surrogatepass")
        else:
            try:
                raw = _encode(value)
            except (TypeError, ValueError, OverflowError):
                raw = repr(value).encode("utf-8", "surrogatepass")
        self.count += 1
        return MARKER_PREFIX + hmac.new(self._key, raw, hashlib.sha256).hexdigest()[:16]

    # --- bytes in, bytes out: what every recording path calls --------------------

    def json(self, data: bytes, *, secret: bool) -> bytes:
        """JSON bytes of a body, redacted: ``data`` itself when nothing in it is a secret.

        ``secret``: the body belongs to the ``secrets`` endpoint.  Raises ``ValueError``
        (``msgspec.DecodeError``, ``UnicodeDecodeError``) or ``RecursionError`` for a
        body that is not JSON, unless it is a secrets body, which becomes an opaque marker.
        """
        if not secret and not might_carry_secret(data):
            return data
        try:
            value = _decode(data)
        except (ValueError, RecursionError):
            if secret:
                self.count += 1
                return _encode({"$opaque": "unreadable secret body", "bytes": len(data)})
            raise
        out = self.value(value, secret=secret)
        return data if out is value else _encode(out)

    def value(self, body: Any, *, secret: bool) -> Any:
        """A decoded body, redacted; the same object when nothing in it needed it."""
        try:
            if secret:
                return self.secret_body(body)
            return self._embedded(body)
        except RecursionError:  # nested deeper than Python recurses: keep nothing of it
            self.count += 1
            return {"$opaque": "secret body nested too deeply"} if secret else {"$opaque": "body nested too deeply"}

    # --- bodies of the secrets endpoint -----------------------------------------

    def secret_body(self, body: Any) -> Any:
        """A body sent to or received from a ``secrets`` endpoint, with every value redacted.

        A list is a JSON patch; anything else is walked whole (see the module doc).
        Returns a new value; the input is not modified.
        """
        if isinstance(body, list):
            return [self._patch_op(op) for op in body]
        if isinstance(body, str):
            return self.marker(body)  # a bare string (a YAML body of one scalar): nothing to keep
        return self._walk(body)

    def _walk(self, value: Any) -> Any:
        """Every ``data``/``stringData`` and last-applied annotation at any depth, redacted."""
        if isinstance(value, dict):
            if "op" in value and "value" in value:
                return self._patch_op(value)  # a JSON patch operation, wherever it sits
            out = {}
            for k, v in value.items():
                if k in _SECRET_FIELDS:
                    out[k] = self._values(v)
                elif k == LAST_APPLIED:
                    out[k] = self.marker(v) if v is not None else None
                else:
                    out[k] = self._walk(v)
            return out
        if isinstance(value, list):
            return [self._walk(v) for v in value]
        return value

    def _values(self, values: Any) -> Any:
        if values is None:
            return None
        if isinstance(values, dict):
            return {k: (self.marker(v) if v is not None else None) for k, v in values.items()}
        return self.marker(values)

    def _patch_op(self, op: Any) -> Any:
        if not isinstance(op, dict):
            return self._walk(op) if isinstance(op, list) else self.marker(op) if op is not None else None
        if "value" not in op:
            return self._walk(op)
        op = {k: (self._walk(v) if k != "value" else v) for k, v in op.items()}
        value = op["value"]
        path = op.get("path")
        tokens = _pointer(path) if isinstance(path, str) else None
        if tokens is None:  # no path, or one that is not text: keep nothing of the value
            return {**op, "value": self.marker(value) if value is not None else None}
        if not tokens:  # the whole object
            return {**op, "value": self._walk(value)}
        top = tokens[0]
        if top in _SECRET_FIELDS:
            return {**op, "value": self._values(value) if len(tokens) == 1 else self.marker(value)}
        if top not in _SAFE_PATCH_FIELDS or "last-applied-configuration" in path:
            return {**op, "value": self.marker(value) if value is not None else None}
        return {**op, "value": self._walk(value)}

    # --- Secrets carried by other bodies ------------------------------------------

    def _embedded(self, value: Any) -> Any:
        """Objects of kind Secret (or SecretList) anywhere in a body, redacted."""
        if isinstance(value, dict):
            if value.get("kind") in _SECRET_KINDS:
                return self._walk(value)
            changed = False
            out = {}
            for k, v in value.items():
                new = self._embedded(v) if isinstance(v, (dict, list)) else v
                changed = changed or new is not v
                out[k] = new
            return out if changed else value
        if isinstance(value, list):
            items = [self._embedded(v) if isinstance(v, (dict, list)) else v for v in value]
            return items if any(a is not b for a, b in zip(items, value)) else value
        return value


def _pointer(path: str) -> list[str] | None:
    """A JSON patch path as tokens (RFC 6901, ``~1`` is ``/``); a missing leading slash is forgiven."""
    text = path[1:] if path.startswith("/") else path
    if not text:
        return []
    return [t.replace("~1", "/").replace("~0", "~") for t in text.split("/")]


def might_carry_secret(data: bytes) -> bool:
    """Could this JSON name ``kind: Secret``?  (An escape could spell it: then look too.)"""
    return b"Secret" in data or b"\\u" in data


def is_secret_path(group: str, resource: str) -> bool:
    """Bodies of these endpoints hold Secret values."""
    return group == "" and resource == "secrets"
