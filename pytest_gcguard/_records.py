"""What a CI pipeline reads: per-test records, the JSON report, the baseline of known leaks.

A *record* is a plain, JSON-ready dict describing what gcguard decided for one
test.  It is attached to the test's teardown report (``report.gcguard``), so it
travels through pytest-xdist to the controller, where the whole run's records
are gathered into the JSON report, the baseline comparison and the summary.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from ._kinds import KEYS, KINDS, verdict_name
from ._report import Verdict

#: Version of the JSON report's and the baseline file's layout (bumped only on incompatible change).
SCHEMA = 1

#: What gcguard found.  ``leaked`` wins over ``uncollectable``, which wins over ``cycles``;
#: the record's fields give every kind found.
VERDICTS = ("clean", "leaked", "uncollectable", "cycles", "skipped")
#: What gcguard did about it.
OUTCOMES = ("passed", "failed", "warned", "expected", "baselined", "recorded", "skipped")

BASELINE_KEY = "gcguard_baseline"
#: What a record's ``seconds`` field times (report only: no verdict reads it).
SECONDS = ("reruns", "diagnosis")


def make_record(nodeid: str, verdict: Verdict | None, reruns: int = 0) -> dict[str, Any]:
    """The record of a judged test (its outcome is filled in by the caller)."""
    record: dict[str, Any] = {
        "nodeid": nodeid,
        "verdict": verdict_name(verdict),
        "outcome": "passed",
        "reason": "",
        "leaked": [],
        "uncollectable": {},
        "cycles": None,
        "memory": None,
        "reruns": reruns,
        "seconds": dict.fromkeys(SECONDS, 0.0),
        "notes": [],
        "graphs": [],
        "set_aside": None,
        "suspicion": None,
    }
    if verdict is None:
        return record
    if verdict.suspicion:
        record["suspicion"] = {"cause": verdict.suspicion, "first_run": dict(verdict.first_run)}
    if verdict.set_aside_reason:
        record["set_aside"] = {"reason": verdict.set_aside_reason, "types": dict(sorted(verdict.set_aside.items()))}
    record["leaked"] = [
        {
            "type": leak.name,
            "count": leak.count,
            "growth": list(leak.growth),
            "samples": list(leak.samples),
            "why_alive": leak.chain,
            "root": leak.root,
            "allocated_at": list(leak.allocated),
        }
        for leak in verdict.leaks
    ]
    record["uncollectable"] = dict(sorted(verdict.uncollectable.items()))
    if verdict.cyclic:
        record["cycles"] = {
            "count": verdict.cyclic,
            "types": dict(sorted(verdict.cyclic_types.items())),
            "example": verdict.cycle_chain,
        }
    if verdict.blocks or verdict.references:
        record["memory"] = {
            "blocks": list(verdict.blocks),
            "references": list(verdict.references) or None,
            "blocks_per_run": verdict.blocks_leaked,
            "references_per_run": verdict.references_leaked,
        }
    record["seconds"] = {"reruns": round(verdict.rerun_seconds, 3), "diagnosis": round(verdict.diagnosis_seconds, 3)}
    record["notes"] = list(verdict.notes)
    record["graphs"] = list(verdict.graphs)
    return record


#: The record of every clean test, shared: a suite of 60,000 clean tests keeps
#: one small dict, not 60,000 (``full_record`` gives the whole layout).
CLEAN: Mapping[str, Any] = {"verdict": "clean", "outcome": "passed", "reruns": 0}


def full_record(nodeid: str, record: Mapping[str, Any]) -> dict[str, Any]:
    """A record with every field of the JSON layout (``CLEAN`` has only a few)."""
    full = make_record(nodeid, None)
    full.update(record)
    return full


def skipped_record(nodeid: str, reason: str, unconfirmed: Verdict | None = None) -> dict[str, Any]:
    """The record of a test gcguard was asked to check but did not judge.

    ``unconfirmed``: the verdict whose confirmation a failed rerun ended: its
    reruns and their seconds are still the run's cost.
    """
    record = make_record(nodeid, None)
    record["verdict"] = record["outcome"] = "skipped"
    record["reason"] = reason
    if unconfirmed is not None:
        record["reruns"] = unconfirmed.reruns
        record["seconds"] = {"reruns": round(unconfirmed.rerun_seconds, 3), "diagnosis": 0.0}
        if unconfirmed.suspicion:
            record["suspicion"] = {"cause": unconfirmed.suspicion, "first_run": dict(unconfirmed.first_run)}
        record["notes"] = list(unconfirmed.notes)  # a warning filterwarnings=error turned into a note
    return record


def findings(record: Mapping[str, Any]) -> list[tuple[str, int]]:
    """``(label, count)`` rows of a record, kind by kind (``_kinds.KINDS``)."""
    return [row for kind in KINDS for row in kind.rows(kind.counts(record))]


def report_head(records: Mapping[str, Mapping[str, Any]], settings: Mapping[str, Any], version: str) -> dict[str, Any]:
    """The run's JSON document without its tests (layout in README, "JSON report")."""
    totals = dict.fromkeys(VERDICTS, 0)
    outcomes = dict.fromkeys(OUTCOMES, 0)
    for record in records.values():  # every record, compact or full, has these two
        totals[record["verdict"]] += 1
        outcomes[record["outcome"]] += 1
    return {
        "schema": SCHEMA,
        "plugin": "pytest-gcguard",
        "version": version,
        "settings": dict(settings),
        "totals": {"verdicts": totals, "outcomes": outcomes},
    }


