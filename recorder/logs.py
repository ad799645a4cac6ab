"""The recorder's own log lines on stderr: plain text for people, JSON lines for log pipelines.

``replay-tui record --log-format json`` writes one JSON object per line with
``time`` (RFC 3339, UTC, milliseconds), ``level`` and ``message``; a request
line adds ``request_id``, ``verb``, ``path`` (a template: names replaced, see
``recorder.paths.template``, so a log index keeps few distinct values),
``status`` and ``duration_ms``.  In text format only the recorder's messages
are printed (requests too with ``--log-requests``), as before.

Lines come from the proxy's event loop and from the writer thread: a lock
keeps them whole, and each is flushed so a pipeline sees it at once.

What the libraries say (aiohttp, asyncio, the ``kubernetes`` loader: Python
``logging``), a warning, an exception in a thread: ``Log.capture`` turns each
into one line of ours, never a traceback, so stderr stays one line (one JSON
object) per message whatever a client does.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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

    @contextmanager
    def capture(self) -> Iterator[Log]:
        """While active, library log records, warnings and exceptions escaping a thread are lines of ours."""
        relay = _Relay(self)
        root = logging.getLogger()
        root.addHandler(relay)
        hooks: dict[str, Callable[..., Any]] = {"thread": threading.excepthook, "unraisable": sys.unraisablehook,
                                                "warning": warnings.showwarning}

        def thread_hook(args: Any) -> None:
            name = args.thread.name if args.thread is not None else "a thread"
            self.error(f"internal error in {name}: {_one_line(args.exc_value)}", thread=name)

        def unraisable_hook(args: Any) -> None:
            self.warning(f"{args.err_msg or 'exception ignored'}: {_one_line(args.exc_value)}")

        def show_warning(message: Any, category: type[Warning], *rest: Any, **kw: Any) -> None:
            self.warning(f"{category.__name__}: {' '.join(str(message).split())}")

        threading.excepthook, sys.unraisablehook, warnings.showwarning = \
            thread_hook, unraisable_hook, show_warning
        try:
            yield self
        finally:
            root.removeHandler(relay)
            threading.excepthook, sys.unraisablehook, warnings.showwarning = \
                hooks["thread"], hooks["unraisable"], hooks["warning"]


def _one_line(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown error"
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _Relay(logging.Handler):
    """A library's log record (warning or worse) as one line of ours: its message, and the exception
    it carries in a few words instead of a traceback."""

    def __init__(self, log: Log):
        super().__init__(logging.WARNING)
        self.log = log

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = " ".join(record.getMessage().split())
            if record.exc_info and record.exc_info[1] is not None:
                message += f": {_one_line(record.exc_info[1])}"
            self.log.log("error" if record.levelno >= logging.ERROR else "warning", message, logger=record.name)
        except Exception:
            pass  # a log line must never break the recording
