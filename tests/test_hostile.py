"""Hostile tests, files and option values (issue 10): no crash, gc state given back, canaries still judged.

Each inner run goes through a small driver in a subprocess that records the
interpreter's gc state before ``pytest.main`` and compares it after, so a
piece of global state gcguard forgot to give back fails the case.
"""

from __future__ import annotations

import json
import sys

import pytest

DRIVER = """
import gc, json, sys
import pytest

# 3.12 starts with its static types' tuples frozen (immortal), and no API
# refreezes exactly those: frozen means beyond the interpreter's own.
STARTUP_FROZEN = gc.get_freeze_count()

def state():
    return {
        "enabled": gc.isenabled(),
        "debug": gc.get_debug(),
        "threshold": list(gc.get_threshold()),
        "frozen": gc.get_freeze_count() > STARTUP_FROZEN,
        "callbacks": len(gc.callbacks),
        "functions": [id(gc.freeze), id(gc.unfreeze), id(gc.get_objects), id(gc.collect)],
    }

before = state()
code = pytest.main(sys.argv[1:])
after = state()
outcome = {"exit": int(code), "same_state": before == after, "before": before, "after": after}
print("GCGUARD-DRIVER", json.dumps(outcome))
"""

#: A leaking and a clean canary, run after each hostile test.
CANARIES = """
KEPT_BY_CANARY = []

class CanaryLeak:
    pass

def test_zz_canary_leaks():
    KEPT_BY_CANARY.append(CanaryLeak())

def test_zz_canary_clean():
    assert [1] * 3
"""


def drive(tester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict[str, object]]:
    """Run pytest through the driver; the result and its verdict on the gc state."""
    driver = tester.path / "driver.py"
    driver.write_text(DRIVER)
    result = tester.run(sys.executable, str(driver), "-p", "no:cacheprovider", "-p", "no:randomly", *args)
    line = next(line for line in result.outlines if line.startswith("GCGUARD-DRIVER "))
    outcome = json.loads(line.partition(" ")[2])
    assert outcome["same_state"], outcome
    assert "pytest_gcguard" not in result.stderr.str()
    result.stdout.no_fnmatch_line("INTERNALERROR*")
    return result, outcome


def canary_records(tester: pytest.Pytester, report: str = "gcguard.json") -> dict[str, str]:
    document = json.loads((tester.path / report).read_text())
    return {r["nodeid"].rpartition("::")[2]: r["verdict"] for r in document["tests"]}


def assert_canaries(records: dict[str, str]) -> None:
    assert records["test_zz_canary_leaks"] == "leaked"
    assert records["test_zz_canary_clean"] == "clean"


def test_a_json_path_that_is_a_directory_is_a_usage_error(tester: pytest.Pytester) -> None:
    tester.makepyfile("def test_x(): pass")
    (tester.path / "out").mkdir()
    result, outcome = drive(tester, "--gcguard", "--gcguard-json=out")
    assert outcome["exit"] == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--gcguard-json: *out is a directory, not a file*"])


@pytest.mark.parametrize("option", ["--gcguard-json", "--gcguard-baseline"])
def test_an_unwritable_output_under_filterwarnings_error_ends_the_run_cleanly(
    tester: pytest.Pytester, option: str
) -> None:
    tester.makeini("[pytest]\nfilterwarnings = error\nasyncio_default_fixture_loop_scope = function\n")
    tester.makepyfile(test_canaries=CANARIES)
    (tester.path / "blocker").write_text("a file where a directory is needed")
    extra = ["--gcguard-update-baseline"] if option == "--gcguard-baseline" else []
    result, outcome = drive(tester, "--gcguard", f"{option}=blocker/out.json", *extra)
    result.stdout.fnmatch_lines([f"error: {option}: cannot write *blocker*out.json*"])
    if option == "--gcguard-json":
        # The leaking canary already fails the run; the write error is reported in the summary.
        assert outcome["exit"] == pytest.ExitCode.TESTS_FAILED
        result.stdout.fnmatch_lines(["*gcguard summary*", "*1 leaking*"])
    else:
        assert outcome["exit"] == pytest.ExitCode.USAGE_ERROR  # a recorded leak does not fail the run


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b'{"gcguard-baseline": 1, "tests": {"\xff\xfe": {}}}', id="not-utf8"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="nested-100000-deep"),
    ],
)
def test_a_bad_baseline_file_is_a_usage_error_naming_the_option(tester: pytest.Pytester, content: bytes) -> None:
    tester.makepyfile("def test_x(): pass")
    (tester.path / "baseline.json").write_bytes(content)
    result, outcome = drive(tester, "--gcguard", "--gcguard-baseline=baseline.json")
    assert outcome["exit"] == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--gcguard-baseline: *baseline.json*"])


