"""Fast unit tests of pure policy: which cyclic garbage is the code under test's, what repeats."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import warnings
from pathlib import Path
from unittest import mock

from pytest_gcguard import _heap
from pytest_gcguard._identity import Identities, identify
from pytest_gcguard._judge import _Samples
from pytest_gcguard._pytest_internals import _a_new_executor_is_expected, recorded_warnings


def test_cycle_members_finds_every_node_on_a_cycle_and_no_other() -> None:
    # 0 <-> 1, 2 -> 2 (self loop), 3 -> 0 (points into a cycle, not on one), 4 alone.
    edges = [[1], [0], [2], [0], []]
    assert _heap._cycle_members(edges) == {0, 1, 2}
    assert _heap._cycle_members([[1], [2], []]) == set()


def test_cycle_members_needs_no_recursion_on_long_chains() -> None:
    n = sys.getrecursionlimit() * 3
    ring = [[i + 1] for i in range(n - 1)] + [[0]]
    assert len(_heap._cycle_members(ring)) == n
    chain = [[i + 1] for i in range(n - 1)] + [[]]
    assert _heap._cycle_members(chain) == set()


def _frame_cycle() -> list[object]:
    holder: list[object] = []
    holder.append(sys._getframe())  # the frame holds ``holder``, which holds the frame
    return holder


def test_real_cycles_leave_the_scaffolding_frames_out() -> None:
    holder = _frame_cycle()
    frame = holder[0]
    try:
        counts, first = _heap._real_cycles([holder, frame], frozenset({id(_frame_cycle.__code__)}))
        assert counts == {}
        assert first is None
        counts, first = _heap._real_cycles([holder, frame], frozenset())
        assert counts == {list: 1, type(frame): 1}
        assert first is holder  # a cycle is described from an object, not a frame
    finally:
        holder.clear()
        del frame, first


def test_real_cycles_keep_a_cycle_beside_the_scaffolding_and_what_it_holds() -> None:
    node: dict[str, object] = {}
    node["self"] = node
    held = [1, 2]
    node["data"] = held
    fake = mock.MagicMock()  # a mock and its children are cyclic by design
    garbage: list[object] = [node, held, fake, *fake.__dict__.values()]
    try:
        counts, first = _heap._real_cycles(garbage, frozenset())
        assert counts == {dict: 1, list: 1}
        assert first is node
    finally:
        node.clear()
        garbage.clear()
        del first


def test_samples_are_the_objects_that_outlived_every_later_rerun() -> None:
    samples = _Samples({1, 2, 3}, Identities())
    samples.record({1, 2, 3, 4, 5}, False, Identities())
    assert samples.new_ids == samples.last_new == {4, 5}  # the first rerun offers its own
    samples.record({1, 2, 3, 4, 6}, False, Identities())
    assert samples.new_ids == {4}  # 5 was replaced: not accumulating
    assert samples.last_new == {6}  # what the last rerun kept
    samples.record({7, 8}, True, Identities())  # earlier objects frozen: all of these are new
    assert samples.new_ids == samples.last_new == {7, 8}


def _recorded(kinds: dict[int, int]) -> Identities:
    identities = Identities()
    identities.kinds = kinds
    return identities


def test_an_id_whose_recorded_object_died_is_a_newer_object() -> None:
    """A rerun's object made at the address of an earlier run's object that died is new
    in that rerun, and not among what stayed: here 4 (its recorded object died) and 5
    (another type now)."""

    class Recorded:
        pass

    alive, dead = Recorded(), Recorded()
    first = _recorded({1: 10, 2: 10, 3: 10})
    samples = _Samples({1, 2, 3}, first)
    second = identify([alive, dead])
    second.kinds = {1: 10, 2: 10, 3: 10, 4: 11, 5: 12, 6: 12}
    second.tokens[4] = second.tokens.pop(id(dead))
    second.tokens[6] = second.tokens.pop(id(alive))
    samples.record({1, 2, 3, 4, 5, 6}, False, second)
    assert samples.new_ids == samples.last_new == {4, 5, 6}
    del dead
    gc.collect()
    samples.record({1, 2, 3, 4, 5, 6, 7}, False, _recorded({1: 10, 2: 10, 3: 10, 4: 11, 5: 13, 6: 12, 7: 10}))
    assert samples.new_ids == {6}  # only 6's recorded object is provably the same
    assert samples.last_new == {4, 5, 7}
    del alive


def test_the_warnings_log_is_found_only_while_warnings_are_recorded() -> None:
    assert recorded_warnings() is not None  # pytest records this test's warnings
    with warnings.catch_warnings(record=True) as log:
        assert recorded_warnings() is log
    with warnings.catch_warnings():
        warnings.resetwarnings()
        assert recorded_warnings() is not None  # the list of the enclosing recorder
    assert recorded_warnings() is not log


def test_the_asyncio_modules_referents_can_be_held(tmp_path: Path) -> None:
    # CPython 3.12.0-3.12.5 (gh-122695): gc.get_referents(_asyncio) returns freed
    # FutureIter objects; holding them corrupts the free list and the next
    # traversal of the module loops forever (a why-alive chain through
    # ``_asyncio`` hung the whole run).  In a subprocess: a hang must not hang us.
    script = tmp_path / "probe.py"
    script.write_text(
        "import asyncio, gc, _asyncio\n"
        "from pytest_gcguard._heap import _get_referents\n"
        "async def main():\n"
        "    future = asyncio.get_running_loop().create_future()\n"
        "    future.set_result(1)\n"
        "    await future\n"
        "for _ in range(3):\n"
        "    asyncio.run(main())\n"
        "for _ in range(5):\n"
        "    refs = _get_referents(_asyncio)\n"
        "    del refs\n"
        "    gc.get_referrers(_asyncio)\n"
        "    gc.collect()\n"
        "print('done')\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout == "done\n"


def test_a_released_broader_fixture_brings_the_next_full_pass_forward(monkeypatch) -> None:
    heap = _heap.Heap()
    passes: list[bool] = []
    monkeypatch.setattr(heap, "full_pass", lambda: passes.append(heap.released))
    heap.started = True
    heap.last_pass_cost = 1.0
    heap.last_pass_end = _heap.time.perf_counter() - 21.0  # 21 costs ago
    heap.maybe_full_pass()
    assert passes == []  # not due: the usual budget is 100 costs
    heap.released = True
    heap.maybe_full_pass()
    assert passes == [True]  # due: 20 costs once frozen objects were let go


SHARED_PASS_PROBE = """
import ctypes, gc, sys, types
from pytest_gcguard._diagnose import MAX_FRONTIER, backref_chains