def json_report(records: Mapping[str, Mapping[str, Any]], head: Mapping[str, Any]) -> dict[str, Any]:
    """The whole run as one JSON document: ``head`` (``report_head``) and every test's record."""
    document = dict(head)
    document["tests"] = [full_record(nodeid, record) for nodeid, record in sorted(records.items())]
    return document


def write_json_report(out: TextIO, records: Mapping[str, Mapping[str, Any]], head: Mapping[str, Any]) -> None:
    """``json_report``'s document, indented, written record by record.

    Never whole in memory: ``json.dumps`` with an indent joins a list of every
    piece of the text, which with the full records made 15 MB at the peak for
    a 6,772-test suite (pandas: 1.12 times the plain run's peak instead of 1.02).
    """
    text = json.dumps(dict(head), indent=2)
    out.write(text[: text.rindex("}")].rstrip())  # still open: the tests follow
    out.write(',\n  "tests": [')
    for index, (nodeid, record) in enumerate(sorted(records.items())):
        out.write(",\n    " if index else "\n    ")
        out.write(json.dumps(full_record(nodeid, record), indent=2).replace("\n", "\n    "))
    out.write("\n  ]\n}\n" if records else "]\n}\n")


# -- baseline ------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """A test's known leaks: counts per leaked type, per uncollectable type, and cyclic objects."""

    leaked: Mapping[str, int] = field(default_factory=dict)
    uncollectable: Mapping[str, int] = field(default_factory=dict)
    cycles: int = 0
    #: Refs mode: memory blocks and references lost per run.
    blocks: int = 0
    references: int = 0

    @classmethod
    def of(cls, record: Mapping[str, Any]) -> Entry:
        numbers: dict[str, Any] = {kind.key: kind.counts(record) for kind in KINDS}
        return cls(**numbers)

    def __bool__(self) -> bool:
        return any(getattr(self, key) for key in KEYS)

    def exceeds(self, known: Entry) -> list[str]:
        """What this entry has beyond ``known``: new types, larger counts (empty: nothing new)."""
        out: list[str] = []
        for kind in KINDS:
            mine, theirs = getattr(self, kind.key), getattr(known, kind.key)
            if isinstance(mine, Mapping):
                out.extend(
                    kind.beyond(name, count, theirs.get(name, 0))
                    for name, count in sorted(mine.items())
                    if count > theirs.get(name, 0)
                )
            elif mine > theirs:
                out.append(kind.beyond("", mine, theirs))
        return out

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in KEYS:
            value = getattr(self, key)
            if value:
                out[key] = dict(sorted(value.items())) if isinstance(value, Mapping) else value
        return out


class BaselineError(ValueError):
    pass


def _counts(value: object, where: str) -> dict[str, int]:
    if not isinstance(value, dict):
        raise BaselineError(f"{where}: expected an object of TYPE: COUNT")
    out = {}
    for name, count in value.items():
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise BaselineError(f"{where}: count of {name!r} must be a whole number >= 0, got {count!r}")
        out[name] = count
    return out


