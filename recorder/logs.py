"""The recorder's own log lines on stderr: plain text for people, JSON lines for log pipelines.

``replay-tui record --log-format json`` writes one JSON object per line with
``time`` (RFC 3339, UTC, milliseconds), ``level`` and ``message``; a request
line adds ``request_id``, ``verb``, ``path`` (a template: names replaced, see
``recorder.paths.template``, so a log index keeps few distinct values),
``status`` and ``duration_ms``.  In text format only the recorder's messages
are printed (requests too with ``--log-requests``), as before.

Lines come from the proxy's event loop and from the writer thread: a lock
keeps them whole, and each is flushed so a pipeline sees it at once.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import IO, Any

import msgspec

PROG = "replay-tui"
FORMATS = ("text", "json")
_encode = msgspec.json.Encoder().encode


def rfc3339_ms(ts_ns: int) -> str:
    seconds, ns = divmod(ts_ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{ns // 1_000_000:03d}Z"


class Log:
    """Where the recorder says what it does; ``requests`` also logs every proxied request."""

    def __init__(self, fmt: str = "text", stream: IO[str] | None = None, *, requests: bool | None = None):
        if fmt not in FORMATS:
            raise ValueError(f"log format {fmt!r}: expected one of {', '.join(FORMATS)}")
        self.json = fmt == "json"
        self.stream = stream
        self.requests = self.json if requests is None else requests
        self._lock = threading.Lock()

    def _write(self, line: str) -> None:
        stream = self.stream or sys.stderr  # looked up late: tests and pytest swap sys.stderr
        with self._lock:
            try:
                stream.write(line + "\n")
                stream.flush()
            except (OSError, ValueError):
                pass  # a closed stderr must not stop the recording

    def log(self, level: str, message: str, **fields: Any) -> None:
        """One line; ``fields`` are added to JSON lines only."""
        if self.json:
            self._write(_encode({"time": rfc3339_ms(time.time_ns()), "level": level, "message": message,
                                 **fields}).decode())
        else:  # the fields are for machines: the message already says it for people
            prefix = "" if level == "info" else f"{level}: "
            self._write(f"{PROG}: {prefix}{message}")

    def info(self, message: str, **fields: Any) -> None:
        self.log("info", message, **fields)

    def warning(self, message: str, **fields: Any) -> None:
        self.log("warning", message, **fields)

    def error(self, message: str, **fields: Any) -> None:
        self.log("error", message, **fields)

    def request(self, request_id: int, verb: str, path: str, status: int, duration_ns: int,
                **fields: Any) -> None:
        """One proxied request (a watch: when its stream ends, with the events it carried)."""
        if not self.requests:
            return
        duration_ms = round(duration_ns / 1e6, 3)
        if self.json:
            self._write(_encode({"time": rfc3339_ms(time.time_ns()), "level": "info", "message": "request",
                                 "request_id": request_id, "verb": verb, "path": path, "status": status,
                                 "duration_ms": duration_ms, **fields}).decode())
        else:
            extra = "".join(f" {k}={v}" for k, v in fields.items())
            self._write(f"{PROG}: #{request_id} {verb} {path} {status} {duration_ms:g}ms{extra}")
