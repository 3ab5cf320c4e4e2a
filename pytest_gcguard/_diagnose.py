"""Why is it alive?  Sample reprs, back-reference chains and graphs for a verdict.

Runs only for a test that is being reported.  The heap is unfrozen first:
``gc.get_referrers`` (and so objgraph) cannot see frozen referrers.
"""

from __future__ import annotations

import collections
import sys
import types
import weakref
from collections.abc import Callable, Sequence
from itertools import compress
from typing import cast

from . import _graph
from ._heap import (
    _LRU_WRAPPER,
    _TYPE_DICT,
    Quiet,
    _freeze,
    _get_objects,
    _get_referents,
    _get_referrers,
    _unfreeze,
    instance_dicts,
    is_lru_table,
    read_attribute,
    registered_class,
    subclass_registry_of,
    type_module,
    type_mro,
    type_name,
    type_namespace,
)
from ._identity import _module_namespace
from ._report import (
    CHAIN_DEPTH,
    Leak,
    Verdict,
    _module_dict,
    allocation_site,
    format_chain,
    root_text,
    safe_repr,
    unreferenced_note,
)
from ._settings import Settings

_getrefcount = sys.getrefcount

#: Chains are searched for at most this many leaked types per test.
MAX_CHAINS = 5
#: Referrers followed per level of a chain search: a class or a shared dict
#: can have thousands, and each level costs one pass over the heap per 100.
MAX_FRONTIER = 200
#: Levels a chain that stops at an older object climbs to reach a module or
#: class: a value cached in a thread-local's list (Hypothesis's strategy cache)
#: is ten levels below its module.
CLIMB_DEPTH = 12


def _is_root(obj: object) -> bool:
    return issubclass(type(obj), (types.ModuleType, type))


class ChainMemo:
    """Chains from a module or class down to an older object, found once and reused.

    When many tests leak into the same old container (a registry, a cache
    dict), each test's chain ends in the same climb from that container up to
    a module or class: up to eight passes over the heap, the same result every
    time.  The climb found for one test is kept and, for a later test that
    reaches the same container, followed again from the root down, link by
    link (``gc.get_referents``): it is reused only if every link still holds,
    so a reused chain is a true path in the heap as it is now.

    It holds nothing strongly (the root by weak reference, the links by id:
    the walk from the root finds them again), and keeps no climb that passes a
    container with a declared bound: those are what decide whether growth is
    set aside, so a chain through one is always searched afresh.  One memo per
    session (``plugin.GcGuard``).
    """

    #: Climbs kept at most (the oldest is dropped first).
    MAX_CHAINS = 1024
    #: Containers offered to the next search as known holders (``holders``).
    KNOWN_HOLDERS = 8

    def __init__(self) -> None:
        self._climbs: dict[int, tuple[weakref.ref[object], tuple[int, ...]]] = {}
        #: Climbs reused and climbs searched (for the benchmarks and tests).
        self.reused = 0
        self.searched = 0
        #: Passes over the whole heap a search did without, its older referrers known.
        self.passes_spared = 0

    def __len__(self) -> int:
        return len(self._climbs)

    def climb(self, holder: object) -> list[object] | None:
        """A verified ``[root, ..., holder]`` kept for ``holder``, or None."""
        path = self._walk(id(holder))
        if path is None or path[-1] is not holder:
            if path is not None:
                path.clear()
                del self._climbs[id(holder)]
            return None
        self.reused += 1
        return path

    def _walk(self, key: int) -> list[object] | None:
        """The climb kept for the container at id ``key``, followed from its root down
        link by link: ``[root, ..., holder]``; None if nothing is kept for ``key``, and
        dropped if a link broke or the path now passes a declared bound."""
        entry = self._climbs.get(key)
        if entry is None:
            return None
        path = self._follow(entry, key)
        if path is None or any(declared_capacity(n) is not None for n in path):
            del self._climbs[key]
            if path is not None:
                path.clear()
            return None
        return path

    @staticmethod
    def _follow(entry: tuple[weakref.ref[object], tuple[int, ...]], key: int) -> list[object] | None:
        """``[root, ..., the object at id key]`` along ``entry``'s links, or None if one broke."""
        ref, links = entry
        node = ref()
        path: list[object] = []
        if node is not None:
            path.append(node)
            for link in (*links, key):
                node = next((r for r in _get_referents(node) if id(r) == link), None)
                if node is None:
                    break
                path.append(node)
        if node is None:
            path.clear()
            return None
        return path

    def holders(self) -> list[object]:
        """The older containers the latest kept climbs end at (``KNOWN_HOLDERS`` at most),
        each reached again from its root: where the next test's leak is likely held."""
        found: list[object] = []
        for key in list(self._climbs)[-self.KNOWN_HOLDERS :]:
            # Followed only (no capacity read, which runs a container's ``__len__``):
            # a holder only narrows where a pass looks; the climb is checked when reused.
            path = self._follow(self._climbs[key], key)
            if path is not None:
                found.append(path[-1])
                path.clear()
        return found

    def remember(self, path: list[object]) -> None:
        """Keep ``path`` (``[root, ..., holder]``, just searched) for the next test."""
        self.searched += 1
        if len(path) < 2 or not _is_root(path[0]) or any(declared_capacity(n) is not None for n in path):
            return
        try:
            ref = weakref.ref(path[0])
        except TypeError:
            return
        holder = id(path[-1])
        self._climbs.pop(holder, None)
        if len(self._climbs) >= self.MAX_CHAINS:
            del self._climbs[next(iter(self._climbs))]
        self._climbs[holder] = (ref, tuple(id(node) for node in path[1:-1]))


