"""pytest-gcguard: find memory leaks and reference cycles test by test.

Besides the plugin (``pytest --gcguard``), two checks for one piece of code,
usable in any test, unittest case or script:

* ``assert_no_leaks(func, *args, **kwargs)`` calls ``func`` (again when it
  leaves objects alive) and raises ``LeakError`` when what it keeps alive grows
  on every call;
* ``with check():`` fails when its block leaves objects alive (or, with
  ``cycles=True``, makes reference cycles).
"""

from __future__ import annotations

from ._pytest_internals import load_unrewritten

# First: the modules below load as plain modules even under pytest's rewriting hook.
load_unrewritten(__name__)

from ._block import Checks, LeakError, assert_no_leaks, check  # noqa: E402
from ._warnings import GcGuardWarning  # noqa: E402

__all__ = ["Checks", "GcGuardWarning", "LeakError", "__version__", "assert_no_leaks", "check"]


def __getattr__(name: str) -> str:
    if name == "__version__":
        from importlib.metadata import version

        return version("pytest-gcguard")
    raise AttributeError(name)
