"""Real proofs: what must verify, and every way a proof must fail to."""

from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path
from typing import Any

import ezkl
import numpy as np
import onnxruntime as ort
import pytest

from inferproof._checks import CheckStatus
from inferproof.errors import BlobCorruptError
from inferproof.proofs import zk

from .conftest import Env, Model, make_model


def statuses(checks: tuple[Any, ...]) -> dict[str, CheckStatus]:
    return {c.name: c.status for c in checks}


def run_onnx(model: Model, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.data, providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {"x": x})[0])


def check_all(setup: zk.ZkSetup, proof: zk.ZkProof, env: Env, model: Model,
              x: np.ndarray, **kw: Any) -> dict[str, CheckStatus]:  # fmt: skip
    kw.setdefault("output_values", proof.outputs)
    kw.setdefault("input_tensors", {"x": x})
    kw.setdefault("allow_dev_srs", True)
    return statuses(zk.verify(setup, proof, env.store, model_digest=model.digest, **kw))


ALL_PASSED = {
    **dict.fromkeys(
        ["zk.setup", "zk.srs", "zk.proof", "zk.model", "zk.input", "zk.output"],
        CheckStatus.PASSED,
    ),
    "zk.model.rederived": CheckStatus.NOT_CHECKED,
}


@pytest.mark.parametrize(
    ("inp", "param"), [("public", "fixed"), ("hashed", "hashed"), ("public", "hashed")]
)
def test_valid_proof_verifies_and_computes_the_model(
    setups: Any, env: Env, model_a: Model, inp: str, param: str
) -> None:
    setup = setups("a", inp, param)
    x = model_a.samples[1]["x"]
    proof = zk.prove(setup, {"x": x}, env.store)
    assert check_all(setup, proof, env, model_a, x) == ALL_PASSED
    # The circuit's output is the model's output up to quantisation (onnxruntime float).
    assert np.allclose(proof.outputs[0], run_onnx(model_a, x), atol=0.02)
    assert proof.outputs[0].shape == (1, 2)
    assert proof.timing["prove"] > 0


def test_proof_for_another_model_fails_fixed(setups: Any, env: Env, model_a: Model) -> None:
    setup_a, setup_b = setups("a"), setups("b")
    x = model_a.samples[0]["x"]
    proof_b = zk.prove(setup_b, {"x": x}, env.store)
    # As presented: made for another setup.
    got = check_all(setup_a, proof_b, env, model_a, x)
    assert got["zk.setup"] is CheckStatus.FAILED
    assert got["zk.proof"] is CheckStatus.FAILED  # B's weights are not in A's verifying key
    # Relabelled as if made for A: the verifying key still rejects it.
    forged = zk.ZkProof.from_json({**proof_b.to_json(), "setup": setup_a.digest()})
    got = check_all(setup_a, forged, env, model_a, x)
    assert got["zk.setup"] is CheckStatus.PASSED
    assert got["zk.proof"] is CheckStatus.FAILED


def test_proof_for_another_model_fails_hashed(setups: Any, env: Env, model_a: Model) -> None:
    setup_a, setup_b = setups("a", "hashed", "hashed"), setups("b", "hashed", "hashed")
    x = model_a.samples[0]["x"]
    proof_b = zk.prove(setup_b, {"x": x}, env.store)
    forged = zk.ZkProof.from_json({**proof_b.to_json(), "setup": setup_a.digest()})
    got = check_all(setup_a, forged, env, model_a, x)
    assert got["zk.model"] is CheckStatus.FAILED  # weight hash is B's, not A's


def test_proof_for_another_model_digest_fails(setups: Any, env: Env, model_a: Model,
                                              model_b: Model) -> None:  # fmt: skip
    setup = setups("a")
    x = model_a.samples[0]["x"]
    proof = zk.prove(setup, {"x": x}, env.store)
    got = check_all(setup, proof, env, model_b, x)
    assert got["zk.setup"] is CheckStatus.FAILED


