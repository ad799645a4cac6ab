"""The recording proxy: forwards an operator's API traffic to the cluster and captures it.

An aiohttp server on loopback (aiohttp: one library for both the server and
the client side, asyncio-native, streams response bodies chunk by chunk).
Per request it reads the request body, forwards the request with the real
credentials, answers the operator, then hands a :class:`Capture` to the
bounded queue: a few microseconds of copying; parsing and writing happen on
the writer thread.  Watch responses are relayed chunk by chunk as they
arrive, unbuffered, the same bytes the server sent; the writer splits them
into events.

Protobuf: the proxy asks the server for JSON (it rewrites ``Accept``), which
every Kubernetes client can decode, so every recorded response is readable.
A request body sent as protobuf (rare: some built-in controllers) is
forwarded untouched and recorded as an opaque marker.
"""

from __future__ import annotations

import asyncio
import hmac
import os
import socket
import ssl
import time

import aiohttp
import aiohttp.web
import msgspec
from multidict import CIMultiDict

from replay_tui.engine.format import WATCH
from replay_tui.recorder.capture import Capture
from replay_tui.recorder.kubeconfig import Upstream
from replay_tui.recorder.logs import Log
from replay_tui.recorder.metrics import DurationHistogram
from replay_tui.recorder.paths import parse_path, template, verb_for
from replay_tui.recorder.queue import CaptureQueue

# Never forwarded (hop-by-hop, or replaced by the proxy).
_REQUEST_DROP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
                           "te", "trailer", "trailers", "transfer-encoding", "upgrade", "host",
                           "content-length", "authorization"})
_RESPONSE_DROP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length",
                            "content-encoding", "trailer", "upgrade"})
_AUTH_REFRESH_S = 60.0
_HANGUP_POLL_S = 1.0


def status_body(code: int, reason: str, message: str) -> bytes:
    return msgspec.json.encode({"kind": "Status", "apiVersion": "v1", "metadata": {},
                                "status": "Failure", "message": message, "reason": reason, "code": code})


def json_accept(accept: str) -> str:
    """``Accept`` without Kubernetes' protobuf: the server then answers JSON (Table and other JSON
    variants kept).  Other protobuf documents (the OpenAPI spec kubectl reads as
    ``application/com.github.proto-openapi.spec.v2@v1.0+protobuf``) are no Kubernetes objects and
    have no JSON form the client would decode: they are asked for as the client asks."""
    if "vnd.kubernetes.protobuf" not in accept:
        return accept
    kept = [part.strip() for part in accept.split(",") if "vnd.kubernetes.protobuf" not in part]
    return ", ".join(kept) if kept else "application/json"


def is_watch_request(request: aiohttp.web.BaseRequest) -> bool:
    return request.query.get("watch", "").lower() in ("true", "1", "t") or "/watch/" in request.path


def describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        text = f"TLS certificate not accepted ({exc.certificate_error})"
    elif isinstance(exc, aiohttp.ClientConnectorError):
        err = exc.os_error
        text = os.strerror(err.errno).lower() if err is not None and err.errno else str(err or exc)
    elif isinstance(exc, asyncio.TimeoutError):
        text = "timed out"
    return " ".join(text.split())


