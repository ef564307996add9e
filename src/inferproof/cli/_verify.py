"""``inferproof verify``, and the checking both it and ``receipt show`` run.

The options a verification takes are declared once here (:data:`PolicyOpt` and its
siblings) so ``verify`` and ``receipt show`` accept the same ones and check alike.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated

import typer

from .._checks import CheckStatus
from ..client import Client
from ..engine import LocalNode, load_opening
from ..errors import InputError
from ..proofs import is_chat_receipt, is_embedding_receipt
from ..receipts import Bundle
from ..runtime import ChatOpening, EmbeddingOpening, load_tensors
from ..verify import LoggedImages, Material, Policy, TrustRoot, VerificationReport, load_policy
from ._common import EXIT_VERIFY_FAILED, handle_errors
from ._node import NodeOpt, node_client
from ._render import print_report

__all__ = ["Checking", "check_bundle", "verify"]

BundleArg = Annotated[Path, typer.Argument(metavar="BUNDLE", help="A receipt bundle.")]
PolicyOpt = Annotated[Path | None, typer.Option("--policy", help="A policy JSON file.")]
ModelOpt = Annotated[Path | None, typer.Option("--model", help="The model file.")]
InputOpt = Annotated[Path | None, typer.Option("--input", help="The input.")]
OpeningOpt = Annotated[Path | None, typer.Option("--opening", help="Opening of a private input.")]
NonceOpt = Annotated[str | None, typer.Option("--nonce", help="The expected nonce.")]
DevSrsOpt = Annotated[
    bool, typer.Option("--allow-dev-srs", help="Accept ZK proofs over a locally generated SRS.")
]
SrsOpt = Annotated[
    Path | None,
    typer.Option("--srs", help="The SRS file of a ZK receipt (a public ceremony file)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
ExactOpt = Annotated[
    bool,
    typer.Option(
        "--exact",
        help="LLM answers: regenerate token by token and require the identical text "
        "(needs the node's build and settings) instead of the fingerprint's one prefill.",
    ),
]


@dataclass(frozen=True)
class Checking:
    """What the user gave to check a bundle with (the options of ``verify``)."""

    policy: Path | None = None
    model: Path | None = None
    input_file: Path | None = None
    opening: Path | None = None
    nonce: str | None = None
    allow_dev_srs: bool = False
    srs: Path | None = None
    node_url: str | None = None
    exact: bool = False
    images: tuple[Path, ...] = ()


def check_bundle(bundle: Bundle, how: Checking) -> VerificationReport:
    """Every check of ``bundle``: offline against the local trust root, or with
    ``node_url`` against that node's pinned keys (consistency proofs from it)."""
    node = LocalNode()
    material = _material(node, bundle, how)
    if how.node_url:
        if how.srs is not None:
            raise InputError("--srs applies to offline verification, not with --node")
        if how.images:
            raise InputError("--image applies to offline verification, not with --node")
        # A bundle checked after the fact: the library's default policy (not the
        # client's, which requires the fresh nonce it sends with each request).
        extra = Policy(allow_dev_srs=how.allow_dev_srs, reexecution_mode=_mode(how))
        client = (
            node_client(how.node_url, None, how.policy, how.allow_dev_srs)
            if how.policy
            else Client(how.node_url, policy=extra)
        )
        with client:
            return client.check(bundle, material)
    trust = node.trust_root()
    trust, pol = load_policy(how.policy, trust) if how.policy else (trust, Policy())
    if how.allow_dev_srs:
        pol = replace(pol, allow_dev_srs=True)
    if how.exact:
        pol = replace(pol, reexecution_mode="exact")
    srs_bytes = how.srs.read_bytes() if how.srs is not None else None
    images = _images(how.images, trust) if how.images else None
    return node.verifier(pol, trust, srs=srs_bytes, images=images).check(bundle, material)


def _images(folders: tuple[Path, ...], trust: TrustRoot) -> LoggedImages:
    """The logged images of ``--image DIR`` (each an image folder after `image publish`)."""
    pairs = []
    for folder in folders:
        entry, proof = folder / "image-entry.json", folder / "image-entry.tlog-proof"
        if not entry.is_file() or not proof.is_file():
            raise InputError(f"{folder} holds no published image entry (run `inferproof image "
                             "publish` on it)")  # fmt: skip
        pairs.append((entry.read_bytes(), proof.read_bytes()))
    return LoggedImages.load(trust, pairs)