OLD_LIST = []
OLD_DICT = {"seed": []}
HOLDERS = [[] for _ in range(MAX_FRONTIER + 50)]

def generator():
    kept = yield
    yield kept

SUSPENDED = generator()
next(SUSPENDED)

gc.collect()
gc.freeze()


def main():  # new objects, kept in several ways (locals: only a frame refers to them)
    direct = object(); OLD_LIST.append(direct)                     # an older list, one level up
    deep = object(); OLD_DICT["seed"].append([[[deep]]])           # three new lists, then older ones
    crowded = object()
    for holder in HOLDERS:                                          # more referrers than a level keeps
        holder.append([crowded])
    orphan = object(); ctypes.pythonapi.Py_IncRef(ctypes.py_object(orphan))
    by_frame = object(); SUSPENDED.send([by_frame])                 # an older frame on 3.10
    deeper_than_allowed = object()
    node = deeper_than_allowed
    for _ in range(20):
        node = [node]
    OLD_LIST.append(node)
    targets = [direct, deep, crowded, orphan, by_frame, deeper_than_allowed]
    young = set(map(id, gc.get_objects()))

    def pre_existing(obj):
        return id(obj) not in young and type(obj) is not types.FrameType

    ignore = {id(targets), id(young), id(sys._getframe())}
    shared_referred = set()
    shared = backref_chains(targets, pre_existing, 12, ignore, gc.unfreeze, shared_referred)
    assert not gc.get_freeze_count()
    ignore.add(id(shared))
    ignore.update(map(id, shared))
    alone_referred = set()
    alone = backref_chains(targets, pre_existing, 12, ignore, None, alone_referred)
    for one, other in zip(shared, alone, strict=True):
        assert len(one) == len(other) and all(a is b for a, b in zip(one, other)), (len(one), len(other))
    assert shared_referred == alone_referred
    assert id(orphan) not in shared_referred and id(direct) in shared_referred
    print([len(chain) for chain in shared])  # a JSON list


