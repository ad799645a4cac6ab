"""``replay-tui record``: run an operator behind the recording proxy.

    replay-tui record --db DB [--session NAME] [--kubeconfig F] [--context C]
                      [--listen 127.0.0.1:PORT] [--no-redact] [--metrics ADDR]
                      [--sample RATE] [--log-format text|json] [--log-requests] -- COMMAND ARGS...

Loads the cluster from the kubeconfig, checks it answers, starts the proxy,
writes a kubeconfig pointing at it and runs COMMAND with ``KUBECONFIG`` set
to it.  Ctrl-C or SIGTERM is passed on to COMMAND; when it has exited (or
after ``--grace`` seconds, then it is killed) the recording is flushed and
closed within ``--grace`` seconds again (another signal cuts that short), and
COMMAND's exit status is ours (74 when COMMAND succeeded and the recording
could not be written whole, e.g. on a full disk).  With no COMMAND the proxy records
until Ctrl-C, for an operator started by hand with the printed kubeconfig.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import ipaddress
import os
import shutil
import signal
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

from replay_tui.engine.schema import RecordingError
from replay_tui.recorder.logs import FORMATS as LOG_FORMATS
from replay_tui.recorder.logs import Log

if TYPE_CHECKING:  # the heavy modules (aiohttp, kubernetes) load only when ``record`` runs
    from replay_tui.recorder.kubeconfig import Upstream
    from replay_tui.recorder.proxy import RecordingProxy
    from replay_tui.recorder.queue import CaptureQueue
    from replay_tui.recorder.rundir import RunDir

PROBE_TIMEOUT_S = 10.0
DEFAULT_QUEUE_SIZE = 10_000  # recorder.queue.DEFAULT_MAXSIZE, without importing it
MIN_FLUSH_S = 1.0  # --grace 0 kills the operator at once, but what it did is still written
EXIT_RECORDING_FAILED = 74  # sysexits' EX_IOERR: the operator succeeded, its recording did not
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class ListenError(RecordingError):
    """A --listen or --metrics address that cannot be used."""


def register(subparsers: Any) -> None:
    """Add the ``record`` command to the ``replay-tui`` parser."""
    text = "record an operator's API traffic through the recording proxy"
    p = subparsers.add_parser(
        "record", help=text, description=text + ". Everything after -- is the operator's command line.",
        epilog="Example: replay-tui record --db rec.db -- kopf run --standalone -A op.py")
    p.add_argument("--db", required=True, metavar="DB", help="recording file (created 0600 when new)")
    p.add_argument("--session", "-s", metavar="NAME",
                   help="session name (default: the command's name; made unique in the file)")
    p.add_argument("--kubeconfig", metavar="FILE", help="kubeconfig of the cluster (default: $KUBECONFIG "
                   "or ~/.kube/config, or the in-cluster service account)")
    p.add_argument("--context", metavar="C", help="kubeconfig context (default: the current one)")
    p.add_argument("--listen", default="127.0.0.1:0", metavar="HOST:PORT",
                   help="where the proxy listens (default 127.0.0.1 on a free port; a non-loopback "
                        "address is allowed, with a warning)")
    p.add_argument("--plain-http", action="store_true",
                   help="serve the operator plain HTTP instead of HTTPS with a per-run CA (client-go, "
                        "controller-runtime and kubectl then send no token, and are refused)")
    p.add_argument("--no-redact", action="store_true",
                   help="store Secret values as they are (default: replaced by a keyed-hash marker)")
    p.add_argument("--metrics", metavar="HOST:PORT", help="serve Prometheus metrics on http://HOST:PORT/metrics")
    p.add_argument("--sample", type=_rate, default=1.0, metavar="RATE",
                   help="record only this fraction (0 to 1) of non-watch requests, chosen at random; every "
                        "request is still forwarded and counted, watches are always recorded, and the rate "
                        "is stored so statistics are scaled (default 1: everything)")
    p.add_argument("--log-format", choices=LOG_FORMATS, default="text",
                   help="text, or json: one JSON object per line on stderr, a line per request included "
                        "(time, level, message, request_id, verb, path template, status, duration_ms)")
    p.add_argument("--log-requests", action="store_true",
                   help="log every request in text format too (json always does)")
    p.add_argument("--kubeconfig-out", metavar="FILE",
                   help="where to write the kubeconfig for the operator (default: a private temporary file)")
    p.add_argument("--queue-size", type=int, default=DEFAULT_QUEUE_SIZE, metavar="N",
                   help=f"captures waiting for the writer before new ones are dropped (default {DEFAULT_QUEUE_SIZE})")
    p.add_argument("--grace", type=float, default=10.0, metavar="SECONDS",
                   help="how long COMMAND may take to exit after Ctrl-C/SIGTERM before it is killed, and how "
                        "long the recording may then take to write what is left, e.g. retrying on a full disk "
                        "(default 10; a second Ctrl-C/SIGTERM stops that at once)")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND ARGS",
                   help="the operator to run (omit it to record until Ctrl-C)")
    p.set_defaults(func=run_record)


# --- checks ---------------------------------------------------------------------------------

def _rate(text: str) -> float:
    """``--sample``: a fraction from 0 to 1 (argparse turns the ValueError into a usage error)."""
    try:
        rate = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number (expected a fraction from 0 to 1)") from None
    from replay_tui.recorder.queue import check_rate  # (the heavy modules load only when ``record`` runs)

    try:
        return check_rate(rate)
    except RecordingError:
        raise argparse.ArgumentTypeError(f"{text!r} is outside 0 to 1") from None


def parse_listen(text: str, option: str = "--listen") -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT`` into (host, port)."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise ListenError(f"{option} {text!r}: expected HOST:PORT, e.g. 127.0.0.1:8001")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        port = int(port_text)
    except ValueError:
        raise ListenError(f"{option} {text!r}: the port must be a number") from None
    if not 0 <= port <= 65535:
        raise ListenError(f"{option} {text!r}: the port must be between 0 and 65535")
    return host, port


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int, option: str = "--listen") -> socket.socket:
    """A listening socket, bound now so a bad address fails before anything is recorded."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ListenError(f"{option} {host}:{port}: unknown host ({exc.strerror})") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ListenError(f"{option} {host}:{port}: cannot listen there ({exc.strerror or exc})") from None
    sock.setblocking(False)
    return sock


