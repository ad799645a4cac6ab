"""What every importer shares: input checks, streaming, progress, malformed-line
accounting, Kubernetes type tables, error reasons, the atomic target session.

Importers read their input once, line by line (or row by row), and write one
atomic session per imported trace: if anything fails, the session is rolled
back, and a recording file the import itself created is removed again, so a
failed import leaves the database exactly as it was.
"""

from __future__ import annotations

import calendar
import contextlib
import gzip
import os
import re
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from typing import IO, Any, TextIO, TypeVar

import msgspec

from replay_tui.engine.format import EVENT_VERBS, READ_VERBS, WRITE_VERBS, Operation
from replay_tui.engine.schema import RecordingError
from replay_tui.engine.writer import RecordingWriter, SessionWriter
from replay_tui.recorder.redact import Redactor, might_carry_secret

MAX_MALFORMED_KEPT = 20  # line numbers with reasons kept in the session attributes
GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"
INT64_MAX = 2**63 - 1


class ImportFormatError(RecordingError):
    """The input is not what the importer reads (or holds nothing to import)."""


# --- bad bytes ----------------------------------------------------------------------------

class BadInput(ValueError):
    """A record whose content the recording cannot hold (a malformed line, with this reason)."""


#: What reading hostile input raises: msgspec's DecodeError/ValidationError, UnicodeDecodeError
#: and BadInput are ValueErrors; a value nested deeper than Python recurses is a RecursionError.
INPUT_ERRORS = (ValueError, RecursionError)


def describe_input_error(exc: BaseException) -> str:
    """One line saying what was wrong with a record."""
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    if isinstance(exc, UnicodeDecodeError):  # its offset is into one string, not the line: left out
        return "invalid UTF-8"
    return " ".join(str(exc).split())[:200] or type(exc).__name__


def check_op(op: Operation) -> Operation:
    """Raise BadInput for a number SQLite cannot store (a 64-bit integer), before the writer sees it."""
    for name in ("ts_ns", "duration_ns", "status", "generation"):
        value = getattr(op, name)
        if value is not None and not -INT64_MAX - 1 <= value <= INT64_MAX:
            raise BadInput(f"{name} {value} is out of range")
    if not 0 <= op.status <= 999:
        raise BadInput(f"status {op.status} is no HTTP status")
    return op


class Bodies:
    """Every body an importer stores passes here: checked to be JSON a reader can decode
    (valid UTF-8, not nested too deeply), then redacted like the proxy's (recorder.redact).

    ``redacted`` counts the Secret values replaced (the session attribute ``redacted_values``).
    """

    def __init__(self, redact: bool = True):
        self.redactor = Redactor() if redact else None

    @property
    def redacted(self) -> int:
        return self.redactor.count if self.redactor is not None else 0

    def attributes(self) -> dict[str, Any]:
        return {"redacted": self.redactor is not None, "redacted_values": self.redacted}

    def __call__(self, data: bytes | None, *, secret: bool, what: str = "body") -> bytes | None:
        """The JSON to store, or raise BadInput."""
        if data is None:
            return None
        try:
            value = _decode_any(data)
        except msgspec.DecodeError as exc:
            raise BadInput(f"{what} is not valid JSON ({describe_input_error(exc)})") from None
        except INPUT_ERRORS as exc:
            raise BadInput(f"{what}: {describe_input_error(exc)}") from None
        if self.redactor is None or (not secret and not might_carry_secret(data)):
            return data  # no Secret in it: no walk (the common case)
        out = self.redactor.value(value, secret=secret)
        return data if out is value else _encode_any(out)


_decode_any = msgspec.json.decode
_encode_any = msgspec.json.Encoder().encode


# --- input ------------------------------------------------------------------------

def check_input(path: str, expected: str) -> int:
    """Fail in one line on a path that cannot be read; returns its size in bytes.

    An empty file is an error (nothing to import), not an empty session.
    """
    if not os.path.exists(path):
        raise ImportFormatError(f"{path}: no such file")
    if os.path.isdir(path):
        raise ImportFormatError(f"{path}: is a directory, expected {expected}")
    try:
        with open(path, "rb") as fh:
            head = fh.read(1)
    except OSError as exc:
        raise ImportFormatError(f"{path}: cannot read ({exc.strerror})") from None
    if not head:
        raise ImportFormatError(f"{path}: empty file, nothing to import (expected {expected})")
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


