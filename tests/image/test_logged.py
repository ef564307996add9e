"""Policy ``environment.require_logged_image``, run as a user runs it (real processes):
a receipt from a node running a logged image passes and says where it is logged; one
from an unlogged image, from no image, or checked against a forged image entry fails.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from inferproof.errors import InputError
from inferproof.testing import credit_risk_model
from inferproof.verify import TrustRoot, parse_policy
from tests._cli import inferproof

ROOT = Path(__file__).resolve().parents[2]
EPOCH = 1_700_000_000


def _pem(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))  # fmt: skip
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """A home whose log holds a published image, whose publisher it trusts; a model
    and its input; a policy requiring a logged image."""
    tmp = tmp_path_factory.mktemp("logged")
    env = {**os.environ, "INFERPROOF_HOME": str(tmp / "home"), "SOURCE_DATE_EPOCH": str(EPOCH)}
    env.pop("INFERPROOF_IMAGE", None)
    image = tmp / "image"
    built = inferproof(env, "image", "build", "-o", str(image), "--checkout", str(ROOT))
    assert built.returncode == 0, built.stderr
    digest = built.stdout.strip().splitlines()[-1]
    key = ec.generate_private_key(ec.SECP256R1())
    published = inferproof(env, "image", "publish", str(image), "--sign-key",
                           str(_pem(key, tmp / "publisher.pem")))  # fmt: skip
    assert published.returncode == 0, published.stderr
    trust = tmp / "home" / "trust" / "publishers"
    trust.mkdir(parents=True, exist_ok=True)
    (trust / "images.pem").write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))  # fmt: skip
    model, inputs = credit_risk_model()
    (tmp / "model.onnx").write_bytes(model)
    (tmp / "x.json").write_text(json.dumps(inputs))
    (tmp / "policy.json").write_text(json.dumps({"environment": {"require_logged_image": True}}))
    yield {"tmp": tmp, "env": env, "image": image, "digest": digest}


def _receipt(world: dict[str, object], name: str, image: str | None) -> Path:
    tmp, env = world["tmp"], dict(world["env"])  # type: ignore[call-overload]
    assert isinstance(tmp, Path)
    if image is not None:
        env["INFERPROOF_IMAGE"] = image
    out = tmp / f"{name}.bundle.json"
    done = inferproof(env, "infer", str(tmp / "model.onnx"), "--input", str(tmp / "x.json"),
                      "-o", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    return out


def _verify(world: dict[str, object], bundle: Path, *images: Path) -> tuple[int, str]:
    """The exit code, and the environment check's "status detail" (or the error)."""
    tmp = world["tmp"]
    assert isinstance(tmp, Path)
    args = [a for i in images for a in ("--image", str(i))]
    done = inferproof(world["env"], "verify", str(bundle), "--json", "--policy",  # type: ignore[arg-type]
                      str(tmp / "policy.json"), *args)  # fmt: skip
    if not done.stdout.strip():
        return done.returncode, " ".join(done.stderr.split())
    (env,) = [c for c in json.loads(done.stdout)["checks"] if c["name"] == "environment"]
    return done.returncode, f"environment: {env['status']} {env['detail']}"


def test_a_receipt_from_a_logged_image_passes_and_says_where(world: dict[str, object]) -> None:
    digest = str(world["digest"])
    bundle = _receipt(world, "logged", digest)
    code, said = _verify(world, bundle, world["image"])  # type: ignore[arg-type]
    assert code == 0, said
    assert f"environment: passed image {digest} (logged at index 0 of" in said
    assert "SBOM with 6 packages" in said and "self-reported by a software node" in said


def test_an_unlogged_image_or_none_fails(world: dict[str, object]) -> None:
    other = _receipt(world, "unlogged", "sha256:" + "ab" * 32)
    code, said = _verify(world, other, world["image"])  # type: ignore[arg-type]
    assert (
        code != 0 and f"image sha256:{'ab' * 32} is in no image entry this verifier trusts" in said
    )
    bare = _receipt(world, "bare", None)
    code, said = _verify(world, bare, world["image"])  # type: ignore[arg-type]
    assert code != 0 and "the receipt names no image" in said
    # The logged image's receipt, without the image entry given: not accepted either.
    logged = _receipt(world, "nothing-given", str(world["digest"]))
    code, said = _verify(world, logged)
    assert code != 0 and "is in no image entry this verifier trusts" in said


def test_a_forged_image_entry_is_refused(world: dict[str, object], tmp_path: Path) -> None:
    """The entry re-signed by a key this home does not trust, its log proof kept."""
    image = world["image"]
    assert isinstance(image, Path)
    forged = tmp_path / "forged"
    shutil.copytree(image, forged)
    obj = json.loads((forged / "image-entry.json").read_bytes())
    from inferproof._canonical import canonical_json
    from inferproof.image import image_entry
    from inferproof.receipts import envelope_payload

    statement = json.loads(envelope_payload(obj["envelope"]))
    (forged / "image-entry.json").write_bytes(
        image_entry(statement, ec.generate_private_key(ec.SECP256R1()))
    )
    bundle = _receipt(world, "forged", str(world["digest"]))
    code, said = _verify(world, bundle, forged)
    assert code != 0 and "error: image.entry:" in said and "not a trusted publisher" in said
    # The genuine entry with a flipped byte fails its log proof or its signature.
    flipped = tmp_path / "flipped"
    shutil.copytree(image, flipped)
    data = bytearray(canonical_json(obj))
    data[len(data) // 2] ^= 0x01
    (flipped / "image-entry.json").write_bytes(bytes(data))
    code, said = _verify(world, bundle, flipped)
    assert code != 0 and "Traceback" not in said


def test_the_policy_key_is_parsed_strictly() -> None:
    _, policy = parse_policy(
        {"environment": {"require_logged_image": True}}, TrustRoot.from_keys([])
    )
    assert policy.require_logged_image
    with pytest.raises(InputError, match="require_logged_image must be true or false"):
        parse_policy({"environment": {"require_logged_image": "yes"}}, TrustRoot.from_keys([]))


def test_a_bad_image_variable_is_refused(world: dict[str, object]) -> None:
    tmp, env = world["tmp"], {**world["env"], "INFERPROOF_IMAGE": "latest"}  # type: ignore[dict-item]
    assert isinstance(tmp, Path)
    done = inferproof(env, "infer", str(tmp / "model.onnx"), "--input", str(tmp / "x.json"),
                      "-o", str(tmp / "bad.json"))  # fmt: skip
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "INFERPROOF_IMAGE must be an image digest" in " ".join(done.stderr.split())


def test_image_verify_by_digest_rebuilds_the_logged_image(world: dict[str, object]) -> None:
    digest = str(world["digest"])
    env = world["env"]
    done = inferproof(env, "image", "verify", digest, "--checkout", str(ROOT))  # type: ignore[arg-type]
    assert done.returncode == 0, done.stderr
    assert f"image.reproduced: passed rebuilt {digest} byte for byte" in done.stdout
    unknown = inferproof(env, "image", "verify", "sha256:" + "cd" * 32, "--checkout",  # type: ignore[arg-type]
                         str(ROOT))  # fmt: skip
    assert unknown.returncode != 0 and "Traceback" not in unknown.stderr
    assert len(unknown.stderr.strip().splitlines()) == 1, unknown.stderr
