"""What a leak report says: samples, why-alive chains, cycles, graphs."""

from __future__ import annotations

import json
import shutil
import sys

import pytest


def test_hostile_objects_never_break_the_report(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        """
        import time, weakref
        KEEP = []

        class Raises:
            def __repr__(self):
                raise RuntimeError("no repr for you")

        class Recursive:
            def __repr__(self):
                return repr(self)

        class Huge:
            def __repr__(self):
                return "x" * 5_000_000

        class Slow:
            def __repr__(self):
                time.sleep(30)
                return "slow"

        class Liar:
            @property
            def __class__(self):
                raise RuntimeError("do not ask")

        class BadEq:
            def __eq__(self, other):
                raise RuntimeError("no eq")
            def __hash__(self):
                raise RuntimeError("no hash")

        class Target:
            pass

        _targets = []

        def test_hostile():
            t = Target()
            _targets.append(t)
            KEEP.extend([Raises(), Recursive(), Huge(), Slow(), Liar(), BadEq(), weakref.proxy(t)])
        """
    )
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-reruns=1", timeout=120)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines_random(
        [
            "*.Raises object at 0x*> (repr raised RuntimeError)*",
            "*.Recursive object at 0x*> (repr raised RecursionError)*",
            "*xxxxxxxx...",
            "*.Slow object at 0x*> (repr took over 0.25s)*",
            "*.Liar x1*",
            "*.BadEq x1*",
            "*weakref.ProxyType x1*",
        ]
    )
    assert max(len(line) for line in result.stdout.lines) < 400


def test_leak_without_a_referrer_is_explained(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        """
        import ctypes

        class Orphan:
            pass

        def test_refcount_leak():
            ctypes.pythonapi.Py_IncRef(ctypes.py_object(Orphan()))
        """
    )
    result = tester.runpytest_subprocess("--gcguard")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*Orphan x1*", "*why alive: no referrer found: nothing the gc tracks refers to it*"])


def test_a_million_leaked_objects_give_a_short_report(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        """
        KEEP = []

        class Item:
            pass

        def test_big():
            KEEP.append([Item() for _ in range(200_000)])
        """
    )
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-reruns=1")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*test_big: 200001 leaked object(s)*", "*Item x200000*"])
    report = [line for line in result.stdout.lines if line.startswith(("gcguard:", "  ", "    "))]
    assert len(report) < 40


def test_cycles_report_shows_one_cycle_as_a_chain(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        """
        class Node:
            def __init__(self):
                self.other = None

        def test_cycle():
            a, b = Node(), Node()
            a.other, b.other = b, a
        """
    )
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-cycles")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*.Node x2*", "    one cycle: test_*.Node -> other (test_*.Node) -> other (test_*.Node)"]
    )


def test_plugin_does_not_keep_leaked_objects_alive(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        """
        import gc, weakref
        KEEP = []
        REFS = []

        class Widget:
            pass

        def test_leak():
            w = Widget()
            KEEP.append(w)
            REFS.append(weakref.ref(w))

        def test_release():
            KEEP.clear()
            gc.collect()
            assert REFS and all(ref() is None for ref in REFS), "gcguard kept a leaked object alive"
        """
    )
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-graph-dir=graphs")
    result.assert_outcomes(passed=2, errors=1)


def test_graphs_are_written_for_leaking_tests(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        """
        import pytest
        KEEP = []

        class Widget:
            pass

        @pytest.mark.parametrize("name", ["a/b:c"])
        def test_leak(name):
            KEEP.append(Widget())
        """
    )
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-graph-dir=graphs")
    result.assert_outcomes(passed=1, errors=1)
    dots = list((tester.path / "graphs").glob("*.dot"))
    assert len(dots) == 1
    name = dots[0].name
    assert name.startswith("test_graphs_are_written_for_leaking_tests.py_test_leak_a_b_c-")
    assert "Widget" in dots[0].read_text()
    result.stdout.fnmatch_lines([f"  graph: graphs/{name}"])
    if shutil.which("dot"):
        assert dots[0].with_suffix(".png").exists()
        svg = dots[0].with_suffix(".svg").read_text()
        assert svg.lstrip().startswith("<?xml")
        assert "<svg" in svg
        assert "Widget" in svg
        result.stdout.fnmatch_lines([f"  graph: graphs/{name[:-4]}.png", f"  graph: graphs/{name[:-4]}.svg"])
    else:  # pragma: no cover - CI installs Graphviz
        result.stdout.fnmatch_lines(["*render later with: dot -Tpng*"])