class LineReader:
    """The lines of a text file as bytes, numbered from 1, never the whole file at once.

    Gzip-compressed input (rotated logs) is read transparently; ``position``
    is the number of bytes of the file on disk consumed so far, for progress.
    """

    def __init__(self, path: str):
        self.path = path
        self.total = os.path.getsize(path) if os.path.isfile(path) else 0
        self._raw: IO[bytes] = open(path, "rb")  # noqa: SIM115 - closed by close()
        self._stream: IO[bytes] = self._raw
        if self._raw.read(2) == GZIP_MAGIC:
            self._raw.seek(0)
            self._stream = gzip.GzipFile(fileobj=self._raw, mode="rb")  # type: ignore[assignment]
        else:
            self._raw.seek(0)
        self._plain_pos = 0

    @property
    def position(self) -> int:
        if self._stream is self._raw:
            return self._plain_pos
        try:
            return self._raw.tell()
        except (OSError, ValueError):
            return 0

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        lineno = 0
        try:
            for line in self._stream:
                lineno += 1
                self._plain_pos += len(line)
                if lineno == 1 and line.startswith(UTF8_BOM):
                    line = line[len(UTF8_BOM):]  # editors on Windows write one; it is no data
                yield lineno, line
        except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
            what = "corrupt compressed data" if isinstance(exc, (zlib.error, EOFError, gzip.BadGzipFile)) \
                else "read error"
            raise ImportFormatError(f"{self.path}: {what} after line {lineno} "
                                    f"({describe_input_error(exc)})") from None

    def close(self) -> None:
        self._stream.close()
        self._raw.close()

    def __enter__(self) -> LineReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- JSON values that span lines, or share one ----------------------------------------

_JSON_TOKENS = re.compile(rb'[{}\[\]"\\]')
MAX_VALUE_BYTES = 256 * 1024 * 1024  # one pretty-printed value; beyond, it is dropped as malformed
NOT_JSON = "invalid JSON (text that is no JSON object or array)"
TRUNCATED = "truncated JSON value"
TOO_LARGE = f"JSON value larger than {MAX_VALUE_BYTES // 2**20} MiB"