def find_command(name: str) -> tuple[str | None, int, str]:
    """(path, 0, "") or (None, exit status, message) like a shell: 127 not found, 126 not executable."""
    if os.sep in name:
        if not os.path.exists(name):
            return None, 127, f"command not found: {name}"
        if os.path.isdir(name) or not os.access(name, os.X_OK):
            return None, 126, f"command not executable: {name}"
        return name, 0, ""
    found = shutil.which(name)
    if found is None:
        return None, 127, f"command not found: {name}"
    return found, 0, ""


async def probe(upstream: Upstream) -> None:
    """Fail early, in one line, when the cluster cannot be reached (any HTTP answer will do)."""
    import aiohttp

    from replay_tui.recorder.proxy import describe

    headers = {"Authorization": upstream.authorization} if upstream.authorization else {}
    connector = aiohttp.TCPConnector(ssl=upstream.ssl_context if upstream.ssl_context else False)
    try:
        async with aiohttp.ClientSession(connector=connector) as session, \
                session.get(upstream.url + "/version", headers=headers, allow_redirects=False,
                            timeout=aiohttp.ClientTimeout(total=PROBE_TIMEOUT_S),
                            server_hostname=upstream.server_hostname, proxy=upstream.proxy):
            pass
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise RecordingError(f"cannot reach the cluster at {upstream.url}: {describe(exc)}") from None


# --- the command ---------------------------------------------------------------------------

def run_record(args: argparse.Namespace) -> int:
    log = Log(args.log_format, requests=args.log_format == "json" or args.log_requests)
    with log.capture():  # aiohttp's and asyncio's complaints (a client hanging up) as lines of ours
        if not log.json:
            return _run(args, log)
        try:  # a log pipeline gets the failure as a JSON line too
            return _run(args, log)
        except RecordingError as exc:
            log.error(str(exc))
            return 1