def load_baseline(path: Path) -> dict[str, Entry]:
    """Read a baseline file; raises BaselineError (missing file, bad JSON, bad layout)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BaselineError(f"{path} does not exist (record it with --gcguard-update-baseline)") from None
    except OSError as exc:
        raise BaselineError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise BaselineError(f"{path} is not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    try:
        data = json.loads(text)
    except RecursionError:
        raise BaselineError(f"{path} is not a gcguard baseline: its JSON is nested too deeply") from None
    except ValueError as exc:
        raise BaselineError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or data.get(BASELINE_KEY) != SCHEMA or not isinstance(data.get("tests"), dict):
        raise BaselineError(f'{path} is not a gcguard baseline (expected {{"{BASELINE_KEY}": {SCHEMA}, "tests": ...}})')
    entries: dict[str, Entry] = {}
    for nodeid, raw in data["tests"].items():
        where = f"{path}: entry {nodeid!r}"
        if not isinstance(raw, dict) or set(raw) - set(KEYS):
            raise BaselineError(f"{where}: expected keys {', '.join(KEYS)}")
        numbers = {}
        for key in ("cycles", "blocks", "references"):
            value = raw.get(key, 0)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise BaselineError(f"{where}: {key} must be a whole number >= 0")
            numbers[key] = value
        entries[nodeid] = Entry(
            _counts(raw.get("leaked", {}), where), _counts(raw.get("uncollectable", {}), where), **numbers
        )
    return entries


def baseline_text(entries: Mapping[str, Entry]) -> str:
    """A baseline file: valid JSON, sorted, one test per line (diffs show one line per change)."""
    lines = [f'{{"{BASELINE_KEY}": {SCHEMA}, "tests": {{']
    body = [
        f"  {json.dumps(nodeid)}: {json.dumps(entry.to_json(), sort_keys=True)}"
        for nodeid, entry in sorted(entries.items())
        if entry
    ]
    lines.append(",\n".join(body))
    lines.append("}}")
    return "\n".join(line for line in lines if line) + "\n"


def updated_baseline(
    old: Mapping[str, Entry], records: Mapping[str, Mapping[str, Any]], rootdir: Path
) -> dict[str, Entry]:
    """Today's leaks for the tests judged in this run; other entries kept unless their file is gone.

    Tests declared as leaking by ``expect_leak`` are not baselined: the marker already says so.
    """
    judged = {nodeid for nodeid, record in records.items() if record["verdict"] != "skipped"}
    new: dict[str, Entry] = {}
    for nodeid, entry in old.items():
        if nodeid in judged:
            continue
        if not (rootdir / nodeid.partition("::")[0]).exists():
            continue  # the test's file was deleted or moved
        new[nodeid] = entry
    for nodeid, record in records.items():
        if nodeid in judged and record["outcome"] != "expected":
            entry = Entry.of(record)
            if entry:
                new[nodeid] = entry
    return new


def stale_entries(baseline: Mapping[str, Entry], records: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """Baseline entries that now over-state a judged test's leaks: {nodeid: 'fixed' or 'improved'}."""
    stale: dict[str, str] = {}
    for nodeid, known in sorted(baseline.items()):
        record = records.get(nodeid)
        if record is None or record["verdict"] == "skipped":
            continue
        now = Entry.of(record)
        if not now:
            stale[nodeid] = "fixed"
        elif known.exceeds(now):
            stale[nodeid] = "improved: now " + ", ".join(f"{t} x{n}" for t, n in findings(record))
    return stale


# -- terminal summary ----------------------------------------------------------

#: Summary groups, in the order shown: outcome -> heading.
GROUPS = (
    ("failed", "leaking test(s)"),
    ("warned", "leaking test(s), reported as warnings"),
    ("expected", "expected leak(s), declared by @pytest.mark.gcguard(expect_leak=...)"),
    ("recorded", "leak(s) recorded in the baseline"),
    ("baselined", "known leak(s) within the baseline"),
)
#: Tests and types per test shown at default verbosity (-v shows all).
MAX_TESTS = 10
MAX_TYPES = 3
NODEID_WIDTH = 60


