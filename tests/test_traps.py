"""Traps: pytest's own machinery must never be reported, and leaks through fixtures must be (issue 9).

Every inner run writes the JSON report, and each test's verdict is asserted:
a clean test must be judged ``clean`` (checked, nothing found), not merely pass.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

#: pytest < 9 has no built-in ``subtests`` fixture: a stand-in that runs each subtest inline.
SUBTESTS_STAND_IN = """
        if not hasattr(pytest, "Subtests"):
            import contextlib

            @pytest.fixture
            def subtests():
                class Stand:
                    def test(self, **kwargs):
                        return contextlib.nullcontext()
                return Stand()

"""

#: Tests that use pytest's built-in fixtures and machinery the way real suites do.
MACHINERY = {
    "conftest.py": """
        import pytest

        pytest_plugins = ["pytester"]
    """,
    "test_machinery.py": """
        import gc
        import logging
        import os
        import sys
        import unittest
        import warnings

        import pytest

        class Custom(Warning):
            pass

        def test_warm_up():
            pass

        @pytest.mark.parametrize(
            "category",
            [DeprecationWarning, PendingDeprecationWarning, UserWarning, RuntimeWarning,
             FutureWarning, ImportWarning, BytesWarning, Custom],
        )
        def test_unhandled_warning(category):
            warnings.warn("old api", category)

        def test_warning_in_a_loop():
            for n in range(5):
                warnings.warn(f"call {n}", DeprecationWarning)

        def test_pytest_warns():
            with pytest.warns(DeprecationWarning, match="old"):
                warnings.warn("old api", DeprecationWarning)

        def test_recwarn(recwarn):
            warnings.warn("noted", UserWarning)
            assert len(recwarn) == 1

        def test_caplog(caplog):
            with caplog.at_level(logging.INFO):
                logging.getLogger("trap").info("record 1")
            assert "record 1" in caplog.text
            assert caplog.records[0].getMessage() == "record 1"

        def test_log_exception(caplog):
            try:
                1 / 0
            except ZeroDivisionError:
                logging.getLogger("trap").exception("failed: %s", "why")
            assert "ZeroDivisionError" in caplog.text

        def test_log_without_caplog():
            logging.getLogger("trap.plain").warning("to the captured log section")

        def test_capsys(capsys):
            print("out")
            print("err", file=sys.stderr)
            assert capsys.readouterr() == ("out\\n", "err\\n")

        def test_capfd(capfd):
            os.write(1, b"fd out\\n")
            assert capfd.readouterr().out == "fd out\\n"

        def test_print_without_fixture():
            print("captured by pytest")

        def test_tmp_path(tmp_path):
            (tmp_path / "f.txt").write_text("x")
            assert (tmp_path / "f.txt").read_text() == "x"

        def test_monkeypatch(monkeypatch):
            monkeypatch.setattr(os, "sep", "#")
            monkeypatch.setenv("GCGUARD_TRAP", "1")
            monkeypatch.setitem(sys.modules, "gcguard_trap_module", os)

        def test_addfinalizer(request):
            state = {"rows": [[1], [2]]}
            request.addfinalizer(state.clear)

"""
    + SUBTESTS_STAND_IN
    + '''        def test_subtests(subtests):
            for n in range(3):
                with subtests.test(n=n):
                    assert [n] * 2

        def test_raises_kept():
            with pytest.raises(ZeroDivisionError) as info:
                1 / 0
            assert info.type is ZeroDivisionError

        def test_threshold_left_changed():
            gc.set_threshold(1)

        def test_pytester_subprocess(pytester):
            pytester.makepyfile("def test_inner(): pass")
            pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)

        class TestUnit(unittest.TestCase):
            rows = None

            @classmethod
            def setUpClass(cls):
                cls.rows = [[n] for n in range(10)]

            def setUp(self):
                self.data = {"a": [1]}
                self.addCleanup(self.data.clear)

            def test_uses_both(self):
                self.assertTrue(self.rows and self.data)

        def double(n):
            """
            >>> double(2)
            4
            >>> rows = [[n] for n in range(3)]
            """
            return n * 2
    ''',
}


def run_with_report(tester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict[str, dict[str, Any]]]:
    """Run the inner suite in a subprocess; return the result and the JSON records by test name."""
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-json=gcguard.json", *args)
    document = json.loads((tester.path / "gcguard.json").read_text())
    records = {record["nodeid"].partition("::")[2]: record for record in document["tests"]}
    return result, records


def assert_clean(records: dict[str, dict[str, Any]], names: list[str] | None = None) -> None:
    """Every named test (all when None) was judged, and judged clean."""
    for name in names if names is not None else list(records):
        record = records[name]
        assert (record["verdict"], record["outcome"]) == ("clean", "passed"), (name, record)


def summary_counts(result: pytest.RunResult) -> dict[str, int]:
    """The final line's counts ("12 passed, 3 warnings, 3 subtests passed")."""
    line = result.stdout.lines[-1]
    return {name: int(n) for n, name in re.findall(r"(\d+) ([a-z ]+?)(?=,| in )", line)}


@pytest.mark.parametrize(
    "warning_setup",
    [
        pytest.param([], id="defaults"),
        pytest.param(["-W", "always"], id="W-always"),
        pytest.param(["-W", "default::DeprecationWarning"], id="W-default"),
        pytest.param(["-W", "ignore::UserWarning"], id="W-ignore"),
        pytest.param(["-o", "filterwarnings=once"], id="ini-once"),
        pytest.param(["-o", "filterwarnings=module::DeprecationWarning"], id="ini-module"),
    ],
)
def test_pytest_machinery_is_never_reported(tester: pytest.Pytester, warning_setup: list[str]) -> None:
    tester.makepyfile(**MACHINERY)
    # Named, so that doctest collection stays out of the inner pytester runs' directories.
    plain = tester.runpytest_subprocess("--doctest-modules", "test_machinery.py", *warning_setup)
    result, records = run_with_report(tester, "--doctest-modules", "test_machinery.py", *warning_setup)
    result.assert_outcomes(passed=plain.parseoutcomes()["passed"])
    assert_clean(records)
    assert len(records) == plain.parseoutcomes()["passed"]
    # The same counts as without gcguard: reruns add no warning and no subtest.
    assert summary_counts(result) == summary_counts(plain)


