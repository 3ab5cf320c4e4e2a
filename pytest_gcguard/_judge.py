"""The verdict on one finished test: classify its survivors, confirm by reruns, describe.

``Judge`` is made by the checker (``plugin.GcGuard``) once a test's window is
closed, and asks it for each rerun through a callback; the confirmation policy
is ``_policy.Confirmation``, the exclusion rules are ``_heap.Survivors``'.
"""

from __future__ import annotations

import gc
import sys
import threading
import time
import types
from collections import Counter
from itertools import compress
from operator import not_
from typing import Protocol

import pytest

from . import _settings
from ._diagnose import ChainMemo, explain
from ._graph import remove_graphs
from ._heap import (
    Closed,
    Survivors,
    Window,
    _freeze,
    _get_objects,
    _unfreeze,
    close_window,
    context_held,
    context_map_nodes,
    coverage_tracer_roots,
    first_of_each,
    frozen_garbage,
    import_cache_roots,
    instance_dicts,
    list_runner,
    own_objects,
    read_attribute,
    release_runner,
    settle,
    threads_holding,
    type_name,
)
from ._identity import Identities
from ._policy import Confirmation, set_aside
from ._pytest_internals import (
    historic_call_lists,
    plugin_result_lists,
    setup_state,
    spent_finalizer_objects,
    stop_test_timer,
    warnings_filters,
)
from ._report import FIRST_RUN_TYPES, Leak, Verdict, cycle_text
from ._settings import Settings, TypeFilter
from ._slots import Replacement, Slots
from ._strategies import held_by_hypothesis
from ._warnings import GcGuardWarning

#: What a test item holds that holds more of its bookkeeping.
_ITEM_CONTAINERS = (pytest.Stash, pytest.FixtureRequest)


#: New objects above which what threads the test left running hold is not looked at.
MAX_IN_FLIGHT = 20_000


def _grouped(objs: list[object], name_of: dict[type, str], names: list[str]) -> list[list[object]]:
    """``objs`` by type name, in the order of ``names`` (a function of its own: a comprehension
    in the caller would close over its locals, and make a cell there on 3.10 and 3.11)."""
    position = {name: n for n, name in enumerate(names)}
    groups: list[list[object]] = [[] for _ in names]
    for obj in objs:
        n = position.get(name_of.get(type(obj), ""))
        if n is not None:
            groups[n].append(obj)
    return groups


def _most_numerous(counts: dict[str, int], limit: int) -> dict[str, int]:
    return dict(sorted(counts.items(), key=_by_count)[:limit])


def _by_count(item: tuple[str, int]) -> tuple[int, str]:
    return -item[1], item[0]


def _cause(verdict: Verdict, grew: bool) -> str:
    """How a suspected test's confirmation ended (``_report.SUSPICION_CAUSES``)."""
    if verdict.leaks:
        return "leak"
    if verdict.suspicion:  # set aside: a bounded cache's growth
        return verdict.suspicion
    if verdict.cyclic or not grew:
        return "cycles"
    return "first use"


def _thread_idents() -> int:
    """Which threads run, as a number (a thread that ends during a measured rerun frees
    older objects).  Not a set: a container of ours alive at the count would be counted."""
    return hash(frozenset(sys._current_frames()))