def _run(args: argparse.Namespace, log: Log) -> int:
    command = list(args.command or [])
    if command and command[0] == "--":
        command = command[1:]
    listen = parse_listen(args.listen)
    metrics = parse_listen(args.metrics, "--metrics") if args.metrics else None
    if args.queue_size < 1:
        raise RecordingError("--queue-size must be at least 1")
    if command:
        _, status, message = find_command(command[0])
        if status:
            log.error(message)
            return status
    from replay_tui.recorder.kubeconfig import load_upstream
    from replay_tui.recorder.rundir import RunDir

    previous = {signum: signal.signal(signum, _exit_on_signal) for signum in _STOP_SIGNALS[1:]}
    rundir = RunDir()  # credential files live there, and go with it (stale ones of killed runs too)
    try:
        upstream = load_upstream(args.kubeconfig, args.context, scratch=rundir.upstream)
        asyncio.run(probe(upstream))
        sock = bind(*listen)
        msock = None
        try:
            if metrics is not None:
                msock = bind(*metrics, option="--metrics")
            if not is_loopback(listen[0]):
                log.warning(f"the proxy listens on {args.listen}, beyond loopback: whoever can reach it "
                            "and read the kubeconfig it writes uses your cluster credentials")
            return record_through(args, log, command, upstream, sock, msock, rundir=rundir)
        finally:
            sock.close()
            if msock is not None:
                msock.close()
    finally:
        rundir.remove()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _exit_on_signal(signum: int, frame: Any) -> None:
    """SIGTERM or SIGHUP outside the proxy's own handling (starting, ending): exit through the
    ``finally`` blocks, so the private directory is removed, as a shell would say it (128+N)."""
    raise SystemExit(128 + signum)


def _version() -> str:
    """This replay-tui's version, for the recording's attributes (reports show it)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("replay-tui")
    except PackageNotFoundError:
        return "unknown"


def record_through(args: argparse.Namespace, log: Log, command: list[str], upstream: Upstream,
                   sock: socket.socket, msock: socket.socket | None, *, rundir: RunDir,
                   cluster: str | None = None, attributes: dict[str, Any] | None = None) -> int:
    """Record ``command`` through the proxy in front of ``upstream``; ``cluster`` and ``attributes``
    (what ``serve --fork`` adds: its fork point) go into the new session; ``rundir`` holds the
    run's credential files."""
    from replay_tui.engine.writer import RecordingWriter
    from replay_tui.recorder.capture import Converter
    from replay_tui.recorder.queue import STOPPED, CaptureQueue
    from replay_tui.recorder.redact import Redactor

    name = args.session or (Path(command[0]).name if command else "proxy")
    writer = RecordingWriter(args.db)
    queue: CaptureQueue | None = None
    try:
        session = writer.session(name, "proxy", actor=Path(command[0]).name if command else "",
                                 cluster=cluster or upstream.url, attributes={**(attributes or {}),
                                     "recorder": "proxy", "context": upstream.context,
                                     "redacted": not args.no_redact, "protobuf": "json-negotiated",
                                     "reconciles": "inferred", "recorder_version": _version(),
                                     "listen": "{}:{}".format(*sock.getsockname()[:2]),
                                     **({"sample_rate": args.sample} if args.sample < 1 else {})})
        queue = CaptureQueue(session, Converter(None if args.no_redact else Redactor()), infer_spans=True,
                             maxsize=args.queue_size, sample=args.sample, log=log).start()
        try:
            end = asyncio.run(_serve(args, log, command, upstream, queue, sock, msock, rundir))
            for signum in _STOP_SIGNALS[1:]:  # (asyncio put the default actions back)
                signal.signal(signum, _exit_on_signal)
        finally:
            if not queue.closing:  # (_serve failed before it closed the queue)
                _close_queue(queue, args.grace, exit_status=1)
        status, refused, requests, close_error, stopped_by = end
        counters = queue.counters
        lost = counters.lost
        sampled = f", {counters.sampled_out:,} sampled out (--sample {args.sample:g})" if args.sample < 1 else ""
        counts = (f"recorded {counters.recorded:,} operations to {args.db} (session {session.name!r}); "
                  f"{counters.dropped:,} dropped, {lost:,} lost to errors{sampled}, of {requests:,} "
                  f"request{'s' if requests != 1 else ''}")
        fields = dict(recorded=counters.recorded, dropped=counters.dropped, errors=lost, requests=requests,
                      sampled_out=counters.sampled_out)
        if refused:
            log.warning(f"{refused:,} request{'s' if refused != 1 else ''} refused: the client did not present "
                        "the recorder's token", refused=refused)
        if queue.gave_up or close_error is not None:
            # One line: what went wrong, what the recording holds, and whether the session says so.
            why = queue.gave_up or str(close_error)
            if stopped_by:
                why = f"stopped by {signal.Signals(stopped_by).name} before everything was written" + (
                    f" ({why})" if why != STOPPED else "")
            status = status or (128 + stopped_by if stopped_by else EXIT_RECORDING_FAILED)
            closed = close_error is None and queue.finished
            log.error(f"recording failed: {why}; {counts}; " + (
                "the session is closed with these counts" if closed else
                f"the session could not be closed ({close_error or 'the writer did not stop'}) and stays open"),
                **fields, exit_status=status, session_closed=closed)
            return status
        log.info(counts, **fields, exit_status=status)
        return status
    finally:
        if queue is None or not queue.writing:
            writer.close()  # (a writer thread stuck in a write keeps the connection: the process exit ends it)