def test_unwritable_graph_dir_is_a_warning(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        """
        KEEP = []

        def test_leak():
            KEEP.append([1])
        """
    )
    (tester.path / "not-a-dir").write_text("a file")
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-graph-dir=not-a-dir/graphs")
    result.assert_outcomes(passed=1, errors=1, warnings=1)
    result.stdout.fnmatch_lines(["*GcGuardWarning: gcguard could not write a graph to 'not-a-dir/graphs'*"])


def test_trace_shows_where_leaked_objects_were_allocated(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        helpers="""
        class Widget:
            pass

        def make():
            return Widget()
        """,
        test_trace="""
        import tracemalloc
        from helpers import make
        KEEP = []

        def test_leak():
            KEEP.append(make())

        def test_tracing_stops_with_the_session():
            assert tracemalloc.is_tracing()
        """,
    )
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-trace")
    result.assert_outcomes(passed=2, errors=1)
    if sys.version_info[:2] == (3, 11):
        result.stdout.fnmatch_lines(["*allocated at: unknown: tracemalloc on Python 3.11 cannot locate*"])
    else:
        result.stdout.fnmatch_lines(
            ["*helpers.Widget x1*", "        allocated at: */helpers.py:5", "            from */test_trace.py:6"]
        )


def test_a_subclass_registry_is_named_instead_of_blamed_on_c_code() -> None:
    import gc

    from pytest_gcguard._heap import subclass_registry_of

    class Base:
        pass

    class Child(Base):
        pass

    owners = [subclass_registry_of(obj) for obj in gc.get_objects() if type(obj) is dict]
    assert Base in owners
    assert subclass_registry_of({"a": 1}) is None
    assert subclass_registry_of({}) is None
    assert Child.__mro__


def test_a_type_still_reported_gets_a_chain_when_the_first_ones_were_a_bounded_caches(
    tester: pytest.Pytester,
) -> None:
    # Chains go to the most numerous types first; six of them here only fill a
    # bounded cache and are set aside, and the one type left must not be
    # reported without its chain (attrs' suite: Hypothesis's coverage tags).
    tester.makepyfile(
        """
        import functools

        class A: pass
        class B: pass
        class C: pass
        class D: pass
        class E: pass
        class F: pass

        KEEP = []

        class Lonely:
            pass

        @functools.lru_cache(maxsize=10_000)
        def build(key):
            return [[A() for _ in range(9)], [B() for _ in range(8)], [C() for _ in range(7)],
                    [D() for _ in range(6)], [E() for _ in range(5)], [F() for _ in range(4)]]

        N = [0]

        def test_cache_and_leak():
            N[0] += 1
            build(N[0])
            KEEP.append(Lonely())
        """
    )
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-json=out.json")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*Lonely x1*", "*why alive: module test_* -> KEEP (list) -> [[]1[]] *.Lonely"])
    (record,) = json.loads((tester.path / "out.json").read_text())["tests"]
    assert [leak["type"].rpartition(".")[2] for leak in record["leaked"]] == ["Lonely"]
    assert record["set_aside"] is not None


def test_diagnosis_can_be_turned_off(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        """
        KEEP = []

        class Widget:
            def __repr__(self):
                raise AssertionError("a repr must not run with diagnosis off")

        def test_leak():
            KEEP.append(Widget())
        """
    )
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-no-diagnosis", "--gcguard-graph-dir=graphs")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["gcguard: on (*diagnosis=off*)", "*Widget x1*", "*diagnosis off (--gcguard-no-diagnosis)*"]
    )
    result.stdout.no_fnmatch_line("*why alive*")
    assert not (tester.path / "graphs").exists() or not any((tester.path / "graphs").iterdir())
    tester.makeini("[pytest]\ngcguard_diagnosis = false\n")
    result = tester.runpytest_subprocess("--gcguard")
    result.stdout.fnmatch_lines(["*diagnosis off*"])


