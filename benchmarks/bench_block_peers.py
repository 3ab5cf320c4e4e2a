"""Block checks side by side: what each tool catches, and how many calls it needs.

Runs every (tool, case) pair in a fresh interpreter, on top of a background heap
of ``--heap`` objects, and prints whether the tool failed the case, how many
times it called the code, and the wall time of the check.  Tools:

* ``gcguard``: ``pytest_gcguard.assert_no_leaks(func)``, and with ``cycles=True``;
* ``numpy``: ``numpy.testing.assert_no_gc_cycles(func)``;
* ``yagot``: ``yagot.garbage_checked()(func)()``;
* ``leak-hunter``: python-leak-hunter's ``assert_no_leak(func)`` (3 warm-up calls, then 2 x 20).

Cases: a clean call (and one that returns new objects); a table filled on first use; a leak of plain objects; a leak
of objects in reference cycles (reachable: growth, not garbage); cyclic garbage
only (nothing kept); a bounded ``lru_cache`` fed new keys.  A tool that is not
installed is skipped.  Usage::

    pip install numpy yagot python-leak-hunter   # the peers, into the same venv
    python benchmarks/bench_block_peers.py [--heap 200000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap

CASES = {
    "clean": "makes 10 objects, keeps nothing, returns nothing",
    "clean, new result": "returns 10 new objects and keeps nothing (the caller drops them)",
    "first use": "fills a module-level table on the first call only",
    "leak": "keeps one new object per call in a module-level list",
    "cyclic leak": "keeps one new 2-object cycle per call in a module-level list",
    "cyclic garbage": "makes 10 unreachable 2-object cycles per call, keeps nothing",
    "bounded cache": "feeds an lru_cache(maxsize=16) a new key per call",
}

TOOLS = {
    "gcguard": "from pytest_gcguard import assert_no_leaks\ncheck = lambda f: assert_no_leaks(f)",
    "gcguard cycles": "from pytest_gcguard import assert_no_leaks\ncheck = lambda f: assert_no_leaks(f, cycles=True)",
    "numpy": "from numpy.testing import assert_no_gc_cycles\ncheck = lambda f: assert_no_gc_cycles(f)",
    "yagot": "import yagot\ncheck = lambda f: yagot.garbage_checked()(f)()",
    "leak-hunter": "from leak_hunter import assert_no_leak\ncheck = lambda f: assert_no_leak(f)",
}

PROGRAM = """
import functools, itertools, json, sys, time
BACKGROUND = [{"row": [i]} for i in range(HEAP // 3)]
KEEP = []
TABLE = {}
CALLS = [0]
FRESH = itertools.count()

class Node:
    def __init__(self):
        self.other = None

@functools.lru_cache(maxsize=16)
def parse(key):
    return [Node()]

def case(name):
    def clean():
        made = [Node() for _ in range(10)]
        del made
    def new_result():
        return [Node() for _ in range(10)]
    def first_use():
        if not TABLE:
            TABLE.update((i, [i]) for i in range(100))
    def leak():
        KEEP.append(Node())
    def cyclic_leak():
        a, b = Node(), Node()
        a.other, b.other = b, a
        KEEP.append(a)
    def cyclic_garbage():
        for _ in range(10):
            a, b = Node(), Node()
            a.other, b.other = b, a
    def bounded_cache():
        parse(next(FRESH))
    return {"clean": clean, "clean, new result": new_result, "first use": first_use, "leak": leak,
            "cyclic leak": cyclic_leak, "cyclic garbage": cyclic_garbage, "bounded cache": bounded_cache}[name]

TOOL

work = case(CASE)
def counted():
    CALLS[0] += 1
    return work()

started = time.perf_counter()
try:
    check(counted)
    failed = False
except AssertionError:
    failed = True
print(json.dumps({"failed": failed, "calls": CALLS[0], "seconds": time.perf_counter() - started}))
"""


def run(tool: str, case: str, heap: int) -> dict[str, object] | None:
    program = PROGRAM.replace("TOOL", TOOLS[tool]).replace("HEAP", str(heap)).replace("CASE", repr(case))
    out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        if "ModuleNotFoundError" in out.stderr:
            return None
        raise RuntimeError(f"{tool} / {case} failed:\n{out.stderr}")
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heap", type=int, default=200_000, help="background objects (default 200000)")
    args = parser.parse_args()
    print(f"Python {sys.version.split()[0]}, background heap of about {args.heap} objects")
    print("each cell: FAILED (the tool reported the case) or pass, calls of the code, wall time of the check")
    print()
    width = max(map(len, CASES)) + 2
    print(f"{'case':{width}}" + "".join(f"{tool:>28}" for tool in TOOLS))
    for case in CASES:
        cells = []
        for tool in TOOLS:
            result = run(tool, case, args.heap)
            if result is None:
                cells.append("not installed")
                continue
            verdict = "FAILED" if result["failed"] else "pass"
            seconds = float(result["seconds"])  # type: ignore[arg-type]
            cells.append(f"{verdict} {result['calls']:>2} call(s) {seconds * 1000:>5.0f} ms")
        print(f"{case:{width}}" + "".join(f"{cell:>28}" for cell in cells))
    print()
    for case, what in CASES.items():
        print(textwrap.fill(f"{case}: {what}", subsequent_indent="    "))


if __name__ == "__main__":
    main()