def _table(records: list[Mapping[str, Any]], verbosity: int) -> list[str]:
    tests = records if verbosity > 0 else records[:MAX_TESTS]
    width = min(NODEID_WIDTH, max(len(str(r["nodeid"])) for r in tests))
    rows: list[list[tuple[str, int]]] = [findings(r) for r in tests]
    type_width = max([len("type")] + [len(label) for found in rows for label, _ in found[: MAX_TYPES + 1]])
    lines = [f"  {'test':<{width}}  {'type':<{type_width}}  count"]
    for record, found in zip(tests, rows, strict=True):
        nodeid = str(record["nodeid"])
        shown = found if verbosity > 0 else found[:MAX_TYPES]
        first = nodeid if len(nodeid) <= width else ""
        if not first:
            lines.append(f"  {nodeid}")
        for i, (label, count) in enumerate(shown):
            lines.append(f"  {first if i == 0 else '':<{width}}  {label:<{type_width}}  {count:>5}")
        if len(found) > len(shown):
            lines.append(f"  {'':<{width}}  ... {len(found) - len(shown)} more type(s) (-v shows all)")
    if len(records) > len(tests):
        lines.append(f"  ... {len(records) - len(tests)} more test(s) (-v shows all, --gcguard-json lists all)")
    return lines


def summary_lines(
    records: Mapping[str, Mapping[str, Any]],
    stale: Mapping[str, str],
    verbosity: int,
    baseline: Path | None,
) -> list[str]:
    """The ``gcguard summary`` section: a compact table per group, limited by verbosity."""
    lines: list[str] = []
    by_outcome: dict[str, list[Mapping[str, Any]]] = {}
    for record in records.values():  # in the order the tests finished
        by_outcome.setdefault(record["outcome"], []).append(record)
    for outcome, heading in GROUPS:
        group = [r for r in by_outcome.get(outcome, ()) if findings(r)]
        if not group:
            continue
        where = f" {baseline}" if outcome in ("recorded", "baselined") and baseline is not None else ""
        if outcome == "baselined" and verbosity <= 0:
            lines.append(f"{len(group)} {heading}{where} (-v lists them)")
            continue
        lines.append(f"{len(group)} {heading}{where}:")
        lines.extend(_table(group, verbosity))
    lines.extend(root_lines(records, verbosity))
    if stale:
        lines.append(
            f"{len(stale)} stale baseline entr{'y' if len(stale) == 1 else 'ies'} "
            "(leak fixed or smaller; refresh with --gcguard-update-baseline):"
        )
        shown = list(stale.items()) if verbosity > 0 else list(stale.items())[:MAX_TESTS]
        lines.extend(f"  {nodeid}: {what}" for nodeid, what in shown)
        if len(stale) > len(shown):
            lines.append(f"  ... {len(stale) - len(shown)} more (-v shows all)")
    bounded = [r for r in records.values() if r["verdict"] == "clean" and r.get("set_aside")]
    if bounded and verbosity > 0:
        lines.append(f"{len(bounded)} test(s) whose repeated growth only fed a bounded cache (not reported):")
        for record in bounded:
            types_ = ", ".join(f"{name} x{n}" for name, n in record["set_aside"]["types"].items())
            lines.append(f"  {record['nodeid']}: {types_}")
            lines.append(f"    {record['set_aside']['reason']}")
    unjudged = [r for r in records.values() if r["verdict"] == "skipped"]
    # The test's own outcome (failed, skipped, xfailed) or an opt-out needs no
    # naming unless asked (-v); any other reason is gcguard's, and always named.
    named = unjudged if verbosity > 0 else [r for r in unjudged if not own_outcome(r["reason"])]
    if named:
        lines.append(f"{len(named)} test(s) not judged:")
        listed = named if verbosity > 0 else named[:MAX_TESTS]
        lines.extend(f"  {r['nodeid']}: {r['reason']}" for r in listed)
        if len(named) > len(listed):
            lines.append(f"  ... {len(named) - len(listed)} more (-v shows all)")
        if any(RERUN_FAILED in r["reason"] for r in named):
            lines.append(
                "  (a rerun that fails leaves what it changed for the tests after it: if tests fail only with "
                "--gcguard, mark the tests whose rerun failed @pytest.mark.gcguard(enabled=False))"
            )
    unexpected = [r for r in by_outcome.get("failed", ()) if not findings(r)]
    if unexpected:
        lines.append(f"{len(unexpected)} expected leak(s) that did not happen (strict: the tests fail):")
        lines.extend(f"  {r['nodeid']}: {r['reason']}" for r in unexpected)
    return lines


