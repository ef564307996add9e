"""``inferproof workflow ...`` in real processes, as a user runs it: create, refusals,
run, history, export, verify (and a history with a run deleted named as a gap), and
two scheduler processes on one database that never run the same tick."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from inferproof.stores import SQLWorkflowStore
from tests._cli import inferproof

COLS = "income,debt,age,late"
SAFE = {"income": 150, "debt": 0.05, "age": 50, "late": 0}


@pytest.fixture()
def cli(home: Path, credit_model: Any, server: Any, tmp_path: Path) -> Any:
    url, routes = server
    routes["/feed"] = (200, json.dumps([SAFE]).encode(), {})
    env = dict(os.environ, INFERPROOF_HOME=str(home), COLUMNS="200")
    model = tmp_path / "credit.onnx"
    model.write_bytes(credit_model[0])

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return inferproof(env, *args)

    assert run("model", "push", str(model), "--name", "credit", "--version", "1").returncode == 0
    return run, url + "/feed", routes, env


def _create(run: Any, url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return run("workflow", "create", "risk", "--model", "credit:1", "--feed", url,  # type: ignore[no-any-return]
               "--columns", COLS, "--every", "60s", *extra)  # fmt: skip


def test_create_run_history_export_verify(cli: Any, tmp_path: Path) -> None:
    run, url, _, _ = cli
    made = _create(run, url, "--alert", "output.probabilities[0][1] > 0.5")
    assert made.returncode == 0, made.stderr
    assert "definition sha256:" in made.stdout
    for _ in range(3):
        assert run("workflow", "run", "risk").returncode == 0
    listed = json.loads(run("workflow", "list", "--json").stdout)
    assert [(w["name"], w["runs"], w["state"]) for w in listed] == [("risk", 3, "active")]
    history = json.loads(run("workflow", "history", "risk", "--json").stdout)
    assert [h["run"] for h in history] == [1, 2, 3]
    assert history[1]["previous"] == history[0]["digest"]
    out = tmp_path / "risk.history.json"
    assert run("workflow", "export", "risk", "-o", str(out)).returncode == 0
    ok = run("workflow", "verify", "--file", str(out))
    assert ok.returncode == 0 and "VERIFIED" in ok.stdout, ok.stdout + ok.stderr
    obj = json.loads(out.read_text())
    del obj["runs"][1]
    gap = tmp_path / "gap.json"
    gap.write_text(json.dumps(obj))
    bad = run("workflow", "verify", "--file", str(gap))
    assert bad.returncode == 1
    assert "workflow.chain" in bad.stderr and "run 2 is missing" in bad.stderr


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--alert", "output.nothing > 1"), "nothing"),
        (("--alert", "open('x')"), "alert"),
        (("--columns", "income,debt"), "model expects"),
        (("--every", "fast"), "--every"),
        (("--cron", "* * *", "--every", "60s"), "one of every or cron"),
    ],
)
def test_bad_definitions_exit_2_with_one_line(
    cli: Any, extra: tuple[str, ...], message: str
) -> None:
    run, url, _, _ = cli
    made = _create(run, url, *extra)
    assert made.returncode == 2, made.stdout + made.stderr
    assert message in made.stderr and "Traceback" not in made.stderr
    assert len(made.stderr.strip().splitlines()) == 1
    assert json.loads(run("workflow", "list", "--json").stdout) == []


def test_pause_resume_delete_and_unknown(cli: Any) -> None:
    run, url, _, _ = cli
    assert _create(run, url).returncode == 0
    assert run("workflow", "pause", "risk").returncode == 0
    assert json.loads(run("workflow", "show", "risk", "--json").stdout)["state"] == "paused"
    paused = run("workflow", "run", "risk")
    assert paused.returncode == 2 and "paused" in paused.stderr
    assert run("workflow", "resume", "risk").returncode == 0
    assert run("workflow", "delete", "risk", "--yes").returncode == 0
    gone = run("workflow", "show", "risk")
    assert gone.returncode == 2 and "no workflow 'risk'" in gone.stderr


# A scheduler process: it starts, says so (a file), waits for the other one, then
# runs until it has fired FIRES ticks while both run (a bound, not a sleep, so a slow
# start on a loaded machine changes nothing) and prints how many it fired.
_SCHEDULER = """
import pathlib, sys, threading, time
from inferproof import LocalNode
from inferproof.workflows import open_workflows
mine, other, want = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), int(sys.argv[3])
fired, both = 0, threading.Event()
with LocalNode() as node, open_workflows(node) as wf:
    tick = wf.tick
    def counting(name, **kw):
        global fired
        fired += both.is_set()
        return tick(name, **kw)
    wf.tick = counting
    wf.start()
    mine.touch()
    deadline = time.monotonic() + 120
    while not other.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    both.set()
    while fired < want and time.monotonic() < deadline:
        time.sleep(0.05)