class RecordingProxy:
    """Forwards to ``upstream``, captures into ``queue``; requires ``token`` from its clients.

    With ``observe`` each request's verb and path template are worked out (a few
    microseconds) for the latency histogram and, when ``log.requests``, a log line.
    """

    def __init__(self, upstream: Upstream, queue: CaptureQueue, *, token: str | None,
                 log: Log | None = None, observe: bool = False, hint: str = ""):
        self.upstream = upstream
        self.queue = queue
        self.log = log or Log()
        self.observe = observe or self.log.requests
        self.durations = DurationHistogram()
        self.token = token or ""
        self._expected = f"Bearer {token}" if token else None
        self._hint = hint  # said with the first refusal, e.g. why a client sends no token
        self.refused = 0  # requests without the per-run token: answered 401, never forwarded
        self.hangups = 0  # clients that went away before their request was whole: never forwarded
        self._session: aiohttp.ClientSession | None = None
        self._runner: aiohttp.web.ServerRunner | None = None
        self._streams: set[aiohttp.ClientResponse] = set()
        self._refresher: asyncio.Task[None] | None = None
        self.requests = 0
        self.upstream_errors = 0
        self.open_watches = 0
        self.address = ("", 0)

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self, sock: socket.socket, ssl_context: ssl.SSLContext | None = None) -> tuple[str, int]:
        """Serve on an already bound socket (bound early, so a bad --listen fails before recording);
        HTTPS with ``ssl_context``."""
        connector = aiohttp.TCPConnector(ssl=self.upstream.ssl_context if self.upstream.ssl_context else False,
                                         limit=0, ttl_dns_cache=300, enable_cleanup_closed=False)
        self._session = aiohttp.ClientSession(
            connector=connector, auto_decompress=True, cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=15),
            skip_auto_headers=("User-Agent",))
        server = aiohttp.web.Server(self._handle, access_log=None)
        self._runner = aiohttp.web.ServerRunner(server, handle_signals=False, access_log=None,
                                                shutdown_timeout=1.0)
        await self._runner.setup()
        site = aiohttp.web.SockSite(self._runner, sock, ssl_context=ssl_context)
        await site.start()
        self.address = sock.getsockname()[:2]
        if self.upstream.authorization is not None:
            self._refresher = asyncio.create_task(self._refresh_auth())
        return self.address

    async def close(self) -> None:
        """Stop serving: end open watch streams, then the server and the client session."""
        if self._refresher is not None:
            self._refresher.cancel()
        for resp in list(self._streams):
            resp.close()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _refresh_auth(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(_AUTH_REFRESH_S)
            await loop.run_in_executor(None, self._refresh_quietly)

    def _refresh_quietly(self) -> None:
        """Re-read expiring credentials (exec plugins, token files) in a worker thread."""
        try:
            self.upstream.refresh_auth()
        except Exception:
            pass

    # --- requests ---------------------------------------------------------------------------

    def _response_headers(self, resp: aiohttp.ClientResponse) -> CIMultiDict[str]:
        return CIMultiDict((k, v) for k, v in resp.headers.items() if k.lower() not in _RESPONSE_DROP)

    async def _handle(self, request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        ts_ns = time.time_ns()
        t0 = time.perf_counter_ns()
        if self._expected is not None and not hmac.compare_digest(
                request.headers.get("Authorization", ""), self._expected):
            return self._refuse(request)
        try:
            body = await request.read()
        except Exception as exc:  # the client hung up mid-body (or sent one that cannot be read)
            return self._hung_up(request, exc)
        self.requests += 1
        rid = self.requests
        cap = Capture(request.method, request.path, request.query_string, ts_ns=ts_ns,
                      request=body or None, request_type=request.headers.get("Content-Type", ""))
        if request.headers.get("Upgrade"):
            return self._fail(rid, cap, False, t0, 501, "NotImplemented",
                              "replay-tui record: connection upgrades (exec, attach, port-forward) are not proxied")
        headers = CIMultiDict((k, v) for k, v in request.headers.items() if k.lower() not in _REQUEST_DROP)
        if "Accept" in headers:
            headers["Accept"] = json_accept(headers["Accept"])
        if self.upstream.authorization:
            headers["Authorization"] = self.upstream.authorization
        assert self._session is not None
        watch = is_watch_request(request)
        try:
            resp = await self._session.request(
                cap.method, self.upstream.url + request.raw_path, headers=headers, data=cap.request,
                allow_redirects=False, server_hostname=self.upstream.server_hostname,
                proxy=self.upstream.proxy)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            self.upstream_errors += 1
            return self._fail(rid, cap, watch, t0, 502, "BadGateway", "replay-tui record: cannot reach the "
                              f"cluster at {self.upstream.url}: {describe(exc)}")
        if resp.status == 401 and self.upstream.authorization is not None:
            asyncio.get_running_loop().run_in_executor(None, self._refresh_quietly)
        if resp.status == 200 and watch:
            return await self._relay_watch(request, resp, rid, cap, t0)
        try:
            data = await resp.read()
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            resp.release()
            self.upstream_errors += 1
            return self._fail(rid, cap, watch, t0, 502, "BadGateway",
                              f"replay-tui record: the cluster's response broke off: {describe(exc)}")
        resp.release()
        out = aiohttp.web.Response(status=resp.status, body=data, headers=self._response_headers(resp))
        cap.status, cap.duration_ns = resp.status, time.perf_counter_ns() - t0
        cap.response, cap.response_type = data, resp.headers.get("Content-Type", "")
        self._answered(rid, cap, watch)
        return out

    def _refuse(self, request: aiohttp.web.BaseRequest) -> aiohttp.web.Response:
        """A request without this run's token: never forwarded, counted, and explained once in the log."""
        self.refused += 1
        if self.refused == 1:
            sent = request.headers.get("Authorization", "")
            why = ("it sent no token" if not sent else
                   "it sent another token (another kubeconfig, or one from an earlier run)" if sent.startswith(
                       "Bearer ") else "it sent other credentials")
            path = template(parse_path(request.path))  # names left out: the log may reach a terminal
            self.log.warning(f"refused {request.method} {path}: the client did not present the recorder's "
                             f"token ({why}); run it with KUBECONFIG set to the kubeconfig the recorder wrote"
                             + (f"; {self._hint}" if self._hint else "") + " (further refusals are counted, "
                             "not logged)", method=request.method, path=path)
        return aiohttp.web.Response(status=401, content_type="application/json", body=status_body(
            401, "Unauthorized", "replay-tui record: use the kubeconfig the recorder wrote"))

    def _hung_up(self, request: aiohttp.web.BaseRequest, exc: BaseException) -> aiohttp.web.Response:
        """A request whose body never came whole: not forwarded, not recorded, said in one line."""
        self.hangups += 1
        path = template(parse_path(request.path))  # names left out: the log may reach a terminal
        self.log.warning(f"a client hung up before its request was complete: {request.method} {path} "
                         f"({describe(exc)}); not forwarded", method=request.method, path=path)
        return aiohttp.web.Response(status=400, content_type="application/json", body=status_body(
            400, "BadRequest", "replay-tui record: the request body was incomplete"))

    def _fail(self, rid: int, cap: Capture, watch: bool, t0: int, status: int, reason: str,
              message: str) -> aiohttp.web.Response:
        """The proxy's own failure: recorded like any answer, and told to the operator as a Status."""
        cap.status, cap.duration_ns, cap.error = status, time.perf_counter_ns() - t0, message
        self._answered(rid, cap, watch)
        return aiohttp.web.Response(status=status, content_type="application/json",
                                    body=status_body(status, reason, message))

    def _answered(self, rid: int, cap: Capture, watch: bool) -> None:
        """A request that got its whole answer: to the queue (a failed watch is never sampled out)."""
        self.queue.request(cap, sampled=not watch)
        self._done(rid, cap.method, cap.path, watch, cap.status, cap.duration_ns)

    def _done(self, rid: int, method: str, path: str, watch: bool, status: int, duration_ns: int) -> None:
        """Latency histogram and request log line of a request that got its whole answer."""
        if self.observe:
            api = parse_path(path)
            verb = WATCH if watch else verb_for(method, api, {})
            self.durations.observe(verb, duration_ns / 1e9)
            self.log.request(rid, verb, template(api), status, duration_ns)

    async def _relay_watch(self, request: aiohttp.web.BaseRequest, resp: aiohttp.ClientResponse, rid: int,
                           cap: Capture, t0: int) -> aiohttp.web.StreamResponse:
        out = aiohttp.web.StreamResponse(status=resp.status, headers=self._response_headers(resp))
        self._streams.add(resp)
        self.open_watches += 1
        cap.status, cap.duration_ns = resp.status, time.perf_counter_ns() - t0
        sid = self.queue.watch_open(cap)
        api = parse_path(cap.path) if self.observe else None
        if api is not None:
            self.durations.observe(WATCH, cap.duration_ns / 1e9)
        counting = self.log.requests
        events = 0
        monitor = asyncio.ensure_future(self._close_when_client_leaves(request, resp))
        try:
            await out.prepare(request)
            async for chunk in resp.content.iter_any():
                now = time.time_ns()
                await out.write(chunk)  # the operator first, the recording second
                self.queue.watch_chunk(sid, now, chunk)
                if counting:
                    events += chunk.count(b"\n")
            await out.write_eof()
        except (TimeoutError, ConnectionError, aiohttp.ClientError):
            pass  # either side hung up: the stream is over
        finally:
            monitor.cancel()
            self._streams.discard(resp)
            self.open_watches -= 1
            resp.close()
            self.queue.watch_close(sid, time.time_ns())
            if api is not None:
                self.log.request(rid, WATCH, template(api), resp.status, time.perf_counter_ns() - t0,
                                 events=events)
        return out


    @staticmethod
    async def _close_when_client_leaves(request: aiohttp.web.BaseRequest, resp: aiohttp.ClientResponse) -> None:
        """A quiet watch notices no hang-up until it writes: poll, so the cluster's stream is not leaked."""
        while True:
            await asyncio.sleep(_HANGUP_POLL_S)
            transport = request.transport
            if transport is None or transport.is_closing():
                resp.close()
                return
