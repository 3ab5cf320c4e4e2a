"""Leak checks for one call or one block: ``assert_no_leaks(func)`` and ``with check():``.

The engine is the per-test check's: the heap that exists is frozen (or, when
something froze it already - a ``--gcguard`` session, an enclosing check - the
young objects are listed and held), the code runs, a full collection follows,
and what survived is classified by ``_heap.Survivors``' rules.
``assert_no_leaks`` repeats the call as the per-test check reruns a test
(``_policy.Confirmation``): a clean call costs one call, a cache filled on
first use two, a leak three.  ``check`` cannot repeat its block, so it reports
what the block left alive and says that one run cannot tell a cache fill from
a leak.  Failures raise ``LeakError`` with the per-test report's text and its
why-alive chains.

Nothing here needs a pytest session: a script or a unittest case can use both.
"""

from __future__ import annotations

import contextlib
import gc
import inspect
import os
import sys
import threading
import types
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from itertools import compress
from operator import not_
from typing import Any, TypeVar

from . import _settings
from ._diagnose import explain
from ._graph import remove_graphs
from ._heap import (
    Survivors,
    _collect,
    _freeze,
    _get_objects,
    _named,
    _unfreeze,
    coverage_tracer_roots,
    first_of_each,
    frozen_by_a_session,
    frozen_by_someone,
    heap_refrozen,
    import_cache_roots,
    instance_dicts,
    saved_cycles,
    type_name,
)
from ._identity import Identities
from ._policy import Confirmation, set_aside
from ._report import Leak, Verdict, cycle_text, short_repr
from ._settings import Settings, TypeFilter

T = TypeVar("T")

#: The checks running now, innermost last: an inner one lists instead of freezing.
_ACTIVE: list[_Scope] = []

ONE_RUN_NOTE = (
    "one run of a block cannot tell a cache filled on first use from a leak; "
    "put the code in a function and call pytest_gcguard.assert_no_leaks(func), which repeats it"
)


class LeakError(AssertionError):
    """A checked call or block leaked; the message is gcguard's report.

    ``leaked``: confirmed growth by type name; ``uncollectable``: new
    ``gc.garbage`` entries by type name; ``cycles``: objects only the cyclic
    GC freed (``cycles=True``).
    """

    def __init__(
        self,
        report: str,
        leaked: dict[str, int] | None = None,
        uncollectable: dict[str, int] | None = None,
        cycles: int = 0,
    ) -> None:
        super().__init__(report)
        self.report = report
        self.leaked = dict(leaked or {})
        self.uncollectable = dict(uncollectable or {})
        self.cycles = cycles

    def __reduce__(self) -> tuple[type[LeakError], tuple[str, dict[str, int], dict[str, int], int]]:
        # Picklable (a process pool sends it back to the parent).
        return type(self), (self.report, self.leaked, self.uncollectable, self.cycles)


def settings_for(
    cycles: object,
    ignore: object,
    allow: object,
    repeat: object = 2,
    graph_dir: object = None,
    diagnosis: object = True,
) -> Settings:
    """Checked arguments as ``Settings``: ``TypeError`` for a wrong type, ``ValueError`` for a wrong value."""
    if type(repeat) is not int:
        raise TypeError(f"repeat must be a whole number, got {repeat!r}")
    if repeat < 1:
        raise ValueError(f"repeat must be 1 or more, got {repeat}")
    for name, flag in (("cycles", cycles), ("diagnosis", diagnosis)):
        if type(flag) is not bool:
            raise TypeError(f"{name} must be True or False, got {flag!r}")
    patterns = _patterns(ignore)
    if allow is not None and not isinstance(allow, (str, Mapping)) and isinstance(allow, Iterable):
        allow = list(allow)  # a generator is read once, here
    if allow is not None and not isinstance(allow, (str, Mapping)) and not _strings(allow):
        raise TypeError(f"allow must be a mapping of type names to counts, or 'TYPE=N' strings, got {allow!r}")
    allowed = _settings.parse_allow(allow, "allow")  # type: ignore[arg-type]
    if graph_dir is not None and not isinstance(graph_dir, (str, os.PathLike)):
        raise TypeError(f"graph_dir must be a path, got {graph_dir!r}")
    return Settings(
        enabled=True,
        cycles=bool(cycles),
        ignore=patterns,
        allow=tuple(allowed.items()),
        reruns=repeat,
        graph_dir=os.fspath(graph_dir) if graph_dir is not None else None,
        diagnosis=bool(diagnosis),
    )


