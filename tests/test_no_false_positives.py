"""Clean tests that a leak checker must never fail (issue 2, "What must not be reported")."""

from __future__ import annotations

import json
import re
import sys
from typing import Any

import pytest


def records_by_name(tester: pytest.Pytester) -> dict[str, dict[str, Any]]:
    """The inner run's JSON records (``--gcguard-json=out.json``) by test function name."""
    document = json.loads((tester.path / "out.json").read_text())
    return {record["nodeid"].rpartition("::")[2]: record for record in document["tests"]}


CLEAN_SUITE = {
    "conftest.py": """
        import pytest

        @pytest.fixture(scope="session")
        def session_data():
            return [{"row": [i]} for i in range(200)]

        @pytest.fixture(scope="package")
        def package_data():
            return {"pkg": [[1], [2]]}

        @pytest.fixture(scope="module")
        def module_data():
            return {"mod": [[i] for i in range(50)]}

        @pytest.fixture(scope="class")
        def class_data():
            return [object() for _ in range(20)]

        class Thing:
            pass

        @pytest.fixture
        def thing():
            t = Thing()
            yield t
    """,
    "test_fixtures.py": """
        import pytest

        def test_session_first(session_data): assert session_data
        def test_session_again(session_data): assert session_data
        def test_package(package_data): assert package_data
        def test_module(module_data): assert module_data

        @pytest.mark.usefixtures("class_data")
        class TestScoped:
            def test_a(self, class_data): assert class_data
            def test_b(self, class_data): assert class_data

        def test_function_fixture(thing): assert thing
        def test_builtin_fixtures(tmp_path, capsys, monkeypatch, caplog, recwarn, request):
            (tmp_path / "f").write_text("x")
            print("out")
            monkeypatch.setenv("GCGUARD_X", "1")
            import logging, warnings
            logging.getLogger("x").warning("w")
            warnings.warn("w", UserWarning)
            request.node.user_properties.append(("k", [1, 2]))
            assert capsys.readouterr().out == "out\\n"

        @pytest.mark.parametrize("n", range(5))
        def test_parametrized(n): assert [n] * n is not None
    """,
    "test_caches.py": """
        import functools, gc, logging, re, threading, warnings

        CONFIG = {"a": [1]}

        @functools.lru_cache(maxsize=None)
        def cached(x):
            return [x, {"x": x}]

        def test_re(): assert re.compile(r"(?P<x>ab+c)\\d{3}").match("abbc123")
        def test_lru(): assert cached(3)
        def test_logger(): logging.getLogger("mypkg.sub").info("hello")
        def test_warning_registry():
            warnings.warn("first time in this module", UserWarning)
        def test_replaced_global():
            global CONFIG
            CONFIG = {"a": [2], "b": [3]}
        def test_lazy_import():
            import json.tool, xml.dom.minidom, email.mime.text
            assert xml.dom.minidom.parseString("<a/>")
        def test_thread():
            out = []
            t = threading.Thread(target=lambda: out.append([1]))
            t.start()
            t.join()
            assert out
        def test_gc_toggle():
            gc.disable()
            x = [[] for _ in range(10)]
            gc.enable()
        def test_exception_caught():
            try:
                raise ValueError("x")
            except ValueError as e:
                err = e
            assert err
    """,
    "test_kinds.py": '''
        import unittest

        class TestUnit(unittest.TestCase):
            def setUp(self):
                self.x = {"a": [1]}
            def test_u(self):
                self.assertTrue(self.x)

        def add(a, b):
            """
            >>> add(1, 2)
            3
            """
            return a + b
    ''',
}


def test_clean_suite_passes_on_every_test(tester: pytest.Pytester) -> None:
    tester.makepyfile(**CLEAN_SUITE)
    result = tester.runpytest_subprocess("--gcguard", "--doctest-modules", "-v", "-W", "ignore::UserWarning")
    result.assert_outcomes(passed=24)
    result.stdout.fnmatch_lines(["*gcguard: checked 24 test(s);*; 0 leaking;*"])
    result.stdout.no_fnmatch_line("*ERROR*")


def test_failed_test_is_reported_once_without_a_leak_report(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        """
        class Node:
            pass

        def test_fails():
            keep = [Node() for _ in range(10)]
            assert not keep

        def test_after():
            pass
        """
    )
    result = tester.runpytest_subprocess("--gcguard")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.no_fnmatch_line("*gcguard: test_*")


def test_skip_and_xfail_outcomes_are_unchanged(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        """
        import pytest
        KEEP = []

        @pytest.mark.skip(reason="no")
        def test_skipped():
            KEEP.append([1])

        def test_skip_inside():
            KEEP.append([1])
            pytest.skip("inside")

        @pytest.mark.xfail(reason="known")
        def test_xfail():
            KEEP.append([1])
            assert 0

        @pytest.mark.xfail(reason="known", strict=True)
        def test_xfail_strict():
            KEEP.append([1])
            assert 0
        """
    )
    result = tester.runpytest_subprocess("--gcguard")
    result.assert_outcomes(skipped=2, xfailed=2)
    assert result.ret == pytest.ExitCode.OK


def test_pytester_inside_a_checked_test(tester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    # pytest alone: other installed plugins keep state per in-process session
    # (pytest-rerunfailures starts a server thread that never ends, with xdist).
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    tester.makeconftest('pytest_plugins = ["pytester"]')
    tester.makepyfile(
        """
        def test_inner_run(pytester):
            pytester.makepyfile("def test_x(): pass")
            result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
            result.assert_outcomes(passed=1)
        """
    )
    result = tester.runpytest_subprocess("-p", "pytest_gcguard.plugin", "--gcguard", "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*gcguard: checked 1 test(s);*; 0 leaking;*"])


def test_first_test_to_trigger_a_module_fixture_is_clean_without_reruns(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        """
        import pytest

        @pytest.fixture(scope="module")
        def big():
            return [[i] for i in range(1000)]

        def test_first(big):
            assert big
        """
    )
    result = tester.runpytest_subprocess("--gcguard", "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*gcguard: checked 1 test(s); 0 suspected*"])


BOUNDED_CACHES = """
    import collections, functools, itertools

    class Entry:
        def __init__(self, key):
            self.key = key
            self.payload = [key]

    class LRU:
        # A full bounded cache: every new key evicts the oldest entry.
        def __init__(self, size):
            self.size = size
            self.data = collections.OrderedDict()
        def get(self, key):
            if key not in self.data:
                if len(self.data) >= self.size:
                    self.data.popitem(last=False)
                self.data[key] = Entry(key)
            return self.data[key]

    CACHE = LRU(64)
    RECENT = collections.deque(maxlen=16)
    FRESH = itertools.count()

    @functools.lru_cache(maxsize=32)
    def parse(key):
        return Entry(key)

    def test_warm_up():
        for _ in range(100):
            CACHE.get(next(FRESH))
            RECENT.append(Entry(next(FRESH)))
            parse(next(FRESH))

    def test_full_lru():
        # A new key on every run, as a temporary path or a fresh class would be.
        CACHE.get(next(FRESH))

    def test_full_deque():
        RECENT.append(Entry(next(FRESH)))

    def test_full_lru_cache():
        parse(next(FRESH))
"""


