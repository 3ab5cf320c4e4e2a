"""What gcguard reports: leaked objects, uncollectable garbage, reference cycles."""

from __future__ import annotations

import json
import sys

import pytest

LEAKY_MODULE = """
import pytest

_REGISTRY = []

class Widget:
    def __init__(self, name):
        self.name = name

def test_clean():
    assert sum([1, 2, 3]) == 6

def test_leaks():
    _REGISTRY.append(Widget("w"))
"""


def test_leak_fails_the_test_with_types_counts_and_chain(tester: pytest.Pytester) -> None:
    tester.makepyfile(test_mod=LEAKY_MODULE)
    result = tester.runpytest_subprocess("--gcguard")
    result.assert_outcomes(passed=2, errors=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_leaks*",
            "gcguard: test_mod.py::test_leaks: 1 leaked object(s)",
            "*the same growth repeated in 2 rerun(s) of the test*",
            "    test_mod.Widget x1  (reruns: +1, +1)",
            "        <test_mod.Widget object at 0x*>",
            "        why alive: module test_mod -> _REGISTRY (list) -> [[]*[]] test_mod.Widget",
            "*= gcguard summary =*",
            "1 leaking test(s):",
            "  test  * type  * count",
            "  test_mod.py::test_leaks  test_mod.Widget      1",
        ]
    )
    result.stdout.no_fnmatch_line("*ERROR at teardown of test_clean*")


def test_leak_in_function_fixture_and_xunit_setup_is_the_tests(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        """
        import pytest
        KEEP = []
        class Blob: pass

        @pytest.fixture
        def leaky():
            KEEP.append(Blob())
            yield
            KEEP.append(Blob())

        def test_fixture(leaky):
            pass

        class TestX:
            def setup_method(self):
                KEEP.append(Blob())
            def test_method(self):
                pass
        """
    )
    result = tester.runpytest_subprocess("--gcguard")
    result.assert_outcomes(passed=2, errors=2)
    result.stdout.fnmatch_lines(["*test_fixture: 2 leaked object(s)*", "*Blob x2*", "*test_method: 1 leaked*"])


def test_uncollectable_objects_are_reported(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        """
        import gc
        import _testcapi

        @_testcapi.with_tp_del
        class Legacy:
            def __tp_del__(self):
                pass

        def test_legacy_cycle():
            a = Legacy()
            a.self = a

        def test_after():
            pass
        """
    )
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-reruns=0")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        ["*test_legacy_cycle: *uncollectable object(s) in gc.garbage*", "  uncollectable (new entries in gc.garbage):"]
    )
    result.stdout.no_fnmatch_line("*ERROR at teardown of test_after*")


def test_leaving_saveall_set_is_reported_and_restored(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        """
        import gc

        def test_sets_saveall():
            gc.set_debug(gc.DEBUG_SAVEALL)
            a = []
            a.append(a)

        def test_next_is_clean():
            assert gc.get_debug() == 0
        """
    )
    result = tester.runpytest_subprocess("--gcguard")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*test_sets_saveall: 1 uncollectable object(s) in gc.garbage*",
            "*note: the test changed gc debug flags to gc.DEBUG_SAVEALL; gcguard restored them*",
        ]
    )


CYCLES = """
class Node:
    def __init__(self):
        self.other = None

def test_garbage_cycles():
    for _ in range(100):
        a, b = Node(), Node()
        a.other, b.other = b, a

def test_no_cycles():
    x = [Node() for _ in range(10)]
"""


def test_cycles_are_not_reported_by_default(tester: pytest.Pytester) -> None:
    tester.makepyfile(CYCLES)
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-json=out.json")
    result.assert_outcomes(passed=2)
    records = json.loads((tester.path / "out.json").read_text())["tests"]
    assert [r["verdict"] for r in records] == ["clean", "clean"]