class _Search:
    """One target's breadth-first search up its referrers (see ``backref_chains``)."""

    __slots__ = ("chain", "frontier", "parent", "referred", "target")

    def __init__(self, target: object) -> None:
        self.target = target
        self.parent: dict[int, object] = {id(target): None}
        self.frontier: list[object] = [target]
        self.chain: list[object] | None = None
        #: Something other than a frame refers to the target (known after the first step).
        self.referred = False

    def step(
        self, referrers: list[object], predicate: Callable[[object], bool], ignore: set[int], ours: set[int]
    ) -> None:
        """Take one level: the referrers of this level's frontier, from one pass over the heap.

        ``referrers`` may hold referrers of other searches' frontiers too: only
        those that refer to this search's frontier count, in heap order, so the
        result is the one this search would find alone.
        """
        parent = self.parent
        first = len(parent) == 1  # the frontier is the target alone
        by_id = {id(obj): obj for obj in self.frontier}
        following: list[object] = []
        matches: list[object] = []
        ours.update((id(by_id), id(following), id(matches)))
        for ref in referrers:
            key = id(ref)
            if key in parent or key in ignore or key in ours:
                continue
            child = next((by_id[id(r)] for r in _get_referents(ref) if id(r) in by_id), None)
            if child is None:
                continue
            if first and type(ref) is not types.FrameType:
                self.referred = True
            parent[key] = child
            if predicate(ref):
                matches.append(ref)
            elif len(following) < MAX_FRONTIER:
                following.append(ref)
        by_id.clear()
        found = _best_match(matches, parent)
        matches.clear()
        if found is not None:
            chain = [found]
            node = parent[id(found)]
            while node is not None:
                chain.append(node)
                node = parent[id(node)]
            del found, node
            ours.add(id(chain))
            self.chain = chain
            following.clear()
        ours.add(id(following))
        self.frontier = following

    def result(self) -> list[object]:
        self.parent.clear()
        self.frontier = []
        return self.chain if self.chain is not None else [self.target]


def backref_chains(
    targets: Sequence[object],
    predicate: Callable[[object], bool],
    max_depth: int,
    ignore: set[int],
    thaw: Callable[[], None] | None = None,
    referred: set[int] | None = None,
    memo: ChainMemo | None = None,
) -> list[list[object]]:
    """For each target, a shortest chain of references from an object matching ``predicate``.

    objgraph's ``find_backref_chain`` finds the same chain, but runs a full
    collection and one ``gc.get_referrers`` call (a pass over the whole heap)
    per object it visits: minutes per test on a large heap.  This asks for the
    referrers of a whole level at once, and of every target's level in the
    same pass: one pass per level (``max_depth`` at most), however many
    targets, with each target's level cut to ``MAX_FRONTIER`` objects.  A
    target that nothing matches within ``max_depth`` levels gets ``[target]``.
    ``referred`` gets the ids of the targets that something other than a frame
    refers to.

    ``thaw``: the heap is frozen, and this unfreezes it.  Before that, the
    levels are first searched among the new objects alone (a pass over the
    unfrozen objects only, which is what the test made), which predicts each
    level's frontier when no older object refers to it; then several
    predicted levels share one pass over the whole heap (``_PassPlan``).
    Each level is still taken by ``_Search.step`` from a pass that holds all
    of its referrers, so the chains are the ones found level by level; a
    prediction that turns out wrong (an older frame in a level) only ends the
    sharing.  And while the heap is still frozen, a pass's referrers are taken
    from the new objects alone when the references to the pass's objects show
    that one of the older containers the ``memo`` knows (earlier tests' leaks
    were held there) is their only older referrer (``_referrers_known``): the
    same referrers, in the same order, as the pass over the whole heap.  The
    heap is thawed only for a pass that needs it; the caller thaws it after.
    """
    searches = [_Search(target) for target in targets]
    ours = {id(sys._getframe()), id(searches), id(targets)}  # 3.10: a frame is a referrer
    for search in searches:
        ours.update((id(search), id(search.parent), id(search.frontier)))
    plan: _PassPlan | None = None
    known: list[object] = []
    ours.add(id(known))
    if thaw is not None:
        plan = _PassPlan(targets, predicate, max_depth, ignore, ours)
        if memo is not None:
            known.extend(holder for holder in memo.holders() if predicate(holder))
        if not known:
            thaw()
            thaw = None
    depth = 0
    while depth < max_depth:
        active = [search for search in searches if search.chain is None and search.frontier]
        if not active:
            break
        ours.add(id(active))
        if plan is not None:
            levels = plan.levels_from(depth, active)
            level = plan.objects(depth, levels, active)
        else:
            levels = 1
            level = tuple(obj for search in active for obj in search.frontier)
        referrers, thaw = _pass(level, known, ours, thaw, memo)
        for _ in range(levels):
            for search in active:
                search.step(referrers, predicate, ignore, ours)
            depth += 1
            active = [search for search in active if search.chain is None and search.frontier]
            ours.add(id(active))
            if plan is not None and not plan.holds(depth, active):
                plan = None  # a level differs from its prediction: one pass per level from here
                break
            if not active or depth >= max_depth:
                break
        del referrers, level, active
    if plan is not None:
        plan.clear()
    known.clear()
    if referred is not None:
        referred.update(id(search.target) for search in searches if search.referred)
    chains = [search.result() for search in searches]
    searches.clear()
    return chains


def _referrers_of(objects: tuple[object, ...], ours: set[int]) -> list[object]:
    """One pass over the heap for ``objects``' referrers; the argument tuple and the
    result are ours (3.13 counts the argument tuple among the referrers)."""
    ours.add(id(objects))
    referrers = _get_referrers(*objects)
    ours.add(id(referrers))
    return referrers


def _pass(
    level: tuple[object, ...],
    known: list[object],
    ours: set[int],
    thaw: Callable[[], None] | None,
    memo: ChainMemo | None,
) -> tuple[list[object], Callable[[], None] | None]:
    """The referrers of ``level``, and ``thaw`` if the heap is still frozen after: taken
    from the new objects when they and a known container account for every reference
    (``_referrers_known``), else from a pass over the whole heap, thawed first."""
    if thaw is not None:
        referrers = _referrers_known(level, known, ours)
        if referrers is not None:
            if memo is not None:
                memo.passes_spared += 1
            return referrers, thaw
        thaw()  # this pass needs the older objects: every later one too
    return _referrers_of(level, ours), None


def _references_to(referrers: Sequence[object], index: dict[int, int]) -> list[int]:
    """Per position in ``index`` (id: position), how many references ``referrers`` hold to it."""
    counts = [0] * len(index)
    for ref in referrers:
        for n in map(index.get, map(id, _get_referents(ref))):
            if n is not None:
                counts[n] += 1
    return counts


