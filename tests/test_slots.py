"""A value that tests rebind every time (a conftest resets a configuration, clears a
cache by making a new one) settles without a rerun once a test's reruns showed it, and
only when it is a replacement: what died at the slot is noted before the test, and the
test's new objects must all hang off the slot's new value alone, no more of them than
died.  Unit tests of the counting (``_slots``) first, then the plugin end to end."""

from __future__ import annotations

import gc
import sys
import textwrap
import weakref
from typing import ClassVar

import pytest

from pytest_gcguard._slots import RETIRE_AFTER, RETIRE_AFTER_IDLE, Slot, Slots, exclusive_structure
from tests.test_traps import assert_clean, run_with_report

#: 3.11+: an object's attributes are part of it until its ``__dict__`` is asked for; on
#: 3.10 the dict is an object of its own, which cannot be followed by a weak reference.
INLINE_ATTRIBUTES = sys.version_info >= (3, 11)


class Owner:
    pass


def test_a_structure_is_what_only_the_value_and_its_own_objects_refer_to() -> None:
    owner = Owner()
    shared = []
    owner.value = [[1], [2], shared]
    members = [owner.value]
    assert exclusive_structure(members, 1)
    # The inner lists die with it; ``shared`` is held by this frame too.
    assert sorted(map(id, members)) == sorted(map(id, [owner.value, owner.value[0], owner.value[1]]))
    held_twice = owner.value
    members = [owner.value]
    assert not exclusive_structure(members, 1)  # a second reference to the value itself
    del held_twice
    owner.cycle = {"self": None}
    owner.cycle["self"] = owner.cycle
    assert exclusive_structure([owner.cycle], 1)  # its reference to itself is its own
    assert not exclusive_structure([owner.cycle], 2)
    members = [owner.value]
    assert not exclusive_structure(members, 1, limit=1)  # too large: left to reruns


def test_a_slot_settles_only_what_replaced_a_value_that_died() -> None:
    owner = Owner()
    owner.config = [[]]
    owner.cache = weakref.WeakValueDictionary()
    slots = Slots()
    slots.slots += [Slot(owner, "config"), Slot(owner, "cache")]
    slots.note()
    labels = [f"{__name__}.Owner.config", f"{__name__}.Owner.cache"]
    if not INLINE_ATTRIBUTES:
        del labels[1]  # its __dict__ (held) refers to its function (followed): left to reruns
    assert [noted.slot.label for noted in slots.noted] == labels
    owner.config = [[]]
    owner.cache = weakref.WeakValueDictionary()
    replacement = slots.replacement()
    assert replacement is not None
    new = [owner.config, owner.config[0]]
    if INLINE_ATTRIBUTES:
        new += [owner.cache, owner.cache._pending_removals]
    assert replacement.settles(new) == ", ".join(labels)
    assert replacement.settles([*new, []]) == ""  # something else kept: not the slots'
    slots.forget()

    # The old value kept elsewhere: it did not die.
    kept = []
    slots.note()
    kept.append(owner.config)
    owner.config = [[]]
    assert slots.replacement() is None  # nothing noted died
    slots.forget()

    # The new value holds more than the old one did: that type grew.
    slots.note()
    owner.config = [[], []]
    replacement = slots.replacement()
    assert replacement is not None
    assert replacement.settles([owner.config, *owner.config]) == ""
    slots.forget()


def test_what_is_held_never_keeps_alive_what_a_test_watches_die() -> None:
    """An old list holding an object that takes weak references is not held at all."""

    class Thing:
        pass

    owner = Owner()
    owner.things = [Thing()]
    slots = Slots()
    slots.slots.append(Slot(owner, "things"))
    slots.note()
    assert slots.noted == []
    watched = weakref.ref(owner.things[0])
    owner.things = []
    assert watched() is None
    slots.forget()


