"""With the plugins people combine installed for real, leaks still fail the run and clean tests stay clean."""

from __future__ import annotations

import json
from typing import Any

import pytest

pytest.importorskip("pytest_asyncio")
pytest.importorskip("hypothesis")
pytest.importorskip("pytest_mock")

SUITE = {
    "test_mixed.py": """
        import asyncio
        import logging
        import warnings

        import pytest
        from hypothesis import given, settings, strategies as st

        KEPT = []
        TASKS = set()

        class Widget:
            pass

        def test_warm_up():
            pass

        def test_clean_sync(tmp_path, caplog, capsys):
            logging.getLogger("combo").info("hello")
            warnings.warn("old", DeprecationWarning)
            print("out")
            (tmp_path / "f").write_text("x")

        @pytest.mark.asyncio
        async def test_clean_async():
            await asyncio.sleep(0)
            task = asyncio.get_running_loop().create_task(asyncio.sleep(0))
            await task

        @given(st.lists(st.integers(), max_size=20))
        @settings(database=None, max_examples=30)
        def test_clean_hypothesis(xs):
            assert sorted(sorted(xs)) == sorted(xs)

        def test_clean_thread():
            import threading
            out = []
            thread = threading.Thread(target=lambda: out.append([1]))
            thread.start()
            thread.join()
            assert out

        def test_clean_mocker(mocker):
            fake = mocker.patch("os.getcwd", return_value="/nowhere")
            import os
            assert os.getcwd() == "/nowhere"
            assert fake.call_count == 1

        def test_leak_sync():
            KEPT.append(Widget())

        @pytest.mark.asyncio
        async def test_leak_async_task():
            task = asyncio.get_running_loop().create_task(asyncio.sleep(0))
            TASKS.add(task)
            await task
        """,
}

LEAKS = {"test_leak_sync", "test_leak_async_task"}

SETUPS = {
    "asyncio-hypothesis-mock": [],
    "randomly": ["-p", "randomly", "-p", "no:cacheprovider"],
    "timeout": ["--timeout=120"],
    "rerunfailures": ["--reruns=1"],
    "cov": ["--cov=.", "--cov-report="],
    "xdist": ["-n", "2"],
    "all-together": ["-p", "randomly", "--timeout=120", "--reruns=1", "--cov=.", "--cov-report=", "-n", "2"],
}


def records_of(tester: pytest.Pytester) -> dict[str, dict[str, Any]]:
    document = json.loads((tester.path / "gcguard.json").read_text())
    return {record["nodeid"].partition("::")[2]: record for record in document["tests"]}