def _strings(value: object) -> bool:
    return isinstance(value, Iterable) and all(isinstance(item, str) for item in value)


def _patterns(ignore: object) -> tuple[str, ...]:
    if ignore is None:
        return ()
    if isinstance(ignore, str):
        return _settings._split(ignore)
    if isinstance(ignore, Iterable) and not isinstance(ignore, Mapping):
        items = list(ignore)
        if all(isinstance(item, str) for item in items):
            return _settings._split(items)
    raise TypeError(f"ignore must be a type name pattern or a list of them, got {ignore!r}")


_WARM: list[bool] = []


def _warm_up() -> None:
    """Run the checks' own code once, so that its first-use effects happen outside any check.

    Counting by type in C fills the ABCs' negative caches on first use (a
    ``map`` is not a ``Mapping``), and the first repr of a container gives the
    thread its ``Py_Repr`` list: new objects that the first check, or an
    enclosing one, would otherwise count as its block's.
    """
    short_repr([[]])  # per thread: cheap enough to do every time
    if _WARM:
        return
    _WARM.append(True)
    kept: list[object] = []
    with contextlib.suppress(LeakError):
        assert_no_leaks(_keep_one, kept, diagnosis=False)  # a leak: every path but the diagnosis
    with contextlib.suppress(LeakError), check(cycles=True, diagnosis=False):
        _keep_one({}, cycle=True)
    kept.clear()


def _keep_one(kept: Any, cycle: bool = False) -> None:
    entry: dict[str, object] = {}
    if cycle:
        entry["self"] = entry
    else:
        kept.append(entry)


