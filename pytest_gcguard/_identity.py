"""Telling an object apart from a later one made at its address.

The confirmation reruns follow a suspected test's survivors from run to run by
``id()`` (``_judge._Samples``).  An object that a rerun replaces is freed, and
the next object of its size is often made at its address (CPython's free lists
hand the same memory back): a fixture that makes a function per run, with its
defaults and annotations tuples, leaves tuples that look, by id, as if they had
stayed.  Then the bounded-cache rule (``_diagnose._bounded_holders``) sees them
beside a cache's growth and reports the cache's growth as a leak (aiohttp's
``aiohttp_client``), and a new object at an old address is missed among what
the last run made.

So each run's survivors are recorded with what later proves them dead, while
they are alive:

- an object that takes weak references: a weak reference to it;
- another (a tuple, list, dict): weak references to its holders, when every
  reference to it comes from young objects (its refcount says nothing older
  holds it): it can only outlive them by being handed to something new, which a
  test that replaces it does not do.  A holder without weak references is
  climbed in turn, a few levels up.

An object with neither (held by something older, or too far up) is told apart
by id only, as before.  The weak references are ours: the caller excludes them
by identity (``Identities.own``).

This module does not import pytest.
"""

from __future__ import annotations

import gc
import sys
import types
import weakref
from collections.abc import Iterable
from typing import Any

_get_referrers = gc.get_referrers
_getrefcount = sys.getrefcount

#: Above this many objects seen, nothing is recorded (a large growth's reruns freeze
#: what the runs before kept, and a million weak references would cost what the
#: leak does): they are told apart by id only.
MAX_IDENTIFIED = 100_000
#: Above this many objects without weak references, their holders are not looked
#: up: they are told apart by id only.  ``gc.get_referrers`` compares every
#: reference in the young heap with every object asked about, so a level costs
#: (young references) x (objects): with 20,000, one of attrs' Hypothesis tests spent
#: 0.35 s per call, and its reruns took 50% longer than before; with 2,000, no longer.
MAX_LOOKED_UP = 2_000
#: Levels of holders without weak references climbed to reach ones with them (a
#: closure's: tuple <- list <- cell <- closure tuple <- function is four).
HOLDER_DEPTH = 6


# Read through ``type``'s own descriptor: a metaclass may lie or raise.
_weakref_offset = type.__dict__["__weakrefoffset__"].__get__
_module_namespace = vars(types.ModuleType)["__dict__"].__get__


def _referents(obj: object) -> list[object]:
    """``gc.get_referents(obj)``, but a module's is its namespace: CPython 3.12.0-3.12.5's
    ``_asyncio`` module hands out freed objects to a traversal (see ``_heap``).  What a
    module holds otherwise (an extension's state) is then unaccounted for: told by id."""
    if issubclass(type(obj), types.ModuleType):
        return [_module_namespace(obj)]
    return gc.get_referents(obj)


def _unshared(ref: object) -> None:
    """The callback of our weak references: with one, ``weakref.ref`` makes a new
    reference instead of handing out the object's plain one, which is someone
    else's (the registry of a base class's subclasses holds one per class made)."""


def _takes_weakrefs(tp: type) -> bool:
    return bool(_weakref_offset(tp))


