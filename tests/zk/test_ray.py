"""Proving on a real Ray started on loopback: proofs match local ones, a hostile worker's
answers are refused, and a cancelled job cancels its Ray task.

Ray runs here as a local head on this machine with two CPUs, no dashboard and no usage
statistics (RAY_USAGE_STATS_ENABLED=0); it is shut down after the module. (Ray 2.x
replaces a loopback node address with the machine's own, so the workers report that.)
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from inferproof import LocalNode
from inferproof.engine import RayProver
from inferproof.errors import VerificationError, ZkError
from inferproof.node._jobs import Jobs
from inferproof.proofs import zk
from inferproof.runtime import NamedInputs
from inferproof.verify import Policy

from .conftest import DECOMP, Env, Model

WAIT = 120.0


@pytest.fixture(scope="module")
def prover() -> Iterator[RayProver]:
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray_prover = RayProver(None, num_cpus=2)
    try:
        yield ray_prover
    finally:
        ray_prover.close()
    import ray

    assert not ray.is_initialized()


def test_a_proof_made_on_ray_verifies_and_matches_a_local_proof(
    prover: RayProver, setups: Any, env: Env, model_a: Model
) -> None:
    record = setups("a", "hashed", "hashed")
    x = model_a.samples[1]["x"]
    lines: list[str] = []
    remote = prover(record, {"x": x}, env.store, lines.append)
    local = zk.prove(record, {"x": x}, env.store)
    assert remote.instances == local.instances
    assert remote.quantised_output == local.quantised_output
    assert np.array_equal(remote.outputs[0], local.outputs[0])
    checks = zk.verify(record, remote, env.store, model_digest=model_a.digest,
                       output_values=remote.outputs, input_tensors={"x": x},
                       allow_dev_srs=True)  # fmt: skip
    assert all(c.passed for c in checks if c.name != zk.CHECK_REDERIVED), checks
    assert lines[0] == "submitted to Ray"
    node = _node_address()
    assert lines[1].startswith(f"proving on {node}/worker ")
    assert lines[2].startswith(f"verifying the proof from {node}/worker ")


def _node_address() -> str:
    import ray

    return str(ray.nodes()[0]["NodeManagerAddress"])


class FlippingWorker(RayProver):
    """The hostile-worker case: the real Ray task proves, and this wrapper flips one
    byte of the proof it returned, as a compromised worker would."""

    def run_remote(self, *args: Any, **kwargs: Any) -> tuple[bytes, str]:
        data, where = super().run_remote(*args, **kwargs)
        body = json.loads(data)
        raw = bytearray(bytes.fromhex(body["proof"]))
        raw[len(raw) // 2] ^= 0x01
        body["proof"] = raw.hex()
        return json.dumps(body).encode(), where


class OtherInputWorker(RayProver):
    """The hostile-worker case: a valid proof, but of another input than the one asked."""

    def run_remote(self, setup: Any, inputs: Any, *args: Any, **kwargs: Any) -> tuple[bytes, str]:
        other = {"x": np.asarray(inputs["x"]) + np.float32(0.5)}
        return super().run_remote(setup, other, *args, **kwargs)


class HugeWorker(RayProver):
    """The hostile-worker case: an answer far over the size cap."""

    def run_remote(self, *args: Any, **kwargs: Any) -> tuple[bytes, str]:
        _data, where = super().run_remote(*args, **kwargs)
        return b" " * (self.max_proof_bytes + 1), where


@pytest.mark.parametrize(
    ("worker", "check", "message"),
    [
        (FlippingWorker, "zk.proof", "was rejected: EZKL rejected the proof"),
        (OtherInputWorker, "zk.input", "was rejected: the proof's public input differs"),
        (HugeWorker, "zk.worker", "bytes, over the 8388608-byte cap"),
    ],
)
def test_a_hostile_workers_proof_is_rejected(
    prover: RayProver, setups: Any, env: Env, model_a: Model,
    worker: type[RayProver], check: str, message: str,
) -> None:  # fmt: skip
    hostile = worker(None)  # joins the module's Ray, owns nothing
    record = setups("a")
    x = model_a.samples[0]["x"]
    with pytest.raises(VerificationError) as caught:
        hostile(record, {"x": x}, env.store)
    assert caught.value.check == check
    assert message in str(caught.value)
    assert f"Ray worker {_node_address()}/worker " in str(caught.value)


def test_a_cancelled_job_cancels_its_ray_task(
    prover: RayProver, setups: Any, env: Env, model_a: Model
) -> None:
    record = setups("a")
    x = model_a.samples[0]["x"]
    proving, raised = threading.Event(), []

    class Report:
        """The job's progress, also telling the test when the Ray task is proving."""

        def __init__(self, progress: Any) -> None:
            self.progress, self.cancel_requested = progress, progress.cancel_requested

        def __call__(self, line: str) -> None:
            self.progress(line)
            if line.startswith("proving on"):
                proving.set()

    def work(progress: Any) -> Any:
        try:
            return prover(record, {"x": x}, env.store, Report(progress))
        except ZkError as exc:
            raised.append(exc)
            raise

    jobs = Jobs(1, 1, 600.0, 600.0, heartbeat=0.05)

    async def main() -> Any:
        job = jobs.submit("zk", "alice", work)
        assert await asyncio.to_thread(proving.wait, WAIT)
        state = jobs.cancel(job.id, "alice")
        assert state is not None and state.status == "cancelled"
        return job

    job = asyncio.run(main())
    jobs.shutdown()  # the job's thread has returned
    final = jobs.get(job.id)
    assert final is not None and final.status == "cancelled" and final.result is None
    assert any(line.startswith(f"proving on {_node_address()}/") for line in final.progress)
    assert len(raised) == 1
    assert "the proof was cancelled (its Ray task is cancelled)" in str(raised[0])


def test_a_zk_inference_proven_on_ray_verifies_end_to_end(
    prover: RayProver, tmp_path: Path, model_a: Model
) -> None:
    """A LocalNode whose ZK flow proves on Ray issues a receipt that verifies."""
    with LocalNode(tmp_path / "n", zk_prover=prover) as node:  # serve --zk-backend's way
        node.push(model_a.data, name="mlp", version="1")
        x = model_a.samples[0]
        node.zk_setup("mlp:1", [NamedInputs(x)], dev_srs=True, decomp=DECOMP)
        lines: list[str] = []
        proven = node.infer("mlp:1", x, mode="zk", progress=lines.append)
        report = node.verifier(Policy(allow_dev_srs=True, require_zk=True)).check(proven.bundle)
    assert report.verified, [c for c in report.checks if not c.passed]
    assert "submitted to Ray" in lines
    assert any(line.startswith("verifying the proof from") for line in lines)
