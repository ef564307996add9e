"""Scheduled, verifiable inference on data feeds (issue 15; in progress).

Example::

    from inferproof.workflows import parse_alert
    alert = parse_alert("output.prob > 0.8", model_outputs)
"""

from __future__ import annotations

from ._alerts import Alert, parse_alert

__all__ = ["Alert", "parse_alert"]
