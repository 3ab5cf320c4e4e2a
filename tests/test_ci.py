"""What CI reads: the JSON report, JUnit properties, the baseline, expected leaks, warn mode, xdist."""

from __future__ import annotations

import json
from typing import Any

import pytest

SUITE = """
import gc
import pytest
KEEP = []

class Widget:
    pass

class Gadget:
    pass

def test_clean():
    assert [1, 2, 3]

def test_leak_widget():
    KEEP.append(Widget())

def test_leak_gadgets():
    KEEP.extend([Gadget(), Gadget()])

def test_skipped():
    pytest.skip("not today")

def test_fails():
    assert 0

@pytest.mark.gcguard(enabled=False)
def test_opted_out():
    KEEP.append(Widget())
"""

RECORD_KEYS = {
    "set_aside",
    "suspicion",
    "nodeid",
    "verdict",
    "outcome",
    "reason",
    "leaked",
    "uncollectable",
    "cycles",
    "memory",
    "reruns",
    "seconds",
    "notes",
    "graphs",
}
LEAK_KEYS = {"type", "count", "growth", "samples", "why_alive", "root", "allocated_at"}


def check_schema(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The README's JSON schema, checked key by key; returns the records by test name."""
    assert set(document) == {"schema", "plugin", "version", "settings", "totals", "tests", "stale_baseline_entries"}
    assert document["schema"] == 1
    assert document["plugin"] == "pytest-gcguard"
    assert isinstance(document["version"], str)
    assert document["version"]
    assert set(document["settings"]) == {
        "cycles",
        "ignore",
        "only",
        "allow",
        "reruns",
        "graph_dir",
        "trace",
        "warn",
        "refs",
        "diagnosis",
        "baseline",
    }
    assert set(document["totals"]) == {"verdicts", "outcomes"}
    assert set(document["totals"]["verdicts"]) == {"clean", "leaked", "uncollectable", "cycles", "skipped"}
    assert set(document["totals"]["outcomes"]) == {
        "passed",
        "failed",
        "warned",
        "expected",
        "baselined",
        "recorded",
        "skipped",
    }
    assert sum(document["totals"]["verdicts"].values()) == len(document["tests"])
    nodeids = [r["nodeid"] for r in document["tests"]]
    assert nodeids == sorted(nodeids)
    by_name = {}
    for record in document["tests"]:
        assert set(record) == RECORD_KEYS
        assert record["verdict"] in document["totals"]["verdicts"]
        assert record["outcome"] in document["totals"]["outcomes"]
        assert isinstance(record["reason"], str)
        assert isinstance(record["reruns"], int)
        assert set(record["seconds"]) == {"reruns", "diagnosis"}
        assert all(isinstance(s, float) and s >= 0 for s in record["seconds"].values())
        if not record["reruns"]:
            assert record["seconds"]["reruns"] == 0
        assert isinstance(record["notes"], list)
        assert isinstance(record["graphs"], list)
        for leak in record["leaked"]:
            assert set(leak) == LEAK_KEYS
            assert isinstance(leak["count"], int)
            assert leak["count"] > 0
        assert all(isinstance(n, int) for n in record["uncollectable"].values())
        if record["cycles"] is not None:
            assert set(record["cycles"]) == {"count", "types", "example"}
        if record["set_aside"] is not None:
            assert set(record["set_aside"]) == {"reason", "types"}
            assert all(isinstance(n, int) for n in record["set_aside"]["types"].values())
        if record["suspicion"] is not None:
            assert record["reruns"] > 0
            assert set(record["suspicion"]) == {"cause", "first_run"}
            causes = {"first use", "bounded cache", "replacing", "leak", "cycles", "not confirmed"}
            assert record["suspicion"]["cause"] in causes
            assert all(isinstance(n, int) and n > 0 for n in record["suspicion"]["first_run"].values())
        if record["memory"] is not None:
            assert set(record["memory"]) == {"blocks", "references", "blocks_per_run", "references_per_run"}
        by_name[record["nodeid"].rpartition("::")[2]] = record
    return by_name


def test_json_report_covers_every_checked_test(tester: pytest.Pytester) -> None:
    tester.makepyfile(test_suite=SUITE)
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-json=reports/gcguard.json")
    result.assert_outcomes(passed=4, failed=1, skipped=1, errors=2)
    result.stdout.fnmatch_lines(["JSON report: *reports*gcguard.json"])
    records = check_schema(json.loads((tester.path / "reports" / "gcguard.json").read_text()))
    assert set(records) == {
        "test_clean",
        "test_leak_widget",
        "test_leak_gadgets",
        "test_skipped",
        "test_fails",
        "test_opted_out",
    }
    assert records["test_clean"]["verdict"] == "clean"
    assert records["test_clean"]["outcome"] == "passed"
    widget = records["test_leak_widget"]
    assert (widget["verdict"], widget["outcome"], widget["reruns"]) == ("leaked", "failed", 2)
    [leak] = widget["leaked"]
    assert (leak["type"], leak["count"], leak["growth"]) == ("test_suite.Widget", 1, [1, 1])
    assert leak["why_alive"].startswith("module test_suite -> KEEP (list) -> [")
    assert leak["samples"][0].startswith("<test_suite.Widget object at 0x")
    gadgets = records["test_leak_gadgets"]["leaked"]
    assert [(g["type"], g["count"]) for g in gadgets] == [("test_suite.Gadget", 2)]
    assert records["test_skipped"]["verdict"] == "skipped"
    assert records["test_skipped"]["reason"] == "not judged: the test skipped"
    assert records["test_fails"]["reason"] == "not judged: the test failed"
    assert records["test_opted_out"]["reason"] == "disabled by @pytest.mark.gcguard(enabled=False)"


CAUSES = """
import functools
import itertools

KEEP = []
FIRST_USE = {}
COUNTER = itertools.count()

class Widget:
    pass

class Entry:
    pass

SLOTS = [Entry() for _ in range(64)]

@functools.lru_cache(maxsize=32)
def lookup(key):
    return [key]

def test_clean():
    assert [1, 2, 3]

def test_first_use():
    if not FIRST_USE:
        FIRST_USE.update((n, [n]) for n in range(20))

def test_leak():
    KEEP.append(Widget())

def test_bounded_cache():
    for _ in range(3):
        lookup(next(COUNTER))

def test_replacing():
    # A ring buffer at capacity: every run's entries replace older ones.
    for _ in range(4):
        SLOTS[next(COUNTER) % len(SLOTS)] = Entry()
"""


def test_json_record_says_why_a_test_was_suspected(tester: pytest.Pytester) -> None:
    """Each suspected test's record names how its suspicion ended and its first run's suspects."""
    tester.makepyfile(test_causes=CAUSES)
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-json=out.json", "-p", "no:randomly")
    result.assert_outcomes(passed=5, errors=1)
    records = check_schema(json.loads((tester.path / "out.json").read_text()))
    causes = {name: (r["suspicion"] or {}).get("cause") for name, r in records.items()}
    assert causes == {
        "test_clean": None,
        "test_first_use": "first use",
        "test_leak": "leak",
        "test_bounded_cache": "bounded cache",
        "test_replacing": "replacing",
    }
    assert records["test_clean"]["verdict"] == "clean"
    assert records["test_first_use"]["suspicion"]["first_run"] == {"list": 20, "dict": 1}
    assert records["test_leak"]["suspicion"]["first_run"] == {"test_causes.Widget": 1}
    assert records["test_replacing"]["verdict"] == "clean"
    assert records["test_replacing"]["set_aside"]["types"] == {"test_causes.Entry": 4}


def test_json_report_lists_uncollectable_cycles_and_graphs(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        test_kinds="""
        import _testcapi

        @_testcapi.with_tp_del
        class Legacy:
            def __tp_del__(self):
                pass

        def test_uncollectable():
            a = Legacy()
            a.self = a

        class Node:
            def __init__(self):
                self.other = self

        def test_cycle():
            for _ in range(3):
                Node()
        """
    )
    result = tester.runpytest_subprocess(
        "--gcguard", "--gcguard-cycles", "--gcguard-reruns=0", "--gcguard-json=out.json"
    )
    result.assert_outcomes(passed=2, errors=2)
    records = check_schema(json.loads((tester.path / "out.json").read_text()))
    assert records["test_uncollectable"]["verdict"] == "uncollectable"
    assert records["test_uncollectable"]["uncollectable"]["test_kinds.Legacy"] == 1
    cycles = records["test_cycle"]["cycles"]
    assert records["test_cycle"]["verdict"] == "cycles"
    assert cycles["count"] >= 3  # three Nodes (and their instance dicts before 3.11)
    assert cycles["types"]["test_kinds.Node"] == 3
    assert cycles["example"].startswith("test_kinds.Node")


def test_junit_xml_gets_key_figures_as_properties(tester: pytest.Pytester) -> None:
    tester.makepyfile(test_suite=SUITE)
    result = tester.runpytest_subprocess("--gcguard", "--junitxml=out.xml")
    result.assert_outcomes(passed=4, failed=1, skipped=1, errors=2)
    xml = (tester.path / "out.xml").read_text()
    for line in (
        '<property name="gcguard" value="test_suite.py::test_leak_gadgets: test_suite.Gadget x2" />',
        '<property name="gcguard_verdict" value="leaked" />',
        '<property name="gcguard_outcome" value="failed" />',
        '<property name="gcguard_leaked_objects" value="2" />',
        '<property name="gcguard_leaked_types" value="test_suite.Gadget=2" />',
        '<property name="gcguard_reruns" value="2" />',
    ):
        assert line in xml


BASELINE_SUITE = """
KEEP = []

class Widget:
    pass

class Gadget:
    pass

def test_clean():
    pass

def test_widget():
    KEEP.append(Widget())

def test_gadget():
    KEEP.append(Gadget())
"""


def test_baseline_round_trip(tester: pytest.Pytester) -> None:
    tester.makepyfile(test_legacy=BASELINE_SUITE)
    # Day one: record today's leaks; the run passes and says where they went.
    result = tester.runpytest_subprocess(
        "--gcguard", "--gcguard-baseline=gcguard-baseline.json", "--gcguard-update-baseline"
    )
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [
            "2 leak(s) recorded in the baseline *gcguard-baseline.json:",
            "baseline: 2 test(s) with known leaks written to *gcguard-baseline.json",
        ]
    )
    baseline = tester.path / "gcguard-baseline.json"
    assert baseline.read_text() == (
        '{"gcguard_baseline": 1, "tests": {\n'
        '  "test_legacy.py::test_gadget": {"leaked": {"test_legacy.Gadget": 1}},\n'
        '  "test_legacy.py::test_widget": {"leaked": {"test_legacy.Widget": 1}}\n'
        "}}\n"
    )
    # The known leaks pass.
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-baseline=gcguard-baseline.json", "-v")
    result.assert_outcomes(passed=3)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["2 known leak(s) within the baseline *:", "*test_legacy.py::test_gadget*Gadget*1"])

    # A new leaking test, a new type, and a larger count fail; a fixed leak is reported as stale.
    tester.makepyfile(
        test_legacy=BASELINE_SUITE.replace("KEEP.append(Widget())", "KEEP.extend([Widget(), Widget()])")
        .replace("KEEP.append(Gadget())", "pass")
        .replace("def test_clean():\n    pass", "def test_clean():\n    KEEP.append(Gadget())")
        + "\ndef test_new():\n    KEEP.append({1: []})\n"
    )
    result = tester.runpytest_subprocess(
        "--gcguard", "--gcguard-baseline=gcguard-baseline.json", "--gcguard-json=out.json"
    )
    result.assert_outcomes(passed=4, errors=3)
    result.stdout.fnmatch_lines_random(
        [
            "*beyond the baseline *gcguard-baseline.json: test_legacy.Widget x2 (baseline 1)",
            "*beyond the baseline *gcguard-baseline.json: test_legacy.Gadget x1 (baseline 0)",
            "*beyond the baseline *gcguard-baseline.json: dict x1 (baseline 0), list x1 (baseline 0)",
            "1 stale baseline entry (leak fixed or smaller; refresh with --gcguard-update-baseline):",
            "  test_legacy.py::test_gadget: fixed",
        ]
    )
    document = json.loads((tester.path / "out.json").read_text())
    assert document["stale_baseline_entries"] == {"test_legacy.py::test_gadget": "fixed"}

    # Told to, stale entries fail an otherwise green run.
    tester.makepyfile(test_legacy=BASELINE_SUITE.replace("KEEP.append(Gadget())", "pass"))
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-baseline=gcguard-baseline.json")
    result.assert_outcomes(passed=3)
    assert result.ret == pytest.ExitCode.OK
    result = tester.runpytest_subprocess(
        "--gcguard", "--gcguard-baseline=gcguard-baseline.json", "--gcguard-fail-stale"
    )
    result.assert_outcomes(passed=3)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*failing the run: stale baseline entries (--gcguard-fail-stale)"])

    # Ratchet down: updating drops the fixed entry.
    tester.runpytest_subprocess(
        "--gcguard", "--gcguard-baseline=gcguard-baseline.json", "--gcguard-update-baseline"
    ).assert_outcomes(passed=3)
    assert json.loads(baseline.read_text())["tests"] == {
        "test_legacy.py::test_widget": {"leaked": {"test_legacy.Widget": 1}}
    }