def shared_roots(records: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, list[str], dict[str, int]]]:
    """Where the leaking tests' objects are held: (root, tests, leaked types), most tests first.

    A test counts under each root its reported types are held via (the
    ``root`` of a leaked type's why-alive chain).
    """
    by_root: dict[str, tuple[list[str], dict[str, int]]] = {}
    for nodeid, record in records.items():
        if record["verdict"] == "clean":
            continue
        for leak in record.get("leaked") or ():
            root = leak.get("root")
            if not root:
                continue
            tests, kinds = by_root.setdefault(root, ([], {}))
            if not tests or tests[-1] != nodeid:
                tests.append(nodeid)
            kinds[leak["type"]] = kinds.get(leak["type"], 0) + int(leak["count"])
    return sorted(
        ((root, tests, kinds) for root, (tests, kinds) in by_root.items()), key=lambda row: (-len(row[1]), row[0])
    )


def root_lines(records: Mapping[str, Mapping[str, Any]], verbosity: int) -> list[str]:
    """The summary's roots section, when leaking tests share where their leaks are held."""
    roots = shared_roots(records)
    if not roots or len(roots[0][1]) < 2:
        return []
    shown = roots if verbosity > 0 else roots[:MAX_TESTS]
    lines = ["leaks by where they are held (the why-alive chains' old part):"]
    for root, tests, kinds in shown:
        types_ = ", ".join(f"{name} x{n}" for name, n in sorted(kinds.items(), key=lambda kv: -kv[1])[:3])
        lines.append(f"  {len(tests)} test(s): held via {root} ({types_})")
    if len(roots) > len(shown):
        lines.append(f"  ... {len(roots) - len(shown)} more (-v shows all)")
    return lines


#: In a not-judged reason: the confirmation's rerun failed (``_judge``).
RERUN_FAILED = "suspected leak not confirmed, rerun"


def own_outcome(reason: str) -> bool:
    """A reason for not judging that is the test's own doing: its outcome, or an opt-out."""
    return reason.startswith(
        (
            "not judged: the test did not pass",
            "not judged: the test skipped",
            "not judged: the test failed",
            "not judged: the test xfailed",
            "disabled by",
        )
    )


def count_line(records: Mapping[str, Mapping[str, Any]]) -> str:
    judged = [r for r in records.values() if r["verdict"] != "skipped"]
    # A test whose confirmation a failed rerun ended was suspected and rerun too.
    suspected = sum(1 for r in records.values() if r["reruns"])
    reruns = sum(int(r["reruns"]) for r in records.values())
    leaking = sum(1 for r in judged if r["verdict"] != "clean")
    bounded = sum(1 for r in judged if r["verdict"] == "clean" and r.get("set_aside"))
    not_judged = len(records) - len(judged)
    rerun_seconds, diagnosis_seconds = (sum(seconds(r, key) for r in records.values()) for key in SECONDS)
    replaced = sum(1 for r in judged if (r.get("suspicion") or {}).get("cause") == "replaced")
    hypothesis = sum(1 for r in judged if (r.get("suspicion") or {}).get("cause") == "hypothesis")
    line = f"gcguard: checked {len(judged)} test(s); {suspected} suspected and rerun ({reruns} rerun(s)"
    line += f" in {rerun_seconds:.2f}s)" if reruns else ")"
    if replaced:
        line += f"; {replaced} settled without a rerun (a rebound value replaced)"
    if hypothesis:
        line += f"; {hypothesis} settled without a rerun (Hypothesis's own caches)"
    if bounded:
        line += f"; {bounded} growing only a bounded cache (not reported)"
    line += f"; {leaking} leaking"
    if diagnosis_seconds:
        line += f"; diagnosis took {diagnosis_seconds:.2f}s"
    return line + (f"; {not_judged} not judged" if not_judged else "")


def seconds(record: Mapping[str, Any], key: str) -> float:
    """Seconds a test's reruns or diagnosis took (0 for a test with neither)."""
    return float((record.get("seconds") or {}).get(key, 0.0))