class _Samples:
    """Ids of the suspects kept across reruns, to pick the report's samples.

    Its class lives in this package, so the leak check excludes it and all it
    holds; ``own()`` lists its containers for exclusion by identity (a large
    leak's sets hold a million ids: walking them would cost seconds).  An id
    seen in two runs is the same object only if what the earlier run recorded
    of it (``_identity``) does not prove it died: its address may have been
    given to a newer object.
    """

    def __init__(self, first: set[int], identities: Identities) -> None:
        #: Objects new in an earlier run that outlived the later ones (accumulating).
        self.new_ids = first
        #: The objects the last run made and kept.
        self.last_new: set[int] = set()
        self.previous_ids = first
        #: What tells the last run's objects from newer ones at their addresses.
        self.identities = identities
        self.recorded = 0

    def own(self, confirmation: Confirmation) -> tuple[object, ...]:
        containers = (
            self.new_ids,
            self.last_new,
            self.previous_ids,
            confirmation.counts,
            confirmation.growth,
            confirmation.imported,
        )
        return (
            self,
            confirmation,
            confirmation.cyclic,
            *containers,
            *confirmation.counts,
            *confirmation.growth,
            *self.identities.own(),
        )

    def forget(self) -> None:
        self.new_ids = self.last_new = self.previous_ids = set()
        self.identities.clear()

    def record(self, current: set[int], fresh: bool, identities: Identities) -> None:
        """Add a rerun's suspects (``fresh``: earlier runs' objects are frozen)."""
        self.recorded += 1
        if fresh:
            self.last_new = self.new_ids = self.previous_ids = current
            self.identities.clear()
            self.identities = identities
            return
        # Ids both runs saw whose earlier object died: a newer object's now.
        reused = self.identities.replaced(current & self.previous_ids, identities)
        self.identities.clear()
        self.identities = identities
        # Objects new in an earlier rerun that outlived the later ones; the
        # first rerun can only offer its own.
        self.last_new = (current - self.previous_ids) | reused
        if self.recorded == 1:
            self.new_ids = self.last_new
        else:
            self.new_ids &= current
            self.new_ids -= reused
        self.previous_ids = current


def _samples(accumulated: list[object], latest: list[object], name_of: dict[type, str]) -> dict[str, list[object]]:
    """The report's samples of each type: what accumulated over the reruns, or, for a type
    none of whose first rerun's objects outlived the later reruns (a full cache that
    evicts the test's own entries once the older ones are gone: cattrs' Hypothesis
    tests), what the last run kept, so that the chains from them find the holder."""
    members = first_of_each(accumulated, name_of, _settings.MAX_SAMPLES)
    lacking = {tp: name for tp, name in name_of.items() if name not in members}
    if lacking:
        members.update(first_of_each(latest, lacking, _settings.MAX_SAMPLES))
    return members


class Rerunner(Protocol):
    """What reruns a test for the judge (``plugin.GcGuard``)."""

    def rerun_once(self, item: pytest.Item, window: Window, rerun_window: Window | None) -> str:
        """Run ``item``'s protocol once more in ``rerun_window``: "" or how it failed."""
        ...


def _runner_kept(owner: tuple[pytest.Item, tuple[object, ...]]) -> tuple[object, ...]:
    """What the runner made in the test's phases and keeps, allowed by the fast check:
    pytest's spent fixture finalizers and the context map's new nodes.  ``owner``:
    the item and the fixtures its request made active."""
    item, active = owner
    return (*spent_finalizer_objects(item, active), *context_map_nodes())


def judge(
    item: pytest.Item,
    window: Window,
    settings: Settings,
    outcome: str | None,
    stop_frame: types.FrameType | None,
    rerunner: Rerunner,
    memo: ChainMemo | None = None,
    slots: Slots | None = None,
    fixtures: tuple[pytest.Item, tuple[object, ...]] | None = None,
) -> tuple[Verdict | None, str]:
    """The verdict on a finished test, or why it was not judged (with the verdict
    whose confirmation a failed rerun ended, for what its reruns cost).

    ``outcome``: how the test itself ended, if it did not pass (then it is
    reported once, as itself, and not judged).  ``fixtures``: the item and the
    fixtures its request made active (``active_fixture_defs``), read before the
    request's release and the runner's last listing.  Nothing is made before
    the window is closed: the usual clean test is known from the closing alone.
    """
    closed = close_window(window, cycle_text, _runner_kept, fixtures or (item, ()))
    try:
        if not window.passed or outcome is not None:
            return None, f"not judged: the test {outcome or 'did not pass'}"
        if window.guard_calls:
            reason = f"not judged: the test called {', '.join(window.guard_calls)}, which hides or exposes the heap"
            item.add_report_section("teardown", "gcguard", reason)
            return None, reason
        if closed.runner_only and not closed.cyclic and not closed.uncollectable and not closed.notes:
            return None, ""  # the usual case, known without listing anything
        verdict = Judge(item, window, settings, stop_frame, rerunner, memo, slots).find_leaks(closed)
    finally:
        window.runner.clear()
        settle()
    if verdict is None:
        return None, ""
    for message in verdict.warnings:
        try:
            item.warn(GcGuardWarning(message))
        except Warning:  # filterwarnings = error: the note must not replace the report
            verdict.notes.append(f"warning: {message}")
    if verdict.notes and not verdict.failed:
        item.add_report_section("teardown", "gcguard", "\n".join(verdict.notes))
    if verdict.unconfirmed:  # the verdict carries what its reruns cost
        return verdict, f"not judged: suspected leak not confirmed, {verdict.unconfirmed}"
    return verdict, ""