def test_a_fixture_that_registers_a_plugin_around_every_test_is_not_reported(tester: pytest.Pytester) -> None:
    """flask's autouse ``reset_logging`` unregisters pytest's logging plugin and registers it
    again after every test; pluggy keeps each registration's call of the historic
    ``pytest_plugin_registered`` hook for the session.  That is the runner's memory: 6 of
    flask's logging tests were reported for it.  A leak beside it is still reported."""
    tester.makeconftest(
        """
        import pytest

        @pytest.fixture(autouse=True)
        def reset_logging(pytestconfig):
            plugin = pytestconfig.pluginmanager.unregister(name="logging-plugin")
            yield
            if plugin:
                pytestconfig.pluginmanager.register(plugin, "logging-plugin")
        """
    )
    tester.makepyfile(
        test_registering="""
        KEPT = []

        class Kept:
            pass

        def test_warm_up():
            pass

        def test_one():
            assert True

        def test_two():
            assert [1]

        def test_leaks():
            KEPT.append(Kept())
        """
    )
    result, records = run_with_report(tester, "-p", "no:randomly")
    assert_clean(records, ["test_warm_up", "test_one", "test_two"])
    assert records["test_one"]["reruns"] == records["test_two"]["reruns"] == 0, records
    assert [(leak["type"], leak["count"]) for leak in records["test_leaks"]["leaked"]] == [
        ("test_registering.Kept", 1)
    ], records["test_leaks"]
    result.assert_outcomes(passed=4, errors=1)


@pytest.mark.parametrize("plugin", ["warnings", "no:warnings"])
def test_warning_filters_a_fixture_adds_for_each_test_are_pytests(tester: pytest.Pytester, plugin: str) -> None:
    """networkx's autouse fixture adds five warning filters in every test's setup: every
    test was suspected and rerun (1.85x its plain wall time).  pytest gives each test's
    protocol a copy of the filters and drops it after, so they are pytest's: no rerun.
    Without pytest's warnings plugin the filters are the session's, and a rerun, which
    adds the same filters again, shows that they do not grow."""
    tester.makeconftest(
        """
        import warnings
        import pytest

        @pytest.fixture(autouse=True)
        def set_warnings():
            for i in range(5):
                warnings.filterwarnings("ignore", category=UserWarning, message=f"noise {i}")
        """
    )
    tester.makepyfile(
        test_filtered="""
        KEPT = []

        class Kept:
            pass

        def test_warm_up():
            pass

        def test_one():
            assert True

        def test_two():
            assert [1]

        def test_leaks():
            KEPT.append(Kept())
        """
    )
    result, records = run_with_report(tester, "-p", "no:randomly", "-p", plugin)
    assert_clean(records, ["test_one", "test_two"])
    reruns = 0 if plugin == "warnings" else 1
    assert records["test_one"]["reruns"] == records["test_two"]["reruns"] == reruns, records
    assert [(leak["type"], leak["count"]) for leak in records["test_leaks"]["leaked"]] == [("test_filtered.Kept", 1)], (
        records["test_leaks"]
    )
    result.assert_outcomes(passed=4, errors=1)


def test_reruns_leave_no_trace_in_pytest_output(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        """
        import logging
        import warnings

        import pytest

        KEPT = []

"""
        + SUBTESTS_STAND_IN
        + """        def test_leaks_with_output(subtests):
            print("printed once")
            logging.getLogger("trap").warning("logged once")
            warnings.warn("warned once", DeprecationWarning)
            with subtests.test(step=1):
                KEPT.append([1])
        """
    )
    plain = tester.runpytest_subprocess()
    result, records = run_with_report(tester)
    assert records["test_leaks_with_output"]["verdict"] == "leaked"
    assert records["test_leaks_with_output"]["reruns"] >= 2
    result.assert_outcomes(passed=1, errors=1, warnings=1)
    plain.assert_outcomes(passed=1, warnings=1)
    counts = summary_counts(result)
    assert counts.pop("error") == 1
    assert counts == summary_counts(plain)
    # The leak report shows the test's sections once, as the report of any failure would.
    out = result.stdout.str()
    assert out.count("printed once") == 1
    assert out.count("Captured stdout call") == 1
    assert out.count("Captured log call") == 1
    assert out.count("warned once") == plain.stdout.str().count("warned once")


