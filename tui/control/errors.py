"""Errors that matter: which errors are expected, so ``e``/``E`` and the error count can skip them.

Two patterns are normal in a healthy operator and drown the real failures of a noisy one:

* **404 on a get before a create**: the operator looks the object up, finds nothing, and
  creates it (the next write of that object, within ``WINDOW`` ops, is a create that succeeded);
* **409 retried successfully**: an update or patch lost an optimistic-concurrency race, and
  the next write of the same object (and subresource), within ``WINDOW`` ops, succeeded.

With the setting on (``!``), these are hidden from ``e``/``E`` and from the error count, and the
position bar shows the rule.  Errors are read through the recording's partial index of failed
ops; each candidate costs one lookup of the object's next write (bounded by ``WINDOW`` ops).
"""

from __future__ import annotations

from replay_tui.engine.store import Session
from replay_tui.tui.control.connections import retrying

RULE = "404 get before a create · 409 retried OK"
WINDOW = 2000  # ops after an error searched for the write that makes it expected
_NEXT_WRITE = ("SELECT verb, status FROM operations WHERE session_id = ? AND seq > ? AND seq <= ? AND kind = ?"
               " AND namespace = ? AND name = ? AND verb IN ('create', 'update', 'patch', 'delete', 'deletecollection')"
               " {sub} ORDER BY seq LIMIT 1")


def candidate(verb: str, status: int) -> str | None:
    """Which rule could make an error expected (None: none can)."""
    if verb == "get" and status == 404:
        return "404"
    if verb in ("update", "patch") and status == 409:
        return "409"
    return None


class ExpectedErrors:
    """The errors of one session, classified as they are read (``classify``)."""

    def __init__(self, session: Session):
        self.session = session
        self.total = 0  # errors in the session (as far as classified)
        self.expected: set[int] = set()
        self.scanned_to = 0  # errors up to this seq are classified
        self._single: dict[int, bool] = {}  # errors past scanned_to asked about one at a time

    @property
    def done(self) -> bool:
        return self.scanned_to >= self.session.last

    @property
    def shown(self) -> int:
        return self.total - len(self.expected)

    async def classify(self) -> None:
        """Read the errors not classified yet (all of them the first time; the new ones when following)."""
        ses = self.session
        last = ses.last

        async def go() -> list[tuple[int, str, int, str, str, str, str]]:
            return [tuple(r) for r in await ses.rec.fetchall(
                "SELECT seq, verb, status, kind, namespace, name, subresource FROM operations"
                " WHERE session_id = ? AND error = 1 AND seq > ? AND seq <= ? ORDER BY seq",
                (ses.id, self.scanned_to, last))]

        for seq, verb, status, kind, namespace, name, sub in await retrying(go):
            self.total += 1
            if await self._expected(seq, verb, status, kind, namespace, name, sub):
                self.expected.add(seq)
        self.scanned_to = last

    async def is_expected(self, seq: int) -> bool:
        """Whether the error at ``seq`` is expected (classified now if the scan has not reached it)."""
        if seq <= self.scanned_to:
            return seq in self.expected
        if seq not in self._single:
            ses = self.session
            row = await retrying(lambda: ses.rec.fetchone(
                "SELECT verb, status, kind, namespace, name, subresource FROM operations"
                " WHERE session_id = ? AND seq = ?", (ses.id, seq)))
            self._single[seq] = row is not None and await self._expected(seq, *row)
        return self._single[seq]

    async def _expected(self, seq: int, verb: str, status: int, kind: str, namespace: str, name: str,
                        sub: str) -> bool:
        rule = candidate(verb, status)
        if rule is None or not name:
            return False
        ses = self.session
        sql = _NEXT_WRITE.format(sub="AND subresource = ?" if rule == "409" else "")
        params = [ses.id, seq, seq + WINDOW, kind, namespace, name] + ([sub] if rule == "409" else [])
        row = await retrying(lambda: ses.rec.fetchone(sql, params))
        if row is None:
            return False
        next_verb, next_status = row
        if rule == "404":
            return next_verb == "create" and 200 <= next_status < 300
        return next_verb in ("update", "patch") and 200 <= next_status < 300