def test_full_bounded_caches_that_replace_entries_are_not_leaks(tester: pytest.Pytester) -> None:
    tester.makepyfile(test_bounded=BOUNDED_CACHES)
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-json=report.json")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        ["*gcguard: checked 4 test(s);*; 3 growing only a bounded cache (not reported); 0 leaking*"]
    )
    tests = {t["nodeid"].rpartition("::")[2]: t for t in json.loads((tester.path / "report.json").read_text())["tests"]}
    for name in ("test_full_lru", "test_full_deque", "test_full_lru_cache"):
        assert tests[name]["verdict"] == "clean"
        assert tests[name]["set_aside"]["types"]
    # This LRU does not declare its bound: the older objects freed are the sign.
    assert "older than the test were freed" in tests["test_full_lru"]["set_aside"]["reason"]
    # These do: the growth is traced to them.
    assert (
        "cache replacing its entries (collections.deque (16 of at most 16"
        in tests["test_full_deque"]["set_aside"]["reason"]
    )
    assert (
        "replacing its entries (functools._lru_cache_wrapper (32 of"
        in tests["test_full_lru_cache"]["set_aside"]["reason"]
    )


FILLING_CACHES = """
    import collections, functools, itertools

    class Entry:
        def __init__(self, key):
            self.key = key
            self.payload = [key]

    class SlottedLRU:
        # Declares its bound in a slot, as Hypothesis's caches do.
        __slots__ = ("max_size", "data")
        def __init__(self, max_size):
            self.max_size = max_size
            self.data = collections.OrderedDict()
        def __len__(self):
            return len(self.data)
        def get(self, key):
            if key not in self.data:
                if len(self.data) >= self.max_size:
                    self.data.popitem(last=False)
                self.data[key] = Entry(key)
            return self.data[key]

    CACHE = SlottedLRU(10_000)
    RECENT = collections.deque(maxlen=10_000)
    REGISTRY = {}
    FRESH = itertools.count()

    @functools.lru_cache(maxsize=10_000)
    def parse(key):
        return Entry(key)

    def test_filling_lru():
        CACHE.get(next(FRESH))

    def test_filling_deque():
        RECENT.append(Entry(next(FRESH)))

    def test_filling_lru_cache():
        parse(next(FRESH))

    def test_unbounded_registry_leaks():
        key = next(FRESH)
        REGISTRY[key] = Entry(key)
"""


def test_a_bounded_cache_still_filling_up_is_not_a_leak(tester: pytest.Pytester) -> None:
    tester.makepyfile(test_filling=FILLING_CACHES)
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-json=report.json")
    result.assert_outcomes(passed=4, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*gcguard: test_filling.py::test_unbounded_registry_leaks: * leaked object(s)*",
            "*gcguard: checked 4 test(s);*; 3 growing only a bounded cache (not reported); 1 leaking*",
        ]
    )
    tests = {t["nodeid"].rpartition("::")[2]: t for t in json.loads((tester.path / "report.json").read_text())["tests"]}
    assert "test_filling.SlottedLRU (" in tests["test_filling_lru"]["set_aside"]["reason"]
    assert "collections.deque (" in tests["test_filling_deque"]["set_aside"]["reason"]
    assert "functools._lru_cache_wrapper (" in tests["test_filling_lru_cache"]["set_aside"]["reason"]
    assert tests["test_filling_lru"]["set_aside"]["types"] == {"list": 1, "test_filling.Entry": 1}
    assert tests["test_unbounded_registry_leaks"]["verdict"] == "leaked"


def test_a_leak_beside_a_full_bounded_cache_is_still_reported(tester: pytest.Pytester) -> None:
    # The test evicts older entries of a full lru_cache (a replacement) and also
    # leaks into an unbounded list: only the cache's growth is set aside.
    tester.makepyfile(
        test_mixed="""
        import functools, itertools

        class Entry:
            pass

        class Leaked:
            pass

        FRESH = itertools.count()
        KEEP = []

        @functools.lru_cache(maxsize=100)
        def parse(key):
            return Entry()

        for _ in range(100):
            parse(next(FRESH))

        def test_mixed():
            for _ in range(10):
                parse(next(FRESH))
            KEEP.append(Leaked())
        """
    )
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-json=report.json", "-v")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*test_mixed.Leaked x1*"])
    result.stdout.no_fnmatch_line("*test_mixed.Entry x*")
    (record,) = json.loads((tester.path / "report.json").read_text())["tests"]
    assert record["verdict"] == "leaked"
    assert record["set_aside"]["types"] == {"test_mixed.Entry": 10}
    assert "functools._lru_cache_wrapper" in record["set_aside"]["reason"]


SETTLED_WITHOUT_A_RERUN = """
    import collections.abc, contextvars, itertools, linecache, numbers, struct, tempfile, urllib.parse

    VAR = contextvars.ContextVar("var", default=0)
    NAMES = [contextvars.ContextVar(f"name{i}") for i in range(40)]
    WIDGETS = contextvars.ContextVar("widgets", default=())
    FRESH = itertools.count()
    KEEP = []

    class Widget:
        pass

    def test_sets_context_variables():
        # Each setting gives the context a new map (HAMT nodes) and drops the old one.
        VAR.set(next(FRESH))
        for var in NAMES:
            var.set(next(FRESH))

    def test_generated_source_in_linecache():
        # What attrs does for each class it makes: register the generated code's text.
        source = "def __repr__(self):\\n    return 'C()'\\n"
        name = "<generated repr test_settled.C>"
        linecache.cache[name] = (len(source), None, source.splitlines(True), name)
        exec(compile(source, name, "exec"), {})

    def test_parses_new_urls():
        urllib.parse.urlsplit(f"file:///tmp/pytest-{next(FRESH)}/data.csv")

    def test_packs_new_formats():
        # struct's module functions compile each new format once and cache it (in C, up to 100).
        start = next(FRESH) * 40
        for n in range(start, start + 40):
            assert struct.calcsize(f"<{n + 1}h") == 2 * (n + 1)

    def test_first_names_a_temporary_file():
        # tempfile makes its name generator (and its Random) on first use.
        with tempfile.TemporaryDirectory():
            pass

    KINDS = [type(f"Kind{n}", (), {}) for n in range(5)]

    def test_asks_abcs_about_new_classes():
        # Each answer is cached in the ABC: a weak reference with a callback, in a set.
        for kind in KINDS:
            assert not isinstance(kind(), collections.abc.Mapping)
            assert not issubclass(kind, numbers.Number)

    def test_leaks_through_a_context_variable():
        VAR.set(Widget())
        KEEP.append(contextvars.copy_context())

    def test_leaks_values_kept_in_a_context_variable():
        WIDGETS.set((*WIDGETS.get(), Widget()))

    def test_leaks_compiled_formats():
        # Made directly, not through struct's cache: kept by this module only.
        start = next(FRESH) * 40
        for n in range(start, start + 3):
            KEEP.append(struct.Struct(f">{n + 1}i"))
            struct.pack(f"<{n + 1}x")

    def test_leaks_format_iterators():
        # Each holds the Struct struct's cache holds: kept here, both are the test's.
        n = next(FRESH)
        KEEP.append(struct.iter_unpack(f"<{n + 500}b", bytes(n + 500)))

    def test_leaks_a_context_variable_per_instance():
        # asgiref's Local: every instance makes its own ContextVar and sets it in this thread.
        var = contextvars.ContextVar(f"local-{next(FRESH)}")
        var.set(Widget())
"""