def test_baseline_from_ini_is_relative_to_rootdir(tester: pytest.Pytester) -> None:
    tester.makeini(
        """
        [pytest]
        addopts = -p no:cacheprovider -p no:randomly
        gcguard = true
        gcguard_baseline = ci/baseline.json
        """
    )
    (tester.path / "ci").mkdir()
    (tester.path / "ci" / "baseline.json").write_text(
        '{"gcguard_baseline": 1, "tests": {\n  "tests/test_x.py::test_widget": {"leaked": {"test_x.Widget": 1}}\n}}\n'
    )
    tests = tester.mkdir("tests")
    (tests / "test_x.py").write_text(BASELINE_SUITE)
    result = tester.runpytest_subprocess("tests", "-p", "no:randomly")
    result.assert_outcomes(passed=3, errors=1)  # test_gadget is not in the baseline
    result.stdout.fnmatch_lines(["*beyond the baseline *ci*baseline.json: test_x.Gadget x1 (baseline 0)"])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "*--gcguard-baseline: *b.json does not exist (record it with --gcguard-update-baseline)"),
        ("{not json", "*--gcguard-baseline: *b.json is not valid JSON*"),
        ('{"tests": {}}', "*--gcguard-baseline: *b.json is not a gcguard baseline*"),
        (
            '{"gcguard_baseline": 1, "tests": {"t.py::x": {"leaked": {"A": -1}}}}',
            "*count of 'A' must be a whole number >= 0, got -1",
        ),
    ],
)
def test_bad_baseline_is_a_usage_error(tester: pytest.Pytester, content: str | None, message: str) -> None:
    tester.makepyfile("def test_x(): pass")
    if content is not None:
        (tester.path / "b.json").write_text(content)
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-baseline=b.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_update_baseline_needs_a_path(tester: pytest.Pytester) -> None:
    tester.makepyfile("def test_x(): pass")
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-update-baseline")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--gcguard-update-baseline needs --gcguard-baseline=PATH*"])


