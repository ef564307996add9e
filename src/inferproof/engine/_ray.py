"""Proving on a Ray cluster: the node ships a setup's artifacts, a Ray worker proves.

:class:`RayProver` is a ``prover`` for :class:`~inferproof.engine.ZkFlow`. For each
setup it reads the compiled circuit, proving key, SRS and settings from the node's blob
store (each checked against its digest) and puts them in Ray's object store once; each
proof is one Ray task that runs EZKL's witness generation and proving in its worker
and streams back where it runs, then the proof. A Ray worker is not trusted: the node
parses the proof strictly and verifies it here, with the verifying key from its own
blob store and the inputs it asked for, before anything is signed or stored; a proof
that fails is refused with :class:`~inferproof.errors.VerificationError`.

Ray is imported only when a RayProver is made. Workers need this package and EZKL
installed (a cluster running the node's image).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from .._checks import CheckStatus
from ..errors import BlobCorruptError, Error, InputError, VerificationError, ZkError
from ..hub import BlobStore

if TYPE_CHECKING:
    from ..proofs.zk import ZkProof, ZkSetup

__all__ = ["MAX_RAY_PROOF_BYTES", "RAY_TASK_TIMEOUT", "RayProver"]

# A proof's JSON from a worker: the proof bytes as hex (capped at 2 MiB of proof by
# proofs.zk's MAX_PROOF_BYTES, so 4 MiB of hex) plus its instances; 8 MiB bounds both.
MAX_RAY_PROOF_BYTES = 8 * 1024 * 1024
# A proof of the circuits this engine sets up takes seconds to minutes; an hour is a
# worker that is stuck, not slow (the node's own job timeout is an hour too).
RAY_TASK_TIMEOUT = 3600.0
# Setups whose artifacts stay in Ray's object store (proving keys are large).
_CACHED_SETUPS = 4
# The check a worker's answer fails when it is not even a proof.
CHECK_WORKER = "zk.worker"


def _prove_in_worker(
    setup_json: dict[str, Any], inputs: dict[str, np.ndarray], *artifacts: bytes
) -> Iterator[str | bytes]:
    """The Ray task (a streaming generator): where it runs, then the proof's JSON."""
    import ray

    from ..hub import MemoryBlobStore
    from ..proofs import zk

    context = ray.get_runtime_context()
    host = ray.util.get_node_ip_address()  # type: ignore[no-untyped-call]
    yield f"{host}/worker {context.get_worker_id()[:12]}"
    store = MemoryBlobStore()
    for data in artifacts:
        store.put(data)
    proof = zk.prove(zk.ZkSetup.from_json(setup_json), inputs, store)
    yield json.dumps(proof.to_json(), separators=(",", ":")).encode()


def _cancel_requested(progress: Callable[[str], None] | None) -> bool:
    # The node's job progress (node.JobProgress) says when its job was cancelled.
    check = getattr(progress, "cancel_requested", None)
    return bool(check()) if callable(check) else False


