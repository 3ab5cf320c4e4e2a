"""Block checks: ``assert_no_leaks``, ``check()`` and the ``gcguard`` fixture, in and out of pytest."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest

#: Callables and blocks shared by the inner suites and scripts below.
SUBJECTS = """
import collections, functools, gc, itertools, threading, time

KEEP = []
CALLS = []
FRESH = itertools.count()

class Widget:
    pass

class Holder:
    pass

KEEP_HOLDER = Holder()

def leaky():
    CALLS.append(1)
    KEEP.append(Widget())
    return "result"

@functools.lru_cache(maxsize=None)
def table():
    return [[i] for i in range(100)]

def fills_a_cache_once():
    CALLS.append(1)
    return len(table())

def clean():
    CALLS.append(1)
    return [Widget() for _ in range(10)]

@functools.lru_cache(maxsize=16)
def parse(key):
    return [Widget()]

def feeds_a_bounded_cache():
    CALLS.append(1)
    parse(next(FRESH))

def feeds_a_bounded_cache_and_rebinds():
    # The Widget made in place of the last call's dies on the next call.
    CALLS.append(1)
    parse(next(FRESH))
    KEEP_HOLDER.latest = Widget()

REMADE = {}

def feeds_a_bounded_cache_and_remakes():
    # Each call's function (and its defaults tuple, often made where the last one's was
    # freed) replaces the last call's: only the cache's new tuple key stays.
    CALLS.append(1)
    REMADE.clear()  # the last call's function goes first: this call's may take its memory
    spare = tuple(range(7))  # takes one of the freed addresses: a new tuple is made elsewhere
    parse((Widget(),))
    def per_call(x=(1, Widget, 2, 3, 4, 5, 6), y=(Widget, 2, 3, 4, 5, 6, 7, 8, 9)):
        return x, y
    REMADE["latest"] = per_call

def feeds_a_bounded_cache_and_keeps():
    parse(next(FRESH))
    KEEP.append(Widget())

def feeds_a_bounded_cache_and_keeps_deques():
    # The deque is the call's growth, not a cache of its widgets, even when ignored.
    parse(next(FRESH))
    KEEP.append(collections.deque([Widget(), Widget()], maxlen=10))

def makes_a_cycle():
    node = {}
    node["self"] = node

def leaks_a_lot():
    KEEP.append([Widget() for _ in range(120_000)])

# 3.12 starts with the static types' tuples frozen (immortal; a check's unfreeze lets them go).
STARTUP_FROZEN = gc.get_freeze_count()

def gc_state():
    # The frozen count only outside a --gcguard session (which keeps the heap frozen).
    frozen = max(0, gc.get_freeze_count() - STARTUP_FROZEN)
    return gc.isenabled(), gc.get_debug(), gc.get_threshold(), frozen if frozen < 1000 else "session", len(gc.garbage)
"""

INNER = (
    SUBJECTS
    + """
import pytest
from pytest_gcguard import LeakError, assert_no_leaks, check

@pytest.fixture(autouse=True)
def fresh_calls():
    CALLS.clear()
    before = gc_state()
    yield
    assert gc_state() == before  # every check gives the gc state back

def test_leak_caught_with_its_chain():
    with pytest.raises(LeakError) as info:
        assert_no_leaks(leaky)
    assert len(CALLS) == 3
    assert info.value.leaked == {"test_inner.Widget": 1}
    message = str(info.value)
    assert "gcguard: assert_no_leaks(leaky): 1 leaked object(s)" in message
    assert "test_inner.Widget x1  (calls: +1, +1)" in message
    assert "why alive: module test_inner -> KEEP (list) -> [" in message

def test_clean_call_is_called_once():
    assert_no_leaks(CALLS.append, 1)
    assert len(CALLS) == 1

def test_clean_call_returning_new_objects_is_called_twice():
    # What a call returns may be kept elsewhere too: the next call must show it is not.
    assert len(assert_no_leaks(clean)) == 10
    assert len(CALLS) == 2