#: Leak shapes through fixtures, and their clean counterparts.
FIXTURE_LEAKS = """
    import logging
    import pytest

    class Widget:
        def __init__(self, n):
            self.n = n

    REGISTRY = []
    HANDLERS = []

    @pytest.fixture
    def registered():
        widget = Widget(1)
        REGISTRY.append(widget)  # the teardown forgets to unregister
        yield widget

    @pytest.fixture
    def registered_and_removed():
        widget = Widget(2)
        REGISTRY.append(widget)
        yield widget
        REGISTRY.remove(widget)

    @pytest.fixture
    def plain_value():
        return Widget(3)

    @pytest.fixture
    def log_handler():
        handler = logging.StreamHandler()
        logging.getLogger("trap.fixtures").addHandler(handler)  # never removed
        return handler

    @pytest.fixture(autouse=True)
    def autouse_hook(request):
        if "autouse_leak" in request.node.name:
            HANDLERS.append(Widget(4))
        yield

    @pytest.fixture(scope="module")
    def module_rows():
        return []

    @pytest.fixture(scope="class")
    def class_rows():
        return []

    def test_warm_up():
        pass

    def test_function_fixture_registers(registered):
        assert registered.n == 1

    def test_function_fixture_cleans_up(registered_and_removed):
        assert registered_and_removed.n == 2

    def test_plain_fixture_value(plain_value):
        assert plain_value.n == 3

    def test_fixture_adds_log_handler(log_handler):
        assert log_handler

    def test_autouse_leak():
        pass

    def test_module_fixture_grows(module_rows):
        module_rows.append(Widget(5))

    def test_module_fixture_read(module_rows):
        assert isinstance(module_rows, list)

    class TestClassScope:
        def test_class_fixture_grows(self, class_rows):
            class_rows.append(Widget(6))

        def test_class_fixture_read(self, class_rows):
            assert isinstance(class_rows, list)
"""


def test_leaks_through_fixtures_are_reported(tester: pytest.Pytester) -> None:
    tester.makepyfile(test_fixtures=FIXTURE_LEAKS)
    result, records = run_with_report(tester)
    leaking = {
        "test_function_fixture_registers": "test_fixtures.Widget",
        "test_fixture_adds_log_handler": "logging.StreamHandler",
        "test_autouse_leak": "test_fixtures.Widget",
        "test_module_fixture_grows": "test_fixtures.Widget",
        "TestClassScope::test_class_fixture_grows": "test_fixtures.Widget",
    }
    for name, leaked_type in leaking.items():
        record = records[name]
        assert record["verdict"] == "leaked", (name, record)
        assert leaked_type in {leak["type"] for leak in record["leaked"]}, (name, record)
    assert_clean(records, [name for name in records if name not in leaking])
    result.assert_outcomes(passed=len(records), errors=len(leaking))
    result.stdout.fnmatch_lines(["*why alive: module test_fixtures -> REGISTRY (list) -> *Widget*"])


def test_a_class_the_gc_cannot_free_is_reported_by_its_name(tester: pytest.Pytester) -> None:
    """h11's sentinels: a class whose type is itself is never freed; the gc empties its
    ``__dict__`` (``__module__`` too) and keeps it.  Its name must be the same in every run,
    or its growth never repeats and only its bases tuple is reported."""
    tester.makepyfile(
        test_sentinels="""
        class Meta(type):
            def __new__(cls, name, bases, namespace):
                made = super().__new__(cls, name, bases, namespace)
                made.__class__ = made
                return made

        def test_makes_a_sentinel():
            class Sentinel(Meta, metaclass=Meta):
                pass
            assert type(Sentinel) is Sentinel
        """
    )
    result, records = run_with_report(tester)
    result.assert_outcomes(passed=1, errors=1)
    record = records["test_makes_a_sentinel"]
    assert record["verdict"] == "leaked", record
    leaked = {leak["type"]: leak["count"] for leak in record["leaked"]}
    assert leaked.get("test_makes_a_sentinel.<locals>.Sentinel") == 1, record


def test_a_leaked_task_is_reported_even_when_its_exception_was_logged(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        test_tasks="""
        import asyncio
        import logging

        TASKS = set()

        async def worker():
            raise RuntimeError("worker died")

        def log_failure(task):
            logging.getLogger("svc").error("task failed", exc_info=task.exception())

        def run(keep, log):
            async def main():
                task = asyncio.get_running_loop().create_task(worker())
                if log:
                    task.add_done_callback(log_failure)
                if keep:
                    TASKS.add(task)
                await asyncio.sleep(0.01)
                if not keep:
                    task.exception()  # retrieved: nothing logged at its end
            asyncio.run(main())

        def test_warm_up():
            run(keep=False, log=False)

        def test_task_kept_and_logged():
            run(keep=True, log=True)

        def test_task_kept():
            run(keep=True, log=False)

        def test_task_logged_not_kept():
            run(keep=False, log=True)
        """
    )
    result, records = run_with_report(tester)
    for name in ("test_task_kept_and_logged", "test_task_kept"):
        assert records[name]["verdict"] == "leaked", records[name]
        assert "_asyncio.Task" in {leak["type"] for leak in records[name]["leaked"]}
    assert_clean(records, ["test_warm_up", "test_task_logged_not_kept"])
    result.assert_outcomes(passed=4, errors=2)


CYCLES = """
    import pytest
    from hypothesis import given, settings, strategies as st

    class Keeper:
        def run(self):
            try:
                1 / 0
            except ZeroDivisionError as exc:
                self.error = exc  # keeps its own traceback: a cycle through run()'s frame

    @pytest.fixture
    def checked_error():
        with pytest.raises(KeyError) as info:
            {}["missing"]
        yield info

    def test_warm_up():
        pass

    def test_raises_as_info():
        with pytest.raises(ZeroDivisionError) as info:
            1 / 0
        assert info.type is ZeroDivisionError

    def test_raises_in_fixture(checked_error):
        assert checked_error.type is KeyError

    def test_mocker_like_mock():
        from unittest import mock
        with mock.patch("os.getcwd", return_value="/x") as fake:
            import os
            assert os.getcwd() == "/x"
        assert fake.call_count == 1

    def test_mocker(mocker):
        fake = mocker.patch("os.getcwd", return_value="/x")
        import os
        assert os.getcwd() == "/x"
        assert fake.call_count == 1

    @given(st.lists(st.integers()))
    @settings(database=None, max_examples=30)
    def test_hypothesis_given(xs):
        assert sorted(xs) == sorted(reversed(xs))

    def test_code_under_test_keeps_its_traceback():
        Keeper().run()

    def test_self_cycle():
        node = []
        node.append(node)

    def test_raises_beside_a_real_cycle():
        node = {}
        node["self"] = node
        with pytest.raises(ZeroDivisionError) as info:
            1 / 0
        assert info
"""