@pytest.mark.parametrize(("inp", "param"), [("public", "fixed"), ("hashed", "hashed")])
def test_another_input_fails(setups: Any, env: Env, model_a: Model, inp: str, param: str) -> None:
    setup = setups("a", inp, param)
    x = model_a.samples[0]["x"]
    proof = zk.prove(setup, {"x": x}, env.store)
    other = x.copy()
    other[0, 3] += 0.01
    got = check_all(setup, proof, env, model_a, x, input_tensors={"x": other})
    assert got["zk.input"] is CheckStatus.FAILED
    missing = check_all(setup, proof, env, model_a, x, input_tensors=None)
    assert missing["zk.input"] is CheckStatus.NOT_CHECKED


def test_hashed_input_checked_by_hash(setups: Any, env: Env, model_a: Model) -> None:
    setup = setups("a", "hashed", "hashed")
    x = model_a.samples[2]["x"]
    proof = zk.prove(setup, {"x": x}, env.store)
    # The hash ezkl.poseidon_hash gives for EZKL's own quantisation of x.
    felts = [ezkl.float_to_felt(float(v), setup.input_scales[0], ezkl.PyInputType.F32)
             for v in x.reshape(-1)]  # fmt: skip
    expected = ezkl.poseidon_hash(felts)
    assert list(proof.input_binding) == expected
    ok = check_all(setup, proof, env, model_a, x, input_tensors=None, input_hash=expected)
    assert ok["zk.input"] is CheckStatus.PASSED
    bad = zk._felts.int_to_felt(12345)
    got = check_all(setup, proof, env, model_a, x, input_tensors=None, input_hash=[bad])
    assert got["zk.input"] is CheckStatus.FAILED


def test_edited_output_fails(setups: Any, env: Env, model_a: Model) -> None:
    setup = setups("a")
    x = model_a.samples[0]["x"]
    proof = zk.prove(setup, {"x": x}, env.store)
    step = 2.0 ** -setup.output_scales[0]
    claimed = proof.outputs[0].copy()
    claimed[0, 1] += 0.4 * step  # same grid point: the tolerance, half a step
    assert check_all(setup, proof, env, model_a, x, output_values=[claimed])["zk.output"] is (
        CheckStatus.PASSED
    )
    claimed[0, 1] += 0.6 * step  # now one full step away: another output
    got = check_all(setup, proof, env, model_a, x, output_values=[claimed])
    assert got["zk.output"] is CheckStatus.FAILED
    assert got["zk.proof"] is CheckStatus.PASSED
    # Editing the output inside the proof breaks the proof itself.
    body = proof.to_json()
    body["instances"][-1] = zk._felts.int_to_felt(proof.quantised_output[-1] + 1)
    body["quantised_output"][-1] += 1
    edited = zk.ZkProof.from_json(body)
    got = check_all(setup, edited, env, model_a, x, output_values=edited.outputs)
    assert got["zk.proof"] is CheckStatus.FAILED
    assert got["zk.output"] is CheckStatus.PASSED


def test_flipped_proof_bit_fails(setups: Any, env: Env, model_a: Model) -> None:
    setup = setups("a")
    x = model_a.samples[0]["x"]
    proof = zk.prove(setup, {"x": x}, env.store)
    raw = bytearray(proof.proof)
    raw[100] ^= 0x01
    body = {**proof.to_json(), "proof": bytes(raw).hex()}
    got = check_all(setup, zk.ZkProof.from_json(body), env, model_a, x)
    assert got["zk.proof"] is CheckStatus.FAILED