def test_a_registry_that_keeps_what_it_returns_leaks():
    def register():
        widget = Widget()
        KEEP.append(widget)
        return widget
    with pytest.raises(LeakError, match="test_inner.Widget x1"):
        assert_no_leaks(register)

def test_a_callable_object_that_keeps_what_it_makes_leaks():
    class Lazy:
        def __call__(self):
            if not hasattr(self, "made"):
                self.made = []
            self.made.append(Widget())
    with pytest.raises(LeakError, match="test_inner.Widget x1"):
        assert_no_leaks(Lazy())

def test_check_reports_what_an_old_object_keeps_but_not_a_local_container():
    holder = KEEP_HOLDER
    results = []
    with pytest.raises(LeakError) as info:
        with check():
            holder.conn = Widget()           # outlives the function: reported
            results.append([Widget()])       # a local list's entry: in flight
    # (3.10: the holder's __dict__, untracked while it held only atomic values, is tracked now.)
    assert info.value.leaked.pop("test_inner.Widget") == 1
    assert info.value.leaked in ({}, {"dict": 1})
    assert "conn (test_inner.Widget)" in str(info.value)

def test_overlapping_checks_in_threads_are_refused():
    started, release = threading.Event(), threading.Event()
    errors = []
    def inner():
        try:
            with check():
                started.set()
                release.wait(5)
        except Exception as exc:
            errors.append(exc)
    with pytest.raises(RuntimeError, match="gcguard block checks overlapped"):
        with check():
            thread = threading.Thread(target=inner)
            thread.start()
            started.wait(5)
    release.set()
    thread.join()
    # The inner check, alone at the end, judged its block (what the other thread
    # made meanwhile may be counted in it: the message said why).
    assert all(isinstance(error, LeakError) for error in errors)

def test_an_application_freeze_is_left_as_it_was():
    from pytest_gcguard._heap import frozen_by_a_session
    if frozen_by_a_session():
        pytest.skip("the --gcguard session keeps the heap frozen itself")
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with pytest.raises(LeakError) as info:
            assert_no_leaks(leaky)
        assert gc.get_freeze_count() == frozen
        assert "objects were frozen (gc.freeze) before the check" in str(info.value)
    finally:
        gc.unfreeze()

def test_leak_error_pickles_and_arguments_are_read_once():
    import pickle
    error = pickle.loads(pickle.dumps(LeakError("report", {"Widget": 1}, {}, 2)))
    assert (str(error), error.leaked, error.cycles) == ("report", {"Widget": 1}, 2)
    assert_no_leaks(leaky, allow=iter(["Widget=1"]))
    with pytest.raises(TypeError, match="ignore must be"):
        assert_no_leaks(leaky, ignore={"Widget": 1})

def test_cache_filled_once_is_not_a_leak():
    assert assert_no_leaks(fills_a_cache_once) == 100
    assert len(CALLS) == 2  # suspected after the first call, cleared by the second

def test_growth_held_by_a_declared_bound_is_not_a_leak():
    assert assert_no_leaks(feeds_a_bounded_cache) is None
    assert len(CALLS) == 3  # the growth repeated; lru_cache(maxsize=16) holds it

def test_what_each_call_rebinds_beside_a_bounded_cache_is_not_a_leak():
    assert assert_no_leaks(feeds_a_bounded_cache_and_rebinds) is None
    assert len(CALLS) == 3

def test_what_each_call_remakes_at_freed_addresses_beside_a_bounded_cache_is_not_a_leak():
    for _ in range(5):
        assert assert_no_leaks(feeds_a_bounded_cache_and_remakes) is None

def test_a_leak_beside_a_bounded_cache_is_found():
    # The type is reported whole (the cache's Widget with the kept one); the lists are the cache's.
    with pytest.raises(LeakError, match="test_inner.Widget x2") as caught:
        assert_no_leaks(feeds_a_bounded_cache_and_keeps)
    assert caught.value.leaked == {"test_inner.Widget": 2}

