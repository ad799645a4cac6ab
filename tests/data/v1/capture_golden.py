"""Capture every read-only command's --json output on the v1 recording.

Run once, from the checkout root, with release 1's code (schema 1): the output is what
``tests/test_v1_compat.py`` holds today's code to.  Not run by the tests.
"""

import json
import subprocess
from pathlib import Path

DB = "tests/data/v1/demo-v1.db"
BUGGY, HEALTHY = ["-s", "buggy-operator"], ["-s", "healthy-operator"]
CMDS: dict[str, list[str]] = {"sessions": ["sessions", DB, "--json"]}
for s in ("healthy-operator", "buggy-operator"):
    S = ["-s", s]
    CMDS[f"{s}/stats"] = ["stats", DB, *S, "--json"]
    CMDS[f"{s}/analyze"] = ["analyze", DB, *S, "--json"]
    CMDS[f"{s}/report"] = ["report", DB, *S, "--format", "json"]
    for at in ("1", "25", "50%", "100%"):
        CMDS[f"{s}/show-{at}"] = ["show", DB, *S, "--at", at, "--json"]
    CMDS[f"{s}/diff-state"] = ["diff", DB, *S, "--from", "0", "--to", "100%", "--json"]
    CMDS[f"{s}/query-changed"] = ["query", DB, *S, "changed=.status", "--json"]
    CMDS[f"{s}/query-verb"] = ["query", DB, *S, "verb=patch,update status>=200", "--limit", "40", "--json"]
    CMDS[f"{s}/why-40"] = ["why", DB, *S, "--at", "40", "--json"]
CMDS["buggy-operator/when-lastsync"] = ["when", DB, *BUGGY, "--field", "Report/default/daily:.status.lastSync",
                                        "--json"]
CMDS["buggy-operator/when-after"] = ["when", DB, *BUGGY, "--field", "Report/default/weekly:.status.lastSync",
                                     "--after", "200", "--json"]
CMDS["buggy-operator/when-before"] = ["when", DB, *BUGGY, "--field", "Report/default/weekly:.status",
                                      "--before", "300", "--all", "--json"]
CMDS["buggy-operator/when-rv"] = ["when", DB, *BUGGY, "--field",
                                  "ConfigMap/default/daily-summary:.metadata.resourceVersion", "--json"]
CMDS["buggy-operator/diff-obj"] = ["diff", DB, *BUGGY, "--from", "50", "--to", "400", "-r",
                                   "Report/default/daily", "--json"]
CMDS["buggy-operator/query-changed-deep"] = ["query", DB, *BUGGY, "changed=.metadata.finalizers,.spec.schedule",
                                             "--json"]
CMDS["healthy-operator/when-data"] = ["when", DB, *HEALTHY, "--field", "ConfigMap/default/hello-greeting:.data",
                                      "--json"]
CMDS["healthy-operator/when-status"] = ["when", DB, *HEALTHY, "--field", "Greeting/default/hello:.status", "--json"]

out = {}
for name, args in CMDS.items():
    proc = subprocess.run([".venv/bin/replay-tui", *args], capture_output=True, text=True, check=True)
    out[name] = {"args": args, "json": json.loads(proc.stdout)}
Path("tests/data/v1/demo-v1-golden.json").write_text(json.dumps(out, indent=1, sort_keys=True))
