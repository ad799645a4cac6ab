"""The API server over HTTP(S): paths to verbs, JSON in and out, watch streams, discovery.

An aiohttp low-level handler (the recording proxy's HTTP stack).  Over HTTPS it uses the
recording proxy's per-run CA and serving certificate (``recorder.tls``), and like the proxy
it answers only clients that present the per-run token the kubeconfig it writes carries.
Responses larger than 128 KiB are gzip-compressed when the client accepts it, as
kube-apiserver does.
"""

from __future__ import annotations

import asyncio
import hmac
import inspect
import socket
import ssl
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp.web
import msgspec
import yaml

from replay_tui.recorder.paths import ApiPath, is_watch, parse_path
from replay_tui.server import errors
from replay_tui.server.apiserver import ApiServer
from replay_tui.server.discovery import OPENAPI_PROTOBUF_TYPE, OPENAPI_V2, OPENAPI_V2_PROTOBUF, Discovery
from replay_tui.server.errors import ApiError
from replay_tui.server.render import Event, Renderer, event_line

GZIP_THRESHOLD = 128 * 1024  # kube-apiserver compresses responses larger than this
_encode = msgspec.json.encode
_decode = msgspec.json.decode
_HEALTH = ("/healthz", "/livez", "/readyz")


class ApiHandler:
    """Serves an :class:`ApiServer` (and its discovery) to HTTP clients; ``token``: the bearer token
    clients must present (None: any client).  Subclasses may watch what is served through
    :meth:`on_request` and :meth:`on_stream`."""

    def __init__(self, server: ApiServer, *, token: str | None = None, discovery: Discovery | None = None):
        self.server = server
        self.discovery = discovery or Discovery(server.types)
        self._expected = f"Bearer {token}" if token else None
        self.refused = 0

    # hooks ------------------------------------------------------------------------------------------

    def on_request(self, raw: aiohttp.web.BaseRequest, body: bytes) -> None:
        """Every request, as it arrives (after the token check)."""

    def on_stream(self, raw: aiohttp.web.BaseRequest) -> Callable[[bytes], None] | None:
        """A watch stream opens: a callable given every line it sends, or None."""
        return None

    # HTTP ---------------------------------------------------------------------------------------------

    async def __call__(self, raw: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        if self._expected is not None and not hmac.compare_digest(
                raw.headers.get("Authorization", ""), self._expected):
            self.refused += 1
            error = errors.unauthorized("replay-tui: use the kubeconfig this server wrote (it carries its token)")
            return self._json(error.status(), error.code)
        body = await raw.read()
        self.on_request(raw, body)
        try:
            return await self._route(raw, body)
        except ApiError as exc:
            return self._json(exc.status(), exc.code)

    async def _route(self, raw: aiohttp.web.BaseRequest, body: bytes) -> aiohttp.web.StreamResponse:
        path = raw.path.rstrip("/") or "/"
        api = parse_path(raw.path)
        method = raw.method.upper()
        if api.is_resource:
            rt = self.server.types.at(api.group, api.version, api.resource)
            if rt is None:
                raise errors.no_resource()
            return await self._serve(rt, api, method, body, raw)
        if method != "GET":
            raise errors.method_not_allowed()
        doc: Any = None
        if path == "/openapi/v2":
            if "protobuf" in raw.headers.get("Accept", ""):
                return aiohttp.web.Response(body=OPENAPI_V2_PROTOBUF, content_type=OPENAPI_PROTOBUF_TYPE)
            doc = OPENAPI_V2
        elif path == "/version":
            doc = self.discovery.version()
        elif path == "/":
            doc = self.discovery.root()
        elif path == "/api":
            doc = self.discovery.api()
        elif path == "/apis":
            doc = self.discovery.apis()
        elif path in _HEALTH:
            return aiohttp.web.Response(text="ok")
        elif api.version:
            doc = self.discovery.resources(api.group, api.version)
        elif path.startswith("/apis/") and path.count("/") == 2:
            doc = self.discovery.group(path.split("/")[2])
        if doc is None:
            raise errors.no_resource()
        return self._json(doc, raw=raw)

    async def _serve(self, rt: Any, api: ApiPath, method: str, body: bytes,
                     raw: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        server, query = self.server, dict(raw.query)
        if rt.namespaced and api.name and not api.namespace:
            raise errors.no_resource()
        if not rt.namespaced and api.namespace:
            raise errors.no_resource()
        if api.subresource and not (api.subresource == "status" and rt.status):
            raise ApiError(404, "NotFound", f"{rt.plural}/{api.subresource} is not served here")
        ns = api.namespace
        if method == "GET":
            if is_watch(api, query):
                return await self._watch(rt, ns, api.name, query, raw)
            render = Renderer(rt, raw.headers.get("Accept", ""), query, now=server.clock)
            if api.name:
                return self._json(render.object(server.read(rt, ns, api.name)), raw=raw)
            return self._json(render.list(server.list_objects(rt, ns, query)), raw=raw)
        server.check_writable()
        data = self._body(body)
        if method == "POST" and not api.name:
            return self._json(server.create(rt, ns, self._object(rt, data)), 201)
        if method == "PUT" and api.name:
            return self._json(server.update(rt, ns, api.name, self._object(rt, data), api.subresource))
        if method == "PATCH" and api.name:
            ctype = raw.headers.get("Content-Type", "").split(";")[0].strip()
            return self._json(server.patch(rt, ns, api.name, data, ctype, api.subresource))
        if method == "DELETE" and api.name:
            return self._json(server.delete(rt, ns, api.name, data))
        if method == "DELETE":
            return self._json(server.delete_collection(rt, ns, query))
        raise errors.method_not_allowed()

    async def _watch(self, rt: Any, ns: str, name: str, query: dict[str, str],
                     raw: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        server = self.server
        watcher = server.subscribe(rt, ns, name, query)
        render = Renderer(rt, raw.headers.get("Accept", ""), query, now=server.clock, watch=True)
        traced = self.on_stream(raw)
        response = aiohttp.web.StreamResponse(status=200, headers={"Content-Type": "application/json"})

        async def send(*lines: bytes) -> None:
            await response.write(lines[0] if len(lines) == 1 else b"".join(lines))
            if traced is not None:
                for line in lines:
                    traced(line)

        try:
            await response.prepare(raw)
            if watcher.expired is not None:
                await send(event_line("ERROR", watcher.expired.status()))
                await response.write_eof()
                return response
            for first in watcher.initial:
                await send(render.event(first))
            watcher.initial = []
            timeout = float(query["timeoutSeconds"]) if query.get("timeoutSeconds", "").isdigit() else None
            bookmarks = query.get("allowWatchBookmarks", "").lower() == "true"
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout if timeout else None
            ended = False  # by an ERROR event (the server moved back in time)
            event: Event | None
            while True:
                wait = deadline - loop.time() if deadline is not None else None
                if server.bookmark_interval and bookmarks:
                    wait = min(wait, server.bookmark_interval) if wait is not None else server.bookmark_interval
                if wait is not None and wait <= 0:
                    break
                try:
                    event = await asyncio.wait_for(watcher.queue.get(), wait)
                except TimeoutError:
                    if deadline is not None and loop.time() >= deadline:
                        break
                    await send(server.bookmark(rt))
                    continue
                if event is None:
                    break
                # Whatever else is already queued goes out in the same write (a played recording
                # moves many objects at once).
                lines = [render.event(event)]
                while not watcher.queue.empty() and event is not None and event[0] != "ERROR" \
                        and len(lines) < 512:
                    event = watcher.queue.get_nowait()
                    if event is not None:
                        lines.append(render.event(event))
                await send(*lines)
                if event is None:
                    break
                if event[0] == "ERROR":
                    ended = True
                    break
            if bookmarks and not ended:
                await send(server.bookmark(rt))
            await response.write_eof()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            server.unsubscribe(watcher)
        return response

    @staticmethod
    def _json(obj: Any, status: int = 200, raw: aiohttp.web.BaseRequest | None = None) -> aiohttp.web.Response:
        """A JSON answer; gzip-compressed above 128 KiB when the client accepts it, as kube-apiserver does."""
        body = _encode(obj)
        response = aiohttp.web.Response(body=body, status=status, content_type="application/json")
        if raw is not None and len(body) > GZIP_THRESHOLD and "gzip" in raw.headers.get("Accept-Encoding", ""):
            response.enable_compression(aiohttp.web.ContentCoding.gzip)
        return response

    @staticmethod
    def _body(data: bytes) -> Any:
        if not data:
            return None
        try:
            return _decode(data)
        except msgspec.DecodeError:
            try:
                return yaml.safe_load(data)  # apply patches are YAML
            except yaml.YAMLError:
                raise errors.bad_request("the request body is neither JSON nor YAML") from None

    @staticmethod
    def _object(rt: Any, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise errors.bad_request(f"the body of the request is not a {rt.kind} object")
        if body.get("kind") not in (None, "", rt.kind):
            raise errors.bad_request(f"the kind {body.get('kind')!r} does not match {rt.kind!r}")
        return body


# --- serving ---------------------------------------------------------------------------------------------

class Served:
    """An :class:`ApiHandler` listening on a socket (HTTPS with ``ssl_context``)."""

    def __init__(self, handler: ApiHandler):
        self.handler = handler
        self._runner: aiohttp.web.ServerRunner | None = None
        self.address: tuple[str, int] = ("", 0)

    async def start(self, sock: socket.socket, ssl_context: ssl.SSLContext | None = None) -> tuple[str, int]:
        server = aiohttp.web.Server(self.handler, handler_cancellation=True)  # notice hang-ups
        self._runner = aiohttp.web.ServerRunner(server, handle_signals=False, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = aiohttp.web.SockSite(self._runner, sock, ssl_context=ssl_context)
        await site.start()
        self.address = sock.getsockname()[:2]
        return self.address

    async def close(self) -> None:
        self.handler.server.close_watches()
        await asyncio.sleep(0.05)  # let the streams write their end
        if self._runner is not None:
            await self._runner.cleanup()


def loopback_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


def url_of(host: str, port: int, *, tls: bool) -> str:
    connect = "127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host
    scheme = "https" if tls else "http"
    return f"{scheme}://[{connect}]:{port}" if ":" in connect else f"{scheme}://{connect}:{port}"


class ServerThread:
    """A handler served on loopback by an event loop in a background thread (plain HTTP unless given
    an ``ssl_context``), for synchronous code: tests, scripts, benchmarks, a fork beside a recorder.
    ``make`` builds the handler on that loop (a coroutine function may: the store's watch queues and
    any database connection belong to that loop); ``call`` runs a function there."""

    def __init__(self, make: Callable[[], ApiHandler | Awaitable[ApiHandler]], *, host: str = "127.0.0.1",
                 port: int = 0, ssl_context: ssl.SSLContext | None = None, name: str = "api-server"):
        self.host, self.port = host, port
        self._make = make
        self._ssl = ssl_context
        self.handler: ApiHandler | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.url = ""
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self, timeout: float = 10.0) -> ServerThread:
        self._thread.start()
        self._ready.wait(timeout)
        if self._error is not None:
            raise self._error
        if not self._ready.is_set():
            raise RuntimeError("the API server did not start in time")
        return self

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.loop is not None and self._stop is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(10)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        made = self._make()
        self.handler = await made if inspect.isawaitable(made) else made
        served = Served(self.handler)
        sock = loopback_socket(self.host, self.port)
        try:
            self.host, self.port = await served.start(sock, self._ssl)
            self.url = url_of(self.host, self.port, tls=self._ssl is not None)
            self._ready.set()
            await self._stop.wait()
        finally:
            await served.close()
            sock.close()

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``fn`` on the server's loop and return its result (a coroutine function is awaited)."""
        assert self.loop is not None

        async def go() -> Any:
            result = fn(*args, **kwargs)
            if asyncio.iscoroutine(result):
                result = await result
            return result

        return asyncio.run_coroutine_threadsafe(go(), self.loop).result(30)
