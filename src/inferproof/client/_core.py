"""The sans-IO core that Client and AsyncClient share.

Every operation is written once, as a *flow*: a generator that yields the HTTP
requests it needs, is sent each response, and returns its result. ``Client`` drives
flows with httpx's sync client, ``AsyncClient`` with its async one, so the two
cannot drift apart. Nothing here does I/O except reading and writing
``INFERPROOF_HOME`` files (pins, checkpoint memory).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import secrets
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import httpx
import numpy as np

from .._canonical import check_digest, decode_b64, is_digest, parse_json, sha256_digest
from .._checks import Check, CheckStatus, failed, not_checked, passed
from .._files import PathLike, default_home, read_content, write_private
from .._keys import raw_public
from ..errors import Error, InputError, VerificationError
from ..hub import MemoryBlobStore, ModelRecord
from ..log import (
    PROOF_ATTEMPTS,
    Checkpoint,
    CheckpointMemory,
    Note,
    SignedCheckpoint,
    TlogProof,
    VerifierKey,
    open_checkpoint,
)
from ..receipts import Bundle
from ..runtime import TensorSpec, conform, decode_tensors, encode_tensors, parse_json_tensors
from ..verify import (
    LoggedImages,
    Material,
    Policy,
    TrustRoot,
    VerificationReport,
    Verifier,
)
from ._memory import LogMemory
from ._proofs import LOG_SIZE_HEADER, Offered, hashes_of, offered_proof

DEFAULT_POLICY = Policy(require_log=True, require_nonce=True, require_input=True)
# Answers bigger than this are refused: a bundle is capped at 64 MiB (receipts), and a
# batch holds at most a few hundred.
MAX_RESPONSE_BYTES = 256 * 1024 * 1024
RETRY_STATUSES = (429, 503)
# Read when Client(url=None) or Client(token=None), as the CLI's --node and --token do.
NODE_ENV, TOKEN_ENV = "INFERPROOF_NODE", "INFERPROOF_TOKEN"
# Seconds a job poll waits on the node for the job to finish.
JOB_POLL_SECONDS = 10
_MODEL_REF = re.compile(
    r"^(sha256:[0-9a-f]{64}|[A-Za-z0-9][A-Za-z0-9._-]{0,127}(:[A-Za-z0-9][A-Za-z0-9._-]{0,127})?)$"
)
T = TypeVar("T")
Inputs = Mapping[str, Any]
Progress = Callable[[str], None]
# (private input, private output: None for the node's default, which is the input's).
Privacy = tuple[bool, bool | None]


@dataclass(frozen=True)
class Inference:
    """A node's answer: outputs, the bundle, where it is stored and logged, the report.

    ``report`` is None only for a client made with ``verify=False``; ``salt`` is the
    opening of a private input (keep it to prove the input later).
    """

    outputs: dict[str, np.ndarray]
    bundle: Bundle
    bundle_id: str
    receipt_digest: str
    log_index: int | None
    salt: bytes | None
    report: VerificationReport | None


@dataclass(frozen=True)
class ZkSetupInfo:
    """What a node reports of a ZK setup it made: the setup record's digest (which
    receipts of its proofs name), the model, the circuit size and the SRS kind."""

    setup: str
    model: str
    logrows: int
    srs: str
    input_visibility: str
    param_visibility: str

    @classmethod
    def from_json(cls, obj: Any) -> ZkSetupInfo:
        try:
            info = cls(
                check_digest(obj["setup"], "setup digest"), check_digest(obj["model"], "model"),
                int(obj["logrows"]), str(obj["srs"]), str(obj["input_visibility"]),
                str(obj["param_visibility"]),
            )  # fmt: skip
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"the node sent a malformed zk setup result: {exc}") from exc
        return info


@dataclass(frozen=True)
class _Sent:
    model: str
    tensors: dict[str, np.ndarray]
    nonce: str


def record_of(obj: Any) -> ModelRecord:
    try:
        return ModelRecord(
            digest=obj["digest"], name=obj["name"], version=obj["version"], size=obj["size"],
            format=obj["format"], created_at=obj["created_at"],
            inputs=tuple(TensorSpec.from_json(t) for t in obj["inputs"]),
            outputs=tuple(TensorSpec.from_json(t) for t in obj["outputs"]),
            signature_digest=obj["signature_digest"], publisher=obj["publisher"],
        )  # fmt: skip
    except (KeyError, TypeError) as exc:
        raise InputError(f"the node sent a malformed model record: {exc}") from exc


def raise_for(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        err = json.loads(response.content)["error"]
        # The node's {"code", "message"}, or OpenAI's (chat) whose code may be null.
        text = f"{err.get('code') or err.get('type')}: {err['message']}"
    except (ValueError, KeyError, TypeError, AttributeError):
        text = response.text[:300]
    what = f"node answered {response.status_code} {text}"
    raise InputError(what) if response.status_code < 500 else Error(what)


def retry_after(response: httpx.Response, attempt: int) -> float:
    try:
        hint = float(response.headers.get("retry-after", "1"))
    except ValueError:
        hint = 1.0
    return min(max(hint, 0.05) * (attempt + 1), 5.0)


@dataclass(frozen=True)
class Req:
    """One HTTP request of a flow. ``stream=True`` asks the driver to send the response
    before reading its body; the flow then pulls the body (see ``_stream``)."""

    method: str
    path: str
    auth: bool = False
    kwargs: dict[str, Any] | None = None
    stream: bool = False


# A flow yields requests, is sent each response, and returns its result: one
# implementation of every operation, driven by Client (sync) and AsyncClient (async).
Flow = Generator[Req, httpx.Response, T]


def body_of(response: httpx.Response) -> Any:
    return parse_json(response.content, "node answer", MAX_RESPONSE_BYTES)


class ClientCore:
    """Trust, requests and verification shared by Client and AsyncClient."""

    def __init__(
        self,
        url: str | None,
        token: str | None,
        policy: Policy | None,
        trust: TrustRoot | None,
        verify: bool,
        home: PathLike | None,
        images: LoggedImages | None = None,
    ) -> None:
        url, token = from_environment(url, token)
        self._images = images
        self.url = url.rstrip("/")
        self.policy = policy or DEFAULT_POLICY
        self.verify_answers = verify
        self._home = Path(home) if home is not None else default_home()
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._memory = LogMemory(self._home / "checkpoints")
        self._records: dict[str, ModelRecord] = {}
        self._models: dict[str, bytes] = {}
        # SRS files of ZK receipts, fetched from the node by the digest the signed setup
        # record names (and checked against it) when a bundle needs one.
        self._zk_srs = MemoryBlobStore()
        self._verifier = (
            Verifier(trust, self.policy, zk_srs=self._zk_srs, images=images)
            if trust is not None
            else None
        )
        self._opened: dict[bytes, tuple[SignedCheckpoint, VerifierKey]] = {}
        # What binds the gateway key a confidential client seals to: reported with
        # every answer it verifies (client/_ohttp.py).
        self._confidential: Check | None = None

    # -- trust on first use ------------------------------------------------------------------
    def _pin_path(self) -> Path:
        name = hashlib.sha256(self.url.encode()).hexdigest()[:32] + ".json"
        return self._home / "known_nodes" / name

    def _known_node_keys(self) -> set[bytes] | None:
        """The node keys this client already trusts (its trust root, or the identity it
        pinned for this URL), or None on first use."""
        if self._verifier is not None:
            return {raw_public(k) for k in self._verifier.trust.node_keys.values()}
        path = self._pin_path()
        if not path.is_file():
            return None
        pin = parse_json(path.read_bytes(), f"pinned identity {path}", 64 * 1024)
        if not isinstance(pin, dict) or pin.get("url") != self.url:
            raise InputError(f"{path} is not a pinned identity of {self.url}")
        return {decode_b64(pin.get("node_key"), "the pinned node key")}

    def _trust_flow(self) -> Flow[Verifier]:
        if self._verifier is not None:
            return self._verifier
        path = self._pin_path()
        if path.is_file():
            pin = parse_json(path.read_bytes(), f"pinned identity {path}", 64 * 1024)
        else:
            pin = _pin(self.url, body_of((yield Req("GET", "/v1/identity"))))
            with contextlib.suppress(FileExistsError):  # another client pinned it first
                write_private(path, json.dumps(pin).encode())
            pin = parse_json(path.read_bytes(), f"pinned identity {path}", 64 * 1024)
        if not isinstance(pin, dict) or pin.get("url") != self.url:
            raise InputError(f"{path} is not a pinned identity of {self.url}")
        # No on-disk memory inside the Verifier: this client keeps its own (_LogMemory).
        trusted = _trust_from_pin(pin, self._home / "trust")
        self._verifier = Verifier(trusted, self.policy, zk_srs=self._zk_srs, images=self._images)
        return self._verifier

    # -- operations (flows) ------------------------------------------------------------------
    def _record_flow(self, ref: str) -> Flow[ModelRecord]:
        record = self._records.get(ref)
        if record is None:
            record = record_of(body_of((yield Req("GET", f"/v1/models/{check_ref(ref)}"))))
            if is_digest(ref) or (":" in ref and not ref.endswith(":latest")):
                self._records[ref] = record  # immutable refs only
        return record

    def _typed_flow(self, model: str, inputs: Inputs) -> Flow[dict[str, np.ndarray]]:
        if not isinstance(inputs, Mapping) or not inputs:
            raise InputError("inputs must be a non-empty mapping of names to tensors")
        arrays = {k: v for k, v in inputs.items() if isinstance(v, np.ndarray)}
        plain = {k: v for k, v in inputs.items() if not isinstance(v, np.ndarray)}
        if not plain:
            return arrays
        record = yield from self._record_flow(model)
        named = parse_json_tensors(json.dumps(plain).encode())
        return conform({**arrays, **named.tensors}, record.inputs, named.untyped)

    def _infer_flow(
        self, model: str, inputs: Inputs, mode: str, nonce: str | None, private: Privacy,
        progress: Progress | None,
    ) -> Flow[Inference]:  # fmt: skip
        options: dict[str, Any] = {}
        if self.verify_answers:
            known = self._known_size((yield from self._trust_flow()))
            if known:  # the answer then carries the consistency proof from it
                options["headers"] = {LOG_SIZE_HEADER: str(known)}
        tensors = yield from self._typed_flow(model, inputs)
        sent = _Sent(model, tensors, nonce or new_nonce())
        body = {"model": check_ref(model), "mode": mode, **_item(tensors, sent.nonce, private)}
        response = yield Req("POST", "/v1/infer", True, {"json": body, **options})
        obj = body_of(response)
        if response.status_code == 202:
            obj = yield from self._job_flow(obj, progress)
        return (yield from self._finish_flow(obj, sent))

    def _known_size(self, verifier: Verifier) -> int | None:
        """The size of the latest checkpoint this client holds of the node's one log."""
        if len(verifier.trust.log_keys) != 1:
            return None
        origin, key = next(iter(verifier.trust.log_keys.items()))
        return self._memory.latest_size(origin, key)

    def _batch_flow(
        self, model: str, batch: Sequence[Inputs], nonces: Sequence[str] | None, private: Privacy
    ) -> Flow[list[Inference]]:
        if self.verify_answers:
            yield from self._trust_flow()
        if nonces is not None and len(nonces) != len(batch):
            raise InputError("give one nonce per batch item")
        sents = []
        for i, inputs in enumerate(batch):
            tensors = yield from self._typed_flow(model, inputs)
            sents.append(_Sent(model, tensors, nonces[i] if nonces else new_nonce()))
        items = [_item(s.tensors, s.nonce, private) for s in sents]
        body = {"model": check_ref(model), "items": items}
        results = body_of((yield Req("POST", "/v1/infer/batch", True, {"json": body})))
        results = results.get("results") if isinstance(results, dict) else None
        if not isinstance(results, list) or len(results) != len(sents):
            raise InputError("the node's batch answer does not have one result per item")
        out = []
        for i, (sent, item) in enumerate(zip(sents, results, strict=True)):
            if not isinstance(item, dict) or "result" not in item:
                err = item.get("error", {}) if isinstance(item, dict) else {}
                raise InputError(f"batch item {i}: {err.get('code')}: {err.get('message')}")
            out.append((yield from self._finish_flow(item["result"], sent)))
        return out

    def _zk_setup_flow(
        self, model: str, samples: Sequence[Inputs], options: dict[str, str],
        progress: Progress | None,
    ) -> Flow[ZkSetupInfo]:  # fmt: skip
        if not samples:
            raise InputError("a zk setup needs at least one sample input")
        tensors = []
        for sample in samples:
            tensors.append(encode_tensors((yield from self._typed_flow(model, sample))))
        body = {"model": check_ref(model), "samples": tensors, **options}
        job = body_of((yield Req("POST", "/v1/zk/setups", True, {"json": body})))
        return ZkSetupInfo.from_json((yield from self._job_flow(job, progress)))

    def _job_flow(self, job: Any, progress: Progress | None) -> Flow[Any]:
        seen = 0
        while True:
            if not isinstance(job, dict) or not re.fullmatch(r"[0-9a-f]{24}", str(job.get("id"))):
                raise InputError("the node sent a malformed job")
            lines = job.get("progress") or []
            for line in lines[seen:]:
                if progress is not None:
                    progress(str(line))
            seen = len(lines)
            if job.get("status") == "succeeded":
                return job.get("result")
            if job.get("status") == "failed":
                err = job.get("error") or {}
                text = f"job {job['id']} failed: {err.get('code')}: {err.get('message')}"
                raise InputError(text) if err.get("code") != "internal" else Error(text)
            params = {"wait": JOB_POLL_SECONDS}
            job = body_of((yield Req("GET", f"/v1/jobs/{job['id']}", True, {"params": params})))

    def _finish_flow(self, obj: Any, sent: _Sent) -> Flow[Inference]:
        if not isinstance(obj, dict) or not isinstance(obj.get("bundle"), dict):
            raise InputError("the node's answer has no bundle")
        bundle, salt = Bundle.from_json(obj["bundle"]), _salt(obj)
        # A receipt committing to its output keeps it out of the bundle: the node
        # hands it to the caller in the opening, and the check opens the commitment.
        committed = _opening_outputs(obj)
        report = None
        if self.verify_answers:
            material = Material(inputs=sent.tensors, salt=salt, nonce=sent.nonce, outputs=committed)
            offered = offered_proof(obj.get("consistency"))
            report = yield from self._check_flow(bundle, material, sent.model, offered=offered)
            if not report.verified:
                bad = report.first_failure
                assert bad is not None
                raise VerificationError(bad.name, bad.detail)
        outputs = committed if committed is not None else decode_tensors(bundle.outputs, "outputs")
        index = obj.get("log_index")
        return Inference(
            outputs, bundle, str(obj.get("bundle_id", "")), str(obj.get("receipt_digest", "")),
            index if isinstance(index, int) else None, salt, report,
        )  # fmt: skip

    def _check_flow(
        self, bundle: Bundle, material: Material | None, ref: str | None,
        verifier: Verifier | None = None, *, offered: Offered | None = None,
    ) -> Flow[VerificationReport]:  # fmt: skip
        """The report on ``bundle`` (by ``verifier``, else the client's own), with
        the consistency of its checkpoint with those this client saw before (by the
        proof the answer ``offered``, if it links the right sizes, else one fetched)."""
        verifier = verifier or (yield from self._trust_flow())
        yield from self._srs_flow(bundle)
        if self.policy.require_reexecution and (material is None or material.model_bytes is None):
            model = yield from self._model_flow(bundle.receipt.model_digest)
            material = replace(material or Material(), model_bytes=model)
        report = verifier.check(bundle, material)
        if ref is not None:
            report = with_checks(report, requested_check(bundle, ref))
        if self._confidential is not None:
            report = with_checks(report, self._confidential)
        inclusion = next((c for c in report.checks if c.name == "log.inclusion"), None)
        if bundle.tlog_entry is None or inclusion is None or not inclusion.passed:
            return report
        check = yield from self._logged_flow(verifier, bundle.tlog_entry, offered)
        return with_checks(report, check)

    def _logged_flow(
        self, verifier: Verifier, tlog_entry: str, offered: Offered | None = None
    ) -> Flow[Check]:
        """``log.consistency`` of a verified tlog-proof's checkpoint."""
        note = TlogProof.parse(tlog_entry).checkpoint
        opened = self._opened.get(note)
        if opened is None:  # many bundles share a checkpoint: verify its note once
            key = verifier.trust.log_keys[Checkpoint.parse(Note.parse(note).text).origin]
            if len(self._opened) > 1024:
                self._opened.clear()
            opened = self._opened[note] = (open_checkpoint(note, key), key)
        return (yield from self._consistency_flow(*opened, offered))

    def _consistency_flow(
        self, cp: SignedCheckpoint, key: VerifierKey, offered: Offered | None = None
    ) -> Flow[Check]:
        for _ in range(PROOF_ATTEMPTS):  # the latest may move under concurrent requests
            sizes = self._memory.needed(cp, key)
            proof: list[bytes] | None = None
            try:
                if sizes and offered is not None and offered[0] == sizes:
                    # The node's answer carried it; it is checked like a fetched one.
                    proof, offered = offered[1], None
                elif sizes:
                    proof = yield from self._proof_flow(*sizes)
            except InputError as exc:  # the node cannot link what it showed before
                return failed("log.consistency", f"no consistency proof for sizes {sizes}: {exc}")
            check = self._memory.observe(cp, proof, sizes)
            if check is not None:
                yield from self._persist_flow(self._memory.due())
                return check
        return not_checked("log.consistency", "the log kept moving while proving consistency")

    def _proof_flow(self, old: int, new: int) -> Flow[list[bytes]]:
        params = {"old": old, "new": new}
        return hashes_of(
            body_of((yield Req("GET", "/v1/log/consistency", False, {"params": params})))
        )

    def _persist_flow(self, checkpoints: list[SignedCheckpoint]) -> Flow[None]:
        """Add this client's latest checkpoints to the memory on disk that other
        clients, threads and processes share: each is proven consistent with what the
        file holds *when it is compared* (the proof is fetched again if another process
        moved the file meanwhile), and the file never goes back to a smaller one."""
        if not checkpoints or self._verifier is None or self._memory.dir is None:
            return
        for cp in checkpoints:
            key = self._verifier.trust.log_keys.get(cp.origin)
            if key is None:
                continue
            check = yield from self._disk_flow(CheckpointMemory(self._memory.dir, key), cp)
            if check.status is CheckStatus.FAILED:
                raise VerificationError(check.name, check.detail)

    def _disk_flow(self, disk: CheckpointMemory, cp: SignedCheckpoint) -> Flow[Check]:
        for _ in range(PROOF_ATTEMPTS):
            sizes = disk.needs_proof(cp)
            proof = (yield from self._proof_flow(*sizes)) if sizes else None
            check = disk.try_observe(cp, sizes, proof)
            if check is not None:
                return check
        return not_checked("log.consistency", "the shared memory kept moving")

    def _srs_flow(self, bundle: Bundle) -> Flow[None]:
        """Fetch the SRS a ZK bundle's carried setup names, once, checked by digest.

        Which SRS is acceptable is the verifier's business (``zk.srs``: a public one
        must be a ceremony file by digest); this only makes the file available."""
        part = bundle.proofs.get("zk")
        record = part.get("setup_record") if isinstance(part, dict) else None
        srs = record.get("srs") if isinstance(record, dict) else None
        digest = srs.get("digest") if isinstance(srs, dict) else None
        if not isinstance(digest, str) or not is_digest(digest) or self._zk_srs.has(digest):
            return
        try:
            data = (yield Req("GET", f"/v1/blobs/{digest}")).content
        except Error:  # the node does not have it: zk.proof is then "not checked"
            return
        if sha256_digest(data) == digest:
            self._zk_srs.put(data)

    def _model_flow(self, digest: str) -> Flow[bytes]:
        data = self._models.get(digest)
        if data is None:
            data = (yield Req("GET", f"/v1/blobs/{check_digest(digest)}")).content
            if sha256_digest(data) != digest:
                raise VerificationError("model.digest", f"the node sent other bytes for {digest}")
            self._models[digest] = data
        return data

    def _push_flow(
        self,
        model: PathLike | bytes,
        name: str,
        version: str | None,
        signature: PathLike | bytes | None,
    ) -> Flow[ModelRecord]:
        data = read_content(model, "model file")
        params = {"name": name, **({"version": version} if version else {})}
        kwargs: dict[str, Any] = {"params": params}
        if signature is None:
            kwargs |= {"content": data, "headers": {"content-type": "application/octet-stream"}}
        else:
            sig = read_content(signature, "signature file")
            kwargs["files"] = {"model": ("model", data), "signature": ("model.sig", sig)}
        return record_of(body_of((yield Req("POST", "/v1/models", True, kwargs))))

    def _checkpoint_flow(self) -> Flow[SignedCheckpoint]:
        verifier = yield from self._trust_flow()
        note = (yield Req("GET", "/v1/log/checkpoint")).content
        origin = Checkpoint.parse(Note.parse(note).text).origin
        key = verifier.trust.log_keys.get(origin)
        if key is None:
            raise VerificationError("log.checkpoint_signature", f"log {origin!r} is not trusted")
        cp = open_checkpoint(note, key, verifier.trust.witness_keys)
        check = yield from self._consistency_flow(cp, key)
        if check.status is CheckStatus.FAILED:
            raise VerificationError(check.name, check.detail)
        return cp

    def _close_flow(self) -> Flow[None]:
        yield from self._persist_flow(self._memory.flush())


