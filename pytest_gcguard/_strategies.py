"""Settling without a rerun a Hypothesis test that only filled Hypothesis's own caches.

A ``@given`` test's first run keeps what Hypothesis builds for it: an entry in
its strategy cache (``hypothesis.strategies._internal.utils._STRATEGY_CACHE``,
bounded at 1,024 entries, kept per thread) for every strategy a cacheable
function made with new arguments, entries in its other bounded caches (the
constraints it pools, its samplers' tables in an ``lru_cache``), and the
strategy each ``LazyStrategy`` builds on its first draw
(``_LazyStrategy__wrapped_strategy``, built once).  A single run cannot tell
those from a leak in general, and each rerun of such a test replays all of its
examples (seconds each for cattrs' and attrs' slowest).

Here a first run's growth is settled without a rerun only when, by reference
counts, every reference to every new object the test kept comes from another of
them or from one of these holders:

- the per-thread containers of the bounded caches in Hypothesis's modules'
  namespaces (``hypothesis.internal.cache``'s classes, whose ``max_size`` is
  declared) and the ``functools.lru_cache`` wrappers there with a ``maxsize``;
- an older Hypothesis strategy reachable from the test's ``@given`` arguments
  (through older or new strategies and containers), through what it sets once:
  its ``_LazyStrategy__wrapped_strategy`` (``_DeferredStrategy__...``), its
  ``_unwrapped`` (memoized by ``lazy.unwrap_strategies``), a ``one_of``'s
  branches and their sampler, its ``validate_called``, or its own ``__dict__``
  (made on first use).

Nothing else may refer to any of them: not a module's list, not an older object
of the test's code, not a frame.  So what the test left is bounded growth, and
its reruns would have found the same (a cache's entries, a strategy built once).
The count is exact: each object's reference count, less the references the new
objects hold among themselves, less the holds of gcguard's own lists, must equal
the references the holders above hold.  Anything else goes to the reruns.  Only
objects are read (attributes by name, referents): no code of the test's runs.

CPython 3.11 and 3.12 only: there an object's attributes are among its
referents.  On 3.10 an instance's ``__dict__`` is an object of its own, and from
3.13 a ``__dict__`` once made is not among its owner's referents; the counts
would not add up, so those versions leave such tests to their reruns.
"""

from __future__ import annotations

import _thread
import collections
import sys
import types
from collections import Counter
from typing import Any

from ._heap import (
    _LRU_WRAPPER,
    _TYPE_NAME,
    _get_referents,
    hypothesis_module_values,
    is_lru_table,
    read_attribute,
    type_module,
)
from ._slots import _outside

#: The versions whose referents show an object's attributes (module docstring).
SUPPORTED = (3, 11) <= sys.version_info[:2] <= (3, 12)
#: New objects counted at most (a larger growth is left to its one rerun).
MAX_CANDIDATES = 100_000
#: Older objects of the strategies' graph looked at from the ``@given`` arguments, at most
#: (besides the new objects, each looked at once).
MAX_WALK = 20_000
#: A declared bound above this is no bound for a test run (as ``_diagnose``'s).
MAX_BOUND = 100_000
#: Attributes a strategy sets once (on its first draw, its first validation, the
#: first time it is unwrapped: ``lazy.unwrap_strategies`` memoizes its result; a
#: ``one_of``'s branches and their sampler, on its first draw).
_SET_ONCE = (
    "_LazyStrategy__wrapped_strategy",
    "validate_called",
    "_unwrapped",
    "_DeferredStrategy__wrapped_strategy",
    "_OneOfStrategy__element_strategies",
    "_OneOfStrategy__branch_sampler",
)
_CONTAINERS = (tuple, list, dict, frozenset, set)
_CACHE_CONTAINERS = (list, dict, collections.OrderedDict)


#: Hypothesis's bounded caches (``hypothesis.internal.cache``), by class name: the
#: names their per-thread state gives its containers.
_CACHE_STATE = {
    "LRUReusedCache": ("data", "keys_to_indices"),
    "GenericCache": ("data", "keys_to_indices"),
    "LRUCache": ("cache",),
}
#: The bounded caches in Hypothesis's modules' namespaces, and how many modules were
#: loaded when they were listed.  Refilled in place: a container made while a test is
#: judged is frozen with the rest when the verdict ends, and is never a candidate.
_CACHES: list[object] = []
_CACHES_AT = [-1]


def _bounded_caches() -> list[object]:
    """Hypothesis's module-level caches that declare their bound (``max_size``)."""
    if _CACHES_AT[0] == len(sys.modules):
        return _CACHES
    found: list[object] = []
    for value in hypothesis_module_values():
        tp = type(value)
        if tp is _LRU_WRAPPER:
            bound = value.cache_info().maxsize  # type: ignore[attr-defined]
        elif type_module(tp) == "hypothesis.internal.cache" and _TYPE_NAME.__get__(tp) in _CACHE_STATE:
            bound = read_attribute(value, "max_size")
        else:
            continue
        if type(bound) is int and 0 < bound <= MAX_BOUND and not any(value is known for known in found):
            found.append(value)
    _CACHES[:] = found
    _CACHES_AT[0] = len(sys.modules)
    return _CACHES


def _cache_containers() -> list[object]:
    """The containers of each thread's state of Hypothesis's bounded caches."""
    found: list[object] = []
    for cache in _bounded_caches():
        if type(cache) is _LRU_WRAPPER:
            # Its results and keys (in C links, not tracked), and its table: the dict
            # whose values are those links (not its ``__dict__``, nor a result).
            found.append(cache)
            found.extend(ref for ref in _get_referents(cache) if is_lru_table(ref))
            continue
        names = _CACHE_STATE[_TYPE_NAME.__get__(type(cache))]
        local = read_attribute(cache, "_threadlocal")
        for inner in _get_referents(local) if local is not None else ():
            if type(inner) is not dict:
                continue
            for state in _get_referents(inner):  # each thread's dict
                if type(state) is dict:
                    found.extend(state[name] for name in names if type(state.get(name)) in _CACHE_CONTAINERS)
    return found