def test_context_maps_and_stdlib_caches_settle_without_a_rerun(tester: pytest.Pytester) -> None:
    """Growth held by the thread's context map, by linecache, urllib.parse's and struct's caches,
    tempfile's name generator, or by the ABCs' caches is not even suspected; leaks through a
    context variable are still found."""
    tester.makepyfile(test_settled=SETTLED_WITHOUT_A_RERUN)
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-json=out.json", "-p", "no:randomly")
    result.assert_outcomes(passed=11, errors=5)
    tests = records_by_name(tester)
    settled = (
        "test_sets_context_variables",
        "test_generated_source_in_linecache",
        "test_parses_new_urls",
        "test_packs_new_formats",
        "test_first_names_a_temporary_file",
    )
    for name in (*settled, "test_asks_abcs_about_new_classes"):
        assert (tests[name]["verdict"], tests[name]["reruns"]) == ("clean", 0), name
    leaked = {name: {leak["type"] for leak in tests[name]["leaked"]} for name in tests if tests[name]["leaked"]}
    assert leaked == {
        "test_leaks_through_a_context_variable": {"_contextvars.Context", "test_settled.Widget"},
        "test_leaks_values_kept_in_a_context_variable": {"test_settled.Widget"},
        "test_leaks_a_context_variable_per_instance": {"test_settled.Widget"},
        "test_leaks_compiled_formats": {"_struct.Struct"},
        "test_leaks_format_iterators": {"_struct.Struct", "_struct.unpack_iterator"},
    }
    assert tests["test_leaks_compiled_formats"]["leaked"][0]["count"] == 3


def test_a_module_imported_per_run_is_clean_with_the_registry_of_its_classes_subclasses(
    tester: pytest.Pytester,
) -> None:
    """pydantic's ``create_module`` fixture imports a module under a new name on every run.
    What the import made is the module's, but a class's registry of its subclasses (a dict
    made when its first subclass is) is not among the class's referents: 7 of pydantic's
    tests, whose modules define a subclass of their own class, were reported for it."""
    tester.makepyfile(
        test_modules="""
        import importlib.util
        import itertools
        import sys

        import pytest

        NAMES = itertools.count()

        @pytest.fixture
        def create_module(tmp_path):
            def create(source):
                name = f"made_{next(NAMES)}"
                path = tmp_path / f"{name}.py"
                path.write_text(source)
                spec = importlib.util.spec_from_file_location(name, path)
                sys.modules[name] = module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
                return module
            return create

        def test_warm_up(create_module):
            assert create_module("class Base:\\n    pass\\n").Base

        def test_module_with_a_subclass(create_module):
            module = create_module("class Base:\\n    pass\\nclass Sub(Base):\\n    pass\\n")
            assert issubclass(module.Sub, module.Base)

        def test_module_without_one(create_module):
            module = create_module("class Base:\\n    pass\\nclass Other:\\n    pass\\n")
            assert module.Base is not module.Other
        """
    )
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-json=out.json", "-p", "no:randomly")
    tests = records_by_name(tester)
    for name in ("test_module_with_a_subclass", "test_module_without_one"):
        # Rerun once, as every test that imports a module is (a leak into it is the test's).
        assert tests[name]["verdict"] == "clean", tests[name]
        assert (tests[name]["reruns"], tests[name]["suspicion"]["cause"]) == (1, "first use"), tests[name]
    result.assert_outcomes(passed=3)


def test_cancelled_timers_a_server_thread_keeps_until_their_time_are_not_leaks(tester: pytest.Pytester) -> None:
    """httpx's test server runs uvicorn on its own loop in another thread: each request arms
    a keep-alive timer that is cancelled when the connection closes, and asyncio keeps a
    cancelled timer in the loop's heap until its time comes (47 of httpx's tests were
    reported).  A cancelled timer holds nothing but its context.  What a request keeps
    beside it is still reported, alone."""
    tester.makepyfile(
        test_server="""
        import asyncio
        import threading

        import pytest

        async def tick():  # an earlier timer always armed: the cancelled ones wait below it
            while True:
                await asyncio.sleep(30)

        @pytest.fixture(scope="module")
        def loop():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, daemon=True)
            thread.start()
            asyncio.run_coroutine_threadsafe(tick(), loop)
            yield loop
            loop.call_soon_threadsafe(loop.stop)
            thread.join()

        def test_warm_up(loop):
            pass

        def test_request_closes_its_connection(loop):
            async def request():
                loop.call_later(60, print).cancel()  # keep-alive timer, cancelled on close
            asyncio.run_coroutine_threadsafe(request(), loop).result()

        KEPT = []

        class Session:
            pass

        def test_request_closes_its_connection_and_keeps_its_session(loop):
            async def request():
                loop.call_later(60, print).cancel()
                KEPT.append(Session())
            asyncio.run_coroutine_threadsafe(request(), loop).result()
        """
    )
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-json=out.json", "-p", "no:randomly")
    tests = records_by_name(tester)
    closed = tests["test_request_closes_its_connection"]
    assert closed["verdict"] == "clean", closed
    leaking = tests["test_request_closes_its_connection_and_keeps_its_session"]
    assert [(leak["type"], leak["count"]) for leak in leaking["leaked"]] == [("test_server.Session", 1)], leaking
    result.assert_outcomes(passed=3, errors=1)


def test_hypothesis_keeping_a_tag_per_new_strategy_label_is_not_the_tests_leak(tester: pytest.Pytester) -> None:
    """Hypothesis keeps a tag for every strategy label it has seen, in a plain dict, for the
    whole run: strategies that make new labels on every example grow it on every run
    (cattrs' tests, which build classes per example).  That is the test tool's memory;
    a leak of the code under test beside it is still reported, with its own type alone."""
    pytest.importorskip("hypothesis")
    tester.makepyfile(
        test_labels="""
        from hypothesis import given, settings, strategies as st

        KEPT = []

        class Item:  # the default repr shows the address: each strategy gets a new label
            pass

        @st.composite
        def fresh(draw):
            return draw(st.sampled_from([Item(), Item()]))

        @settings(max_examples=10, database=None)
        @given(fresh())
        def test_fresh_strategies(item):
            assert isinstance(item, Item)

        class Leaked:
            pass

        @settings(max_examples=10, database=None)
        @given(fresh())
        def test_fresh_strategies_and_a_leak(item):
            KEPT.append(Leaked())
        """
    )
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-json=out.json", "-p", "no:randomly")
    tests = records_by_name(tester)
    assert tests["test_fresh_strategies"]["verdict"] == "clean", tests["test_fresh_strategies"]
    leaked = {leak["type"] for leak in tests["test_fresh_strategies_and_a_leak"]["leaked"]}
    assert leaked == {"test_labels.Leaked"}, tests["test_fresh_strategies_and_a_leak"]
    result.stdout.no_fnmatch_line("*StructuralCoverageTag*")
    result.assert_outcomes(passed=2, errors=1)