def test_expected_leak_is_a_strict_xfail(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        test_expected="""
        import pytest
        KEEP = []

        @pytest.mark.gcguard(expect_leak="issue 12: the registry never forgets")
        def test_known_leak():
            KEEP.append(type("Thing", (), {})())  # a class made anew each run: the same leak

        @pytest.mark.gcguard(expect_leak=True)
        def test_leak_was_fixed():
            pass

        @pytest.mark.gcguard(expect_leak=3)
        def test_bad_marker():
            pass
        """
    )
    result = tester.runpytest_subprocess("-rxXfE", "--gcguard-json=out.json")
    result.assert_outcomes(passed=2, xfailed=1, errors=2)
    result.stdout.fnmatch_lines_random(
        [
            # pytest 9 says "XFAIL at teardown of ...", pytest 8.4 "XFAIL ...".
            "XFAIL *test_expected.py::test_known_leak - gcguard: expected leak "
            "(issue 12: the registry never forgets): *test_expected.Thing x1*",
            "*gcguard: [[]XPASS(strict)[]] test_expected.py::test_leak_was_fixed: expected leak did not happen: *",
            "ERROR test_expected.py::test_bad_marker - Failed: bad @pytest.mark.gcguard*",
            "1 expected leak(s), declared by @pytest.mark.gcguard(expect_leak=...):",
            "1 expected leak(s) that did not happen (strict: the tests fail):",
        ]
    )
    records = check_schema(json.loads((tester.path / "out.json").read_text()))
    assert records["test_known_leak"]["outcome"] == "expected"
    assert records["test_leak_was_fixed"]["outcome"] == "failed"
    assert records["test_leak_was_fixed"]["verdict"] == "clean"
    assert records["test_leak_was_fixed"]["set_aside"] is None
    assert records["test_bad_marker"]["verdict"] == "skipped"
    result.stdout.no_fnmatch_line("*bounded cache*")