class JsonValues:
    """Top-level JSON values from a text read line by line: one per line (JSON lines), one over
    many lines (pretty-printed), or several on one line (concatenated), in any mix.

    ``feed`` returns ``(line, value bytes)`` for each value it completes and ``(line, reason)``
    (a ``str``) for text that is no JSON value (the caller counts it as malformed).  A value still open
    when a line starting with ``{"`` arrives was cut short: it is reported, and the new line
    starts afresh, so one truncated JSON line never swallows the lines after it.
    """

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._size = 0
        self._start = 0  # line where the open value began
        self._depth = 0
        self._in_string = False
        self._skipping = False  # inside a value too large to keep

    @property
    def open(self) -> bool:
        return self._depth > 0

    def feed(self, lineno: int, line: bytes) -> list[tuple[int, bytes | str]]:
        """What this line completes.  A line that starts with ``{`` and ends with ``}`` is passed
        on whole, unscanned (JSON lines, the common case): should it not decode, the caller asks
        :meth:`split` whether it holds several values (``{...}{...}``)."""
        out: list[tuple[int, bytes | str]] = []
        text = line.strip()
        if not text:
            return out
        if self._depth and line.startswith(b'{"'):
            out.append((self._start, TRUNCATED + " (the next line starts a new one)"))
            self._reset()
        if not self._depth and text[:1] == b"{" and text[-1:] == b"}":
            out.append((lineno, text))
            return out
        self._scan(lineno, text, out)
        return out

    @staticmethod
    def split(lineno: int, text: bytes) -> list[tuple[int, bytes | str]]:
        """The values of one whole line, scanned (for a line :meth:`feed` passed on whole that did
        not decode as one value); ``[(lineno, text)]`` when it holds just one."""
        scanner = JsonValues()
        out: list[tuple[int, bytes | str]] = []
        scanner._scan(lineno, text, out)
        out += scanner.finish()
        return out

    def _scan(self, lineno: int, text: bytes, out: list[tuple[int, bytes | str]]) -> None:
        begin = 0 if self._depth else -1  # where the value being read starts in this line
        skip = -1
        pos = 0
        for m in _JSON_TOKENS.finditer(text):
            i = m.start()
            if i < skip:
                continue
            c = text[i]
            if self._in_string:
                if c == 0x5C:  # backslash: the next character is escaped
                    skip = i + 2
                elif c == 0x22:
                    self._in_string = False
                continue
            if not self._depth:
                if text[pos:i].strip():
                    out.append((lineno, NOT_JSON))  # text between values
                if c not in (0x7B, 0x5B):  # a value must open with { or [
                    out.append((lineno, NOT_JSON))
                    pos = i + 1
                    continue
                begin, self._start = i, lineno
            if c == 0x22:
                self._in_string = True
            elif c in (0x7B, 0x5B):
                self._depth += 1
            else:
                self._depth -= 1
                if not self._depth:
                    value = b"".join((*self._parts, text[begin:i + 1]))
                    out.append((self._start, TOO_LARGE if self._skipping else value))
                    self._reset()
                    pos, begin = i + 1, -1
        if self._depth:
            if self._in_string:  # JSON strings never span lines
                out.append((self._start, TRUNCATED + " (a string runs past the end of a line)"))
                self._reset()
                return
            part = text[max(begin, 0):] + b"\n"
            self._size += len(part)
            if self._size > MAX_VALUE_BYTES:
                self._skipping = True
                self._parts.clear()
            elif not self._skipping:
                self._parts.append(part)
        elif text[pos:].strip():
            out.append((lineno, NOT_JSON))

    def finish(self) -> list[tuple[int, bytes | str]]:
        """A value still open at the end of the input was cut short."""
        if self._depth:
            start = self._start
            self._reset()
            return [(start, TRUNCATED + " (at the end of the file)")]
        return []

    def _reset(self) -> None:
        self._parts.clear()
        self._size = 0
        self._depth = 0
        self._in_string = False
        self._skipping = False


# --- malformed lines and progress ----------------------------------------------------

class Malformed:
    """Counts bad lines; keeps the first few with their line numbers and reasons."""

    def __init__(self, keep: int = MAX_MALFORMED_KEPT):
        self.keep = keep
        self.count = 0
        self.lines: list[dict[str, Any]] = []

    def add(self, line: int, reason: str) -> None:
        self.count += 1
        if len(self.lines) < self.keep:
            self.lines.append({"line": line, "reason": reason[:300]})

    def describe_first(self) -> str:
        if not self.lines:
            return ""
        first = self.lines[0]
        return f"line {first['line']}: {first['reason']}"


def fmt_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


