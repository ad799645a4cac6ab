"""Capture every read-only command's --json output on the v1 recording (run once, with the v1 code)."""
import json, subprocess, sys
DB = "tests/data/v1/demo-v1.db"
CMDS = {
    "sessions": ["sessions", DB, "--json"],
}
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
CMDS["buggy-operator/when-lastsync"] = ["when", DB, "-s", "buggy-operator", "--field", "Report/default/daily:.status.lastSync", "--json"]
CMDS["buggy-operator/when-after"] = ["when", DB, "-s", "buggy-operator", "--field", "Report/default/weekly:.status.lastSync", "--after", "200", "--json"]
CMDS["buggy-operator/when-before"] = ["when", DB, "-s", "buggy-operator", "--field", "Report/default/weekly:.status", "--before", "300", "--all", "--json"]
CMDS["buggy-operator/when-rv"] = ["when", DB, "-s", "buggy-operator", "--field", "ConfigMap/default/daily-summary:.metadata.resourceVersion", "--json"]
CMDS["buggy-operator/diff-obj"] = ["diff", DB, "-s", "buggy-operator", "--from", "50", "--to", "400", "-r", "Report/default/daily", "--json"]
CMDS["buggy-operator/query-changed-deep"] = ["query", DB, "-s", "buggy-operator", "changed=.metadata.finalizers,.spec.schedule", "--json"]
CMDS["healthy-operator/when-data"] = ["when", DB, "-s", "healthy-operator", "--field", "ConfigMap/default/hello-greeting:.data", "--json"]
CMDS["healthy-operator/when-status"] = ["when", DB, "-s", "healthy-operator", "--field", "Greeting/default/hello:.status", "--json"]
out = {}
for name, args in CMDS.items():
    p = subprocess.run([".venv/bin/replay-tui", *args], capture_output=True, text=True)
    assert p.returncode == 0, (name, p.stderr)
    text = p.stdout
    try:
        out[name] = {"args": args, "json": json.loads(text)}
    except json.JSONDecodeError:
        out[name] = {"args": args, "json": [json.loads(l) for l in text.strip().splitlines() if l.strip() not in ("[", "]")]} if False else {"args": args, "text": text}
json.dump(out, open("tests/data/v1/demo-v1-golden.json", "w"), indent=1, sort_keys=True)
print({k: ("json" if "json" in v else "text") for k, v in out.items()})