@pytest.mark.parametrize(
    ("args", "ini"),
    [(["--gcguard", "--gcguard-cycles"], ""), (["--gcguard"], "gcguard_cycles = true")],
    ids=["cli", "ini"],
)
def test_cycles_mode_reports_cyclic_garbage(tester: pytest.Pytester, args: list[str], ini: str) -> None:
    tester.makeini(f"[pytest]\naddopts = -p no:cacheprovider\n{ini}\n")
    tester.makepyfile(CYCLES)
    result = tester.runpytest_subprocess(*args)
    result.assert_outcomes(passed=2, errors=1)
    nodes = 400 if sys.version_info < (3, 11) else 200  # 3.10 counts each instance's __dict__
    result.stdout.fnmatch_lines(
        [
            f"*test_garbage_cycles: {nodes} object(s) in reference cycles*",
            "*test_*.Node x200*",
        ]
    )


def test_cycles_marker_turns_on_strict_mode_for_one_test(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        """
        import pytest

        @pytest.mark.gcguard(cycles=True)
        def test_strict():
            a = []
            a.append(a)

        def test_lenient():
            a = []
            a.append(a)
        """
    )
    result = tester.runpytest_subprocess("--gcguard")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_strict*", "*1 object(s) in reference cycles*"])


def test_one_time_cycles_are_not_reported(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        """
        _done = []

        def test_cycle_once():
            if not _done:
                a = []
                a.append(a)
                _done.append(True)
        """
    )
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-cycles", "--gcguard-json=out.json")
    result.assert_outcomes(passed=1)
    (record,) = json.loads((tester.path / "out.json").read_text())["tests"]
    assert record["verdict"] == "clean"
    assert record["notes"] == ["1 object(s) in reference cycles on the first run only (a one-time effect)"]


BOUNDED_CACHE = """
_CACHE = {}

class Entry:
    pass

def test_fills_a_bounded_cache():
    # one entry on the first run, none after: not a leak
    _CACHE.setdefault("key", Entry())
"""


def test_growth_must_repeat_to_be_reported(tester: pytest.Pytester) -> None:
    tester.makepyfile(BOUNDED_CACHE)
    result = tester.runpytest_subprocess("--gcguard", "-v")
    result.assert_outcomes(passed=1)
    # The first rerun shows no growth: that ends the confirmation.
    result.stdout.fnmatch_lines(["*gcguard: checked 1 test(s); 1 suspected and rerun (1 rerun(s) in *s); 0 leaking*"])


def test_reruns_zero_trusts_a_single_run(tester: pytest.Pytester) -> None:
    tester.makepyfile(BOUNDED_CACHE)
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-reruns=0")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*not rerun*", "*Entry x1*"])


def test_leak_that_fails_on_rerun_is_not_reported(tester: pytest.Pytester) -> None:
    """Not reported, and the failed rerun leaves nothing behind: pytest's ``sys.last_*``
    (whose traceback kept a failed Hypothesis rerun's engine, a million objects, alive into
    the next freeze of the heap in cattrs' suite) are as before it, and the rerun's time is
    counted."""
    tester.makeconftest(
        """
        import sys

        LEFT = []

        def pytest_runtest_logreport(report):
            if report.when == "teardown":  # after gcguard's reruns
                LEFT.append([name for name in ("last_type", "last_value", "last_traceback") if hasattr(sys, name)])
        """
    )
    tester.makepyfile(
        """
        import time
        from conftest import LEFT

        KEEP = []

        def test_only_once():
            if KEEP:
                time.sleep(0.01)
            assert not KEEP
            KEEP.append([1])

        def test_no_failure_left_behind():
            assert LEFT == [[]]
        """
    )
    result = tester.runpytest_subprocess("--gcguard", "-rA", "--gcguard-json=out.json", "-p", "no:randomly")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*suspected leak not confirmed: rerun 1 failed in call*",
            "gcguard: checked 1 test(s); 1 suspected and rerun (1 rerun(s) in *s); 0 leaking; 1 not judged*",
        ]
    )
    records = {r["nodeid"].rpartition("::")[2]: r for r in json.loads((tester.path / "out.json").read_text())["tests"]}
    once = records["test_only_once"]
    assert once["verdict"] == "skipped", once
    assert once["reruns"] == 1, once
    assert once["seconds"]["reruns"] >= 0.01, once
    assert records["test_no_failure_left_behind"]["verdict"] == "clean"