def test_what_hypothesis_keeps_once_per_given_test_does_not_get_it_rerun(tester: pytest.Pytester) -> None:
    """Every ``@given`` test's first run left three things of Hypothesis's runner: the module
    it compiles the test's signature into (kept by source), the set of recursion limits its
    stack-frame guard rebinds, and its example database's paths for the test's keys.  Each
    such test was suspected and rerun for them (bidict's 24 of 73 tests, at the cost of all
    their examples again).  They are the runner's now, with the database named by the
    settings profile or by the test's own settings; a leak beside them is still reported."""
    pytest.importorskip("hypothesis")
    tester.makeconftest(
        """
        from hypothesis import settings
        from hypothesis.database import DirectoryBasedExampleDatabase

        settings.register_profile("here", database=DirectoryBasedExampleDatabase(".profile-db"), max_examples=20)
        settings.load_profile("here")
        """
    )
    tester.makepyfile(
        test_given="""
        from hypothesis import given, settings, strategies as st
        from hypothesis.database import DirectoryBasedExampleDatabase

        OWN = DirectoryBasedExampleDatabase(".own-db")
        KEPT = []

        @given(st.integers())
        def test_warm_up(x):  # Hypothesis's own first use: its engine's caches
            assert x == x

        @settings(database=OWN)
        @given(st.lists(st.integers()))
        def test_warm_up_lists(xs):
            assert len(xs) >= 0

        @given(st.integers())
        def test_profile_database(x):
            assert x + 1 > x

        @settings(database=OWN)
        @given(st.lists(st.integers()))
        def test_own_database(xs):
            assert sorted(sorted(xs)) == sorted(xs)

        class Kept:
            pass

        @given(st.integers())
        def test_leaks(x):
            KEPT.append(Kept())
        """
    )
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-json=out.json", "-p", "no:randomly")
    tests = records_by_name(tester)
    for name in ("test_profile_database", "test_own_database"):
        assert tests[name]["verdict"] == "clean", tests[name]
        assert tests[name]["reruns"] == 0, tests[name]
    leaking = tests["test_leaks"]
    assert [(leak["type"], leak["count"]) for leak in leaking["leaked"]] == [("test_given.Kept", 20)], leaking
    result.assert_outcomes(passed=5, errors=1)


def test_hypothesis_thread_local_state_made_on_first_use_does_not_get_a_test_rerun(tester: pytest.Pytester) -> None:
    """Hypothesis keeps state in thread-locals, made on a thread's first use of each: its
    module-level ones, and the one each ``@given`` wrapper keeps in its closure, which holds
    the instance of the test method's class it first ran with (attrs' class-based tests were
    each suspected and rerun for it).  The runner's now; a leak beside it is still reported."""
    pytest.importorskip("hypothesis")
    tester.makepyfile(
        test_methods="""
        import functools
        from hypothesis import given, settings, strategies as st

        KEPT = []
        ZERO = st.just(0)  # one strategy for all: its first draw builds its state, in the warm-up

        def wrapped(test):  # a suite's own decorator around the @given test
            @functools.wraps(test)
            def wrapper(*args, **kwargs):
                return test(*args, **kwargs)
            return wrapper

        @given(ZERO)
        @settings(max_examples=20, database=None)
        def test_warm_up(x):  # Hypothesis's own first use: its engine's caches
            assert x == x

        class TestMethods:
            # The warm-up's strategy: nothing of Hypothesis's engine or of it is new here.
            @given(ZERO)
            @settings(max_examples=20, database=None)
            def test_method(self, x):
                assert x == x

            @wrapped
            @given(ZERO)
            @settings(max_examples=20, database=None)
            def test_wrapped_method(self, x):
                assert x == x

            @given(st.integers())
            @settings(max_examples=20, database=None, derandomize=True)
            def test_method_leaks(self, x):
                KEPT.append([x])
        """
    )
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-json=out.json", "-p", "no:randomly")
    tests = records_by_name(tester)
    for name in ("test_method", "test_wrapped_method"):
        assert tests[name]["verdict"] == "clean", tests[name]
        assert tests[name]["reruns"] == 0, tests[name]
    leaking = tests["test_method_leaks"]
    assert leaking["verdict"] == "leaked", leaking
    assert [leak["type"] for leak in leaking["leaked"]] == ["list"], leaking
    result.assert_outcomes(passed=4, errors=1)


HYPOTHESIS_CACHES = """
    import sys
    import threading

    import pytest

    from hypothesis import given, settings, strategies as st

    KEEP = []

    class Widget:
        pass

    def given_data(test):
        return settings(max_examples=10, database=None, derandomize=True)(given(st.data())(test))

    # Module-level strategies: each builds what it wraps on its first draw, and
    # memoizes that once unwrapped; their ``__dict__`` is made before (read by the
    # warm-up, as Hypothesis's own checks read it), except the ``one_of``'s: its
    # first draw makes it (3.11, 3.12), and the older strategies it holds are found
    # through it.
    PAIRS = st.tuples(st.integers(0, 7100), st.booleans())
    LISTS_OF_PAIRS = st.lists(PAIRS, max_size=2)
    TRIPLES = st.tuples(st.integers(0, 7200), st.booleans(), st.none())
    CHOICE = st.tuples(st.integers(0, 7300), st.booleans()) | st.none()
    OTHER_CHOICE = st.integers(0, 7400) | st.booleans()

    @given_data
    def test_0_warms_hypothesis_up(data):
        data.draw(st.lists(st.integers(min_value=0, max_value=data.draw(st.integers(0, 5))), max_size=3))
        vars(PAIRS), vars(TRIPLES), vars(OTHER_CHOICE)

    @given_data
    def test_draws_new_strategies(data):
        # A new strategy per bound: Hypothesis's strategy cache keeps each, and its
        # pooled constraints and samplers' tables.
        bound = 1000 + data.draw(st.integers(0, 50))
        data.draw(st.lists(st.integers(min_value=0, max_value=bound), max_size=3))

    @given_data
    def test_draws_new_choices(data):
        # A ``one_of`` per bound: its strategy holds a lock (attrs' costliest tests).
        bound = 5000 + data.draw(st.integers(0, 50))
        data.draw(st.lists(st.one_of(st.just(bound), st.integers(0, bound)), max_size=3))

    @settings(max_examples=10, database=None, derandomize=True)
    @given(LISTS_OF_PAIRS)
    def test_first_draws_a_strategy_of_older_ones(pairs):
        pass

    @settings(max_examples=10, database=None, derandomize=True)
    @given(TRIPLES)
    def test_first_draws_an_older_strategy(triple):
        pass

    @settings(max_examples=10, database=None, derandomize=True)
    @given(CHOICE)
    def test_first_draws_a_choice_of_older_strategies(choice):
        pass

    @settings(max_examples=10, database=None, derandomize=True)
    @given(OTHER_CHOICE)
    def test_first_draws_a_choice(choice):
        pass

    # Found by review: a one_of's list of branches is set once, and what a test appends
    # to it on every run is not (an older one_of reached through the new strategy
    # ``lists`` builds, or whose ``__dict__`` is older; locks or lists appended).
    # (Only where the rule applies: elsewhere Hypothesis may find the changed branches
    # flaky.)
    INNER = st.one_of(st.integers(0, 7500), st.none())
    OLDER = st.one_of(st.integers(0, 7600), st.booleans())
    vars(OLDER)
    ruled = pytest.mark.skipif(sys.version_info[:2] not in ((3, 11), (3, 12)), reason="3.11, 3.12")

    @ruled
    @settings(max_examples=5, database=None, derandomize=True)
    @given(st.lists(INNER, min_size=1))
    def test_appends_to_the_branches_of_a_drawn_one_of(xs):
        INNER.element_strategies.append([xs])

    @ruled
    @settings(max_examples=5, database=None, derandomize=True)
    @given(OLDER)
    def test_appends_locks_to_the_branches_of_a_one_of(x):
        OLDER.element_strategies.append(threading.RLock())

    @given_data
    def test_draws_and_leaks(data):
        data.draw(st.integers(min_value=0, max_value=2000 + data.draw(st.integers(0, 50))))
        KEEP.append(Widget())

    @given_data
    def test_keeps_the_strategies_it_draws(data):
        strategy = st.integers(min_value=0, max_value=3000 + data.draw(st.integers(0, 50))).map(str)
        data.draw(strategy)
        KEEP.append(strategy)

    class Node:
        def __init__(self, child=None):
            self.child = child
            self.items = []

    @given_data
    def test_grows_what_it_hangs_on_a_cached_strategy(data):
        # The cache gives every run the first run's strategy; what the first run hangs
        # on it (a chain of the code's own objects) grows on every run after.  (Deep:
        # within a few levels of a bounded cache, growth is set aside as the cache's.)
        strategy = st.integers(min_value=0, max_value=987654)
        if not hasattr(strategy, "registry"):
            node = None
            for _ in range(20):
                node = Node(node)
            strategy.registry = node
        node = strategy.registry
        while node.child is not None:
            node = node.child
        node.items.append(Widget())
        data.draw(strategy)
"""