@pytest.mark.parametrize(
    "change",
    ["gc.disable()", "gc.set_debug(gc.DEBUG_SAVEALL)", "gc.set_threshold(1)", "gc.set_threshold(100000, 50, 50)"],
)
@pytest.mark.parametrize("mode", [[], ["--gcguard-refs"]], ids=["default", "refs"])
def test_gc_settings_a_test_leaves_changed_are_restored(tester: pytest.Pytester, change: str, mode: list[str]) -> None:
    tester.makepyfile(
        test_hostile=f"""
        import gc

        def test_changes_gc():
            {change}
        """,
        test_zz=CANARIES,
    )
    _, outcome = drive(tester, "--gcguard", "--gcguard-json=gcguard.json", *mode)
    assert outcome["exit"] == pytest.ExitCode.TESTS_FAILED
    assert_canaries(canary_records(tester))
    document = json.loads((tester.path / "gcguard.json").read_text())
    (record,) = (r for r in document["tests"] if r["nodeid"].endswith("test_changes_gc"))
    assert record["verdict"] == "clean"
    assert any("gcguard restored" in note for note in record["notes"]), record


@pytest.mark.parametrize("name", ["get_objects", "collect", "get_referrers", "get_referents"])
def test_a_test_that_replaces_a_gc_function_does_not_break_later_reports(tester: pytest.Pytester, name: str) -> None:
    tester.makepyfile(
        test_hostile=f"""
        import gc

        def broken(*args, **kwargs):
            raise RuntimeError("replaced by the test")

        def test_replaces():
            gc.{name} = broken  # and never puts it back
        """,
        test_zz=CANARIES,
    )
    tester.makeconftest(
        f"""
        import gc
        REAL = gc.{name}

        def pytest_unconfigure():
            gc.{name} = REAL  # the driver compares identities after the run
        """
    )
    result, _ = drive(tester, "--gcguard", "--gcguard-json=gcguard.json")
    assert_canaries(canary_records(tester))
    result.stdout.fnmatch_lines(["*why alive: module test_zz -> KEPT_BY_CANARY (list) -> *CanaryLeak*"])
    result.stdout.no_fnmatch_line("*replaced by the test*")


def test_classes_that_lie_are_reported_without_crashing(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        test_hostile="""
        import pytest

        class Liar(type):
            def __getattribute__(cls, name):
                raise RuntimeError("metaclass lies about " + name)

        class Weird(str):
            def __eq__(self, other):
                raise RuntimeError("no comparing")
            __hash__ = str.__hash__
            def __add__(self, other):
                raise RuntimeError("no adding")

        KEEP = []

        def test_lying_metaclass():
            KEEP.append(Liar("Lying", (), {})())

        def test_module_name_that_raises():
            cls = type("Odd", (), {})
            cls.__module__ = Weird("odd.module")
            KEEP.append(cls())

        def test_slots_that_raise():
            class Slotted:
                __slots__ = ("a",)
            KEEP.append(Slotted())

        class ModuleLiar(type):
            def __getattribute__(cls, name):
                if name == "__module__":
                    raise RuntimeError("no module")
                return super().__getattribute__(name)

        class LiarBase(metaclass=ModuleLiar):
            pass

        NAMES = iter(range(100))

        # Only the classes' weak references: their chains start at the classes, bound
        # to the module's globals, where the module of each is looked up.
        @pytest.mark.gcguard(only=["weakref.*"])
        def test_classes_whose_module_raises_bound_to_globals():
            globals()[f"C{next(NAMES)}"] = ModuleLiar("H", (LiarBase,), {})
        """,
        test_zz=CANARIES,
    )
    result, _ = drive(tester, "--gcguard", "--gcguard-json=gcguard.json")
    records = canary_records(tester)
    assert_canaries(records)
    for name in (
        "test_lying_metaclass",
        "test_module_name_that_raises",
        "test_slots_that_raise",
        "test_classes_whose_module_raises_bound_to_globals",
    ):
        assert records[name] == "leaked", (name, records)
    result.stdout.fnmatch_lines(["*odd.module.Odd x1*"])


