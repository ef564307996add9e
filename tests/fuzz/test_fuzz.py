"""The fuzzers, each run for a bounded time in its own process (issue 11, "Also").

``INFERPROOF_FUZZ_SECONDS`` sets each target's time (default 3 s, so the ten
targets and their start-up stay under about a minute); raise it for a longer
local run, or run one target alone: ``python -m tests.fuzz._run bundle --seconds 600``.
``INFERPROOF_FUZZ_ENGINE=mutate`` picks the mutation engine where atheris is
installed. A failure shows the traceback and the file holding the input that
broke the property: keep it as ``tests/fuzz/vectors/<target>/<what-it-triggers>``
(``test_vectors.py`` replays it) and fix the code.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from ._names import NAMES

REPO = Path(__file__).resolve().parents[2]
SECONDS = float(os.environ.get("INFERPROOF_FUZZ_SECONDS", "3"))
ENGINE = os.environ.get("INFERPROOF_FUZZ_ENGINE")
# Start-up (imports, loading the material, libFuzzer's first pass over the seeds) comes on
# top of the fuzzing time; past this the run itself hangs, which is a failure too.
STARTUP_SECONDS = 120


@dataclass(frozen=True)
class FuzzRun:
    returncode: int
    output: str
    artifacts: tuple[Path, ...]

    @property
    def seeds(self) -> int:
        found = re.search(r"fuzz: \S+: (\d+) seeds", self.output)
        return int(found.group(1)) if found else -1

    @property
    def runs(self) -> int:
        found = re.findall(r"Done (\d+) runs", self.output)
        return int(found[-1]) if found else 0

    def explain(self) -> str:
        files = ", ".join(str(p) for p in self.artifacts) or "none"
        tail = "\n".join(self.output.splitlines()[-60:])
        return f"exit {self.returncode}; inputs that broke the property: {files}\n{tail}"


def fuzz(
    name: str,
    material: Path,
    work: Path,
    seconds: float,
    *extra: str,
    engine: str | None = ENGINE,
) -> FuzzRun:
    """Run ``python -m tests.fuzz._run name`` and collect what it found."""
    artifacts = work / "artifacts"
    args = [sys.executable, "-m", "tests.fuzz._run", name, "--seconds", str(seconds)]
    args += ["--material", str(material), "--artifacts", str(artifacts)]
    args += ["--corpus", str(work / "corpus"), *extra]
    if engine:
        args += ["--engine", engine]
    env = dict(os.environ, INFERPROOF_HOME=str(work / "home"))
    proc = subprocess.run(
        args,
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # atheris prints tracebacks on stdout, libFuzzer on stderr
        text=True,
        errors="replace",
        timeout=seconds + STARTUP_SECONDS,
    )
    found = tuple(sorted(artifacts.glob("*"))) if artifacts.exists() else ()
    return FuzzRun(proc.returncode, proc.stdout, found)


@pytest.mark.parametrize("name", NAMES)
def test_no_input_breaks_the_property(name: str, material_root: Path, tmp_path: Path) -> None:
    run = fuzz(name, material_root, tmp_path, SECONDS)
    assert run.returncode == 0 and not run.artifacts, run.explain()
    # It fuzzed: more inputs ran than the seeds it started from.
    assert run.runs > run.seeds > 0, run.explain()
