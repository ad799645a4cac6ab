"""``replay-tui import {sieve,audit,kubestep}``: the importers on the command line.

Each sub-command prints one summary line per imported session on stdout and
returns 0; errors are ``RecordingError`` (one line, exit status 1, printed by
the main CLI).  Progress goes to stderr, only when it is a terminal.
"""

from __future__ import annotations

import argparse
import sys

from replay_tui.recorder.importers.common import ImportResult


def _print(results: list[ImportResult]) -> int:
    from replay_tui.engine.textsafe import safe

    for result in results:
        print(safe(result.summary()))
    sys.stdout.flush()
    return 0


def _sieve(args: argparse.Namespace) -> int:
    from replay_tui.recorder.importers.sieve import import_sieve
    return _print([import_sieve(args.log, args.db, session=args.session, redact=not args.no_redact)])


def _audit(args: argparse.Namespace) -> int:
    from replay_tui.recorder.importers.audit import import_audit
    return _print([import_audit(args.file, args.db, session=args.session, user=args.user,
                                user_agent=args.user_agent, redact=not args.no_redact)])


def _kubestep(args: argparse.Namespace) -> int:
    from replay_tui.recorder.importers.kubestep import import_kubestep
    return _print(import_kubestep(args.src, args.db, session=args.session, redact=not args.no_redact))


def _no_redact(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-redact", action="store_true",
                   help="store Secret values as they are (default: replaced by a keyed-hash marker)")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``import`` command and its sub-commands to a CLI's sub-parsers."""
    text = "import a trace recorded by another tool as a new session"
    parser = subparsers.add_parser("import", help=text, description=text)
    formats = parser.add_subparsers(dest="import_format", metavar="FORMAT", required=True)

    p = formats.add_parser("sieve", help="a Sieve learn trace (sieve-server.log)",
                           description="Import a Sieve learn trace (sieve-server.log).")
    p.add_argument("log", metavar="LOG", help="the Sieve learn trace")
    p.add_argument("--db", required=True, metavar="DB", help="recording to add the session to")
    p.add_argument("--session", "-s", metavar="NAME", help="session name (default: the file name)")
    _no_redact(p)
    p.set_defaults(func=_sieve)

    p = formats.add_parser("audit", help="a Kubernetes audit log (JSON lines)",
                           description="Import a Kubernetes API server audit log: audit.k8s.io "
                                       "Events as JSON lines, EventList batches, pretty-printed or "
                                       "concatenated JSON.")
    p.add_argument("file", metavar="FILE", help="the audit log (may be gzip-compressed)")
    p.add_argument("--db", required=True, metavar="DB", help="recording to add the session to")
    p.add_argument("--session", "-s", metavar="NAME", help="session name (default: the file name)")
    p.add_argument("--user", metavar="NAME",
                   help="only requests by this user (authenticated or impersonated)")
    p.add_argument("--user-agent", metavar="SUBSTRING",
                   help="only requests whose user agent contains this text (any case)")
    _no_redact(p)
    p.set_defaults(func=_audit)

    p = formats.add_parser("kubestep", help="a kubestep database",
                           description="Import a kubestep database: each of its sessions "
                                       "becomes a session of its own.")
    p.add_argument("src", metavar="SRC", help="the kubestep SQLite database")
    p.add_argument("--db", required=True, metavar="DB", help="recording to add the sessions to")
    p.add_argument("--session", "-s", metavar="ID", help="import only this kubestep session id")
    _no_redact(p)
    p.set_defaults(func=_kubestep)