def test_graphs_of_hostile_objects_use_time_limited_labels(tester: pytest.Pytester) -> None:
    # objgraph labels nodes with repr() and edges by iterating a dict subclass's
    # own items(): neither may stall or break the graph.
    tester.makepyfile(
        test_h="""
        import time

        class Slow:
            def __repr__(self):
                time.sleep(30)
                return "never"

        class Hostile(dict):
            def items(self):
                raise RuntimeError("no items")
            def __iter__(self):
                raise RuntimeError("no iteration")

        REGISTRY = Hostile()

        def test_leak():
            REGISTRY[len(REGISTRY)] = Slow()
        """
    )
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-graph-dir=graphs", "--gcguard-reruns=1")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.no_fnmatch_line("*could not draw a graph*")
    (dot,) = (tester.path / "graphs").glob("*.dot")
    text = dot.read_text()
    assert "<test_h.Slow object at 0x" in text
    assert "never" not in text


def test_no_graph_for_growth_that_was_set_aside(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        """
        import functools, itertools

        FRESH = itertools.count()

        class Entry:
            pass

        @functools.lru_cache(maxsize=64)
        def lookup(key):
            return Entry()

        def test_fills_a_bounded_cache():
            lookup(next(FRESH))
        """
    )
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-graph-dir=graphs", "--gcguard-json=out.json")
    result.assert_outcomes(passed=1)
    (record,) = json.loads((tester.path / "out.json").read_text())["tests"]
    assert record["verdict"] == "clean"
    assert record["set_aside"]["types"] == {"test_no_graph_for_growth_that_was_set_aside.Entry": 1}
    assert record["graphs"] == []
    assert not list((tester.path / "graphs").glob("*")) if (tester.path / "graphs").exists() else True


ROOTS = """
REGISTRY = []
BUS = {"seed": []}  # tracked from the start (an empty dict is not)

class Subscriber:
    def __init__(self):
        self.inbox = [[], []]

class Handler:
    pass

def test_registers_a_subscriber():
    REGISTRY.append(Subscriber())

def test_registers_another():
    REGISTRY.append(Subscriber())

def test_two_roots():
    REGISTRY.append(Subscriber())
    BUS[object()] = Handler()
"""


def test_leaks_are_grouped_by_where_they_are_held(tester: pytest.Pytester) -> None:
    """Each report starts with "N object(s) held via ROOT", and the summary groups the tests that share a root."""
    tester.makepyfile(test_roots=ROOTS)
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-json=out.json", "-p", "no:randomly")
    result.assert_outcomes(passed=3, errors=3)
    result.stdout.fnmatch_lines(
        [
            "*test_registers_a_subscriber: 4 leaked object(s)",
            "*leaked (still alive after teardown*",
            "    4 object(s) held via module test_roots -> REGISTRY (list): list x3, test_roots.Subscriber x1",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*test_two_roots: 5 leaked object(s)",
            "*leaked (still alive after teardown*",
            "    4 object(s) held via module test_roots -> REGISTRY (list): *",
            "    1 object(s) held via module test_roots -> BUS (dict): test_roots.Handler x1",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "leaks by where they are held (the why-alive chains' old part):",
            "  3 test(s): held via module test_roots -> REGISTRY (list) (list x9, test_roots.Subscriber x3)",
            "  1 test(s): held via module test_roots -> BUS (dict) (*)",
        ]
    )
    records = {r["nodeid"].rpartition("::")[2]: r for r in json.loads((tester.path / "out.json").read_text())["tests"]}
    roots = {leak["type"]: leak["root"] for leak in records["test_two_roots"]["leaked"]}
    assert roots["test_roots.Subscriber"] == "module test_roots -> REGISTRY (list)"
    assert roots["test_roots.Handler"] == "module test_roots -> BUS (dict)"


