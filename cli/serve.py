"""``replay-tui serve``: a recording as a Kubernetes API any client can read, or a fork of it to run an
operator against.

    replay-tui serve DB [-s S] [--at POS] [--listen ADDR] [--kubeconfig-out FILE] [--play [--speed X]]
                     [-- COMMAND ARGS...]
    replay-tui serve DB [-s S] --at POS --fork [--record-to OUT.db] [--name NAME] [--no-replay-external]
                     [-- COMMAND ARGS...]

Read-only, the server answers from the state at the position (``server.replay``); ``--play``
moves the position forward in recorded time.  ``--fork`` serves a writable copy of that state
(``server.fork``) behind the recording proxy, so the run is recorded as a new session that
stores its fork point.  Either way the kubeconfig it writes (HTTPS with a per-run CA, a per-run
token) is printed, or given to COMMAND as ``KUBECONFIG``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from replay_tui.cli import UsageError
from replay_tui.engine.schema import RecordingError
from replay_tui.recorder.logs import Log

if TYPE_CHECKING:
    from replay_tui.recorder.rundir import RunDir


def register(subparsers: Any) -> None:
    text = "serve a recording as a Kubernetes API (kubectl, any client) at a position, or fork it"
    p = subparsers.add_parser(
        "serve", help=text, description=text + ". Everything after -- is a command run with KUBECONFIG set.",
        epilog="Examples: replay-tui serve rec.db --at 50%% -- kubectl get pods -A;  "
               "replay-tui serve rec.db --at 1200 --fork --record-to fork.db -- kopf run -A op.py")
    p.add_argument("db", metavar="DB", help="recording file (SQLite)")
    p.add_argument("--session", "-s", metavar="S", help="session id or name (may be omitted when the file has one)")
    p.add_argument("--at", metavar="POS", help="position served: a seq, 50%%, 12:03:04, +90s, a mark "
                   "(default: the last op; with --play, the start)")
    p.add_argument("--listen", default="127.0.0.1:0", metavar="HOST:PORT",
                   help="where to listen (default 127.0.0.1 on a free port)")
    p.add_argument("--kubeconfig-out", metavar="FILE",
                   help="where to write the kubeconfig for clients (default: a private temporary file)")
    p.add_argument("--plain-http", action="store_true", help="serve plain HTTP instead of HTTPS with a per-run CA")
    p.add_argument("--play", action="store_true",
                   help="advance the position in recorded time; open watches get the recorded events")
    p.add_argument("--speed", type=float, metavar="X", help="with --play: X times real time (default 1)")
    p.add_argument("--fork", action="store_true",
                   help="serve a writable copy of the state at POS and record what runs against it")
    p.add_argument("--record-to", metavar="OUT.db",
                   help="with --fork: the recording the fork's run goes to (default: DB-fork.db beside DB)")
    p.add_argument("--name", metavar="NAME", help="with --fork: the new session's name (default: SESSION-fork)")
    p.add_argument("--replay-external", dest="replay_external", action="store_true", default=True,
                   help="with --fork (the default): apply the recording's changes by other clients at their offsets")
    p.add_argument("--no-replay-external", dest="replay_external", action="store_false",
                   help="with --fork: leave the outside world still")
    p.add_argument("--grace", type=float, default=10.0, metavar="SECONDS",
                   help="how long COMMAND may take to exit after Ctrl-C/SIGTERM before it is killed (default 10)")
    p.usage = "replay-tui serve DB [options] [-- COMMAND ARGS...]"
    p.set_defaults(func=run_serve, command=[])


def run_serve(args: argparse.Namespace) -> int:
    from replay_tui.recorder.cli import bind, find_command, is_loopback, parse_listen

    log = Log("text")
    if args.speed is not None and not args.play:
        raise UsageError("serve", "--speed goes with --play (the position moves only when played)")
    args.speed = 1.0 if args.speed is None else args.speed
    if not (args.speed > 0 and args.speed < float("inf")):
        raise RecordingError(f"--speed {args.speed:g}: must be a number above 0")
    if args.fork and args.play:
        raise UsageError("serve", "--play moves a read-only server; a fork runs in real time (leave out --play)")
    if not args.fork and (args.record_to or args.name):
        raise UsageError("serve", "--record-to and --name go with --fork")
    command = list(args.command)
    if command:
        _, status, message = find_command(command[0])
        if status:
            log.error(message)
            return status
    from replay_tui.recorder.rundir import RunDir

    host, port = parse_listen(args.listen)
    sock = bind(host, port)
    # The run's kubeconfig (its token) and the serving key's instant on disk live in one private
    # directory, removed on every exit path (and at the next start after a kill -9), as for record.
    rundir = RunDir()
    try:
        if not is_loopback(host):
            log.warning(f"serving on {args.listen}, beyond loopback: whoever can reach it and read the kubeconfig "
                        "it writes can read the recording")
        if args.fork:
            return _fork(args, log, command, sock, rundir)
        return asyncio.run(_serve(args, log, command, sock, rundir))
    finally:
        sock.close()
        rundir.remove()


# --- read-only ------------------------------------------------------------------------------------------

async def _serve(args: argparse.Namespace, log: Log, command: list[str], sock: socket.socket,
                 rundir: RunDir) -> int:
    from replay_tui.engine.cursor import resolve_position
    from replay_tui.engine.store import Recording
    from replay_tui.engine.units import fmt_ts
    from replay_tui.recorder.cli import Supervisor
    from replay_tui.recorder.kubeconfig import new_token
    from replay_tui.server.http import ApiHandler, Served
    from replay_tui.server.replay import Replay

    rec = await Recording.open(args.db)
    try:
        ses = await rec.session(args.session)
        await ses.refresh()
        if args.at:
            at = await resolve_position(ses, args.at, allow_zero=True)
        else:
            at = 0 if args.play else ses.last
        name = ses.info.name
        replay = await Replay.open(ses, at, read_only_message=(
            f"replay-tui serve answers from the recording {args.db} (session {name}) and is read-only; "
            f"to write, fork it: replay-tui serve {args.db} -s {name} --at {at} --fork -- COMMAND"))
        gc.freeze()  # the loaded state lives as long as the server: the cyclic collector need not walk it
        token = new_token()
        served = Served(ApiHandler(replay.server, token=token, discovery=replay.discovery))
        supervisor = Supervisor().install()
        player: asyncio.Task[int] | None = None
        try:
            url, kubeconfig = await _listen(served, sock, token, args, rundir)
            log.info(f"serving {args.db} (session {name}) at op {at:,} of {ses.last:,} ({fmt_ts(replay.time_ns)})"
                     f" on {url}, read-only; KUBECONFIG={kubeconfig}" + ("" if command else " (Ctrl-C to stop)"),
                     url=url, kubeconfig=str(kubeconfig), position=at)
            if args.play:
                player = asyncio.ensure_future(replay.play(args.speed))
                player.add_done_callback(lambda task: _played(task, log, replay))
                log.info(f"playing at {args.speed:g}x from op {at:,}")
            if command:
                return await supervisor.run(command, str(kubeconfig), args.grace, log)
            await supervisor.stop.wait()
            return 0
        finally:
            supervisor.uninstall()
            if player is not None:
                replay.pause()
                await asyncio.gather(player, return_exceptions=True)
            await served.close()
    finally:
        await rec.close()


def _played(task: asyncio.Task[int], log: Log, replay: Any) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        log.error(f"--play stopped: {exc}")
    elif replay.position >= replay.session.last:
        log.info(f"reached op {replay.position:,}, the end of the session; still serving it")


async def _listen(served: Any, sock: socket.socket, token: str, args: argparse.Namespace, rundir: RunDir,
                  ) -> tuple[str, Path]:
    """Serve on ``sock`` (HTTPS with a per-run CA unless --plain-http) and write the kubeconfig."""
    from replay_tui.recorder.kubeconfig import write_proxy_kubeconfig
    from replay_tui.recorder.tls import ProxyCertificate, serving_hosts
    from replay_tui.server.http import url_of

    cert = None if args.plain_http else ProxyCertificate(serving_hosts(sock.getsockname()[0]))
    host, port = await served.start(sock, cert.server_context(rundir.path) if cert is not None else None)
    url = url_of(host, port, tls=cert is not None)
    kubeconfig = Path(args.kubeconfig_out) if args.kubeconfig_out else rundir.kubeconfig
    try:
        write_proxy_kubeconfig(kubeconfig, url, token, ca_pem=cert.ca_pem if cert is not None else None)
    except OSError as exc:
        raise RecordingError(f"--kubeconfig-out {kubeconfig}: cannot write it ({exc.strerror})") from None
    return url, kubeconfig


# --- fork -------------------------------------------------------------------------------------------------

def _default_record_to(db: str) -> str:
    path = Path(db)
    stem = path.name[:-3] if path.name.endswith(".db") else path.name
    return str(path.with_name(f"{stem}-fork.db"))


def _fork(args: argparse.Namespace, log: Log, command: list[str], sock: socket.socket, rundir: RunDir) -> int:
    import msgspec

    from replay_tui.engine.readonly import same_file
    from replay_tui.recorder.cli import record_through
    from replay_tui.recorder.kubeconfig import Upstream, new_token
    from replay_tui.server.fork import ExternalChange, fork_point, replay_external, seed
    from replay_tui.server.http import ApiHandler, ServerThread

    record_to = args.record_to or _default_record_to(args.db)
    if same_file(args.db, record_to):
        raise RecordingError(f"--record-to {record_to}: that is {args.db} itself (a link to it); a fork is "
                             "recorded into another file than the one it forks (reading never modifies a recording)")
    point: dict[str, Any] = {}
    inner = new_token()
    started = time.perf_counter()

    async def make() -> ApiHandler:
        from replay_tui.engine.cursor import resolve_position
        from replay_tui.engine.store import Recording

        rec = await Recording.open(args.db)
        try:
            ses = await rec.session(args.session)
            await ses.refresh()
            at = await resolve_position(ses, args.at, allow_zero=True) if args.at else ses.last
            ts = (await ses.rows(at, 1))[0].ts_ns if at else (await ses.time_range())[0]
            server, discovery = await seed(ses, at)
            point.update(fp=fork_point(args.db, ses, at, ts, args.replay_external), objects=sum(
                len(objs) for objs in server.store.values()), session=ses.info.name, id=ses.id)
        finally:
            await rec.close()
        return ApiHandler(server, token=inner, discovery=discovery)

    fork = ServerThread(make, name="fork")
    fork.start(timeout=600)
    try:
        fp = point["fp"]
        log.info(f"forked {args.db} (session {fp.session}) at op {fp.seq:,}: {point['objects']:,} objects, "
                 f"seeded in {time.perf_counter() - started:.2f}s; recording the run to {record_to}",
                 position=fp.seq, record_to=record_to)
        upstream = Upstream(fork.url, ssl_context=None, context="fork", namespace="default")
        upstream.authorization = f"Bearer {inner}"
        future = None
        if args.replay_external:
            def told(change: ExternalChange, done: bool) -> None:
                verb = "delete" if change.delete else "create" if change.body is not None else "change"
                log.info(f"outside world: {verb} {change.key} (op {change.seq:,} of the recording)"
                         + ("" if done else ": nothing to act on in the fork"))

            assert fork.loop is not None and fork.handler is not None
            future = asyncio.run_coroutine_threadsafe(replay_external(
                fork.handler.server, args.db, point["id"], fp.seq, started=time.monotonic(), on_change=told),
                fork.loop)
        rec_args = argparse.Namespace(
            db=record_to, session=args.name or f"{fp.session}-fork", no_redact=False, sample=1.0,
            queue_size=10_000, plain_http=args.plain_http, kubeconfig_out=args.kubeconfig_out, grace=args.grace)
        try:
            return record_through(rec_args, log, command, upstream, sock, None, rundir=rundir,
                                  cluster=f"fork of {fp.source} (session {fp.session}, op {fp.seq})",
                                  attributes={"fork": msgspec.to_builtins(fp)})
        finally:
            if future is not None:
                future.cancel()
    finally:
        fork.stop()