class Progress:
    """One updating line on a terminal (stderr), at most ten times a second; silent otherwise."""

    INTERVAL = 0.1

    def __init__(self, label: str, total: int, *, unit: str = "bytes",
                 stream: TextIO | None = None, enabled: bool | None = None):
        self.label = label
        self.total = total
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            try:
                enabled = bool(self.stream.isatty())
            except (AttributeError, ValueError):
                enabled = False
        self.enabled = enabled
        self._last = 0.0
        self._width = 0

    def update(self, done: int, ops: int | None, *, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < self.INTERVAL:
            return
        self._last = now
        if self.unit == "bytes":
            amount = f"{fmt_bytes(done)} / {fmt_bytes(self.total)}" if self.total else fmt_bytes(done)
        else:
            amount = f"{done} / {self.total} {self.unit}" if self.total else f"{done} {self.unit}"
        pct = f" ({100 * done / self.total:.0f}%)" if self.total else ""
        text = f"{self.label}: {amount}{pct}" + ("" if ops is None else f", {ops} ops")
        pad = " " * max(0, self._width - len(text))
        self._width = len(text)
        self.stream.write("\r" + text + pad)
        self.stream.flush()

    def done(self) -> None:
        """Clear the line, so the summary that follows starts clean."""
        if self.enabled and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0


# --- Kubernetes types ---------------------------------------------------------------

#: Built-in kinds: (kind, apiVersion, plural resource).
CORE_KINDS: tuple[tuple[str, str, str], ...] = (
    ("Pod", "v1", "pods"), ("Service", "v1", "services"), ("ConfigMap", "v1", "configmaps"),
    ("Secret", "v1", "secrets"), ("ServiceAccount", "v1", "serviceaccounts"),
    ("Endpoints", "v1", "endpoints"), ("Event", "v1", "events"), ("Namespace", "v1", "namespaces"),
    ("Node", "v1", "nodes"), ("PersistentVolume", "v1", "persistentvolumes"),
    ("PersistentVolumeClaim", "v1", "persistentvolumeclaims"),
    ("ReplicationController", "v1", "replicationcontrollers"), ("LimitRange", "v1", "limitranges"),
    ("ResourceQuota", "v1", "resourcequotas"), ("PodTemplate", "v1", "podtemplates"),
    ("ComponentStatus", "v1", "componentstatuses"), ("Binding", "v1", "bindings"),
    ("Deployment", "apps/v1", "deployments"), ("StatefulSet", "apps/v1", "statefulsets"),
    ("DaemonSet", "apps/v1", "daemonsets"), ("ReplicaSet", "apps/v1", "replicasets"),
    ("ControllerRevision", "apps/v1", "controllerrevisions"),
    ("Job", "batch/v1", "jobs"), ("CronJob", "batch/v1", "cronjobs"),
    ("PodDisruptionBudget", "policy/v1", "poddisruptionbudgets"),
    ("Role", "rbac.authorization.k8s.io/v1", "roles"),
    ("RoleBinding", "rbac.authorization.k8s.io/v1", "rolebindings"),
    ("ClusterRole", "rbac.authorization.k8s.io/v1", "clusterroles"),
    ("ClusterRoleBinding", "rbac.authorization.k8s.io/v1", "clusterrolebindings"),
    ("Ingress", "networking.k8s.io/v1", "ingresses"),
    ("IngressClass", "networking.k8s.io/v1", "ingressclasses"),
    ("NetworkPolicy", "networking.k8s.io/v1", "networkpolicies"),
    ("Lease", "coordination.k8s.io/v1", "leases"),
    ("StorageClass", "storage.k8s.io/v1", "storageclasses"),
    ("VolumeAttachment", "storage.k8s.io/v1", "volumeattachments"),
    ("CSIDriver", "storage.k8s.io/v1", "csidrivers"), ("CSINode", "storage.k8s.io/v1", "csinodes"),
    ("CustomResourceDefinition", "apiextensions.k8s.io/v1", "customresourcedefinitions"),
    ("HorizontalPodAutoscaler", "autoscaling/v2", "horizontalpodautoscalers"),
    ("EndpointSlice", "discovery.k8s.io/v1", "endpointslices"),
    ("PriorityClass", "scheduling.k8s.io/v1", "priorityclasses"),
    ("RuntimeClass", "node.k8s.io/v1", "runtimeclasses"),
    ("MutatingWebhookConfiguration", "admissionregistration.k8s.io/v1",
     "mutatingwebhookconfigurations"),
    ("ValidatingWebhookConfiguration", "admissionregistration.k8s.io/v1",
     "validatingwebhookconfigurations"),
    ("CertificateSigningRequest", "certificates.k8s.io/v1", "certificatesigningrequests"),
    ("APIService", "apiregistration.k8s.io/v1", "apiservices"),
    ("TokenReview", "authentication.k8s.io/v1", "tokenreviews"),
    ("SubjectAccessReview", "authorization.k8s.io/v1", "subjectaccessreviews"),
    ("SelfSubjectAccessReview", "authorization.k8s.io/v1", "selfsubjectaccessreviews"),
    ("LocalSubjectAccessReview", "authorization.k8s.io/v1", "localsubjectaccessreviews"),
    ("SelfSubjectRulesReview", "authorization.k8s.io/v1", "selfsubjectrulesreviews"),
    ("FlowSchema", "flowcontrol.apiserver.k8s.io/v1", "flowschemas"),
    ("PriorityLevelConfiguration", "flowcontrol.apiserver.k8s.io/v1", "prioritylevelconfigurations"),
)
CORE_BY_LOWER_KIND = {k.lower(): (k, av, plural) for k, av, plural in CORE_KINDS}
CORE_BY_KIND = {k: (k, av, plural) for k, av, plural in CORE_KINDS}
CORE_BY_PLURAL = {plural: (k, av, plural) for k, av, plural in CORE_KINDS}

#: Kinds a body may carry that are not the object the request is about.
NOT_OBJECT_KINDS = frozenset({"Status", "DeleteOptions", "WatchEvent", "Scale", "Eviction",
                              "PatchOptions", "CreateOptions", "UpdateOptions", "ListOptions",
                              "APIResourceList", "APIGroupList", "APIVersions", "APIGroup"})


T = TypeVar("T")


def first_pass(path: str, size: int, prescan: Callable[[str, Progress], tuple[T, int]], empty: Callable[[], T],
               not_format: str, progress: bool | None) -> tuple[T, Progress]:
    """Run an importer's first pass over a regular file (what it learns, and how many lines looked
    like its format: none is a format error); a pipe cannot be read twice, so it gets ``empty()``.
    Returns what was learnt and the progress bar, relabelled for the import pass."""
    name = os.path.basename(path)
    bar = Progress(f"scanning {name}", size, enabled=progress)
    if os.path.isfile(path):
        try:
            learnt, recognised = prescan(path, bar)
        finally:
            bar.done()
        if recognised == 0:
            raise ImportFormatError(f"{path}: {not_format}")
    else:
        learnt = empty()
    bar.label = f"importing {name}"
    return learnt, bar


def feed_lines(path: str, size: int, importer: Any, bar: Progress) -> None:
    """Every line of ``path`` to ``importer.line(lineno, line)``, then ``importer.finish()``.

    The progress line follows the bytes read and the ops the importer has counted
    (``importer.tally.ops``), and is cleared however the import ends.
    """
    try:
        with LineReader(path) as reader:
            for lineno, line in reader:
                try:
                    importer.line(lineno, line)
                except INPUT_ERRORS as exc:  # whatever a hostile line does, it is one malformed line
                    importer.malformed.add(lineno, describe_input_error(exc))
                if bar.enabled:
                    bar.update(reader.position, importer.tally.ops)
        importer.finish()
        bar.update(size, importer.tally.ops, force=True)
    finally:
        bar.done()


def pluralise(lower_kind: str) -> str:
    """A resource name for a kind, as Kubernetes guesses it for CRDs without a declared plural."""
    core = CORE_BY_LOWER_KIND.get(lower_kind)
    if core:
        return core[2]
    if lower_kind.endswith(("s", "x", "z", "ch", "sh")):
        return lower_kind + "es"
    if lower_kind.endswith("y") and len(lower_kind) > 1 and lower_kind[-2] not in "aeiou":
        return lower_kind[:-1] + "ies"
    return lower_kind + "s"


def kind_from_plural(plural: str) -> str:
    """Best-effort kind for a resource when nothing says it: a table, else singular + capital."""
    core = CORE_BY_PLURAL.get(plural)
    if core:
        return core[0]
    word = plural
    if word.endswith("ies") and len(word) > 3:
        word = word[:-3] + "y"
    elif word.endswith(("sses", "xes", "zes", "ches", "shes")):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    return word[:1].upper() + word[1:]


def join_api_version(group: str, version: str) -> str:
    if not version:
        return ""
    return f"{group}/{version}" if group else version


# --- errors ---------------------------------------------------------------------------

#: metav1.StatusReason -> HTTP status, as the API server pairs them.
REASON_CODES: dict[str, int] = {
    "BadRequest": 400, "Unauthorized": 401, "Forbidden": 403, "NotFound": 404,
    "MethodNotAllowed": 405, "NotAcceptable": 406, "AlreadyExists": 409, "Conflict": 409,
    "Gone": 410, "Expired": 410, "RequestEntityTooLarge": 413, "UnsupportedMediaType": 415,
    "Invalid": 422, "TooManyRequests": 429, "InternalError": 500, "ServerTimeout": 500,
    "StoreReadError": 500, "ServiceUnavailable": 503, "Timeout": 504,
}

_ERROR_PATTERNS: tuple[tuple[re.Pattern[str], int, str], ...] = tuple(
    (re.compile(p, re.I), code, reason) for p, code, reason in (
        (r"\bnot found\b|\bnotfound\b", 404, "NotFound"),
        (r"already exists", 409, "AlreadyExists"),
        (r"object has been modified|\bconflict", 409, "Conflict"),
        (r"\bforbidden\b", 403, "Forbidden"),
        (r"unauthori[sz]ed", 401, "Unauthorized"),
        (r"too many requests|rate limit", 429, "TooManyRequests"),
        (r"too old resource version|\bexpired\b|\bgone\b", 410, "Expired"),
        (r"\bis invalid\b|\binvalid\b|unprocessable", 422, "Invalid"),
        (r"timeout|timed out|deadline exceeded", 504, "Timeout"),
        (r"service unavailable|connection refused|\bunavailable\b", 503, "ServiceUnavailable"),
        (r"method not allowed", 405, "MethodNotAllowed"),
        (r"bad request", 400, "BadRequest"),
    ))


def code_for_reason(reason: str) -> int:
    """HTTP status for a Kubernetes error reason (500 when the reason is unknown or empty)."""
    return REASON_CODES.get(reason, 500)


def classify_error(text: str) -> tuple[int, str]:
    """(HTTP status, reason) for an error given only as text, best effort."""
    word = text.strip()
    if word in REASON_CODES:
        return REASON_CODES[word], word
    for pattern, code, reason in _ERROR_PATTERNS:
        if pattern.search(text):
            return code, reason
    return 500, "InternalError"


def status_body(code: int, reason: str, message: str, *, kind: str = "", name: str = "") -> dict[str, Any]:
    """The metav1.Status the API server answers a failed request with."""
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {},
                            "status": "Failure" if code >= 400 else "Success",
                            "message": message, "reason": reason, "code": code}
    if kind or name:
        body["details"] = {k: v for k, v in (("name", name), ("kind", kind)) if v}
    return body