@pytest.mark.parametrize("allow", ['{"Node": 1.5}', '{"Node": "3"}', '{"Node": True}'])
def test_a_marker_allow_that_is_not_a_whole_number_fails_only_its_test(tester: pytest.Pytester, allow: str) -> None:
    tester.makepyfile(
        test_hostile=f"""
        import pytest

        @pytest.mark.gcguard(allow={allow})
        def test_bad_marker():
            pass
        """,
        test_zz=CANARIES,
    )
    result, _ = drive(tester, "--gcguard", "--gcguard-json=gcguard.json")
    result.stdout.fnmatch_lines(["*allowed count for 'Node' must be*"])
    assert_canaries(canary_records(tester))
    result.assert_outcomes(passed=2, errors=2)


def test_an_enormous_declared_bound_is_no_bound(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        test_hostile="""
        import functools

        @functools.lru_cache(maxsize=10**9)
        def remember(n):
            return [n]

        N = [0]

        def test_feeds_a_practically_unbounded_cache():
            N[0] += 1
            remember(N[0])
        """
    )
    result, _ = drive(tester, "--gcguard", "--gcguard-json=gcguard.json")
    assert canary_records(tester)["test_feeds_a_practically_unbounded_cache"] == "leaked"
    result.stdout.no_fnmatch_line("*growth set aside*")


def test_objects_stored_in_sys_modules_under_new_names_are_growth(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        test_hostile="""
        import sys
        import types

        class Handle:
            pass

        N = [0]

        def test_registers_under_new_names():
            N[0] += 1
            sys.modules[f"gcguard_fake_{N[0]}"] = Handle()
            sys.modules[f"gcguard_mod_{N[0]}"] = types.ModuleType(f"gcguard_mod_{N[0]}")
        """
    )
    drive(tester, "--gcguard", "--gcguard-json=gcguard.json")
    document = json.loads((tester.path / "gcguard.json").read_text())
    (record,) = document["tests"]
    assert record["verdict"] == "leaked"
    assert {"test_hostile.Handle", "module"} <= {leak["type"] for leak in record["leaked"]}


