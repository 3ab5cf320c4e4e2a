"""Settling without a rerun a test that only replaced the value at a known slot.

Many suites rebind a global on every test: a conftest fixture resets a
configuration (structlog sets ``logging.root.handlers`` to a new list), or
clears a cache by making a new one (dateutil's ``gettz.cache_clear()`` binds a
new ``WeakValueDictionary``).  Each such test keeps new objects, and the old
value dies; a first run cannot tell that from a leak, so every test was rerun
(structlog and dateutil took twice their plain time).

When a suspected test's rerun kept exactly what its first run kept (the first
run's objects died, replaced), the older object that holds the rerun's objects
is looked up (one pass over the heap, a few per session): an attribute of an
object or a module's global, the *slot*.  From then on, before each test:

- the slot's value and what dies with it are noted: its *exclusive structure*,
  the objects every reference to which comes from the value or from each other
  (reference counts less the references counted among them);
- the ones that take weak references are followed by weak references; the
  others (lists, dicts, tuples, sets: nothing can see them die) are held, and
  only if none of them holds one of the first kind (holding them never delays
  a finalizer or a weak reference's death).

After the test, its growth is settled as a replacement, with no rerun, when

- everything noted died: the weak references are dead, and nothing but this
  module refers to what it holds;
- every new object the test kept is in the exclusive structure of a slot's new
  value (nothing else refers to them: no module list, no other older object);
- and, type by type, the test kept no more new objects than died.

So the heap did not grow, and what the test left hangs off the slot alone,
where the next test's value replaces it: a rerun would find the same.  Any
doubt (a reference this module cannot account for, another thread, a structure
too large) leaves the test to its reruns.  The counts are taken with the gc and
thread switches off.  This module does not import pytest.
"""

from __future__ import annotations

import collections
import gc
import sys
import types
import weakref
from collections.abc import Iterable
from typing import Any

from ._heap import _HEAPTYPE, _TYPE_DICT, _TYPE_FLAGS, _TYPE_MRO, Quiet, _instance_dict, type_name
from ._identity import _module_namespace, _takes_weakrefs, _unshared

_get_referents = gc.get_referents
_get_referrers = gc.get_referrers
_getrefcount = sys.getrefcount
_is_tracked = gc.is_tracked
_SUBCLASSES = type.__subclasses__

#: Slots remembered per session.
MAX_SLOTS = 8
#: Passes over the heap spent finding slots, per session.
LEARN_PASSES = 8
#: Objects a value's exclusive structure may have (a larger one is left to reruns).
MAX_STRUCTURE = 64
#: Tests in a row before which a slot's value could not be noted, after which it rests.
RETIRE_AFTER = 3
#: Tests in a row that a slot did not help settle (its value left in place, or rebound
#: by tests not settled by it), after which it rests.
RETIRE_AFTER_IDLE = 10
#: New objects a rerun may keep for its holder to be looked up.
MAX_LEARNED = 64
#: Resting slots (``Slots.resting``) remembered, to be taken up again without a pass.
MAX_RESTING = 8
#: Sets of kept types whose holder was looked up and was no slot, remembered so as not to look again.
MAX_FRUITLESS = 64
#: Objects held (not followed by weak references): containers without code, whose
#: death nothing can observe.
_HOLDABLE = frozenset({list, dict, set, frozenset, tuple, types.CellType, collections.deque, weakref.ref})
#: Values whose death nothing can observe: what a held container may refer to
#: besides its structure's other held containers and objects shared with others.
_ATOMIC = frozenset({int, float, complex, str, bytes, bool, type(None)})


def _refcounts(objs: list[object]) -> list[int]:
    return [_getrefcount(obj) for obj in objs]


def _outside(members: list[object], others: list[object]) -> list[int]:
    """References to each of ``members`` then ``others`` from anything but ``members`` (and us).

    Each object's refcount, less the references the members hold (counted in
    their referents), less ours: the caller's two lists hold each object once,
    the referent lists made here once per reference counted, and the list of
    objects counted once more with the temporaries of counting, as a probe (a
    new object held by that list alone) shows.  No local variable of ours or of
    our callers may refer to a member or another object counted.
    """
    lists = list(map(_get_referents, members))
    index = {id(obj): n for n, obj in enumerate(members)}
    index.update((id(obj), len(members) + n) for n, obj in enumerate(others))
    held = [0] * len(index)
    for refs in lists:
        for n in map(index.get, map(id, refs)):
            if n is not None:
                held[n] += 1
    counts = _refcounts([*members, *others, object()])
    base = counts.pop()
    lists.clear()
    return [count - base - 1 - 2 * n for count, n in zip(counts, held, strict=True)]