def _close_queue(queue: CaptureQueue, grace: float, **attributes: Any) -> RecordingError | None:
    """Write what is left within ``grace`` seconds (at least one: a healthy queue is written in well under
    that) and close the session; the error closing it, if any."""
    try:
        queue.close(timeout=max(grace, MIN_FLUSH_S), **attributes)
    except RecordingError as exc:
        return exc
    return None


async def _serve(args: argparse.Namespace, log: Log, command: list[str], upstream: Upstream,
                 queue: CaptureQueue, sock: socket.socket, msock: socket.socket | None,
                 rundir: RunDir) -> tuple[int, int, int, RecordingError | None, int]:
    """Proxy until the operator exits (or Ctrl-C), then write what is left and close the session.

    Returns the operator's exit status, the requests refused and proxied, the error closing the
    session (if any) and the signal that cut the writing short (0: none)."""
    from replay_tui.recorder.kubeconfig import new_token
    from replay_tui.recorder.proxy import RecordingProxy

    proxy = RecordingProxy(upstream, queue, token=new_token(), log=log, observe=msock is not None,
                           hint=_PLAIN_HINT if args.plain_http else "")
    loop = asyncio.get_running_loop()
    stop = Supervisor(queue).install()
    status = 1
    try:
        status = await _serve_through(proxy, stop, args, log, command, sock, msock, rundir)
    finally:
        await proxy.close()
        stop.flushing = True  # a signal from now on stops the writing of what is left
        close_error = await loop.run_in_executor(None, functools.partial(
            _close_queue, queue, args.grace, exit_status=status, refused=proxy.refused,
            requests=proxy.requests))  # every request it forwarded: exact where --sample keeps a part
        stop.uninstall()
    return status, proxy.refused, proxy.requests, close_error, stop.stopped_by


_PLAIN_HINT = ("client-go, controller-runtime and kubectl send no token over plain HTTP: "
               "record without --plain-http")