def test_cycles_mode_leaves_the_tests_scaffolding_out(tester: pytest.Pytester) -> None:
    tester.makepyfile(test_cycles=CYCLES)
    result, records = run_with_report(tester, "--gcguard-cycles")
    cyclic = ["test_code_under_test_keeps_its_traceback", "test_self_cycle", "test_raises_beside_a_real_cycle"]
    for name in cyclic:
        assert records[name]["verdict"] == "cycles", (name, records[name])
    assert_clean(records, [name for name in records if name not in cyclic])
    result.stdout.fnmatch_lines(["*one cycle: test_cycles.Keeper -> error (ZeroDivisionError) -> *"])
    assert records["test_raises_beside_a_real_cycle"]["cycles"]["types"] == {"dict": 1}


def test_a_verdict_does_not_depend_on_the_tests_before(tester: pytest.Pytester) -> None:
    """Growth that replaces older entries is set aside, even after tests that leaked the same types."""
    tester.makepyfile(
        test_order="""
        CACHE = {}  # evicts its oldest entry past 10 entries: a bound it does not declare
        LEAKS = []

        def remember(key):
            if len(CACHE) >= 10:
                del CACHE[next(iter(CACHE))]
            CACHE[key] = [key]

        def test_fill():
            for n in range(10):
                remember(("fill", n))

        def test_leak_1():
            LEAKS.append([1])

        def test_leak_2():
            LEAKS.append([2])

        def test_leak_3():
            LEAKS.append([3])

        def test_leak_4():
            LEAKS.append([4])

        N = [0]

        def test_full_cache():
            N[0] += 1
            remember(("run", N[0]))
        """
    )
    _, together = run_with_report(tester)
    _, alone = run_with_report(tester, "-k", "fill or full_cache")
    assert together["test_full_cache"]["verdict"] == alone["test_full_cache"]["verdict"] == "clean"
    assert together["test_full_cache"]["set_aside"] is not None
    assert [together[f"test_leak_{n}"]["verdict"] for n in range(1, 5)] == ["leaked"] * 4


def test_hypothesis_feeding_a_bounded_cache_gets_one_verdict(tester: pytest.Pytester) -> None:
    pytest.importorskip("hypothesis")
    tester.makepyfile(
        test_hyp="""
        import functools
        from hypothesis import given, settings, strategies as st

        @functools.lru_cache(maxsize=256)
        def cached(x):
            return [x]

        def test_warm_up():
            pass

        @given(st.integers())
        @settings(max_examples=50, database=None)
        def test_feeds_cache(x):
            cached(x)

        @given(st.lists(st.integers()))
        @settings(database=None)
        def test_plain(xs):
            assert sorted(xs) == sorted(reversed(xs))
        """
    )
    for _ in range(4):
        result, records = run_with_report(tester)
        result.assert_outcomes(passed=3)
        assert_clean(records)


def test_growth_hung_on_what_a_bounded_cache_returned_is_reported(tester: pytest.Pytester) -> None:
    """A bounded cache bounds its entries, not what an entry reaches: a dict an
    ``lru_cache`` returned (empty, so new to the gc when the first run adds to it), a list
    on a cached object, or on an entry of a cache with a declared ``maxsize``, a dict in a
    ``deque(maxlen=...)``, that every run adds to, is a leak.  (Within a few levels of the
    cache such growth was set aside as the cache's.)  The caches' own growth, new entries,
    is still set aside."""
    tester.makepyfile(
        test_entries="""
        import collections, functools, itertools

        class Widget:
            pass

        class Node:
            def __init__(self):
                self.items = []

        @functools.lru_cache(maxsize=128)
        def config(name):
            return {}

        @functools.lru_cache(maxsize=128)
        def node(name):
            return Node()

        class Bounded:
            def __init__(self, maxsize):
                self.maxsize = maxsize
                self.data = {}

            def __len__(self):
                return len(self.data)

            def get(self, key):
                if key not in self.data:
                    if len(self.data) >= self.maxsize:
                        del self.data[next(iter(self.data))]
                    self.data[key] = Node()
                return self.data[key]

        CACHE = Bounded(64)
        for warm in ("warm", "other"):
            config(warm), node(warm), CACHE.get(warm)
        RECENT = collections.deque([{}, {}], maxlen=64)

        class ThreeAttributes:
            # As many attributes as entries when judged (found by review): its
            # ``__dict__`` is not its table.
            def __init__(self, maxsize):
                self.maxsize = maxsize
                self.data = collections.OrderedDict()
                self.hits = 0

            def __len__(self):
                return len(self.data)

        SMALL = ThreeAttributes(64)

        @functools.lru_cache(maxsize=64)
        def bucket(name):
            return []

        bucket("all").append(Widget())

        FRESH = itertools.count()

        def test_grows_what_a_cached_call_returned():
            entries = config("warm")
            entries[len(entries)] = Widget()

        def test_grows_a_list_on_a_cached_object():
            node("warm").items.append(Widget())

        def test_grows_a_list_on_an_entry_of_a_bounded_cache():
            CACHE.get("warm").items.append(Widget())

        def test_grows_what_a_bounded_deque_holds():
            RECENT[0][len(RECENT[0])] = Widget()

        def test_grows_a_cached_list_as_long_as_the_cache():
            # One new key per run beside it: the list is as long as the cache.
            bucket(f"key-{next(FRESH)}")
            bucket("all").append(Widget())

        def test_fills_a_cache_with_as_many_attributes():
            SMALL.data[next(FRESH)] = Node()

        def test_fills_the_caches():
            for _ in range(3):
                key = next(FRESH)
                config(key)[key] = Widget()
                node(key).items.append(Widget())
                CACHE.get(key).items.append(Widget())
                RECENT.append({key: Widget()})
        """
    )
    result, records = run_with_report(tester, "-p", "no:randomly")
    result.assert_outcomes(passed=7, errors=5)
    for name in (
        "test_grows_what_a_cached_call_returned",
        "test_grows_a_list_on_a_cached_object",
        "test_grows_a_list_on_an_entry_of_a_bounded_cache",
        "test_grows_what_a_bounded_deque_holds",
        "test_grows_a_cached_list_as_long_as_the_cache",
    ):
        record = records[name]
        assert record["verdict"] == "leaked", record
        assert [leak["type"] for leak in record["leaked"]] == ["test_entries.Widget"], record
        # The new key's empty list is the cache's growth.
        assert (record["set_aside"] or {}).get("types", {}).keys() <= {"list"}, record
    filled = records["test_fills_the_caches"]
    assert (filled["verdict"], filled["outcome"]) == ("clean", "passed"), filled
    assert "test_entries.Widget" in filled["set_aside"]["types"], filled
    small = records["test_fills_a_cache_with_as_many_attributes"]
    assert (small["verdict"], small["outcome"]) == ("clean", "passed"), small
    assert "test_entries.Node" in small["set_aside"]["types"], small