#: Hostile test bodies: each runs before the canaries; the run must end with the
#: gc state given back, no traceback from gcguard, and the canaries judged.
HOSTILE_BODIES = {
    "gc-freeze": "gc.freeze()",
    "gc-unfreeze": "gc.unfreeze()",
    "gc-collect-loop": "for _ in range(50):\n        gc.collect()",
    "gc-callback-left": "gc.callbacks.append(lambda phase, info: None)",
    "gc-garbage-appended": "gc.garbage.append([1, 2, 3])",
    "gc-enable-twice": "gc.enable(); gc.enable()",
    "repr-raises": "KEEP.append(type('R', (), {'__repr__': lambda self: 1 / 0})())",
    "repr-recurses": "o = type('Rec', (), {'__repr__': lambda self: repr(self)})(); KEEP.append(o)",
    "class-attribute-raises": (
        "class C:\n        @property\n        def __class__(self):\n            raise RuntimeError('no class')\n"
        "    KEEP.append(C())"
    ),
    "getattr-raises": (
        "class G:\n        def __getattribute__(self, name):\n            raise RuntimeError(name)\n"
        "    KEEP.append(G())"
    ),
    "eq-and-hash-raise": (
        "class H:\n        def __eq__(self, other):\n            raise RuntimeError('eq')\n"
        "        def __hash__(self):\n            raise RuntimeError('hash')\n    KEEP.append(H())"
    ),
    "del-resurrects": (
        "class Z:\n        def __del__(self):\n            KEEP.append(self)\n    z = Z(); z.me = z; del z"
    ),
    "weakref-callback": (
        "import weakref\n    class W: pass\n    w = W(); KEEP.append(weakref.ref(w, lambda r: KEEP.append(r))); del w"
    ),
    "deep-chain": "node = []\n    for _ in range(100_000):\n        node = [node]\n    KEEP.append(node)",
    "wide-dict": "KEEP.append({i: [i] for i in range(50_000)})",
    "self-cycles": "for _ in range(1000):\n        a = []; a.append(a)",
    "thread-left-running": (
        "import threading\n    e = threading.Event()\n"
        "    t = threading.Thread(target=e.wait, args=(0.2,), daemon=True)\n    t.start()"
    ),
    "sys-modules-object": "import sys\n    sys.modules['gcguard_hostile_thing'] = object()",
    "str-subclass-module": (
        "class S(str):\n        def __eq__(self, other):\n            raise RuntimeError('eq')\n"
        "        __hash__ = str.__hash__\n    cls = type('T', (), {})\n"
        "    cls.__module__ = S('m')\n    KEEP.append(cls())"
    ),
    "gc-garbage-rebound": "gc.garbage = []",
    "gc-garbage-cleared": "gc.garbage.append(object()); del gc.garbage[:]",
    "gc-callbacks-cleared": "gc.callbacks.clear()",
    "gc-callback-raises": (
        "def boom(phase, info):\n        raise RuntimeError('callback')\n"
        "    gc.callbacks.append(boom)\n    gc.collect()"
    ),
    "gc-callback-allocates": "gc.callbacks.append(lambda phase, info: KEEP.append([phase]))",
    "gc-freeze-and-unfreeze": "gc.freeze(); gc.unfreeze(); gc.freeze()",
    "tracemalloc-left-on": "import tracemalloc\n    tracemalloc.start(5)",
    "settrace-left-on": "import sys\n    sys.settrace(lambda *a: None)",
    "frame-kept": "import sys\n    KEEP.append(sys._getframe())",
    "exc-info-kept": (
        "import sys\n    try:\n        1 / 0\n    except ZeroDivisionError:\n        KEEP.append(sys.exc_info())"
    ),
    "generator-suspended": ("def gen():\n        yield 1\n        yield 2\n    g = gen(); next(g); KEEP.append(g)"),
    "event-loop-left-open": "import asyncio\n    KEEP.append(asyncio.new_event_loop())",
    "finalizer-registered": (
        "import weakref\n    class F: pass\n    f = F(); KEEP.append(f); weakref.finalize(f, print, 'bye')"
    ),
    "huge-leak-of-dicts": "KEEP.extend({'i': i} for i in range(200_000))",
    "deep-dict-chain": ("node = {}\n    for _ in range(50_000):\n        node = {'next': node}\n    KEEP.append(node)"),
    "sleepy-repr": (
        "import time\n    KEEP.extend(type('Slow', (), {'__repr__': lambda self: time.sleep(0.2) or 'slow'})()"
        " for _ in range(20))"
    ),
    "sys-modules-entry-removed": "import sys, json\n    sys.modules.pop('json')",
    "mapping-that-lies": (
        "class D(dict):\n        def items(self):\n            raise RuntimeError('items')\n"
        "        def __iter__(self):\n            raise RuntimeError('iter')\n    KEEP.append(D(a=[1]))"
    ),
}


@pytest.mark.parametrize("body", list(HOSTILE_BODIES.values()), ids=list(HOSTILE_BODIES))
def test_a_hostile_test_leaves_the_run_and_the_gc_intact(tester: pytest.Pytester, body: str) -> None:
    tester.makepyfile(
        test_hostile=f"import gc\nKEEP = []\n\ndef test_hostile():\n    {body}\n",
        test_zz=CANARIES,
    )
    result, outcome = drive(tester, "--gcguard", "--gcguard-json=gcguard.json", "--gcguard-graph-dir=graphs")
    assert outcome["exit"] in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED)
    assert_canaries(canary_records(tester))
    result.stdout.no_fnmatch_line("*Traceback*pytest_gcguard*")