class Identities:
    """Per id, the weak references whose death proves the object recorded there died."""

    __slots__ = ("kinds", "prints", "refs", "tokens")

    def __init__(self) -> None:
        #: id -> the weak references (its own, or its holders').
        self.tokens: dict[int, tuple[weakref.ref[Any], ...]] = {}
        #: Every weak reference made, once (for ``own``).
        self.refs: list[weakref.ref[Any]] = []
        #: id -> the id of its type, for every object seen (a type made by the
        #: test must not be kept alive by us).
        self.kinds: dict[int, int] = {}
        #: id -> a hash of what it refers to, for objects that cannot change what
        #: they refer to (``_UNCHANGING``): a newer one at the address refers to other objects.
        self.prints: dict[int, int] = {}

    def own(self) -> tuple[object, ...]:
        """Our objects, to exclude by identity from a later run's survivors."""
        return (self, self.tokens, self.refs, self.kinds, self.prints, *self.refs, *self.tokens.values())

    def replaced(self, ids: Iterable[int], now: Identities) -> set[int]:
        """Of ``ids`` (recorded here, and ``now``), those whose recorded object died.

        The object now at such an id is a newer one: its recorded weak
        references are dead, it is of another type, or (an object that cannot
        change what it refers to) it refers to other objects.
        """
        tokens, kinds, kinds_now, prints, prints_now = self.tokens, self.kinds, now.kinds, self.prints, now.prints
        return {
            key
            for key in ids
            if kinds.get(key) != kinds_now.get(key)
            or ((refs := tokens.get(key)) is not None and all(ref() is None for ref in refs))
            or ((was := prints.get(key)) is not None and (is_now := prints_now.get(key)) is not None and was != is_now)
        }

    def clear(self) -> None:
        """Let go of the weak references (in place: nothing is made)."""
        self.tokens.clear()
        self.refs.clear()
        self.kinds.clear()
        self.prints.clear()


def identify(objs: list[object], ours: Iterable[object] = (), seen: list[object] | None = None) -> Identities:
    """Record ``objs`` (alive) to tell them apart from later objects at their addresses.

    ``ours``: the caller's containers that hold them (never holders).  ``seen``:
    more objects, recorded by type only (``objs`` by default).
    """
    found = Identities()
    every = objs if seen is None else seen
    if len(every) > MAX_IDENTIFIED:
        return found
    found.kinds = dict(zip(map(id, every), map(id, map(type, every)), strict=True))
    # Objects that take no weak reference and cannot change what they refer to: a
    # newer one at the address refers to other objects (a property to another getter).
    # Beyond MAX_LOOKED_UP of them, this is all that tells them apart (cattrs' runs
    # keep thousands of tuples and properties, and an evicted class's properties'
    # addresses go to the next class's: they looked as if they had stayed).
    found.prints = _prints(every)
    made: dict[int, weakref.ref[Any]] = {}
    others = _own_references(objs, made)
    for key, ref in made.items():
        found.tokens[key] = (ref,)
    if others and len(others) <= MAX_LOOKED_UP:
        holders = _Holders({id(objs), id(others), *map(id, ours)})
        holders.climb(others)
        for key, anchors in holders.all_anchors(others):
            found.tokens[key] = tuple(_ref(anchor, made) for anchor in anchors)
        holders.clear()
    others.clear()
    found.refs = list(made.values())
    made.clear()
    return found


#: Types whose objects take no weak reference and never change what they refer to
#: (a property's ``__doc__`` and, on 3.13, its name can be set: it is known by its
#: getter, setter and deleter only).
_UNCHANGING = frozenset(
    {
        tuple,
        frozenset,
        types.MethodWrapperType,
        types.GetSetDescriptorType,
        types.MemberDescriptorType,
    }
)
_FGET, _FSET, _FDEL = (property.__dict__[name].__get__ for name in ("fget", "fset", "fdel"))


def _prints(objs: list[object]) -> dict[int, int]:
    """id -> a hash of what it refers to, for ``objs`` of the ``_UNCHANGING`` types (in a
    function of its own: no frame of the caller's may go on referring to one of them)."""
    prints: dict[int, int] = {}
    for obj in objs:
        tp = type(obj)
        if tp in _UNCHANGING:
            prints[id(obj)] = hash(tuple(map(id, _referents(obj))))
        elif tp is property:
            prints[id(obj)] = hash((id(_FGET(obj)), id(_FSET(obj)), id(_FDEL(obj))))
    return prints


def _own_references(objs: list[object], made: dict[int, weakref.ref[Any]]) -> list[object]:
    """Make a weak reference to each of ``objs`` that takes one; return the others."""
    takes = {tp: _takes_weakrefs(tp) for tp in set(map(type, objs))}
    others: list[object] = []
    for obj in objs:
        if takes[type(obj)]:
            try:
                made[id(obj)] = weakref.ref(obj, _unshared)
                continue
            except TypeError:  # a type that says it takes them but does not
                pass
        others.append(obj)
    return others