def test_a_hypothesis_leak_that_only_looks_bounded_on_its_first_run_is_rerun_and_reported(
    tester: pytest.Pytester,
) -> None:
    """Growth beside what looks bounded is still a leak: a bounded container each leaked
    object brings along (a ``deque`` with ``maxlen``, an ``lru_cache`` per instance) bounds
    nothing, and what a strategy's function keeps on every example (a list in its closure)
    is not what the strategy built once.  (A first-run shortcut for Hypothesis tests that was
    tried, and dropped, passed the first two.)"""
    pytest.importorskip("hypothesis")
    tester.makepyfile(
        test_looks_bounded="""
        import collections
        import functools
        from hypothesis import given, settings, strategies as st

        KEPT = []

        class Client:
            def __init__(self):
                self.get = functools.lru_cache(maxsize=128)(self._get)

            def _get(self, key):
                return [key]

        def make():
            history = []
            return st.integers().map(lambda x: history.append([x]) or x)

        RECORDED = st.deferred(make)

        @given(st.data())
        @settings(max_examples=25, database=None)
        def test_warm_up(data):  # Hypothesis imports modules on its first run
            data.draw(st.integers())

        @given(st.integers())
        @settings(max_examples=25, database=None)
        def test_keeps_deques(x):
            KEPT.append(collections.deque([[x]], maxlen=3))

        @given(st.integers())
        @settings(max_examples=25, database=None)
        def test_keeps_clients(x):
            client = Client()
            client.get(x)
            KEPT.append(client)

        @given(st.data())
        @settings(max_examples=25, database=None)
        def test_draws_a_recording_strategy(data):
            data.draw(RECORDED)
        """
    )
    result, records = run_with_report(tester)
    result.assert_outcomes(passed=4, errors=3)
    for name, kind in [
        ("test_keeps_deques", "collections.deque"),
        ("test_keeps_clients", "test_looks_bounded.Client"),
        ("test_draws_a_recording_strategy", "list"),
    ]:
        record = records[name]
        assert record["verdict"] == "leaked", record
        assert record["reruns"] >= 2, record
        assert kind in {leak["type"] for leak in record["leaked"]}, record


def test_without_reruns_a_leak_beside_a_bounded_caches_growth_is_reported(tester: pytest.Pytester) -> None:
    """With one run only, the bounded-cache rule still sets aside only the types the cache holds."""
    tester.makepyfile(
        test_single="""
        import functools

        class Cached:
            pass

        class Leaked:
            pass

        KEPT = []

        @functools.lru_cache(maxsize=1000)
        def cached(n):
            return Cached()

        def test_warm_up():
            pass

        def test_feeds_cache_and_leaks():
            for n in range(20):
                cached(n)
                KEPT.append(Leaked())
        """
    )
    result, records = run_with_report(tester, "--gcguard-reruns=0")
    result.assert_outcomes(passed=2, errors=1)
    record = records["test_feeds_cache_and_leaks"]
    assert record["verdict"] == "leaked", record
    assert record["reruns"] == 0, record
    assert [(leak["type"], leak["count"]) for leak in record["leaked"]] == [("test_single.Leaked", 20)], record
    assert record["set_aside"]["types"] == {"test_single.Cached": 20}, record
    assert_clean(records, ["test_warm_up"])


def test_a_module_fixture_set_up_again_by_a_rerun_is_not_the_tests(tester: pytest.Pytester) -> None:
    # The last test of a module tears its module fixtures down (the next test is
    # elsewhere); each rerun sets them up again.  That setup is the module's.
    tester.makepyfile(
        test_a="""
        import sqlite3
        import pytest

        CONNECTIONS = []

        @pytest.fixture(scope="module")
        def db():
            conn = sqlite3.connect(":memory:")
            CONNECTIONS.append([conn])  # kept: the module's own doing, once per setup
            yield conn
            conn.close()

        def test_uses_db(db):
            assert db.execute("select 1").fetchone() == (1,)

        def test_last_uses_db_and_leaks(db):
            CONNECTIONS.append(["the test's"])
        """,
        test_b="""
        def test_elsewhere():
            pass
        """,
    )
    result, records = run_with_report(tester, "-v")
    assert_clean(records, ["test_uses_db", "test_elsewhere"])
    record = records["test_last_uses_db_and_leaks"]
    assert record["verdict"] == "leaked"
    assert [(leak["type"], leak["count"]) for leak in record["leaked"]] == [("list", 1)]
    result.stdout.fnmatch_lines(["*why alive: module test_a -> CONNECTIONS (list) -> * list"])
    _, alone = run_with_report(tester, "test_a.py::test_uses_db", "test_b.py")
    assert_clean(alone)