# -- helpers -----------------------------------------------------------------------------------
def from_environment(url: str | None, token: str | None) -> tuple[str, str | None]:
    """The node URL and token given, else ``INFERPROOF_NODE`` and ``INFERPROOF_TOKEN``
    (as the CLI's ``--node`` and ``--token`` read them); an empty variable is unset."""
    url = url if url is not None else (os.environ.get(NODE_ENV) or None)
    if url is None:
        raise InputError(f"no node URL: pass url=... or set {NODE_ENV}")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise InputError(f"node URL {url!r:.200} must start with http:// or https://")
    token = token if token is not None else (os.environ.get(TOKEN_ENV) or None)
    return url, token


def get_flow(path: str, auth: bool = False) -> Flow[Any]:
    return body_of((yield Req("GET", path, auth)))


def bundles_flow(params: Mapping[str, str | int | float | None]) -> Flow[dict[str, Any]]:
    """One page of ``GET /v1/bundles``: the bundles the node issued to this token."""
    query = {k: v for k, v in params.items() if v is not None}
    page = body_of((yield Req("GET", "/v1/bundles", True, {"params": query})))
    if not isinstance(page, dict) or not isinstance(page.get("bundles"), list):
        raise InputError("the node sent a malformed bundle list")
    return page


def prepare(req: Req, auth: dict[str, str]) -> tuple[dict[str, str], dict[str, Any]]:
    kwargs = dict(req.kwargs or {})
    headers = {**(auth if req.auth else {}), **kwargs.pop("headers", {})}
    return headers, kwargs