def test_a_slot_that_costs_a_walk_for_nothing_rests_and_is_taken_up_again() -> None:
    """A value that cannot be noted (jinja2's ``LRUCache._mapping``), or a slot that settles
    none of many tests, rests; a rerun that kept its new value takes it up without a pass."""

    class Thing:
        pass

    owner = Owner()
    owner.things = [Thing()]  # a list holding what takes weak references: not noted
    owner.config = []
    slots = Slots()
    slots.passes = 0
    unholdable, idle = Slot(owner, "things"), Slot(owner, "config")
    slots.slots += [unholdable, idle]
    for _ in range(RETIRE_AFTER):
        slots.note()
        assert [noted.slot for noted in slots.noted] == [idle]
        slots.forget()
    slots.note()
    assert slots.slots == [idle]
    assert slots.resting == [unholdable]
    slots.forget()
    for _ in range(RETIRE_AFTER_IDLE - RETIRE_AFTER - 2):
        slots.note()
        slots.forget()
    # Settling a test makes the slot busy again.
    slots.note()
    owner.config = []
    replacement = slots.replacement()
    assert replacement is not None
    assert replacement.settles([owner.config]) == f"{__name__}.Owner.config"
    for _ in range(RETIRE_AFTER_IDLE):
        slots.note()
        assert slots.slots == [idle]
        slots.forget()
    slots.note()
    assert slots.slots == []
    assert slots.resting == [unholdable, idle]
    assert slots.noted == []
    assert slots.can_learn()  # no pass left, but slots rest
    owner.config = []
    slots.learn([owner.config], set(), set())
    assert slots.slots == [idle]
    assert slots.resting == [unholdable]
    slots.learn([[]], set(), set())  # no resting slot holds it, and no pass left
    assert slots.slots == [idle]


class Registry:
    handlers: ClassVar[list[object]] = []


def _modified(tp: type) -> None:
    """Tell the interpreter a type's namespace changed, as forbiddenfruit does."""
    import ctypes

    ctypes.pythonapi.PyType_Modified(ctypes.py_object(tp))


def test_a_class_attribute_and_a_built_in_types_entry_are_slots() -> None:
    """A class's attribute rebound per test, and an entry of a built-in type's namespace
    (forbiddenfruit's ``curse``, which blockbuster's pytest fixture calls around every
    test, rebinds those): their holder is a class's namespace, whose class one pass finds,
    or, for a built-in type the gc does not track, a walk of the types."""
    Registry.handlers = []
    slots = Slots()
    slots.learn([Registry.handlers], set(), set())
    assert [slot.label for slot in slots.slots] == [f"{__name__}.Registry.handlers"]
    slots.note()
    Registry.handlers = []
    replacement = slots.replacement()
    assert replacement is not None
    assert replacement.settles([Registry.handlers]) == f"{__name__}.Registry.handlers"

    namespace = gc.get_referents(vars(float))[0]
    assert type(namespace) is dict
    namespace["_gcguard_probe"] = [[]]
    _modified(float)
    try:
        slots = Slots()
        slots.learn([namespace["_gcguard_probe"]], set(), set())
        assert [slot.label for slot in slots.slots] == ["float._gcguard_probe"]
        slots.note()
        namespace["_gcguard_probe"] = [[]]
        replacement = slots.replacement()
        assert replacement is not None
        new = [namespace["_gcguard_probe"], namespace["_gcguard_probe"][0]]
        assert replacement.settles(new) == "float._gcguard_probe"
        assert replacement.settles([*new, []]) == ""  # something else kept
        new.clear()
        slots.forget()
        # A plain dict that holds the value is no slot, and no walk of the types is made.
        registry = {"value": [[]]}
        slots = Slots()
        slots.learn([registry["value"]], set(), set())
        assert slots.slots == []
    finally:
        del namespace["_gcguard_probe"]
        _modified(float)


CONFTEST = """
    import weakref
    import pytest

    class Settings:
        def __init__(self):
            self.processors = []
            self.cache = weakref.WeakValueDictionary()

    SETTINGS = Settings()

    @pytest.fixture(autouse=True)
    def _reset():
        SETTINGS.processors = list(SETTINGS.processors)  # a copy, as structlog's tests do
        yield
        if CLEAR_CACHE:
            SETTINGS.cache = weakref.WeakValueDictionary()  # a new cache, as dateutil's do
"""