#: Tests that leave behind only what the runner or the interpreter keeps for a while.
SETTLED_AT_ONCE = {
    "conftest.py": """
        import pytest
        from pytest_gcguard import _judge

        FAST = {}
        _close_window = _judge.close_window

        # Same signature, so calling it makes no argument tuple after the runner's listing.
        def close_window(window, describe_cycle=None, runner_kept=None, owner=None):
            closed = _close_window(window, describe_cycle, runner_kept, owner)
            FAST[len(FAST)] = closed.runner_only
            return closed

        _judge.close_window = close_window

        @pytest.hookimpl(trylast=True)
        def pytest_runtest_logreport(report):
            if report.when == "teardown":  # a rerun's reports are never logged
                with open("fast.txt", "a") as out:
                    out.write(f"{report.nodeid.partition('::')[2]} {FAST.get(len(FAST) - 1)}\\n")
    """,
    "test_settled.py": """
        import contextvars
        import warnings

        import pytest

        VAR = contextvars.ContextVar("VAR")
        SAVED = []

        @pytest.fixture(scope="session")
        def shared():
            return {"rows": [[1], [2]]}

        @pytest.fixture
        def per_test(shared):  # pytest keeps a finalizer of this on `shared` per test
            return len(shared["rows"])

        def test_warm_up(per_test):
            warnings.warn("first", DeprecationWarning)
            VAR.set(0)

        @pytest.mark.parametrize("n", range(3))
        def test_uses_a_session_fixture(per_test, n):
            assert per_test == 2

        def test_catch_warnings_block():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                warnings.warn("hidden", DeprecationWarning)

        def test_pytest_warns(per_test):
            with pytest.warns(UserWarning):
                warnings.warn("expected", UserWarning)

        def test_requests_a_fixture_by_name(request):
            # pytest-asyncio's loop runner is requested so: its finalizer on `shared`
            # is not in the test's static fixture closure.
            assert request.getfixturevalue("per_test") == 2

        def test_sets_a_context_variable():
            VAR.set(VAR.get() + 1)

        def test_keeps_the_filters():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                SAVED.append(warnings.filters[:])  # a real leak of a filter list
    """,
}


def test_what_the_runner_keeps_is_settled_without_a_rerun(tester: pytest.Pytester) -> None:
    """pytest's spent fixture finalizers, the context map's nodes and the interpreter's
    copy of the warning filters are known at once: such a test is neither suspected
    (no rerun) nor sent down the slow path (the first check finds only the runner's)."""
    tester.makepyfile(**SETTLED_AT_ONCE)
    result, records = run_with_report(tester, "-p", "no:randomly")
    result.assert_outcomes(passed=9, errors=1)
    assert records["test_keeps_the_filters"]["verdict"] == "leaked"
    assert "list" in {leak["type"] for leak in records["test_keeps_the_filters"]["leaked"]}
    clean = [name for name in records if name not in ("test_warm_up", "test_keeps_the_filters")]
    assert len(clean) == 7
    assert_clean(records, clean)
    assert {name: records[name]["reruns"] for name in clean} == dict.fromkeys(clean, 0)
    fast = dict(line.split() for line in (tester.path / "fast.txt").read_text().splitlines())
    assert {name: fast[name] for name in clean} == dict.fromkeys(clean, "True")


def test_what_a_broader_fixtures_teardown_makes_is_not_the_last_tests(tester: pytest.Pytester) -> None:
    """The teardown of a class, module or session fixture runs inside the last test of its
    scope; what it makes is the fixture's, as what its setup makes is (unittest's class
    fixture resets ``tearDown_exceptions`` there; xunit ``teardown_module``; a module fixture
    that resets a global).  A leak of the test itself beside it is still reported."""
    tester.makepyfile(
        test_a="""
        import unittest
        import pytest

        CONFIG = {"handlers": []}
        STATE = [object()]

        def teardown_module():
            global STATE
            STATE = [object()]  # a new list and object, replacing the old ones

        @pytest.fixture(scope="module")
        def configured():
            yield CONFIG
            CONFIG["handlers"] = [[]]  # reset: a new list replaces the old one

        class TestUnit(unittest.TestCase):
            def test_first(self):
                self.assertTrue(True)

            def test_last_of_class(self):
                self.assertTrue(True)

        def test_uses(configured):
            assert "handlers" in configured

        def test_last_of_module(configured):
            assert "handlers" in configured
        """,
        test_b="""
        import pytest

        KEEP = []

        class Widget:
            pass

        @pytest.fixture(scope="module")
        def configured():
            state = {"rows": []}
            yield state
            state["rows"] = [[1]]

        def test_last_of_module_leaks(configured):
            KEEP.append(Widget())
        """,
    )
    result, records = run_with_report(tester, "-p", "no:randomly")
    result.assert_outcomes(passed=5, errors=1)
    clean = ["TestUnit::test_first", "TestUnit::test_last_of_class", "test_uses", "test_last_of_module"]
    assert_clean(records, clean)
    assert {name: records[name]["reruns"] for name in clean} == dict.fromkeys(clean, 0)
    leaked = records["test_last_of_module_leaks"]
    assert leaked["verdict"] == "leaked"
    assert {leak["type"] for leak in leaked["leaked"]} == {"test_b.Widget"}