@pytest.mark.parametrize(
    "body",
    [
        "KEEP.append(Widget())",
        "KEEP.append((lambda w: lambda: w)(Widget()))",
        "KEEP.append(Widget().method)",
        "Holder.items = Holder.items + [Widget()]",
        "KEEP_DICT[len(KEEP_DICT)] = Widget()",
        "KEEP.append(lambda x=Widget(): x)",
    ],
    ids=["list", "closure-cell", "bound-method", "class-attribute", "dict-value", "default-argument"],
)
def test_leaks_through_every_kind_of_reference(tester: pytest.Pytester, body: str) -> None:
    tester.makepyfile(
        f"""
        KEEP = []
        KEEP_DICT = {{}}

        class Widget:
            def method(self):
                pass

        class Holder:
            items = []

        def test_leak():
            {body}
        """
    )
    result = tester.runpytest_subprocess("--gcguard")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*test_leak: *leaked object(s)*", "*Widget x1*", "*why alive: * -> *"])


def test_leak_in_a_doctest_is_confirmed_by_reruns(tester: pytest.Pytester) -> None:
    # A doctest run clears its globals; reruns must see them again to confirm.
    tester.makepyfile(
        registry='''
        CACHE = []

        def remember(x):
            """
            >>> remember({"k": [1]})
            1
            """
            CACHE.append(x)
            return 1
        '''
    )
    result = tester.runpytest_subprocess("--gcguard", "--doctest-modules", "--gcguard-json=out.json")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*the same growth repeated in 2 rerun(s)*", "    dict x1  (reruns: +1, +1)"])


def test_growth_that_frees_nothing_older_is_still_a_leak(tester: pytest.Pytester) -> None:
    # Each run replaces a global, but the old value stays reachable from the new
    # one: nothing older than the test is freed, so this is a leak, not a cache.
    tester.makepyfile(
        """
        class Node:
            def __init__(self, nxt):
                self.next = nxt

        HEAD = None

        def test_push():
            global HEAD
            HEAD = Node(HEAD)
        """
    )
    result = tester.runpytest_subprocess("--gcguard")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*gcguard: test_*::test_push: * leaked object(s)*", "*Node x1*"])


def test_gcguards_own_bookkeeping_never_counts_as_growth(tester: pytest.Pytester) -> None:
    # Each run leaks exactly one frozenset: every rerun must show +1, never more
    # (gcguard keys its own per-leak bookkeeping by type names).
    tester.makepyfile(
        """
        KEEP = []

        def test_frozensets():
            KEEP.append(frozenset({len(KEEP), "x"}))
        """
    )
    result = tester.runpytest_subprocess("--gcguard")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["    frozenset x1  (reruns: +1, +1)"])


UNEVEN = """
import itertools

class Entry:
    pass

REFILLED = []
SIZES = iter([5, 10, 20, 3, 30, 1])   # what a cache refilled at random keeps
KEEP = []
MORE = itertools.count(1)

def test_refilled_at_random():
    REFILLED[:] = [Entry() for _ in range(next(SIZES))]

def test_leaks_more_each_run():
    KEEP.extend(Entry() for _ in range(next(MORE)))
"""


def test_uneven_growth_needs_two_more_reruns_to_count(tester: pytest.Pytester) -> None:
    tester.makepyfile(UNEVEN)
    result = tester.runpytest_subprocess("--gcguard")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*gcguard: test_uneven_growth_needs_two_more_reruns_to_count.py::test_leaks_more_each_run:*",
            "*the same growth repeated in 4 rerun(s) of the test*",
            "    test_uneven_growth_needs_two_more_reruns_to_count.Entry x2  (reruns: +2, +3, +4, +5)",
        ]
    )
    result.stdout.no_fnmatch_line("*::test_refilled_at_random:*")


