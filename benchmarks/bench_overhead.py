"""Per-test cost of ``--gcguard`` on a suite whose process holds millions of objects.

Builds a throw-away suite: a conftest that makes HEAP tracked objects at import
(a data-science suite's loaded tables, in miniature) and N trivial tests.  Runs
it with and without ``--gcguard``, alternating, at two sizes, and prints:

* per-test cost: the slope between the two sizes (so start-up and one-time
  session costs cancel), with the plugin on and off, and their ratio;
* one-time cost: the difference of the intercepts, also in units of one full
  ``gc.collect()`` of that heap (the plugin does one at start and one at end).

Target (issue 2): per-test ratio <= 1.15, one-time cost a few full collections.

Usage::

    python benchmarks/bench_overhead.py [--heap 2000000] [--small 500] [--large 5000] [--repeat 3]
    python benchmarks/bench_overhead.py --instructions   # CPU instructions under valgrind (deterministic)

Wall-clock time on a shared machine is noisy; ``--instructions`` counts the
instructions executed (``valgrind --tool=callgrind``), which repeat exactly, and
reports the same slopes in instructions instead of seconds.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

CONFTEST = """
import os
# Tracked objects made at import and kept for the whole session.
HEAP = [[i] for i in range(int(os.environ["BENCH_HEAP"]))]
"""

TESTS = """
import os
import pytest

@pytest.mark.parametrize("i", range(int(os.environ["BENCH_TESTS"])))
def test_trivial(i):
    assert i >= 0
"""

FULL_COLLECT = """
import gc, os, time
HEAP = [[i] for i in range(int(os.environ["BENCH_HEAP"]))]
gc.collect()
times = []
for _ in range(5):
    t = time.perf_counter(); gc.collect(); times.append(time.perf_counter() - t)
times.sort()
print(times[2])
"""


FULL_COLLECT_INSTRUCTIONS = """
import gc, os
HEAP = [[i] for i in range(int(os.environ["BENCH_HEAP"]))]
gc.collect()
for _ in range(int(os.environ["BENCH_COLLECTS"])):
    gc.collect()
"""


def count_instructions(cmd: list[str], env: dict[str, str], cwd: str | None = None) -> float:
    """CPU instructions ``cmd`` executes, counted by valgrind's callgrind."""
    cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *cmd]
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"benchmark run failed ({' '.join(cmd)}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    match = re.search(r"I\s+refs:\s+([\d,]+)", proc.stderr)
    if match is None:
        sys.exit(f"no instruction count in valgrind output:\n{proc.stderr[-2000:]}")
    return float(match.group(1).replace(",", ""))


def full_collection_instructions(heap: int) -> float:
    """Instructions of one full ``gc.collect()`` of the heap: a run with one more, minus one without."""
    runs = []
    for collects in (0, 1):
        env = dict(os.environ, BENCH_HEAP=str(heap), BENCH_COLLECTS=str(collects))
        runs.append(count_instructions([sys.executable, "-c", FULL_COLLECT_INSTRUCTIONS], env))
    return runs[1] - runs[0]


def run(directory: str, tests: int, heap: int, plugin: bool, instructions: bool = False) -> float:
    """Seconds for one pytest run (or, with ``instructions``, CPU instructions)."""
    env = dict(os.environ, BENCH_HEAP=str(heap), BENCH_TESTS=str(tests), PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTEST_ADDOPTS", None)
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", "test_bench.py"]
    if plugin:
        cmd.append("--gcguard")
    if instructions:
        return count_instructions(cmd, env, directory)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=directory, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"benchmark run failed ({' '.join(cmd)}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--heap", type=int, default=2_000_000, help="tracked objects made at import")
    parser.add_argument("--small", type=int, default=500, help="tests in the small run")
    parser.add_argument("--large", type=int, default=5000, help="tests in the large run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per configuration (median kept)")
    parser.add_argument(
        "--instructions", action="store_true", help="count CPU instructions with valgrind instead of timing"
    )
    args = parser.parse_args()
    if args.instructions:
        if shutil.which("valgrind") is None:
            sys.exit("--instructions needs valgrind (apt-get install valgrind)")
        args.repeat = 1  # instruction counts repeat exactly

    with tempfile.TemporaryDirectory(prefix="gcguard-bench-") as directory:
        with open(os.path.join(directory, "conftest.py"), "w") as f:
            f.write(textwrap.dedent(CONFTEST))
        with open(os.path.join(directory, "test_bench.py"), "w") as f:
            f.write(textwrap.dedent(TESTS))
        with open(os.path.join(directory, "pytest.ini"), "w") as f:
            f.write("[pytest]\n")

        env = dict(os.environ, BENCH_HEAP=str(args.heap))
        if args.instructions:
            full = full_collection_instructions(args.heap)
        else:
            full = float(
                subprocess.run(
                    [sys.executable, "-c", FULL_COLLECT], env=env, capture_output=True, text=True, check=True
                ).stdout
            )

        samples: dict[tuple[int, bool], list[float]] = {}
        for rep in range(args.repeat):
            # Alternate plugin on/off (and the order) so drift hits both alike.
            order = [False, True] if rep % 2 == 0 else [True, False]
            for tests in (args.small, args.large):
                for plugin in order:
                    value = run(directory, tests, args.heap, plugin, args.instructions)
                    samples.setdefault((tests, plugin), []).append(value)

    med = {key: statistics.median(values) for key, values in samples.items()}
    span = args.large - args.small
    slope_off = (med[(args.large, False)] - med[(args.small, False)]) / span
    slope_on = (med[(args.large, True)] - med[(args.small, True)]) / span
    icpt_off = med[(args.small, False)] - slope_off * args.small
    icpt_on = med[(args.small, True)] - slope_on * args.small
    one_time = icpt_on - icpt_off

    unit, scale, fmt = ("instructions", 1.0, ",.0f") if args.instructions else ("us", 1e6, ".1f")
    print(f"python {sys.version.split()[0]}, heap {args.heap:,} tracked objects, {args.repeat} run(s) each (median)")
    for (tests, plugin), value in sorted(med.items()):
        shown = f"{value:,.0f} instructions" if args.instructions else f"{value:7.2f} s"
        print(f"  {tests:>6} tests, gcguard {'on ' if plugin else 'off'}: {shown}")
    print(f"per-test cost off: {slope_off * scale:{fmt}} {unit}")
    print(f"per-test cost on:  {slope_on * scale:{fmt}} {unit}  (+{(slope_on - slope_off) * scale:{fmt}} {unit})")
    print(f"per-test ratio on/off: {slope_on / slope_off:.3f}   (target <= 1.15)")
    if args.instructions:
        print(
            f"one-time cost: {one_time:,.0f} instructions = {one_time / full:.1f} full collections "
            f"(one full gc.collect() of this heap: {full:,.0f} instructions)"
        )
    else:
        print(
            f"one-time cost: {one_time:.3f} s = {one_time / full:.1f} full collections "
            f"(one full gc.collect() of this heap: {full * 1e3:.0f} ms)"
        )


if __name__ == "__main__":
    main()