def test_an_asyncio_task_leak_is_said_to_be_held_by_its_registry(tester: pytest.Pytester) -> None:
    """A task kept in a module-level set leaks a dozen types; the first line names the set."""
    pytest.importorskip("pytest_asyncio")
    tester.makepyfile(
        test_tasks="""
        import asyncio
        import pytest

        _TASKS = set()

        async def work(n):
            await asyncio.sleep(0)
            return [n] * 3

        @pytest.mark.asyncio
        async def test_spawns_a_task():
            task = asyncio.get_running_loop().create_task(work(1))
            _TASKS.add(task)
            await task
        """
    )
    result = tester.runpytest_subprocess("--gcguard", "-p", "no:randomly")
    result.assert_outcomes(passed=1, errors=1)
    lines = result.stdout.lines
    first = lines.index(next(line for line in lines if " held via " in line))
    assert lines[first].startswith("    ")
    assert "held via module test_tasks -> _TASKS (set): " in lines[first]
    assert "_asyncio.Task x1" in lines[first]
    result.stdout.fnmatch_lines(
        ["    _asyncio.Task x1  *", "*", "        why alive: module test_tasks -> _TASKS (set) -> *"]
    )


SHARED_ROOT = """
import weakref

def _make_store():
    entries = {"seed": []}  # tracked from the start (an empty dict is not)
    def store(key, value):
        entries[key] = value
    return store

store = _make_store()

class Session:
    pass

def test_first():
    store(object(), Session())

def test_second():
    store(object(), Session())

def test_third():
    store(object(), Session())

def test_fourth():
    store(object(), Session())
"""

COUNT_CLIMBS = """
import json

def pytest_sessionfinish(session):
    checker = session.config.pluginmanager.get_plugin("gcguard-checker")
    with open("climbs.json", "w") as out:
        json.dump(
            {
                "reused": checker.chains.reused,
                "searched": checker.chains.searched,
                "spared": getattr(checker.chains, "passes_spared", 0),
            },
            out,
        )
"""


def test_tests_that_leak_into_one_container_share_its_climb_to_the_module(tester: pytest.Pytester) -> None:
    """The climb from an older container up to its module is searched once, then
    followed again link by link for each later test: the same report, a pass per level saved."""
    tester.makepyfile(test_shared=SHARED_ROOT)
    tester.makeconftest(COUNT_CLIMBS)
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-json=out.json", "-p", "no:randomly")
    result.assert_outcomes(passed=4, errors=4)
    records = json.loads((tester.path / "out.json").read_text())["tests"]
    chains = {leak["why_alive"].split(" at 0x")[0] for record in records for leak in record["leaked"]}
    chains.discard("")
    expected = (
        "module test_shared -> store (function test_shared._make_store.<locals>.store) -> __closure__ (tuple)"
        " -> [0] cell -> cell_contents (dict) -> [<object object"
    )
    assert chains == {expected}, chains
    assert [r["verdict"] for r in records] == ["leaked"] * 4
    climbs = json.loads((tester.path / "climbs.json").read_text())
    assert climbs == {"reused": 3, "searched": 1, "spared": 3}


def test_a_kept_climb_whose_link_changed_is_searched_again(tester: pytest.Pytester) -> None:
    """A later test that rebinds the module's name finds the chain as the heap is now."""
    tester.makepyfile(
        test_rebound="""
        ENTRIES = []

        class Wrapper:
            def __init__(self, entries):
                self.entries = entries

        class Session:
            pass

        def test_first():
            ENTRIES.append(Session())

        def test_second():
            global ENTRIES
            if not isinstance(ENTRIES, Wrapper):
                ENTRIES = Wrapper(ENTRIES)
            ENTRIES.entries.append(Session())
        """
    )
    tester.makeconftest(COUNT_CLIMBS)
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-json=out.json", "-p", "no:randomly")
    result.assert_outcomes(passed=2, errors=2)
    records = {r["nodeid"].rpartition("::")[2]: r for r in json.loads((tester.path / "out.json").read_text())["tests"]}
    (first,) = records["test_first"]["leaked"]
    assert first["root"] == "module test_rebound -> ENTRIES (list)"
    second = {leak["type"]: leak["root"] for leak in records["test_second"]["leaked"]}
    assert second["test_rebound.Session"] == (
        "module test_rebound -> ENTRIES (test_rebound.Wrapper) -> entries (list)"
    ), second
    climbs = json.loads((tester.path / "climbs.json").read_text())
    assert climbs["reused"] == 0