def _prove_with_foreign_circuit(env: Env, setup: zk.ZkSetup, perturbed: Model,
                                x: np.ndarray) -> zk.ZkProof:  # fmt: skip
    """What a cheating node does: its own weights, the original proving key."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "m.onnx").write_bytes(perturbed.data)
        (work / "s.json").write_bytes(env.store.get(setup.settings_digest))
        (work / "d.json").write_text(json.dumps({"input_data": [x.reshape(-1).tolist()]}))
        srs, pk = env.store.path(setup.srs_digest), env.store.path(setup.pk_digest)
        ezkl.compile_circuit(str(work / "m.onnx"), str(work / "c.ezkl"), str(work / "s.json"))
        ezkl.gen_witness(str(work / "d.json"), str(work / "c.ezkl"), str(work / "w.json"),
                         None, None)  # fmt: skip
        ezkl.prove(str(work / "w.json"), str(work / "c.ezkl"), str(pk), str(work / "p.json"),
                   str(srs))  # fmt: skip
        raw = json.loads((work / "p.json").read_text())
    instances = raw["instances"][0]
    n_out = 2
    return zk.ZkProof(
        setup_digest=setup.digest(), proof=bytes(raw["proof"]), instances=tuple(instances),
        input_binding=(), quantised_output=tuple(
            zk._felts.felt_to_int(f) for f in instances[-n_out:]),
        output_scales=setup.output_scales, output_shapes=setup.output_shapes,
    )  # fmt: skip


@pytest.mark.parametrize(("param", "failing"), [("fixed", "zk.proof"), ("hashed", "zk.model")])
def test_perturbed_weights_with_original_key_fail(
    setups: Any, env: Env, model_a: Model, param: str, failing: str
) -> None:
    setup = setups("a", "public", param)
    perturbed = make_model(seed=1, perturb=0.5)
    x = model_a.samples[0]["x"]
    proof = _prove_with_foreign_circuit(env, setup, perturbed, x)
    got = check_all(setup, proof, env, model_a, x)
    assert got[failing] is CheckStatus.FAILED
    if param == "hashed":
        # The proof itself is valid (hashed weights are a witness); only the hash binds.
        assert got["zk.proof"] is CheckStatus.PASSED


def test_dev_srs_rejected_unless_allowed(setups: Any, env: Env, model_a: Model) -> None:
    setup = setups("a")
    assert setup.srs_kind == "dev"
    x = model_a.samples[0]["x"]
    proof = zk.prove(setup, {"x": x}, env.store)
    strict = zk.verify(setup, proof, env.store, model_digest=model_a.digest,
                       output_values=proof.outputs, input_tensors={"x": x})  # fmt: skip
    by_name = {c.name: c for c in strict}
    assert by_name["zk.srs"].status is CheckStatus.FAILED
    assert "forge" in by_name["zk.srs"].detail
    assert by_name["zk.proof"].status is CheckStatus.PASSED
    allowed = check_all(setup, proof, env, model_a, x, allow_dev_srs=True)
    assert allowed["zk.srs"] is CheckStatus.PASSED


def test_corrupt_artifacts_refused(setups: Any, env: Env, model_a: Model,
                                   store_copy: Any) -> None:  # fmt: skip
    setup = setups("a")
    x = model_a.samples[0]["x"]
    proof = zk.prove(setup, {"x": x}, env.store)
    for digest in (setup.vk_digest, setup.pk_digest):
        path = store_copy.path(digest)
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))
    checks = {c.name: c for c in zk.verify(setup, proof, store_copy, model_digest=model_a.digest,
              output_values=proof.outputs, input_tensors={"x": x}, allow_dev_srs=True)}  # fmt: skip
    assert checks["zk.proof"].status is CheckStatus.FAILED
    assert "corrupt" in checks["zk.proof"].detail
    with pytest.raises(BlobCorruptError, match="corrupt"):
        zk.prove(setup, {"x": x}, store_copy)


def test_setup_is_idempotent(env: Env, model_a: Model, setups: Any) -> None:
    first = setups("a")
    steps: list[str] = []
    again = zk.setup(model_a.data, model_a.digest, model_a.samples, env.store, env.index,
                     dev_srs=True, decomp=(1024, 2), progress=steps.append)  # fmt: skip
    assert steps == []
    assert again == first
    fresh: list[str] = []
    other = make_model(seed=7)
    zk.setup(other.data, other.digest, other.samples, env.store, env.index,
             dev_srs=True, decomp=(1024, 2), progress=fresh.append)  # fmt: skip
    assert fresh == list(zk.SETUP_STEPS)


def test_memory_refusal(env: Env, model_a: Model, setups: Any) -> None:
    other = make_model(seed=8)
    steps: list[str] = []
    with pytest.raises(zk._memory.InputError, match="MiB"):
        zk.setup(other.data, other.digest, other.samples, env.store, env.index, dev_srs=True,
                 decomp=(1024, 2), progress=steps.append, available_memory=1 << 20)  # fmt: skip
    assert "keys" not in steps
    with pytest.raises(zk._memory.InputError, match="refusing to start"):
        zk.prove(setups("a"), model_a.samples[0], env.store, available_memory=1 << 20)


def test_memory_estimate_covers_measurements() -> None:
    # Peak RSS measured for prove (see _memory.py): (logrows, pk MiB, peak MiB).
    measured = [(12, 29, 128), (12, 40, 143), (14, 112, 329), (14, 162, 403), (16, 264, 634),
                (16, 628, 1376), (17, 528, 1261), (17, 1256, 2661)]  # fmt: skip
    for logrows, pk_mib, peak_mib in measured:
        assert zk.estimate_bytes(logrows, pk_mib << 20) >= peak_mib << 20
        assert zk.estimate_bytes(logrows, pk_mib << 20) < 3 * (peak_mib << 20)


def test_weight_hash_is_poseidon_of_quantised_weights(
    setups: Any, env: Env, model_a: Model
) -> None:
    import onnx
    from onnx import numpy_helper

    setup = setups("a", "public", "hashed")
    graph = onnx.load_from_string(model_a.data).graph
    scale = json.loads(env.store.get(setup.settings_digest))["run_args"]["param_scale"]
    felts: list[str] = []
    for init in graph.initializer:
        for v in numpy_helper.to_array(init).reshape(-1):
            felts.append(ezkl.float_to_felt(float(v), scale, ezkl.PyInputType.F32))
    assert tuple(ezkl.poseidon_hash(felts)) == setup.param_hash


def test_batch_proves_several_inputs(env: Env) -> None:
    model = make_model(seed=3, batch=4)
    setup = zk.setup(model.data, model.digest, model.samples, env.store, env.index,
                     dev_srs=True, decomp=(1024, 2))  # fmt: skip
    assert setup.batch_size == 4
    x = model.samples[0]["x"]
    proof = zk.prove(setup, {"x": x}, env.store)
    assert proof.outputs[0].shape == (4, 2)
    assert np.allclose(proof.outputs[0], run_onnx(model, x), atol=0.02)
    assert check_all(setup, proof, env, model, x) == ALL_PASSED
    with pytest.raises(zk._memory.InputError, match="shape"):
        zk.prove(setup, {"x": x[:1]}, env.store)


@pytest.mark.parametrize("param", ["fixed", "hashed"])
def test_model_binding_rederived_from_model_file(
    setups: Any, env: Env, model_a: Model, model_b: Model, param: str
) -> None:
    setup_a, setup_b = setups("a", "public", param), setups("b", "public", param)
    x = model_a.samples[0]["x"]
    proof_a = zk.prove(setup_a, {"x": x}, env.store)
    honest = check_all(setup_a, proof_a, env, model_a, x, model_bytes=model_a.data)
    assert honest["zk.model.rederived"] is CheckStatus.PASSED
    # A record that claims model A but carries B's key and weight hash (made by
    # whoever wants B's outputs to pass as A's): everything else passes, and only
    # re-deriving from A's file shows the lie.
    forged = dataclasses.replace(setup_b, model_digest=model_a.digest)
    proof_b = zk.prove(setup_b, {"x": x}, env.store)
    relabelled = zk.ZkProof.from_json({**proof_b.to_json(), "setup": forged.digest()})
    got = check_all(forged, relabelled, env, model_a, x, model_bytes=model_a.data)
    assert got["zk.proof"] is CheckStatus.PASSED and got["zk.model"] is CheckStatus.PASSED
    assert got["zk.model.rederived"] is CheckStatus.FAILED
    wrong_file = check_all(setup_a, proof_a, env, model_a, x, model_bytes=model_b.data)
    assert wrong_file["zk.model.rederived"] is CheckStatus.FAILED