@pytest.mark.parametrize("clear_cache", [False, True])
def test_a_value_rebound_on_every_test_is_settled_without_a_rerun(tester: pytest.Pytester, clear_cache: bool) -> None:
    """A new list per test (structlog's tests), and a new ``WeakValueDictionary`` (dateutil's):
    on 3.10 the second is left to reruns (``INLINE_ATTRIBUTES``)."""
    tester.makeconftest(f"CLEAR_CACHE = {clear_cache}\n" + textwrap.dedent(CONFTEST))
    tester.makepyfile(
        test_reset="""
        import gc, weakref
        import pytest
        from conftest import SETTINGS

        @pytest.mark.parametrize("n", range(5))
        def test_uses_the_settings(n):
            assert SETTINGS.processors == []

        def test_the_old_value_dies():
            old = weakref.ref(SETTINGS.cache)
            SETTINGS.cache = weakref.WeakValueDictionary()
            gc.collect()
            assert old() is None
        """
    )
    result, records = run_with_report(tester)
    result.assert_outcomes(passed=6)
    assert_clean(records)
    assert records["test_uses_the_settings[0]"]["reruns"] == 1, records["test_uses_the_settings[0]"]
    assert records["test_uses_the_settings[0]"]["suspicion"]["cause"] == "first use"
    # Without the fixture's new cache, the test's own is a slot no test showed before: rerun.
    later = [f"test_uses_the_settings[{n}]" for n in range(1, 5)] + ["test_the_old_value_dies"] * clear_cache
    if clear_cache and not INLINE_ATTRIBUTES:
        for name in later:
            assert (records[name]["reruns"], records[name]["suspicion"]["cause"]) == (1, "first use"), records[name]
        return
    labels = "conftest.Settings.processors, conftest.Settings.cache" if clear_cache else "conftest.Settings.processors"
    for name in later:
        record = records[name]
        assert (record["reruns"], record["suspicion"]["cause"]) == (0, "replaced"), record
        assert labels in record["notes"][0], record
    if not clear_cache:
        assert records["test_the_old_value_dies"]["reruns"] == 1, records["test_the_old_value_dies"]
    result.stdout.fnmatch_lines([f"*{len(later)} settled without a rerun (a rebound value replaced); 0 leaking*"])


def test_a_class_attribute_rebound_on_every_test_is_settled_without_a_rerun(tester: pytest.Pytester) -> None:
    """A fixture that gives a class a new attribute value around every test (a registry
    reset on the class itself): learned from the first test's rerun, then settled."""
    tester.makeconftest(
        """
        import pytest

        class Hooks:
            registered = []

        @pytest.fixture(autouse=True)
        def fresh_hooks():
            yield
            Hooks.registered = [[]]
        """
    )
    tester.makepyfile(
        test_hooks="""
        import pytest
        from conftest import Hooks

        KEPT = []

        @pytest.mark.parametrize("n", range(4))
        def test_uses_the_hooks(n):
            Hooks.registered.append(n)

        def test_leaks_beside_it():
            KEPT.append([])
        """
    )
    result, records = run_with_report(tester, "-p", "no:randomly")
    result.assert_outcomes(passed=5, errors=1)
    names = [f"test_uses_the_hooks[{n}]" for n in range(4)]
    assert_clean(records, names)
    assert (records[names[0]]["reruns"], records[names[0]]["suspicion"]["cause"]) == (1, "first use")
    for name in names[1:]:
        record = records[name]
        assert (record["reruns"], record["suspicion"]["cause"]) == (0, "replaced"), record
        assert "conftest.Hooks.registered" in record["notes"][0], record
    assert records["test_leaks_beside_it"]["verdict"] == "leaked"
    result.stdout.fnmatch_lines(["*3 settled without a rerun (a rebound value replaced); 1 leaking*"])


