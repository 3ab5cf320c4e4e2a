"""Under pytest-xdist every worker checks its own tests; verdicts match a plain run."""

from __future__ import annotations

import pytest

pytest.importorskip("xdist")

SUITE = """
import pytest
KEEP = []

class Widget:
    pass

@pytest.mark.parametrize("i", range(6))
def test_clean(i):
    assert [i] * 3

def test_leak_one():
    KEEP.append(Widget())

def test_leak_two():
    KEEP.append(Widget())
"""


@pytest.mark.parametrize("workers", ["2", "auto"])
def test_xdist_gives_the_same_verdicts(tester: pytest.Pytester, workers: str) -> None:
    tester.makepyfile(SUITE)
    plain = tester.runpytest_subprocess("--gcguard")
    plain.assert_outcomes(passed=8, errors=2)
    distributed = tester.runpytest_subprocess("--gcguard", "-p", "xdist", "-n", workers)
    distributed.assert_outcomes(passed=8, errors=2)
    distributed.stdout.fnmatch_lines_random(
        [
            "*= gcguard summary =*",
            "2 leaking test(s):",
            "  test_xdist_gives_the_same_verdicts.py::test_leak_one  test_*.Widget      1",
            "  test_xdist_gives_the_same_verdicts.py::test_leak_two  test_*.Widget      1",
        ]
    )


def test_junit_xml_records_the_failure_and_properties(tester: pytest.Pytester) -> None:
    tester.makepyfile(SUITE)
    result = tester.runpytest_subprocess("--gcguard", "-p", "xdist", "-n", "2", "--junitxml=out.xml")
    result.assert_outcomes(passed=8, errors=2)
    xml = (tester.path / "out.xml").read_text()
    assert xml.count('message="failed on teardown with &quot;Failed: gcguard:') == 2
    assert '<property name="gcguard_leaked_objects" value="1"' in xml