@pytest.mark.parametrize("setup", list(SETUPS.values()), ids=list(SETUPS))
def test_leaks_fail_and_clean_tests_stay_clean(
    tester: pytest.Pytester, setup: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    if any(arg.startswith("--cov") for arg in setup):
        # The inner run measures its own coverage: not into this suite's data
        # (tox measures this suite, subprocesses included).
        monkeypatch.delenv("COVERAGE_PROCESS_CONFIG", raising=False)
        monkeypatch.delenv("COVERAGE_PROCESS_START", raising=False)
        monkeypatch.setenv("COVERAGE_FILE", str(tester.path / ".coverage"))
    tester.makepyfile(**SUITE)
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-json=gcguard.json", *setup)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    records = records_of(tester)
    assert set(records) == {
        "test_warm_up",
        "test_clean_sync",
        "test_clean_async",
        "test_clean_hypothesis",
        "test_clean_mocker",
        "test_clean_thread",
        *LEAKS,
    }
    for name, record in records.items():
        if name in LEAKS:
            assert (record["verdict"], record["outcome"]) == ("leaked", "failed"), (name, record)
        else:
            assert (record["verdict"], record["outcome"]) == ("clean", "passed"), (name, record)
    outcomes = result.parseoutcomes()
    # pytest-rerunfailures runs a failed test again: its call passes once more.
    reruns = len(LEAKS) if "--reruns=1" in setup else 0
    assert outcomes.get("rerun", 0) == reruns
    assert outcomes["passed"] == len(records) + reruns
    assert outcomes.get("errors", outcomes.get("error")) == len(LEAKS)
    result.stdout.fnmatch_lines(["*gcguard: checked 8 test(s);*; 2 leaking*"])


@pytest.mark.parametrize("method", ["signal", "thread"])
def test_pytest_timeout_does_not_cut_the_confirmation_reruns(tester: pytest.Pytester, method: str) -> None:
    # Each run takes 0.4 s; three runs (the test and two reruns) exceed the 1 s
    # timeout meant for the test itself.
    tester.makepyfile(
        test_slow="""
        import time

        KEPT = []

        def test_slow_leak():
            time.sleep(0.4)
            KEPT.append([1])

        def test_slow_clean():
            time.sleep(0.4)
        """
    )
    result = tester.runpytest_subprocess(
        "--gcguard", "--gcguard-json=gcguard.json", "--timeout=1", f"--timeout-method={method}"
    )
    records = records_of(tester)
    assert records["test_slow_leak"]["verdict"] == "leaked", records["test_slow_leak"]
    assert records["test_slow_clean"]["verdict"] == "clean", records["test_slow_clean"]
    result.assert_outcomes(passed=2, errors=1)


def test_tests_gcguard_could_not_judge_are_named_with_their_reason(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        test_unjudged="""
        import gc
        import pytest

        RUNS = []

        def test_freezes():
            gc.freeze()

        def test_fails_on_its_rerun():
            RUNS.append([len(RUNS)])
            assert len(RUNS) == 1

        def test_fails():
            assert False

        @pytest.mark.skip(reason="not today")
        def test_skipped():
            pass
        """
    )
    result = tester.runpytest_subprocess("--gcguard")
    result.stdout.fnmatch_lines(
        [
            "*gcguard summary*",
            "2 test(s) not judged:",
            "  test_unjudged.py::test_freezes: not judged: the test called gc.freeze()*",
            "  test_unjudged.py::test_fails_on_its_rerun: not judged: suspected leak not confirmed, rerun 1 failed*",
        ]
    )
    result = tester.runpytest_subprocess("--gcguard", "-v")
    result.stdout.fnmatch_lines(["4 test(s) not judged:"])


def test_a_test_whose_rerun_fails_is_named_as_the_cause_of_what_fails_after_it(tester: pytest.Pytester) -> None:
    """A rerun that fails part way keeps what it changed (pypubsub's ``setTopicUnspecifiedFatal``
    test leaves strict mode on when its rerun's ``pytest.raises`` sees no error, and 103 later
    tests failed with ``--gcguard`` only).  gcguard cannot undo that; it warns at the test whose
    rerun failed and says in its summary what to do, so the later failures are explained."""
    tester.makepyfile(
        test_state="""
        import pytest

        TOPICS = {}
        STRICT = [False]

        def send(name):
            if name not in TOPICS:
                if STRICT[0]:
                    raise LookupError(name)
                TOPICS[name] = [name]

        def test_strict_mode():
            STRICT[0] = True
            with pytest.raises(LookupError):
                send("strict")
            STRICT[0] = False
            send("strict")

        def test_later():
            send("other")
        """
    )
    plain = tester.runpytest_subprocess("-p", "no:randomly")
    plain.assert_outcomes(passed=2)
    result = tester.runpytest_subprocess("--gcguard", "-p", "no:randomly", "--gcguard-json=out.json")
    result.assert_outcomes(passed=1, failed=1, warnings=1)
    result.stdout.fnmatch_lines(
        [
            "*GcGuardWarning: gcguard reran this test to confirm a suspected leak, and rerun 1 failed in call: "
            "the test does not run twice the same way, and what that rerun changed (module state, settings) stays "
            "for the tests after it; if later tests fail only with --gcguard, make this one restore what it "
            "changes even when it fails (try/finally, a fixture), or mark it @pytest.mark.gcguard(enabled=False)",
            "*gcguard summary*",
            "1 test(s) not judged:",
            "  test_state.py::test_strict_mode: not judged: suspected leak not confirmed, rerun 1 failed in call",
            "  (a rerun that fails leaves what it changed for the tests after it: if tests fail only with "
            "--gcguard, mark the tests whose rerun failed @pytest.mark.gcguard(enabled=False))",
        ]
    )
    records = {r["nodeid"].rpartition("::")[2]: r for r in json.loads((tester.path / "out.json").read_text())["tests"]}
    assert records["test_strict_mode"]["suspicion"]["cause"] == "not confirmed", records
    tester.makeconftest(
        """
        import pytest

        def pytest_collection_modifyitems(items):
            for item in items:
                if item.name == "test_strict_mode":
                    item.add_marker(pytest.mark.gcguard(enabled=False))
        """
    )
    advised = tester.runpytest_subprocess("--gcguard", "-p", "no:randomly", "--gcguard-json=out.json")
    advised.assert_outcomes(passed=2)  # as the advice says: not rerun, nothing left behind
    records = {r["nodeid"].rpartition("::")[2]: r for r in json.loads((tester.path / "out.json").read_text())["tests"]}
    assert records["test_strict_mode"]["verdict"] == "skipped", records
    assert records["test_later"]["verdict"] == "clean", records


def test_a_hypothesis_rerun_that_fails_stops_at_its_first_failing_example(tester: pytest.Pytester) -> None:
    """A rerun that fails leaves the test unjudged whatever its example: Hypothesis does not
    shrink it (a cattrs test's rerun spent a minute shrinking a failure of cattrs' own).  The
    test's own settings are put back: its next failure outside a rerun is shrunk."""
    tester.makepyfile(
        test_flaky="""
        import json
        import pytest
        from hypothesis import HealthCheck, given, settings, strategies as st

        RUNS = []
        FAILING = {}  # failing examples, by run of the test
        KEPT = []

        def save():
            with open("failing.json", "w") as out:
                json.dump(FAILING, out)

        @pytest.fixture
        def protocol():
            RUNS.append("protocol")
            yield
            save()

        @settings(database=None, max_examples=50, suppress_health_check=list(HealthCheck))
        @given(st.lists(st.integers(), min_size=5))
        def test_fails_from_its_rerun_on(protocol, xs):
            if len(RUNS) == 1:
                KEPT.append([xs])  # suspected, so rerun
            elif sum(xs) >= 1000:
                FAILING[len(RUNS)] = FAILING.get(len(RUNS), 0) + 1
                raise AssertionError("fails on a rerun")

        def test_runs_it_again():
            RUNS.append("direct")
            try:
                test_fails_from_its_rerun_on(None)
            finally:
                save()
        """
    )
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-json=gcguard.json", "-p", "no:randomly")
    records = records_of(tester)
    flaky = records["test_fails_from_its_rerun_on"]
    assert flaky["verdict"] == "skipped", flaky
    assert "rerun 1 failed in call" in flaky["reason"], flaky
    assert flaky["reruns"] == 1, flaky
    assert flaky["suspicion"]["cause"] == "not confirmed", flaky
    assert flaky["suspicion"]["first_run"]["list"] >= 50, flaky  # KEPT's, and Hypothesis's first use
    failing = json.loads((tester.path / "failing.json").read_text())
    assert set(failing) == {"2", "3"}, failing  # the rerun, then the direct call
    rerun, outside = failing["2"], failing["3"]
    # The failing example, and Hypothesis's one replay of it to report it: no shrinking.
    assert rerun <= 3, rerun
    # The test's own settings again: shrinking the same failure takes many more examples.
    assert outside > 10, outside
    result.assert_outcomes(passed=1, failed=1)


def test_a_rerun_leaves_the_fixture_values_as_pytest_benchmarks_report_hook_expects(
    tester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pytest-benchmark's report hook reads ``item.funcargs.get("benchmark")`` in the
    teardown phase, after gcguard's reruns: a rerun must not leave ``funcargs`` None."""
    pytest.importorskip("pytest_benchmark")
    # Under this suite's xdist, the inner run inherits a worker's environment, and
    # pytest-benchmark would leave its JSON to a controller that is not there.
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)
    tester.makepyfile(
        test_bench="""
        KEPT = []

        class Item:
            pass

        def test_leaks():
            KEPT.append(Item())

        def test_leaks_while_benchmarked(benchmark):
            benchmark.pedantic(lambda: KEPT.append(Item()), rounds=1, iterations=1)

        def test_clean_benchmarked(benchmark):
            assert benchmark.pedantic(lambda: sum(range(10)), rounds=1, iterations=1) == 45
        """
    )
    result = tester.runpytest_subprocess(
        "--gcguard", "--gcguard-json=gcguard.json", "-p", "benchmark", "--benchmark-json=bench.json"
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    records = records_of(tester)
    assert {name: record["verdict"] for name, record in records.items()} == {
        "test_leaks": "leaked",
        "test_leaks_while_benchmarked": "leaked",
        "test_clean_benchmarked": "clean",
    }
    assert records["test_leaks"]["reruns"] == 2
    # Its results are pytest-benchmark's, kept for the session's table: not suspected.
    assert records["test_clean_benchmarked"]["reruns"] == 0
    result.assert_outcomes(passed=3, errors=2)
    # The reruns' results are not in pytest-benchmark's report: each test once.
    benchmarks = json.loads((tester.path / "bench.json").read_text())["benchmarks"]
    assert sorted(b["name"] for b in benchmarks) == ["test_clean_benchmarked", "test_leaks_while_benchmarked"]
