"""LocalNode.infer takes plain nested lists, typed by the model, as Client.infer does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inferproof import LocalNode
from inferproof.errors import InputError
from inferproof.testing import credit_risk_model


def test_plain_lists_are_typed_by_the_model(tmp_path: Path) -> None:
    model, sample = credit_risk_model()
    with LocalNode(tmp_path / "n") as node:
        node.push(model, name="credit")
        plain = node.infer("credit", sample)
        typed = node.infer("credit", {"X": np.array(sample["X"], np.float32)})
        assert plain.bundle.receipt.input_digest == typed.bundle.receipt.input_digest
        np.testing.assert_array_equal(
            plain.outputs["probabilities"], typed.outputs["probabilities"]
        )
        for bad, message in [
            ({"X": [["a", 1, 2, 3]]}, "must be numbers"),
            ({"X": [[1.5, 2, 3]]}, "shape"),
            ({"X": object()}, "numpy arrays or nested lists"),
            ({}, "non-empty mapping"),
        ]:
            with pytest.raises(InputError, match=message):
                node.infer("credit", bad)