main()
"""


def test_a_search_that_shares_passes_finds_the_chains_of_one_pass_per_level(tmp_path: Path) -> None:
    """The new objects' levels, searched first while the heap is frozen, let several
    levels share a pass over the whole heap; the chains must be the ones found
    level by level (in a subprocess: it freezes the heap)."""
    script = tmp_path / "probe.py"
    script.write_text(SHARED_PASS_PROBE)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lengths = json.loads(done.stdout)
    assert lengths[0] == 2  # direct: OLD_LIST -> direct
    assert lengths[1] == 5  # deep: OLD_DICT's list -> 3 new lists -> deep
    assert lengths[2] == 3  # crowded: a holder -> a new list -> crowded
    assert lengths[3] == 1  # orphan: nothing refers to it
    assert lengths[5] == 1  # deeper than the search goes


KNOWN_HOLDER_PROBE = """
import ctypes, gc, json, sys, types
from pytest_gcguard import _diagnose
from pytest_gcguard._diagnose import ChainMemo, backref_chains

# (each holds a list: a dict of untracked values is untracked, made young by an insertion)
REGISTRY = {"seed": []}  # where earlier tests' leaks were found: the memo knows it
OTHER = []  # an older list the memo does not know
SECOND = {"seed": []}  # a second known container
module = types.ModuleType("registry_module")
module.REGISTRY, module.SECOND = REGISTRY, SECOND
memo = ChainMemo()
memo.remember([module, module.__dict__, SECOND])
memo.remember([module, module.__dict__, REGISTRY])
results = {}


def search(name, box):
    # The chain of the one object in box: no local variable refers to it (a running
    # frame's locals are not shown to the gc, so they would count as an older referrer).
    young = set(map(id, gc.get_objects()))

    def pre_existing(obj):
        return id(obj) not in young and type(obj) is not types.FrameType

    thawed = []

    def thaw():
        thawed.append(True)
        gc.unfreeze()

    targets = []
    while box:
        targets.append(box.pop())
    ignore = {id(targets), id(young), id(sys._getframe()), id(thawed)}
    spared = memo.passes_spared
    found = backref_chains(targets, pre_existing, 12, ignore, thaw, None, memo)
    spared = memo.passes_spared - spared
    thaw()  # as the caller does after: the search over the whole heap, for comparison
    ignore.add(id(found))
    ignore.update(map(id, found))
    alone = backref_chains(targets, pre_existing, 12, ignore)
    same = all(
        len(one) == len(other) and all(a is b for a, b in zip(one, other)) for one, other in zip(found, alone)
    )
    results[name] = {"spared": spared, "thawed": len(thawed) > 1, "same": same, "length": len(found[0])}
    for chain in (*found, *alone):
        chain.clear()
    found.clear()
    alone.clear()
    targets.clear()
    gc.collect()
    gc.freeze()


