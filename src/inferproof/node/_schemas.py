"""Request and response shapes, for validation and for the OpenAPI document.

Bundles and tensors are described loosely here (objects): their exact formats are
checked by the library (``Bundle.from_json``, ``parse_json_tensors``), which is the
one authority on them; see docs/verification.md.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# A model reference: sha256:<hex> or name[:version] with the hub's name rule.
MODEL_REF = (
    r"^(sha256:[0-9a-f]{64}|[A-Za-z0-9][A-Za-z0-9._-]{0,127}(:[A-Za-z0-9][A-Za-z0-9._-]{0,127})?)$"
)
DIGEST = r"^sha256:[0-9a-f]{64}$"
# Nonces are echoed into the signed receipt; 256 characters is ample for a UUID,
# a hash or a timestamp and bounds what a caller can make the node sign.
MAX_NONCE = 256

Mode = Literal["vanilla", "zk", "tee"]
JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorBody(_Strict):
    code: str
    message: str


class ErrorResponse(_Strict):
    """Every 4xx and 5xx answer: ``{"error": {"code", "message"}}``."""

    error: ErrorBody


class InferItem(_Strict):
    inputs: dict[str, Any] = Field(
        min_length=1,
        description='Named tensors: {"x": [[1, 2]]} or {"x": {"dtype", "shape", "data"|"b64"}}.',
    )
    nonce: str | None = Field(default=None, max_length=MAX_NONCE)
    private_input: bool = Field(
        default=False, description="Commit to a salted input digest; the opening is returned."
    )
    private_output: bool | None = Field(
        default=None,
        description="Commit to a salted output digest and keep the outputs out of the "
        "bundle; they are returned in the opening. Defaults to private_input.",
    )


class InferRequest(InferItem):
    model: str = Field(pattern=MODEL_REF, description="sha256:DIGEST or NAME[:VERSION].")
    mode: Mode = "vanilla"


class BatchRequest(_Strict):
    model: str = Field(pattern=MODEL_REF)
    mode: Mode = "vanilla"
    items: list[InferItem] = Field(min_length=1)


class Opening(_Strict):
    scheme: str
    salt: str = Field(description="Hex of the 32-byte salt; keep it private.")
    outputs: dict[str, Any] | None = Field(
        default=None, description="The outputs of a receipt that commits to them (private)."
    )


class ConsistencyProof(_Strict):
    old_size: int
    new_size: int
    hashes: list[str] = Field(description="RFC 9162 consistency proof, base64.")


class InferResponse(_Strict):
    outputs: dict[str, Any]
    bundle: dict[str, Any]
    bundle_id: str
    receipt_digest: str = Field(description="sha256 of the RFC 8785 envelope (the log entry).")
    log_index: int | None
    opening: Opening | None = None
    consistency: ConsistencyProof | None = Field(
        default=None,
        description="When the request's X-Inferproof-Log-Size header named a tree size, the "
        "RFC 9162 proof linking it with the size of this receipt's checkpoint (saves the "
        "client a GET /v1/log/consistency; the client verifies it like any proof).",
    )


class BatchItemResult(_Strict):
    result: InferResponse | None = None
    error: ErrorBody | None = None


class BatchResponse(_Strict):
    results: list[BatchItemResult]


class ZkSetupRequest(_Strict):
    model: str = Field(pattern=MODEL_REF, description="sha256:DIGEST or NAME[:VERSION].")
    samples: list[dict[str, Any]] = Field(
        min_length=1, max_length=64, description="Sample inputs (named tensors) to calibrate on."
    )
    srs: str = Field(
        pattern=r"^(dev|online|sha256:[0-9a-f]{64})$",
        description="dev (a local SRS: development only, its maker can forge proofs), online "
        "(EZKL downloads the public one), or the digest of a public ceremony SRS file "
        "already in this node's blob store.",
    )
    target: Literal["resources", "accuracy"] = "resources"
    input_visibility: Literal["public", "hashed"] = "public"
    param_visibility: Literal["fixed", "hashed"] = "fixed"


class ZkSetupResult(_Strict):
    setup: str = Field(description="The setup record's digest (receipts name it).")
    model: str
    logrows: int
    srs: str = Field(description="public or dev")
    input_visibility: str
    param_visibility: str


class Job(_Strict):
    id: str
    mode: str
    status: JobStatus
    created: float
    started: float | None
    finished: float | None
    progress: list[str]
    result: InferResponse | ZkSetupResult | None = None
    error: ErrorBody | None = None


class TensorSpecJSON(_Strict):
    name: str
    dtype: str
    shape: list[int | None]


class ModelRecordJSON(_Strict):
    digest: str
    name: str
    version: str
    size: int
    format: str
    created_at: float
    inputs: list[TensorSpecJSON]
    outputs: list[TensorSpecJSON]
    signature_digest: str | None
    publisher: str | None


class ModelList(_Strict):
    models: list[ModelRecordJSON]


class ModelShown(ModelRecordJSON):
    """One hub record, plus OpenAI's model fields so ``models.retrieve`` works too."""

    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class LogInfo(_Strict):
    origin: str
    verifier_key: str = Field(description="C2SP note verifier key: name+hex(id)+base64(key).")
    size: int


class Identity(_Strict):
    node_id: str
    node_key: str = Field(description="Base64 of the 32-byte Ed25519 public key.")
    log: LogInfo | None
    environment: dict[str, Any]
    attestation: dict[str, Any] | None
    version: str
    modes: list[str]
    job_modes: list[str]
    webhook_key: str = Field(
        description="The Ed25519 key that signs this node's workflow webhooks "
        "(Standard Webhooks v1a, as whpk_ and base64)."
    )
    ohttp: OhttpInfo = Field(
        description="The Oblivious HTTP gateway's keys, bound to the node key."
    )


class OhttpInfo(_Strict):
    keys: str = Field(
        description="Base64 of the Oblivious HTTP gateway's application/ohttp-keys (RFC 9458)."
    )
    binding: str = Field(
        description="Base64 of the node key's Ed25519 signature over 'inferproof ohttp-keys "
        "binding v1' and a newline, then the keys: what binds them to this node."
    )


class InclusionProof(_Strict):
    index: int
    tree_size: int
    hashes: list[str] = Field(description="RFC 9162 audit path, base64.")


class Health(_Strict):
    status: Literal["ok"]
    log_size: int | None
