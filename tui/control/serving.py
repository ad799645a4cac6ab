"""Serving the open session to any Kubernetes client, at the cursor (``K``).

The server is ``replay-tui serve``'s (``server.replay.Replay`` behind ``server.http``), run on
an event loop of its own in a background thread (``ServerThread``), over HTTPS with a per-run
CA and token (``recorder.tls``, ``recorder.kubeconfig``) written to a private kubeconfig in a
0700 directory (``recorder.rundir``) that is removed when serving stops or the app exits.

Each cursor move asks for the served position (``follow``); moves are coalesced: the server
catches up to the latest one and never queues the ones a held key passed over.  Forward moves
deliver the recorded events to open watches (``kubectl get -w`` sees them); backward moves end
watches with 410 Gone, and clients list again, as after an etcd compaction.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from replay_tui.engine.store import Recording
from replay_tui.recorder.kubeconfig import new_token, write_proxy_kubeconfig
from replay_tui.recorder.rundir import RunDir
from replay_tui.recorder.tls import ProxyCertificate, serving_hosts
from replay_tui.server.http import ApiHandler, ServerThread
from replay_tui.server.replay import Replay


@dataclass
class Served:
    url: str
    kubeconfig: Path


class Serving:
    """One session served at a position that follows the cursor."""

    def __init__(self, db: str, session_id: int, at: int):
        self.db, self.session_id = db, session_id
        self.wanted = at
        self.position = -1  # what the server serves now (-1: not yet)
        self.replay: Replay | None = None
        self.thread: ServerThread | None = None
        self.rundir: RunDir | None = None
        self.served: Served | None = None
        self.error = ""
        self._catching_up = False
        self._rec: Recording | None = None

    def start(self) -> Served:
        """Open, load the state at the position and listen (blocking: call it from a thread)."""
        self.rundir = RunDir()
        try:
            cert = ProxyCertificate(serving_hosts("127.0.0.1"))
            token = new_token()

            async def make() -> ApiHandler:
                self._rec = await Recording.open(self.db)
                ses = await self._rec.session(self.session_id)
                await ses.refresh()
                self.replay = await Replay.open(ses, min(self.wanted, ses.last), read_only_message=(
                    f"replay-tui serves {self.db} (session {ses.info.name}) at the debugger's cursor, read-only;"
                    f" to write, fork it: replay-tui serve {self.db} -s {ses.info.name} --at"
                    f" {self.wanted} --fork -- COMMAND"))
                self.position = self.replay.position
                return ApiHandler(self.replay.server, token=token, discovery=self.replay.discovery)

            assert self.rundir is not None
            self.thread = ServerThread(make, ssl_context=cert.server_context(self.rundir.path), name="replay-serve")
            self.thread.start(timeout=120)
            kubeconfig = self.rundir.kubeconfig
            write_proxy_kubeconfig(kubeconfig, self.thread.url, token, ca_pem=cert.ca_pem)
            self.served = Served(self.thread.url, kubeconfig)
            self.follow(self.wanted)  # the cursor may have moved while the state loaded
            return self.served
        except BaseException:
            self.stop()
            raise

    def follow(self, seq: int) -> None:
        """Serve op ``seq`` next; the server catches up with the latest position asked for."""
        self.wanted = seq
        thread = self.thread
        if thread is None or thread.loop is None or self._catching_up or self.position == seq:
            return
        self._catching_up = True
        asyncio.run_coroutine_threadsafe(self._catch_up(), thread.loop)

    async def _catch_up(self) -> None:
        try:
            while self.replay is not None and self.position != self.wanted:
                self.position = await self.replay.seek(self.wanted)
        except Exception as exc:  # the recording went away: say so where the bar can show it
            self.error = str(exc) or type(exc).__name__
        finally:
            self._catching_up = False

    def stop(self) -> None:
        """Stop serving (watches end), close the recording, remove the kubeconfig and its directory."""
        thread, self.thread = self.thread, None
        if thread is not None:
            rec, self._rec = self._rec, None
            if rec is not None and thread.loop is not None and thread.loop.is_running():
                try:
                    asyncio.run_coroutine_threadsafe(rec.close(), thread.loop).result(5)
                except Exception:
                    pass
            thread.stop()
        self.replay = None
        if self.rundir is not None:
            self.rundir.remove()
            self.rundir = None

    @property
    def caught_up(self) -> bool:
        return self.position == self.wanted