def _candidates(members: list[object], seen: set[int]) -> list[object]:
    """The tracked objects the members refer to that were not looked at yet."""
    found: list[object] = []
    for refs in map(_get_referents, members):
        for ref in refs:
            key = id(ref)
            if key not in seen and _is_tracked(ref):
                seen.add(key)
                found.append(ref)
    return found


def _admit(members: list[object], candidates: list[object], outside: list[int], seen: set[int]) -> int:
    """Move the candidates nothing else refers to into ``members``; how many moved."""
    moved = 0
    for n, count in enumerate(outside):
        if count == 0:
            members.append(candidates[n])
            moved += 1
        else:
            seen.discard(id(candidates[n]))  # another member may account for it later
    candidates.clear()
    return moved


def exclusive_structure(members: list[object], external: int, limit: int = MAX_STRUCTURE) -> bool:
    """Extend ``members`` (a list of one root) with the objects that die with the root.

    Their references all come from each other, and the root's from them and
    ``external`` more (its slot).  False when the root has other references or
    the structure has more than ``limit`` objects.  Untracked objects (atomic
    values) are left out: the gc does not list them.  The root must be held by
    ``members`` alone: no local variable may refer to it.
    """
    seen = set(map(id, members))
    while len(members) <= limit:
        candidates = _candidates(members, seen)
        if not candidates:
            break
        outside = _outside(members, candidates)[len(members) :]
        if not _admit(members, candidates, outside, seen):
            break
    else:
        return False
    inside = _outside(members, [])
    return inside[0] == external and not any(inside[1:])


def _namespace(owner: object) -> dict[str, Any] | None:
    """A module's globals, a class's namespace (the dict behind its ``__dict__``
    proxy) or an object's ``__dict__``, read without running its code."""
    if issubclass(type(owner), types.ModuleType):
        namespace = _module_namespace(owner)
    elif issubclass(type(owner), type):
        inner = _get_referents(_TYPE_DICT.__get__(owner))
        namespace = inner[0] if len(inner) == 1 else None
    else:
        namespace = _instance_dict(owner)
    return namespace if type(namespace) is dict else None


def _module_of(namespace: dict[str, Any]) -> object:
    """The module whose globals ``namespace`` is, or None."""
    name = namespace.get("__name__")
    module = sys.modules.get(name) if type(name) is str else None
    return module if module is not None and _namespace(module) is namespace else None


def _owners_of(namespaces: list[dict[str, Any]], ours: set[int]) -> dict[int, object]:
    """By id of each of ``namespaces``: the object or class it is the namespace of.

    One pass over the heap for them all; a namespace it does not place is looked
    for among the built-in types (``_static_types_of``).
    """
    wanted = {id(namespace) for namespace in namespaces}
    owners: dict[int, object] = {}
    args = tuple(namespaces)
    ours = ours | {id(args), id(owners)}
    for ref in _get_referrers(*args):
        if type(ref) is dict or id(ref) in ours:
            continue
        namespace = _namespace(ref)
        if namespace is not None and id(namespace) in wanted:
            owners.setdefault(id(namespace), ref)
    # Every class's namespace has "__doc__": a plain dict (a registry) is not looked for.
    missing = [namespace for namespace in namespaces if id(namespace) not in owners and "__doc__" in namespace]
    if missing:
        owners.update(_static_types_of(missing))
    return owners


def _static_types_of(namespaces: list[dict[str, Any]]) -> dict[int, object]:
    """By id of each of ``namespaces``: the built-in (static) type it is the namespace
    of, found among ``object``'s subclasses.  The gc does not track static types, so
    no pass over the heap finds them (forbiddenfruit's ``curse``, which blockbuster
    uses, rebinds their attributes)."""
    wanted = {id(namespace) for namespace in namespaces}
    found: dict[int, object] = {}
    todo: list[type] = [object]
    seen = {id(object)}
    while todo and len(found) < len(wanted):
        tp = todo.pop()
        if not _TYPE_FLAGS.__get__(tp) & _HEAPTYPE:
            namespace = _namespace(tp)
            if namespace is not None and id(namespace) in wanted:
                found[id(namespace)] = tp
        sub: type
        for sub in _SUBCLASSES(tp):
            if id(sub) not in seen:
                seen.add(id(sub))
                todo.append(sub)
    return found