def test_a_bounded_container_each_call_keeps_is_not_a_cache_even_when_ignored():
    with pytest.raises(LeakError) as caught:
        assert_no_leaks(feeds_a_bounded_cache_and_keeps_deques, ignore="deque")
    assert caught.value.leaked == {"test_inner.Widget": 3}

def test_arguments_are_passed_and_the_last_result_returned():
    assert assert_no_leaks(sorted, [3, 1, 2], reverse=True) == [3, 2, 1]

def test_a_list_passed_in_is_where_the_leak_is_kept():
    store = []
    with pytest.raises(LeakError, match="test_inner.Widget x1"):
        assert_no_leaks(lambda box: box.append(Widget()), store)
    assert len(store) == 3

def test_large_leak_is_confirmed_by_one_fresh_call():
    with pytest.raises(LeakError) as info:
        assert_no_leaks(leaks_a_lot)
    assert info.value.leaked == {"test_inner.Widget": 120_000, "list": 1}

def test_repeated_cycles_fail_in_cycles_mode_only():
    assert_no_leaks(makes_a_cycle)
    with pytest.raises(LeakError, match="reference cycles") as info:
        assert_no_leaks(makes_a_cycle, cycles=True)
    assert info.value.cycles == 1

def test_ignore_and_allow():
    assert_no_leaks(leaky, ignore="test_inner.Widget")
    assert_no_leaks(leaky, allow={"Widget": 1})
    with pytest.raises(LeakError):
        assert_no_leaks(leaky, allow="Widget=0")

def test_exception_from_the_call_propagates():
    def boom():
        raise KeyError("boom")
    with pytest.raises(KeyError, match="boom"):
        assert_no_leaks(boom)

def test_check_catches_a_cycle_in_cycles_mode():
    with pytest.raises(LeakError) as info:
        with check(cycles=True):
            makes_a_cycle()
    assert info.value.cycles == 1
    assert "reference cycles (objects only the cyclic GC could free): 1" in str(info.value)
    assert "one cycle: dict -> ['self'] dict" in str(info.value)

def test_check_passes_a_clean_block():
    with check(cycles=True) as checked:
        data = [Widget() for _ in range(5)]  # held by a variable of this function: in flight
    assert (checked.judged, checked.leaked, checked.cycles) == (True, {}, 0)
    assert len(data) == 5

def test_check_reports_what_the_block_kept_and_why():
    with pytest.raises(LeakError) as info:
        with check():
            KEEP.append(Widget())
            local = [Widget()]
    assert info.value.leaked == {"test_inner.Widget": 1}
    message = str(info.value)
    assert "still alive after the block and a full collection; run once" in message
    assert "why alive: module test_inner -> KEEP (list) -> [" in message
    assert "one run of a block cannot tell a cache filled on first use from a leak" in message
    assert local

def test_check_lets_the_block_exception_through_unjudged():
    with pytest.raises(ZeroDivisionError):
        with check() as checked:
            KEEP.append(Widget())
            1 / 0
    assert not checked.judged

def test_nested_checks_see_their_own_blocks():
    with check() as outer:
        with check() as inner:
            made = [Widget()]
        assert len(assert_no_leaks(clean)) == 10
    assert outer.judged and inner.judged
    assert made

def test_a_leak_caught_inside_another_check_is_the_outer_one_too():
    with pytest.raises(LeakError) as outer:
        with check():
            with pytest.raises(LeakError) as inner:
                with check():
                    KEEP.append(Widget())
            assert inner.value.leaked == {"test_inner.Widget": 1}
            KEEP.append(Widget())
    assert outer.value.leaked == {"test_inner.Widget": 2}

def test_other_threads_allocating_meanwhile():
    stop = threading.Event()
    def churn():
        while not stop.is_set():
            scratch = []
            for n in range(50):
                scratch.append({"n": [n]})
            # Not stop.wait(): its lock and bound methods, in flight in the other
            # thread's Condition.wait, are more types to set aside.
            time.sleep(0.001)
    thread = threading.Thread(target=churn)
    thread.start()
    # What the other thread holds in its variables is in flight; what it is
    # building at the moment of a count (a dict on its value stack) cannot be
    # seen, so its types are ignored here (README: other threads).
    churned = ("dict", "list")
    try:
        for _ in range(5):
            assert len(assert_no_leaks(clean, ignore=churned)) == 10
            with check(ignore=churned) as checked:
                made = [Widget()]
            assert checked.judged and not checked.leaked
        with pytest.raises(LeakError, match="test_inner.Widget x1"):
            assert_no_leaks(leaky)
    finally:
        stop.set()
        thread.join()