def _referrers_known(objects: tuple[object, ...], known: list[object], ours: set[int]) -> list[object] | None:
    """While the heap is frozen: the referrers a pass over the whole heap would find for
    ``objects``, if one of the ``known`` older containers holds every reference to them
    that new objects do not; else None (the pass is needed).

    ``gc.get_referrers`` walks only the new objects while the heap is frozen.  What
    older objects hold of each object is its refcount less the references from new
    objects and the ones this function holds, the same for each object as for a probe
    held alike (a new list); references from our callers' running frames, which the
    gc does not show, can only add to it.  When a known container holds exactly that
    many, it is the only older referrer, and the referrers are the new ones (first,
    as the pass lists them) and that container.  With two or more such containers
    their order in the heap is unknown, and the pass is done.  The counts and the
    pass are taken with no collection and no thread switch between them, and the
    counts are read again after: a reference another thread (or a finalizer) adds
    or drops meanwhile refuses the shortcut.  This rests on each type's
    ``tp_traverse`` visiting exactly the references it owns, as the gc itself does.
    """
    if not known:
        return None
    # Each once (searches share objects), and last the probe, held by ``work`` alone.
    work = (*{id(obj): obj for obj in objects}.values(), [])
    ours.update((id(objects), id(work), id(work[-1])))
    index = {id(obj): n for n, obj in enumerate(work)}
    # The counts and the pass must see the same references: no collection (finalizers,
    # gc.callbacks) and no thread switch between them, and the counts read again after.
    with Quiet():
        counts = [_getrefcount(obj) for obj in work]
        young = _referrers_of(work, ours)
        again = [_getrefcount(obj) for obj in work]
    for n in map(index.get, map(id, young)):  # a level's object that refers to another
        if n is not None:
            again[n] -= 1
    if again != counts:
        ours.discard(id(work[-1]))
        index.clear()
        return None
    held = _references_to(young, index)
    base = counts[-1] - held[-1]
    older = [count - base - n for count, n in zip(counts, held, strict=True)]
    holders: list[object] = []
    ours.add(id(holders))
    for holder in known:
        holds = _references_to((holder,), index)
        if any(holds):
            holders.append(holder)
            older = [left - n for left, n in zip(older, holds, strict=True)]
    found = None
    if len(holders) <= 1 and not any(older[:-1]):
        found = young
        found.extend(holders)
    ours.discard(id(work[-1]))
    holders.clear()
    index.clear()
    return found


#: Objects whose referrers one shared pass asks for at most: ``gc.get_referrers``
#: compares every reference in the heap with each of them, so a pass for 32
#: objects costs about what two passes for one do.
PASS_OBJECTS = 32


class _PassPlan:
    """Each search's frontier level by level, predicted from the new objects alone.

    Made while the heap is frozen: ``gc.get_referrers`` then walks only the
    unfrozen objects, so the searches run to ``max_depth`` for the cost of
    the test's own objects.  Only an older object ends a search early, and it
    is found by the passes over the whole heap; so the prediction for a level
    holds as long as no older object that is not a match (a frame) turned up.
    """

    def __init__(
        self,
        targets: Sequence[object],
        predicate: Callable[[object], bool],
        max_depth: int,
        ignore: set[int],
        ours: set[int],
    ) -> None:
        shadows = [_Search(target) for target in targets]
        #: Per target, its frontier at each depth (depth 0: the target).
        self.frontiers: list[list[list[object]]] = [[shadow.frontier] for shadow in shadows]
        ours.update((id(self), id(shadows), id(self.frontiers)))
        ours.update(id(levels) for levels in self.frontiers)
        for shadow in shadows:
            ours.update((id(shadow), id(shadow.parent), id(shadow.frontier)))
        self.max_depth = max_depth
        self._index = {id(target): i for i, target in enumerate(targets)}
        ours.add(id(self._index))
        for _ in range(max_depth):
            active = [shadow for shadow in shadows if shadow.chain is None and shadow.frontier]
            if not active:
                break
            ours.add(id(active))
            level = tuple(obj for shadow in active for obj in shadow.frontier)
            referrers = _referrers_of(level, ours)
            for shadow in active:
                shadow.step(referrers, predicate, ignore, ours)
                if shadow.frontier:
                    self.frontiers[self._index[id(shadow.target)]].append(shadow.frontier)
            del referrers, level, active
        for shadow in shadows:
            shadow.parent.clear()  # it holds the new objects it saw
            shadow.chain = None
        shadows.clear()

    def _predicted(self, search: _Search, depth: int) -> list[object]:
        levels = self.frontiers[self._index[id(search.target)]]
        return levels[depth] if depth < len(levels) else []

    def levels_from(self, depth: int, active: list[_Search]) -> int:
        """How many levels, from ``depth``, one pass can serve: at least one, then
        more while the predicted frontiers add up to at most ``PASS_OBJECTS``."""
        levels = total = 0
        while depth + levels < self.max_depth:
            size = sum(len(self._predicted(search, depth + levels)) for search in active)
            if levels and (not size or total + size > PASS_OBJECTS):
                return levels
            total += size
            levels += 1
        return max(levels, 1)

    def objects(self, depth: int, levels: int, active: list[_Search]) -> tuple[object, ...]:
        """The objects whose referrers the pass for ``levels`` levels from ``depth`` asks for."""
        return tuple(obj for k in range(levels) for search in active for obj in self._predicted(search, depth + k))

    def holds(self, depth: int, active: list[_Search]) -> bool:
        """Whether each active search's frontier at ``depth`` is the predicted one."""
        for search in active:
            predicted = self._predicted(search, depth)
            if len(predicted) != len(search.frontier) or any(
                a is not b for a, b in zip(predicted, search.frontier, strict=True)
            ):
                return False
        return True

    def clear(self) -> None:
        for levels in self.frontiers:
            for frontier in levels:
                frontier.clear()
            levels.clear()
        self.frontiers.clear()


#: Attribute names by which a container declares how many entries it keeps at most.
_CAPACITY_NAMES = ("maxsize", "max_size", "maxlen", "capacity")
#: A declared bound above this is no bound for a test run (``lru_cache(maxsize=10**9)``):
#: such a container grows for the whole run, and its growth is reported.
MAX_DECLARED_BOUND = 100_000
#: Objects a bounded-cache reachability walk may visit before it gives up.
MAX_REACH = 200_000