def test_a_hypothesis_test_that_only_fills_hypothesis_caches_settles_without_a_rerun(
    tester: pytest.Pytester,
) -> None:
    """On 3.11 and 3.12 a @given test whose new objects only Hypothesis's bounded caches and
    the strategies it builds once refer to is not rerun (3.10 and 3.13 rerun it); a leak
    beside such growth, of the strategies themselves, or into what a first run hangs on a
    cached strategy (found by review) is still confirmed and reported."""
    tester.makepyfile(test_caches=HYPOTHESIS_CACHES)
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-json=out.json", "-p", "no:randomly")
    settles = (3, 11) <= sys.version_info[:2] <= (3, 12)
    if settles:
        result.assert_outcomes(passed=12, errors=5)
    else:
        result.assert_outcomes(passed=10, errors=3, skipped=2)
    tests = records_by_name(tester)
    settling = (
        "test_draws_new_strategies",
        "test_draws_new_choices",
        "test_first_draws_a_strategy_of_older_ones",
        "test_first_draws_an_older_strategy",
        "test_first_draws_a_choice_of_older_strategies",
        "test_first_draws_a_choice",
    )
    for name in settling:
        record = tests[name]
        assert record["verdict"] == "clean", record
        if settles:
            assert (record["reruns"], record["suspicion"]["cause"]) == (0, "hypothesis"), record
            assert "Hypothesis's bounded caches" in record["notes"][0], record
        else:
            assert record["reruns"] >= 1, record
            assert record["suspicion"]["cause"] != "hypothesis", record
    if settles:
        result.stdout.fnmatch_lines(["*6 settled without a rerun (Hypothesis's own caches); 5 leaking*"])
    leaked = {name: {leak["type"] for leak in tests[name]["leaked"]} for name in tests if tests[name]["leaked"]}
    review = {"test_appends_to_the_branches_of_a_drawn_one_of", "test_appends_locks_to_the_branches_of_a_one_of"}
    assert leaked.keys() == {
        "test_draws_and_leaks",
        "test_keeps_the_strategies_it_draws",
        "test_grows_what_it_hangs_on_a_cached_strategy",
        *(review if settles else ()),
    }
    if settles:
        assert leaked["test_appends_to_the_branches_of_a_drawn_one_of"] == {"list"}
        assert leaked["test_appends_locks_to_the_branches_of_a_one_of"] == {"_thread.RLock"}
    assert leaked["test_draws_and_leaks"] == {"test_caches.Widget"}
    assert leaked["test_grows_what_it_hangs_on_a_cached_strategy"] == {"test_caches.Widget"}
    assert "hypothesis.strategies._internal.strategies.MappedStrategy" in leaked["test_keeps_the_strategies_it_draws"]
    for name in leaked:
        assert tests[name]["reruns"] == 2, tests[name]


def test_a_full_cache_that_evicts_the_tests_own_entries_is_set_aside(tester: pytest.Pytester) -> None:
    """A full bounded cache that, once the entries older than the test are gone, evicts
    what the test's earlier runs put in it: no older object dies, and none of the first
    rerun's objects outlives the later reruns, so there was no sample to find the cache
    from; growth that the entries' sizes happen to add in every run was reported (cattrs'
    Hypothesis tests, through Hypothesis's full strategy cache).  The last run's objects are
    the samples now, and their chains find the cache."""
    tester.makepyfile(
        test_evict="""
        import itertools

        class Part:
            pass

        class Thing:
            def __init__(self, size):
                self.parts = [Part() for _ in range(size)]

        class FifoCache:
            def __init__(self, maxsize):
                self.maxsize = maxsize
                self.data = {}

            def __len__(self):
                return len(self.data)

            def put(self, key, value):
                if len(self.data) >= self.maxsize:
                    del self.data[next(iter(self.data))]
                self.data[key] = value

        CALLS = itertools.count()
        CACHE = FifoCache(12)
        for _ in range(12):
            CACHE.put(("warm", next(CALLS)), Thing(1))

        def test_warm_up():
            pass

        def test_fills_a_full_cache_that_evicts_its_own_entries():
            # Each run's 4 entries evict the run before's (the older ones first); entry
            # sizes cycle (1 + calls % 40): each run keeps a few more parts than it evicts.
            for _ in range(4):
                n = next(CALLS)
                CACHE.put(n, Thing(1 + n % 40))
        """
    )
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-json=out.json", "-p", "no:randomly")
    result.assert_outcomes(passed=2)
    tests = records_by_name(tester)
    record = tests["test_fills_a_full_cache_that_evicts_its_own_entries"]
    assert (record["verdict"], record["suspicion"]["cause"]) == ("clean", "bounded cache"), record
    assert record["set_aside"]["types"].keys() == {"test_evict.Part"}, record
    assert "FifoCache" in record["set_aside"]["reason"], record
    assert tests["test_warm_up"]["verdict"] == "clean"


def test_weak_references_to_what_a_bounded_cache_keeps_are_bounded_too(tester: pytest.Pytester) -> None:
    """A registry that refers weakly to what a bounded cache keeps (Hypothesis's lambda
    descriptions, a base class's subclass registry) loses each entry when the cache evicts
    its referent: set aside with the cache's growth.  Weak references to what a leak keeps
    are still reported."""
    tester.makepyfile(
        test_weak="""
        import functools, itertools, weakref

        FRESH = itertools.count()
        DESCRIPTIONS = weakref.WeakKeyDictionary({type("Seed", (), {}): "seed"})
        KEPT = []
        INDEX = weakref.WeakKeyDictionary({type("Seed", (), {}): "seed"})

        class Made:
            pass

        @functools.lru_cache(maxsize=4096)
        def make(key):
            made = Made()
            DESCRIPTIONS[made] = f"made {key}"
            return made

        def test_fills_a_bounded_cache_and_a_weak_registry_of_it():
            for _ in range(5):
                make(next(FRESH))

        class Leaked:
            pass

        def test_leaks_and_indexes_weakly():
            leaked = Leaked()
            KEPT.append(leaked)
            INDEX[leaked] = "leaked"
        """
    )
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-json=out.json", "-p", "no:randomly")
    tests = records_by_name(tester)
    bounded = tests["test_fills_a_bounded_cache_and_a_weak_registry_of_it"]
    assert bounded["verdict"] == "clean", bounded
    assert bounded["set_aside"]["types"] == {"test_weak.Made": 5, "weakref.ReferenceType": 5}, bounded
    leaked = {leak["type"] for leak in tests["test_leaks_and_indexes_weakly"]["leaked"]}
    assert leaked == {"test_weak.Leaked", "weakref.ReferenceType"}, leaked
    result.assert_outcomes(passed=2, errors=1)


