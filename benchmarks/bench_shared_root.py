"""Cost of reporting many tests that leak into one container (click's case: 929 tests, one cache).

Builds a throw-away suite whose module holds ``--heap`` older lists (the heap a
pass of ``gc.get_referrers`` walks) and ``--tests`` tests that each leave a new
object in one module-level dict.  Runs it plain and with ``--gcguard``
alternately, each in a fresh process, and prints the median wall time and CPU
time (user + system) of each and their ratio, then what the ``--gcguard`` runs
spent per leaking test in reruns and in diagnosis (from the JSON report), and
how many of the why-alive search's passes over the whole heap the known holder
spared (issue 12: "one root, many tests: find the chain once per root and reuse
it, so 929 reports cost little more than one").

Usage::

    python benchmarks/bench_shared_root.py [--tests 300] [--heap 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile

from bench_suites import gcguard_figures, measure

TESTS = """
import os

import pytest

OLDER = [[i] for i in range(int(os.environ["BENCH_HEAP"]))]
REGISTRY = {}


class Session:
    def __init__(self):
        self.data = {"state": [1, 2]}


@pytest.mark.parametrize("n", range(int(os.environ["BENCH_TESTS"])))
def test_registers(n):
    REGISTRY[object()] = Session()
"""

CONFTEST = """
import json


def pytest_sessionfinish(session):
    checker = session.config.pluginmanager.get_plugin("gcguard-checker")
    if checker is not None:
        with open("spared.json", "w") as out:
            json.dump({"spared": getattr(checker.chains, "passes_spared", 0)}, out)
"""


def run(directory: str, tests: int, heap: int, gcguard: bool) -> tuple[float, float, dict[str, float]]:
    """Wall seconds, CPU seconds and (with ``--gcguard``) the report's totals of one run."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
    if gcguard:
        command += ["--gcguard", "--gcguard-json=out.json"]
    env = dict(os.environ, BENCH_TESTS=str(tests), BENCH_HEAP=str(heap), PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTEST_ADDOPTS", None)
    done, output = measure(command, env, cwd=directory, keep_output=True)
    if done.code != (1 if gcguard else 0):
        raise SystemExit(f"unexpected exit code {done.code} (gcguard={gcguard}):\n{output.decode(errors='replace')}")
    totals: dict[str, float] = {}
    if gcguard:
        with open(os.path.join(directory, "out.json")) as f:
            figures = gcguard_figures(json.load(f))
        if figures["reported"] != tests:
            raise SystemExit(
                f"{figures['reported']} of {tests} leaking tests reported:\n{output.decode(errors='replace')}"
            )
        with open(os.path.join(directory, "spared.json")) as f:
            totals.update(json.load(f))
        totals["reruns"] = figures["rerun_s"]
        totals["diagnosis"] = figures["diagnosis_s"]
    return done.wall, done.cpu, totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=300)
    parser.add_argument("--heap", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        with open(os.path.join(directory, "test_shared.py"), "w") as f:
            f.write(TESTS)
        with open(os.path.join(directory, "conftest.py"), "w") as f:
            f.write(CONFTEST)
        results: dict[bool, list[tuple[float, float, dict[str, float]]]] = {False: [], True: []}
        for _ in range(args.repeat):
            for gcguard in (False, True):
                results[gcguard].append(run(directory, args.tests, args.heap, gcguard))
    print(
        f"Python {sys.version.split()[0]}, {args.tests} tests leaking into one dict, "
        f"{args.heap:,} older lists, median of {args.repeat} run(s) each"
    )
    print(f"{'':10}{'plain':>10}{'--gcguard':>12}{'ratio':>8}")
    for label, plain, on in (
        ("wall", statistics.median(r[0] for r in results[False]), statistics.median(r[0] for r in results[True])),
        ("cpu", statistics.median(r[1] for r in results[False]), statistics.median(r[1] for r in results[True])),
    ):
        print(f"{label:10}{plain:>9.2f}s{on:>11.2f}s{on / plain:>8.2f}")
    for key, label in (("reruns", "reruns"), ("diagnosis", "diagnosis")):
        seconds = statistics.median(r[2][key] for r in results[True])
        print(f"{label:10} {seconds:.2f} s in all, {1000 * seconds / args.tests:.1f} ms per leaking test")
    spared = statistics.median(r[2]["spared"] for r in results[True])
    print(f"passes over the whole heap spared by the known holder: {spared:.0f} (of about {args.tests})")


if __name__ == "__main__":
    main()
