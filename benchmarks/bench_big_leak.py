"""Cost of reporting one huge leak: a test that keeps 1,000,000 new objects on every run.

Builds a throw-away suite (the leaking test and a clean one), runs it plain and
with ``--gcguard`` alternately, each in a fresh process, and prints the median
wall time, CPU time (user + system) and peak RSS of each, and their ratios.

Target (issue 10): the report within 3x the plain run's wall time, peak memory
within 2x.  A leak is confirmed by rerunning the test, which keeps a second
copy of what it leaks alive: memory can never be as low as the plain run's.

Usage::

    python benchmarks/bench_big_leak.py [--objects 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile

from bench_suites import measure

TESTS = """
import os

KEEP = []


class Node:
    def __init__(self, i):
        self.i = i


def test_big_leak():
    KEEP.extend(Node(i) for i in range(int(os.environ["BENCH_OBJECTS"])))


def test_clean():
    assert sum(range(10)) == 45
"""


def run(directory: str, objects: int, gcguard: bool) -> tuple[float, float, float, int]:
    """Wall seconds, CPU seconds, peak RSS in MB, and exit code of one run."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
    if gcguard:
        command.append("--gcguard")
    env = dict(os.environ, BENCH_OBJECTS=str(objects), PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTEST_ADDOPTS", None)
    done, output = measure(command, env, cwd=directory, keep_output=True)
    expected = 1 if gcguard else 0
    if done.code != expected:
        raise SystemExit(f"unexpected exit code {done.code} (gcguard={gcguard}):\n{output.decode(errors='replace')}")
    if gcguard and b"test_big.Node" not in output:
        raise SystemExit(f"the leak was not reported:\n{output.decode(errors='replace')}")
    return done.wall, done.cpu, done.rss_mb, done.code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        with open(os.path.join(directory, "test_big.py"), "w") as f:
            f.write(TESTS)
        results: dict[bool, list[tuple[float, float, float, int]]] = {False: [], True: []}
        for _ in range(args.repeat):
            for gcguard in (False, True):
                results[gcguard].append(run(directory, args.objects, gcguard))
    print(f"Python {sys.version.split()[0]}, a leak of {args.objects:,} objects, median of {args.repeat} run(s) each")
    print(f"{'':14}{'plain':>10}{'--gcguard':>12}{'ratio':>8}")
    for index, label, unit in ((0, "wall", "s"), (1, "cpu", "s"), (2, "peak rss", "MB")):
        plain = statistics.median(r[index] for r in results[False])
        on = statistics.median(r[index] for r in results[True])
        print(f"{label:14}{plain:>9.2f}{unit[0]}{on:>11.2f}{unit[0]}{on / plain:>8.2f}")


if __name__ == "__main__":
    main()