#: What Hypothesis's strategies are made of, besides its own classes' objects (a
#: ``one_of``'s strategy holds a lock, which refers to nothing but its type).
_PLAIN = frozenset(
    {tuple, list, dict, frozenset, set, types.CellType, types.FunctionType, _thread.RLock, _thread.LockType}
)


def _hypothesis_made(tp: type) -> bool:
    """An object of this type may be what Hypothesis builds: its own classes' objects, and
    plain containers and functions.  An object of a class of the code under test is not:
    what a first run hangs on a cached strategy, later runs may add to."""
    return tp in _PLAIN or (type_module(tp) or "").startswith("hypothesis.")


def _is_strategy_object(obj: object) -> bool:
    return (type_module(type(obj)) or "").startswith("hypothesis.")


def _own_dict(owner: object, namespace: dict[Any, Any]) -> bool:
    """``namespace`` is ``owner``'s ``__dict__`` (read by name, it holds the same values)."""
    keys = [key for key in _SET_ONCE if key in namespace]
    return bool(keys) and all(read_attribute(owner, key) is namespace[key] for key in keys)


def _set_once(name: str, value: object) -> bool:
    """``value`` is what Hypothesis sets once under ``name``: a strategy (what a lazy or
    deferred strategy wraps, a ``one_of``'s branch sampler), a ``one_of``'s list of
    strategies, or the threads that validated it.  Anything else (a list a test appends
    to on every run) is not built once."""
    if name == "validate_called":
        return type(value) is dict and all(type(key) is int for key in value)
    if name == "_OneOfStrategy__element_strategies":
        return type(value) is list and all(map(_is_strategy_object, value))
    return _is_strategy_object(value)


def _new_dict_set_once(namespace: dict[Any, Any], ids: set[int]) -> bool:
    """Every new object an older strategy's new ``__dict__`` holds is set once."""
    return all(key in _SET_ONCE and _set_once(key, value) for key, value in namespace.items() if id(value) in ids)


def _count_held(strategy: object, ref: object, ids: set[int], expected: Counter[int]) -> bool:
    """Count what the older ``strategy`` holds of the new objects (``ref``, or what its
    older ``__dict__`` holds) under the names it sets once; False if that is not what
    Hypothesis sets there."""
    if id(ref) in ids:
        if type(ref) is dict and _own_dict(strategy, ref):
            if not _new_dict_set_once(ref, ids):
                return False
            expected[id(ref)] += 1
            return True
        names = [name for name in _SET_ONCE if read_attribute(strategy, name) is ref]
        if not all(_set_once(name, ref) for name in names):
            return False
        expected[id(ref)] += bool(names)
    elif type(ref) is dict and _own_dict(strategy, ref):
        # Its older ``__dict__``: what it holds under those names is counted here.
        for name in _SET_ONCE:
            value = ref.get(name)
            if value is not None and id(value) in ids:
                if not _set_once(name, value):
                    return False
                expected[id(value)] += 1
    return True


def _count_strategies(given: list[object], ids: set[int], expected: Counter[int]) -> bool:
    """Count the references older strategies hold to new objects through what they set
    once; False when the graph is too large to walk, or when what an older strategy
    holds under those names is not what Hypothesis sets there (``_set_once``)."""
    seen: set[int] = set()
    stack = list(given)
    walked = 0
    limit = MAX_WALK + len(ids)
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        walked += 1
        if walked > limit:
            return False
        strategy = _is_strategy_object(obj)
        if not strategy and type(obj) not in _CONTAINERS:
            continue
        # A new strategy or container is walked through too (an older strategy's
        # ``__dict__`` made by this test, the strategy an older one built), for the
        # older strategies it leads to; only an older one's references are counted
        # (the new ones' are among the new objects).
        older = id(obj) not in ids
        for ref in _get_referents(obj):
            if older and strategy and not _count_held(obj, ref, ids, expected):
                return False
            if id(ref) not in seen and (type(ref) in _CONTAINERS or _is_strategy_object(ref)):
                stack.append(ref)
        del obj
    return True


def held_by_hypothesis(candidates: list[object], ids: set[int], holds: int, given: list[object]) -> int:
    """How many of the test's new objects Hypothesis's caches hold directly, if only they
    and the strategies built once hold them (module docstring); else -1.

    ``candidates``: the new objects (``ids`` their ids), each held ``holds`` times by
    gcguard's own lists besides; ``given``: the test's ``@given`` arguments.
    """
    if not SUPPORTED:
        return -1
    if len(candidates) > MAX_CANDIDATES or not all(map(_hypothesis_made, {type(obj) for obj in candidates})):
        return -1
    containers = _cache_containers()
    expected: Counter[int] = Counter()
    entries = 0
    for container in containers:
        if id(container) in ids:
            return -1  # made by this test (a thread's first use): its reruns tell
        refs = _get_referents(container)
        for key in map(id, refs):
            if key in ids:
                expected[key] += 1
                entries += 1
        refs.clear()
    containers.clear()
    if not _count_strategies(given, ids, expected):
        return -1
    if not expected:
        return -1
    members = list(candidates)
    outside = _outside(members, [])
    settled = all(count - holds == expected.get(key, 0) for count, key in zip(outside, map(id, members), strict=True))
    members.clear()
    return entries if settled else -1