WARN_SUITE = """
import pytest
KEEP = []

def test_leaks():
    KEEP.append([1])

@pytest.mark.filterwarnings("ignore::pytest_gcguard.GcGuardWarning")
def test_leaks_quietly():
    KEEP.append([2])
"""


def test_warn_mode_turns_leaks_into_warnings(tester: pytest.Pytester) -> None:
    tester.makepyfile(test_warn=WARN_SUITE)
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-warn", "--gcguard-json=out.json")
    result.assert_outcomes(passed=2, warnings=1)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "*= warnings summary =*",
            "test_warn.py::test_leaks",
            "*GcGuardWarning: gcguard: test_warn.py::test_leaks: 1 leaked object(s)*",
            "2 leaking test(s), reported as warnings:",
        ]
    )
    records = check_schema(json.loads((tester.path / "out.json").read_text()))
    assert records["test_leaks"]["outcome"] == "warned"
    # -W error turns the warning back into an error, as for any other warning.
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-warn", "-W", "error::pytest_gcguard.GcGuardWarning")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["ERROR test_warn.py::test_leaks - pytest_gcguard.GcGuardWarning: gcguard: *"])


def test_warn_mode_from_ini_and_marker(tester: pytest.Pytester) -> None:
    tester.makeini(
        """
        [pytest]
        addopts = -p no:cacheprovider -p no:randomly
        gcguard = true
        gcguard_warn = true
        """
    )
    tester.makepyfile(
        test_warn="""
        import pytest
        KEEP = []

        def test_warns():
            KEEP.append([1])

        @pytest.mark.gcguard(warn=False)
        def test_must_not_leak():
            KEEP.append([2])
        """
    )
    result = tester.runpytest_subprocess()
    result.assert_outcomes(passed=2, errors=1, warnings=1)
    result.stdout.fnmatch_lines(["ERROR test_warn.py::test_must_not_leak - Failed: gcguard: *"])


