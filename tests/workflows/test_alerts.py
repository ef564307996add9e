"""Alert expressions: parsed against the model's outputs, refused with a reason, never eval'ed."""

from __future__ import annotations

import numpy as np
import pytest

from inferproof.errors import InputError
from inferproof.runtime import TensorSpec
from inferproof.workflows import parse_alert

OUTPUTS = [
    TensorSpec("probabilities", "float32", (None, 2)),
    TensorSpec("prob", "float32", (1,)),
    TensorSpec("label", "int64", (None,)),
]


@pytest.mark.parametrize(
    ("text", "outputs", "fires"),
    [
        ("output.prob > 0.8", {"prob": [0.9]}, True),
        ("output.prob > 0.8", {"prob": [0.8]}, False),
        ("output.prob >= 0.8", {"prob": [0.8]}, True),
        ("0.8 < output.prob", {"prob": [0.9]}, True),
        ("0.8 < output.prob", {"prob": [0.7]}, False),
        ("output.probabilities[0][1] >= 0.5", {"probabilities": [[0.4, 0.6]]}, True),
        ("output.label[0] == 1", {"label": [1]}, True),
        ("output.label[0] != 1", {"label": [1]}, False),
        ("output.prob > 0.5 and output.label[0] == 0", {"prob": [0.9], "label": [1]}, False),
        ("output.prob > 0.95 or output.label[0] == 1", {"prob": [0.9], "label": [1]}, True),
        # "and" binds tighter than "or": (a and b) or c
        (
            "output.prob < 0 and output.prob > 1 or output.label[0] == 1",
            {"prob": [0.5], "label": [1]},
            True,
        ),
        ("output.prob > -1e-3", {"prob": [0.0]}, True),
    ],
)
def test_alerts_fire_on_the_outputs(text: str, outputs, fires: bool) -> None:
    alert = parse_alert(text, OUTPUTS)
    arrays = {k: np.asarray(v) for k, v in outputs.items()}
    assert alert.fires(arrays) is fires


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "1 to 500 characters"),
        ("x" * 501, "1 to 500 characters"),
        ("__import__('os').system('id')", "cannot read"),
        ("output.prob > 0.8; import os", "cannot read"),
        ("output.prob > nan", "cannot read"),
        ("output.prob >", "must compare an output with a number"),
        ("1 > 2", "must compare an output with a number"),
        ("output.prob > 1 and", "must compare an output with a number"),
        ("output.prob > output.label[0]", "must compare an output with a number"),
        ("output.nope > 1", "the model has no output 'nope'"),
        ("output.probabilities > 0.8", "pick one element"),
        ("output.probabilities[0] > 0.8", "needs 2 index(es)"),
        ("output.probabilities[0][2] > 1", "index 2 is out of range"),
        (" or ".join(["output.prob > 0"] * 17), "at most 16 conditions"),
        ("output.prob > 1e999", "not a finite number"),
    ],
)
def test_bad_alerts_are_refused_at_parse_time(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_alert(text, OUTPUTS)


def test_an_index_past_a_symbolic_dimension_fails_clearly() -> None:
    alert = parse_alert("output.label[3] > 0", OUTPUTS)
    with pytest.raises(InputError, match=r"output.label\[3\] is outside the output's shape \[1\]"):
        alert.fires({"label": np.array([1])})
