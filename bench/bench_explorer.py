"""Time to verify one bundle in the browser (verify.js in Chromium) against the CLI.

The bundle is the corpus's good ONNX bundle (tests/explorer/vectors/good_onnx.json)
with its pinned node and log keys. Rows, all in one run:

- the CLI, `inferproof verify BUNDLE` as a user runs it (a new process each time: the
  reference the issue names);
- the Python library in one process (`Verifier.check`), what the CLI spends after start;
- verify.js in Debian's Chromium, driven by Playwright: the page loads the module once,
  then each verification is one `verifyBundle` call on the bundle's JSON text, timed in
  the page with `performance.now()`, and the first call (the page's module load and
  WebCrypto's warm-up) reported apart;
- verify.js under Node.js, the same module the CI corpus runs.

Run: .venv/bin/python bench/bench_explorer.py [--runs 50]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests._chromium import CHROMIUM_ARGS, chromium_path  # noqa: E402

from inferproof.log import VerifierKey  # noqa: E402
from inferproof.receipts import Bundle  # noqa: E402
from inferproof.verify import Policy, TrustRoot, Verifier  # noqa: E402

VECTORS = ROOT / "tests" / "explorer" / "vectors"
STATIC = ROOT / "src" / "inferproof" / "node" / "explorer" / "static"
BIN = Path(sys.executable).parent


def _pins() -> dict[str, list[str]]:
    pins: dict[str, list[str]] = json.loads((VECTORS / "manifest.json").read_text())["pins"][
        "default"
    ]
    return pins


def _python(text: str, runs: int) -> list[float]:
    pins = _pins()
    trust = TrustRoot.from_keys([base64.b64decode(k) for k in pins["nodeKeys"]])
    logs = [VerifierKey.parse(k) for k in pins["logKeys"]]
    verifier = Verifier(TrustRoot(trust.node_keys, log_keys={k.name: k for k in logs}), Policy())
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        report = verifier.check(Bundle.from_json(json.loads(text)))
        times.append(time.perf_counter() - started)
        assert report.verified, report.first_failure
    return times


def _cli(bundle: Path, runs: int) -> list[float]:
    pins = _pins()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        (home / "trust" / "nodes").mkdir(parents=True)
        (home / "trust" / "logs").mkdir(parents=True)
        (home / "trust" / "nodes" / "node.pub").write_text(pins["nodeKeys"][0] + "\n")
        (home / "trust" / "logs" / "log.vkey").write_text(pins["logKeys"][0] + "\n")
        env = dict(os.environ, INFERPROOF_HOME=str(home))
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            done = subprocess.run([str(BIN / "inferproof"), "verify", str(bundle)], env=env,
                                  capture_output=True, text=True)  # fmt: skip
            times.append(time.perf_counter() - started)
            assert done.returncode == 0, done.stdout + done.stderr
    return times


_PAGE = """<!doctype html><meta charset="utf-8"><title>bench</title>
<script type="module" src="/bench.js"></script>"""
_SCRIPT = """import { verifyBundle } from "/verify.js";
window.bench = async (text, pins, runs) => {
  const times = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const r = await verifyBundle(text, pins);
    times.push(performance.now() - t0);
    if (!r.verified) throw new Error(JSON.stringify(r.checks));
  }
  return times;
};
window.ready = true;
"""


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def _serve(folder: Path) -> ThreadingHTTPServer:
    (folder / "index.html").write_text(_PAGE)
    (folder / "bench.js").write_text(_SCRIPT)
    (folder / "verify.js").write_bytes((STATIC / "verify.js").read_bytes())
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _browser(text: str, runs: int) -> tuple[float, list[float]]:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        server = _serve(Path(tmp))
        browser = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{server.server_port}/index.html")
            page.wait_for_function("window.ready === true")
            first = page.evaluate("([t, p]) => window.bench(t, p, 1)", [text, _pins()])[0]
            times = page.evaluate("([t, p, n]) => window.bench(t, p, n)", [text, _pins(), runs])
        finally:
            browser.close()
            server.shutdown()
    return first / 1000, [t / 1000 for t in times]


_NODE = """const { verifyBundle } = await import(process.argv[1]);
const text = (await import("node:fs")).readFileSync(process.argv[2], "utf8");
const pins = JSON.parse(process.argv[3]); const runs = Number(process.argv[4]);
const times = [];
for (let i = 0; i < runs + 1; i++) {
  const t0 = performance.now(); const r = await verifyBundle(text, pins);
  times.push(performance.now() - t0); if (!r.verified) process.exit(3);
}
console.log(JSON.stringify(times));
"""


def _node(bundle: Path, runs: int) -> tuple[float, list[float]]:
    done = subprocess.run(
        [str(BIN / "node"), "--input-type=module", "-e", _NODE, (STATIC / "verify.js").as_uri(),
         str(bundle), json.dumps(_pins()), str(runs)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    times = [t / 1000 for t in json.loads(done.stdout)]
    return times[0], times[1:]


def _row(name: str, times: list[float], reference: float, first: float | None = None) -> str:
    med = statistics.median(times)
    p90 = sorted(times)[int(0.9 * (len(times) - 1))]
    first_text = f"{first * 1000:.1f}" if first is not None else "-"
    return (
        f"| {name} | {med * 1000:.2f} | {p90 * 1000:.2f} | {first_text} | {reference / med:.1f}x |"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=50)
    runs = parser.parse_args().runs
    bundle = VECTORS / "good_onnx.json"
    text = bundle.read_text()
    cli = _cli(bundle, max(5, runs // 5))
    library = _python(text, runs)
    b_first, browser = _browser(text, runs)
    n_first, node = _node(bundle, runs)
    ref = statistics.median(cli)
    print(f"bundle: {bundle.name} ({len(text):,} bytes), {runs} runs each ({len(cli)} for the CLI)")
    print("| verifier | median (ms) | p90 (ms) | first call (ms) | speed vs CLI |")
    print("|---|---:|---:|---:|---:|")
    print(_row("CLI `inferproof verify` (new process each, reference)", cli, ref))
    print(_row("Python library, `Verifier.check` in one process", library, ref))
    print(_row("verify.js in Chromium (Playwright)", browser, ref, b_first))
    print(_row("verify.js in Node.js", node, ref, n_first))


if __name__ == "__main__":
    main()