@pytest.mark.parametrize("when", ["setup", "call", "teardown"])
def test_a_keyboard_interrupt_ends_the_run_with_the_gc_given_back(tester: pytest.Pytester, when: str) -> None:
    tester.makepyfile(
        test_interrupt=f"""
        import pytest

        @pytest.fixture
        def interrupts():
            if {when!r} == "setup":
                raise KeyboardInterrupt
            yield
            if {when!r} == "teardown":
                raise KeyboardInterrupt

        def test_interrupted(interrupts):
            if {when!r} == "call":
                raise KeyboardInterrupt
        """
    )
    result, outcome = drive(tester, "--gcguard", "--gcguard-json=gcguard.json")
    assert outcome["exit"] == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*KeyboardInterrupt*"])


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["--gcguard-reruns=-1"], id="negative-reruns"),
        pytest.param(["--gcguard-reruns=lots"], id="word-reruns"),
        pytest.param(["--gcguard-allow=Node"], id="allow-without-count"),
        pytest.param(["--gcguard-allow=Node=1.5"], id="allow-fraction"),
        pytest.param(["-o", "gcguard_reruns=many"], id="ini-reruns"),
        pytest.param(["-o", "gcguard_allow=Node=x"], id="ini-allow"),
    ],
)
def test_a_bad_option_value_under_filterwarnings_error_is_a_usage_error(
    tester: pytest.Pytester, args: list[str]
) -> None:
    tester.makeini("[pytest]\nfilterwarnings = error\nasyncio_default_fixture_loop_scope = function\n")
    tester.makepyfile(test_canaries=CANARIES)
    result, outcome = drive(tester, "--gcguard", *args)
    assert outcome["exit"] == pytest.ExitCode.USAGE_ERROR
    option = args[-1].split("=")[0]
    result.stderr.fnmatch_lines([f"*{option}*"])


def test_an_unwritable_graph_directory_under_filterwarnings_error_keeps_the_report(tester: pytest.Pytester) -> None:
    tester.makeini("[pytest]\nfilterwarnings = error\nasyncio_default_fixture_loop_scope = function\n")
    tester.makepyfile(test_canaries=CANARIES)
    (tester.path / "graphs").write_text("a file where a directory is needed")
    result, outcome = drive(tester, "--gcguard", "--gcguard-graph-dir=graphs", "--gcguard-json=gcguard.json")
    assert outcome["exit"] == pytest.ExitCode.TESTS_FAILED
    assert_canaries(canary_records(tester))
    result.stdout.fnmatch_lines(["*CanaryLeak x1*", "*why alive*", "*graphs*"])


def test_gc_callbacks_a_library_registers_stay_and_the_tests_own_are_removed(tester: pytest.Pytester) -> None:
    # Hypothesis registers its gc timing callback once per process, on first use:
    # removing it would change Hypothesis for the rest of the session.
    tester.makepyfile(
        """
        import gc
        import logging

        def test_a_library_registers():
            gc.callbacks.append(logging.debug)  # standard-library code: a library's

        def test_it_is_still_there():
            assert logging.debug in gc.callbacks

        def test_leaves_its_own():
            gc.callbacks.append(lambda phase, info: None)

        def test_its_own_is_gone():
            assert [cb for cb in gc.callbacks if getattr(cb, "__name__", "") == "<lambda>"] == []
        """
    )
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-json=out.json", "-p", "no:randomly")
    result.assert_outcomes(passed=4)
    records = {r["nodeid"].rpartition("::")[2]: r for r in json.loads((tester.path / "out.json").read_text())["tests"]}
    assert {name: r["verdict"] for name, r in records.items()} == dict.fromkeys(records, "clean")
    assert records["test_a_library_registers"]["notes"] == []
    assert records["test_leaves_its_own"]["notes"] == ["the test left gc.callbacks changed; gcguard restored them"]