def test_the_fixture(gcguard):
    with pytest.raises(gcguard.LeakError):
        gcguard.assert_no_leaks(leaky)
    assert len(gcguard.assert_no_leaks(clean)) == 10
    with gcguard.check() as checked:
        made = [Widget()]
    assert checked.judged and checked.label.startswith("check() at test_inner.py:")
"""
)


@pytest.mark.parametrize("gcguard_on", [False, True], ids=["plain", "with --gcguard"])
def test_block_checks_inside_pytest(tester: pytest.Pytester, gcguard_on: bool) -> None:
    tester.makepyfile(test_inner=INNER)
    args = ["-p", "no:randomly", "--gcguard-json=out.json"]
    if gcguard_on:
        args.append("--gcguard")
    result = tester.runpytest_subprocess(*args)
    if not gcguard_on:
        result.assert_outcomes(passed=29)
        return
    # The per-test check goes on around the block checks: tests that leak
    # (on purpose, here) are still found, clean ones judged clean.
    records = {r["nodeid"].rpartition("::")[2]: r for r in json.loads((tester.path / "out.json").read_text())["tests"]}
    verdicts = {name: (r["verdict"], r["reason"]) for name, r in records.items()}
    failing = [v for v in verdicts.values() if v[0] not in ("clean", "skipped")]
    result.assert_outcomes(passed=28, skipped=1, errors=len(failing))
    for name in (
        "test_clean_call_is_called_once",
        "test_arguments_are_passed_and_the_last_result_returned",
        "test_check_passes_a_clean_block",
        "test_nested_checks_see_their_own_blocks",
        "test_exception_from_the_call_propagates",
    ):
        assert verdicts[name] == ("clean", ""), name
    # A block check that diagnosed a leak froze the test's objects with the heap: not judged, and said so.
    diagnosed = verdicts["test_leak_caught_with_its_chain"]
    assert diagnosed[0] == "skipped"
    assert "a gcguard block check that diagnosed a leak (its diagnosis froze the heap)" in diagnosed[1]
    assert verdicts["test_ignore_and_allow"][0] == "skipped"  # its last call diagnosed a leak
    result.stdout.fnmatch_lines(["gcguard: checked * test(s); * leaking*"])


def test_fixture_leaves_the_per_test_check_undisturbed(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        test_inner=SUBJECTS
        + """
def test_clean_blocks(gcguard):
    gcguard.assert_no_leaks(clean)
    with gcguard.check():
        made = [Widget()]

def test_leaks_outside_the_blocks(gcguard):
    gcguard.assert_no_leaks(clean)
    KEEP.append(Widget())
    with gcguard.check(ignore="*"):
        KEEP.append(Widget())
"""
    )
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-json=out.json", "-p", "no:randomly")
    result.assert_outcomes(passed=2, errors=1)
    records = {r["nodeid"].rpartition("::")[2]: r for r in json.loads((tester.path / "out.json").read_text())["tests"]}
    assert records["test_clean_blocks"]["verdict"] == "clean"
    assert [(leak["type"], leak["count"]) for leak in records["test_leaks_outside_the_blocks"]["leaked"]] == [
        ("test_inner.Widget", 2)
    ]


SCRIPT = (
    SUBJECTS
    + """
import sys
from pytest_gcguard import LeakError, assert_no_leaks, check

state = gc_state()
try:
    assert_no_leaks(leaky)
except LeakError as error:
    print("caught:", error.leaked)
print("clean result:", len(assert_no_leaks(clean)), "calls:", len(CALLS) - 3)
print("no result:", assert_no_leaks(CALLS.append, 1), "calls:", len(CALLS) - 5)