# --- time -------------------------------------------------------------------------------

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?\s*(Z|z|[+-]\d{2}:?\d{2})?")


def match_ns(m: re.Match[Any]) -> int | None:
    """ns since the epoch (UTC) from a match whose groups 1-7 are year, month, day, hour, minute,
    second and an optional fraction (str or bytes); None for an impossible date."""
    y, mo, d, h, mi, s = (int(m.group(i)) for i in range(1, 7))
    try:
        secs = calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0))
    except (ValueError, OverflowError):
        return None
    frac = (m.group(7) or "")[:9]
    return secs * 1_000_000_000 + (int(frac) * 10 ** (9 - len(frac)) if frac else 0)


def parse_rfc3339_ns(text: str) -> int | None:
    """'2019-01-01T00:00:00.123456Z' -> ns since the epoch (UTC when no zone is given)."""
    m = _RFC3339.match(text or "")
    if not m:
        return None
    ns = match_ns(m)
    zone = m.group(8)
    if ns is not None and zone and zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        ns -= sign * (int(digits[:2]) * 3600 + int(digits[2:4]) * 60) * 1_000_000_000
    return ns


def epoch_to_ns(value: Any) -> int | None:
    """A number of s, ms, us or ns since the epoch (told apart by magnitude), or an RFC 3339 text."""
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8", "replace")
    if isinstance(value, str):
        text = value.strip()
        try:
            value = float(text) if "." in text else int(text)
        except ValueError:
            return parse_rfc3339_ns(text)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    magnitude = abs(value)
    if magnitude != magnitude or magnitude == float("inf"):
        return None  # NaN, infinity
    if magnitude < 1e11:
        ns = int(value * 1_000_000_000)
    elif magnitude < 1e14:
        ns = int(value * 1_000_000)
    elif magnitude < 1e17:
        ns = int(value * 1_000)
    else:
        ns = int(value)
    return ns if -INT64_MAX - 1 <= ns <= INT64_MAX else None  # beyond what SQLite stores: not a time