class _Scope:
    """One check's hold on the heap: what existed before it, and the gc state it changes.

    Freezes what exists when nothing is frozen (O(1), and the young objects
    are then exactly the check's); otherwise lists and holds the objects that
    are not frozen (inside a ``--gcguard`` test, only what the test made so
    far), so that none of them can die and give its address to a new object.
    Changes only the debug flags (``DEBUG_SAVEALL`` in cycles mode, while the
    checked code runs) and the freeze, and gives both back.
    """

    __slots__ = (
        "before",
        "cycle_example",
        "cycles",
        "cyclic",
        "debug0",
        "foreign_freeze",
        "foreign_saveall",
        "froze",
        "garbage0",
        "garbage_start",
        "modules0",
        "thaw",
        "uncollectable",
    )

    def __init__(self, cycles: bool) -> None:
        self.cycles = cycles
        #: The young objects are the check's (it froze what existed).
        self.froze = False
        #: The heap was not frozen when the check began: unfreeze it at the end.
        self.thaw = False
        #: Objects were frozen by someone else (the application): never unfrozen.
        self.foreign_freeze = False
        self.before: list[object] = []
        self.debug0 = gc.get_debug()
        #: Someone else saves all garbage (the per-test check in cycles mode): its entries stay theirs.
        self.foreign_saveall = bool(self.debug0 & gc.DEBUG_SAVEALL)
        self.garbage0 = self.garbage_start = self.modules0 = 0
        #: Cyclic garbage of the last run, by type name, and one cycle of it.
        self.cyclic: dict[str, int] = {}
        self.cycle_example = ""
        #: New ``gc.garbage`` entries over all runs, by type name.
        self.uncollectable: dict[str, int] = {}

    def open(self) -> None:
        _warm_up()
        _collect()
        # get_freeze_count() walks the frozen objects: read only when no
        # session or enclosing check is known to have frozen them.
        if not _ACTIVE and not frozen_by_a_session() and not frozen_by_someone():
            _freeze()
            self.froze = self.thaw = True
        else:
            self.foreign_freeze = not _ACTIVE and not frozen_by_a_session()
            self.before = _get_objects()
        _ACTIVE.append(self)
        self.modules0 = len(sys.modules)
        self.garbage0 = self.garbage_start = len(gc.garbage)

    def rebase(self) -> None:
        """What earlier runs kept becomes 'before' too (a large growth's fresh run)."""
        _collect()
        if self.froze:
            _freeze()
        else:
            self.before = _get_objects()

    def code_starts(self) -> None:
        if self.cycles and not self.foreign_saveall:
            gc.set_debug(gc.get_debug() | gc.DEBUG_SAVEALL)

    def code_done(self) -> None:
        """Collect what the checked code left; name its cyclic garbage and what is uncollectable."""
        _collect()
        self.cyclic = {}
        self.cycle_example = ""
        if self.cycles and not self.foreign_saveall:
            gc.set_debug(gc.get_debug() & ~gc.DEBUG_SAVEALL)
            self.cyclic, self.cycle_example = saved_cycles(self.garbage0, frozenset(), cycle_text)
        elif self.foreign_saveall:
            # Freed and uncollectable alike are kept in gc.garbage for its owner,
            # which tells them apart; here they count as cyclic garbage only.
            if self.cycles:
                self.cyclic, self.cycle_example = saved_cycles(self.garbage0, frozenset(), cycle_text, free=False)
            self.garbage0 = len(gc.garbage)
            return
        new = Counter(map(type, gc.garbage[self.garbage0 :]))
        for name, n in _named(dict(new)).items():
            self.uncollectable[name] = self.uncollectable.get(name, 0) + n
        self.garbage0 = len(gc.garbage)

    def survivors(self, own: tuple[object, ...], passed: tuple[object, ...] = ()) -> Survivors:
        """The objects the checked code left alive, classified like a test's.

        ``own``: our bookkeeping, excluded with what it holds; ``passed``: what
        the caller passed in (the callable, its arguments), excluded by identity
        only: a list passed in and filled by every call holds the leak.  The
        call's result is not excluded: a registry that keeps what it returns
        leaks, and a clean result is freed when the next call replaces it.
        Our own frames' variables are never read through ``f_locals``: up to
        3.12 that leaves a snapshot dict on the frame.
        """
        survivors = Survivors()
        survivors.exclude_known(self.before, own)
        survivors.exclude_exact((*passed, passed))
        survivors.exclude_reachable((self, *own))
        garbage = gc.garbage[self.garbage_start :]
        survivors.exclude_exact(garbage)
        if survivors.remaining:
            survivors.exclude_internal()
            survivors.exclude_spent_iterators()
            survivors.exclude_context_maps()
            survivors.exclude_abc_caches()
            survivors.exclude_hypothesis_runner()
            survivors.exclude_reachable(garbage)
            survivors.exclude_reachable(instance_dicts(garbage))
            survivors.exclude_new_modules(self.modules0)
            survivors.exclude_reachable(import_cache_roots())
            survivors.exclude_cached_formats()
            survivors.exclude_finalize_hook()
            survivors.exclude_reachable(coverage_tracer_roots())
            survivors.exclude_weakrefs_to_others()
            survivors.exclude_spent_iterators()
        garbage.clear()
        return survivors

    def overlapped(self) -> bool:
        """A check that began inside this one is still running (another thread, another asyncio task)."""
        return bool(_ACTIVE) and _ACTIVE[-1] is not self and self in _ACTIVE

    def close(self) -> None:
        if self.cycles and not self.foreign_saveall:
            gc.set_debug(gc.get_debug() & ~gc.DEBUG_SAVEALL | (self.debug0 & gc.DEBUG_SAVEALL))
        if self in _ACTIVE:
            _ACTIVE.remove(self)
        self.before = []
        self.froze = False
        if self.thaw:
            self.thaw = False
            if _ACTIVE:  # a check that began inside this one still runs: the last one out thaws
                _ACTIVE[0].thaw = True
            else:
                _unfreeze()


