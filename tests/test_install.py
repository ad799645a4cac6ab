"""replay-tui as a user installs it: a wheel built from this tree, installed into a fresh
virtualenv, run from an unrelated directory — never from the checkout.

Everything else in the suite runs from the checkout (an editable install); this module is
what catches a stylesheet or the demo missing from the wheel, a generic top-level package
leaking into site-packages, or test support (the emulator, kmock) shipped in the product.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
TMUX = shutil.which("tmux")


@dataclass
class Installed:
    wheel: Path
    venv: Path
    cwd: Path  # an empty directory far from the checkout

    @property
    def exe(self) -> Path:
        return self.venv / "bin" / "replay-tui"

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def run(self, *args: str, timeout: float = 120, env: dict[str, str] | None = None,
            ) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.exe), *args], cwd=self.cwd, capture_output=True, text=True,
                              timeout=timeout, env=env or clean_env())

    def demo(self) -> Path:
        out = subprocess.run([str(self.python), "-c", "from importlib import resources; "
                              "print(resources.files('replay_tui') / 'demo' / 'demo.db')"],
                             cwd=self.cwd, capture_output=True, text=True, check=True, env=clean_env())
        return Path(out.stdout.strip())


def clean_env() -> dict[str, str]:
    """The user's environment without anything that points back at the checkout."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "COLUMNS", "LINES")
           and not k.startswith("PYTEST")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if not p.startswith(str(ROOT)))
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    base = tmp_path_factory.mktemp("install")
    dist = base / "dist"
    # ``pip wheel .`` builds exactly what ``pip install .`` / ``pipx install .`` would install.
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(dist), str(ROOT)],
                   check=True, capture_output=True, text=True, timeout=600)
    wheel = next(dist.glob("replay_tui-*.whl"))
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    proc = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)],
                          capture_output=True, text=True, timeout=900, env=clean_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    cwd = base / "elsewhere"
    cwd.mkdir()
    yield Installed(wheel, venv, cwd)


def test_the_wheel_installs_one_package_with_its_data_and_no_test_support(installed: Installed) -> None:
    names = zipfile.ZipFile(installed.wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"replay_tui"}
    for needed in ("replay_tui/tui/app.tcss", "replay_tui/demo/demo.db", "replay_tui/py.typed",
                   "replay_tui/engine/store.py", "replay_tui/recorder/proxy.py", "replay_tui/cli/main.py",
                   "replay_tui/server/apiserver.py", "replay_tui/engine/compare.py"):
        assert needed in names
    leaked = [n for n in names if any(part in n for part in (
        "/testing/", "tests/", "benchmarks", "generator.py", "synth.py", "make_demo", "emulator", "operators/"))]
    assert leaked == []
    for name in names:
        if name.endswith(".py"):
            text = zipfile.ZipFile(installed.wheel).read(name).decode()
            assert not re.search(r"^\s*(import|from)\s+(kmock|kopf|tests|benchmarks)\b", text, re.M), name
    site = next((installed.venv / "lib").glob("python*/site-packages"))
    for generic in ("engine", "recorder", "tui", "cli", "benchmarks", "fixtures", "tests"):
        assert not (site / generic).exists(), f"{generic} landed at the top of site-packages"


def test_version(installed: Installed) -> None:
    proc = installed.run("--version")
    assert proc.returncode == 0, proc.stderr
    version = subprocess.run([str(installed.python), "-c", "import replay_tui; print(replay_tui.__version__)"],
                             capture_output=True, text=True, env=clean_env(), cwd=installed.cwd).stdout.strip()
    assert proc.stdout.strip() == f"replay-tui {version}"
    assert version[0].isdigit() and "unknown" not in version


def test_every_read_only_command_runs_on_the_installed_demo(installed: Installed) -> None:
    demo = installed.demo()
    before = {p.name: p.stat().st_mtime_ns for p in demo.parent.iterdir()}
    out = installed.run("sessions", str(demo))
    assert out.returncode == 0, out.stderr
    assert "healthy-operator" in out.stdout and "buggy-operator" in out.stdout
    s = ["-s", "buggy-operator"]
    runs = {
        "show": installed.run("show", str(demo), *s, "--at", "20"),
        "diff": installed.run("diff", str(demo), *s, "--from", "1", "--to", "50%"),
        "stats": installed.run("stats", str(demo), *s, "--json"),
        "analyze": installed.run("analyze", str(demo), *s),
        "query": installed.run("query", str(demo), *s, "status=409", "--limit", "3"),
        "report": installed.run("report", str(demo), *s, "--out", "report.html"),
    }
    for name, proc in runs.items():
        assert proc.returncode == 0, f"{name}: {proc.stderr}"
        assert "Traceback" not in proc.stderr
    assert json.loads(runs["stats"].stdout)["operations"] > 100
    assert "Conflict" in runs["query"].stdout or "409" in runs["query"].stdout
    assert (installed.cwd / "report.html").read_text().startswith("<!DOCTYPE html>")
    shown = json.loads(installed.run("show", str(demo), *s, "--at", "30", "--json").stdout)
    resource = shown["resource"]
    assert resource.startswith("Report")
    when = installed.run("when", str(demo), *s, "--field", f"{resource}:.status")
    assert when.returncode == 0 and "30" in when.stdout, when.stderr
    why = installed.run("why", str(demo), *s, "--at", "30", "-r", resource)
    assert why.returncode == 0 and "30" in why.stdout, why.stderr
    # reading never modifies the recording, and leaves nothing beside it in site-packages
    assert {p.name: p.stat().st_mtime_ns for p in demo.parent.iterdir()} == before


