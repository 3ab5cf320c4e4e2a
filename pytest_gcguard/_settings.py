"""Settings: ini < command line < marker, resolved in one place."""

from __future__ import annotations

import argparse
import fnmatch
import inspect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from ._heap import type_name

ENABLE_HELP = "Check every test for leaked objects and uncollectable garbage"
CYCLES_HELP = "Also fail tests that create reference cycles only the cyclic GC can free"
IGNORE_HELP = "Type names or globs never reported as leaks, comma separated (e.g. 'dict,mypkg.cache.*')"
ONLY_HELP = "Watch only these type names or globs, comma separated"
ALLOW_HELP = "Allowed leaked count per type, comma separated TYPE=N (e.g. 'mypkg.Node=2')"
RERUNS_HELP = "Reruns of a suspected test to confirm its growth repeats (default: 2; 0 trusts one run)"
REFS_HELP = (
    "Also catch leaks the gc cannot see (str, int, bytes, C-extension references): count memory blocks and, "
    "on debug builds, references over repeated runs of each test (slower: every test runs several times)"
)
DIAGNOSIS_HELP = (
    "Find why leaked objects are alive: sample reprs, reference chains, graphs (default on; "
    "--gcguard-no-diagnosis turns it off, and a bounded cache is then recognised only when it replaces entries)"
)
TRACE_HELP = "Trace allocations (tracemalloc) so leak reports show where each sample was allocated"
GRAPH_DIR_HELP = "Directory for objgraph back-reference graphs of leaking tests (.dot, plus .png with Graphviz)"
WARN_HELP = "Report leaks as GcGuardWarning warnings instead of failing the tests"
JSON_HELP = "Write a JSON report of every checked test to this path"
HTML_HELP = "Write a self-contained HTML report (leaking tests, where their leaks are held, graphs) to this path"
BASELINE_HELP = "Baseline file of known leaks: only leaks beyond it fail"
UPDATE_BASELINE_HELP = "Record this run's leaks into the --gcguard-baseline file (leaking tests pass)"
FAIL_STALE_HELP = "Fail the run when baseline entries over-state leaks (fixed or shrunk since recorded)"
MAX_SAMPLES = 3


def _rerun_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