def test_summary_table_is_limited_by_verbosity(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        test_many="""
        import pytest
        KEEP = []

        class A: pass
        class B: pass
        class C: pass
        class D: pass

        @pytest.mark.parametrize("i", range(12))
        def test_leaks(i):
            KEEP.extend([A(), B(), C(), D()])
        """
    )
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-reruns=1")
    result.assert_outcomes(passed=12, errors=12)
    result.stdout.fnmatch_lines(
        [
            "12 leaking test(s):",
            "  test  * type  * count",
            "  test_many.py::test_leaks[[]0[]] *test_many.A *1",
            "  *test_many.B *1",
            "  *test_many.C *1",
            "  *... 1 more type(s) (-v shows all)",
            "  test_many.py::test_leaks[[]1[]] *test_many.A *1",
        ]
    )
    result.stdout.fnmatch_lines(["  ... 2 more test(s) (-v shows all, --gcguard-json lists all)"])
    result.stdout.no_fnmatch_line("*test_leaks?11? *test_many.A*")
    verbose = tester.runpytest_subprocess("--gcguard", "--gcguard-reruns=1", "-v")
    verbose.stdout.fnmatch_lines(["  test_many.py::test_leaks[[]11[]] *test_many.A *1", "*test_many.D *1"])
    verbose.stdout.no_fnmatch_line("*more test(s)*")
    quiet = tester.runpytest_subprocess("--gcguard", "--gcguard-reruns=1", "-qq")
    quiet.stdout.no_fnmatch_line("*gcguard summary*")


