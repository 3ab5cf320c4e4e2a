"""Unit tests of pure policy: the baseline comparison and the resolution of marker settings."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from pytest_gcguard import _records, _settings
from pytest_gcguard._records import BaselineError, Entry
from pytest_gcguard._settings import Settings, TypeFilter, _apply, parse_allow


def record(nodeid: str, verdict: str = "leaked", outcome: str = "failed", **findings: Any) -> dict[str, Any]:
    leaked = [{"type": name, "count": count} for name, count in findings.pop("leaked", {}).items()]
    return {
        "nodeid": nodeid,
        "verdict": verdict,
        "outcome": outcome,
        "leaked": leaked,
        "uncollectable": findings.pop("uncollectable", {}),
        "cycles": {"count": findings.pop("cycles")} if "cycles" in findings else None,
        "memory": findings.pop("memory", None),
    }


# -- baseline comparison ------------------------------------------------------

EXCEEDS = {
    "the same leak is within": (Entry({"W": 2}), Entry({"W": 2}), []),
    "fewer objects are within": (Entry({"W": 1}), Entry({"W": 2}), []),
    "more objects exceed": (Entry({"W": 3}), Entry({"W": 2}), ["W x3 (baseline 2)"]),
    "a new type exceeds": (Entry({"W": 1, "G": 1}), Entry({"W": 1}), ["G x1 (baseline 0)"]),
    "uncollectable counted apart": (
        Entry({}, {"W": 1}),
        Entry({"W": 5}),
        ["W uncollectable x1 (baseline 0)"],
    ),
    "cycles": (Entry(cycles=4), Entry(cycles=3), ["4 object(s) in reference cycles (baseline 3)"]),
    "memory blocks": (Entry(blocks=10), Entry(blocks=2), ["10 memory block(s) per run (baseline 2)"]),
    "references": (Entry(references=3), Entry(), ["3 reference(s) per run (baseline 0)"]),
}


@pytest.mark.parametrize(("now", "known", "beyond"), list(EXCEEDS.values()), ids=list(EXCEEDS))
def test_what_a_leak_has_beyond_its_baseline(now: Entry, known: Entry, beyond: list[str]) -> None:
    assert now.exceeds(known) == beyond


def test_an_entry_is_read_from_a_record_and_written_back() -> None:
    entry = Entry.of(record("t::a", leaked={"W": 2}, uncollectable={"G": 1}, cycles=3, memory={"blocks_per_run": 7}))
    assert entry == Entry({"W": 2}, {"G": 1}, cycles=3, blocks=7)
    assert entry.to_json() == {"leaked": {"W": 2}, "uncollectable": {"G": 1}, "cycles": 3, "blocks": 7}
    assert not Entry.of(record("t::clean", verdict="clean", outcome="passed"))


def test_stale_entries_are_fixed_or_improved_and_unjudged_tests_keep_theirs() -> None:
    baseline = {
        "t::fixed": Entry({"W": 1}),
        "t::improved": Entry({"W": 3, "G": 1}),
        "t::same": Entry({"W": 1}),
        "t::skipped": Entry({"W": 1}),
        "t::not-run": Entry({"W": 1}),
    }
    records = {
        "t::fixed": record("t::fixed", verdict="clean", outcome="passed"),
        "t::improved": record("t::improved", leaked={"W": 1}, outcome="baselined"),
        "t::same": record("t::same", leaked={"W": 1}, outcome="baselined"),
        "t::skipped": record("t::skipped", verdict="skipped", outcome="skipped"),
    }
    assert _records.stale_entries(baseline, records) == {
        "t::fixed": "fixed",
        "t::improved": "improved: now W x1",
    }


def test_an_updated_baseline_keeps_unjudged_tests_of_existing_files(tmp_path: Path) -> None:
    (tmp_path / "test_a.py").write_text("")
    old = {
        "test_a.py::kept": Entry({"W": 1}),  # not run today, file still there
        "test_a.py::judged": Entry({"W": 5}),
        "test_gone.py::t": Entry({"W": 1}),  # its file was deleted
    }
    records = {
        "test_a.py::judged": record("test_a.py::judged", leaked={"W": 2}, outcome="recorded"),
        "test_a.py::new": record("test_a.py::new", leaked={"G": 1}, outcome="recorded"),
        "test_a.py::declared": record("test_a.py::declared", leaked={"G": 1}, outcome="expected"),
        "test_a.py::clean": record("test_a.py::clean", verdict="clean", outcome="passed"),
    }
    assert _records.updated_baseline(old, records, tmp_path) == {
        "test_a.py::kept": Entry({"W": 1}),
        "test_a.py::judged": Entry({"W": 2}),
        "test_a.py::new": Entry({"G": 1}),
    }


def test_a_baseline_survives_a_round_trip_through_its_file(tmp_path: Path) -> None:
    entries = {"t::b": Entry({"W": 2}, cycles=1), "t::a": Entry({}, {"G": 3}), "t::clean": Entry()}
    path = tmp_path / "baseline.json"
    path.write_text(_records.baseline_text(entries))
    assert _records.load_baseline(path) == {"t::a": Entry({}, {"G": 3}), "t::b": Entry({"W": 2}, cycles=1)}
    assert path.read_text().splitlines()[1].startswith('  "t::a": ')  # sorted, one test per line


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"gcguard_baseline": 2, "tests": {}}, "is not a gcguard baseline"),
        ({"gcguard_baseline": 1, "tests": {"t": {"leaked": {"W": -1}}}}, "count of 'W' must be a whole number >= 0"),
        ({"gcguard_baseline": 1, "tests": {"t": {"leaked": {"W": True}}}}, "count of 'W' must be a whole number"),
        ({"gcguard_baseline": 1, "tests": {"t": {"cycles": 1.5}}}, "cycles must be a whole number >= 0"),
        ({"gcguard_baseline": 1, "tests": {"t": {"other": 1}}}, "expected keys leaked"),
    ],
)
def test_a_bad_baseline_says_what_is_wrong(tmp_path: Path, content: object, message: str) -> None:
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(content))
    with pytest.raises(BaselineError, match=message):
        _records.load_baseline(path)


# -- settings: ini < command line < marker --------------------------------------

MARKER = {
    "enabled": None,
    "cycles": None,
    "ignore": None,
    "only": None,
    "allow": None,
    "reruns": None,
    "warn": None,
    "refs": None,
    "expect_leak": False,
}


def marker(**changes: Any) -> dict[str, Any]:
    return {**MARKER, **changes}


def test_a_marker_changes_only_what_it_names() -> None:
    base = Settings(enabled=True, cycles=True, ignore=("a.*",), allow=(("W", 1),), reruns=3)
    assert _apply(base, marker()) == Settings(enabled=None, cycles=True, ignore=("a.*",), allow=(("W", 1),), reruns=3)
    changed = _apply(base, marker(enabled=True, cycles=False, ignore="b.*", allow={"G": 2}, reruns=0))
    assert changed.cycles is False
    assert changed.ignore == ("a.*", "b.*")  # added to the project's
    assert changed.allow == (("G", 2), ("W", 1))  # merged, by type
    assert changed.reruns == 0
    assert _apply(base, marker(only=["x.*", "y.*"])).only == ("x.*", "y.*")  # replaces


@pytest.mark.parametrize(("expect", "reason"), [(True, "known leak"), ("  issue #12 ", "issue #12"), (False, None)])
def test_expect_leak_is_a_reason(expect: object, reason: str | None) -> None:
    assert _apply(Settings(), marker(expect_leak=expect)).expect_leak == reason


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"cycles": "yes"}, "cycles must be True or False"),
        ({"expect_leak": ""}, "expect_leak must be True, False or a reason"),
        ({"ignore": 3}, "ignore must be a string or strings"),
        ({"only": ["a", 1]}, "only must be a string or strings"),
        ({"allow": ["W"]}, "allow must be a dict of TYPE: N"),
        ({"allow": {"W": 1.5}}, "allow"),
        ({"reruns": -1}, "reruns must be a whole number >= 0"),
        ({"reruns": True}, "reruns must be a whole number >= 0"),
    ],
)
def test_bad_marker_arguments_name_the_argument(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _apply(Settings(), marker(**changes))


def test_allow_values_are_whole_numbers_and_the_filter_uses_them() -> None:
    assert parse_allow({"W": 2, "pkg.*": 0}, "allow") == {"W": 2, "pkg.*": 0}
    for bad in ({"W": "3"}, {"W": 1.5}, {"W": True}, {"W": -1}):
        with pytest.raises(ValueError, match="allow"):
            parse_allow(bad, "allow")
    filt = TypeFilter(Settings(allow=(("W", 2),), ignore=("skip.*",)))
    assert filt.allowed("W") == 2
    assert filt.allowed("G") == 0
    assert not filt.keep("skip.Thing")
    assert filt.keep("W")


# -- settings: ini < command line, resolved from a real pytest.Config -----------------


@pytest.mark.parametrize(
    ("ini", "args", "expected"),
    [
        ("", [], Settings()),
        ("gcguard = true\ngcguard_reruns = 4", [], Settings(enabled=True, reruns=4)),
        ("gcguard_reruns = 4", ["--gcguard", "--gcguard-reruns=1"], Settings(enabled=True, reruns=1)),
        ("gcguard_cycles = true", [], Settings(cycles=True)),
        ("gcguard_ignore = a.*\n    b.*", ["--gcguard-ignore=c.*"], Settings(ignore=("c.*",))),
        ("gcguard_ignore = a.*\n    b.*", [], Settings(ignore=("a.*", "b.*"))),
        ("gcguard_allow = W=2", [], Settings(allow=(("W", 2),))),
        ("gcguard_allow = W=2", ["--gcguard-allow=G=1,W=5"], Settings(allow=(("G", 1), ("W", 5)))),
        ("gcguard_diagnosis = false", [], Settings(diagnosis=False)),
        ("", ["--gcguard-no-diagnosis"], Settings(diagnosis=False)),
    ],
    ids=[
        "defaults",
        "ini",
        "cli-over-ini",
        "ini-cycles",
        "cli-ignore-replaces-ini",
        "ini-ignore-lines",
        "ini-allow",
        "cli-allow-replaces-ini",
        "ini-no-diagnosis",
        "cli-no-diagnosis",
    ],
)
def test_project_settings_resolve_ini_then_command_line(
    pytester: pytest.Pytester, ini: str, args: list[str], expected: Settings
) -> None:
    pytester.makeini(f"[pytest]\n{ini}\n")
    config = pytester.parseconfig(*args)
    assert _settings.from_config(config) == expected


@pytest.mark.parametrize(
    ("ini", "args", "message"),
    [
        ("gcguard_reruns = many", [], "ini option gcguard_reruns"),
        ("gcguard_allow = W", [], "ini option gcguard_allow: 'W' is not TYPE=N"),
        ("", ["--gcguard-allow=W=x"], "--gcguard-allow: allowed count for 'W' must be a whole number"),
    ],
)
def test_bad_project_settings_are_usage_errors_naming_the_option(
    pytester: pytest.Pytester, ini: str, args: list[str], message: str
) -> None:
    pytester.makeini(f"[pytest]\n{ini}\n")
    config = pytester.parseconfig(*args)
    with pytest.raises(pytest.UsageError, match=re.escape(message)):
        _settings.from_config(config)


def test_the_streamed_json_report_is_the_document() -> None:
    """The JSON report is written record by record; parsed, it is ``json_report``'s document."""
    leaked = _records.skipped_record("t.py::test_leak", "")
    leaked.update(verdict="leaked", leaked=[{"type": "Widget", "count": 2, "samples": ['{"a": "\\n"}']}])
    records = {
        "t.py::test_clean": dict(_records.CLEAN),
        "t.py::test_skipped": _records.skipped_record("t.py::test_skipped", "not judged:\nthe test failed"),
        "t.py::test_leak": leaked,
    }
    head = _records.report_head(records, {"cycles": False}, "0.0")
    head["stale_baseline_entries"] = {"t.py::gone": "no longer leaks"}
    for subset in (records, {}):
        out = io.StringIO()
        _records.write_json_report(out, subset, head)
        assert json.loads(out.getvalue()) == _records.json_report(subset, head)
    assert head["totals"]["verdicts"] == {"clean": 1, "leaked": 1, "uncollectable": 0, "cycles": 0, "skipped": 1}