def main():
    gc.collect()
    gc.freeze()
    REGISTRY[object()] = [object()]  # held by new objects, then the known container
    search("known", [REGISTRY[next(reversed(REGISTRY))][0]])
    REGISTRY[object()] = [[[object()]]]  # three new lists, then the known container
    search("deep", [REGISTRY[next(reversed(REGISTRY))][0][0][0]])
    REGISTRY[object()] = object()
    OTHER.append(REGISTRY[next(reversed(REGISTRY))])  # an older referrer the memo does not know
    search("another older referrer", [OTHER[-1]])
    REGISTRY[object()] = object()
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(REGISTRY[next(reversed(REGISTRY))]))  # unseen
    search("an unseen reference", [REGISTRY[next(reversed(REGISTRY))]])
    REGISTRY[object()] = object()
    SECOND[object()] = REGISTRY[next(reversed(REGISTRY))]  # two known containers: order unknown
    search("two known containers", [REGISTRY[next(reversed(REGISTRY))]])
    REGISTRY[object()] = [object(), object()]  # two targets in one new list: a level lists it twice
    search("two targets", list(REGISTRY[next(reversed(REGISTRY))]))
    # Another thread adds a new referrer between the counts and the pass, while an older
    # list the memo does not know refers too: the pass sees one more reference than the
    # counts, which would hide that list, but the counts read again refuse the shortcut.
    REGISTRY[object()] = object()
    OTHER.append(REGISTRY[next(reversed(REGISTRY))])
    LATE = []
    counted = _diagnose._getrefcount

    def count_then_interleave(obj):
        n = counted(obj)
        if not LATE and obj is OTHER[-1]:
            LATE.append(obj)  # as if another thread ran right after this count
        return n

    _diagnose._getrefcount = count_then_interleave
    search("a referrer added while counting", [OTHER[-1]])
    _diagnose._getrefcount = counted
    print(json.dumps(results))


main()
"""


def test_a_search_takes_the_referrers_from_a_known_container_only_when_refcounts_leave_no_other() -> None:
    """When an earlier test's leak was held by an older container, the next search takes
    its referrers from the new objects and that container, without a pass over the whole
    heap, only if the refcounts show no other older referrer: the chain is always the one
    the pass over the whole heap finds (in a subprocess: it freezes the heap)."""
    done = subprocess.run([sys.executable, "-c", KNOWN_HOLDER_PROBE], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert all(case["same"] for case in results.values()), results
    assert results["known"] == {"spared": 1, "thawed": False, "same": True, "length": 3}, results
    assert results["deep"] == {"spared": 1, "thawed": False, "same": True, "length": 5}, results
    assert results["two targets"] == {"spared": 1, "thawed": False, "same": True, "length": 3}, results
    for refused in (
        "another older referrer",
        "an unseen reference",
        "two known containers",
        "a referrer added while counting",
    ):
        assert results[refused]["spared"] == 0, (refused, results)
        assert results[refused]["thawed"], (refused, results)


#: The ``@given`` wrapper's health check as Hypothesis before 6.136.4 wrote it: ``prev_self``
#: in a cell of its closure beside ``Unset``; defined as if in a Hypothesis module.
_OLD_GIVEN = """
def given_wrapper(test):
    prev_self = Unset = object()

    def wrapped_test(self):
        nonlocal prev_self
        if prev_self is Unset:
            prev_self = self
        elif self is not prev_self:
            raise AssertionError("called from multiple different executors")
        return test(self)

    def outer(self):  # as define_function_signature's generated function, holding it in a cell
        return wrapped_test(self)

    outer.is_hypothesis_test = True
    return outer
"""


def test_a_rerun_unsets_the_executor_an_old_given_wrapper_keeps_in_its_closure() -> None:
    """Before Hypothesis 6.136.4 the ``@given`` wrapper kept the instance it first ran on in
    a closure cell: a rerun on a new ``TestCase`` failed its health check.  The rerun starts
    with it unset, and the first run's instance is put back after."""
    namespace: dict[str, object] = {"__name__": "hypothesis.core"}
    exec(compile(_OLD_GIVEN, "<old hypothesis>", "exec"), namespace)
    test = namespace["given_wrapper"](lambda self: None)  # type: ignore[operator]
    item = mock.Mock(spec=["function"], function=test)
    first, second = object(), object()
    test(first)
    try:
        test(second)
    except AssertionError:
        pass
    else:
        raise AssertionError("the imitation should fail a second executor")
    with _a_new_executor_is_expected(item):
        test(second)  # the rerun's new instance is accepted
    test(first)  # the first run's is back: the test as the user runs it is unchanged
    # A function outside Hypothesis's modules is left alone, whatever its cells are called.
    elsewhere: dict[str, object] = {"__name__": "tests.helpers"}
    exec(compile(_OLD_GIVEN, "<not hypothesis>", "exec"), elsewhere)
    own = elsewhere["given_wrapper"](lambda self: None)  # type: ignore[operator]
    assert _heap.hypothesis_prev_self_cells(own) == []
