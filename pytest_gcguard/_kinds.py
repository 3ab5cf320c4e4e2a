"""The kinds of finding, in one table: what the report text, the JSON record, JUnit and the baseline say of each.

A finding kind is read from a ``Verdict`` (while the test is being judged) or
from its JSON-ready record (on the xdist controller, for the baseline and the
summary).  Adding a kind means adding a row here and its section of the
failure text (``Verdict.message``); every other place reads this table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._report import Verdict

#: A baseline's numbers for one kind: counts by type, or one count.
Counts = Mapping[str, int] | int


@dataclass(frozen=True)
class Kind:
    #: Key of the kind in a baseline entry (and ``Entry``'s attribute).
    key: str
    #: The verdict a test with this finding gets (``clean`` when it has none).
    verdict: str
    #: How much of it a verdict holds (0: none).
    amount: Callable[[Verdict], int]
    #: The failure headline's part: "3 leaked object(s)".
    headline: Callable[[int], str]
    #: The one-line summary's part (``Verdict.summary_line``).
    summary: Callable[[Verdict], str]
    #: The baseline's numbers, read from a record.
    counts: Callable[[Mapping[str, Any]], Counts]
    #: Summary-table rows ``(label, count)`` from a baseline's numbers.
    rows: Callable[[Counts], list[tuple[str, int]]]
    #: How a number beyond the baseline is named: label(type or "", count, baseline count).
    beyond: Callable[[str, int, int], str]
    #: JUnit ``<property>`` entries (name, value) from a record.
    junit: Callable[[Mapping[str, Any]], list[tuple[str, object]]]


def _leaked_summary(verdict: Verdict) -> str:
    shown = ", ".join(f"{leak.name} x{leak.count}" for leak in verdict.leaks[:4])
    more = len(verdict.leaks) - 4
    return shown + (f" (+{more} more types)" if more > 0 else "")


def _by_type(counts: Counts) -> Mapping[str, int]:
    return counts if isinstance(counts, Mapping) else {}


def _number(counts: Counts) -> int:
    return counts if isinstance(counts, int) else 0


def _memory(record: Mapping[str, Any], key: str) -> int:
    memory = record.get("memory") or {}
    return int(memory.get(key) or 0)


def _per_run(key: str, noun: str, label: str) -> Kind:
    """A refs-mode kind: ``noun`` lost in every measured run (``Verdict.<key>_leaked``)."""

    def amount(verdict: Verdict) -> int:
        return int(getattr(verdict, f"{key}_leaked"))

    return Kind(
        key=key,
        verdict="leaked",
        amount=amount,
        headline=lambda n: f"{n} {noun} per run",
        summary=lambda v: f"{label} +{amount(v)}/run",
        counts=lambda r: _memory(r, f"{key}_per_run"),
        rows=lambda c: [(f"{label} per run", _number(c))] if _number(c) else [],
        beyond=lambda _, n, before: f"{n} {noun} per run (baseline {before})",
        junit=lambda r: [],
    )


KINDS: tuple[Kind, ...] = (
    Kind(
        key="leaked",
        verdict="leaked",
        amount=lambda v: sum(leak.count for leak in v.leaks),
        headline=lambda n: f"{n} leaked object(s)",
        summary=_leaked_summary,
        counts=lambda r: {str(leak["type"]): int(leak["count"]) for leak in r.get("leaked", ())},
        rows=lambda c: list(_by_type(c).items()),
        beyond=lambda name, n, before: f"{name} x{n} (baseline {before})",
        junit=lambda r: (
            [
                ("gcguard_leaked_objects", sum(int(leak["count"]) for leak in r["leaked"])),
                ("gcguard_leaked_types", ",".join(f"{leak['type']}={leak['count']}" for leak in r["leaked"])),
            ]
            if r.get("leaked")
            else []
        ),
    ),
    Kind(
        key="uncollectable",
        verdict="uncollectable",
        amount=lambda v: sum(v.uncollectable.values()),
        headline=lambda n: f"{n} uncollectable object(s) in gc.garbage",
        summary=lambda v: "uncollectable " + ", ".join(f"{k} x{n}" for k, n in sorted(v.uncollectable.items())),
        counts=lambda r: {str(k): int(n) for k, n in (r.get("uncollectable") or {}).items()},
        rows=lambda c: [(f"{name} (uncollectable)", n) for name, n in _by_type(c).items()],
        beyond=lambda name, n, before: f"{name} uncollectable x{n} (baseline {before})",
        junit=lambda r: [("gcguard_uncollectable", sum(r["uncollectable"].values()))] if r.get("uncollectable") else [],
    ),
    Kind(
        key="cycles",
        verdict="cycles",
        amount=lambda v: v.cyclic,
        headline=lambda n: f"{n} object(s) in reference cycles",
        summary=lambda v: f"cycles x{v.cyclic}",
        counts=lambda r: int(r["cycles"]["count"]) if r.get("cycles") else 0,
        rows=lambda c: [("objects in reference cycles", _number(c))] if _number(c) else [],
        beyond=lambda _, n, before: f"{n} object(s) in reference cycles (baseline {before})",
        junit=lambda r: [("gcguard_cycles", r["cycles"]["count"])] if r.get("cycles") else [],
    ),
    _per_run("blocks", "memory block(s)", "memory blocks"),
    _per_run("references", "reference(s)", "references"),
)

#: Which verdict a test with several kinds of finding gets: the first that applies.
VERDICT_ORDER = ("leaked", "uncollectable", "cycles")
#: Keys of a baseline entry.
KEYS = tuple(kind.key for kind in KINDS)


def found(verdict: Verdict) -> list[tuple[Kind, int]]:
    """The kinds a verdict holds, with their amounts, in table order."""
    return [(kind, n) for kind in KINDS if (n := kind.amount(verdict))]


def verdict_name(verdict: Verdict | None) -> str:
    if verdict is None:
        return "clean"
    names = {kind.verdict for kind, _ in found(verdict)}
    return next((name for name in VERDICT_ORDER if name in names), "clean")