LARGE = """
import functools

KEEP = []
TABLE = {}
CURRENT = [None]

class Row:
    def __init__(self, i):
        self.i = i

def test_large_leak():
    KEEP.extend(Row(i) for i in range(120_000))

def test_large_first_use_table():
    if not TABLE:
        TABLE.update((i, Row(i)) for i in range(120_000))

@functools.lru_cache(maxsize=None)
def load():
    return [Row(i) for i in range(120_000)]

def test_large_cached_load():
    assert len(load()) == 120_000

def test_large_replaced_global():
    CURRENT[0] = [Row(i) for i in range(120_000)]

def test_large_garbage():
    rows = [Row(i) for i in range(120_000)]
    rows.append(rows)

class Limiter:
    known = {0}

LIMITER = Limiter()
TABLE2 = {}

def test_large_first_use_and_a_replaced_attribute():
    # Hypothesis's StackframeLimiter: a set replaced, never added to.
    if not TABLE2:
        TABLE2.update((i, Row(i)) for i in range(120_000))
    LIMITER.known = {len(TABLE2)}

class Key:
    pass

@functools.lru_cache(maxsize=64)
def entry(key):
    return [key]

class Cache:
    def __init__(self):
        self.data = {}
        self.me = self  # a cycle: the replaced one is frozen garbage in the one rerun

CACHES = {}

def test_large_replaced_cycle():
    # pyparsing's packrat cache, replaced by every test's setUp, at scale.
    CACHES["packrat"] = cache = Cache()
    for i in range(120_000):
        cache.data[i] = [i]

def test_large_replaced_beside_a_full_cache():
    # Hypothesis's engine, in miniature: each run replaces its big structures,
    # refills a bounded cache and swaps a set; nothing accumulates.
    CURRENT[0] = [Row(i) for i in range(120_000)]
    for _ in range(64):
        entry(Key())
    LIMITER.known = {len(CURRENT[0])}
"""


def test_a_large_growth_is_judged_by_one_rerun(tester: pytest.Pytester) -> None:
    # 120,000 objects kept by the first run: one rerun decides (a second would
    # keep another copy alive), with the same verdicts as for small growth.
    tester.makepyfile(test_large=LARGE)
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-json=out.json", "-p", "no:randomly")
    result.assert_outcomes(passed=8, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*the same growth repeated in 1 rerun(s) of the test*",
            "    test_large.Row x120000  (reruns: +120000)",
            "        why alive: module test_large -> KEEP (list) -> [[]*[]] test_large.Row",
        ]
    )
    records = {r["nodeid"].rpartition("::")[2]: r for r in json.loads((tester.path / "out.json").read_text())["tests"]}
    assert records["test_large_leak"]["verdict"] == "leaked"
    assert records["test_large_leak"]["reruns"] == 1
    for name in (
        "test_large_first_use_table",
        "test_large_cached_load",
        "test_large_garbage",
        "test_large_first_use_and_a_replaced_attribute",
        "test_large_replaced_beside_a_full_cache",
    ):
        assert records[name]["verdict"] == "clean", records[name]
        # One rerun, or more when the first also replaced older objects (a fresh one then ordinary ones).
        assert records[name]["reruns"] in (0, 1, 2, 3), records[name]
    # The one rerun replaced a cycle of 120,000 objects: seen as frozen garbage, then
    # a fresh rerun and ordinary ones cancel the replacement out.
    cycle = records["test_large_replaced_cycle"]
    assert cycle["verdict"] == "clean", cycle
    assert cycle["reruns"] == 3, cycle
    # Each run frees the previous run's 120,000 rows as it keeps its own.
    replaced = records["test_large_replaced_global"]
    assert replaced["verdict"] == "clean", replaced
    assert replaced["outcome"] == "passed"