def _own_attributes(obj: object) -> dict[str, object]:
    """An object's instance attributes and slots, read without running its code."""
    found: dict[str, object] = {}
    try:
        attrs = object.__getattribute__(obj, "__dict__")
    except Exception:
        attrs = None
    if type(attrs) is dict:
        found.update(attrs)
    for klass in type_mro(type(obj)):
        for name, member in type_namespace(klass).items():
            if type(member) is types.MemberDescriptorType and name not in found:
                try:
                    found[name] = member.__get__(obj, type(obj))
                except Exception:
                    continue
    return found


def declared_capacity(obj: object) -> tuple[int, int] | None:
    """``(most entries, entries now)`` of a container that declares a bound, else None.

    A ``deque`` with ``maxlen``, an ``lru_cache`` with ``maxsize``, or any object
    with a positive whole-number ``maxsize``/``max_size``/``maxlen``/``capacity``
    attribute (``_Cache__maxsize`` too) and a ``len()`` within it: cachetools,
    Hypothesis's caches, most hand-written LRUs.
    """
    tp = type(obj)
    try:
        if tp is collections.deque:
            maxlen = obj.maxlen  # type: ignore[attr-defined]
            return None if maxlen is None or maxlen > MAX_DECLARED_BOUND else (maxlen, len(obj))  # type: ignore[arg-type]
        if tp is _LRU_WRAPPER:
            info = obj.cache_info()  # type: ignore[attr-defined]
            return (info.maxsize, info.currsize) if info.maxsize and info.maxsize <= MAX_DECLARED_BOUND else None
        if issubclass(tp, (type, types.ModuleType)) or type_module(tp) == "builtins":
            return None
        for name, value in _own_attributes(obj).items():
            if (
                name.rsplit("__", 1)[-1].lstrip("_").lower() in _CAPACITY_NAMES
                and type(value) is int
                and 0 < value <= MAX_DECLARED_BOUND
            ):
                size = len(obj)  # type: ignore[arg-type]
                if type(size) is int and 0 <= size <= value:
                    return value, size
    except Exception:
        return None
    return None


#: Levels of older objects (the cache's own lists, dicts, thread-locals) a walk
#: from a bounded cache goes through to reach its entries.
CACHE_DEPTH = 4
#: Further levels of older objects, past the cache's own, that a walk goes
#: through into what an older entry keeps (the entry object, the value it
#: caches, that value's ``__dict__``): an attribute the cached value builds on
#: first use (Hypothesis's ``LazyStrategy`` wraps its strategy the first time it
#: is drawn from) is as bounded as the cache.
ENTRY_DEPTH = 3
#: Older objects a walk from a cache never goes into: the ways out into the rest of the heap.
_NOT_INTO = (
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.ModuleType,
    types.CodeType,
    types.FrameType,
    type,
)


def _is_bounded(obj: object) -> bool:
    return declared_capacity(obj) is not None


_TABLE_TYPES = (dict, list, collections.OrderedDict, collections.deque)


def _is_table(obj: object, size: int) -> bool:
    """``obj`` is a cache's table: a dict, list or deque as long as the cache."""
    return size > 0 and type(obj) in _TABLE_TYPES and len(obj) == size  # type: ignore[arg-type]


#: Containers a test can add to after they were made (a tuple cannot).
_GROWABLE = (dict, list, set, collections.deque)


#: What a class statement puts in a class's namespace.
_CLASS_BODY = (
    property,
    types.FunctionType,
    classmethod,
    staticmethod,
    types.GetSetDescriptorType,
    types.MemberDescriptorType,
    type,
)


def _accumulates(refs: list[object], young: set[int], latest: set[int]) -> bool:
    """A container made before the last run (``refs``: what it holds) holds objects of
    one type that the last run made and at least two an earlier run made: it gains them
    run after run."""
    last = {type(ref) for ref in refs if id(ref) in latest}
    if not last:
        return False
    earlier = collections.Counter(type(ref) for ref in refs if id(ref) in young and id(ref) not in latest)
    return any(earlier[tp] >= 2 for tp in last)


def _reachable(
    start: object,
    young: set[int],
    structure: set[int] | None = None,
    size: int = 0,
    latest: set[int] | None = None,
) -> set[int]:
    """Ids of the new objects the bounded cache ``start`` holds (empty past MAX_REACH);
    ``structure`` gets the ids of the older objects the walk went through (the cache's own).

    The walk goes through the cache's own older objects, at most CACHE_DEPTH
    levels and never into functions, modules or classes, and then through new
    objects only: an older object that an entry refers to (a registry, a
    module's namespace) is not the cache's, nor is what it holds.

    Past the cache's own levels, up to ENTRY_DEPTH more levels of older objects
    (an older entry and the value it caches) are followed too, but a new object
    counts there only as one an older object built once: an older object that
    refers to two new objects of one type (a list or dict in an entry that each
    run appends to) grows without the cache's bound, and nothing it refers to
    is the cache's.  The same holds from the older entries on, at any depth:
    what an ``lru_cache`` returned (its referents, but its table), and what a
    container as long as the cache (``size`` entries: its table, or a bounded
    ``deque`` itself) holds.  A dict
    an ``lru_cache`` returned that a test adds to on every run is no entry of
    the cache's.  Nor is a new dict, list or set in an entry, made before the
    last run, that holds objects of one type from the last run (``latest``)
    and two or more from earlier ones: it grows run after run (an empty dict,
    untracked until the first run's entry, is new to the gc).  A tuple, or a
    container the last run made, that refers to what earlier runs cached is
    what a cache's entries share (Hypothesis's strategies).
    """
    seen = {id(start)}
    if structure is not None:
        structure.add(id(start))
    lru = type(start) is _LRU_WRAPPER
    # (object, levels of older objects above it, whether it is an entry or in one,
    # whether it is the cache's table); None: a new object, from which the walk goes
    # through new objects only.  An ``lru_cache`` refers to its results (and its
    # table, the dict of its links); a ``deque(maxlen=...)`` is its own table.
    stack: list[tuple[object, int | None, bool, bool]] = [(start, 0, False, lru or _is_table(start, size))]
    #: Ids of the namespaces of the classes met (``_CLASS_BODY``).
    namespaces: set[int] = set()
    while stack:
        obj, depth, in_entry, table = stack.pop()
        refs = _get_referents(obj)
        # An object's own __dict__ is part of it, even when it was made after
        # ``young`` was listed (a repr read it) or, from 3.12, is not among its
        # referents; it is never a table (a cache's own attributes, as many as its
        # entries).
        namespace = instance_dicts([obj])
        own = namespace if depth is None or depth >= CACHE_DEPTH else []
        refs.extend(own)
        if structure is not None and own:
            structure.add(id(own[0]))  # made after ``young`` was listed, maybe: part of its object
        growing = False
        if issubclass(type(obj), type):
            namespaces.update(map(id, _get_referents(_TYPE_DICT.__get__(obj))))
        if depth is not None and (depth > CACHE_DEPTH or in_entry):
            kinds = {id(ref): type(ref) for ref in refs if id(ref) in young}  # a dict may be listed twice
            growing = len(set(kinds.values())) < len(kinds)
            del kinds
        elif (
            depth is None
            and in_entry
            and latest
            and issubclass(type(obj), _GROWABLE)  # a Counter, a dict subclass of the code's
            and id(obj) not in latest
        ):
            # In a class's namespace, what its class statement makes is left out: which run
            # made each of those is not always told exactly (an evicted class's properties'
            # and getters' addresses go to the next class's, all at once).
            kept = [ref for ref in refs if not issubclass(type(ref), _CLASS_BODY)] if id(obj) in namespaces else refs
            growing = _accumulates(kept, young, latest)
            del kept
        # What a table (or an ``lru_cache`` itself) refers to is an entry.
        entries = in_entry or table
        for ref in refs:
            key = id(ref)
            if key in seen:
                continue
            if lru and obj is start:
                child_table = is_lru_table(ref)
            else:
                child_table = _is_table(ref, size) and not any(ref is d for d in namespace)
            if key in young or (own and ref is own[0] and depth is None):
                if growing:
                    continue
                seen.add(key)
                # From here on, new objects only.
                stack.append((ref, None, entries and not child_table, child_table))
            elif (
                depth is not None
                and depth < CACHE_DEPTH + ENTRY_DEPTH
                and not issubclass(type(ref), _NOT_INTO)
                and not _is_namespace(ref)
            ):
                seen.add(key)
                stack.append((ref, depth + 1, entries and not child_table, child_table))
                if structure is not None:
                    structure.add(key)
            else:
                seen.add(key)
            if len(seen) > MAX_REACH:
                return set()
        del refs, own, namespace
    return seen


