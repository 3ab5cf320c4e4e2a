"""Refs mode: leaks the gc cannot see, found by counting memory blocks and references."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNTRACKED_LEAKS = """
import logging, warnings
import pytest

NAMES = []
TOTALS = {}

@pytest.fixture(scope="module")
def shared():
    return {"k": [1]}

@pytest.fixture
def resource(tmp_path):
    yield tmp_path / "r"

def test_str_leak():
    NAMES.append("name-%d" % len(NAMES))          # a str: not tracked by the gc

def test_int_leak():
    TOTALS[len(TOTALS)] = 10**40 + len(TOTALS)    # ints in a dict: not tracked either

def test_clean_with_fixtures(resource, shared, capsys, caplog, monkeypatch, recwarn, tmp_path):
    print("out")
    logging.getLogger("refs").warning("logged")
    warnings.warn("w", UserWarning)
    monkeypatch.setenv("GCGUARD_X", "1")
    (tmp_path / "f").write_text("x")
    assert shared and resource

def test_clean_replaces_global():
    global NAMES
    NAMES = list(NAMES)
"""


def test_refs_mode_catches_leaks_of_untracked_objects(tester: pytest.Pytester) -> None:
    tester.makepyfile(test_untracked=UNTRACKED_LEAKS)
    # Without refs mode the gc sees nothing: a str or int is not a tracked object.
    plain = tester.runpytest_subprocess("--gcguard", "-W", "ignore::UserWarning")
    plain.assert_outcomes(passed=4)
    result = tester.runpytest_subprocess(
        "--gcguard", "--gcguard-refs", "-W", "ignore::UserWarning", "--gcguard-json=o.json"
    )
    result.assert_outcomes(passed=4, errors=2)
    result.stdout.fnmatch_lines_random(
        [
            "gcguard: test_untracked.py::test_str_leak: 1 memory block(s) per run*",
            "gcguard: test_untracked.py::test_int_leak: 1 memory block(s) per run*",
            "  memory the gc does not track grew in each of 3 measured run(s) of the test*",
            "    memory blocks (sys.getallocatedblocks): +*, +1, +1",
        ]
    )
    result.stdout.no_fnmatch_line("*ERROR at teardown of test_clean*")
    records = {r["nodeid"].rpartition("::")[2]: r for r in json.loads((tester.path / "o.json").read_text())["tests"]}
    memory = records["test_str_leak"]["memory"]
    assert records["test_str_leak"]["verdict"] == "leaked"
    assert memory["blocks_per_run"] == 1
    assert len(memory["blocks"]) == 3
    assert records["test_clean_with_fixtures"]["verdict"] == "clean"
    assert records["test_clean_with_fixtures"]["memory"]["blocks_per_run"] == 0


def test_refs_mode_drops_what_pytest_keeps_for_fixtures_requested_by_name(tester: pytest.Pytester) -> None:
    """A fixture requested with ``request.getfixturevalue`` (as pytest-asyncio requests its
    loop runner for every async test) leaves its spent finalizer, with its fixture request,
    on each broader-scoped fixture it uses: the runner's memory, not the test's."""
    tester.makepyfile(
        test_by_name="""
        import pytest

        @pytest.fixture(scope="session")
        def sess_a():
            return object()

        @pytest.fixture(scope="session")
        def sess_b():
            return object()

        @pytest.fixture
        def runner(sess_a, sess_b):
            yield 1

        def test_1(request):
            assert request.getfixturevalue("runner") == 1

        def test_2(request):
            assert request.getfixturevalue("runner") == 1

        def test_last():
            pass
        """
    )
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-refs", "--gcguard-json=o.json", "-p", "no:randomly")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["gcguard: checked 3 test(s);*0 leaking*"])
    records = {r["nodeid"].rpartition("::")[2]: r for r in json.loads((tester.path / "o.json").read_text())["tests"]}
    for name in ("test_1", "test_2", "test_last"):
        assert records[name]["verdict"] == "clean", records[name]
        assert records[name]["memory"]["blocks_per_run"] == 0, records[name]


def test_refs_mode_from_marker_and_baseline(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        test_marked="""
        import pytest
        NAMES = []

        @pytest.mark.gcguard(refs=True)
        def test_str_leak():
            NAMES.append("name-%d" % len(NAMES))
        """
    )
    result = tester.runpytest_subprocess("--gcguard-baseline=b.json", "--gcguard-update-baseline")
    result.assert_outcomes(passed=1)
    assert json.loads((tester.path / "b.json").read_text())["tests"] == {"test_marked.py::test_str_leak": {"blocks": 1}}
    result = tester.runpytest_subprocess("--gcguard-baseline=b.json", "--gcguard-json=out.json")
    result.assert_outcomes(passed=1)
    (record,) = json.loads((tester.path / "out.json").read_text())["tests"]
    assert (record["verdict"], record["outcome"]) == ("leaked", "baselined")
    assert record["memory"]["blocks_per_run"] == 1


def _dbg_python() -> str | None:
    return shutil.which("python3.11-dbg")


@pytest.mark.skipif(
    sys.version_info[:2] != (3, 11) or _dbg_python() is None,
    reason="needs Debian's python3.11-dbg (a debug build) and a 3.11 environment to borrow pytest from",
)
def test_refs_mode_counts_references_on_a_debug_build(tester: pytest.Pytester) -> None:
    # An extra reference on an existing object: no new object, no new memory block;
    # only a debug build's sys.gettotalrefcount() sees it.
    tester.makepyfile(
        test_capi="""
        import ctypes
        HELD = ["an object the C code keeps a reference to"]

        def test_reference_leak():
            ctypes.pythonapi.Py_IncRef(ctypes.py_object(HELD))

        def test_clean():
            assert ctypes.py_object(HELD).value is HELD
        """
    )
    # The debug interpreter borrows this environment's pure-Python packages.
    import _pytest

    import pytest_gcguard

    paths = {str(Path(_pytest.__file__).parent.parent), str(Path(pytest_gcguard.__file__).parent.parent)}
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sorted(paths)))
    env.pop("PYTHONDEVMODE", None)
    dbg = _dbg_python()
    assert dbg is not None
    probe = subprocess.run(
        [dbg, "-c", "import sys; print(hasattr(sys, 'gettotalrefcount'))"], capture_output=True, text=True, env=env
    )
    assert probe.stdout.strip() == "True", probe.stderr
    proc = subprocess.run(
        [dbg, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly", "--gcguard", "--gcguard-refs"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tester.path,
        timeout=300,
    )
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    assert "gcguard: test_capi.py::test_reference_leak: 1 reference(s) per run" in out, out
    assert "    references (sys.gettotalrefcount, debug build): +" in out, out
    assert ", +1, +1\n" in out, out
    assert "ERROR at teardown of test_clean" not in out, out