class RayProver:
    """Prove ZK inferences on Ray (module docs); verify every proof locally.

    ``address`` is ``ray://HOST:PORT`` (Ray Client), the address of a running cluster
    (``HOST:PORT`` or ``auto``), or None / ``"local"`` to start a Ray on this machine
    (``num_cpus`` workers, no dashboard, no usage statistics). A task that
    runs past ``task_timeout`` seconds is cancelled and the proof fails; a worker's
    answer over ``max_proof_bytes`` is refused unread. ``poll`` is how often the task
    is checked for cancellation.

    Example::

        prover = RayProver(None, num_cpus=2)
        node._zk.set_prover(prover)     # ZkFlow.set_prover
        proof = prover(record, {"x": x}, node.hub.blobs, print)
        prover.close()
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        num_cpus: int = 2,
        task_timeout: float = RAY_TASK_TIMEOUT,
        max_proof_bytes: int = MAX_RAY_PROOF_BYTES,
        poll: float = 0.2,
    ) -> None:
        try:
            import ray
        except ImportError:
            raise Error("proving on Ray needs ray: pip install 'inferproof[scale]'") from None
        self._ray = ray
        self.task_timeout, self.max_proof_bytes = task_timeout, max_proof_bytes
        self._poll = max(0.01, poll)
        self._refs: OrderedDict[str, list[Any]] = OrderedDict()
        self._lock = threading.Lock()
        self._owns = False
        self._connect(address, num_cpus)
        self._task = ray.remote(_prove_in_worker).options(
            num_cpus=1, max_retries=0, num_returns="streaming"
        )

    def _connect(self, address: str | None, num_cpus: int) -> None:
        ray = self._ray
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        if ray.is_initialized():
            return  # this process already joined a cluster: prove on it
        options: dict[str, Any] = {"log_to_driver": False, "configure_logging": False}
        try:
            if address in (None, "local"):
                # A head on this machine. Ray 2.x never binds to loopback: it replaces
                # 127.0.0.1 with the machine's address (resolve_ip_for_localhost in
                # ray/_private/services.py), so none is asked for.
                ray.init(address="local", num_cpus=max(1, num_cpus), include_dashboard=False,
                         **options)  # fmt: skip
            else:
                ray.init(address=address, **options)
        except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError...
            where = "a local Ray" if address in (None, "local") else f"Ray at {address[:80]}"
            raise Error(f"could not start or reach {where}: {exc}") from None
        self._owns = True

    @property
    def address(self) -> str:
        """The cluster's address (``HOST:PORT`` of its control store), for other
        processes to join: the workers of ``serve --workers N --zk-backend ray``."""
        return str(self._ray.get_runtime_context().gcs_address)

    def close(self) -> None:
        """Drop the cached artifacts; shut Ray down if this prover started it."""
        with self._lock:
            self._refs.clear()
        if self._owns and self._ray.is_initialized():
            self._ray.shutdown()
        self._owns = False

    # -- shipping ------------------------------------------------------------------------
    def _artifacts(self, setup: ZkSetup, store: BlobStore) -> list[Any]:
        """Object refs of the setup's circuit, proving key, SRS and settings, put once."""
        key = setup.digest()
        with self._lock:
            if key in self._refs:
                self._refs.move_to_end(key)
                return self._refs[key]
        refs = []
        for digest in (setup.circuit_digest, setup.pk_digest, setup.srs_digest,
                       setup.settings_digest):  # fmt: skip
            data = store.get(digest)
            actual = "sha256:" + hashlib.sha256(data).hexdigest()
            if actual != digest:
                raise BlobCorruptError(f"blob {digest} is corrupt (its bytes hash to {actual})")
            refs.append(self._ray.put(data))
        with self._lock:
            self._refs[key] = refs
            while len(self._refs) > _CACHED_SETUPS:
                self._refs.popitem(last=False)
        return refs

    # -- proving -------------------------------------------------------------------------
    def __call__(
        self,
        setup: ZkSetup,
        inputs: dict[str, np.ndarray],
        store: BlobStore,
        progress: Callable[[str], None] | None = None,
    ) -> ZkProof:
        """Prove on Ray, then verify here; the verified proof (ZkFlow's ``prover``)."""
        data, where = self.run_remote(setup, inputs, store, progress)
        if progress:
            progress(f"verifying the proof from {where}")
        return self.accept(setup, inputs, store, data, where)

    def run_remote(
        self,
        setup: ZkSetup,
        inputs: dict[str, np.ndarray],
        store: BlobStore,
        progress: Callable[[str], None] | None = None,
    ) -> tuple[bytes, str]:
        """Run the task; return the worker's answer (unverified bytes) and where it ran."""
        ray = self._ray
        arrays = {name: np.ascontiguousarray(value) for name, value in inputs.items()}
        gen = self._task.remote(setup.to_json(), arrays, *self._artifacts(setup, store))
        if progress:
            progress("submitted to Ray")
        deadline = time.monotonic() + self.task_timeout
        answers: list[Any] = []
        try:
            while len(answers) < 2:
                if _cancel_requested(progress):
                    ray.cancel(gen, force=True)
                    raise ZkError("the proof was cancelled (its Ray task is cancelled)")
                if time.monotonic() > deadline:
                    ray.cancel(gen, force=True)
                    raise ZkError(
                        f"the Ray proving task did not finish in {self.task_timeout:.0f} s"
                    )
                ready, _ = ray.wait([gen], timeout=self._poll)
                if not ready:
                    continue
                try:
                    answers.append(ray.get(next(gen)))
                except StopIteration:
                    raise ZkError("the Ray worker ended without a proof") from None
                if len(answers) == 1 and progress:
                    progress(f"proving on {str(answers[0])[:200]}")
        except Error:
            raise
        except Exception as exc:  # Ray's task, system and cancellation errors
            raise ZkError(f"proving on Ray failed: {_one_line(exc)}") from None
        where, data = str(answers[0])[:200], answers[1]
        if not isinstance(data, bytes):
            raise VerificationError(CHECK_WORKER, f"Ray worker {where} answered no proof bytes")
        return data, where

    def accept(
        self,
        setup: ZkSetup,
        inputs: Mapping[str, np.ndarray],
        store: BlobStore,
        data: bytes,
        where: str,
    ) -> ZkProof:
        """Parse a worker's answer and verify it with this node's own artifacts; raise
        VerificationError naming the failed check unless every check made passed."""
        from ..proofs import zk

        if len(data) > self.max_proof_bytes:
            raise VerificationError(
                CHECK_WORKER, f"Ray worker {where} answered {len(data)} bytes, over the "
                f"{self.max_proof_bytes}-byte cap"
            )  # fmt: skip
        try:
            proof = zk.ZkProof.from_json(json.loads(data))
        except (ValueError, InputError) as exc:
            raise VerificationError(
                CHECK_WORKER, f"Ray worker {where} answered no valid proof: {exc}"
            ) from None
        # The SRS is this node's own setup choice (a dev SRS is judged by each verifier's
        # policy on the bundle); here the question is only whether the worker's proof is
        # a valid proof of this setup, on these inputs.
        checks = zk.verify(setup, proof, store, model_digest=setup.model_digest,
                           output_values=proof.outputs, input_tensors=dict(inputs),
                           allow_dev_srs=True)  # fmt: skip
        for check in checks:
            if check.status is CheckStatus.FAILED:
                raise VerificationError(
                    check.name, f"the proof from Ray worker {where} was rejected: {check.detail}"
                )
        return proof


def _one_line(exc: BaseException) -> str:
    text = str(getattr(exc, "cause", None) or exc).strip().splitlines()
    return (text[-1] if text else type(exc).__name__)[:300]