def test_a_bad_file_is_one_line_and_exit_1(installed: Installed) -> None:
    (installed.cwd / "junk.db").write_bytes(b"not a database" * 100)
    proc = installed.run("sessions", "junk.db")
    assert proc.returncode == 1
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_import_from_the_installed_command(installed: Installed) -> None:
    trace = installed.cwd / "trace.log"
    shutil.copy(DATA / "cassandra-operator-recreate.sieve-server.log", trace)
    proc = installed.run("import", "sieve", str(trace), "--db", "sieve.db")
    assert proc.returncode == 0, proc.stderr
    count = sqlite3.connect(installed.cwd / "sieve.db").execute("SELECT count(*) FROM operations").fetchone()[0]
    assert count == 175


OPERATOR = textwrap.dedent("""
    from kubernetes import client, config
    config.load_kube_config()   # the kubeconfig replay-tui record wrote
    api = client.CoreV1Api()
    api.list_namespace()
    api.create_namespaced_config_map("default", {"metadata": {"name": "installed"}, "data": {"a": "1"}})
    api.read_namespaced_config_map("installed", "default")
""")


def test_record_from_the_installed_command(installed: Installed, tmp_path: Path) -> None:
    from tests.support.emulator import EmulatorThread  # the emulator is test support, run from the checkout

    with EmulatorThread() as emu:
        kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig")
        (installed.cwd / "op.py").write_text(OPERATOR)
        proc = installed.run("record", "--db", "rec.db", "--kubeconfig", str(kubeconfig), "--",
                             str(installed.python), "op.py")
    assert proc.returncode == 0, proc.stderr
    verbs = [r[0] for r in sqlite3.connect(installed.cwd / "rec.db").execute(
        "SELECT verb FROM operations ORDER BY seq")]
    assert verbs == ["list", "create", "get"]


READER = textwrap.dedent("""
    from kubernetes import client, config
    config.load_kube_config()   # the kubeconfig replay-tui serve wrote
    reports = client.CustomObjectsApi().list_namespaced_custom_object("example.com", "v1", "default", "reports")
    print(",".join(r["metadata"]["name"] for r in reports["items"]))
""")


def test_serve_fork_and_compare_from_the_installed_command(installed: Installed) -> None:
    demo = installed.demo()
    before = {p.name: p.stat().st_mtime_ns for p in demo.parent.iterdir()}
    (installed.cwd / "reader.py").write_text(READER)
    served = installed.run("serve", str(demo), "-s", "buggy-operator", "--at", "300", "--",
                           str(installed.python), "reader.py")
    assert served.returncode == 0 and served.stdout.strip() == "daily,weekly", served.stderr
    forked = installed.run("serve", str(demo), "-s", "buggy-operator", "--at", "300", "--fork", "--record-to",
                           "fork.db", "--", str(installed.python), "reader.py")
    assert forked.returncode == 0 and forked.stdout.strip() == "daily,weekly", forked.stderr
    compared = installed.run("compare", f"{demo}:buggy-operator", "fork.db", "--json")
    assert compared.returncode == 0, compared.stderr
    assert json.loads(compared.stdout)["b"]["fork"]["seq"] == 300
    assert {p.name: p.stat().st_mtime_ns for p in demo.parent.iterdir()} == before  # the demo untouched


@pytest.mark.skipif(TMUX is None, reason="tmux is not installed (.ci/run installs it on CI)")
def test_the_installed_tui_opens_the_demo_and_q_exits_0(installed: Installed, tmp_path: Path) -> None:
    name = f"replay-tui-install-{uuid.uuid4().hex[:8]}"
    tmux = [str(TMUX), "-L", name]
    status = tmp_path / "status"
    line = (f"cd {installed.cwd} && env -u COLUMNS -u LINES -u VIRTUAL_ENV -u PYTHONPATH {installed.exe} demo; "
            f"echo $? > {status}; sleep 30")
    subprocess.run([*tmux, "-f", "/dev/null", "new-session", "-d", "-s", name, "-x", "120", "-y", "40", line],
                   check=True)
    try:
        def screen() -> str:
            return subprocess.run([*tmux, "capture-pane", "-t", name, "-p"], capture_output=True,
                                  text=True).stdout

        deadline = time.monotonic() + 30
        while "buggy-operator" not in screen():
            assert time.monotonic() < deadline, f"no session picker; the screen:\n{screen()}"
            time.sleep(0.1)
        assert "healthy-operator" in screen()
        subprocess.run([*tmux, "send-keys", "-t", name, "q"], check=True)
        deadline = time.monotonic() + 15
        while not status.exists() or not status.read_text().strip():
            assert time.monotonic() < deadline, f"q did not exit; the screen:\n{screen()}"
            time.sleep(0.1)
        assert status.read_text().strip() == "0"
        assert "Traceback" not in screen()
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)
