"""The ``replay-tui`` command: the interactive debugger and its non-interactive twins.

    replay-tui DB [--session S] [--follow]     open the debugger (TUI)
    replay-tui demo                            open the bundled demo recording
    replay-tui sessions DB                     list the sessions of a recording
    replay-tui show DB --at N [--resource R]   the op at N and the object state there
    replay-tui diff DB --from N --to M [--resource R]
    replay-tui stats DB                        counts, latency percentiles, error rate
    replay-tui analyze DB                      hot loops, slow calls, error patterns, access patterns
    replay-tui when DB --field K/NS/N:PATH     when a field changed [--before N | --after N] [--all]
    replay-tui why DB --at N [--resource R]    which write, reconcile and event produced a version
    replay-tui query DB EXPR                   the ops matching a filter expression, streamed
    replay-tui report DB [--format md|json|html] [--out FILE]   a session report to share
    replay-tui check DB [--quick]              is the recording sound? one line per problem
    replay-tui import {sieve,audit,kubestep} SRC --db DB
    replay-tui record --db DB -- COMMAND ...  record an operator through the recording proxy
    replay-tui serve DB [--at N] [--play] [--fork] [-- COMMAND ...]   the recording as a Kubernetes API
    replay-tui compare A.db[:S] B.db[:S] [--fail-on hot-loop,...]    where two runs differ
    replay-tui restore DB --at N --kubeconfig KC [--dry-run]          the state at N in a real cluster

Every read-only command takes ``--json``.  Usage errors are one line, exit status 2.  Bad input (a missing or corrupt
file, an unknown session, a position out of range) ends with one line on
stderr and exit status 1, never a traceback.  Textual is imported only when
the TUI opens, so the plain commands start fast.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import NoReturn, cast

from replay_tui.cli import UsageError
from replay_tui.engine.schema import RecordingError
from replay_tui.engine.textsafe import safe

PROG = "replay-tui"
COMMANDS = ("sessions", "show", "diff", "stats", "analyze", "when", "why", "query", "demo", "import",
            "record", "open", "report", "check", "serve", "compare", "restore")
# Commands whose positional DB comes before an optional ``-- COMMAND ARGS...``.
AFTER_DASHES = ("serve",)
# The demo recording is package data (``replay_tui/demo -> fixtures/demo`` in the checkout).
DEMO_RESOURCE = ("replay_tui", "demo/demo.db")


class Parser(argparse.ArgumentParser):
    """argparse, with a usage error on one line (``... (see 'replay-tui show --help')``), exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {safe(message)} (see '{self.prog} --help')\n")