def _other_threads_frames() -> list[types.FrameType]:
    """The frames of the other threads that run a function."""
    me = threading.get_ident()
    frames = []
    for ident, top in sys._current_frames().items():
        if ident != me:
            frames.extend(_function_frames(top))
    return frames


class _Run:
    """Bookkeeping of one check, excluded from its own counts (its slots are walked, not its dict)."""

    __slots__ = (
        "confirmation",
        "counts",
        "cyclic_types",
        "filt",
        "identities",
        "label",
        "previous_ids",
        "scope",
        "settings",
    )

    def __init__(self, settings: Settings, label: str) -> None:
        self.settings = settings
        self.label = label
        self.filt = TypeFilter(settings)
        self.scope = _Scope(settings.cycles)
        self.confirmation: Confirmation | None = None
        #: Ids of the suspects after the call before the last one, and what tells
        #: them from newer objects made at their addresses (``_identity``).
        self.previous_ids: set[int] = set()
        self.identities = Identities()
        #: The last count of suspects, and the first call's cyclic garbage by type.
        self.counts: dict[str, int] = {}
        self.cyclic_types: dict[str, int] = {}

    def own(self) -> tuple[object, ...]:
        return (
            self,
            self.scope,
            self.filt,
            self.previous_ids,
            self.counts,
            self.cyclic_types,
            self.scope.before,
            *self.identities.own(),
        )

    def _explain(
        self,
        verdict: Verdict,
        samples: list[list[object]],
        latest: list[object],
        stayed: list[object],
        growth: tuple[list[object], ...] = (),
    ) -> dict[str, str]:
        """``explain``, which unfreezes the heap to search it and freezes all of it after."""
        scope = self.scope
        if scope.froze and len(_ACTIVE) == 1:
            return explain(verdict, samples, self.settings, self.label, latest, stayed=stayed, growth=growth)
        if scope.foreign_freeze:
            # The application froze objects: unfreezing them for the search could
            # not be undone exactly, so the search sees only what is not frozen.
            verdict.notes.append(
                "objects were frozen (gc.freeze) before the check: the why-alive search cannot see them, "
                "so a chain may stop short of its module"
            )
            visible = _unfrozen_ids().difference(map(id, scope.before))
            return explain(
                verdict, samples, self.settings, self.label, latest, visible, thaw=False, stayed=stayed, growth=growth
            )
        unfrozen = _unfrozen_ids()
        young: set[int] | None = None
        if not scope.froze:  # the unfrozen objects that existed before are not new
            young = unfrozen.difference(map(id, scope.before))
        try:
            return explain(verdict, samples, self.settings, self.label, latest, young, stayed=stayed, growth=growth)
        finally:
            _give_back_views(unfrozen, scope)
            unfrozen.clear()

    def describe(self, verdict: Verdict, survivors: Survivors, confirmed: dict[str, int]) -> None:
        """Samples, why-alive chains and the bounded-cache set-aside for ``confirmed`` growth."""
        ordered = sorted(confirmed.items(), key=lambda kv: (-kv[1], kv[0]))
        confirmation = self.confirmation
        for name, n in ordered:
            growth = [g.get(name, 0) for g in confirmation.growth] if confirmation is not None else []
            verdict.leaks.append(Leak(name, n, growth=growth))
        candidates = survivors.candidates()
        # Samples from what outlived a later run (proven to stay), else from the last run's.
        # An id whose earlier object died is a newer object's: not among what stayed.
        previous = self.previous_ids
        if previous:
            now = survivors.identities(())
            previous = previous - self.identities.replaced(previous.intersection(map(id, candidates)), now)
            now.clear()
            self.identities.clear()
        stayed = list(compress(candidates, map(previous.__contains__, map(id, candidates))))
        latest = [obj for obj in candidates if id(obj) not in previous] if previous else list(candidates)
        survivors.clear()
        del candidates
        # A type filter leaves some growth out of what is confirmed: a bounded
        # container among it is the block's growth, not a cache (``_judge``).
        unfiltered: tuple[list[object], ...] = (list(latest), list(stayed)) if self.settings.filters_types else ()
        name_of = {tp: type_name(tp) for tp in {*map(type, stayed), *map(type, latest)} if type_name(tp) in confirmed}
        members = first_of_each(stayed, name_of, _settings.MAX_SAMPLES)
        for name, objs in first_of_each(latest, name_of, _settings.MAX_SAMPLES).items():
            if not members.get(name):
                members[name] = objs
        stayed = list(compress(stayed, map(name_of.__contains__, map(type, stayed))))
        name_of.clear()
        samples = [members.get(name, []) for name, _ in ordered]
        members.clear()
        latest = [obj for obj in latest if type_name(type(obj)) in confirmed]
        held: dict[str, str] = {}
        if self.settings.diagnosis:
            held = self._explain(verdict, samples, latest, stayed, unfiltered)
        samples.clear()
        latest.clear()
        stayed.clear()
        for objs in unfiltered:
            objs.clear()
        del unfiltered
        if confirmation is None:
            confirmation = Confirmation({}, 0, self.filt.allowed)
        decision = set_aside(confirmation, [leak.name for leak in verdict.leaks], held)
        if decision is not None:
            verdict.set_aside = {leak.name: leak.count for leak in verdict.leaks if leak.name in decision.types}
            verdict.leaks = [leak for leak in verdict.leaks if leak.name not in decision.types]
            verdict.notes.append(f"growth set aside: {decision.reason}: " + ", ".join(sorted(verdict.set_aside)))
            if not verdict.leaks:
                remove_graphs(verdict.graphs)