def test_xdist_controller_writes_the_same_json_and_baseline(tester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    tester.makepyfile(test_suite=SUITE)
    plain = tester.runpytest_subprocess(
        "--gcguard", "--gcguard-json=plain.json", "--gcguard-baseline=plain-baseline.json", "--gcguard-update-baseline"
    )
    plain.assert_outcomes(passed=4, failed=1, skipped=1)
    distributed = tester.runpytest_subprocess(
        "--gcguard",
        "--gcguard-json=xdist.json",
        "--gcguard-baseline=xdist-baseline.json",
        "--gcguard-update-baseline",
        "-p",
        "xdist",
        "-n",
        "2",
    )
    distributed.assert_outcomes(passed=4, failed=1, skipped=1)
    assert not list(tester.path.glob("*.tmp"))

    def verdicts(name: str) -> dict[str, tuple[str, str, list[tuple[str, int]]]]:
        records = check_schema(json.loads((tester.path / name).read_text()))
        return {
            test: (r["verdict"], r["outcome"], [(leak["type"], leak["count"]) for leak in r["leaked"]])
            for test, r in records.items()
        }

    assert verdicts("plain.json") == verdicts("xdist.json")
    assert verdicts("xdist.json")["test_leak_gadgets"] == ("leaked", "recorded", [("test_suite.Gadget", 2)])
    assert (tester.path / "plain-baseline.json").read_text() == (tester.path / "xdist-baseline.json").read_text()
    # And the comparison against it, distributed, passes the known leaks.
    result = tester.runpytest_subprocess(
        "--gcguard", "--gcguard-baseline=xdist-baseline.json", "-p", "xdist", "-n", "2"
    )
    result.assert_outcomes(passed=4, failed=1, skipped=1)
    result.stdout.fnmatch_lines(["2 known leak(s) within the baseline *xdist-baseline.json (-v lists them)"])


def test_unwritable_json_path_fails_the_run_as_a_usage_error(tester: pytest.Pytester) -> None:
    # A report CI asked for and did not get must not pass silently, nor end in a
    # traceback (a warning did, under filterwarnings = error).
    tester.makepyfile("def test_x(): pass")
    (tester.path / "blocker").write_text("a file, not a directory")
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-json=blocker/out.json")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines(["*gcguard summary*", "error: --gcguard-json: cannot write *blocker*out.json*"])
    result.stdout.fnmatch_lines(["gcguard: checked 1 test(s); 0 suspected*0 leaking*"])  # judged clean


def test_unittest_skips_and_expected_failures_are_not_judged(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        test_unit="""
        import unittest
        KEEP = []

        class T(unittest.TestCase):
            @unittest.skip("not today")
            def test_skipped(self):
                pass

            @unittest.expectedFailure
            def test_expected_failure(self):
                KEEP.append([1])
                assert False

            def test_leaks(self):
                KEEP.append([2])
        """
    )
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-json=out.json")
    result.assert_outcomes(passed=1, skipped=1, xfailed=1, errors=1)
    records = check_schema(json.loads((tester.path / "out.json").read_text()))
    assert records["test_skipped"]["reason"] == "not judged: the test skipped"
    assert records["test_expected_failure"]["reason"] == "not judged: the test xfailed"
    assert records["test_skipped"]["reruns"] == records["test_expected_failure"]["reruns"] == 0
    assert records["test_leaks"]["verdict"] == "leaked"