def _safe_to_hold(held: list[object], followed: set[int]) -> bool:
    """Holding ``held`` until the verdict changes nothing a test can see.

    What they refer to must be each other, values whose death nothing observes,
    or objects the gc tracks that others share (the handlers a logger's old list
    shares with the logging plugin): never what is followed by weak references
    (its death would wait for us), nor an object the gc does not track, which
    may own an operating-system resource (an ``epoll``, a file descriptor).
    """
    ids = set(map(id, held))
    for member in held:
        for ref in _get_referents(member):
            key = id(ref)
            if key in ids or type(ref) in _ATOMIC:
                continue
            if key in followed or (not _is_tracked(ref) and not _atomic_tuple(ref)) or _death_seen(ref):
                return False
    return True


def _death_seen(obj: object) -> bool:
    """A shared object whose death something watches now (a weak reference's
    callback: logging's list of handlers), or whose class has a finalizer: a hold
    would delay what they see.  (A test that makes its own weak reference to such an
    object during the test, then drops its last other reference, is not caught:
    README, Limitations.)"""
    return bool(_weakrefable(obj) and weakref.getweakrefcount(obj)) or _has_finalizer(type(obj))


def _has_finalizer(tp: type) -> bool:
    """``tp`` or a base defines ``__del__`` (read from the namespaces, running nothing)."""
    return any("__del__" in _TYPE_DICT.__get__(base) for base in _TYPE_MRO.__get__(tp))


def _atomic_tuple(obj: object) -> bool:
    """A tuple of values whose death nothing observes (the gc untracks such tuples)."""
    if type(obj) is not tuple:
        return False
    return all(type(item) in _ATOMIC or _atomic_tuple(item) for item in obj)


def _weakrefable(obj: object) -> bool:
    return _takes_weakrefs(type(obj))


class Slot:
    """An attribute of an object, or a module's global, that tests rebind."""

    __slots__ = ("failed", "idle", "label", "name", "owner")

    def __init__(self, owner: object, name: str) -> None:
        self.owner = weakref.ref(owner)
        self.name = name
        #: Tests in a row before which its value could not be noted, and that it did not settle.
        self.failed = 0
        self.idle = 0
        if issubclass(type(owner), types.ModuleType):
            self.label = f"{_module_namespace(owner).get('__name__', '?')}.{name}"
        elif issubclass(type(owner), type):
            self.label = f"{type_name(owner)}.{name}"  # type: ignore[arg-type]
        else:
            self.label = f"{type_name(type(owner))}.{name}"

    def value(self) -> object:
        owner = self.owner()
        namespace = _namespace(owner) if owner is not None else None
        return None if namespace is None else namespace.get(self.name)


def _same_entry(one: Slot, other: Slot) -> bool:
    """Two slots on one namespace's entry (objects sharing a ``__dict__``, the Borg pattern)."""
    first, second = one.owner(), other.owner()
    if first is None or second is None or one.name != other.name:
        return False
    return first is second or _namespace(first) is _namespace(second)


class Noted:
    """One slot's value before a test, and what dies with it."""

    __slots__ = ("counts", "held", "root_weak", "slot", "weak")

    def __init__(
        self, slot: Slot, weak: list[weakref.ref[Any]], held: list[object], counts: dict[str, int], root_weak: bool
    ) -> None:
        self.slot = slot
        self.weak = weak
        self.held = held
        self.counts = counts
        #: The value itself is ``weak[0]`` (else ``held[0]``).
        self.root_weak = root_weak

    def died(self) -> bool:
        """Everything noted died, or dies when we let go of it."""
        if any(ref() is not None for ref in self.weak):
            return False
        if not self.held:
            return True
        with Quiet():
            return not any(_outside(self.held, []))


class Replacement:
    """After a test: what died at the slots, and the ids of their new values' structures.

    Ids only: what the classification's frames refer to is taken as in flight,
    and the new values' objects are the very ones to judge.
    """

    __slots__ = ("died", "labels", "members", "slots")

    def __init__(self) -> None:
        self.died: collections.Counter[str] = collections.Counter()
        self.members: set[int] = set()
        self.labels: list[str] = []
        self.slots: list[Slot] = []

    def own(self) -> tuple[object, ...]:
        return (self, self.died, self.members, self.labels, self.slots)

    def settles(self, suspects: Iterable[object]) -> str:
        """The slots replaced, if every suspect is a new value's and no type grew; else ""."""
        if not self.died:
            return ""
        kept: collections.Counter[str] = collections.Counter()
        members = self.members
        for obj in suspects:
            if id(obj) not in members:
                return ""
            kept[type_name(type(obj))] += 1
        if not kept or any(n > self.died[name] for name, n in kept.items()):
            return ""
        for slot in self.slots:
            slot.idle = 0
        return ", ".join(self.labels)

    def clear(self) -> None:
        self.members.clear()
        self.died.clear()
        self.slots.clear()