def _position(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("empty position")
    return text


def build_parser() -> argparse.ArgumentParser:
    from replay_tui import __version__

    parser = Parser(
        prog=PROG,
        description="A terminal time-travel debugger for Kubernetes operators.",
        epilog="Positions (--at/--from/--to) may be a seq (1234), a percentage (50%%), a time of day "
               "in UTC (12:03:04), an offset from the start (+90s), an ISO timestamp, or a mark name. "
               "Run 'replay-tui COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", "-V", action="version", version=f"{PROG} {__version__}")
    sub = cast("argparse._SubParsersAction[argparse.ArgumentParser]",
               parser.add_subparsers(dest="command", metavar="COMMAND"))

    def add(name: str, help_text: str, *, db: bool = True, session: bool = True,
            json: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        if db:
            p.add_argument("db", metavar="DB", help="recording file (SQLite)")
        if session:
            p.add_argument("--session", "-s", metavar="S",
                           help="session id or name (may be omitted when the file has one)")
        if json:
            p.add_argument("--json", action="store_true", help="print JSON instead of text")
        return p

    p = add("open", "open a recording in the interactive debugger", json=False)
    p.add_argument("--follow", "-f", action="store_true",
                   help="attach to a recording being written and keep up with it")
    add("demo", "open the bundled demo recording", db=False, json=False)
    add("sessions", "list the sessions of a recording", session=False)
    p = add("show", "the operation at a position and the object state there")
    p.add_argument("--at", required=True, type=_position, metavar="N", help="position")
    p.add_argument("--resource", "-r", metavar="KIND/NAMESPACE/NAME",
                   help="show this object's state instead of the op's own object")
    p = add("diff", "what changed between two positions (one object, or the whole state)")
    p.add_argument("--from", dest="from_", required=True, type=_position, metavar="N")
    p.add_argument("--to", required=True, type=_position, metavar="M")
    p.add_argument("--resource", "-r", metavar="KIND/NAMESPACE/NAME", help="diff only this object")
    p.add_argument("--all-fields", action="store_true",
                   help="also show noise fields (managedFields, resourceVersion, ...)")
    p.add_argument("--ignore", action="append", default=[], metavar="PATH",
                   help="another field path to leave out (repeatable), e.g. .status.lastProbeTime")
    add("stats", "statistics: counts by verb/kind/status, latency percentiles, error rate, top objects")
    p = add("analyze", "analysis: hot loops, slow operations, error patterns, access patterns")
    p.add_argument("--slow-ms", type=float, default=1000.0, help="slow-operation threshold (default 1000)")
    p.add_argument("--window", type=float, default=60.0, metavar="SECONDS",
                   help="window for hot loops and conflict storms (default 60)")
    p.add_argument("--hot-min", type=int, default=10,
                   help="writes within a window that make a hot loop (default 10)")
    p = add("when", "when did a field change, and who changed it (a watchpoint over the recording)")
    p.add_argument("--field", "-f", required=True, metavar="KIND/NAMESPACE/NAME:PATH",
                   help="the field, e.g. 'Deployment/default/web:.spec.replicas' or "
                        "'Pod/default/api-0:.status.conditions[type=Ready].status'")
    side = p.add_mutually_exclusive_group()
    side.add_argument("--before", type=_position, metavar="N",
                      help="the last change at or before position N (the one that set the value seen there)")
    side.add_argument("--after", type=_position, metavar="N", help="the first change after position N")
    p.add_argument("--all", dest="all_changes", action="store_true",
                   help="every change on that side of N (every change in the session without --before/--after)")
    p = add("why", "provenance: which write, reconcile and watch event produced an object's version at N")
    p.add_argument("--at", required=True, type=_position, metavar="N", help="position")
    p.add_argument("--resource", "-r", metavar="KIND/NAMESPACE/NAME",
                   help="the object (default: the one op N addressed)")
    p.add_argument("--field", "-f", metavar="PATH", help="explain one field's value, e.g. .spec.replicas")
    p.add_argument("--max-links", type=int, default=32, metavar="N", help="stop the chain after N links")
    p = add("query", "the ops matching a filter expression, printed as they are found")
    p.add_argument("expression", nargs="+", metavar="EXPR",
                   help="e.g. 'verb=update kind=Pod ns=default status>=400 latency>200ms changed=.status.phase'")
    p.add_argument("--limit", "-n", type=int, metavar="N", help="stop after N matches")
    p = add("report", "a self-contained session report (Markdown, JSON or one offline HTML file)",
            json=False)
    p.add_argument("--format", dest="format", choices=("md", "json", "html"),
                   help="md, json, or html (one file, no network needed); default: from --out's "
                        "extension (.html, .htm, .md, .markdown, .json; another is refused), else md")
    p.add_argument("--out", "-o", metavar="FILE", help="write the report there instead of stdout")
    p.add_argument("--slow-ms", type=float, default=1000.0,
                   help="endpoints with a p95 latency at or over this are flagged (default 1000)")
    p = add("check", "check a recording: SQLite's integrity check and the recording's own invariants "
                     "(one line per problem; exit 1 when there is one)", session=False)
    p.add_argument("--quick", action="store_true",
                   help="SQLite's quick check, and no decoding of every body (much faster on a big file)")
    from replay_tui.recorder.cli import register as register_record
    from replay_tui.recorder.importers.cli import register as register_import

    register_record(sub)
    register_import(sub)
    from replay_tui.cli import compare, restore, serve

    serve.register(sub)
    compare.register(sub)
    restore.register(sub)
    return parser


def _normalise_argv(argv: Sequence[str]) -> list[str]:
    """``replay-tui rec.db ...`` means ``replay-tui open rec.db ...``."""
    argv = list(argv)
    if argv and argv[0] not in COMMANDS and not argv[0].startswith("-"):
        return ["open", *argv]
    return argv


def main(argv: Sequence[str] | None = None) -> int:
    args_list = _normalise_argv(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not args_list:
        parser.print_help()
        return 2
    command: list[str] | None = None
    if args_list[0] in AFTER_DASHES and "--" in args_list:  # DB comes first: the command is what follows --
        cut = args_list.index("--")
        args_list, command = args_list[:cut], args_list[cut + 1:]
    args = parser.parse_args(args_list)
    if command is not None:
        args.command = command
    handler: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None) or HANDLERS.get(
        args.command)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return handler(args)
    except UsageError as exc:
        print(f"{PROG} {exc.command}: error: {safe(str(exc))} (see '{PROG} {exc.command} --help')", file=sys.stderr)
        return 2
    except RecordingError as exc:
        print(f"{PROG}: error: {safe(str(exc))}", file=sys.stderr)  # names in errors are recorded text
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        try:
            sys.stdout.close()
        except Exception:
            pass
        return 0
    except Exception as exc:
        if os.environ.get("REPLAY_TUI_DEBUG"):
            raise
        print(f"{PROG}: internal error: {type(exc).__name__}: {safe(str(exc))} "
              "(set REPLAY_TUI_DEBUG=1 for a traceback)", file=sys.stderr)
        return 70


def _run(coro: Awaitable[int]) -> int:
    return asyncio.run(coro)  # type: ignore[arg-type]


# --- handlers -------------------------------------------------------------------

def _cmd_sessions(args: argparse.Namespace) -> int:
    from replay_tui.cli import commands
    return _run(commands.sessions(args.db, as_json=args.json))


def _cmd_show(args: argparse.Namespace) -> int:
    from replay_tui.cli import commands
    return _run(commands.show(args.db, args.session, args.at, args.resource, as_json=args.json))


def _cmd_diff(args: argparse.Namespace) -> int:
    from replay_tui.cli import commands
    return _run(commands.diff(args.db, args.session, args.from_, args.to, args.resource,
                              all_fields=args.all_fields, extra_ignore=args.ignore, as_json=args.json))


def _cmd_stats(args: argparse.Namespace) -> int:
    from replay_tui.cli import commands
    return _run(commands.stats(args.db, args.session, as_json=args.json))


def _cmd_analyze(args: argparse.Namespace) -> int:
    from replay_tui.cli import commands
    return _run(commands.analyze(args.db, args.session, slow_ms=args.slow_ms, window_s=args.window,
                                 hot_min=args.hot_min, as_json=args.json))


def _cmd_open(args: argparse.Namespace) -> int:
    from replay_tui.cli import commands
    return commands.open_interactive(args.db, args.session, follow=args.follow)


def _cmd_demo(args: argparse.Namespace) -> int:
    from importlib import resources

    from replay_tui.cli import commands
    package, name = DEMO_RESOURCE
    with resources.as_file(resources.files(package).joinpath(name)) as path:
        return commands.open_interactive(str(commands.ensure_demo(path)), args.session, follow=False)


def _cmd_when(args: argparse.Namespace) -> int:
    from replay_tui.cli import timetravel
    return _run(timetravel.when(args.db, args.session, args.field, before=args.before, after=args.after,
                                all_changes=args.all_changes, as_json=args.json))


def _cmd_why(args: argparse.Namespace) -> int:
    from replay_tui.cli import timetravel
    return _run(timetravel.why(args.db, args.session, args.at, args.resource, args.field,
                               max_links=args.max_links, as_json=args.json))


def _cmd_query(args: argparse.Namespace) -> int:
    from replay_tui.cli import timetravel
    return _run(timetravel.run_query(args.db, args.session, " ".join(args.expression), limit=args.limit,
                                     as_json=args.json))


def _cmd_report(args: argparse.Namespace) -> int:
    from replay_tui.cli import report
    fmt = args.format
    if fmt is None:  # from --out's extension; an unknown one is refused, never silently Markdown
        fmt = report.format_for(args.out, or_else=", or say --format md|json|html") if args.out else "md"
    return _run(report.report(args.db, args.session, fmt=fmt, out=args.out, slow_ms=args.slow_ms))


def _cmd_check(args: argparse.Namespace) -> int:
    from replay_tui.cli import check
    return check.check(args.db, quick=args.quick, as_json=args.json)


HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "sessions": _cmd_sessions, "show": _cmd_show, "diff": _cmd_diff, "stats": _cmd_stats,
    "analyze": _cmd_analyze, "open": _cmd_open, "demo": _cmd_demo,
    "when": _cmd_when, "why": _cmd_why, "query": _cmd_query, "report": _cmd_report, "check": _cmd_check,
}


def run() -> None:  # pragma: no cover - the console script
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    run()