def check_ref(ref: str) -> str:
    if not isinstance(ref, str) or not _MODEL_REF.match(ref):
        raise InputError(f"model {ref!r:.80} is not sha256:DIGEST or NAME[:VERSION]")
    return ref


def bundle_id_of(bundle_id: str) -> str:
    if not re.fullmatch(r"[0-9a-f]{24}", bundle_id):
        raise InputError(f"{bundle_id!r:.40} is not a bundle id (24 hex digits)")
    return bundle_id


def _item(tensors: dict[str, np.ndarray], nonce: str, private: Privacy) -> dict[str, Any]:
    item = {"inputs": encode_tensors(tensors), "nonce": nonce, "private_input": private[0]}
    if private[1] is not None:
        item["private_output"] = private[1]
    return item


def _opening_outputs(obj: dict[str, Any]) -> dict[str, np.ndarray] | None:
    opening = obj.get("opening")
    if not isinstance(opening, dict) or opening.get("outputs") is None:
        return None
    return decode_tensors(opening["outputs"], "the opening's outputs")


def _salt(obj: dict[str, Any]) -> bytes | None:
    opening = obj.get("opening")
    if not opening:
        return None
    try:
        return bytes.fromhex(opening["salt"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError("the node sent a malformed opening") from exc


def _pin(url: str, ident: Any) -> dict[str, Any]:
    if not isinstance(ident, dict) or not isinstance(ident.get("node_key"), str):
        raise InputError("the node sent a malformed identity")
    log = ident.get("log") or {}
    return {"url": url, "node_key": ident["node_key"], "log_key": log.get("verifier_key"),
            "node_id": ident.get("node_id"), "pinned_at": time.time()}  # fmt: skip


def _trust_from_pin(pin: dict[str, Any], trust: Path) -> TrustRoot:
    """Publishers and witnesses from the trust folder; node and log keys only from the
    pin, so a client of one node never accepts receipts signed by another."""
    try:
        raw = base64.b64decode(str(pin.get("node_key")), validate=True)
    except ValueError as exc:
        raise InputError("the pinned node key is not base64") from exc
    logs = [VerifierKey.parse(pin["log_key"])] if pin.get("log_key") else []
    local = TrustRoot.from_directory(trust)
    return replace(
        local,
        node_keys=TrustRoot.from_keys([raw]).node_keys,
        log_keys={k.name: k for k in logs},
    )


def requested_check(bundle: Bundle, ref: str) -> Check:
    """The receipt names the model the client asked for (by digest, or name and version)."""
    name, m = "model.requested", bundle.receipt.model
    if is_digest(ref):
        ok = m.get("digest") == ref
    else:
        want, _, version = ref.partition(":")
        ok = m.get("name") == want and (not version or m.get("version") == version)
    got = f"{m.get('name')}:{m.get('version')} ({m.get('digest')})"
    if not ok:
        return failed(name, f"asked for {ref}, the receipt names {got}")
    return passed(name, f"the receipt names the model asked for: {got}")


def with_checks(report: VerificationReport, *checks: Check) -> VerificationReport:
    """``report`` with ``checks`` added, each replacing the check of its name in place."""
    new = {c.name: c for c in checks}
    merged = tuple(new.pop(c.name, c) for c in report.checks) + tuple(new.values())
    ok = all(c.status is not CheckStatus.FAILED for c in merged)
    return VerificationReport(ok, merged, report.receipt)


def new_nonce() -> str:
    # 128 random bits: a fresh nonce per request makes a replayed receipt fail.
    return secrets.token_hex(16)
