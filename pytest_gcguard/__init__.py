"""pytest-gcguard: find memory leaks and reference cycles test by test."""

from __future__ import annotations

from ._warnings import GcGuardWarning

__all__ = ["GcGuardWarning", "__version__"]


def __getattr__(name: str) -> str:
    if name == "__version__":
        from importlib.metadata import version

        return version("pytest-gcguard")
    raise AttributeError(name)
