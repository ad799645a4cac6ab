"""The recorder's Prometheus metrics: ``replay-tui record --metrics 127.0.0.1:PORT``.

Served on an address of its own (every path of the proxy belongs to the
cluster).  Text exposition format 0.0.4, written here rather than through
``prometheus_client``: a dozen lines, and no dependency in the operator's path.

========================================  =========  ==========================================
``replay_requests_total``                  counter    requests the proxy received (and forwarded)
``replay_refused_total``                   counter    requests refused: no (or another) per-run token
``replay_recorded_total``                  counter    operations committed to the recording
``replay_sampled_out_total``               counter    requests left out by ``--sample``
``replay_dropped_total``                   counter    operations dropped: capture queue full
``replay_errors_total{category}``          counter    disk / locked (operations lost to writes that
                                                      kept failing), encode (captures that could not
                                                      be converted), upstream (requests the cluster
                                                      never answered)
``replay_write_failures_total``            counter    write attempts that failed (each retried with
                                                      backoff: a full disk, a lock held too long)
``replay_request_duration_seconds{verb}``  histogram  request latency as the operator saw it
                                                      (a watch: until its stream opened)
``replay_queue_depth``                     gauge      captures waiting for the writer
========================================  =========  ==========================================
"""

from __future__ import annotations

import bisect
import socket
from typing import TYPE_CHECKING

import aiohttp.web

if TYPE_CHECKING:
    from replay_tui.recorder.proxy import RecordingProxy
    from replay_tui.recorder.queue import CaptureQueue

#: Upper bounds in seconds (Kubernetes' own apiserver_request_duration_seconds, trimmed).
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class DurationHistogram:
    """Per-verb latency histogram, updated from the proxy's event loop only (no lock needed)."""

    def __init__(self) -> None:
        self.counts: dict[str, list[int]] = {}  # verb -> count per bucket (not cumulative), +Inf last
        self.sums: dict[str, float] = {}

    def observe(self, verb: str, seconds: float) -> None:
        counts = self.counts.get(verb)
        if counts is None:
            counts = self.counts[verb] = [0] * (len(BUCKETS) + 1)
            self.sums[verb] = 0.0
        counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.sums[verb] += seconds

    def lines(self, name: str) -> list[str]:
        out = []
        for verb in sorted(self.counts):
            running = 0
            for bound, n in zip((*map(_float, BUCKETS), "+Inf"), self.counts[verb]):
                running += n
                out.append(f'{name}_bucket{{verb="{verb}",le="{bound}"}} {running}')
            out.append(f'{name}_sum{{verb="{verb}"}} {_float(self.sums[verb])}')
            out.append(f'{name}_count{{verb="{verb}"}} {running}')
        return out


def _float(value: float) -> str:
    return repr(float(value))


def _family(name: str, kind: str, text: str, samples: list[str]) -> list[str]:
    return [f"# HELP {name} {text}", f"# TYPE {name} {kind}", *samples]


def metrics_text(proxy: RecordingProxy, queue: CaptureQueue) -> str:
    """The exposition of the recorder's counters, read at this moment."""
    snap = queue.snapshot()
    errors = dict(snap["errors"], upstream=proxy.upstream_errors)
    lines = [
        *_family("replay_requests_total", "counter", "Requests the proxy received from the operator.",
                 [f"replay_requests_total {proxy.requests}"]),
        *_family("replay_refused_total", "counter",
                 "Requests refused (401, not forwarded): the client did not present the recorder's token.",
                 [f"replay_refused_total {proxy.refused}"]),
        *_family("replay_recorded_total", "counter", "Operations committed to the recording.",
                 [f"replay_recorded_total {snap['recorded']}"]),
        *_family("replay_sampled_out_total", "counter", "Requests forwarded but not recorded (--sample).",
                 [f"replay_sampled_out_total {snap['sampled_out']}"]),
        *_family("replay_dropped_total", "counter", "Operations dropped because the capture queue was full.",
                 [f"replay_dropped_total {snap['dropped']}"]),
        *_family("replay_errors_total", "counter", "Recorder errors by category (disk, locked: operations "
                 "lost to failed writes; encode: unconvertible captures; upstream: cluster unreachable).",
                 [f'replay_errors_total{{category="{k}"}} {v}' for k, v in sorted(errors.items())]),
        *_family("replay_write_failures_total", "counter",
                 "Write attempts that failed (full disk, I/O error, lock held too long), each retried with backoff.",
                 [f"replay_write_failures_total {snap['write_failures']}"]),
        *_family("replay_request_duration_seconds", "histogram",
                 "Request latency through the proxy by verb (watch: until the stream opened).",
                 proxy.durations.lines("replay_request_duration_seconds")),
        *_family("replay_queue_depth", "gauge", "Captures waiting for the writer.",
                 [f"replay_queue_depth {snap['queue_depth']}"]),
        *_family("replay_queue_bytes", "gauge", "Bytes of captures waiting for the writer.",
                 [f"replay_queue_bytes {snap['queue_bytes']}"]),
        *_family("replay_open_watches", "gauge", "Watch streams being relayed.",
                 [f"replay_open_watches {proxy.open_watches}"]),
    ]
    return "\n".join(lines) + "\n"


class MetricsServer:
    """``GET /metrics`` on its own socket."""

    def __init__(self, proxy: RecordingProxy, queue: CaptureQueue):
        self.proxy, self.queue = proxy, queue
        self._runner: aiohttp.web.ServerRunner | None = None

    async def start(self, sock: socket.socket) -> None:
        async def handle(request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
            if request.path != "/metrics":
                return aiohttp.web.Response(status=404, text="not found: try /metrics\n")
            return aiohttp.web.Response(body=metrics_text(self.proxy, self.queue).encode(),
                                        headers={"Content-Type": CONTENT_TYPE})

        self._runner = aiohttp.web.ServerRunner(aiohttp.web.Server(handle), handle_signals=False,
                                                shutdown_timeout=0.5)
        await self._runner.setup()
        await aiohttp.web.SockSite(self._runner, sock).start()

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