def test_an_old_value_that_refers_to_a_watched_object_is_not_held(tester: pytest.Pytester) -> None:
    """Found by review: holding a slot's old value kept alive an object it shares with a
    module, which the test then made unreachable, while a weak reference watched it (as
    logging watches its handlers): its callback came after the test's own check.  Such a
    value is not noted; the test sees the callback as it does plainly."""
    tester.makepyfile(
        test_watched="""
        import gc
        import weakref

        class Handler:
            pass

        class Registry:
            handlers = [[]]

        DIED = []
        X = Handler()
        WATCH = weakref.ref(X, lambda ref: DIED.append(True))

        def test_0():
            Registry.handlers = [[]]

        def test_1():
            Registry.handlers = [[]]

        def test_2():
            Registry.handlers = [X]  # shared with the module's global

        def test_3_drops_it():
            global X
            del X  # the last reference but the old value's
            Registry.handlers = []
            gc.collect()
            assert DIED == [True]
        """
    )
    result, records = run_with_report(tester, "-p", "no:randomly", "-W", "ignore::pytest_gcguard.GcGuardWarning")
    result.assert_outcomes(passed=4)
    for name in ("test_1", "test_2"):
        assert (records[name]["reruns"], records[name]["suspicion"]["cause"]) == (0, "replaced"), records[name]
        assert "test_watched.Registry.handlers" in records[name]["notes"][0], records[name]


def test_passes_are_not_spent_twice_on_one_kind_and_a_resting_slot_is_taken_up_without_one(
    tester: pytest.Pytester,
) -> None:
    """python-dateutil's order: tests that replace a bounded cache's entries (no slot holds
    them) come first, ten of one kind, then six of six kinds; the rebound slot is found
    anyway (a cache's list entry does not keep lists from being looked up again), rests
    while tests leave it alone, and is taken up again with no pass left."""
    tester.makepyfile(
        test_order="""
        import collections, itertools
        import pytest

        FRESH = itertools.count()
        CACHE = collections.OrderedDict()
        KINDS = [type(f"Entry{n}", (), {}) for n in range(6)]

        class Entry:
            pass

        class Config:
            handlers = None

        CONFIG = Config()
        CONFIG.handlers = []

        def put(value):
            CACHE[next(FRESH)] = value
            while len(CACHE) > 1:
                CACHE.popitem(last=False)

        @pytest.fixture
        def fresh_handlers():
            yield
            CONFIG.handlers = []

        def test_0_replaces_a_list_in_the_cache():
            put([next(FRESH)])  # no slot holds it: but a list is what slots most often hold

        @pytest.mark.parametrize("n", range(10))
        def test_1_replaces_a_cache_entry(n):
            put(Entry())

        @pytest.mark.parametrize("n", range(3))
        def test_2_rebinds(fresh_handlers, n):
            CONFIG.handlers.append(n)

        @pytest.mark.parametrize("n", range(11))
        def test_3_leaves_it(n):
            assert CONFIG.handlers == []

        @pytest.mark.parametrize("n", range(6))
        def test_4_replaces_other_kinds(n):
            put(KINDS[n]())

        @pytest.mark.parametrize("n", range(3))
        def test_5_rebinds_again(fresh_handlers, n):
            CONFIG.handlers.append(n)
        """
    )
    result, records = run_with_report(tester, "-p", "no:randomly")
    result.assert_outcomes(passed=34)
    assert_clean(records)
    for name in ("test_2_rebinds", "test_5_rebinds_again"):
        assert (records[f"{name}[0]"]["reruns"], records[f"{name}[0]"]["suspicion"]["cause"]) == (1, "first use")
        for n in (1, 2):
            record = records[f"{name}[{n}]"]
            assert (record["reruns"], record["suspicion"]["cause"]) == (0, "replaced"), record
            assert "test_order.Config.handlers" in record["notes"][0], record
    result.stdout.fnmatch_lines(["*4 settled without a rerun (a rebound value replaced); 0 leaking*"])


