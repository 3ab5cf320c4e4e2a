from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


@pytest.fixture
def tester(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """``pytester`` with a fixed ini, so inner runs do not inherit this project's settings.

    Inner runs that check gc results go through ``runpytest_subprocess``: an
    in-process run shares the garbage collector with this session.
    """
    pytester.makeini(
        """
        [pytest]
        console_output_style = classic
        addopts = -p no:cacheprovider -p no:randomly
        asyncio_default_fixture_loop_scope = function
        """
    )
    # Also for the tests that write an ini of their own (pytest-asyncio warns without it).
    monkeypatch.setenv("PYTEST_ADDOPTS", "-o asyncio_default_fixture_loop_scope=function")
    return pytester