#: Weak references whose referent they die with: ``weakref.ref`` and the
#: ``WeakKeyDictionary``/``WeakValueDictionary`` entries' ``KeyedRef``.
_WEAK_REFERENCE_TYPES = frozenset({weakref.ReferenceType, weakref.KeyedRef})
_dereference = cast("Callable[[object], object]", weakref.ReferenceType.__call__)


def _weak_references_into(reach: set[int], latest: list[object]) -> list[int]:
    """Ids of the new weak references whose referent a bounded cache holds (``reach``).

    A registry that refers weakly to what the cache keeps (Hypothesis's lambda
    descriptions, keyed weakly by the cached lambdas; a base class's registry
    of its subclasses) loses each entry when the cache evicts its referent:
    that growth is bounded by the cache too.  Selected by type in C first: a
    large leak's million objects cost no Python step each.
    """
    found: list[int] = []
    for ref in compress(latest, map(_WEAK_REFERENCE_TYPES.__contains__, map(type, latest))):
        if id(ref) not in reach:
            target = _dereference(ref)
            if target is not None and id(target) in reach:
                found.append(id(ref))
            del target
    return found


#: Older holders that keep what they are given until it is removed (``kept_outside``).
_SEQUENCES = frozenset({list, set, collections.deque})


def _is_namespace(obj: object) -> bool:
    return type(obj) is dict and "__name__" in obj and "__builtins__" in obj


def _module_global_dicts() -> set[int]:
    """Ids of the dicts bound to a global name of a module outside the standard library.

    Such a dict (``REGISTRY = {}``) keeps what it is given for good, as a module
    list does.  The standard library's module dicts are caches and registries
    with their own rules (``linecache.cache``, ``sys.modules``), and dunder names
    are the interpreter's (``__warningregistry__``): neither is counted.
    """
    found: set[int] = set()
    stdlib = sys.stdlib_module_names
    modules: list[tuple[object, object]] = list(sys.modules.items())  # anything can be put there
    for name, module in modules:
        if type(name) is not str or name.partition(".")[0] in stdlib:
            continue
        if not issubclass(type(module), types.ModuleType):
            continue
        namespace = _module_namespace(module)
        if type(namespace) is not dict:
            continue
        for key, value in list(namespace.items()):
            if type(value) is dict and not (type(key) is str and key.startswith("__")):
                found.add(id(value))
    return found