def _mode(how: Checking) -> str:
    return "exact" if how.exact else "either"


@handle_errors
def verify(
    bundle_file: BundleArg,
    policy: PolicyOpt = None,
    model: ModelOpt = None,
    input_file: InputOpt = None,
    opening: OpeningOpt = None,
    nonce: NonceOpt = None,
    allow_dev_srs: DevSrsOpt = False,
    srs: SrsOpt = None,
    as_json: JsonOpt = False,
    node_url: NodeOpt = None,
    exact: ExactOpt = False,
    rpc: Annotated[
        str | None,
        typer.Option(
            "--rpc",
            help="Also check the chain: the checkpoint against the anchor (log.anchored) "
            "and a ZK proof with the circuit's on-chain verifier (zk.onchain); "
            "HOME/chain.json names the contracts.",
        ),
    ] = None,
    confirmations: Annotated[
        int,
        typer.Option("--confirmations", min=1, help="With --rpc: blocks the anchor needs."),
    ] = 1,
    image: Annotated[
        list[Path] | None,
        typer.Option(
            "--image",
            help="A published image folder whose logged entry the "
            "policy's environment.require_logged_image accepts (repeatable).",
        ),
    ] = None,
) -> None:
    """Verify a bundle offline and print every check; exit 0 only if the policy holds.

    An LLM answer is checked by its fingerprint (one prefill, on any machine) unless
    --exact asks for regeneration. With --node the node's pinned keys are trusted and
    consistency proofs come from it."""
    how = Checking(policy, model, input_file, opening, nonce, allow_dev_srs, srs, node_url, exact,
                   tuple(image or ()))  # fmt: skip
    bundle = Bundle.read(bundle_file)
    report = check_bundle(bundle, how)
    if rpc is not None:
        from ._chain import onchain_checks

        srs_bytes = srs.read_bytes() if srs is not None else None
        extra = onchain_checks(bundle, rpc, confirmations, srs_bytes)
        ok = report.verified and all(c.status is CheckStatus.PASSED for c in extra)
        report = replace(report, checks=(*report.checks, *extra), verified=ok)
    print_report(report, as_json)
    if not report.verified:
        raise typer.Exit(EXIT_VERIFY_FAILED)


def _material(node: LocalNode, bundle: Bundle, how: Checking) -> Material:
    """What the user gave beside the bundle (the model defaults to the local hub's copy)."""
    if how.model is not None:
        if not how.model.is_file():
            raise FileNotFoundError(2, "model file does not exist", str(how.model))
        model_bytes: bytes | None = how.model.read_bytes()
    else:
        model_bytes = node.model_bytes(bundle.receipt.model_digest)
    llm_kind = (
        "an embedding"
        if is_embedding_receipt(bundle.receipt)
        else "a chat"
        if is_chat_receipt(bundle.receipt)
        else None
    )
    if llm_kind is not None:
        # An LLM receipt's request and answer come from the bundle, or the opening.
        if how.input_file is not None:
            raise InputError(
                f"--input applies to tensor receipts; {llm_kind} receipt's request is in "
                "the bundle, or in its opening (--opening) for a private request"
            )
        if llm_kind == "an embedding":
            embedding = EmbeddingOpening.load(how.opening) if how.opening else None
            return Material(model_bytes=model_bytes, nonce=how.nonce, embedding_opening=embedding)
        chat_opening = ChatOpening.load(how.opening) if how.opening else None
        return Material(model_bytes=model_bytes, nonce=how.nonce, chat_opening=chat_opening)
    named = load_tensors(how.input_file) if how.input_file else None
    opened = load_opening(how.opening) if how.opening else None
    return Material(
        model_bytes=model_bytes,
        inputs=named.tensors if named else None,
        untyped=named.untyped if named else frozenset(),
        salt=opened.salt if opened else None,
        outputs=opened.outputs if opened else None,
        nonce=how.nonce,
    )