# --- results --------------------------------------------------------------------------

class ImportResult(msgspec.Struct, kw_only=True):
    """What one imported session holds, for the summary line and for tests."""

    db: str
    session: str
    session_id: int
    source: str
    ops: int = 0
    verbs: dict[str, int] = msgspec.field(default_factory=dict)
    reconciles: int = 0
    errors: int = 0
    malformed: int = 0
    malformed_lines: list[dict[str, Any]] = msgspec.field(default_factory=list)
    skipped: dict[str, int] = msgspec.field(default_factory=dict)
    redacted: int = 0  # Secret values replaced by markers

    @property
    def watch_events(self) -> int:
        return sum(n for v, n in self.verbs.items() if v in EVENT_VERBS)

    @property
    def reads(self) -> int:
        return sum(n for v, n in self.verbs.items() if v in READ_VERBS)

    @property
    def writes(self) -> int:
        return sum(n for v, n in self.verbs.items() if v in WRITE_VERBS)

    def summary(self) -> str:
        text = (f"imported {self.ops} ops ({self.watch_events} watch events, {self.reads} reads, "
                f"{self.writes} writes), {self.reconciles} reconciles, {self.malformed} malformed "
                f"line{'' if self.malformed == 1 else 's'} into {self.db} session {self.session}")
        if self.redacted:
            text += f"; {self.redacted} Secret value{'' if self.redacted == 1 else 's'} redacted"
        skipped = ", ".join(f"{n} {what}" for what, n in self.skipped.items() if n)
        return f"{text} (skipped: {skipped})" if skipped else text


