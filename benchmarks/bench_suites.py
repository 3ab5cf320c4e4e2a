"""Cost of ``--gcguard`` on real projects' test suites, plain and checked, alternately.

Sets each suite up with the team's recipes (``../shared/suites/NAME.sh``: a venv,
the project's PyPI source distribution, pinned test requirements; click's and
bidict's are in ``benchmarks/suites``), installs
this checkout of the plugin into it, then runs the suite plain and with
``--gcguard`` in turn, ``--pairs`` times, each in a fresh process, and prints
per suite:

* wall and CPU (user + system of the pytest process) time, median of each, and
  their ratios; peak RSS and its ratio;
* from gcguard's JSON report: tests checked, suspected (rerun at least once) as a
  share of them, reruns, the seconds the reruns and the diagnosis took, and the
  tests reported;
* why tests were suspected: per cause (how the suspicion ended: growth not
  repeated on a rerun, a declared-bound cache, a cache replacing its entries, a
  leak), the tests, reruns and rerun seconds, and the types most common among
  the first runs' suspects.

Target (issue 12): each clean suite within 1.15x of its plain wall time, median
at most 1.10x; peak memory within 1.10x; click, where 929 tests share one real
leak, within 2x (``--suites click``).  bidict (``--suites bidict``) is a suite of
Hypothesis property tests, where each rerun replays all of a test's examples.

Usage::

    python benchmarks/bench_suites.py [--suites attrs,jinja2,cachetools,pandas] [--pairs 3]
        [--workdir /tmp/gcguard-suites] [--python python3.11] [--recipes ../shared/suites] [--cycles]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Run:
    wall: float
    cpu: float
    rss_mb: float
    code: int


@dataclass
class Suite:
    name: str
    command: str
    plain: list[Run] = field(default_factory=list)
    checked: list[Run] = field(default_factory=list)
    reports: list[dict[str, object]] = field(default_factory=list)


#: Recipes of our own (click), looked up before the team's.
OWN_RECIPES = ROOT / "benchmarks" / "suites"


def recipe(name: str, recipes: Path) -> Path:
    """The recipe for ``name``: ours (``benchmarks/suites``) or the team's."""
    own = OWN_RECIPES / f"{name}.sh"
    return own if own.exists() else recipes / f"{name}.sh"


def set_up(name: str, recipes: Path, workdir: Path, python: str) -> Suite:
    """Run the recipe (idempotent) and install this checkout of the plugin into its venv."""
    directory = workdir / name
    out = subprocess.run(
        ["bash", str(recipe(name, recipes)), str(directory), python],
        check=True,
        capture_output=True,
        text=True,
    )
    command = out.stdout.strip().splitlines()[-1]
    venv_python = directory / "venv" / "bin" / "python"
    subprocess.run([str(venv_python), "-m", "pip", "install", "-q", "--no-deps", str(ROOT)], check=True)
    subprocess.run([str(venv_python), "-m", "pip", "install", "-q", "objgraph"], check=True)
    return Suite(name, command)


def measure(
    argv: list[str], env: dict[str, str], cwd: str | None = None, keep_output: bool = False
) -> tuple[Run, bytes]:
    """Run ``argv`` once: wall, CPU (user + system) and peak RSS of the process, its exit
    code, and its output (stdout and stderr together) if ``keep_output``, else ``b""``.
    Shared by the benchmarks that time a pytest process."""
    start = time.perf_counter()
    process = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE if keep_output else subprocess.DEVNULL,
        stderr=subprocess.STDOUT if keep_output else subprocess.DEVNULL,
    )
    output = process.stdout.read() if process.stdout else b""
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    run = Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status))
    return run, output


def run(command: str, extra: list[str]) -> Run:
    """One run of the suite's command in a fresh shell: wall, CPU, peak RSS of the pytest process."""
    argv = ["bash", "-c", f'exec_cmd() {{ {command} "$@"; }}; exec_cmd {" ".join(extra)}']
    return measure(argv, dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))[0]


def gcguard_figures(report: dict[str, object]) -> dict[str, float]:
    tests = report["tests"]
    assert isinstance(tests, list)
    judged = [t for t in tests if t["verdict"] != "skipped"]
    suspected = [t for t in judged if t["reruns"]]
    return {
        "checked": len(judged),
        "suspected": len(suspected),
        "reruns": sum(t["reruns"] for t in judged),
        "rerun_s": sum(t.get("seconds", {}).get("reruns", 0.0) for t in tests),
        "diagnosis_s": sum(t.get("seconds", {}).get("diagnosis", 0.0) for t in tests),
        "reported": sum(1 for t in judged if t["verdict"] != "clean"),
    }


