"""Unit tests: telling a run's survivor from a later object made at its address (``_identity``).

Each case records objects the way a rerun's verdict does (held by the caller's
list), lets some die, and asks which recorded ids are now provably someone else's.
"""

from __future__ import annotations

import gc
import weakref

import pytest

from pytest_gcguard import _identity
from pytest_gcguard._identity import Identities, identify


class Made:
    pass


def test_an_object_that_takes_weak_references_is_known_dead_by_its_own() -> None:
    objs: list[object] = [Made(), Made()]
    keys = [id(obj) for obj in objs]
    found = identify(objs)
    assert found.replaced(keys, found) == set()
    objs.pop()
    gc.collect()
    assert found.replaced(keys, found) == {keys[1]}


def test_a_tuple_is_known_dead_when_the_young_objects_holding_it_died() -> None:
    """A function made per run holds its defaults tuple: the tuple dies with it."""

    def make() -> object:
        def per_run(x: object = (Made, [1])) -> object:
            return x

        return per_run

    funcs = [make()]
    defaults = funcs[0].__defaults__  # type: ignore[attr-defined]
    objs: list[object] = [defaults, funcs[0]]
    key = id(defaults)
    del defaults
    found = identify(objs)
    assert found.tokens[key] == (found.tokens[id(funcs[0])][0],)  # the function's own
    objs.clear()
    assert found.replaced([key], found) == set()  # the function still holds it
    funcs.clear()
    gc.collect()
    assert found.replaced([key], found) == {key}


def test_a_holder_without_weak_references_is_climbed() -> None:
    """tuple <- list <- instance: the instance's death proves the tuple's."""
    holder = Made()
    holder.items = [(Made, [2])]  # type: ignore[attr-defined]
    objs: list[object] = [holder.items[0]]  # type: ignore[attr-defined]
    key = id(objs[0])
    found = identify(objs)
    assert key in found.tokens
    objs.clear()
    del holder
    gc.collect()
    assert found.replaced([key], found) == {key}


def test_an_object_also_held_from_elsewhere_is_told_apart_by_id_only() -> None:
    """A reference no young object accounts for (here a frame's local; in a test,
    something older than the test) may keep it alive after its holders die."""
    holder = Made()
    kept = (Made, [3])
    holder.kept = kept  # type: ignore[attr-defined]
    objs: list[object] = [kept]
    found = identify(objs)
    assert id(kept) not in found.tokens
    del holder
    gc.collect()
    assert found.replaced([id(kept)], found) == set()


def test_an_object_of_another_type_at_a_recorded_id_is_newer() -> None:
    before, now = Identities(), Identities()
    before.kinds = {1: 100, 2: 100}
    now.kinds = {1: 100, 2: 200}
    assert before.replaced([1, 2], now) == {2}


def test_our_weak_references_are_never_the_objects_plain_one() -> None:
    """``weakref.ref(obj)`` hands out an existing plain reference: a base class's registry
    of subclasses holds one per class made, and ours must not be taken for it."""

    class Base:
        pass

    made = type("Sub", (Base,), {})
    (registry_ref,) = weakref.getweakrefs(made)
    assert weakref.ref(made) is registry_ref
    objs: list[object] = [made]
    found = identify(objs)
    assert all(ref is not registry_ref for ref in found.refs)
    assert found.tokens[id(made)][0]() is made
    assert id(registry_ref) not in set(map(id, found.own()))


def test_a_referent_whose_truth_raises_is_never_asked() -> None:
    class NoTruth:
        def __bool__(self) -> bool:
            raise RuntimeError("no truth value")

    objs: list[object] = [NoTruth()]
    found = identify(objs)
    assert found.replaced([id(objs[0])], found) == set()


def test_too_many_objects_without_weak_references_are_told_apart_by_id_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_identity, "MAX_LOOKED_UP", 1)
    holder = Made()
    holder.pair = [(Made, [4]), (Made, [5])]  # type: ignore[attr-defined]
    objs: list[object] = list(holder.pair)  # type: ignore[attr-defined]
    found = identify(objs)
    assert found.tokens == {}
    assert set(found.kinds) == set(map(id, objs))


def test_a_large_growth_is_told_apart_by_id_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_identity, "MAX_IDENTIFIED", 2)
    objs: list[object] = [Made(), Made(), Made()]
    found = identify(objs)
    assert (found.tokens, found.kinds, found.refs) == ({}, {}, [])


def test_an_unchanging_object_that_now_refers_to_other_objects_is_newer() -> None:
    """A tuple or property takes no weak reference, and past MAX_LOOKED_UP of them their
    holders are not looked up; what they refer to never changes, so a newer one at the
    address is told by what it refers to (another getter, other items)."""
    before, now = Identities(), Identities()
    before.kinds = now.kinds = {1: 100, 2: 100, 3: 100}
    before.prints = {1: 5, 2: 7}
    now.prints = {1: 5, 2: 8, 3: 9}
    assert before.replaced([1, 2, 3], now) == {2}


def test_only_unchanging_objects_are_told_by_what_they_refer_to() -> None:
    item = object()
    pair = (item, [item])
    kept = [item]
    prop = property(lambda self: item)
    found = identify([pair, kept, prop])
    assert set(found.prints) == {id(pair), id(prop)}
    assert identify([pair]).prints[id(pair)] == found.prints[id(pair)]
    kept.append(item)  # a list changes what it refers to: never printed
    assert identify([kept]).prints == {}


def test_a_property_is_known_by_its_accessors_only() -> None:
    """A property's ``__doc__`` (and, on 3.13, its name) can be set: the same property
    then refers to another string, and must not pass for a newer one."""

    def get(self: object) -> int:
        return 0

    prop = property(get)
    before = identify([prop])
    prop.__doc__ = "refreshed"
    assert before.replaced([id(prop)], identify([prop])) == set()
