"""The node fixtures of tests/node, for core tests that also go through a node."""

from ..node.conftest import make_node, running, small_model

__all__ = ["make_node", "running", "small_model"]
