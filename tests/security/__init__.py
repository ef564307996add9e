"""Regression tests for the findings of the outside security review (issue 11).

Each test module is named after the finding it reproduces, and each test's
docstring names it; hostile inputs live in ``assets/`` under the finding's name,
built by the committed ``assets/make_assets.py``.
"""