def _refuse_overlap(scope: _Scope) -> None:
    if scope.overlapped():
        raise RuntimeError(
            "gcguard block checks overlapped: a check that began inside this one (in another thread or "
            "asyncio task) is still running, so neither can tell its objects from the other's; "
            "run the checks one at a time"
        )


def _unfrozen_ids() -> set[int]:
    objs = _get_objects()
    try:
        return set(map(id, objs))
    finally:
        objs.clear()


def _give_back_views(unfrozen: set[int], current: _Scope) -> None:
    """``explain`` froze the whole heap: give the enclosing checks their view back.

    Each enclosing check lists what it did not make (what was frozen before
    the diagnosis, and what it listed when it began) and holds it, as a
    nested check does; the heap is left unfrozen (the outermost check, or the
    next test's window, freezes or thaws it as it found it).  A test
    that ``--gcguard`` checks cannot be given its view back: it is not
    judged, and says why.  O(heap), and only after a leak was found inside
    another check.
    """
    outer = [scope for scope in _ACTIVE if scope is not current]
    if not current.froze:
        heap_refrozen("a gcguard block check that diagnosed a leak (its diagnosis froze the heap)")
    if not outer:
        return
    _unfreeze()
    everything = _get_objects()
    try:
        for scope in outer:
            # Its own objects: unfrozen before the diagnosis, and not listed when it began.
            # (Selected in C: a comprehension would hold the sets in cells, which
            # ``everything`` lists as old objects holding new ones.)
            its_own = unfrozen.difference(map(id, scope.before))
            scope.before = list(compress(everything, map(not_, map(its_own.__contains__, map(id, everything)))))
            scope.froze = False
            its_own.clear()
    finally:
        everything.clear()


def _raise_if_failed(verdict: Verdict) -> None:
    """Raise ``LeakError`` from a frame that holds no leaked object.

    A caught ``LeakError`` keeps its traceback's frames; they must not keep
    the leak alive (nor the result of the last call, which may be leaked).
    """
    if verdict.failed:
        leaked = {leak.name: leak.count for leak in verdict.leaks}
        raise LeakError(verdict.message(), leaked, dict(verdict.uncollectable), verdict.cyclic)