class Slots:
    """The session's slots and what was noted of their values before the current test."""

    def __init__(self) -> None:
        self.slots: list[Slot] = []
        self.passes = LEARN_PASSES
        self.noted: list[Noted] = []
        #: Slots set aside because noting them cost a walk before each test for nothing
        #: (``_rest``): a later test that rebinds one takes it up again without a pass.
        self.resting: list[Slot] = []
        #: The type names of what a rerun kept, when the lookup found no slot holding it:
        #: tests keeping the same kinds of objects (a bounded cache's entries, replaced
        #: in place) would spend every pass on it.  Not when they are all plain
        #: containers: a slot's value is most often a list or a dict.
        self.fruitless: set[tuple[str, ...]] = set()

    def can_learn(self) -> bool:
        return len(self.slots) < MAX_SLOTS and (self.passes > 0 or bool(self.resting))

    def note(self) -> None:
        """Before a test (before the heap is frozen): each slot's value and what dies with it."""
        if not self.slots:  # every test of a suite that learned none: nothing made
            return
        self._rest()
        if not self.slots:
            return
        self.noted = []
        with Quiet():
            for slot in self.slots:
                noted = self._note(slot)
                if noted is not None:
                    self.noted.append(noted)

    def _rest(self) -> None:
        """Set aside the slots that cost a walk before each test for nothing.

        A slot whose value could not be noted before several tests in a row (a
        cache filled in place, too large or shared), or that settled none of
        several tests in a row, rests; a rerun that finds its value replaced
        takes it up again (``learn``).
        """
        tired = [slot for slot in self.slots if slot.failed >= RETIRE_AFTER or slot.idle >= RETIRE_AFTER_IDLE]
        for slot in tired:
            self.slots.remove(slot)
            if len(self.resting) < MAX_RESTING:
                self.resting.append(slot)
        tired.clear()

    @staticmethod
    def _note(slot: Slot) -> Noted | None:
        slot.failed += 1  # back to 0 below, once noted
        members = [slot.value()]  # held by the list alone while references are counted
        if members[0] is None or not _is_tracked(members[0]) or not exclusive_structure(members, 1):
            members.clear()
            return None
        weak: list[weakref.ref[Any]] = []
        held: list[object] = []
        root_weak = _weakrefable(members[0])
        for member in members:
            if _weakrefable(member):
                try:
                    # With a callback: a new reference, never the object's shared one
                    # (a member itself, in a structure that refers to its own owner).
                    weak.append(weakref.ref(member, _unshared))
                    continue
                except TypeError:
                    return None
            # Exactly these types (a subclass may have a finalizer); a weak reference
            # only without a callback (held, it would outlive its referent and call it).
            if type(member) not in _HOLDABLE or (type(member) is weakref.ref and member.__callback__ is not None):
                return None
            held.append(member)
        if not _safe_to_hold(held, {id(ref()) for ref in weak}):
            return None
        counts = collections.Counter(type_name(type(member)) for member in members)
        members.clear()
        slot.failed = 0
        return Noted(slot, weak, held, dict(counts), root_weak)

    def forget(self) -> None:
        """After the verdict: let go of what was noted (what is held dies now).

        A slot that did not settle the test (its value left in place, or the test
        not settled by it) is idle; after RETIRE_AFTER_IDLE such tests in a row,
        it rests (``note``): a module's cache filled in place, an event loop
        policy some tests set.  Noting it cost a walk of its value before every
        test, and a rerun takes it up again (``learn``).
        """
        if not self.noted:  # every test of a suite that learned no slot
            return
        for noted in self.noted:
            noted.slot.idle += 1  # back to 0 if it settles this test (``Replacement.settles``)
            noted.held.clear()
            noted.weak.clear()
        self.noted.clear()  # not a new list: made after the freeze, it would be a new object

    def replacement(self) -> Replacement | None:
        """After a test: what died at the slots, and the structures of their new values.

        Lets go of what was noted: reruns must see what the test frees die (a
        cache's evicted entries), as they would without gcguard's hold on them.
        """
        if not self.noted:
            return None
        found = Replacement()
        try:
            self._replacement(found)
        finally:
            self.forget()
        return found if found.died else None

    def _replacement(self, found: Replacement) -> None:
        with Quiet():
            for noted in self.noted:
                if not noted.died():
                    continue
                found.died.update(noted.counts)
                found.labels.append(noted.slot.label)
                found.slots.append(noted.slot)
                members = [noted.slot.value()]  # held by the list alone while counted
                if members[0] is not None and _is_tracked(members[0]) and exclusive_structure(members, 1):
                    found.members.update(map(id, members))
                members.clear()

    def learn(self, kept: list[object], young: set[int], ours: set[int]) -> None:
        """Find the slot that holds what a rerun kept in place of the first run's.

        ``kept``: the rerun's new objects; ``young``: the ids of all new objects;
        ``ours``: ids of our own objects.  Called with the heap unfrozen (one pass).
        """
        if len(self.slots) >= MAX_SLOTS or not kept or len(kept) > MAX_LEARNED:
            return
        inner = {id(ref) for obj in kept for ref in _get_referents(obj)}
        roots = [obj for obj in kept if id(obj) not in inner]
        if not roots or self._take_up(roots):
            roots.clear()
            return
        kinds = tuple(sorted({type_name(type(obj)) for obj in kept}))
        if self.passes <= 0 or kinds in self.fruitless:
            roots.clear()
            return
        self.passes -= 1
        learned = len(self.slots)
        args = tuple(roots)  # passed on as it is: the call makes no other tuple of them
        ours = ours | {id(kept), id(roots), id(args)}
        holders: dict[int, list[object]] = {}
        for ref in _get_referrers(*args):
            key = id(ref)
            if key in young or key in ours or type(ref) is types.FrameType:
                continue
            held = {id(obj) for obj in _get_referents(ref)}
            for root in roots:
                if id(root) in held:
                    holders.setdefault(id(root), []).append(ref)
        self._place(roots, holders, ours)
        holders.clear()
        roots.clear()
        plain = all(type(obj) in _HOLDABLE for obj in kept)
        if len(self.slots) == learned and not plain and len(self.fruitless) < MAX_FRUITLESS:
            self.fruitless.add(kinds)

    def _place(self, roots: list[object], holders: dict[int, list[object]], ours: set[int]) -> None:
        """Add the slot each root is in, when one older object holds it (``holders``)."""
        pending: list[tuple[dict[str, Any], object]] = []  # (a namespace, its root): owner not known yet
        for root in roots:
            found = holders.get(id(root), [])
            if len(found) == 2:  # an object and its own dict (3.13: inline values and the dict made of them)
                namespaces = [_namespace(holder) for holder in found]
                found = [h for h in found if not any(h is namespace for namespace in namespaces)]
            if len(found) != 1:
                continue
            holder = found[0]
            if type(holder) is not dict:
                self._add(self._slot_of(holder, root))
            elif (module := _module_of(holder)) is not None:
                self._add(self._slot_of(module, root))
            else:
                pending.append((holder, root))
        if pending and self.passes > 0 and len(self.slots) < MAX_SLOTS:
            # Objects' or classes' own namespaces: one more pass finds their owners.
            self.passes -= 1
            owners = _owners_of([holder for holder, _ in pending], ours | {id(pending)})
            for holder, root in pending:
                owner = owners.get(id(holder))
                if owner is not None:
                    self._add(self._slot_of(owner, root))
            owners.clear()
        pending.clear()

    def _take_up(self, roots: list[object]) -> bool:
        """Take up again a resting slot whose value is one of ``roots`` (no pass needed)."""
        for slot in self.resting:
            value = slot.value()
            found = value is not None and any(value is root for root in roots)
            del value
            if found:
                self.resting.remove(slot)
                slot.idle = slot.failed = 0
                self.slots.append(slot)
                return True
        return False

    def _add(self, slot: Slot | None) -> None:
        if (
            slot is not None
            and len(self.slots) < MAX_SLOTS
            and not any(_same_entry(known, slot) for known in self.slots)
        ):
            self.slots.append(slot)

    def _slot_of(self, owner: object, root: object) -> Slot | None:
        """The slot ``owner`` (a module, an object or a class) keeps ``root`` in: one of its
        globals or attributes."""
        namespace = _namespace(owner)
        if namespace is None:
            return None
        names = [key for key, value in namespace.items() if value is root and type(key) is str]
        if len(names) != 1 or not _weakrefable(owner):
            return None
        try:
            return Slot(owner, names[0])
        except TypeError:
            return None