def test_a_kept_climb_holds_nothing_and_never_one_through_a_bounded_cache() -> None:
    import types

    from pytest_gcguard._diagnose import ChainMemo

    class Cache:
        def __init__(self) -> None:
            self.maxsize = 10
            self.data: dict[object, object] = {}

        def __len__(self) -> int:
            return len(self.data)

    module = types.ModuleType("fake_module")
    holder: list[object] = []
    module.REGISTRY = holder  # type: ignore[attr-defined]
    memo = ChainMemo()
    memo.remember([module, module.__dict__, holder])
    assert len(memo) == 1
    assert memo.climb(holder) == [module, module.__dict__, holder]
    assert memo.climb([]) is None  # another container: nothing kept for it

    cache = Cache()
    module.CACHE = cache  # type: ignore[attr-defined]
    memo.remember([module, module.__dict__, cache, cache.__dict__, cache.data])
    assert memo.climb(cache.data) is None  # a declared bound decides set-asides: always searched afresh

    del module.REGISTRY  # type: ignore[attr-defined]
    assert memo.climb(holder) is None  # a broken link: dropped
    assert len(memo) == 0

    other = types.ModuleType("other_module")
    other.REGISTRY = holder  # type: ignore[attr-defined]
    memo.remember([other, other.__dict__, holder])
    del other  # the memo holds the module by weak reference only
    assert memo.climb(holder) is None


def test_a_class_weak_reference_in_its_bases_registry_is_held_via_what_holds_the_class(
    tester: pytest.Pytester,
) -> None:
    """A class made per run (pyrsistent's field types) adds its weak reference to its
    base's registry of subclasses, a dict the gc shows no referrer of.  That reference
    lives as long as the class: its chain is the class's, with the reference at its end
    (the base's registry, when nothing older reaches the class)."""
    tester.makepyfile(
        test_sub="""
        FIELD_TYPES = {}
        LOOSE = []

        class Base:
            pass

        class Existing(Base):  # the registry exists before the test
            pass

        def test_defines_a_class_per_run():
            class Field(Base):
                pass
            FIELD_TYPES[Field] = "field"

        def test_keeps_a_class_deeper_than_a_search_goes():
            class Deep(Base):
                pass
            nested = [Deep]
            for _ in range(45):
                nested = [nested]
            LOOSE.append(nested)
        """
    )
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-json=out.json", "-p", "no:randomly")
    result.assert_outcomes(passed=2, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*held via module test_sub:*type x1, weakref.ReferenceType x1*",
            "        why alive: module test_sub -> FIELD_TYPES (dict) -> a key (class test_sub.*Field) -> its weak "
            "reference in its bases' __subclasses__() (weakref.ReferenceType)",
        ]
    )
    tests = {r["nodeid"].rpartition("::")[2]: r for r in json.loads((tester.path / "out.json").read_text())["tests"]}
    record = tests["test_defines_a_class_per_run"]
    roots = {leak["type"]: leak["root"] for leak in record["leaked"]}
    assert roots["weakref.ReferenceType"] == roots["type"] == "module test_sub", roots
    record = tests["test_keeps_a_class_deeper_than_a_search_goes"]
    leaks = {leak["type"]: leak for leak in record["leaked"]}
    assert leaks["type"]["why_alive"].startswith("no pre-existing object reaches it within"), leaks
    assert leaks["weakref.ReferenceType"]["root"] == "class test_sub.Base -> __subclasses__() (dict)", leaks
