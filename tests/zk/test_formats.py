"""Records, proofs, field elements, SRS choice and bad inputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import ezkl
import numpy as np
import pytest

from inferproof._canonical import canonical_json, sha256_digest
from inferproof.errors import InputError
from inferproof.proofs import zk
from inferproof.proofs.zk import _felts

from .conftest import DECOMP, Env, Model


def test_setup_record_round_trip(setups: Any) -> None:
    setup = setups("a", "hashed", "hashed")
    again = zk.ZkSetup.from_bytes(setup.canonical())
    assert again == setup
    assert again.digest() == sha256_digest(canonical_json(setup.to_json()))
    assert setup.to_json()["visibility"] == {"input": "hashed", "param": "hashed",
                                             "output": "public"}  # fmt: skip


def test_setup_record_refuses_non_canonical_and_bad_fields(setups: Any) -> None:
    setup = setups("a")
    pretty = json.dumps(setup.to_json(), indent=1).encode()
    with pytest.raises(InputError, match="canonical"):
        zk.ZkSetup.from_bytes(pretty)
    for mutate, match in [
        (lambda o: o.update(extra=1), "unexpected"),
        (lambda o: o["srs"].update(kind="trusted"), "srs kind"),
        (lambda o: o["artifacts"].update(vk="sha256:00"), "vk digest"),
        (lambda o: o["visibility"].update(output="hashed"), "output visibility"),
        (lambda o: o.update(param_hash=["ff" * 32]), "param hash"),
    ]:
        body = setup.to_json()
        mutate(body)
        with pytest.raises(InputError, match=match):
            zk.ZkSetup.from_json(body)


def test_proof_round_trip_and_limits(setups: Any, env: Env, model_a: Model) -> None:
    setup = setups("a")
    x = model_a.samples[0]["x"]
    proof = zk.prove(setup, {"x": x}, env.store)
    wire = json.loads(json.dumps(proof.to_json()))
    again = zk.ZkProof.from_json(wire)
    assert again.to_json() == proof.to_json()
    checks = zk.verify(setup, again, env.store, model_digest=model_a.digest,
                       output_values=again.outputs, input_tensors={"x": x}, allow_dev_srs=True,
                       model_bytes=model_a.data)  # fmt: skip
    assert all(c.passed for c in checks)
    for key, value, match in [
        ("proof", "AB" * 10, "lowercase hex"),
        ("proof", "zz", "not hex"),
        ("instances", [_felts.int_to_felt(255).upper()], "64 lowercase hex"),
        ("instances", [(_felts.BN254_R).to_bytes(32, "little").hex()], "not reduced"),
        ("format", "other/v1", "format"),
    ]:
        with pytest.raises(InputError, match=match):
            zk.ZkProof.from_json({**wire, key: value})


def test_wrong_instance_count_fails_every_binding(setups: Any, env: Env, model_a: Model) -> None:
    setup = setups("a")
    x = model_a.samples[0]["x"]
    proof = zk.prove(setup, {"x": x}, env.store)
    short = zk.ZkProof.from_json({**proof.to_json(), "instances": list(proof.instances[:-1])})
    checks = {c.name: c.status.value for c in zk.verify(
        setup, short, env.store, model_digest=model_a.digest, output_values=proof.outputs,
        input_tensors={"x": x}, allow_dev_srs=True)}  # fmt: skip
    assert checks["zk.proof"] == "failed"
    assert checks["zk.model"] == checks["zk.input"] == checks["zk.output"] == "failed"


def test_quantise_matches_ezkl() -> None:
    rng = np.random.default_rng(4)
    values = np.concatenate([rng.normal(size=50), np.array([1.5, -1.5, 2.5, -2.5, 0.5, -0.5])
                             / 2**7, np.array([0.0, -0.0, 3.0])])  # fmt: skip
    ours = _felts.quantise(values, 7)
    theirs = [_felts.felt_to_int(ezkl.float_to_felt(float(v), 7, ezkl.PyInputType.F64))
              for v in values]  # fmt: skip
    assert ours == theirs
    assert _felts.felt_to_int(_felts.int_to_felt(-5)) == -5
    with pytest.raises(InputError, match="NaN"):
        _felts.quantise(np.array([np.nan]), 7)


def test_srs_choice_is_required_and_single(model_a: Model, env: Env) -> None:
    common = (model_a.data, model_a.digest, model_a.samples, env.store, env.index)
    with pytest.raises(InputError, match="exactly one SRS"):
        zk.setup(*common, decomp=DECOMP)
    with pytest.raises(InputError, match="exactly one SRS"):
        zk.setup(*common, decomp=DECOMP, dev_srs=True, online_srs=True)


def test_user_srs_must_be_the_public_ceremony(setups: Any, env: Env, model_a: Model,
                                              tmp_path: Path) -> None:  # fmt: skip
    setup = setups("a")
    dev_file = tmp_path / "kzg.srs"
    dev_file.write_bytes(env.store.get(setup.srs_digest))
    steps: list[str] = []
    with pytest.raises(InputError, match="not one of EZKL's public ceremony SRS"):
        zk.setup(model_a.data, model_a.digest, model_a.samples, env.store, env.index,
                 decomp=(1024, 3), srs_path=dev_file, progress=steps.append)  # fmt: skip
    assert steps[-1] == "srs"
    assert zk.public_srs_logrows("sha256:" + zk.PUBLIC_SRS_SHA256[15]) == 15
    assert zk.public_srs_logrows(setup.srs_digest) is None


def test_bad_inputs_are_input_errors(setups: Any, env: Env, model_a: Model) -> None:
    setup = setups("a")
    x = model_a.samples[0]["x"]
    with pytest.raises(InputError, match="circuit takes"):
        zk.prove(setup, {"y": x}, env.store)
    with pytest.raises(InputError, match="shape"):
        zk.prove(setup, {"x": x.reshape(2, 4)}, env.store)
    with pytest.raises(InputError, match="NaN"):
        zk.prove(setup, {"x": np.full_like(x, np.nan)}, env.store)
    with pytest.raises(InputError, match="do not hash"):
        zk.setup(model_a.data, "sha256:" + "0" * 64, model_a.samples, env.store, env.index,
                 dev_srs=True)  # fmt: skip
    with pytest.raises(InputError, match="shape"):
        zk.setup(model_a.data, model_a.digest, [{"x": np.zeros((1, 3), np.float32)}],
                 env.store, env.index, dev_srs=True)  # fmt: skip
    with pytest.raises(InputError, match="not a readable ONNX"):
        zk.setup(b"junk", sha256_digest(b"junk"), model_a.samples, env.store, env.index,
                 dev_srs=True)  # fmt: skip
    with pytest.raises(InputError, match="target"):
        zk.setup(model_a.data, model_a.digest, model_a.samples, env.store, env.index,
                 dev_srs=True, target="speed")  # type: ignore[arg-type]  # fmt: skip


def test_index_file_round_trip_and_malformed(tmp_path: Path) -> None:
    index = zk.JsonSetupIndex(tmp_path)
    digest = sha256_digest(b"record")
    assert index.get("sha256:" + "1" * 64, "k") is None
    index.put("sha256:" + "1" * 64, "k", digest)
    assert zk.JsonSetupIndex(tmp_path).get("sha256:" + "1" * 64, "k") == digest
    (tmp_path / "index.json").write_text('{"a": 1}')
    with pytest.raises(InputError, match="malformed"):
        index.get("a", "k")