def test_a_leak_beside_a_rebound_value_is_still_confirmed_and_reported(tester: pytest.Pytester) -> None:
    """Learned first (the parametrized test), then: a leak into a module list, the old
    value kept by the test, and a value the test makes grow on every run."""
    tester.makeconftest("CLEAR_CACHE = True\n" + textwrap.dedent(CONFTEST))
    tester.makepyfile(
        test_reset="""
        import pytest
        from conftest import SETTINGS

        KEPT = []

        @pytest.mark.parametrize("n", range(3))
        def test_uses_the_settings(n):
            assert SETTINGS.processors == []

        def test_leaks_beside_it():
            KEPT.append([])

        def test_keeps_the_old_value():
            KEPT.append(SETTINGS.cache)

        def test_grows_the_value():
            SETTINGS.processors.append([])  # the next copy keeps it too
        """
    )
    result, records = run_with_report(tester)
    result.assert_outcomes(passed=6, errors=3)
    assert_clean(records, [f"test_uses_the_settings[{n}]" for n in range(3)])
    if INLINE_ATTRIBUTES:
        assert records["test_uses_the_settings[2]"]["suspicion"]["cause"] == "replaced"
    for name in ("test_leaks_beside_it", "test_keeps_the_old_value", "test_grows_the_value"):
        record = records[name]
        assert record["verdict"] == "leaked", record
        assert record["reruns"] >= 2, record


def test_what_gcguard_holds_of_an_old_value_changes_nothing_a_test_sees(tester: pytest.Pytester) -> None:
    """Found by review: a held ``dict`` subclass delayed its ``__del__``, a held weak
    reference called its callback after it should have died, and a held list kept an
    ``epoll`` (its file descriptor) open past the test that dropped it.  Such values are
    not noted, so these tests pass as they do plainly."""
    pytest.importorskip("select", reason="needs select").epoll  # noqa: B018 (Linux only)
    tester.makepyfile(
        state="""
        import select

        FINALIZED = []
        FIRED = []

        class Registry(dict):
            __slots__ = ()

            def __del__(self):
                FINALIZED.append(len(self))

        class Thing:
            pass

        def on_dead(ref):
            FIRED.append(ref)

        REGISTRY = Registry()
        WATCHERS = []
        POLLERS = [select.epoll()]
        """,
        test_held="""
        import gc, os, select, weakref
        import pytest
        import state

        KEEP = []

        @pytest.mark.parametrize("n", range(2))
        def test_resets(n):
            state.REGISTRY = state.Registry(a=[n])
            state.WATCHERS = [[n]]
            state.POLLERS = [select.epoll()]

        def test_the_old_registry_is_finalized_when_replaced():
            state.FINALIZED.clear()
            state.REGISTRY = state.Registry()
            assert len(state.FINALIZED) == 1

        def test_a_dropped_watch():
            thing = state.Thing()
            KEEP.append(thing)
            state.WATCHERS = [weakref.ref(thing, state.on_dead)]

        def test_a_dropped_watch_never_fires():
            state.FIRED.clear()
            state.WATCHERS = []
            KEEP.clear()
            gc.collect()
            assert state.FIRED == []

        def test_replacing_the_pollers_closes_them():
            if not state.POLLERS:  # gcguard's rerun: the first run emptied it
                state.POLLERS = [select.epoll()]
            fd = state.POLLERS[0].fileno()
            state.POLLERS = []
            with pytest.raises(OSError):
                os.fstat(fd)
        """,
    )
    result, records = run_with_report(tester)
    # test_a_dropped_watch keeps a Thing in KEEP on every run: the one real leak.
    result.assert_outcomes(passed=6, errors=1)
    assert records["test_a_dropped_watch"]["verdict"] == "leaked", records["test_a_dropped_watch"]
    names = ["test_the_old_registry_is_finalized_when_replaced", "test_a_dropped_watch_never_fires"]
    assert_clean(records, [*names, "test_replacing_the_pollers_closes_them"])
