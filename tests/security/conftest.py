"""The node fixtures of tests/node, for the review's HTTP regression tests."""

from ..node.conftest import make_node, running, small_model

__all__ = ["make_node", "running", "small_model"]