def assert_no_leaks(
    func: Callable[..., T],
    *args: Any,
    repeat: int = 2,
    cycles: bool = False,
    ignore: str | Iterable[str] | None = None,
    allow: Mapping[str, int] | str | Iterable[str] | None = None,
    graph_dir: str | os.PathLike[str] | None = None,
    diagnosis: bool = True,
    **kwargs: Any,
) -> T:
    """Call ``func(*args, **kwargs)`` and fail if what it keeps alive grows on every call.

    The first call runs with everything that existed frozen; what it leaves
    alive after a full collection is suspected.  Nothing left: done, after one
    call.  Otherwise ``func`` is called again (``repeat`` times, at least
    twice), and only growth that repeats in every call is a leak, as in
    CPython's ``regrtest -R`` and the per-test check: a cache filled on the
    first call is not reported, nor a cache whose declared bound (an
    ``lru_cache(maxsize=...)``) holds the growth, nor growth that frees as
    many older objects as it keeps.

    ``cycles=True`` also fails when every call makes reference cycles only the
    cyclic GC can free.  ``ignore``: type names or globs not to report;
    ``allow``: ``{"TYPE": N}`` (or ``"TYPE=N"``) new objects a call may keep.
    ``graph_dir``: write a graph of the leaked objects and their holders there.
    ``diagnosis=False`` skips sample reprs and why-alive chains.

    Raises ``LeakError`` (an ``AssertionError``) with gcguard's report; returns
    the last call's result.  An exception from ``func`` propagates unchanged.
    """
    if not callable(func):
        raise TypeError(f"assert_no_leaks() needs a callable, got {func!r}")
    if inspect.iscoroutinefunction(func):
        raise TypeError(
            "assert_no_leaks() calls func synchronously and cannot run a coroutine function; "
            "pass a function that runs it, e.g. lambda: asyncio.run(func())"
        )
    settings = settings_for(cycles, ignore, allow, repeat, graph_dir, diagnosis)
    label = f"assert_no_leaks({getattr(func, '__qualname__', None) or type(func).__name__})"
    outcome = _check_calls(func, args, kwargs, settings, label)
    if outcome.failed:
        _raise_if_failed(outcome.pop())
    result: T = outcome.pop_result()
    return result


class _Outcome:
    """The verdict and the last result, handed over without a frame holding both."""

    __slots__ = ("result", "verdict")

    def __init__(self, verdict: Verdict, result: object) -> None:
        self.verdict: Verdict | None = verdict
        self.result = result

    @property
    def failed(self) -> bool:
        return self.verdict is not None and self.verdict.failed

    def pop(self) -> Verdict:
        verdict, self.verdict, self.result = self.verdict, None, None
        assert verdict is not None
        return verdict

    def pop_result(self) -> Any:
        result, self.result = self.result, None
        return result


def _grown(confirmation: Confirmation) -> set[str]:
    """The types whose count grew in the last call (all of the first call's): only they can
    be confirmed, so only their objects need telling apart from newer ones."""
    counts = confirmation.counts
    before = counts[-2] if len(counts) > 1 else {}
    return {name for name, n in counts[-1].items() if n > before.get(name, 0)}


