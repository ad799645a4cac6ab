"""``replay-tui restore DB [-s S] --at POS --kubeconfig KC [--namespace NS ...] [--dry-run]``: the state at a
position created in a real cluster (see ``server.restore`` for what is created, in which order,
and what is left out)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import msgspec

from replay_tui.cli.commands import emit_json
from replay_tui.engine.textsafe import safe


def register(subparsers: Any) -> None:
    text = "create the objects of the state at a position in a real cluster (kind, kwok, a dev cluster)"
    p = subparsers.add_parser("restore", help=text, description=text + ": CRDs and namespaces first, server-set "
                              "fields stripped, status through the status subresource, system namespaces skipped, "
                              "redacted Secrets refused.")
    p.add_argument("db", metavar="DB", help="recording file (SQLite)")
    p.add_argument("--session", "-s", metavar="S", help="session id or name (may be omitted when the file has one)")
    p.add_argument("--at", required=True, metavar="POS", help="position: a seq, 50%%, 12:03:04, +90s, a mark")
    p.add_argument("--kubeconfig", required=True, metavar="KC", help="kubeconfig of the cluster to create them in")
    p.add_argument("--context", metavar="C", help="kubeconfig context (default: the current one)")
    p.add_argument("--namespace", "-n", action="append", default=[], metavar="NS",
                   help="only objects of this namespace (repeatable; cluster-scoped objects other than its "
                        "Namespace and the CRDs its objects need are then left out)")
    p.add_argument("--dry-run", action="store_true", help="print what would be created; write nothing")
    p.add_argument("--json", action="store_true", help="print the steps as JSON")
    p.set_defaults(func=run_restore)


def _check_namespaces(wanted: list[str], items: list[tuple[Any, Any]], at: int) -> None:
    """A --namespace no object is in is said (a typo restores nothing of it); none matching is an error."""
    from replay_tui.engine.schema import RecordingError

    there = {key.namespace for key, _ in items if key.namespace} | {
        key.name for key, _ in items if key.kind == "Namespace" and not key.group}
    missing = [ns for ns in dict.fromkeys(wanted) if ns not in there]
    if not missing:
        return
    known = f" (namespaces there: {', '.join(safe(n) for n in sorted(there)) or 'none'})"
    if len(missing) == len(set(wanted)):
        raise RecordingError(f"--namespace {', '.join(safe(n) for n in missing)}: no object of the state at op {at}"
                             f" is in {'it' if len(missing) == 1 else 'them'}{known}; nothing to restore")
    for ns in missing:
        print(f"replay-tui: warning: --namespace {safe(ns)}: no object of the state at op {at} is in it{known}",
              file=sys.stderr)


def run_restore(args: argparse.Namespace) -> int:
    return asyncio.run(_restore(args))


async def _restore(args: argparse.Namespace) -> int:
    from replay_tui.cli.commands import opened
    from replay_tui.engine import state
    from replay_tui.engine.cursor import resolve_position
    from replay_tui.recorder.cli import probe
    from replay_tui.recorder.kubeconfig import load_upstream
    from replay_tui.server.restore import Step, restore

    upstream = load_upstream(args.kubeconfig, args.context)
    async with opened(args.db, args.session) as ses:
        at = await resolve_position(ses, args.at, allow_zero=True)
        items = [(key, body) for _, key, body in await (await state.snapshot(ses, at)).items()
                 if isinstance(body, dict)]
    _check_namespaces(args.namespace, items, at)
    await probe(upstream)  # record's bounded check (PROBE_TIMEOUT_S): a cluster that never answers fails fast

    def say(step: Step) -> None:
        if args.json:
            return
        if step.action == "refuse":
            print(f"replay-tui: warning: refused {safe(step.key)}: {step.reason}", file=sys.stderr)
            return
        what = step.outcome if step.action == "create" else f"skipped: {step.reason}"
        extra = f" ({step.reason})" if step.action == "create" and step.reason else ""
        print(f"{safe(step.key)}: {what}{extra}")

    steps = await restore(items, upstream, namespaces=args.namespace, dry_run=args.dry_run, say=say)
    failed = [s for s in steps if s.outcome.startswith("failed") or "status failed" in s.outcome]
    if args.json:
        emit_json({"at": at, "dry_run": args.dry_run, "steps": msgspec.to_builtins(steps)})
    else:
        created = sum(s.outcome.startswith(("created", "would create")) for s in steps)
        verb = "would create" if args.dry_run else "created"
        print(f"{verb} {created} of {len(items)} objects at op {at}; "
              f"{sum(s.outcome == 'exists' for s in steps)} existed, {sum(s.action == 'skip' for s in steps)} skipped, "
              f"{sum(s.action == 'refuse' for s in steps)} refused, {len(failed)} failed")
    return 1 if failed else 0