class Judge:
    """Finds, confirms and describes one finished test's leaks (made only when it is suspected)."""

    def __init__(
        self,
        item: pytest.Item,
        window: Window,
        settings: Settings,
        stop_frame: types.FrameType | None,
        rerunner: Rerunner,
        memo: ChainMemo | None = None,
        slots: Slots | None = None,
    ) -> None:
        self.item = item
        self.window = window
        self.settings = settings
        #: Our callers' frames up to here are in flight (see ``_classify``).
        self.stop_frame = stop_frame
        self.rerunner = rerunner
        #: The session's climbs from older containers to a module or class.
        self.memo = memo
        #: Ids of what the first run's imports made, set aside in that run (``_classify``),
        #: and their counts by type name.
        self.imported: set[int] = set()
        self.imported_counts: dict[str, int] = {}
        #: Slots tests rebind (``_slots``), and what a rerun kept in place of the
        #: first run's, to find the slot that holds it once the test is cleared.
        self.slots = slots
        self.replaced: list[object] = []
        #: Threads the test started and left running, and the leaked types they hold.
        self.threads: list[str] = []
        self.in_flight: list[str] = []
        self.near: list[str] = []
        #: The slots the first run's growth replaced, when found before the costlier
        #: exclusion rules ran (``_classify``): a string, never among the objects judged.
        self.replaced_early = ""

    def own(self) -> tuple[object, ...]:
        """Our objects, made after the window closed: excluded by identity."""
        return (self, self.imported, self.imported_counts, self.replaced, self.threads, self.in_flight, self.near)

    def _classify(
        self, own: tuple[object, ...], rerun: bool = False, replacement: Replacement | None = None
    ) -> Survivors:
        item, window = self.item, self.window
        # Cheapest exclusions first; stop as soon as nothing is left (the usual
        # case for a clean test), so a check costs what the test allocated.
        release_runner(window)
        survivors = Survivors()
        survivors.exclude_known(window.runner, own)
        survivors.exclude_exact(gc.garbage[window.garbage0 :])
        if not survivors.remaining:
            return survivors
        survivors.exclude_internal()
        survivors.exclude_spent_iterators()
        survivors.exclude_context_maps()
        survivors.exclude_cancelled_timers()
        survivors.exclude_abc_caches()
        survivors.exclude_hypothesis_runner(getattr(item, "function", None))
        if not survivors.remaining:
            return survivors
        survivors.exclude_owned_by(item, _ITEM_CONTAINERS)
        if window.warnings_log is not None:
            # pytest holds the warnings it recorded until the protocol ends, and
            # gives each test's protocol a copy of the warning filters, which it
            # drops at the end: what the test's fixtures and code added to them
            # (networkx's autouse fixture adds five per test) goes with it.
            survivors.exclude_reachable([window.warnings_log, warnings_filters()])
        # Other plugins' per-test results, kept for their session report (pytest-benchmark).
        survivors.exclude_reachable(plugin_result_lists(item.config))
        survivors.exclude_reachable(historic_call_lists(item.config))
        # The runner's stack of set-up nodes: a package's or module's first test
        # registers their teardowns (session-long bookkeeping, never the test's).
        survivors.exclude_owned_by(setup_state(item.session), depth=5)
        if not survivors.remaining:
            return survivors
        if (
            replacement is not None
            and len(sys.modules) <= window.modules0
            and (replaced := replacement.settles(survivors.candidates()))
        ):
            # The test only replaced a slot's value, even before the rules below take
            # more out (they only would): it settles on these (``_find_leaks``).
            self.replaced_early = replaced
            return survivors
        # From this frame up: our own callers' locals (the hook result being
        # returned) are in flight too; our analysis objects are not young.
        survivors.exclude_from_frames(sys._getframe(), self.stop_frame)
        if not survivors.remaining:
            return survivors
        survivors.exclude_reachable(window.runner)
        survivors.exclude_reachable(gc.garbage[window.garbage0 :])
        survivors.exclude_reachable(instance_dicts(gc.garbage[window.garbage0 :]))
        if rerun:
            # What the first run's imports made is set aside exactly, not what
            # reaches it: what a rerun adds to those modules (a leak into a
            # module-level cache) is counted like growth anywhere else.
            survivors.exclude_ids(self.imported)
            survivors.exclude_new_modules(window.modules0)
        elif len(sys.modules) > window.modules0:
            before = set(survivors.ids)
            survivors.exclude_new_modules(window.modules0)
            self.imported = before.difference(survivors.ids)
            self.imported.update(survivors.made_dicts(self.imported))
            before.clear()
        survivors.exclude_reachable(import_cache_roots())
        survivors.exclude_cached_formats()
        survivors.exclude_finalize_hook()
        survivors.exclude_reachable(coverage_tracer_roots())
        survivors.exclude_weakrefs_to_others()
        survivors.exclude_spent_iterators()
        return survivors

    def _count(self, survivors: Survivors, filt: TypeFilter) -> dict[str, int]:
        return filt.reported(survivors.count_suspects())

    def find_leaks(self, closed: Closed) -> Verdict | None:
        # What died at the slots tests rebind, and their new values (before the
        # objects are listed: our lists then hold none of theirs).
        replacement = self.slots.replacement() if self.slots is not None else None
        ours = replacement.own() if replacement is not None else ()
        # Nothing made here before the objects are listed may count: only
        # ``closed`` exists, and it is excluded by identity.
        early = replacement if not closed.cyclic and not closed.uncollectable else None
        survivors = self._classify((*own_objects(closed), *self.own(), *ours, ours), replacement=early)
        try:
            return self._find_leaks(closed, survivors, replacement)
        finally:
            if replacement is not None:
                replacement.clear()

    def _find_leaks(self, closed: Closed, survivors: Survivors, replacement: Replacement | None) -> Verdict | None:
        item, settings = self.item, self.settings
        imported = self.imported
        # The usual case, a clean test (one that imported modules is rerun once).
        if (
            not survivors.remaining
            and not closed.cyclic
            and not closed.uncollectable
            and not closed.notes
            and not (imported and settings.reruns)
        ):
            survivors.clear()
            return None
        filt = TypeFilter(settings)
        if imported:
            # The test imported modules: a rerun shows whether it adds to them.
            self.imported_counts = filt.reported(survivors.count_of(imported))
        verdict = Verdict(item.nodeid, notes=list(closed.notes))
        verdict.uncollectable = dict(closed.uncollectable)
        if settings.cycles:
            verdict.cyclic_types = filt.kept(closed.cyclic_types)
            verdict.cyclic = min(closed.cyclic, sum(verdict.cyclic_types.values()))
            verdict.cycle_chain = closed.cycle_chain
        confirmation = Confirmation(self._count(survivors, filt), settings.reruns, filt.allowed, self.imported_counts)
        if not confirmation.counts[0] and not verdict.cyclic and not (confirmation.imported and settings.reruns):
            survivors.clear()
            return verdict
        if (
            replacement is not None
            and confirmation.counts[0]
            and not verdict.cyclic
            and not closed.uncollectable
            and not imported
            and (replaced := self.replaced_early or replacement.settles(survivors.candidates()))
        ):
            # The test only replaced the value of a slot tests rebind: no rerun.
            survivors.clear()
            verdict.suspicion = "replaced"
            verdict.first_run = self._first_run(confirmation)
            verdict.notes.append(
                f"settled without a rerun: what the test kept replaced the value of {replaced}, which an "
                "earlier test's reruns showed is rebound on every run, and the old value died"
            )
            return verdict
        if (
            settings.reruns
            and confirmation.counts[0]
            and not verdict.cyclic
            and not closed.uncollectable
            and not imported
            and (entries := self._held_by_hypothesis(survivors)) >= 0
        ):
            # A @given test that only filled Hypothesis's bounded caches and the
            # strategies it builds once: no rerun (``_strategies``).
            survivors.clear()
            verdict.suspicion = "hypothesis"
            verdict.first_run = self._first_run(confirmation)
            verdict.notes.append(
                "settled without a rerun: nothing but Hypothesis's bounded caches (which hold "
                f"{entries} of them directly) and the strategies older ones build once refer to what the test kept"
            )
            return verdict
        samples = _Samples(survivors.suspect_ids(), survivors.identities(confirmation.counts[0]))
        survivors.clear()
        del survivors
        if settings.reruns:
            started = time.perf_counter()
            self._confirm(filt, confirmation, samples)
            verdict.rerun_seconds = time.perf_counter() - started
            verdict.reruns = confirmation.attempts
            if confirmation.failure:
                verdict.notes.append(f"suspected leak not confirmed: {confirmation.failure}")
                verdict.warnings.append(
                    f"gcguard reran this test to confirm a suspected leak, and {confirmation.failure}: the test "
                    "does not run twice the same way, and what that rerun changed (module state, settings) stays "
                    "for the tests after it; if later tests fail only with --gcguard, make this one restore what it "
                    "changes even when it fails (try/finally, a fixture), or mark it "
                    "@pytest.mark.gcguard(enabled=False)"
                )
                verdict.unconfirmed = confirmation.failure
                verdict.cyclic = 0
                verdict.first_run = self._first_run(confirmation)
                verdict.suspicion = "not confirmed"
                return verdict
            if verdict.cyclic and min(confirmation.cyclic) == 0:
                verdict.notes.append(
                    f"{verdict.cyclic} object(s) in reference cycles on the first run only (a one-time effect)"
                )
                verdict.cyclic = 0
        self._describe(confirmation, samples, verdict)
        if verdict.leaks and self.threads:
            self._in_flight(verdict, confirmation)
            if verdict.unconfirmed:
                return verdict
        if verdict.reruns:
            verdict.first_run = self._first_run(confirmation)
            verdict.suspicion = _cause(verdict, bool(confirmation.counts[0] or confirmation.imported))
        if self.replaced:
            if verdict.suspicion == "first use" and self.slots is not None:
                self._learn_slot(self.slots)
            self.replaced.clear()
        return verdict

    def _held_by_hypothesis(self, survivors: Survivors) -> int:
        """How many of the test's new objects Hypothesis's caches hold directly, if only they
        and the strategies built once hold them (``_strategies``); else -1."""
        if "hypothesis.strategies._internal.utils" not in sys.modules:
            return -1
        handle = read_attribute(getattr(self.item, "function", None), "hypothesis")
        given = read_attribute(handle, "_given_kwargs")
        if type(given) is not dict:
            return -1
        strategies = list(given.values())
        entries = held_by_hypothesis(survivors.candidates(), survivors.ids, survivors.holds(), strategies)
        strategies.clear()
        return entries

    def _in_flight(self, verdict: Verdict, confirmation: Confirmation) -> None:
        """Leave out the growth that threads the test started and left running hold;
        with nothing else left, the test is not judged, and a warning says to join them."""
        counted = Counter(self.threads).most_common()
        names = ", ".join(name if n == 1 else f"{name} x{n}" for name, n in counted[:3])
        names += f" and {len(counted) - 3} more" if len(counted) > 3 else ""
        # Every object of the type held from the threads; or each held from them or
        # referring into what they hold, with no chain from an older object (kept by a
        # running frame's stack or the thread's C state, which the gc does not show) or
        # only threading's own bookkeeping's.
        held = set(self.in_flight)
        near = set(self.near)
        for leak in verdict.leaks:
            if leak.name in near and (not leak.root or leak.root.startswith("module threading ")):
                held.add(leak.name)  # ``threading._dangling``'s weak references to the threads too
        verdict.leaks = [leak for leak in verdict.leaks if leak.name not in held]
        if verdict.leaks:
            verdict.notes.append(
                f"not reported: {', '.join(sorted(held))}, held by thread(s) {names}, which the test started and "
                "left running (work in flight)"
            )
            return
        verdict.unconfirmed = f"its growth is held by thread(s) {names}, which the test started and left running"
        verdict.warnings.append(
            f"gcguard did not judge this test: what it kept is held by thread(s) {names}, which it started and "
            "left running; join them before the test ends (in the test or a fixture's teardown) so that gcguard "
            "can tell a leak from work in flight"
        )
        remove_graphs(verdict.graphs)
        verdict.suspicion = "not confirmed"
        verdict.first_run = self._first_run(confirmation)

    def _find_threads(self, leaked: list[object], name_of: dict[type, str], names: list[str]) -> None:
        """What a thread the test started and left running holds is in flight (while the
        heap is frozen: the walk goes through new objects only).  Every new object of a
        type is looked at, not its samples."""
        groups = _grouped(leaked, name_of, names)
        self.threads, running, near = threads_holding(groups)
        self.in_flight.extend(names[n] for n in running)
        self.near.extend(names[n] for n in near)
        for group in groups:
            group.clear()

    def _learn_slot(self, slots: Slots) -> None:
        """The test was cleared, and its rerun kept what its first run kept, in its place:
        find the slot that holds it (one pass over the heap, unfrozen)."""
        young = set(map(id, _get_objects()))  # the heap is frozen: the new objects only
        ours = {id(young), id(self.replaced), *map(id, self.own())}
        _unfreeze()
        try:
            slots.learn(self.replaced, young, ours)
        finally:
            _freeze()
            young.clear()

    def _first_run(self, confirmation: Confirmation) -> dict[str, int]:
        """The types most common among the first run's suspects (its imports', if only they)."""
        return _most_numerous(confirmation.counts[0] or self.imported_counts, FIRST_RUN_TYPES)

    def _describe(self, confirmation: Confirmation, samples_of: _Samples, verdict: Verdict) -> None:
        """Turn confirmed growth into the report (runs after all measurements).

        Growth that only feeds a bounded cache is set aside, type by type when
        the cache declares its bound (``explain`` finds it on a chain), or as a
        whole when older objects died as the new ones were kept and no declared
        bound explains them (a cache with an undeclared bound, at capacity).
        """
        confirmed = confirmation.confirmed()
        if not confirmed:
            return
        settings = self.settings
        verdict.confirmed_by = len(confirmation.growth)
        # Members: objects that outlived a later run of the test (accumulating);
        # the first few of each type are the report's samples.  Latest: what
        # the last run kept, which is what a bounded cache must hold for the
        # growth to be its own (a first-use object of an earlier rerun is not
        # growth, and need not hang off the cache).
        # Selected in C (``compress``), then named once per type: a leak of a
        # million objects costs a few passes in C, not a million steps in Python.
        # A large growth's rerun whose objects the full pass after it froze: the
        # whole heap is listed, and the new objects are known by id.
        new_ids = samples_of.last_new if confirmation.refrozen else None
        if new_ids is not None:
            _unfreeze()
        young = _get_objects()
        latest = list(compress(young, map(samples_of.last_new.__contains__, map(id, young))))
        one_run = samples_of.new_ids is samples_of.last_new
        if one_run:  # one fresh rerun: the same objects
            accumulated = list(latest)
        else:
            accumulated = list(compress(young, map(samples_of.new_ids.__contains__, map(id, young))))
        del young
        samples_of.forget()  # no more use for the ids (a million of them, in a large leak)
        name_of = {tp: type_name(tp) for tp in set(map(type, latest)) | set(map(type, accumulated))}
        name_of = {tp: name for tp, name in name_of.items() if name in confirmed}
        # A type filter leaves some growth out of what is confirmed: a bounded
        # container among it (a ``deque(maxlen=...)`` of an ignored type, kept per
        # run) is the test's growth, not a cache of what it holds.
        growth = (list(latest), list(accumulated)) if settings.filters_types else ()
        latest = list(compress(latest, map(name_of.__contains__, map(type, latest))))
        members = _samples(accumulated, latest, name_of)
        # Every new object of a leaked type: what stays, for the bounded-cache rule (the
        # last run may have replaced the run before's objects beside the cache's growth,
        # ``_bounded_holders``), and what threads the test left running may hold (below).
        check_threads = new_ids is None and len(accumulated) <= MAX_IN_FLIGHT and threading.active_count() > 1
        leaked = (
            list(compress(accumulated, map(name_of.__contains__, map(type, accumulated))))
            if check_threads or not one_run
            else []
        )
        stayed = [] if one_run else leaked
        ordered = sorted(confirmed.items(), key=lambda kv: (-kv[1], kv[0]))
        if check_threads:
            self._find_threads(leaked, name_of, [name for name, _ in ordered])
        if one_run:
            leaked.clear()  # no list of ours may hold them during the chain search
        del leaked
        accumulated.clear()
        name_of.clear()
        for name, n in ordered:
            verdict.leaks.append(Leak(name, n, growth=[g.get(name, 0) for g in confirmation.growth]))
        samples = [members.get(name, [])[: _settings.MAX_SAMPLES] for name, _ in ordered]
        members.clear()  # the samples are copies: nothing of ours may look like a referrer
        if settings.diagnosis:
            started = time.perf_counter()
            held = explain(
                verdict,
                samples,
                settings,
                self.item.nodeid,
                latest,
                new_ids,
                memo=self.memo,
                stayed=stayed,
                growth=growth,
            )
            verdict.diagnosis_seconds = time.perf_counter() - started
        else:
            if new_ids is not None:
                _freeze()
            held = {}
            verdict.notes.append(
                "diagnosis off (--gcguard-no-diagnosis): no samples, chains or graphs, and a bounded cache "
                "is recognised only when it replaces entries"
            )
        in_context: set[str] = set()
        if confirmation.replaced and not held:
            # Values the thread's context keeps: its map frees older nodes as it grows.
            by_context = context_held(latest)
            loose = set(map(type, compress(latest, map(not_, map(by_context.__contains__, map(id, latest))))))
            in_context = {type_name(tp) for tp in set(map(type, latest)) - loose}
            by_context.clear()
        samples.clear()
        latest.clear()
        stayed.clear()
        for objs in growth:
            objs.clear()
        del growth
        decision = set_aside(confirmation, [leak.name for leak in verdict.leaks], held, in_context)
        if in_context:
            verdict.notes.append(
                f"in rerun {confirmation.measured_in}, {confirmation.replaced} object(s) older than the test were "
                "freed, but the thread's context variables hold the new objects of "
                + ", ".join(sorted(in_context))
                + ": setting a variable frees the context's old map nodes, and a context evicts nothing"
            )
        if decision is None:
            if confirmation.remeasured and verdict.leaks and not confirmation.replaced:
                verdict.notes.append(
                    f"{confirmation.remeasured}; measured again in rerun {confirmation.measured_in}: "
                    "too few older objects were freed to balance the growth"
                )
            return
        verdict.suspicion = "bounded cache" if held else "replacing"
        verdict.notes.extend(decision.notes)
        verdict.set_aside = {leak.name: leak.count for leak in verdict.leaks if leak.name in decision.types}
        verdict.leaks = [leak for leak in verdict.leaks if leak.name not in decision.types]
        verdict.set_aside_reason = f"growth set aside: {decision.reason}"
        if verdict.leaks:
            verdict.notes.append(f"{verdict.set_aside_reason}: " + ", ".join(sorted(verdict.set_aside)))
        else:
            verdict.notes.append(verdict.set_aside_reason)
            remove_graphs(verdict.graphs)  # nothing reported: no graph
            verdict.notes[:] = [note for note in verdict.notes if not note.startswith("Graphviz 'dot' not found")]

    def _confirm(self, filt: TypeFilter, confirmation: Confirmation, samples: _Samples) -> None:
        """Run the test's protocol again, as the confirmation policy asks (``_policy``).

        Nothing is frozen between runs (except before the one rerun of a large
        growth), so an object of the first run that a rerun replaces (a cache
        slot, a reassigned global) dies and cancels out, while a real leak adds
        the same objects again on every run (CPython's ``-R`` rule).  A measuring
        rerun also counts the frozen objects that die while test code runs: a
        leak keeps new objects and frees nothing older, a full bounded cache
        frees an old entry for each new one.  Counted from the window's opening
        to the end of teardown's test code, with two readings (each walks the
        frozen heap: 20 ms on a million objects).  The runner's code between
        the phases is counted too: by the measuring rerun, what the runner
        replaces on every run (its per-phase records, the fixture request) was
        made by the rerun before, not frozen; and the policy asks a rerun that
        frees only one or two older objects (another thread's frame) to show
        it again before it counts (``_policy.STRONG_REPLACEMENT``).
        """
        item, window = self.item, self.window
        if confirmation.large:
            samples.forget()  # the first run's objects are frozen by the rerun
        stop_test_timer(item)
        # A rerun's entries in other plugins' result lists are dropped: the
        # session report shows the test once, as without gcguard.
        results = plugin_result_lists(item.config)
        lengths = [len(kept) for kept in results]
        while (rerun := confirmation.next_rerun()) is not None:
            rerun_window = Window(window.cycles, rerun=True)
            rerun_window.count_frozen = rerun.measure
            rerun_window.freeze_first = rerun.fresh
            threads = _thread_idents() if rerun.measure else 0
            failed = self.rerunner.rerun_once(item, window, rerun_window)
            for kept, length in zip(results, lengths, strict=True):
                del kept[length:]
            disturbed = rerun.measure and _thread_idents() != threads
            cyclic = 0
            if rerun_window.opened:
                list_runner(rerun_window)  # what the outer teardown wrappers made
                closed = close_window(rerun_window, cycle_text)
                cyclic = sum(filt.kept(closed.cyclic_types).values())
                del closed
            freed = rerun_window.frozen_freed
            window.runner.extend(rerun_window.runner)
            del rerun_window
            if failed:
                confirmation.fail(f"rerun {confirmation.attempts + 1} {failed}")
                return
            survivors = self._classify((*samples.own(confirmation), *self.own()), rerun=True)
            counts = self._count(survivors, filt)
            # Only a type that grew can be confirmed: its objects are the ones to tell apart.
            previous = {} if rerun.fresh else confirmation.counts[-1]
            grew = set()  # no comprehension: it would make ``previous`` a young cell
            for name, n in counts.items():
                if n > previous.get(name, 0):
                    grew.add(name)
            if (
                self.slots is not None
                and self.slots.can_learn()
                and not rerun.fresh
                and confirmation.attempts == 0
                and counts
                and counts == confirmation.counts[0]
                and not self.imported
            ):
                # Kept the same again, and the first run's died: a value rebound per run?
                self.replaced.extend(survivors.candidates())
            identities = survivors.identities(grew)
            samples.record(survivors.suspect_ids(), rerun.fresh, identities)
            del identities
            survivors.clear()
            del survivors
            # A large growth's one rerun that grew: what it replaced of the first
            # run's (frozen) objects died unseen if it was a cycle.  A full pass
            # counts it with the freed, and freezes this rerun's objects.
            refrozen = rerun.fresh and rerun.measure and any(n > 0 for n in counts.values())
            if refrozen:
                freed += frozen_garbage()
            confirmation.record(counts, freed=freed, cyclic=cyclic, disturbed=disturbed, refrozen=refrozen)