async def _serve_through(proxy: RecordingProxy, stop: Supervisor, args: argparse.Namespace, log: Log,
                         command: list[str], sock: socket.socket, msock: socket.socket | None,
                         rundir: RunDir) -> int:
    from replay_tui.recorder.kubeconfig import write_proxy_kubeconfig
    from replay_tui.recorder.metrics import MetricsServer
    from replay_tui.recorder.tls import ProxyCertificate, serving_hosts

    upstream, queue = proxy.upstream, proxy.queue

    metrics = MetricsServer(proxy, queue) if msock is not None else None
    try:
        cert = None if args.plain_http else ProxyCertificate(serving_hosts(sock.getsockname()[0]))
        host, port = await proxy.start(sock, cert.server_context(rundir.path) if cert is not None else None)
        if metrics is not None and msock is not None:
            await metrics.start(msock)
            mhost, mport = msock.getsockname()[:2]
            log.info(f"metrics on http://{mhost}:{mport}/metrics")
        connect = "127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host
        scheme = "http" if cert is None else "https"
        url = f"{scheme}://[{connect}]:{port}" if ":" in connect else f"{scheme}://{connect}:{port}"
        kubeconfig = Path(args.kubeconfig_out) if args.kubeconfig_out else rundir.kubeconfig
        try:
            write_proxy_kubeconfig(kubeconfig, url, proxy.token, namespace=upstream.namespace,
                                   ca_pem=cert.ca_pem if cert is not None else None)
        except OSError as exc:
            raise RecordingError(f"--kubeconfig-out {kubeconfig}: cannot write it ({exc.strerror})") from None
        if not command:
            log.info(f"recording {upstream.url} through {url}; run the operator with "
                     f"KUBECONFIG={kubeconfig} (Ctrl-C to stop)",
                     cluster=upstream.url, proxy=url, kubeconfig=str(kubeconfig))
            await stop.stop.wait()
            return 0
        return await stop.run(command, str(kubeconfig), args.grace, log)
    finally:
        if metrics is not None:
            await metrics.close()


class Supervisor:
    """Ctrl-C, SIGTERM and SIGHUP, from start to end; shared by ``record`` and ``serve``.

    Runs a command with ``KUBECONFIG`` set, passing the first signal on to its process group (the
    next kill it); without a command, the first signal sets ``stop``.  Once the operator is gone
    and what is left of a recording is being written (``flushing``), a signal stops that at once
    (``queue.abort()``)."""

    SIGNALS = _STOP_SIGNALS

    def __init__(self, queue: CaptureQueue | None = None) -> None:
        self.queue = queue
        self.stop = asyncio.Event()
        self.received: list[int] = []
        self.child: asyncio.subprocess.Process | None = None
        self.flushing = False
        self.stopped_by = 0  # the signal that stopped the writing of what was left

    def install(self) -> Supervisor:
        loop = asyncio.get_running_loop()
        for signum in self.SIGNALS:
            loop.add_signal_handler(signum, self._on_signal, signum)
        return self

    def uninstall(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in self.SIGNALS:
            loop.remove_signal_handler(signum)

    def _on_signal(self, signum: int) -> None:
        self.received.append(signum)
        if self.flushing:
            self.stopped_by = self.stopped_by or signum
            if self.queue is not None:
                self.queue.abort()
            return
        self.stop.set()
        child = self.child
        if child is not None and child.returncode is None:
            _signal_child(child, signum if len(self.received) == 1 else signal.SIGKILL)

    async def run(self, command: list[str], kubeconfig: str, grace: float, log: Log) -> int:
        """``command``'s exit status (128+N when signal N killed it; 127/126 when it cannot be run); after
        a signal it has ``grace`` seconds to exit before it is killed."""
        env = dict(os.environ, KUBECONFIG=kubeconfig)
        try:
            self.child = child = await asyncio.create_subprocess_exec(*command, env=env, process_group=0)
        except OSError as exc:
            log.error(f"cannot run {command[0]}: {exc.strerror or exc}")
            return 127 if isinstance(exc, FileNotFoundError) else 126
        waiter = asyncio.ensure_future(child.wait())
        stopper = asyncio.ensure_future(self.stop.wait())
        await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if not waiter.done():
            try:
                await asyncio.wait_for(asyncio.shield(waiter), grace)
            except TimeoutError:
                log.warning(f"{command[0]} did not exit within {grace:g}s; killing it")
                _signal_child(child, signal.SIGKILL)
                await waiter
        stopper.cancel()
        rc = child.returncode if child.returncode is not None else 1
        return 128 - rc if rc < 0 else rc


def _signal_child(child: asyncio.subprocess.Process, signum: int) -> None:
    """Signal the operator's process group (it may be a shell running the real operator)."""
    try:
        os.killpg(child.pid, signum)
    except (ProcessLookupError, PermissionError):
        try:
            child.send_signal(signum)
        except ProcessLookupError:
            pass
