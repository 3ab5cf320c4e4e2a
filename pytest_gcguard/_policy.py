"""The confirmation policy: which reruns a suspected leak gets, and what they prove.

Pure logic, no gc and no pytest: per-rerun counts of suspects (by type name)
and counts of older objects freed go in; "rerun (measuring or not)",
"confirmed", "cleared", "not confirmed" and the bounded-cache signature
(objects kept while as many older ones were freed) come out, and
``set_aside`` decides which confirmed growth only feeds a bounded cache.
The judge (``_judge.Judge._confirm``) runs the reruns this asks for and feeds
back what it measured; the unit tests drive it with tables of measurements.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

#: The rerun in which objects older than the test that die are counted: the
#: first rerun also frees what collection made (the fixture request).
REPLACEMENT_RERUN = 2
#: Fewer older objects freed than this must be seen in two reruns to count
#: (another thread leaving a frame frees one or two as well).
STRONG_REPLACEMENT = 3
#: Reruns added when the confirmed growth differs from rerun to rerun.
UNEVEN_RERUNS = 2
#: A first run that kept at least this many objects is confirmed (or cleared) by
#: one rerun, which freezes what the first run kept and counts the older objects
#: that die: a second rerun would keep another copy of a huge leak alive.  The
#: price: what that rerun replaces of the first run's is frozen, so it is not
#: cancelled out; it is seen only dying (a replaced cycle, as frozen garbage, by
#: a full pass after the rerun), and a few deaths are taken for the runner's
#: (``FRESH_FREED_SHARE``).  Below this, ordinary reruns cancel replacements
#: out exactly (pyparsing's packrat cache replaced per test, 11,000-74,000
#: objects; cattrs' Hypothesis tests, 10,600, which also rebind a set per run).
LARGE_GROWTH = 100_000
#: A fresh rerun's counts are all growth only if few older objects died in it:
#: an object the rerun replaced (a reassigned attribute) is frozen, dies and
#: shows as +1 of its type.  Freed objects up to this share of what the rerun
#: kept are taken as such noise (the fixture request, the runner's); more, and
#: the confirmation goes on with ordinary reruns, which cancel replacements out.
FRESH_FREED_SHARE = 0.01
#: A measured rerun that freed more than this many times what it kept (a one-off
#: clear of older objects beside a leak) is measured again, as one whose new
#: objects are not all repeated growth is.
MIXED_FREED_SHARE = 2


@dataclass(frozen=True)
class Rerun:
    """What the next rerun must do."""

    #: Count the older objects that die while test code runs (O(heap) readings).
    measure: bool
    #: Freeze what earlier runs kept first: the rerun's counts are all growth.
    fresh: bool


class Confirmation:
    """A suspected leak's confirmation, rerun by rerun.

    ``allowed(name)`` is how many new objects of a type a run may keep.  Use::

        while (rerun := confirmation.next_rerun()) is not None:
            ...run the test again as ``rerun`` says...
            confirmation.record(counts, freed=..., cyclic=...)   # or .fail(reason)
    """

    def __init__(
        self, first: dict[str, int], reruns: int, allowed: Callable[[str], int], imported: Iterable[str] = ()
    ) -> None:
        #: Suspects by type name after each run (the first run's, then each rerun's).
        self.counts: list[dict[str, int]] = [first]
        #: Types of what the first run's imports made, set aside in that run: a
        #: rerun's new objects of these types may be growth too (into the module).
        self.imported = frozenset(imported).difference(first)
        #: Growth of each rerun over the run before.
        self.growth: list[dict[str, int]] = []
        #: Objects in real cycles in each rerun (strict mode).
        self.cyclic: list[int] = []
        self.reruns = reruns
        self.allowed = allowed
        self.failure = ""
        self.attempts = 0
        #: Older objects freed in the measured rerun, and the objects it kept:
        #: the signature of a full bounded cache (0 when it does not apply).
        self.replaced = 0
        self.kept = 0
        #: The measured rerun (1-based).
        self.measured_in = 0
        self.large = sum(first.values()) >= LARGE_GROWTH
        self._planned = 1 if self.large else max(reruns, REPLACEMENT_RERUN)
        self._weak = False  # a first, small replacement signal, which must repeat
        #: A first replacement signal that the rerun's other new objects account for.
        self._mixed = False
        #: Why a first replacement signal was measured again ("" if it was not).
        self.remeasured = ""
        self._disturbed = False  # a measured rerun during which a thread started or ended
        self._measured = False
        self._uneven = False
        self._pending: Rerun | None = None
        self._done = reruns <= 0
        #: What the last rerun kept was frozen after it: the next rerun's counts are all growth.
        self._refrozen = False

    # -- what to do next ------------------------------------------------------

    def next_rerun(self) -> Rerun | None:
        """The next rerun to run, or None when the confirmation is over."""
        if self._done or self.attempts >= self._planned:
            return None
        growing = self.attempts == 0 or bool(self.confirmed())
        if not growing and not self.cycles_repeat():
            return None  # nothing repeats any more: no leak to confirm
        if self.attempts >= self.reruns and not growing:
            return None  # the extra reruns only look at growth
        measure = self.attempts + 1 == self._planned and growing and not self._measured
        self._pending = Rerun(measure=measure, fresh=self.large or self._refrozen)
        self._refrozen = False
        return self._pending

    def fail(self, reason: str) -> None:
        """The rerun asked for did not pass: the suspicion stays unconfirmed."""
        self.attempts += 1
        self.failure = reason
        self._done = True

    def record(
        self, counts: dict[str, int], freed: int = 0, cyclic: int = 0, disturbed: bool = False, refrozen: bool = False
    ) -> None:
        """What the rerun asked for measured: suspects by type, older objects freed.

        ``refrozen``: after a fresh rerun, a full pass collected the frozen
        garbage (counted in ``freed``: a replaced cycle of the first run's) and
        froze what the rerun kept, so a rerun after it is fresh too.

        ``disturbed``: a thread started or ended during the rerun, so some of
        the older objects freed may be its own (a thread's frame and state): the
        freed count proves nothing, and one more rerun measures again.  Twice
        disturbed, nothing freed is believed: the growth is taken as growth.
        """
        rerun = self._pending or Rerun(measure=False, fresh=False)
        self._pending = None
        self.attempts += 1
        self._refrozen = refrozen
        previous: dict[str, int] = {} if rerun.fresh else self.counts[-1]
        self.growth.append({name: n - previous.get(name, 0) for name, n in counts.items()})
        self.counts.append(counts)
        self.cyclic.append(cyclic)
        if rerun.measure and disturbed:
            if not self._disturbed:
                self._disturbed = True
                self._planned += 1
                return
            freed = 0
        if rerun.measure:
            self._judge_replacement(freed)
        if self.attempts == self._planned and not self._uneven and self.uneven():
            # Growth that differs from rerun to rerun ([16, 31]) is also what a
            # bounded cache refilled with random content leaves: as many entries
            # as the last run happened to keep.  Two more reruns must grow too.
            self._uneven = True
            self._planned += UNEVEN_RERUNS

    def _judge_replacement(self, freed: int) -> None:
        self.measured_in = self.attempts
        kept = self.kept = sum(max(0, n) for n in self.growth[-1].values())
        self.replaced = freed = max(0, freed)
        if self.large and freed >= max(STRONG_REPLACEMENT, kept * FRESH_FREED_SHARE):
            # Replacements hide in a fresh rerun's counts: confirm as for small growth
            # (after a fresh rerun first, when this one's objects were frozen after it).
            self.large = False
            self.replaced = 0
            self._planned = self.attempts + max(self.reruns, REPLACEMENT_RERUN) + self._refrozen
            return
        if freed < max(1, kept / 2):
            self.replaced = 0  # too few to balance what was kept: growth
        elif freed < STRONG_REPLACEMENT and not self._weak:
            # One or two: what another thread frees looks the same.  Only the
            # same again in one more rerun counts.
            self._weak = True
            self.replaced = 0
            self._planned += 1
            return
        elif not self._mixed and ((turnover := self._turnover()) or freed > MIXED_FREED_SHARE * kept):
            # The rerun also kept new objects that are not repeated growth (a global
            # rebuilt once beside a leak: Hypothesis's constants of the module, 74
            # objects for 74 freed, beside 20 leaked lists), or freed far more than
            # it kept (a one-off clear): which of what it kept replaced what it
            # freed cannot be told, and a leak of one object hides in any such mix.
            # One more rerun measures again; mixed a second time, the replacement
            # stands (it cannot be told from a full cache's).
            self._mixed = True
            why = (
                f"{turnover} of the new objects not repeated growth"
                if turnover
                else f"more than {MIXED_FREED_SHARE} times as many as were kept"
            )
            self.remeasured = (
                f"in rerun {self.attempts} the test kept {kept} new object(s) while {freed} object(s) older "
                f"than the test were freed, with {why}"
            )
            self.replaced = 0
            self._planned += 1
            return
        self._measured = True

    def _repeating(self) -> int:
        """New objects per run that repeat in every rerun so far (the least growth of each type)."""
        return sum(max(0, n) for n in self.confirmed().values())

    def _turnover(self) -> int:
        """The last rerun's new objects that are not repeated growth (other types', or beyond the least)."""
        return max(0, self.kept - self._repeating())

    # -- what it shows --------------------------------------------------------

    @property
    def refrozen(self) -> bool:
        """What the last rerun kept was frozen after it (see ``record``)."""
        return self._refrozen

    def confirmed(self) -> dict[str, int]:
        """Types whose growth repeated in every rerun so far, with the least growth seen."""
        confirmed: dict[str, int] = {}
        for name, n in self.counts[0].items():
            growth = [g.get(name, 0) for g in self.growth]
            if not growth:
                confirmed[name] = n
            elif min(growth) > self.allowed(name):
                confirmed[name] = min(growth)
        if self.growth:
            for name in self.imported:
                least = min(g.get(name, 0) for g in self.growth)
                if least > self.allowed(name):
                    confirmed[name] = least
        return confirmed

    def uneven(self) -> bool:
        """Some type's growth, confirmed so far, differs between reruns."""
        return any(len({g.get(name, 0) for g in self.growth}) > 1 for name in self.confirmed())

    def cycles_repeat(self) -> bool:
        return bool(self.cyclic) and min(self.cyclic) > 0


@dataclass(frozen=True)
class SetAside:
    """Confirmed growth not reported: which types, why, and notes for the report."""

    types: frozenset[str]
    reason: str
    notes: tuple[str, ...] = ()


def set_aside(
    confirmation: Confirmation, leaked: list[str], held: Mapping[str, str], in_context: Iterable[str] = ()
) -> SetAside | None:
    """Which confirmed growth only feeds a bounded cache, or None.

    ``held``: leaked types (name: the cache) whose newest objects all hang off
    a cache that declares its bound (found on the why-alive chains).  Without
    one, the older objects freed as the new ones were kept in the measuring
    rerun (``confirmation.replaced``) are the one sign of a full cache, and
    then all of the growth is set aside but ``in_context``: types whose new
    objects the thread's context variables hold (a context frees its old map
    nodes as it gains values, and evicts nothing).
    """
    freed = (
        f"in rerun {confirmation.measured_in} the test kept {confirmation.kept} new object(s) while "
        f"{confirmation.replaced} object(s) older than the test were freed"
        if confirmation.replaced
        else ""
    )
    if held:
        caches = ", ".join(sorted(set(held.values())))
        kind = " replacing its entries" if freed else ""
        reason = f"held only by a bounded cache{kind} ({caches}), which stops growing at its bound"
        notes = (f"{freed}; the types not held by {caches} are reported",) if freed else ()
        return SetAside(frozenset(held), reason, notes)
    replacing = frozenset(leaked).difference(in_context)
    if freed and replacing:
        reason = f"{freed}, so it replaces what was there (a bounded cache at capacity, say) rather than adding to it"
        return SetAside(replacing, reason)
    return None