def _check_calls(
    func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], settings: Settings, label: str
) -> _Outcome:
    run = _Run(settings, label)
    scope = run.scope
    passed = (func, args, kwargs)
    result: Any = None
    verdict = Verdict(label, after="the call", repeats="later call(s)", growth_label="calls")
    scope.open()
    try:
        scope.code_starts()
        try:
            result = func(*args, **kwargs)
        finally:
            scope.code_done()
        _refuse_overlap(scope)
        first_cyclic = sum(run.filt.kept(scope.cyclic).values())
        run.cyclic_types = scope.cyclic
        cycle_example = scope.cycle_example
        survivors = scope.survivors(run.own(), passed)
        _exclude_in_flight(survivors, _other_threads_frames())
        run.counts = run.filt.reported(survivors.count_suspects())
        run.confirmation = confirmation = Confirmation(run.counts, settings.reruns, run.filt.allowed)
        if run.counts or first_cyclic:
            while (rerun := confirmation.next_rerun()) is not None:
                run.identities.clear()
                run.identities = survivors.identities(_grown(confirmation))
                run.previous_ids = survivors.suspect_ids()
                survivors.clear()
                if rerun.fresh:
                    scope.rebase()
                # Older objects freed during the call are a bounded cache's sign only
                # when no other thread runs: one that replaces its own frozen objects
                # meanwhile would make a leak look like a cache at capacity.
                measure = rerun.measure and threading.active_count() == 1
                frozen_at = gc.get_freeze_count() if measure else 0
                result = None  # the previous result goes, as the next call replaces it
                scope.code_starts()
                try:
                    result = func(*args, **kwargs)
                finally:
                    scope.code_done()
                _refuse_overlap(scope)
                freed = frozen_at - gc.get_freeze_count() if measure else 0
                # A thread the call started may have ended in it, freeing older objects.
                disturbed = measure and threading.active_count() != 1
                survivors = scope.survivors((*run.own(), run.previous_ids), passed)
                _exclude_in_flight(survivors, _other_threads_frames())
                run.counts = run.filt.reported(survivors.count_suspects())
                cyclic = sum(run.filt.kept(scope.cyclic).values())
                confirmation.record(run.counts, freed=freed, cyclic=cyclic, disturbed=disturbed)
            # ``survivors`` are the last call's: the samples come from them.
            confirmed = confirmation.confirmed()
            verdict.confirmed_by = len(confirmation.growth)
            if settings.cycles and first_cyclic and confirmation.cycles_repeat():
                verdict.cyclic = min(first_cyclic, *confirmation.cyclic)
                verdict.cyclic_types = run.filt.kept(run.cyclic_types)
                verdict.cycle_chain = cycle_example
            if confirmed:
                run.describe(verdict, survivors, confirmed)
        survivors.clear()
        verdict.uncollectable = run.filt.kept(scope.uncollectable)
    finally:
        scope.close()
    return _Outcome(verdict, result)


class check:  # lower case: used as a statement, ``with check():``
    """A context manager that fails when its block leaves objects alive.

    The block runs once with everything that existed frozen; after it, a full
    collection, and what the block made that is still alive (and not held by
    a local variable of a running function: a result the code goes on to use)
    is reported, with why-alive chains, by a ``LeakError``.  One run cannot
    tell a cache filled on first use from a leak: the message says so, and
    growth held by a cache with a declared bound is set aside.
    ``cycles=True`` also reports the reference cycles the block made that only
    the cyclic GC could free (numpy's ``assert_no_gc_cycles``).  ``ignore``
    and ``allow`` as for ``assert_no_leaks``.  Nesting works: an inner check
    sees only its own block, an outer one everything.  An exception from the
    block propagates unchecked.
    """

    def __init__(
        self,
        cycles: bool = False,
        ignore: str | Iterable[str] | None = None,
        allow: Mapping[str, int] | str | Iterable[str] | None = None,
        graph_dir: str | os.PathLike[str] | None = None,
        diagnosis: bool = True,
        *,
        _stacklevel: int = 1,
    ) -> None:
        self.settings = settings_for(cycles, ignore, allow, 1, graph_dir, diagnosis)
        caller = sys._getframe(_stacklevel)
        self.label = f"check() at {os.path.basename(caller.f_code.co_filename)}:{caller.f_lineno}"
        del caller
        self._run: _Run | None = None
        #: After the block: whether it was judged (not if it raised), and what
        #: was found (``LeakError`` has the same).
        self.judged = False
        self.leaked: dict[str, int] = {}
        self.cycles = 0
        self.uncollectable: dict[str, int] = {}

    def __enter__(self) -> check:
        if self._run is not None:
            raise RuntimeError("this check() is already running; make a new one for each block")
        run = self._run = _Run(self.settings, self.label)
        run.scope.open()
        run.scope.code_starts()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        run = self._run
        if run is None:
            return
        self._run = None
        scope = run.scope
        try:
            scope.code_done()
            if exc_type is not None:
                return  # the block's own exception goes on, unchecked
            _refuse_overlap(scope)
            verdict = self._judge(run)
        finally:
            scope.close()
        self.judged = True
        self.leaked = {leak.name: leak.count for leak in verdict.leaks}
        self.cycles = verdict.cyclic
        self.uncollectable = dict(verdict.uncollectable)
        _raise_if_failed(verdict)

    def _judge(self, run: _Run) -> Verdict:
        scope = run.scope
        verdict = Verdict(self.label, after="the block", repeats="", growth_label="")
        if run.settings.cycles and scope.cyclic:
            verdict.cyclic_types = run.filt.kept(scope.cyclic)
            verdict.cyclic = sum(verdict.cyclic_types.values())
            verdict.cycle_chain = scope.cycle_example
        verdict.uncollectable = run.filt.kept(scope.uncollectable)
        survivors = scope.survivors(run.own())
        # What running functions hold in their variables is in flight: the
        # caller's, up the stack, and other threads'.  Not a module's or a
        # class body's variables: those are where leaks are kept.
        frames = [*_function_frames(sys._getframe(2)), *_other_threads_frames()]
        _exclude_in_flight(survivors, frames)
        frames.clear()
        counts = run.filt.reported(survivors.count_suspects())
        if counts:
            run.describe(verdict, survivors, counts)
            if verdict.leaks:
                verdict.notes.append(ONE_RUN_NOTE)
        survivors.clear()
        return verdict