def test_a_broader_fixtures_teardown_in_cycles_mode_is_not_the_tests(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        test_c="""
        import pytest

        class Node:
            def __init__(self):
                self.me = self

        @pytest.fixture(scope="module")
        def resource():
            yield {}
            Node()  # cyclic garbage made by the module's teardown

        def test_only(resource):
            pass
        """
    )
    result, records = run_with_report(tester, "--gcguard-cycles")
    result.assert_outcomes(passed=1)
    assert_clean(records, ["test_only"])


def test_a_leak_beside_a_one_off_replacement_is_reported(tester: pytest.Pytester) -> None:
    """Older objects freed while a test keeps new ones are a full cache's signature, but not
    when they are no more than the new objects that do not repeat: measured again, the leak
    frees nothing (a Hypothesis test leaking a list per example passed as 'replacing' in 1
    of 8 seeds, when its measured rerun also rebuilt Hypothesis's constants of the module)."""
    tester.makepyfile(
        test_churn="""
        import itertools

        class Entry:
            pass

        class Leaked:
            pass

        KEPT = []
        OLD = [Entry() for _ in range(100)]  # made at import: older than the test
        RUNS = itertools.count()
        TURNOVER = [5, 0, 6, 0, 0, 0, 0, 0]  # entries replaced per run: in the measured rerun, once

        def test_warm_up():
            pass

        def test_leaks_beside_a_turnover():
            for _ in range(TURNOVER[next(RUNS) % len(TURNOVER)]):
                OLD.pop(0)
                OLD.append(Entry())
            KEPT.append(Leaked())
        """
    )
    result, records = run_with_report(tester)
    result.assert_outcomes(passed=2, errors=1)
    record = records["test_leaks_beside_a_turnover"]
    assert record["verdict"] == "leaked", record
    assert [(leak["type"], leak["count"]) for leak in record["leaked"]] == [("test_churn.Leaked", 1)], record
    assert record["set_aside"] is None, record
    assert (
        "in rerun 2 the test kept 7 new object(s) while 6 object(s) older than the test were freed, with 6 of "
        "the new objects not repeated growth; measured again in rerun 3: too few older objects were freed to "
        "balance the growth"
    ) in record["notes"], record
    assert_clean(records, ["test_warm_up"])


@pytest.mark.parametrize(
    ("options", "reported"),
    [
        pytest.param((), {"test_held.Item": 3, "collections.deque": 1}, id="every type"),
        pytest.param(("--gcguard-ignore=deque",), {"test_held.Item": 3}, id="its type ignored"),
        pytest.param(("--gcguard-only=*Item",), {"test_held.Item": 3}, id="only the items' type"),
    ],
)
def test_a_bounded_container_the_test_leaks_is_not_a_cache_for_what_it_holds(
    tester: pytest.Pytester, options: tuple[str, ...], reported: dict[str, int]
) -> None:
    """A ``deque(maxlen=...)`` made and kept on every run is part of the leak, not a cache that
    stops growing: the objects in it are reported, even when a real bounded cache holds the
    other objects of their type, and when a type filter leaves the deques themselves out."""
    tester.makepyfile(
        test_held="""
        import collections
        import functools
        import itertools

        KEPT = []
        FRESH = itertools.count()

        class Item:
            pass

        @functools.lru_cache(maxsize=1000)
        def cached(n):
            return Item()

        def test_warm_up():
            cached(-1)

        def test_feeds_a_cache_and_leaks_deques():
            cached(next(FRESH))
            KEPT.append(collections.deque([Item(), Item()], maxlen=10))
        """
    )
    result, records = run_with_report(tester, *options)
    result.assert_outcomes(passed=2, errors=1)
    record = records["test_feeds_a_cache_and_leaks_deques"]
    assert record["verdict"] == "leaked", record
    leaked = {leak["type"]: leak["count"] for leak in record["leaked"]}
    assert leaked == reported, record
    assert record["set_aside"] is None, record
    assert_clean(records, ["test_warm_up"])


def test_what_a_bounded_cache_holds_and_an_older_list_keeps_too_is_reported(tester: pytest.Pytester) -> None:
    """What a bounded cache holds and the code also keeps in a module list or a module-level
    dict: the cache's bound does not bound them, so the growth is reported, not set aside as
    the cache's (it was when the chain search happened to meet the cache first).  A test that
    only remembers the latest entry beside the cache (a slot rebound on every run) feeds the
    cache alone: clean."""
    tester.makepyfile(
        test_kept="""
        import itertools

        class Item:
            def __init__(self, n):
                self.payload = [n]

        class Cache:
            def __init__(self, maxsize):
                self.maxsize = maxsize
                self.data = {}

            def __len__(self):
                return len(self.data)

            def put(self, key, value):
                if len(self.data) >= self.maxsize:
                    del self.data[next(iter(self.data))]
                self.data[key] = value

        class State:
            last = None

        CACHE = Cache(50)
        KEPT = []
        FILED = {}
        STATE = State()
        FRESH = itertools.count()

        def test_feeds_the_cache():
            n = next(FRESH)
            CACHE.put(("k", n), Item(n))

        def test_caches_and_keeps_every_item():
            n = next(FRESH)
            item = Item(n)
            CACHE.put(("k", n), item)
            KEPT.append(item)

        def test_files_then_caches_every_item():
            n = next(FRESH)
            item = Item(n)
            FILED[n] = item
            CACHE.put(("k", n), item)

        def test_caches_and_remembers_the_last_item():
            n = next(FRESH)
            item = Item(n)
            CACHE.put(("k", n), item)
            STATE.last = item
        """
    )
    result, records = run_with_report(tester, "-p", "no:randomly")
    result.assert_outcomes(passed=4, errors=2)
    for name, holder in (("test_caches_and_keeps_every_item", "list"), ("test_files_then_caches_every_item", "dict")):
        record = records[name]
        assert record["verdict"] == "leaked", record
        assert {leak["type"]: leak["count"] for leak in record["leaked"]} == {"test_kept.Item": 1}, record
        assert any("also held outside the bounded cache" in note and holder in note for note in record["notes"]), record
    assert_clean(records, ["test_feeds_the_cache", "test_caches_and_remembers_the_last_item"])
    for name in ("test_feeds_the_cache", "test_caches_and_remembers_the_last_item"):
        assert records[name]["suspicion"]["cause"] == "bounded cache", records[name]
        assert records[name]["set_aside"]["types"] == {"list": 1, "test_kept.Item": 1}, records[name]