def causes(report: dict[str, object]) -> list[tuple[str, int, int, float, str]]:
    """Suspected tests per cause (``suspicion.cause`` in the JSON report), most first.

    Per cause: tests, reruns, the seconds those reruns took, and the types most
    often among the first runs' suspects (in how many tests each appeared).
    """
    tests = report["tests"]
    assert isinstance(tests, list)
    rows: dict[str, list[dict[str, Any]]] = {}
    for test in tests:
        if test.get("suspicion"):
            rows.setdefault(test["suspicion"]["cause"], []).append(test)
    table = []
    for cause, group in sorted(rows.items(), key=lambda kv: -len(kv[1])):
        types = Counter(name for test in group for name in test["suspicion"]["first_run"])
        common = ", ".join(f"{name} ({n})" for name, n in types.most_common(4))
        reruns = sum(test["reruns"] for test in group)
        seconds = sum(test["seconds"]["reruns"] for test in group)
        table.append((cause, len(group), reruns, seconds, common))
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suites", default="attrs,jinja2,cachetools,pandas")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "gcguard-suites")
    parser.add_argument("--python", default="python3.11")
    parser.add_argument("--recipes", type=Path, default=ROOT.parent / "shared" / "suites")
    parser.add_argument(
        "--cycles",
        action="store_true",
        help="checked runs in cycles mode (--gcguard-cycles): its cost, not its reports",
    )
    args = parser.parse_args()
    mode = ["--gcguard-cycles"] if args.cycles else []
    suites = [set_up(name, args.recipes, args.workdir, args.python) for name in args.suites.split(",")]
    for suite in suites:
        for index in range(args.pairs):
            suite.plain.append(run(suite.command, ["-p", "no:gcguard"]))
            report = args.workdir / f"{suite.name}-{index}.json"
            suite.checked.append(run(suite.command, ["--gcguard", *mode, f"--gcguard-json={report}"]))
            suite.reports.append(json.loads(report.read_text()))
            print(f"{suite.name}: pair {index + 1} done", file=sys.stderr)
    checked = " ".join(["--gcguard", *mode])
    print(f"{args.pairs} pair(s) per suite, {args.python}; medians; ratio = {checked} / plain")
    header = (
        f"{'suite':12}{'wall':>16}{'ratio':>7}{'cpu':>16}{'ratio':>7}{'peak MB':>16}{'ratio':>7}"
        f"{'checked':>9}{'suspected':>11}{'reruns':>8}{'rerun s':>9}{'diag s':>8}{'reported':>10}"
    )
    print(header)
    ratios = []
    for suite in suites:
        plain = {k: statistics.median(getattr(r, k) for r in suite.plain) for k in ("wall", "cpu", "rss_mb")}
        on = {k: statistics.median(getattr(r, k) for r in suite.checked) for k in ("wall", "cpu", "rss_mb")}
        figures = gcguard_figures(suite.reports[-1])
        ratio = on["wall"] / plain["wall"]
        ratios.append(ratio)
        share = figures["suspected"] / figures["checked"] if figures["checked"] else 0.0
        print(
            f"{suite.name:12}"
            f"{plain['wall']:>7.1f}s/{on['wall']:>6.1f}s{ratio:>7.2f}"
            f"{plain['cpu']:>7.1f}s/{on['cpu']:>6.1f}s{on['cpu'] / plain['cpu']:>7.2f}"
            f"{plain['rss_mb']:>7.0f}/{on['rss_mb']:>7.0f}{on['rss_mb'] / plain['rss_mb']:>7.2f}"
            f"{figures['checked']:>9.0f}{figures['suspected']:>6.0f} ({share:4.0%})"
            f"{figures['reruns']:>8.0f}{figures['rerun_s']:>9.1f}{figures['diagnosis_s']:>8.1f}"
            f"{figures['reported']:>10.0f}"
        )
    print(f"median wall ratio over {len(ratios)} suite(s): {statistics.median(ratios):.2f}")
    print()
    print("why tests were suspected (last --gcguard run of each suite; first-run types: in how many tests)")
    print(f"{'suite':12}{'cause':16}{'tests':>7}{'reruns':>8}{'rerun s':>9}  first run's most common suspect types")
    for suite in suites:
        for cause, tests, reruns, seconds, common in causes(suite.reports[-1]):
            print(f"{suite.name:12}{cause:16}{tests:>7}{reruns:>8}{seconds:>9.1f}  {common}")


if __name__ == "__main__":
    main()