def _split(value: str | Iterable[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    out: list[str] = []
    for chunk in value:
        out.extend(part.strip() for part in chunk.replace("\n", ",").split(",") if part.strip())
    return tuple(out)


def parse_allow(value: str | Iterable[str] | Mapping[str, int] | None, source: str) -> dict[str, int]:
    """Parse ``TYPE=N`` pairs (or a mapping) into {pattern: allowed count}."""
    if value is None:
        return {}
    if isinstance(value, Mapping):
        items = list(value.items())
    else:
        items = []
        for part in _split(value):
            name, sep, number = part.partition("=")
            if not sep:
                raise ValueError(f"{source}: {part!r} is not TYPE=N")
            items.append((name.strip(), number.strip()))
    allowed: dict[str, int] = {}
    for name, number in items:
        if not isinstance(name, str) or not name:
            raise ValueError(f"{source}: type names must be non-empty strings, got {name!r}")
        if isinstance(value, Mapping) and type(number) is not int:
            # A marker's dict: 1.5 must not become 1, nor "3" be taken as 3.
            raise ValueError(f"{source}: allowed count for {name!r} must be a whole number, got {number!r}")
        try:
            count = int(number)
        except (TypeError, ValueError):
            raise ValueError(f"{source}: allowed count for {name!r} must be a whole number, got {number!r}") from None
        if isinstance(number, bool) or count < 0:
            raise ValueError(f"{source}: allowed count for {name!r} must be 0 or more, got {number!r}")
        allowed[name] = count
    return allowed


@dataclass(frozen=True)
class Settings:
    """The effective settings for one test (or the project defaults)."""

    enabled: bool = False
    cycles: bool = False
    ignore: tuple[str, ...] = ()
    only: tuple[str, ...] = ()
    allow: tuple[tuple[str, int], ...] = ()
    reruns: int = 2
    graph_dir: str | None = None
    trace: bool = False
    warn: bool = False
    refs: bool = False
    #: Sample reprs, why-alive chains and graphs for leaking tests.
    diagnosis: bool = True
    #: Set by ``expect_leak`` on the marker: the reason the test is known to leak.
    expect_leak: str | None = None

    @property
    def filters_types(self) -> bool:
        """Some types' growth is left out (ignored, not among ``only``, or allowed)."""
        return bool(self.ignore or self.only or self.allow)

    def describe(self) -> str:
        parts = [f"cycles={'on' if self.cycles else 'off'}", f"reruns={self.reruns}"]
        if self.ignore:
            parts.append("ignore=" + ",".join(self.ignore))
        if self.only:
            parts.append("only=" + ",".join(self.only))
        if self.allow:
            parts.append("allow=" + ",".join(f"{k}={v}" for k, v in self.allow))
        if self.graph_dir:
            parts.append(f"graphs={self.graph_dir}")
        if self.trace:
            parts.append("trace=on")
        if self.warn:
            parts.append("warn=on")
        if self.refs:
            parts.append("refs=on")
        if not self.diagnosis:
            parts.append("diagnosis=off")
        return ", ".join(parts)

    def to_json(self) -> dict[str, Any]:
        """The project settings, as the JSON report records them."""
        return {
            "cycles": self.cycles,
            "ignore": list(self.ignore),
            "only": list(self.only),
            "allow": dict(self.allow),
            "reruns": self.reruns,
            "graph_dir": self.graph_dir,
            "trace": self.trace,
            "warn": self.warn,
            "refs": self.refs,
            "diagnosis": self.diagnosis,
        }


@dataclass(frozen=True)
class RunOptions:
    """Settings of the whole run (reports and baseline), not tunable per test."""

    json: Path | None = None
    html: Path | None = None
    baseline: Path | None = None
    update_baseline: bool = False
    fail_stale: bool = False


def addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("gcguard", "Leak and reference-cycle detection (pytest-gcguard)")
    group.addoption("--gcguard", action="store_true", default=None, help=ENABLE_HELP)
    group.addoption("--gcguard-cycles", action="store_true", default=None, help=CYCLES_HELP)
    group.addoption("--gcguard-ignore", action="append", default=None, metavar="TYPES", help=IGNORE_HELP)
    group.addoption("--gcguard-only", action="append", default=None, metavar="TYPES", help=ONLY_HELP)
    group.addoption("--gcguard-allow", action="append", default=None, metavar="TYPE=N", help=ALLOW_HELP)
    group.addoption("--gcguard-reruns", type=_rerun_count, default=None, metavar="N", help=RERUNS_HELP)
    group.addoption("--gcguard-graph-dir", default=None, metavar="DIR", help=GRAPH_DIR_HELP)
    group.addoption("--gcguard-trace", action="store_true", default=None, help=TRACE_HELP)
    group.addoption("--gcguard-refs", action="store_true", default=None, help=REFS_HELP)
    group.addoption("--gcguard-warn", action="store_true", default=None, help=WARN_HELP)
    group.addoption(
        "--gcguard-no-diagnosis", dest="gcguard_diagnosis", action="store_false", default=None, help=DIAGNOSIS_HELP
    )
    group.addoption("--gcguard-json", default=None, metavar="PATH", help=JSON_HELP)
    group.addoption("--gcguard-html", default=None, metavar="PATH", help=HTML_HELP)
    group.addoption("--gcguard-baseline", default=None, metavar="PATH", help=BASELINE_HELP)
    group.addoption("--gcguard-update-baseline", action="store_true", default=False, help=UPDATE_BASELINE_HELP)
    group.addoption("--gcguard-fail-stale", action="store_true", default=None, help=FAIL_STALE_HELP)
    parser.addini("gcguard", ENABLE_HELP, type="bool", default=False)
    parser.addini("gcguard_cycles", CYCLES_HELP, type="bool", default=False)
    parser.addini("gcguard_ignore", IGNORE_HELP, type="linelist", default=[])
    parser.addini("gcguard_only", ONLY_HELP, type="linelist", default=[])
    parser.addini("gcguard_allow", ALLOW_HELP, type="linelist", default=[])
    parser.addini("gcguard_reruns", RERUNS_HELP, type="string", default="2")
    parser.addini("gcguard_graph_dir", GRAPH_DIR_HELP, type="string", default="")
    parser.addini("gcguard_trace", TRACE_HELP, type="bool", default=False)
    parser.addini("gcguard_refs", REFS_HELP, type="bool", default=False)
    parser.addini("gcguard_warn", WARN_HELP, type="bool", default=False)
    parser.addini("gcguard_diagnosis", DIAGNOSIS_HELP, type="bool", default=True)
    parser.addini("gcguard_json", JSON_HELP, type="string", default="")
    parser.addini("gcguard_html", HTML_HELP, type="string", default="")
    parser.addini("gcguard_baseline", BASELINE_HELP, type="string", default="")
    parser.addini("gcguard_fail_stale", FAIL_STALE_HELP, type="bool", default=False)


def _pick(config: pytest.Config, name: str) -> Any:
    cli = config.getoption(name)
    if cli is not None:
        return cli
    try:
        return config.getini(name)
    except (ValueError, pytest.UsageError) as exc:  # pytest >= 9 raises UsageError itself
        raise pytest.UsageError(f"ini option {name}: {exc}") from None


def _path(config: pytest.Config, name: str) -> Path | None:
    """A path option: relative to the invocation directory on the command line, to rootdir in the ini."""
    cli = config.getoption(name)
    if cli is not None:
        if not cli.strip():
            raise pytest.UsageError(f"--{name.replace('_', '-')}: expected a path, got {cli!r}")
        return Path(config.invocation_params.dir, str(cli))
    value = str(_pick(config, name)).strip()
    return config.rootpath / value if value else None


def run_options(config: pytest.Config) -> RunOptions:
    """Run-wide options; usage errors name the option."""
    options = RunOptions(
        json=_path(config, "gcguard_json"),
        html=_path(config, "gcguard_html"),
        baseline=_path(config, "gcguard_baseline"),
        update_baseline=bool(config.getoption("gcguard_update_baseline")),
        fail_stale=bool(_pick(config, "gcguard_fail_stale")),
    )
    if options.update_baseline and options.baseline is None:
        raise pytest.UsageError("--gcguard-update-baseline needs --gcguard-baseline=PATH (or ini gcguard_baseline)")
    for option, path in (
        ("--gcguard-json", options.json),
        ("--gcguard-html", options.html),
        ("--gcguard-baseline", options.baseline),
    ):
        if path is not None and path.is_dir():
            raise pytest.UsageError(f"{option}: {path} is a directory, not a file")
    return options


def from_config(config: pytest.Config) -> Settings:
    """Project settings: ini values overridden by command-line options."""

    def pick(name: str) -> Any:
        return _pick(config, name)

    try:
        ini_reruns = _rerun_count(str(config.getini("gcguard_reruns")).strip())
    except argparse.ArgumentTypeError as exc:
        raise pytest.UsageError(f"ini option gcguard_reruns: {exc}") from None
    cli_reruns = config.getoption("gcguard_reruns")
    allow_source = "--gcguard-allow" if config.getoption("gcguard_allow") is not None else "ini option gcguard_allow"
    try:
        allow = parse_allow(pick("gcguard_allow"), allow_source)
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    graph_dir = pick("gcguard_graph_dir") or None
    return Settings(
        enabled=bool(pick("gcguard")),
        cycles=bool(pick("gcguard_cycles")),
        ignore=_split(pick("gcguard_ignore")),
        only=_split(pick("gcguard_only")),
        allow=tuple(sorted(allow.items())),
        reruns=ini_reruns if cli_reruns is None else cli_reruns,
        graph_dir=graph_dir,
        trace=bool(pick("gcguard_trace")),
        refs=bool(pick("gcguard_refs")),
        warn=bool(pick("gcguard_warn")),
        diagnosis=bool(pick("gcguard_diagnosis")),
    )


def gcguard(
    *,
    enabled: bool = True,
    cycles: bool | None = None,
    ignore: str | Iterable[str] = (),
    only: str | Iterable[str] | None = None,
    allow: Mapping[str, int] | None = None,
    reruns: int | None = None,
    warn: bool | None = None,
    refs: bool | None = None,
    expect_leak: bool | str = False,
) -> dict[str, Any]:
    """check this test even without --gcguard; enabled=False opts out; expect_leak=REASON: known leak (strict xfail)"""
    return {
        "enabled": enabled,
        "cycles": cycles,
        "ignore": ignore,
        "only": only,
        "allow": allow,
        "reruns": reruns,
        "warn": warn,
        "refs": refs,
        "expect_leak": expect_leak,
    }


MARKER_HELP = f"gcguard({', '.join(str(p) for p in inspect.signature(gcguard).parameters.values())}): {gcguard.__doc__}"


def for_item(project: Settings, marks: list[pytest.Mark]) -> Settings:
    """Apply the test's ``gcguard`` markers (closest last) to the project settings.

    Raises ``ValueError`` with a readable message for a bad marker.
    """
    settings = project
    for mark in reversed(marks):  # iter_markers yields the closest first
        try:
            kwargs = gcguard(*mark.args, **mark.kwargs)
        except TypeError as exc:
            raise ValueError(f"bad @pytest.mark.gcguard arguments: {exc}") from None
        settings = _apply(settings, kwargs)
    return settings


_MARKER_ERROR = "bad @pytest.mark.gcguard arguments"


def _apply(settings: Settings, kwargs: dict[str, Any]) -> Settings:
    """``settings`` as a test's marker arguments change them (ValueError if they are bad)."""
    changes: dict[str, Any] = {"enabled": _marker_bool(kwargs, "enabled")}
    for name in ("cycles", "warn", "refs"):
        value = _marker_bool(kwargs, name)
        if value is not None:
            changes[name] = value
    expect = _marker_expect_leak(kwargs["expect_leak"])
    if expect is not None:
        changes["expect_leak"] = expect
    if kwargs["ignore"] is not None:
        changes["ignore"] = settings.ignore + _split(_marker_strings(kwargs, "ignore"))
    if kwargs["only"] is not None:
        changes["only"] = _split(_marker_strings(kwargs, "only"))
    if kwargs["allow"] is not None:
        if not isinstance(kwargs["allow"], Mapping):
            raise ValueError(f"{_MARKER_ERROR}: allow must be a dict of TYPE: N, got {kwargs['allow']!r}")
        merged = dict(settings.allow)
        merged.update(parse_allow(kwargs["allow"], f"{_MARKER_ERROR}: allow"))
        changes["allow"] = tuple(sorted(merged.items()))
    reruns = kwargs["reruns"]
    if reruns is not None:
        if isinstance(reruns, bool) or not isinstance(reruns, int) or reruns < 0:
            raise ValueError(f"{_MARKER_ERROR}: reruns must be a whole number >= 0, got {reruns!r}")
        changes["reruns"] = reruns
    return replace(settings, **changes)


def _marker_bool(kwargs: dict[str, Any], name: str) -> bool | None:
    value = kwargs[name]
    if value is not None and not isinstance(value, bool):
        raise ValueError(f"{_MARKER_ERROR}: {name} must be True or False, got {value!r}")
    return value


def _marker_expect_leak(expect: object) -> str | None:
    if expect is True:
        return "known leak"
    if isinstance(expect, str) and expect.strip():
        return expect.strip()
    if expect is not False:
        raise ValueError(f"{_MARKER_ERROR}: expect_leak must be True, False or a reason, got {expect!r}")
    return None


def _marker_strings(kwargs: dict[str, Any], name: str) -> str | Iterable[str]:
    value = kwargs[name]
    if not isinstance(value, str) and not (isinstance(value, Iterable) and all(isinstance(v, str) for v in value)):
        raise ValueError(f"{_MARKER_ERROR}: {name} must be a string or strings, got {value!r}")
    return value


class TypeFilter:
    """Decides which leaked types count, by qualified name or glob."""

    def __init__(self, settings: Settings) -> None:
        self.ignore = settings.ignore
        self.only = settings.only
        self.allow = dict(settings.allow)
        self._cache: dict[str, bool] = {}

    @staticmethod
    def _matches(patterns: Iterable[str], name: str) -> bool:
        short = name.rpartition(".")[2]
        return any(fnmatch.fnmatchcase(name, p) or fnmatch.fnmatchcase(short, p) for p in patterns)

    def keep(self, name: str) -> bool:
        cached = self._cache.get(name)
        if cached is None:
            cached = not self._matches(self.ignore, name) and (not self.only or self._matches(self.only, name))
            self._cache[name] = cached
        return cached

    def kept(self, counts: Mapping[str, int]) -> dict[str, int]:
        """The entries of a {type name: count} mapping that this filter keeps."""
        out: dict[str, int] = {}
        for name, count in counts.items():
            if self.keep(name):
                out[name] = count
        return out

    def reported(self, counts: Mapping[type, int]) -> dict[str, int]:
        """Suspects by type name, of the types kept and beyond what each may keep.

        No lambdas or comprehensions over locals here: on 3.10/3.11 they put a
        young cell in the caller's frame before the objects are listed.
        """
        by_name: dict[str, int] = {}
        for tp, n in counts.items():
            name = type_name(tp)
            by_name[name] = by_name.get(name, 0) + n
        kept: dict[str, int] = {}
        for name, n in by_name.items():
            if self.keep(name) and n > self.allowed(name):
                kept[name] = n
        return kept

    def allowed(self, name: str) -> int:
        short = name.rpartition(".")[2]
        for pattern, count in self.allow.items():
            if fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(short, pattern):
                return count
        return 0