def test_classes_weak_references_follow_the_classes_into_a_bounded_cache(tester: pytest.Pytester) -> None:
    """Each class is registered with its bases by its weak reference, counted apart from
    the class, whose count is split by metaclass: cattrs' Hypothesis strategies make
    ``attrs`` classes (of ``type`` and ``ABCMeta``) that a full strategy cache keeps and
    evicts, and the references alone grew in every run.  Their chain went to the bases'
    registries, never to the cache, and they were reported.  A reference's chain is now
    its class's.  The same classes kept by a list are still reported, and so are such
    references a list keeps beside the cache (they outlive their classes)."""
    tester.makepyfile(
        test_meta="""
        import abc
        import itertools
        import weakref

        import pytest

        class Plain:
            pass

        class Abstract(abc.ABC):
            pass

        class FifoCache:
            def __init__(self, maxsize):
                self.maxsize = maxsize
                self.data = {}

            def __len__(self):
                return len(self.data)

            def put(self, key, value):
                if len(self.data) >= self.maxsize:
                    del self.data[next(iter(self.data))]
                self.data[key] = value

        KEYS = itertools.count()
        CACHE = FifoCache(5)
        KEPT = []
        # What each run adds: a class (T: of metaclass type, A: ABCMeta) or dicts (D).
        # The classes grow in every run, and each metaclass's, the dicts and the tuples do not.
        PLAN = ["TD", "DDT", "TA", "T", "T", "T", "T", "T"]

        def make(kind):
            if kind == "T":
                return type("Made", (Plain,), {})
            if kind == "A":
                return abc.ABCMeta("Made", (Abstract,), {})
            return [({},), ({},), ({},)]

        CACHED_RUNS = itertools.count()

        def test_makes_classes_into_a_bounded_cache():
            for kind in PLAN[next(CACHED_RUNS)]:
                CACHE.put(next(KEYS), make(kind))

        KEPT_RUNS = itertools.count()

        def test_keeps_classes_of_two_metaclasses():
            for kind in PLAN[next(KEPT_RUNS)].replace("D", ""):
                KEPT.append(make(kind))

        REFS = []

        @pytest.mark.gcguard(only=["weakref.*"])
        def test_caches_classes_and_keeps_their_references():
            made = type("Made", (Plain,), {})
            CACHE.put(next(KEYS), made)
            REFS.append(weakref.ref(made))  # outlives the class: a leak
        """
    )
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-json=out.json", "-p", "no:randomly")
    tests = records_by_name(tester)
    cached = tests["test_makes_classes_into_a_bounded_cache"]
    assert (cached["verdict"], cached["suspicion"]["cause"]) == ("clean", "bounded cache"), cached
    assert cached["set_aside"]["types"] == {"weakref.ReferenceType": 1}, cached
    assert "FifoCache" in cached["set_aside"]["reason"], cached
    kept = {leak["type"]: leak for leak in tests["test_keeps_classes_of_two_metaclasses"]["leaked"]}
    assert kept["weakref.ReferenceType"]["why_alive"].startswith("module test_meta -> KEPT (list) ->"), kept
    refs = tests["test_caches_classes_and_keeps_their_references"]
    assert [leak["type"] for leak in refs["leaked"]] == ["weakref.ReferenceType"], refs
    assert any("also held outside the bounded cache, by an older list" in note for note in refs["notes"]), refs
    result.assert_outcomes(passed=3, errors=2)


def test_growth_deep_in_a_bounded_cache_is_found_there(tester: pytest.Pytester) -> None:
    """What a cached Hypothesis strategy builds can sit 17 levels of new objects below the
    cache (cattrs' ``test_type_overrides``: a list in an ``IntervalSet`` in a chain of
    strategies, each with its ``__dict__``).  The why-alive search gave up after 12, found
    no cache, and the growth was reported.  It goes on through new objects now; the same
    objects kept by a module's list are still reported, with their whole chain (12 boxes:
    13 levels from the list, 25 on 3.10)."""
    tester.makepyfile(
        test_deep="""
        import pytest

        class Part:
            pass

        class Box:
            def __init__(self, inner):
                self.inner = inner

        class FifoCache:
            def __init__(self, maxsize):
                self.maxsize = maxsize
                self.data = {}

            def __len__(self):
                return len(self.data)

            def put(self, key, value):
                if len(self.data) >= self.maxsize:
                    del self.data[next(iter(self.data))]
                self.data[key] = value

        def nest(depth):
            value = Part()
            for _ in range(depth):
                value = Box(value)
            return value

        CACHE = FifoCache(1000)
        KEPT = []

        # Only the innermost type counts: no sample of a shallower one finds the holder.
        @pytest.mark.gcguard(only=["*.Part"])
        def test_caches_deep_entries():
            CACHE.put(len(CACHE), nest(12))

        @pytest.mark.gcguard(only=["*.Part"])
        def test_keeps_deep_entries():
            KEPT.append(nest(12))
        """
    )
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-json=out.json", "-p", "no:randomly")
    tests = records_by_name(tester)
    cached = tests["test_caches_deep_entries"]
    assert (cached["verdict"], cached["suspicion"]["cause"]) == ("clean", "bounded cache"), cached
    assert cached["set_aside"]["types"] == {"test_deep.Part": 1}, cached
    (leak,) = tests["test_keeps_deep_entries"]["leaked"]
    assert leak["type"] == "test_deep.Part", leak
    assert leak["why_alive"].startswith("module test_deep -> KEPT (list) -> [1] test_deep.Box -> inner"), leak
    assert leak["why_alive"].endswith("-> inner (test_deep.Part)"), leak
    result.assert_outcomes(passed=2, errors=1)


