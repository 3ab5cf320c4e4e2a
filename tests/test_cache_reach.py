"""What a bounded cache holds, as the bounded-cache rule walks it (``_diagnose._reachable``):
pure, in-process, with the runs' labels (which objects are new, which the last run made) given."""

from __future__ import annotations

import collections
import gc

import pytest

from pytest_gcguard._diagnose import _reachable


class Cache:
    def __init__(self) -> None:
        self.maxsize = 10
        self.data: dict[str, object] = {}

    def __len__(self) -> int:
        return len(self.data)


class Part:
    pass


class Holder:
    def __init__(self) -> None:
        self.items: dict[int, Part] = {n: Part() for n in range(4)}


def _getter(self: object) -> int:
    return 0


def test_a_class_namespace_with_objects_of_two_runs_is_no_growing_container() -> None:
    """An entry's class holds properties its class statement made at once; when which run
    made each is not told exactly (an evicted class's addresses go to the next class's:
    cattrs' attrs classes), one looks made by the last run and the rest before.  A
    container like that gains objects run after run, but a class's namespace does not."""
    cache = Cache()
    made = type("Made", (), {f"p{n}": property(_getter) for n in range(4)})
    cache.data["key"] = made
    (real,) = gc.get_referents(type.__dict__["__dict__"].__get__(made))  # the dict behind the proxy
    properties = [real[f"p{n}"] for n in range(4)]
    young = {id(made), id(real), *map(id, properties)}
    latest = {id(properties[0])}
    reach = _reachable(cache, young, None, len(cache), latest)
    assert {id(made), id(real), *map(id, properties)} <= reach


class Registry(dict):  # type: ignore[type-arg]
    pass


@pytest.mark.parametrize("kind", [dict, Registry, collections.Counter])
def test_a_dict_in_an_entry_with_objects_of_two_runs_still_grows(kind: type[dict[int, Part]]) -> None:
    """The same labels on a dict an entry keeps (or a subclass of dict: a ``Counter``, the
    code's registry): it gains the last run's object beside earlier runs' ones, so neither
    its objects nor it are the cache's bounded growth."""
    cache = Cache()
    holder = Holder()
    holder.items = kind(holder.items)
    cache.data["key"] = holder
    parts = list(holder.items.values())
    young = {id(holder.items), *map(id, parts)}
    latest = {id(parts[0])}
    reach = _reachable(cache, young, None, len(cache), latest)
    assert id(holder.items) in reach
    assert not set(map(id, parts)) & reach


def test_what_a_test_sets_on_a_class_in_an_entry_still_grows() -> None:
    """Objects that no class statement makes (a test's ``setattr(cls, name, Widget())`` on
    every run) in a class's namespace: it grows run after run."""
    cache = Cache()
    made = type("Made", (), {})
    for n in range(3):
        setattr(made, f"w{n}", Part())
    cache.data["key"] = made
    (real,) = gc.get_referents(type.__dict__["__dict__"].__get__(made))
    parts = [real[f"w{n}"] for n in range(3)]
    young = {id(made), id(real), *map(id, parts)}
    latest = {id(parts[0])}
    reach = _reachable(cache, young, None, len(cache), latest)
    assert id(real) in reach
    assert not set(map(id, parts)) & reach