def test_leak_in_the_last_test_using_a_session_fixture(tester: pytest.Pytester) -> None:
    """The last test tears the session fixture down and its reruns set it up again (what that
    makes is listed as the runner's): the earlier runs' survivors still count as growth."""
    tester.makeconftest(
        """
        import pytest

        @pytest.fixture(scope="session")
        def resource():
            return {"opened": [1, 2, 3]}
        """
    )
    tester.makepyfile(
        """
        KEEP = []

        class Widget:
            pass

        def test_first(resource):
            assert resource

        def test_last(resource):
            KEEP.append(Widget())
        """
    )
    result = tester.runpytest_subprocess("--gcguard", "-p", "no:randomly")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*test_last: 1 leaked object(s)*", "*Widget x1  (reruns: +1, +1)*"])


def test_a_thread_ending_during_the_measured_rerun_does_not_hide_a_leak(tester: pytest.Pytester) -> None:
    """A thread that ends frees its older objects (frame, state): not a bounded cache's replacements."""
    tester.makepyfile(
        """
        import threading

        KEEP = []
        RUNS = []
        STOP = threading.Event()

        class Widget:
            pass

        def idle(depth):
            # A thread with some state of its own, all of it frozen with the heap.
            state = [[n] for n in range(200)]
            STOP.wait()
            return state

        THREAD = threading.Thread(target=idle, args=(1,), daemon=True)

        def test_starts_a_thread():
            THREAD.start()

        def test_leaks_while_the_thread_ends():
            RUNS.append(1)
            KEEP.append(Widget())
            if len(RUNS) == 3:  # the second rerun, which measures what older objects die
                STOP.set()
                THREAD.join()
        """
    )
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-json=out.json", "-p", "no:randomly")
    result.assert_outcomes(passed=2, errors=1)
    records = {r["nodeid"].rpartition("::")[2]: r for r in json.loads((tester.path / "out.json").read_text())["tests"]}
    leak = records["test_leaks_while_the_thread_ends"]
    assert leak["verdict"] == "leaked"
    assert leak["reruns"] == 3  # the disturbed measurement was taken again
    [widget] = leak["leaked"]
    assert (widget["type"].rpartition(".")[2], widget["count"]) == ("Widget", 1)


def test_a_leak_into_a_module_the_test_first_imports_is_reported(tester: pytest.Pytester) -> None:
    """What a test's first import makes is the module's, but a leak into something of that
    module's is the test's: trio's suite, where pylint's unbounded method cache keeps every
    ``PyLinter``, had the first test that made one pass and the next six reported.  A test
    whose first import is clean is rerun once and judged clean."""
    tester.makepyfile(
        lazy_linter="""
        import functools

        class Linter:
            @functools.cache
            def messages(self):  # an unbounded method cache: keeps every Linter
                return [self]
        """,
        lazy_clean="""
        TABLE = {n: [n] for n in range(50)}

        def look_up(n):
            return TABLE[n]
        """,
        test_imports="""
        def test_first_import_and_leak():
            import lazy_linter
            lazy_linter.Linter().messages()

        def test_later_leak():
            import lazy_linter
            lazy_linter.Linter().messages()

        def test_first_import_clean():
            import lazy_clean
            assert lazy_clean.look_up(3) == [3]
        """,
    )
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-json=out.json", "-p", "no:randomly")
    records = {r["nodeid"].rpartition("::")[2]: r for r in json.loads((tester.path / "out.json").read_text())["tests"]}
    for name in ("test_first_import_and_leak", "test_later_leak"):
        leaked = {leak["type"]: leak["count"] for leak in records[name]["leaked"]}
        assert records[name]["verdict"] == "leaked", records[name]
        assert leaked["lazy_linter.Linter"] == 1, records[name]
    clean = records["test_first_import_clean"]
    assert (clean["verdict"], clean["reruns"], clean["suspicion"]["cause"]) == ("clean", 1, "first use"), clean
    result.assert_outcomes(passed=3, errors=2)