print(fired)
"""


def test_two_scheduler_processes_never_run_the_same_tick(
    cli: Any, home: Path, tmp_path: Path
) -> None:
    run, url, _, env = cli
    assert run("workflow", "create", "risk", "--model", "credit:1", "--feed", url,
               "--columns", COLS, "--every", "1s").returncode == 0  # fmt: skip
    a, b = tmp_path / "a.ready", tmp_path / "b.ready"
    procs = [subprocess.Popen([sys.executable, "-c", _SCHEDULER, str(x), str(y), "4"],
                              env=env, stdout=subprocess.PIPE, text=True)
             for x, y in ((a, b), (b, a))]  # fmt: skip
    fired = [int(p.communicate(timeout=180)[0].split()[-1]) for p in procs]
    # Both schedulers were firing ticks the whole time ...
    assert all(n >= 4 for n in fired), fired
    store = SQLWorkflowStore("sqlite:///" + str(home / "workflows.sqlite"))
    try:
        runs, claims = store.runs("risk"), store.claims("risk")
    finally:
        store.close()
    # ... but every tick ran once: one claim per tick, one run per claim, no repeats.
    ticks = [r.tick for r in runs]
    assert len(ticks) == len(set(ticks)) and [r.run for r in runs] == list(range(1, len(runs) + 1))
    assert sorted(t for t, _, r, _ in claims if r is not None) == sorted(ticks)
    # (Which process fires a tick is APScheduler's: it advances the job's next run in
    # the shared table, so most ticks reach one process only; a tick that reaches both
    # is the claim's to settle, as test_the_same_tick_runs_once shows deterministically.)
    verified = run("workflow", "verify", "risk")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_the_commands_against_a_node(cli: Any, tmp_path: Path) -> None:
    """``--node``: the same commands over HTTP, on a real ``inferproof serve``."""
    import httpx

    from inferproof.node import TokenStore

    run, url, _, env = cli
    node_home = tmp_path / "node-home"
    token = TokenStore(node_home).create("ops")
    proc = subprocess.Popen(
        [sys.executable, "-m", "inferproof", "serve", "--host", "127.0.0.1", "--port", "0",
         "--feed-host", "127.0.0.1"],
        env=dict(env, INFERPROOF_HOME=str(node_home)), stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        node = proc.stdout.readline().strip().removeprefix("listening on ")
        for _ in range(600):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(node + "/healthz", timeout=2).status_code == 200:
                    break
            time.sleep(0.05)
        model = tmp_path / "credit.onnx"
        client_env = ["--node", node, "--token", token]
        assert run("model", "push", str(model), "--name", "credit", "--version", "1",
                   *client_env).returncode == 0  # fmt: skip
        made = run("workflow", "create", "risk", "--model", "credit:1", "--feed", url,
                   "--columns", COLS, "--every", "1h", *client_env)  # fmt: skip
        assert made.returncode == 0, made.stderr
        denied = run("workflow", "create", "x", "--model", "credit:1", "--feed",
                     "http://10.0.0.1/feed", "--columns", COLS, "--every", "1h", *client_env)  # fmt: skip
        assert denied.returncode == 2 and "allow-list" in denied.stderr
        ran = run("workflow", "run", "risk", *client_env)
        assert ran.returncode == 0 and "run 1: ok (receipt verified)" in ran.stdout, ran.stderr
        shown = json.loads(run("workflow", "show", "risk", "--json", "--node", node).stdout)
        assert shown["runs"] == 1 and shown["state"] == "active"
        assert run("workflow", "pause", "risk", *client_env).returncode == 0
        verified = run("workflow", "verify", "risk", "--node", node)
        assert verified.returncode == 0 and "VERIFIED" in verified.stdout, verified.stderr
        anonymous = run("workflow", "delete", "risk", "--yes", "--node", node)
        assert anonymous.returncode == 2 and "Traceback" not in anonymous.stderr
        assert run("workflow", "delete", "risk", "--yes", *client_env).returncode == 0
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def test_verify_prints_a_hostile_history_as_text_never_markup(cli: Any, tmp_path: Path) -> None:
    # A history file is outside input: a check's detail that quotes it ("[/]" closes no
    # Rich tag) must be printed as it is, not raise MarkupError (a traceback).
    run, url, _, _ = cli
    assert _create(run, url).returncode == 0
    assert run("workflow", "run", "risk").returncode == 0
    out = tmp_path / "risk.history.json"
    assert run("workflow", "export", "risk", "-o", str(out)).returncode == 0
    obj = json.loads(out.read_text())
    obj["runs"][0]["bundle"]["outputs"] = {"[/]evil": [[0.5]]}
    out.write_text(json.dumps(obj))
    bad = run("workflow", "verify", "--file", str(out))
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "Traceback" not in bad.stderr and "MarkupError" not in bad.stderr
    assert "run 1: receipt FAILED (" in bad.stdout and "[/]evil" in bad.stdout, bad.stdout