def test_objects_that_two_bounded_caches_share_are_their_growth(tester: pytest.Pytester) -> None:
    """jsonschema's resolver is a key of two ``lru_cache`` methods of its class: the key
    tuples of each run are split between two bounded caches, and neither holds them all
    (28 of jsonschema's tests were reported).  Together they do, and the second is found
    from the tuples it holds when no chain passes through it.  A tuple a module's list
    keeps beside them is still reported."""
    tester.makepyfile(
        test_two="""
        import functools

        KEPT = []

        class Resolver:
            @functools.lru_cache(maxsize=128)
            def subschemas(self):
                return {"x": []}

            @functools.lru_cache(maxsize=128)
            def find(self, url):
                self.subschemas()
                return self  # the chains reach it through this cache alone

        def test_resolves():
            Resolver().find("urn:a")

        class Resolving(Resolver):
            def __init__(self):  # caches of its own, as jsonschema's resolver has
                self.join = functools.lru_cache(maxsize=1024)(str.__add__)
                self.fetch = functools.lru_cache(maxsize=1024)(str.upper)

        def test_resolves_with_caches_of_its_own():
            Resolving().find("urn:c")

        def test_resolves_and_keeps_a_tuple():
            Resolver().find("urn:b")
            KEPT.append((Resolver, len(KEPT)))  # a tuple of atomic values only is not tracked
        """
    )
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-json=out.json", "-p", "no:randomly")
    tests = records_by_name(tester)
    for name in ("test_resolves", "test_resolves_with_caches_of_its_own"):
        bounded = tests[name]
        assert bounded["verdict"] == "clean", bounded
        assert bounded["set_aside"]["types"]["tuple"] >= 2, bounded
    leaking = tests["test_resolves_and_keeps_a_tuple"]
    assert [(leak["type"], leak["count"]) for leak in leaking["leaked"]] == [("tuple", 3)], leaking
    result.assert_outcomes(passed=3, errors=1)


def test_what_each_run_rebinds_beside_a_bounded_cache_is_not_the_caches_growth(tester: pytest.Pytester) -> None:
    """A run that fills a bounded cache and also rebinds an older object's attribute to a
    new object of the same type (Hypothesis's recursion-limit guard makes a new set per
    run, while cattrs' strategies fill Hypothesis's strategy cache with sets): what the
    last run rebound dies on the next run, so the type's growth is the cache's.  A set
    appended to a module's list on every run beside the same cache is still reported."""
    tester.makepyfile(
        test_rebind="""
        import functools, itertools

        FRESH = itertools.count()
        KEPT = []

        class Guard:
            def __init__(self):
                self.known = set()

        GUARD = Guard()

        class Made:
            def __init__(self, key):
                self.tags = {key}

        @functools.lru_cache(maxsize=4096)
        def make(key):
            return Made(key)

        def test_fills_a_bounded_cache_and_rebinds_a_set():
            for _ in range(5):
                make(next(FRESH))
            GUARD.known = {1000}

        def test_fills_a_bounded_cache_and_leaks_a_set():
            for _ in range(5):
                make(next(FRESH))
            KEPT.append({next(FRESH)})
        """
    )
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-json=out.json", "-p", "no:randomly")
    tests = records_by_name(tester)
    bounded = tests["test_fills_a_bounded_cache_and_rebinds_a_set"]
    assert bounded["verdict"] == "clean", bounded
    assert bounded["reruns"] >= 2, bounded
    assert bounded["set_aside"]["types"] == {"test_rebind.Made": 5, "set": 5}, bounded
    leaking = tests["test_fills_a_bounded_cache_and_leaks_a_set"]
    assert {leak["type"]: leak["count"] for leak in leaking["leaked"]} == {"set": 6}, leaking
    assert leaking["set_aside"]["types"] == {"test_rebind.Made": 5}, leaking
    result.assert_outcomes(passed=2, errors=1)


def test_what_an_older_cached_value_builds_on_first_use_is_the_caches_growth(tester: pytest.Pytester) -> None:
    """Hypothesis keeps its strategies in a bounded cache held in a thread-local, ten levels
    below its module; each ``LazyStrategy`` there builds the strategy it wraps the first
    time it is drawn from, so a cattrs test that draws from more of them each run keeps a
    few new strategies per run, bounded by the cache.  The chain from the cached value's
    ``__dict__`` stopped two levels short of the module and the walk from the cache one
    entry short of the wrapped strategy.  A list in a cached value that each run appends
    to grows past the cache's bound and is still reported, with its whole chain."""
    tester.makepyfile(
        test_lazy="""
        import itertools, threading

        class Entry:
            __slots__ = ("key", "value")

            def __init__(self, key, value):
                self.key = key
                self.value = value

        class Cache:
            __slots__ = ("_local", "max_size")

            def __init__(self, max_size):
                self.max_size = max_size
                self._local = threading.local()
                self._local.data = []

            def __len__(self):
                return len(self._local.data)

        class Wrapped:
            pass

        class Lazy:
            def __init__(self):
                self.wrapped = None
                self.kept = []

            def unwrap(self):
                if self.wrapped is None:
                    self.wrapped = Wrapped()
                return self.wrapped

        CACHE = Cache(max_size=1024)
        CACHE._local.data.extend(Entry(key, Lazy()) for key in range(500))
        UNWRAPPED = itertools.count()

        class Kept:
            pass

        def test_unwraps_more_cached_values():
            for _ in range(3):
                CACHE._local.data[next(UNWRAPPED)].value.unwrap()

        def test_leaks_into_a_cached_value():
            CACHE._local.data[499].value.kept.append(Kept())
        """
    )
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-json=out.json", "-p", "no:randomly")
    tests = records_by_name(tester)
    bounded = tests["test_unwraps_more_cached_values"]
    assert bounded["verdict"] == "clean", bounded
    assert bounded["reruns"] >= 2, bounded
    assert bounded["set_aside"]["types"] == {"test_lazy.Wrapped": 3}, bounded
    leaking = tests["test_leaks_into_a_cached_value"]
    assert [(leak["type"], leak["count"]) for leak in leaking["leaked"]] == [("test_lazy.Kept", 1)], leaking
    assert leaking["leaked"][0]["why_alive"].startswith("module test_lazy -> CACHE (test_lazy.Cache) -> "), leaking
    result.assert_outcomes(passed=2, errors=1)


def test_tens_of_thousands_of_objects_replaced_or_beside_a_rebound_set_are_cancelled_out(
    tester: pytest.Pytester,
) -> None:
    """A first run that keeps tens of thousands of objects gets ordinary reruns, which cancel a
    replacement out: pyparsing's setUp installs a new packrat cache (a cycle: it holds methods
    bound to itself) that its tests fill with 11,000-74,000 objects; a cattrs Hypothesis test
    fills Hypothesis's bounded strategy cache with 10,600 while Hypothesis rebinds a set per
    run.  One fresh rerun saw neither replacement (the old cycle stays frozen garbage; the
    rebound set's death was taken for the runner's).  A leak of the same size is reported."""
    tester.makepyfile(
        test_mid="""
        import itertools

        FRESH = itertools.count()
        HOLDER = {}
        KEEP = []

        class Cache:
            def __init__(self):
                self.data = {}
                self.me = self  # a cycle: only the cyclic gc frees the replaced one

        class Bounded:
            def __init__(self, maxsize):
                self.maxsize = maxsize
                self.data = {}

            def __len__(self):
                return len(self.data)

        BOUNDED = Bounded(maxsize=100_000)

        class Limiter:
            known = {0}

        LIMITER = Limiter()

        def test_fills_a_replaced_cyclic_cache():
            HOLDER["cache"] = cache = Cache()
            for i in range(30_000):
                cache.data[i] = [i]

        def test_fills_a_bounded_cache_and_rebinds_a_set():
            for _ in range(6_000):
                BOUNDED.data[next(FRESH)] = ([],)
            LIMITER.known = {1000}

        def test_leaks_as_much():
            KEEP.append([[i] for i in range(30_000)])
        """
    )
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-json=out.json", "-p", "no:randomly")
    tests = records_by_name(tester)
    replaced = tests["test_fills_a_replaced_cyclic_cache"]
    assert replaced["verdict"] == "clean", replaced
    assert replaced["reruns"] >= 1, replaced
    bounded = tests["test_fills_a_bounded_cache_and_rebinds_a_set"]
    assert bounded["verdict"] == "clean", bounded
    assert bounded["reruns"] >= 2, bounded
    assert bounded["set_aside"]["types"] == {"tuple": 6000, "list": 6000}, bounded
    leaking = tests["test_leaks_as_much"]
    assert {leak["type"]: leak["count"] for leak in leaking["leaked"]} == {"list": 30_001}, leaking
    result.assert_outcomes(passed=3, errors=1)