#: Old containers a function's variable may name whose new entries are in flight.
_PLAIN = (list, dict, set, tuple, frozenset)


def _exclude_in_flight(survivors: Survivors, frames: list[types.FrameType]) -> None:
    """Exclude what running functions hold in their variables, and what that reaches.

    A new object in a variable, and the new entries of a plain container in
    one (``results.append(x)``), are in flight: the function goes on to use
    them.  An old object's attributes are not (``self.conn = Connection()``
    in a method keeps the connection for as long as ``self`` lives), nor are
    a module's or a class body's variables.
    """
    ids = survivors.ids
    starts: list[object] = []
    snapshots: list[object] = []
    for frame in frames:
        f_locals = frame.f_locals
        # Up to 3.12, a dict the frame keeps (made by the first reading, maybe
        # by an inner check): the frame's, not the block's.
        snapshots.append(f_locals)
        for value in f_locals.values():
            if id(value) in ids:
                starts.append(value)
            elif type(value) in _PLAIN:
                starts.extend(ref for ref in gc.get_referents(value) if id(ref) in ids)
        del f_locals
    survivors.exclude_exact(snapshots)
    survivors.exclude_reachable(starts)
    starts.clear()
    snapshots.clear()


def _function_frames(frame: types.FrameType | None) -> list[types.FrameType]:
    """``frame`` and its callers that run a function (not a module's or a class's body)."""
    frames = []
    while frame is not None:
        if frame.f_code.co_flags & inspect.CO_OPTIMIZED:
            frames.append(frame)
        frame = frame.f_back
    return frames


class Checks:
    """What the ``gcguard`` fixture gives a test: ``assert_no_leaks`` and ``check``.

    The same as the module's functions; it works with or without ``--gcguard``
    and leaves the per-test check undisturbed when both are on (the test is
    still judged as a whole, around the block checks).
    """

    LeakError = LeakError

    def assert_no_leaks(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``pytest_gcguard.assert_no_leaks``."""
        return assert_no_leaks(func, *args, **kwargs)

    def check(
        self,
        cycles: bool = False,
        ignore: str | Iterable[str] | None = None,
        allow: Mapping[str, int] | str | Iterable[str] | None = None,
        graph_dir: str | os.PathLike[str] | None = None,
        diagnosis: bool = True,
    ) -> check:
        """``pytest_gcguard.check``."""
        return check(cycles, ignore, allow, graph_dir, diagnosis, _stacklevel=2)