def _ref(obj: object, made: dict[int, weakref.ref[Any]]) -> weakref.ref[Any]:
    ref = made.get(id(obj))
    if ref is None:
        ref = made[id(obj)] = weakref.ref(obj, _unshared)
    return ref


class _Holders:
    """The young holders of objects without weak references, a level at a time."""

    def __init__(self, ours: set[int]) -> None:
        #: id -> the object's young holders (ours left out); absent: not looked up.
        self.held_by: dict[int, list[object]] = {}
        #: Ids of objects also held by something older or unseen (refcount).
        self.open: set[int] = set()
        #: Ids of our own containers, never holders.
        self.ours = ours

    def climb(self, objs: list[object]) -> None:
        """Look up the holders of ``objs``, and theirs, ``HOLDER_DEPTH`` levels up."""
        level = objs
        for _ in range(HOLDER_DEPTH):
            level = self._look_up(level)
            if not level:
                break
            self.ours.add(id(level))

    def _look_up(self, level: list[object]) -> list[object]:
        """Look up the holders of ``level``; return those of them to climb next."""
        held_by = self.held_by
        # Each once: a holder of two objects of the level below is listed twice.
        work: list[object] = list({id(obj): obj for obj in level if id(obj) not in held_by}.values())
        if not work:
            return []
        work.append([])  # a probe held only by ``work``: what our own references add
        ours = self.ours
        ours.add(id(work))
        counts = [_getrefcount(obj) for obj in work]
        found = self._referrers(work)
        base = counts[-1] - found[-1][0]  # the probe's: the comprehension's own references
        work.pop()
        counts.pop()
        found.pop()
        climb: list[object] = []
        for obj, rc, (accounted, holders) in zip(work, counts, found, strict=True):
            key = id(obj)
            held_by[key] = holders
            if rc - accounted != base or not holders:
                self.open.add(key)
            else:
                climb.extend(holder for holder in holders if not _takes_weakrefs(type(holder)))
        work.clear()
        found.clear()
        ours.discard(id(work))
        return climb

    def _referrers(self, work: list[object]) -> list[tuple[int, list[object]]]:
        """Per object of ``work``: the references young objects hold to it, and its holders."""
        keys = {id(obj): n for n, obj in enumerate(work)}
        accounted = [0] * len(work)
        holders: list[list[object]] = [[] for _ in work]
        ours = self.ours
        ours.add(id(holders))
        ours.update(map(id, holders))
        # Passed as a tuple of ours: 3.13 counts the argument tuple among the referrers.
        args = tuple(work)
        ours.add(id(args))
        for holder in _get_referrers(*args):
            inside = id(holder) in ours
            for n in map(keys.get, map(id, _referents(holder))):
                if n is not None:
                    accounted[n] += 1
                    if not inside:
                        holders[n].append(holder)
        ours.discard(id(holders))
        ours.discard(id(args))
        return list(zip(accounted, holders, strict=True))

    def all_anchors(self, objs: list[object]) -> list[tuple[int, list[object]]]:
        """For each of ``objs`` whose death its holders can prove: its id and those holders."""
        found = []
        for obj in objs:
            anchors = self.anchors(obj)
            if anchors:
                found.append((id(obj), anchors))
        return found

    def anchors(self, obj: object) -> list[object] | None:
        """The holders with weak references whose death proves ``obj``'s, or None."""
        anchors: list[object] = []
        seen = {id(obj)}
        stack = [obj]
        while stack:
            node = stack.pop()
            key = id(node)
            holders = self.held_by.get(key)
            if holders is None or key in self.open:
                return None
            for holder in holders:
                if id(holder) in seen:
                    continue
                seen.add(id(holder))
                if _takes_weakrefs(type(holder)):
                    anchors.append(holder)
                else:
                    stack.append(holder)
        return anchors or None

    def clear(self) -> None:
        self.held_by.clear()
        self.open.clear()