def block():
    with check(cycles=True) as checked:
        made = [Widget()]
    return checked.judged, made

print("block judged:", block()[0])
try:
    with check(cycles=True):
        makes_a_cycle()
except LeakError as error:
    print("cycles:", error.cycles)
assert gc_state() == state, (gc_state(), state)
print("gc state restored")
"""
)


def test_plain_script_without_pytest(tester: pytest.Pytester) -> None:
    script = tester.makepyfile(leaky_script=SCRIPT)
    result = tester.run(sys.executable, str(script))
    assert result.ret == 0, result.stderr.str()
    result.stdout.fnmatch_lines(
        [
            "caught: {'__main__.Widget': 1}",
            "clean result: 10 calls: 2",
            "no result: None calls: 1",
            "block judged: True",
            "cycles: 1",
            "gc state restored",
        ]
    )


def test_unittest_case(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        subjects=SUBJECTS,
        test_cases=textwrap.dedent(
            """
            import unittest
            from pytest_gcguard import LeakError, assert_no_leaks, check
            from subjects import Widget, clean, leaky, makes_a_cycle

            class LeakTests(unittest.TestCase):
                def test_leaky(self):
                    with self.assertRaises(LeakError) as info:
                        assert_no_leaks(leaky)
                    self.assertIn("why alive: module subjects -> KEEP (list)", str(info.exception))

                def test_clean(self):
                    self.assertEqual(len(assert_no_leaks(clean)), 10)

                def test_block_cycle(self):
                    with self.assertRaises(AssertionError):
                        with check(cycles=True):
                            makes_a_cycle()

            if __name__ == "__main__":
                unittest.main()
            """
        ),
    )
    result = tester.run(sys.executable, "-m", "unittest", "-v", "test_cases")
    assert result.ret == 0, result.stderr.str()
    result.stderr.fnmatch_lines(["Ran 3 tests in *", "OK"])


@pytest.mark.parametrize(
    ("call", "error"),
    [
        ("assert_no_leaks(42)", "TypeError: assert_no_leaks() needs a callable, got 42"),
        ("assert_no_leaks(len, [], repeat=0)", "ValueError: repeat must be 1 or more, got 0"),
        ("assert_no_leaks(len, [], repeat=2.5)", "TypeError: repeat must be a whole number, got 2.5"),
        ("assert_no_leaks(len, [], repeat=True)", "TypeError: repeat must be a whole number, got True"),
        ("assert_no_leaks(len, [], cycles='yes')", "TypeError: cycles must be True or False, got 'yes'"),
        ("assert_no_leaks(len, [], ignore=3)", "TypeError: ignore must be a type name pattern or a list*"),
        ("assert_no_leaks(len, [], allow={'dict': 1.5})", "ValueError: allow: allowed count for 'dict' must be*"),
        ("assert_no_leaks(len, [], allow='dict')", "ValueError: allow: 'dict' is not TYPE=N"),
        ("assert_no_leaks(len, [], allow=5)", "TypeError: allow must be a mapping*"),
        ("check(graph_dir=3)", "TypeError: graph_dir must be a path, got 3"),
        ("check(diagnosis=None)", "TypeError: diagnosis must be True or False, got None"),
        ("assert_no_leaks(asyncio.sleep, 0)", "TypeError: assert_no_leaks() calls func synchronously*"),
    ],
)
def test_bad_arguments_are_clear_errors(tester: pytest.Pytester, call: str, error: str) -> None:
    result = tester.run(
        sys.executable, "-c", f"import asyncio\nfrom pytest_gcguard import assert_no_leaks, check\n{call}"
    )
    assert result.ret == 1
    result.stderr.fnmatch_lines([error])


def test_a_check_runs_once(tester: pytest.Pytester) -> None:
    result = tester.run(
        sys.executable,
        "-c",
        "from pytest_gcguard import check\nc = check()\nwith c:\n    with c:\n        pass",
    )
    assert result.ret == 1
    result.stderr.fnmatch_lines(["RuntimeError: this check() is already running; make a new one for each block"])
