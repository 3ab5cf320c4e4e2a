from __future__ import annotations

import pytest


class GcGuardWarning(pytest.PytestWarning):
    """Something gcguard could not do (write a graph, check a test) without failing it."""

    __module__ = "pytest_gcguard"