def test_a_leak_in_a_unittest_hypothesis_test_is_confirmed_by_reruns(tester: pytest.Pytester) -> None:
    """pytest makes a new ``TestCase`` for each run, and the ``@given`` wrapper fails its
    ``differing_executors`` health check when a second instance runs it: every rerun of a
    ``unittest`` ``@given`` test failed, and a leak in one was never confirmed."""
    pytest.importorskip("hypothesis")
    tester.makepyfile(
        test_unit="""
        import unittest
        from hypothesis import given, seed, settings, strategies as st
        from hypothesis.database import InMemoryExampleDatabase

        KEPT = []
        DATABASE = InMemoryExampleDatabase()  # before 6.136.4 the check runs only with a database

        class TestUnit(unittest.TestCase):
            @given(st.integers())
            @settings(max_examples=20, database=DATABASE)
            @seed(0)
            def test_leaks(self, x):
                KEPT.append([x])

            @given(st.integers())
            @settings(max_examples=20, database=DATABASE)
            @seed(0)
            def test_clean(self, x):
                assert [x]
        """
    )
    result, records = run_with_report(tester, "-p", "no:randomly")
    result.assert_outcomes(passed=2, errors=1)
    record = records["TestUnit::test_leaks"]
    assert record["verdict"] == "leaked", record
    assert [(leak["type"], leak["count"]) for leak in record["leaked"]] == [("list", 20)], record
    clean = records["TestUnit::test_clean"]
    assert clean["verdict"] == "clean", clean
    assert clean["suspicion"] is None or clean["suspicion"]["cause"] != "not confirmed", clean


@pytest.mark.parametrize(
    "once",
    [
        pytest.param("OLD[:6] = [Entry() for _ in range(5)]", id="a rebuild one object smaller"),
        pytest.param("del OLD[:60]", id="a clear of older objects"),
    ],
)
def test_a_one_object_leak_beside_a_one_off_change_to_older_objects_is_reported(
    tester: pytest.Pytester, once: str
) -> None:
    """A leak of one object per run hides in any mix of kept and freed: the measured rerun
    that also rebuilds older objects (6 freed for 5 new and the leak) or clears them (60
    freed for 1 kept) is measured again, and the leak frees nothing then."""
    tester.makepyfile(
        test_once=f"""
        import itertools

        class Entry:
            pass

        class Leaked:
            pass

        KEPT = []
        OLD = [Entry() for _ in range(100)]  # made at import: older than the test
        RUNS = itertools.count()

        def test_warm_up():
            pass

        def test_leaks_beside_a_one_off_change():
            if next(RUNS) == 2:  # the second rerun: the measured one
                {once}
            KEPT.append(Leaked())
        """
    )
    result, records = run_with_report(tester)
    result.assert_outcomes(passed=2, errors=1)
    record = records["test_leaks_beside_a_one_off_change"]
    assert record["verdict"] == "leaked", record
    assert [(leak["type"], leak["count"]) for leak in record["leaked"]] == [("test_once.Leaked", 1)], record
    assert record["set_aside"] is None, record
    assert any("measured again in rerun 3" in note for note in record["notes"]), record
    assert_clean(records, ["test_warm_up"])


def test_a_new_context_variable_value_per_run_is_reported_though_older_map_nodes_die(
    tester: pytest.Pytester,
) -> None:
    """Setting a context variable copies the path of nodes in the context's map and frees the
    old ones: a test that leaves a new value in the thread's context on every run (asgiref's
    ``Local``: a new ``ContextVar`` each time) frees older objects as it grows, which looked
    like a full cache replacing entries.  A context evicts nothing: reported."""
    tester.makepyfile(
        test_context="""
        import contextvars

        class Storage:
            pass

        # Many variables set at import: the context's map is a trie several nodes deep.
        SEEDED = [contextvars.ContextVar(f"seed-{n}") for n in range(2000)]
        for var in SEEDED:
            var.set(object())

        def test_warm_up():
            pass

        def test_sets_a_new_context_variable_per_run():
            contextvars.ContextVar("local").set(Storage())
        """
    )
    result, records = run_with_report(tester)
    result.assert_outcomes(passed=2, errors=1)
    record = records["test_sets_a_new_context_variable_per_run"]
    assert record["verdict"] == "leaked", record
    assert [(leak["type"], leak["count"]) for leak in record["leaked"]] == [("test_context.Storage", 1)], record
    assert record["set_aside"] is None, record
    # Which map nodes a run frees depends on the variables' hashes (randomised per
    # process): in about one run in a hundred the measuring rerun's new path shares
    # its nodes with the rerun before's, no older node dies, and the growth is
    # reported without the context rule being needed.
    assert any(
        "the thread's context variables hold the new objects of test_context.Storage" in note
        or "too few older objects were freed to balance the growth" in note
        for note in record["notes"]
    ), record
    assert_clean(records, ["test_warm_up"])
