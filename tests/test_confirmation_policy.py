"""Unit tests of the confirmation policy (``_policy.Confirmation``): pure logic, no gc, no pytest runs.

Each case is a first run's suspects and what each rerun measured; the policy
decides which reruns run (measuring or not, fresh or not) and what they prove.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from pytest_gcguard._policy import LARGE_GROWTH, Confirmation, Rerun, set_aside


@dataclass
class Case:
    first: dict[str, int]
    #: Per rerun: suspects by type after it, older objects it freed, and whether what it
    #: kept was frozen after it ("" fails it).
    measured: list[tuple[dict[str, int], int] | tuple[dict[str, int], int, bool] | str]
    #: The reruns the policy asked for, in order.
    asked: list[Rerun]
    confirmed: dict[str, int]
    replaced: int = 0
    failure: str = ""
    reruns: int = 2
    allowed: dict[str, int] = field(default_factory=dict)


PLAIN = Rerun(measure=False, fresh=False)
MEASURED = Rerun(measure=True, fresh=False)

CASES = {
    "a leak grows by the same in every rerun": Case(
        first={"Widget": 1},
        measured=[({"Widget": 2}, 0), ({"Widget": 3}, 0)],
        asked=[PLAIN, MEASURED],
        confirmed={"Widget": 1},
    ),
    "a first-use cache stops after the first run": Case(
        first={"Widget": 1},
        measured=[({"Widget": 1}, 0)],
        asked=[PLAIN],
        confirmed={},
    ),
    "growth must repeat in every rerun, type by type": Case(
        first={"Widget": 1, "list": 3},
        measured=[({"Widget": 2, "list": 5}, 0), ({"Widget": 3, "list": 5}, 0)],
        asked=[PLAIN, MEASURED],
        confirmed={"Widget": 1},
    ),
    "the least growth seen is what is confirmed": Case(
        first={"Widget": 5},
        measured=[({"Widget": 8}, 0), ({"Widget": 10}, 0), ({"Widget": 12}, 0), ({"Widget": 14}, 0)],
        # [3, 2] is uneven: two more reruns must grow too.
        asked=[PLAIN, MEASURED, PLAIN, PLAIN],
        confirmed={"Widget": 2},
    ),
    "a full bounded cache frees an old entry for each new one": Case(
        first={"Entry": 4},
        measured=[({"Entry": 8}, 0), ({"Entry": 12}, 4)],
        asked=[PLAIN, MEASURED],
        confirmed={"Entry": 4},
        replaced=4,
    ),
    "too few freed to balance what was kept is growth": Case(
        first={"Entry": 10},
        measured=[({"Entry": 20}, 0), ({"Entry": 30}, 4)],
        asked=[PLAIN, MEASURED],
        confirmed={"Entry": 10},
    ),
    "one or two freed must be seen again in one more rerun": Case(
        first={"Entry": 1},
        measured=[({"Entry": 2}, 0), ({"Entry": 3}, 1), ({"Entry": 4}, 1)],
        asked=[PLAIN, MEASURED, MEASURED],
        confirmed={"Entry": 1},
        replaced=1,
    ),
    "one or two freed once only is growth": Case(
        first={"Entry": 1},
        measured=[({"Entry": 2}, 0), ({"Entry": 3}, 1), ({"Entry": 4}, 0)],
        asked=[PLAIN, MEASURED, MEASURED],
        confirmed={"Entry": 1},
    ),
    "a failing rerun leaves the suspicion unconfirmed": Case(
        first={"Widget": 1},
        measured=["failed in call"],
        asked=[PLAIN],
        confirmed={"Widget": 1},
        failure="failed in call",
    ),
    "allowed growth is not confirmed": Case(
        first={"Widget": 2},
        measured=[({"Widget": 4}, 0)],
        asked=[PLAIN],
        confirmed={},
        allowed={"Widget": 2},
    ),
    "more reruns asked for, more reruns run": Case(
        first={"Widget": 1},
        measured=[({"Widget": 2}, 0), ({"Widget": 3}, 0), ({"Widget": 4}, 0), ({"Widget": 5}, 0)],
        asked=[PLAIN, PLAIN, PLAIN, MEASURED],
        confirmed={"Widget": 1},
        reruns=4,
    ),
    "one rerun asked for still gets the measuring second": Case(
        first={"Widget": 1},
        measured=[({"Widget": 2}, 0), ({"Widget": 3}, 0)],
        asked=[PLAIN, MEASURED],
        confirmed={"Widget": 1},
        reruns=1,
    ),
    "no reruns: the first run is trusted": Case(
        first={"Widget": 1},
        measured=[],
        asked=[],
        confirmed={"Widget": 1},
        reruns=0,
    ),
    "a large growth is judged by one fresh measuring rerun": Case(
        first={"Row": LARGE_GROWTH},
        measured=[({"Row": LARGE_GROWTH}, 0)],
        asked=[Rerun(measure=True, fresh=True)],
        confirmed={"Row": LARGE_GROWTH},
    ),
    "a large first-use table does not come back": Case(
        first={"Row": LARGE_GROWTH},
        measured=[({}, 0)],
        asked=[Rerun(measure=True, fresh=True)],
        confirmed={},
    ),
    "a large replaced global goes on with ordinary reruns, which cancel it out": Case(
        first={"Row": LARGE_GROWTH},
        measured=[({"Row": LARGE_GROWTH}, LARGE_GROWTH), ({"Row": LARGE_GROWTH}, 0)],
        asked=[Rerun(measure=True, fresh=True), PLAIN],
        confirmed={},
    ),
    "a large leak beside a replaced object is confirmed by ordinary reruns, type by type": Case(
        first={"Row": LARGE_GROWTH, "set": 1},
        # The fresh rerun shows the replaced set as +1; the ordinary reruns do not.
        measured=[
            ({"Row": LARGE_GROWTH, "set": 1}, LARGE_GROWTH // 10),
            ({"Row": 2 * LARGE_GROWTH, "set": 1}, 0),
            ({"Row": 3 * LARGE_GROWTH, "set": 1}, 0),
        ],
        asked=[Rerun(measure=True, fresh=True), PLAIN, MEASURED],
        confirmed={"Row": LARGE_GROWTH},
    ),
    "a large replaced cycle, counted as frozen garbage, goes on fresh, then ordinary": Case(
        first={"Row": LARGE_GROWTH},
        # The full pass after the one rerun froze its objects: the next rerun is fresh too.
        measured=[({"Row": LARGE_GROWTH}, LARGE_GROWTH, True), ({"Row": LARGE_GROWTH}, 0), ({"Row": LARGE_GROWTH}, 0)],
        asked=[Rerun(measure=True, fresh=True), Rerun(measure=False, fresh=True), PLAIN],
        confirmed={},
    ),
    "a large leak after a replaced cycle is confirmed by the ordinary reruns": Case(
        first={"Row": LARGE_GROWTH, "Cache": 1},
        measured=[
            ({"Row": LARGE_GROWTH, "Cache": 1}, LARGE_GROWTH // 10, True),
            ({"Row": LARGE_GROWTH, "Cache": 1}, 0),
            ({"Row": 2 * LARGE_GROWTH, "Cache": 1}, 0),
            ({"Row": 3 * LARGE_GROWTH, "Cache": 1}, 0),
        ],
        asked=[Rerun(measure=True, fresh=True), Rerun(measure=False, fresh=True), PLAIN, MEASURED],
        confirmed={"Row": LARGE_GROWTH},
    ),
    "a few older objects freed (the runner's) keep a large growth's one rerun": Case(
        first={"Row": LARGE_GROWTH, "dict": 3},
        measured=[({"Row": LARGE_GROWTH, "dict": 3}, 40)],
        asked=[Rerun(measure=True, fresh=True)],
        confirmed={"Row": LARGE_GROWTH, "dict": 3},
    ),
}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_confirmation_policy(case: Case) -> None:
    confirmation = Confirmation(dict(case.first), case.reruns, lambda name: case.allowed.get(name, 0))
    asked: list[Rerun] = []
    measured = list(case.measured)
    while (rerun := confirmation.next_rerun()) is not None:
        asked.append(rerun)
        assert measured, f"asked for rerun {len(asked)}, which the case does not expect"
        outcome = measured.pop(0)
        if isinstance(outcome, str):
            confirmation.fail(outcome)
        else:
            counts, freed, *refrozen = outcome
            confirmation.record(counts, freed=freed, refrozen=any(refrozen))
    assert asked == case.asked
    assert not measured, "the case measured reruns the policy did not ask for"
    assert confirmation.attempts == len(case.asked)
    assert confirmation.failure == case.failure
    assert confirmation.confirmed() == case.confirmed
    assert confirmation.replaced == case.replaced


def test_cycles_keep_the_confirmation_going_while_they_repeat() -> None:
    confirmation = Confirmation({}, 2, lambda name: 0)  # the first run left cycles only
    assert confirmation.next_rerun() == PLAIN
    confirmation.record({}, cyclic=3)
    assert confirmation.cycles_repeat()
    assert confirmation.next_rerun() == PLAIN  # no growth, but the cycles repeat
    confirmation.record({}, cyclic=0)
    assert not confirmation.cycles_repeat()
    assert confirmation.next_rerun() is None


def test_types_the_first_runs_imports_made_can_be_confirmed_by_reruns() -> None:
    """The first run set aside what its imports made (``Linter`` among it): a rerun's new
    ``Linter`` that stays is growth, confirmed like any other."""
    confirmation = Confirmation({}, 2, lambda name: 0, imported={"Linter": 1, "function": 40})
    assert confirmation.next_rerun() == PLAIN
    confirmation.record({"Linter": 1})
    assert confirmation.confirmed() == {"Linter": 1}
    assert confirmation.next_rerun() == MEASURED
    confirmation.record({"Linter": 2})
    assert confirmation.next_rerun() is None
    assert confirmation.confirmed() == {"Linter": 1}


def test_an_import_alone_is_cleared_by_one_rerun() -> None:
    confirmation = Confirmation({}, 2, lambda name: 0, imported={"function": 40})
    assert confirmation.next_rerun() == PLAIN
    confirmation.record({})
    assert confirmation.next_rerun() is None
    assert confirmation.confirmed() == {}


def _measured(replaced: int, kept: int, attempts: int = 2) -> Confirmation:
    confirmation = Confirmation({"Entry": kept}, 2, lambda name: 0)
    confirmation.replaced, confirmation.kept, confirmation.attempts = replaced, kept, attempts
    confirmation.measured_in = attempts
    return confirmation


def test_growth_is_set_aside_only_for_a_bounded_cache() -> None:
    # No declared bound and nothing older freed: reported.
    assert set_aside(_measured(0, 4), ["Entry", "dict"], {}) is None
    # Older objects freed as new ones were kept: all of the growth replaces, none adds.
    decision = set_aside(_measured(4, 4), ["Entry", "dict"], {})
    assert decision is not None
    assert decision.types == {"Entry", "dict"}
    assert decision.reason == (
        "in rerun 2 the test kept 4 new object(s) while 4 object(s) older than the test were freed, "
        "so it replaces what was there (a bounded cache at capacity, say) rather than adding to it"
    )
    assert decision.notes == ()


def test_a_declared_bound_sets_aside_only_the_types_it_holds() -> None:
    held = {"Entry": "functools.lru_cache(maxsize=128)"}
    decision = set_aside(_measured(0, 4), ["Entry", "Other"], held)
    assert decision is not None
    assert decision.types == {"Entry"}
    assert decision.reason == (
        "held only by a bounded cache (functools.lru_cache(maxsize=128)), which stops growing at its bound"
    )
    # With older objects freed too, the report says so and reports what the cache does not hold.
    decision = set_aside(_measured(4, 4), ["Entry", "Other"], held)
    assert decision is not None
    assert decision.types == {"Entry"}
    assert "replacing its entries" in decision.reason
    assert decision.notes == (
        "in rerun 2 the test kept 4 new object(s) while 4 object(s) older than the test were freed; "
        "the types not held by functools.lru_cache(maxsize=128) are reported",
    )


def test_older_objects_freed_no_more_than_the_turnover_are_measured_again() -> None:
    """A per-example leak of 20 lists in a Hypothesis test: its second rerun also rebuilt
    Hypothesis's constants of the module (74 new objects, 17 of them lists, the 74 old ones
    freed).  What was freed is no more than what does not repeat, so nothing shows that the
    repeated growth replaced anything: the third rerun measures again, and frees nothing."""
    confirmation = Confirmation({"list": 22, "tuple": 3}, 2, lambda name: 0)
    runs = [
        ({"list": 42, "tuple": 3}, 0, PLAIN),
        ({"list": 79, "tuple": 60}, 74, MEASURED),  # kept 37 + 57 = 94
        ({"list": 99, "tuple": 60}, 0, MEASURED),
        # [20, 37, 20] is uneven: two more reruns must grow too.
        ({"list": 119, "tuple": 61}, 0, PLAIN),
        ({"list": 139, "tuple": 61}, 0, PLAIN),
    ]
    while (rerun := confirmation.next_rerun()) is not None:
        counts, freed, asked = runs.pop(0)
        assert rerun == asked
        confirmation.record(counts, freed=freed)
    assert not runs
    assert confirmation.confirmed() == {"list": 20}
    assert (confirmation.kept, confirmation.replaced, confirmation.measured_in) == (20, 0, 3)
    assert set_aside(confirmation, ["list"], {}) is None
    assert confirmation.remeasured == (
        "in rerun 2 the test kept 94 new object(s) while 74 object(s) older than the test were freed, "
        "with 74 of the new objects not repeated growth"
    )


@pytest.mark.parametrize(
    ("third", "kept"),
    [
        pytest.param({"list": 12, "set": 3}, 3, id="alone when measured again"),
        pytest.param({"list": 12, "set": 6}, 6, id="mixed twice: it stands"),
    ],
)
def test_a_full_cache_beside_other_new_objects_is_set_aside_once_measured_again(
    third: dict[str, int], kept: int
) -> None:
    """An undeclared-bound cache at capacity replaces 3 lists per run; the measured rerun
    also kept 3 new sets, which do not repeat.  Measured again, the replacement is set aside
    (and when the same mix shows again, it cannot be told from a full cache's: set aside)."""
    confirmation = Confirmation({"list": 3}, 2, lambda name: 0)
    runs = [
        ({"list": 6}, 0, PLAIN),
        ({"list": 9, "set": 3}, 3, MEASURED),
        (third, 3, MEASURED),
    ]
    while (rerun := confirmation.next_rerun()) is not None:
        counts, freed, asked = runs.pop(0)
        assert rerun == asked
        confirmation.record(counts, freed=freed)
    assert not runs
    assert confirmation.confirmed() == {"list": 3}
    decision = set_aside(confirmation, ["list"], {})
    assert decision is not None
    assert decision.types == {"list"}
    assert decision.reason.startswith(
        f"in rerun 3 the test kept {kept} new object(s) while 3 object(s) older than the test were freed, so it"
    )


def test_what_the_threads_context_holds_is_never_a_replacement() -> None:
    """A context frees its old map nodes as it gains values, and evicts nothing: the types
    whose new objects its variables hold stay reported beside older objects freed."""
    decision = set_aside(_measured(4, 4), ["Entry", "Storage"], {}, in_context={"Storage"})
    assert decision is not None
    assert decision.types == {"Entry"}
    assert set_aside(_measured(4, 4), ["Storage"], {}, in_context={"Storage"}) is None


def test_a_thread_that_ends_during_the_measured_rerun_gets_it_measured_again() -> None:
    """Older objects freed while a thread started or ended may be the thread's: measure once more."""
    confirmation = Confirmation({"Widget": 1}, 2, lambda name: 0)
    assert confirmation.next_rerun() == PLAIN
    confirmation.record({"Widget": 2})
    assert confirmation.next_rerun() == MEASURED
    confirmation.record({"Widget": 3}, freed=40, disturbed=True)  # the thread's frame and state
    assert confirmation.next_rerun() == MEASURED
    confirmation.record({"Widget": 4}, freed=0)
    assert confirmation.next_rerun() is None
    assert confirmation.confirmed() == {"Widget": 1}
    assert confirmation.replaced == 0
    assert set_aside(confirmation, ["Widget"], {}) is None


def test_a_measurement_disturbed_twice_believes_no_freed_object() -> None:
    confirmation = Confirmation({"Widget": 1}, 2, lambda name: 0)
    confirmation.next_rerun()
    confirmation.record({"Widget": 2})
    confirmation.next_rerun()
    confirmation.record({"Widget": 3}, freed=40, disturbed=True)
    confirmation.next_rerun()
    confirmation.record({"Widget": 4}, freed=40, disturbed=True)
    assert confirmation.next_rerun() is None
    assert (confirmation.confirmed(), confirmation.replaced) == ({"Widget": 1}, 0)


def test_an_undisturbed_replacement_is_still_a_bounded_cache() -> None:
    confirmation = Confirmation({"Entry": 4}, 2, lambda name: 0)
    confirmation.next_rerun()
    confirmation.record({"Entry": 8})
    confirmation.next_rerun()
    confirmation.record({"Entry": 12}, freed=4)
    assert confirmation.next_rerun() is None
    decision = set_aside(confirmation, ["Entry"], {})
    assert decision is not None
    assert decision.types == frozenset({"Entry"})
