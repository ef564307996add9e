"""Per-model setup, once: settings, calibration, circuit, SRS, keys, all in the store."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ezkl
import numpy as np

from ..._canonical import canonical_json, sha256_digest
from ...errors import InputError, ZkError
from ...hub import BlobStore
from ...runtime import check_self_contained
from . import _ezkl, _srs
from ._felts import check_felt
from ._index import SetupIndex
from ._memory import check_memory
from ._model import model_inputs, ordered_tensors, resolve_shapes, write_data
from ._types import InputVisibility, ParamVisibility, Target, ZkSetup

ProgressFn = Callable[[str], None]

# The steps reported to ``progress``, in order; a setup found in the index reports none.
SETUP_STEPS = ("settings", "calibrate", "compile", "srs", "keys")

# EZKL's own default decomposition (base 2^14, 2 legs: values up to 2^28 at scale).
DEFAULT_DECOMP = (16384, 2)

# EZKL's default lookup safety margin for calibration (ezkl CLI --lookup-safety-margin).
_LOOKUP_SAFETY_MARGIN = 2.0


def options_key(
    *,
    input_visibility: str,
    param_visibility: str,
    target: str,
    decomp: tuple[int, int],
    input_shapes: Sequence[tuple[int, ...]],
    srs: str,
) -> str:
    """The index key of a set of setup options (same options, same setup)."""
    return sha256_digest(
        canonical_json(
            {
                "input": input_visibility,
                "param": param_visibility,
                "target": target,
                "decomp": list(decomp),
                "shapes": [list(s) for s in input_shapes],
                "srs": srs,
                "ezkl": _ezkl.EZKL_VERSION,
            }
        )
    )


def _check_options(target: str, input_visibility: str, param_visibility: str) -> None:
    if target not in ("resources", "accuracy"):
        raise InputError(f"target must be 'resources' or 'accuracy', not {target!r}")
    if input_visibility not in ("public", "hashed"):
        raise InputError(f"input visibility must be 'public' or 'hashed', not {input_visibility!r}")
    if param_visibility not in ("fixed", "hashed"):
        raise InputError(f"param visibility must be 'fixed' or 'hashed', not {param_visibility!r}")


def _srs_option(srs_path: Path | None, dev_srs: bool, online_srs: bool) -> str:
    chosen = [srs_path is not None, dev_srs, online_srs]
    if sum(chosen) != 1:
        raise InputError(
            "choose exactly one SRS: srs_path (the public ceremony file), online_srs "
            "(download it with EZKL) or dev_srs (development only: its maker can forge proofs)"
        )
    if srs_path is not None:
        if not Path(srs_path).is_file():  # said before any work, not after compiling
            raise InputError(
                f"SRS file {srs_path} does not exist: a public ceremony SRS (kzgK.srs for "
                "the circuit's logrows K) is fetched with `ezkl get-srs --logrows K`, or by "
                "setup itself with --online-srs; --dev-srs makes a local one for development"
            )
        return "public"
    return "dev" if dev_srs else "public"


def _run_args(input_visibility: str, param_visibility: str, decomp: tuple[int, int],
              variables: Mapping[str, int]) -> Any:  # fmt: skip
    args: Any = ezkl.PyRunArgs()  # its stub omits the settable fields
    args.input_visibility = input_visibility
    args.param_visibility = param_visibility
    args.output_visibility = "public"
    args.decomp_base, args.decomp_legs = decomp
    if variables:
        args.variables = sorted(variables.items())
    return args


def setup(
    model_bytes: bytes,
    model_digest: str,
    sample_inputs: Sequence[Mapping[str, np.ndarray]],
    store: BlobStore,
    index: SetupIndex,
    *,
    target: Target = "resources",
    input_visibility: InputVisibility = "public",
    param_visibility: ParamVisibility = "fixed",
    srs_path: Path | None = None,
    dev_srs: bool = False,
    online_srs: bool = False,
    decomp: tuple[int, int] = DEFAULT_DECOMP,
    progress: ProgressFn | None = None,
    available_memory: int | None = None,
) -> ZkSetup:
    """Set up the circuit of one model, or return the setup already made for it.

    Every artifact goes into ``store`` by digest and the record is indexed under
    ``(model_digest, options)`` in ``index``; a second call with the same model and
    options does no work and calls ``progress`` for no step. ``sample_inputs`` fix
    the input shapes (a leading batch dimension proves several inputs at once) and
    calibrate the quantisation. Exactly one SRS source is required.

    Example::

        record = setup(onnx_bytes, sha256_digest(onnx_bytes), [{"x": x}], store, index,
                       dev_srs=True, progress=print)
    """
    if sha256_digest(model_bytes) != model_digest:
        raise InputError(f"model bytes do not hash to {model_digest}")
    _check_options(target, input_visibility, param_visibility)
    srs_kind = _srs_option(srs_path, dev_srs, online_srs)
    declared = model_inputs(model_bytes)
    check_self_contained(model_bytes)  # tract would resolve external data like onnxruntime
    shapes, variables = resolve_shapes(declared, sample_inputs)
    plan = _Plan(
        model_digest=model_digest, names=tuple(n for n, _ in declared), shapes=shapes,
        variables=variables, target=target, input_visibility=input_visibility,
        param_visibility=param_visibility, decomp=decomp, srs_path=srs_path, dev_srs=dev_srs,
    )  # fmt: skip
    srs_id = srs_kind if srs_path is None else sha256_digest(srs_path.read_bytes())
    key = options_key(
        input_visibility=input_visibility, param_visibility=param_visibility, target=target,
        decomp=decomp, input_shapes=shapes, srs=srs_id,
    )  # fmt: skip
    known = index.get(model_digest, key)
    if known is not None and store.has(known):
        return ZkSetup.from_bytes(store.get(known))
    tensors = [ordered_tensors(plan.names, shapes, s) for s in sample_inputs]
    with tempfile.TemporaryDirectory(prefix="inferproof-zk-setup-") as tmp:
        record = _build(
            plan, Path(tmp), model_bytes, tensors, store, index,
            progress or (lambda _name: None), available_memory,
        )  # fmt: skip
    index.put(model_digest, key, store.put(record.canonical()))
    return record


@dataclass(frozen=True)
class _Plan:
    """The checked options of one setup."""

    model_digest: str
    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    variables: Mapping[str, int]
    target: Target
    input_visibility: InputVisibility
    param_visibility: ParamVisibility
    decomp: tuple[int, int]
    srs_path: Path | None
    dev_srs: bool


def _build(
    plan: _Plan, work: Path, model_bytes: bytes, tensors: list[list[np.ndarray]],
    store: BlobStore, index: SetupIndex, step: ProgressFn, available_memory: int | None,
) -> ZkSetup:  # fmt: skip
    """Run EZKL's setup pipeline in ``work`` and store every artifact."""
    model, data, settings = work / "model.onnx", work / "data.json", work / "settings.json"
    model.write_bytes(model_bytes)
    write_data(data, tensors)
    step("settings")
    run_args = _run_args(plan.input_visibility, plan.param_visibility, plan.decomp, plan.variables)
    _ezkl.call("gen_settings", ezkl.gen_settings, str(model), str(settings), run_args)
    step("calibrate")
    _ezkl.call(
        "calibrate_settings", ezkl.calibrate_settings, str(data), str(model), str(settings),
        plan.target, _LOOKUP_SAFETY_MARGIN, None, [1], None,
    )  # fmt: skip
    info = _ezkl.read_json(settings, "settings")
    logrows = int(info["run_args"]["logrows"])
    check_memory(logrows, "ZK key setup", available=available_memory)
    step("compile")
    circuit = work / "circuit.ezkl"
    _ezkl.call("compile_circuit", ezkl.compile_circuit, str(model), str(circuit), str(settings))
    step("srs")
    if plan.srs_path is not None:
        srs_digest, kind, srs_k = _srs.from_file(plan.srs_path, logrows, store)
    elif plan.dev_srs:
        srs_digest, kind, srs_k = _srs.dev(logrows, store, index)
    else:
        srs_digest, kind, srs_k = _srs.fetch_public(settings, logrows, store)
    srs_file = _ezkl.artifact_path(store, srs_digest, work, "kzg.srs")
    step("keys")
    vk, pk = work / "vk.key", work / "pk.key"
    _ezkl.call(
        "setup", ezkl.setup, str(circuit), str(vk), str(pk), str(srs_file), None, False,
        user_error=False,
    )  # fmt: skip
    param_hash = None
    if plan.param_visibility == "hashed":
        write_data(work / "one.json", tensors[:1])
        param_hash = _param_hash(work, work / "one.json", circuit)
    n_public = len(plan.names) if plan.input_visibility == "public" else 0
    return ZkSetup(
        model_digest=plan.model_digest,
        input_visibility=plan.input_visibility,
        param_visibility=plan.param_visibility,
        target=plan.target,
        decomp=plan.decomp,
        input_names=plan.names,
        input_shapes=plan.shapes,
        output_shapes=_output_shapes(info, n_public),
        input_scales=tuple(int(s) for s in info["model_input_scales"]),
        output_scales=tuple(int(s) for s in info["model_output_scales"]),
        logrows=logrows,
        settings_digest=_ezkl.put_file(store, settings),
        circuit_digest=_ezkl.put_file(store, circuit),
        vk_digest=_ezkl.put_file(store, vk),
        pk_digest=_ezkl.put_file(store, pk),
        srs_digest=srs_digest,
        srs_kind=kind,
        srs_logrows=srs_k,
        param_hash=param_hash,
        ezkl_version=_ezkl.EZKL_VERSION,
    )


def _output_shapes(info: Mapping[str, Any], n_public_inputs: int) -> tuple[tuple[int, ...], ...]:
    shapes = [tuple(int(d) for d in s) for s in info["model_instance_shapes"]]
    n_outputs = len(info["model_output_scales"])
    outs = shapes[n_public_inputs:]
    if len(outs) != n_outputs:
        raise ZkError(f"EZKL settings list {len(shapes)} instance shapes, unexpected")
    return tuple(outs)


def _param_hash(work: Path, data: Path, circuit: Path) -> tuple[str, ...]:
    """The Poseidon hash of the weights, as the circuit computes it (from one witness)."""
    witness = work / "witness.json"
    _ezkl.call("gen_witness", ezkl.gen_witness, str(data), str(circuit), str(witness), None, None)
    hashes = _ezkl.read_json(witness, "witness")["processed_params"]["poseidon_hash"]
    if not hashes:
        raise ZkError("EZKL witness has no weight hash although params are hashed")
    return tuple(check_felt(h, "weight hash") for h in hashes)
