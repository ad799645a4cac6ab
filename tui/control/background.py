"""When the whole-session computations run: statistics, then the analysis, then causality cycles.

They read every op, so at a million ops each keeps a core busy for seconds.  The policy:

* nothing before the first screen is painted (statistics start ``STATS_DELAY_S`` after it);
* one at a time, in order (they share one connection): statistics, analysis, cycles;
  the Analysis tab asked for early starts the analysis next;
* a failure is that job's state ("failed: <why>"), shown in its tab, and the next job still
  runs: no tab waits forever on one that will never come;
* while following a growing session, a job is recomputed at most every ``EVERY_S`` seconds
  and never more than a fifth of the time (wait five times what it last cost).

The screen asks :meth:`Background.next_job` what to start and reports back; this module only
decides, so it is tested without a screen or a database.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from replay_tui.engine import analysis, causality
from replay_tui.engine import stats as statsmod
from replay_tui.engine.store import Session

STATS_DELAY_S = 0.01  # statistics come from the rollups (engine.rollups): milliseconds
ORDER = ("stats", "analysis", "cycles")
EVERY_S = {"stats": 2.0, "analysis": 10.0, "cycles": 10.0}


@dataclass
class Job:
    name: str
    state: str = "waiting"  # waiting | running | done | failed
    started: float = 0.0
    cost: float = 0.0
    last: int = 0  # the session's last op when it ran
    data: Any = None
    error: str = ""

    @property
    def running(self) -> bool:
        return self.state == "running"


@dataclass
class Background:
    """The jobs of one session."""

    jobs: dict[str, Job] = field(default_factory=lambda: {name: Job(name) for name in ORDER})
    painted_at: float | None = None  # when the first screen was painted
    wanted: str | None = None  # a tab asked for this job first

    def __getitem__(self, name: str) -> Job:
        return self.jobs[name]

    def painted(self, now: float) -> None:
        if self.painted_at is None:
            self.painted_at = now

    def want(self, name: str) -> None:
        if self.jobs[name].state == "waiting":
            self.wanted = name

    def running(self) -> bool:
        return any(job.running for job in self.jobs.values())

    def next_job(self, now: float, last: int) -> str | None:
        """The job to start now (None: nothing, or not yet)."""
        if self.painted_at is None or self.running():
            return None
        if now - self.painted_at < STATS_DELAY_S and last > 0:
            return None
        if self.wanted is not None and self.jobs[self.wanted].state == "waiting":
            return self.wanted
        for name in ORDER:
            if self.jobs[name].state == "waiting":
                return name
        for name in ORDER:  # a grown session: recompute, but spend at most a fifth of the time on it
            job = self.jobs[name]
            if job.last < last and now - job.started >= max(EVERY_S[name], 5 * job.cost):
                return name
        return None

    def started(self, name: str, now: float, last: int) -> None:
        job = self.jobs[name]
        job.state, job.started, job.last = "running", now, last
        if self.wanted == name:
            self.wanted = None

    def finished(self, name: str, now: float, data: Any) -> None:
        job = self.jobs[name]
        job.state, job.cost, job.data, job.error = "done", now - job.started, data, ""

    def failed(self, name: str, now: float, error: str) -> None:
        job = self.jobs[name]
        job.state, job.cost, job.error = "failed", now - job.started, error

    def cancelled(self, name: str) -> None:
        job = self.jobs[name]
        if job.running:
            job.state = "done" if job.data is not None else "waiting"


async def compute(name: str, ses: Session) -> Any:
    """Run one job over the whole session; its result as plain data (what the panels read)."""
    jobs: dict[str, Callable[[Session], Awaitable[Any]]] = {
        "stats": statsmod.compute, "analysis": analysis.analyze, "cycles": causality.cycles}
    return msgspec.to_builtins(await jobs[name](ses))