class _CacheHolds:
    """Which leaked types' new objects bounded caches hold (see ``_bounded_holders``)."""

    def __init__(
        self,
        verdict: Verdict,
        latest: list[object],
        young: set[int],
        stayed: list[object],
        growth: Sequence[Sequence[object]] = (),
    ) -> None:
        self.verdict, self.latest, self.young, self.stayed = verdict, latest, young, stayed
        #: The new objects of every type, when a type filter leaves some out of ``latest``/``stayed``.
        self.growth = growth
        self.held: dict[str, str] = {}
        self.seen: set[int] = set()
        self.totals = collections.Counter(map(type, latest))
        self.latest_ids = set(map(id, latest))
        self.stayed_totals = collections.Counter(map(type, stayed))
        self.names: dict[str, list[type]] = {}
        for tp in self.totals | self.stayed_totals:
            self.names.setdefault(type_name(tp), []).append(tp)
        #: What all the caches seen hold together, and their labels.
        self.together: set[int] = set()
        self.labels: list[str] = []
        #: Ids of the older objects that make up the caches seen (``_reachable``).
        self.structure: set[int] = set()

    def add(self, cache: object) -> None:
        """Look at ``cache``, if it declares a bound and was not seen: what it holds."""
        if id(cache) in self.seen:
            return
        self.seen.add(id(cache))
        capacity = declared_capacity(cache)
        if capacity is None or self._is_growth(cache):
            return
        reach = _reachable(cache, self.young, self.structure, capacity[1], self.latest_ids)
        reach.update(_weak_references_into(reach, self.latest))
        label = f"{type_name(type(cache))} ({capacity[1]} of at most {capacity[0]} entries)"
        self.hold(reach, label)
        if reach:
            self.together |= reach
            self.labels.append(label)
        reach.clear()

    def _is_growth(self, cache: object) -> bool:
        """``cache`` is itself a new object of a leaked type: a bounded container the
        test makes and keeps on every run is part of the leak, not a cache that stops
        growing (compared by id, in C: no ``__eq__`` runs)."""
        key = id(cache)
        return any(key in map(id, objs) for objs in (self.latest, self.stayed, *self.growth))

    def hold(self, reach: set[int], label: str) -> None:
        """Mark the leaked types whose new objects ``reach`` holds (all, or all that stayed)."""
        latest, stayed, names, held = self.latest, self.stayed, self.names, self.held
        reached = collections.Counter(map(type, compress(latest, map(reach.__contains__, map(id, latest)))))
        kept = collections.Counter(map(type, compress(stayed, map(reach.__contains__, map(id, stayed)))))
        for leak in self.verdict.leaks:
            kinds = names.get(leak.name)
            if leak.name in held or not kinds:
                continue
            if (any(self.totals[tp] for tp in kinds) and all(reached[tp] == self.totals[tp] for tp in kinds)) or (
                any(self.stayed_totals[tp] for tp in kinds) and all(kept[tp] == self.stayed_totals[tp] for tp in kinds)
            ):
                held[leak.name] = label
        reached.clear()
        kept.clear()

    def rest(self, most: int) -> list[object]:
        """Up to ``most`` new objects of the types the caches seen hold some of, not all, that they do not hold."""
        together = self.together
        kinds = {
            tp for leak in self.verdict.leaks if leak.name not in self.held for tp in self.names.get(leak.name, [])
        }
        reached = collections.Counter(
            map(type, compress(self.latest, map(together.__contains__, map(id, self.latest))))
        )
        kinds = {tp for tp in kinds if 0 < reached[tp] < self.totals[tp]}
        reached.clear()
        # Spread over the types: a fixture's many young tuples must not take every
        # search from the one object of another type that a second cache holds.
        share = max(1, most // max(1, len(kinds)))
        taken: collections.Counter[type] = collections.Counter()
        found: list[object] = []
        for obj in self.latest:
            tp = type(obj)
            if tp in kinds and taken[tp] < share and id(obj) not in together:
                taken[tp] += 1
                found.append(obj)
                if len(found) >= most:
                    break
        return found

    def finish(self, ignore: set[int] | None = None) -> dict[str, str]:
        """The types held, with the types that only all the caches seen together hold,
        less those that an older object outside the caches keeps too (``kept_outside``)."""
        if len(self.labels) > 1 and len(self.together) <= MAX_REACH:
            counted = collections.Counter(self.labels)
            self.hold(
                self.together, " and ".join(label if n == 1 else f"{n} x {label}" for label, n in counted.items())
            )
        self.together.clear()
        if self.held and ignore is not None:
            for name, holder in self.kept_outside(ignore).items():
                del self.held[name]
                self.verdict.notes.append(
                    f"{name}: also held outside the bounded cache, by an older {holder}, which the cache's bound "
                    "does not bound: reported"
                )
        self.structure.clear()
        return self.held

    def kept_outside(self, ignore: set[int]) -> dict[str, str]:
        """Of the types held, those whose objects that stayed from an earlier run an older
        list, set or unbounded deque outside the caches' own also holds (name: its type).

        A cache keeps what it holds only until it evicts it; an older list that keeps
        the same objects keeps them for good (the code caches an object and also
        appends it to a registry).  What stayed is what tells them apart: a slot
        rebound on every run (the latest result) refers to the last run's object only.
        Only such sequences count, and dicts bound to a module's global name
        (``_module_global_dicts``): another dict outside the caches is as often an
        older object's ``__dict__`` with what it built on first use, or a registry
        by weak reference or by id (a class's subclasses), as a leak.  Classes and live weak
        references are never counted (what refers to a class is its instances and
        subclasses).  One pass over the heap, for a few objects of each type.
        """
        kinds = {tp: name for name in self.held for tp in self.names.get(name, []) if not issubclass(tp, type)}
        share = max(1, PASS_OBJECTS // max(1, len(self.held)))
        taken: collections.Counter[str] = collections.Counter()
        sample: list[object] = []
        for obj in compress(self.stayed, map(kinds.__contains__, map(type, self.stayed))):
            name = kinds[type(obj)]
            # A weak reference to what the cache keeps dies with its referent's entry
            # (a ``WeakKeyDictionary`` drops it): its older holder is no leak.
            # A class's own weak reference lives with the class, in its bases' registries
            # (no referrer the gc shows): one an older list also keeps outlives the class.
            if type(obj) in _WEAK_REFERENCE_TYPES and _dereference(obj) is not None and registered_class(obj) is None:
                continue
            if taken[name] < share:
                taken[name] += 1
                sample.append(obj)
        kinds.clear()
        if not sample:
            return {}
        names = {id(obj): type_name(type(obj)) for obj in sample}
        args = tuple(sample)
        ignore.update((id(sample), id(args), id(self), id(self.stayed), id(self.latest), *map(id, self.growth)))
        found: dict[str, str] = {}
        young, structure = self.young, self.structure
        module_dicts: set[int] | None = None
        for ref in _get_referrers(*args):
            key = id(ref)
            if key in structure or key in ignore:
                continue
            if type(ref) is dict:
                # Even when new to the gc: a module's empty dict is untracked until
                # the test's first entry, which tracks it as a new object.
                if module_dicts is None:
                    module_dicts = _module_global_dicts()
                if key not in module_dicts:
                    continue
            elif key in young or type(ref) not in _SEQUENCES:
                continue
            if type(ref) is collections.deque and ref.maxlen is not None:
                continue
            holder = "module-level dict" if type(ref) is dict else type_name(type(ref))
            for name in {names[id(r)] for r in _get_referents(ref) if id(r) in names}:
                found.setdefault(name, holder)
        sample.clear()
        names.clear()
        return found


def _bounded_holders(
    chains: list[list[object]],
    verdict: Verdict,
    latest: list[object],
    young: set[int],
    stayed: list[object] | None = None,
    ignore: set[int] | None = None,
    growth: Sequence[Sequence[object]] = (),
) -> dict[str, str]:
    """Leaked types whose new objects hang off a bounded cache found on a chain.

    Either every object of the type the last run kept (``latest``) hangs off
    it, or every one that an earlier run made and the later runs left alive
    (``stayed``: what accumulates), and there is at least one.  The second
    allows what the last run made in place of the run before's (an attribute
    rebound to a new set on every run) beside the cache's growth: a leak
    outside the cache is among what stays, so it is never allowed.

    Several bounded caches can share a type's objects (one instance, a key in
    two ``lru_cache`` methods of its class: jsonschema's resolver): the type is
    theirs when all of them together hold its objects (each is bounded, so
    all are).  For a type that the chains' caches hold only some of, the
    caches of the rest are searched for from a few of those objects, when
    ``ignore`` (our own objects' ids) is given: the bounded caches a few
    levels of referrers up (a pass over the heap per level).
    Counted per type in C (``map``, ``compress``, ``Counter``): a leak of a
    million objects costs a few passes in C, not a million steps in Python.
    """
    holds = _CacheHolds(verdict, latest, young, stayed or [], growth)
    for chain in chains:
        for node in chain:
            holds.add(node)
    if holds.labels and ignore is not None:
        rest = holds.rest(MAX_CHAINS)
        if rest:
            found = backref_chains(rest, _is_bounded, CACHE_DEPTH + ENTRY_DEPTH + 1, ignore)
            for chain in found:
                if len(chain) > 1:  # a search that found no bounded holder gives its own object
                    holds.add(chain[0])
            found.clear()
        rest.clear()
    return holds.finish(ignore)


def _best_match(matches: list[object], parent: dict[int, object]) -> object:
    """Of several equally short chains, the one that starts at the child's own module.

    A function imported elsewhere is held by both modules; the one that defines
    it (its ``__module__``) is where a reader looks.  For an instance, the
    module that defines its class.
    """
    for match in matches:
        child = parent[id(match)]
        while type(child) is dict:  # the module's namespace: look at what it holds
            child = parent.get(id(child))
        # type(), not isinstance(), and read without running their code: a hostile
        # object's __class__, or a metaclass's __getattribute__, may raise.
        home: object = None
        if issubclass(type(child), type):
            home = type_module(child)  # type: ignore[arg-type]
        elif type(child) is types.FunctionType or type(child) is _LRU_WRAPPER:
            home = read_attribute(child, "__module__")  # an lru_cache wrapper carries its function's
        if home is None:
            # An instance: the module that defines its class (a package's __init__
            # re-exports ``default_bus``; ``taskhub.events`` made it).
            home = type_module(type(child))
        if (
            issubclass(type(match), types.ModuleType)
            and home is not None
            and _module_dict(match).get("__name__") == home
        ):
            return match
    return matches[0] if matches else None


def _builtin_first_last(pair: tuple[Leak, object]) -> bool:
    """Sort key: a builtin type's leak (``list``, ``dict``: no dot in its name) after the others."""
    return "." not in pair[0].name


def _find_chains(
    wanted: list[tuple[Leak, object]],
    pre_existing: Callable[[object], bool],
    ignore: set[int],
    chains: list[list[object]],
    memo: ChainMemo | None = None,
    thaw: Callable[[], None] | None = None,
    known: bool = True,
) -> None:
    """Set ``leak.chain`` for each (leak, sample): how it is reached from a module or class.

    ``known``: the memo's holders may spare passes (the heap is frozen: only then does
    a pass over the new objects cost less than one over the whole heap).

    The searches share their passes over the heap (``backref_chains``); each
    finds what it would alone.  A sample nothing old reaches gets a note why.
    """
    here = id(sys._getframe())  # 3.10: a frame is a referrer of its locals
    ignore.update((here, id(wanted)))
    ignore.update(id(pair) for pair in wanted)  # each (leak, sample) refers to its sample
    referred: set[int] = set()
    # A class's weak reference in its bases' registries of subclasses lives as long
    # as the class: the search starts from the class, and the chain ends at the reference.
    # Each object is searched from once (a leaked class and its reference share the class).
    targets = [registered_class(target) or target for _, target in wanted]
    unique = {id(target): target for target in targets}
    ignore.update((id(targets), id(unique)))
    searched = backref_chains(
        list(unique.values()), pre_existing, CHAIN_DEPTH, ignore, thaw, referred, memo if known else None
    )
    by_target = dict(zip(unique, searched, strict=True))
    found = [list(by_target[id(target)]) for target in targets]
    ignore.add(id(found))
    ignore.update(map(id, found))
    by_target.clear()
    searched.clear()
    unique.clear()
    targets.clear()
    # A class no older object reaches: the reference's own chain (its base's registry).
    unreached = [
        i
        for i, ((_, target), chain) in enumerate(zip(wanted, found, strict=True))
        if chain[-1] is not target and len(chain) == 1
    ]
    if unreached:
        again = backref_chains([wanted[i][1] for i in unreached], pre_existing, CHAIN_DEPTH, ignore, thaw, referred)
        for i, chain in zip(unreached, again, strict=True):
            found[i] = chain
        again.clear()
    for (_, target), chain in zip(wanted, found, strict=True):
        if chain[-1] is not target:
            chain.append(target)
    # Chains that stop at an old object that is not a module or class go on up to one.
    climbing = [chain for chain in found if len(chain) > 1 and not _is_root(chain[0])]
    ignore.add(id(climbing))
    ignore.update(id(chain) for chain in found)
    searching = []
    for chain in climbing:
        up = memo.climb(chain[0]) if memo is not None else None
        if up is None:
            searching.append(chain)
        else:
            chain[:0] = up[:-1]
            up.clear()
    ignore.add(id(searching))
    if searching and thaw is not None:
        thaw()  # the climbs search the whole heap
    upward = backref_chains([chain[0] for chain in searching], _is_root, CLIMB_DEPTH, ignore)
    for chain, up in zip(searching, upward, strict=True):
        if memo is not None:
            memo.remember(up)
        if len(up) > 1:
            chain[:0] = up[:-1]
    for chain in climbing:
        # A class's registry of its subclasses has no referrer the gc shows:
        # the class that keeps it is the root.
        owner = None if _is_root(chain[0]) else subclass_registry_of(chain[0])
        if owner is not None:
            chain.insert(0, owner)
        del owner
    del upward, climbing, searching
    for (leak, target), chain in zip(wanted, found, strict=True):
        if len(chain) > 1:
            leak.chain = format_chain(chain)
            holder = max(i for i, node in enumerate(chain) if i == 0 or pre_existing(node))
            leak.root = root_text(chain, holder)
            chains.append(chain)
        else:
            leak.chain = _unreached(target, id(target) in referred)
    found.clear()
    ignore.discard(here)


def _unreached(target: object, has_referrer: bool) -> str:
    """Why nothing old reaches ``target`` within the chain search's depth."""
    owner = None if has_referrer else subclass_registry_of(target)
    if owner is not None:
        return (
            f"the registry of subclasses of {type_name(owner)} (type.__subclasses__(), "
            "not shown to the gc): that class keeps it, and lives as long as it"
        )
    if has_referrer:
        return f"no pre-existing object reaches it within {CHAIN_DEPTH} steps (it is kept by other new objects)"
    return unreferenced_note()


def _draw(
    verdict: Verdict,
    samples: Sequence[list[object]],
    graph_dir: str,
    nodeid: str,
    chains: list[list[object]],
    ignore: set[int],
) -> None:
    """Write the graph of the samples and their chains; note its paths and any problem."""
    flat = [o for objs_of_type in samples for o in objs_of_type[:1]]
    ignore.add(id(flat))
    paths, note = _graph.write_graph(flat, chains, graph_dir, nodeid, ignore)
    flat.clear()
    verdict.graphs.extend(paths)
    hint = _graph.render_hint(paths)
    if hint:
        verdict.notes.append(hint)
    if note:
        verdict.warnings.append(note)


def _spare_searches(
    verdict: Verdict,
    samples: Sequence[list[object]],
    held: dict[str, str],
    pre_existing: Callable[[object], bool],
    ignore: set[int],
    chains: list[list[object]],
    memo: ChainMemo | None,
    runs: tuple[list[object] | None, set[int], list[object] | None, Sequence[Sequence[object]]],
) -> dict[str, str]:
    """The chains went to the most numerous types; when some of those turn out to be
    a bounded cache's, the types still reported get the spare searches.  A spare
    chain may pass through a bounded cache the first ones did not (the type with few
    objects got no search before): then the caches are decided again.  ``runs``:
    what the last run kept, the new objects' ids and what stayed."""
    latest, young, stayed, growth = runs
    wanted = MAX_CHAINS - sum(1 for leak in verdict.leaks if leak.name not in held and leak.chain)
    spare: list[tuple[Leak, object]] = []
    ignore.add(id(spare))
    for leak, objs_of_type in zip(verdict.leaks, samples, strict=False):
        if len(spare) >= wanted:
            break
        if leak.name not in held and not leak.chain and objs_of_type:
            spare.append((leak, objs_of_type[0]))
    if spare:
        found = len(chains)
        _find_chains(spare, pre_existing, ignore, chains, memo)
        if len(chains) > found:
            held = _bounded_holders(chains, verdict, latest or [], young, stayed, ignore, growth)
    spare.clear()
    return held


def explain(
    verdict: Verdict,
    samples: Sequence[list[object]],
    settings: Settings,
    nodeid: str,
    latest: list[object] | None = None,
    young: set[int] | None = None,
    thaw: bool = True,
    memo: ChainMemo | None = None,
    stayed: list[object] | None = None,
    growth: Sequence[Sequence[object]] = (),
) -> dict[str, str]:
    """Fill in samples, why-alive chains and graph paths for ``verdict.leaks``.

    Returns the leaked types (name: the cache) whose new objects, ``latest``
    (what the last run kept) or ``stayed`` (what an earlier run made and the
    later ones left alive), all hang off a bounded cache that a chain passes
    through: a cache that stops growing at its bound (``_bounded_holders``).
    ``young``: the ids of the new objects, when the unfrozen objects are not
    all new (a block check nested in another).
    ``thaw=False``: search without unfreezing the heap (objects the
    application froze stay frozen, and unseen).  ``memo``: the session's
    climbs from older containers up to a module or class (``ChainMemo``).
    The work is bounded by counts (chains, levels, referrers per level),
    never by the clock, so the verdict is the same on any machine and at any
    point of a run.
    """
    heap_frozen = young is None
    if young is None:  # the heap is frozen: what is not is new
        objs = _get_objects()
        young = set(map(id, objs))
        del objs
    ignore: set[int] = {id(samples), id(young)}
    ignore.update(id(s) for s in samples)
    frame: types.FrameType | None = sys._getframe()
    while frame is not None:
        ignore.add(id(frame))
        frame = frame.f_back
    del frame

    def pre_existing(obj: object) -> bool:
        return id(obj) not in young and type(obj) is not types.FrameType

    chains: list[list[object]] = []  # the found paths, drawn as the graph
    ignore.add(id(chains))
    ignore.add(id(latest))
    ignore.add(id(stayed))
    ignore.add(id(growth))
    ignore.update(map(id, growth))
    held: dict[str, str] = {}
    frozen = [thaw]

    def unfreeze() -> None:  # the first search looks among the new objects first
        if frozen[0]:
            frozen[0] = False
            _unfreeze()

    try:
        first: list[tuple[Leak, object]] = []
        ignore.add(id(first))
        for leak, objs_of_type in zip(verdict.leaks, samples, strict=False):
            leak.samples = [safe_repr(o) for o in objs_of_type]
            if settings.trace and objs_of_type:
                leak.allocated = allocation_site(objs_of_type[0])
            if objs_of_type:
                first.append((leak, objs_of_type[0]))
        # The code's own classes first, then the most numerous: an asyncio Task
        # leaks with dozens of lists, sets and weakrefs, and its chain names the holder.
        first.sort(key=_builtin_first_last)
        del first[MAX_CHAINS:]
        _find_chains(first, pre_existing, ignore, chains, memo, unfreeze if thaw else None, heap_frozen)
        unfreeze()
        first.clear()

        held = _bounded_holders(chains, verdict, latest or [], young, stayed, ignore, growth) if chains else {}
        held = _spare_searches(
            verdict, samples, held, pre_existing, ignore, chains, memo, (latest, young, stayed, growth)
        )
        if settings.graph_dir:
            _draw(verdict, samples, settings.graph_dir, nodeid, chains, ignore)
    finally:
        chains.clear()
        del pre_existing, unfreeze
        if thaw:
            _freeze()
    return held