class Tally:
    """Per-verb counts and error count while importing."""

    def __init__(self) -> None:
        self.verbs: dict[str, int] = {}
        self.errors = 0
        self.ops = 0

    def count(self, verb: str, error: bool) -> None:
        self.ops += 1
        self.verbs[verb] = self.verbs.get(verb, 0) + 1
        if error:
            self.errors += 1

    def attributes(self) -> dict[str, Any]:
        events = sum(n for v, n in self.verbs.items() if v in EVENT_VERBS)
        reads = sum(n for v, n in self.verbs.items() if v in READ_VERBS)
        writes = sum(n for v, n in self.verbs.items() if v in WRITE_VERBS)
        return {"ops": self.ops, "verbs": dict(sorted(self.verbs.items())), "watch_events": events,
                "reads": reads, "writes": writes, "errors": self.errors}


# --- the target recording -------------------------------------------------------------

def _remove_recording(path: str) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(OSError):
            os.remove(path + suffix)


class Target:
    """The recording imported into: atomic sessions, and no trace of a failed import.

    A file the import created is removed again when no session made it in.
    """

    def __init__(self, db: str):
        self.db = db
        self.existed = os.path.exists(db)
        self.committed = 0
        self.writer: RecordingWriter | None = None

    def __enter__(self) -> Target:
        try:
            self.writer = RecordingWriter(self.db)
        except BaseException:
            if not self.existed:
                _remove_recording(self.db)
            raise
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if self.writer is not None:
            self.writer.close()
        if exc_type is not None and not self.existed and self.committed == 0:
            _remove_recording(self.db)

    @contextlib.contextmanager
    def session(self, name: str, source: str, attributes: dict[str, Any]) -> Iterator[SessionWriter]:
        """One atomic session; rolled back on any exception (including Ctrl-C)."""
        assert self.writer is not None
        sw = self.writer.session(name, source, atomic=True, attributes=attributes)
        try:
            yield sw
            if not sw.closed:
                sw.close()
        except BaseException:
            if not sw.closed:
                sw.abort()
            raise
        self.committed += 1


def default_session_name(path: str) -> str:
    """'…/cassandra-operator-recreate.sieve-server.log' -> 'cassandra-operator-recreate.sieve-server'."""
    base = os.path.basename(path.rstrip("/")) or "import"
    for ext in (".gz", ".log", ".jsonl", ".json", ".db", ".sqlite", ".sqlite3"):
        if base.endswith(ext) and len(base) > len(ext):
            base = base[: -len(ext)]
    return base