def test_objects_a_fixture_remakes_at_freed_addresses_are_not_taken_for_a_leak(tester: pytest.Pytester) -> None:
    """aiohttp's ``aiohttp_client`` defines ``typing.overload``ed functions per call; each
    run's functions replace the run before's in typing's overload registry, and their
    annotations and defaults tuples are often made at the addresses the old ones freed.
    Told apart by id only, they looked as if they had stayed beside a bounded cache's new
    tuple, and the cache's growth was reported as a tuple leak in every test.  A tuple leak
    beside the same fixture is still reported."""
    tester.makepyfile(
        test_remade="""
        import functools
        from typing import overload

        import pytest

        KEPT = []

        class Entry:
            def __init__(self, key):
                self.key = key

        class Key:
            pass

        @functools.lru_cache(maxsize=8)
        def make(key):
            return Entry(key)

        @pytest.fixture
        def client():
            @overload
            def go(x: int) -> tuple[Key, Entry]: ...
            @overload
            def go(x: str) -> tuple[Entry, Key]: ...
            def go(x):
                return x

            @overload
            def other(x: int, y: tuple[int, Key] = (1, Key)) -> int: ...
            @overload
            def other(x: str, y: tuple[int, Key] = (1, Key)) -> str: ...
            def other(x, y=(1, Key)):
                return x

            return go, other

        @pytest.mark.parametrize("i", range(24))
        def test_feeds_a_bounded_cache(client, i):
            make(Key())

        def test_leaks_a_tuple(client):
            KEPT.append((Key(),))
        """
    )
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-json=out.json", "-p", "no:randomly")
    document = json.loads((tester.path / "out.json").read_text())
    records = {record["nodeid"].partition("::")[2]: record for record in document["tests"]}
    leaking = records.pop("test_leaks_a_tuple")
    assert sorted((leak["type"], leak["count"]) for leak in leaking["leaked"]) == [("test_remade.Key", 1), ("tuple", 1)]
    assert len(records) == 24
    for name, record in records.items():
        assert record["verdict"] == "clean", (name, record)
        assert record["suspicion"]["cause"] == "bounded cache", (name, record)
        assert record["reruns"] >= 2, (name, record)
    result.assert_outcomes(passed=25, errors=1)


def test_a_wrapper_a_fixture_leaves_patched_until_the_next_test_is_not_a_leak(tester: pytest.Pytester) -> None:
    """aiohttp's ``blockbuster`` fixture patches builtins' types with wrappers (forbiddenfruit)
    and leaves the last one in the type's dict until the next test's setup replaces it; the
    wrapper's closure holds a list of tuples, made again at the addresses the old ones
    freed.  Beside three bounded caches (one of tuples, two of URLs), every test was reported
    for ``tuple`` and often ``URL``.  A tuple leak beside the same fixture is still reported."""
    tester.makepyfile(
        test_patched="""
        import functools
        import itertools

        import pytest

        PORTS = itertools.count(1000)
        PATCHED = {}  # older than the tests, like a builtin type's dict
        KEPT = []

        class URL:
            def __init__(self, text):
                self.text = text

        class Key:
            pass

        @functools.lru_cache(maxsize=56)
        def parse(key):
            return (key, "value")

        @functools.lru_cache(maxsize=128)
        def from_parts(port):
            return URL(f"http://127.0.0.1:{port}/")

        @functools.lru_cache(maxsize=128)
        def encode(text):
            return URL(text)

        def wrap(func, allowed):
            rules = [(name, {"load"}) for name in allowed]

            def wrapper(*args):
                assert rules
                return func(*args)

            return wrapper

        @pytest.fixture
        def blocking_guard():
            PATCHED.clear()
            PATCHED["read"] = wrap(len, ["cookiejar.py", "helpers.py"])
            yield

        @pytest.mark.parametrize("i", range(20))
        def test_request(blocking_guard, i):
            parse((Key(),))
            from_parts(next(PORTS))
            encode(f"/path/{i}")

        def test_leaks_a_tuple(blocking_guard):
            KEPT.append((Key(), "kept"))
        """
    )
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-json=out.json", "-p", "no:randomly")
    records = records_by_name(tester)
    leaking = records.pop("test_leaks_a_tuple")
    leaked = sorted((leak["type"], leak["count"]) for leak in leaking["leaked"])
    assert leaked == [("test_patched.Key", 1), ("tuple", 1)], leaking
    assert len(records) == 20
    for name, record in records.items():
        assert (record["verdict"], record["suspicion"]["cause"]) == ("clean", "bounded cache"), (name, record)
    result.assert_outcomes(passed=21, errors=1)


def test_what_a_thread_the_test_left_running_holds_is_not_judged_a_leak(tester: pytest.Pytester) -> None:
    """A server thread the test starts and never stops (anyio's ``test_receive_timeout``)
    holds the test's objects in its running frames, and its ``Thread`` is in
    ``threading._active``: work in flight, not a leak.  The test is not judged, with a
    warning to join the thread; a leak beside such threads is still reported, and with
    ``filterwarnings = error`` the warning is kept in the record's notes."""
    tester.makeini(
        """
        [pytest]
        addopts = -p no:cacheprovider -p no:randomly
        filterwarnings = error
        """
    )
    tester.makepyfile(
        test_threads="""
        import threading

        KEPT = []

        def serve(state, stop):
            stop.wait()  # until the process ends

        def test_leaves_a_server_running():
            state = {"requests": [object()]}
            threading.Thread(target=serve, args=(state, threading.Event()), name="server", daemon=True).start()

        def test_leaks_while_servers_run():
            KEPT.append([1])

        def test_leaks_and_leaves_a_server_running():
            KEPT.append({"ids": [len(KEPT)]})  # tracked: it holds a list
            threading.Thread(target=serve, args=({"port": 0}, threading.Event()), daemon=True).start()
        """
    )
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-json=gcguard.json")
    result.assert_outcomes(passed=3, errors=2)
    records = {
        r["nodeid"].partition("::")[2]: r for r in json.loads((tester.path / "gcguard.json").read_text())["tests"]
    }
    server = records["test_leaves_a_server_running"]
    assert server["verdict"] == "skipped", server
    held = r"held by thread\(s\) server( x\d)?, which the test started and left running"
    assert re.search(held, server["reason"]), server
    assert any("join them before the test ends" in note for note in server["notes"]), server
    for name in ("test_leaks_while_servers_run", "test_leaks_and_leaves_a_server_running"):
        assert records[name]["verdict"] == "leaked", records[name]
    leaked = {leak["type"] for leak in records["test_leaks_and_leaves_a_server_running"]["leaked"]}
    assert "dict" in leaked, records["test_leaks_and_leaves_a_server_running"]
