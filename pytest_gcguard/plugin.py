"""pytest entry point: options, marker, and the per-test leak check."""

from __future__ import annotations

import gc
import sys
import tracemalloc
import types
from collections.abc import Generator

import pytest

from . import _settings, _snapshot
from ._diagnose import explain
from ._report import Leak, Verdict, cycle_text
from ._settings import Settings, TypeFilter
from ._snapshot import (
    Closed,
    FreezeGuard,
    Heap,
    Survivors,
    Window,
    absorbed,
    close_window,
    open_window,
    own_objects,
    phase_done,
    phase_starts,
    settle,
    type_name,
)
from ._warnings import GcGuardWarning

settings_key = pytest.StashKey[Settings]()
marker_error_key = pytest.StashKey[str]()

#: ``item.user_properties`` key of the one-line finding (reaches xdist's controller and JUnit XML).
SUMMARY_PROPERTY = "gcguard"
#: Frames tracemalloc keeps per allocation with --gcguard-trace.
TRACE_FRAMES = 8
LEAKED_PROPERTY = "gcguard_leaked_objects"


def pytest_addoption(parser: pytest.Parser) -> None:
    _settings.addoption(parser)


_snapshot.describe_cycle = cycle_text


def pytest_configure(config: pytest.Config) -> None:
    # Registered first and always, so --strict-markers works with the plugin off.
    config.addinivalue_line("markers", _settings.MARKER_HELP)
    settings = _settings.from_config(config)
    if settings.graph_dir:
        try:
            import objgraph  # noqa: F401
        except ImportError:  # pragma: no cover - objgraph is a dependency
            raise pytest.UsageError("--gcguard-graph-dir requires objgraph: pip install objgraph") from None
    config.pluginmanager.register(GcGuardSession(config, settings), "gcguard-session")


class GcGuardSession:
    """Session-level part, always registered: header, summary, and switching on.

    The per-test checker is registered only once collection shows that some
    test is to be checked (``--gcguard``, the ini key, or a marker), so a run
    without any of them pays nothing per test.
    """

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.checker: GcGuard | None = None
        self.findings: list[str] = []

    def pytest_report_header(self) -> str | None:
        """Say how the run was checked, so it can be reproduced."""
        if not self.settings.enabled:
            return None
        return f"gcguard: on ({self.settings.describe()})"

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Register the per-test checker only if some collected test is checked."""
        if self.checker is not None:
            return
        if not self.settings.enabled and not any(item.get_closest_marker("gcguard") for item in session.items):
            return
        self.checker = GcGuard(self.config, self.settings)
        self.config.pluginmanager.register(self.checker, "gcguard-checker")
        self.config.pluginmanager.register(_PhaseMarks(self.checker), "gcguard-phases")

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Gather findings from report properties (works on xdist's controller too)."""
        if report.when != "teardown":
            return
        for name, value in report.user_properties:
            if name == SUMMARY_PROPERTY:
                self.findings.append(str(value))

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        """List every leaking test once at the end of the run."""
        verbosity = self.config.get_verbosity()
        checker = self.checker
        checked = checker.checked if checker is not None else 0
        if verbosity < 0 or not (self.findings or (verbosity > 0 and checked)):
            return
        terminalreporter.write_sep("=", "gcguard summary")
        for line in self.findings:
            terminalreporter.write_line(line)
        if checker is not None and checked:
            terminalreporter.write_line(
                f"gcguard: checked {checked} test(s); {checker.suspected} suspected and rerun "
                f"({checker.reruns} rerun(s)); {len(self.findings)} leaking; "
                f"{checker.heap.passes} full collection(s) took {checker.heap.pass_seconds:.2f}s"
            )


class _PhaseMarks:
    """Innermost wrappers around each phase: they mark where test code runs.

    Whatever the runner makes between phases (reports, hook calls, logging and
    capture resets) is then known by identity and never counted as the test's.
    """

    def __init__(self, checker: GcGuard) -> None:
        self.checker = checker

    # Each hook repeats the same few lines: a shared helper would add a
    # generator per phase, and these run for every checked test.

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, object, object]:
        """A bad gcguard marker fails only its own test; the window opens here."""
        message = item.stash.get(marker_error_key, None)
        if message is not None:
            pytest.fail(message, pytrace=False)
        window = self.checker.window
        if window is None:
            return (yield)
        open_window(window)
        try:
            return (yield)
        except BaseException:
            window.passed = False  # failed, skipped or xfailed: reported once, as itself
            raise
        finally:
            phase_done()

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_runtest_call(self) -> Generator[None, object, object]:
        window = self.checker.window
        if window is None or not window.opened:
            return (yield)
        phase_starts(window)
        try:
            return (yield)
        except BaseException:
            window.passed = False
            raise
        finally:
            phase_done()

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_runtest_teardown(self) -> Generator[None, object, object]:
        window = self.checker.window
        if window is None or not window.opened:
            return (yield)
        phase_starts(window)
        try:
            return (yield)
        finally:
            phase_done()


class _Confirmation:
    """Bookkeeping kept across reruns.

    Its class lives in this package, so the leak check excludes it and all it
    holds: our own lists and dicts never count as the test's growth.
    """

    def __init__(self) -> None:
        self.counts: list[dict[type, int]] = []
        self.growth: list[dict[type, int]] = []
        self.new_ids: set[int] = set()
        self.previous_ids: set[int] = set()
        self.cyclic: list[int] = []
        self.failure = ""

    def record(self, counts: dict[type, int], current: set[int]) -> None:
        """Add a rerun's suspects: its growth over the previous run, and samples."""
        previous = self.counts[-1]
        self.growth.append({tp: n - previous.get(tp, 0) for tp, n in counts.items()})
        self.counts.append(counts)
        # Samples: objects new in an earlier rerun that outlived the later ones
        # (accumulating, not replaced); the first rerun can only offer its own.
        if len(self.growth) > 1:
            self.new_ids &= current
        else:
            self.new_ids = current - self.previous_ids
        self.previous_ids = current


class GcGuard:
    """Per-test leak checker, registered as ``gcguard-checker`` when some test is checked."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.heap = Heap()
        self.guard = FreezeGuard()
        self.window: Window | None = None
        self.stop_frame: types.FrameType | None = None
        self.nextitem: pytest.Item | None = None
        self.checked = 0
        self.suspected = 0
        self.reruns = 0
        self.started_tracing = False

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self) -> None:
        """Free what the frozen baseline held back and give the heap back unfrozen."""
        self.heap.stop()
        self.guard.uninstall()
        if self.started_tracing:
            tracemalloc.stop()

    # -- per test -----------------------------------------------------------

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_protocol(
        self, item: pytest.Item, nextitem: pytest.Item | None
    ) -> Generator[None, object, object]:
        """Open the window before setup: the test owns what its fixtures make."""
        marks = list(item.iter_markers("gcguard"))
        if not marks and not self.settings.enabled:
            return (yield)
        try:
            settings = _settings.for_item(self.settings, marks)
        except ValueError as exc:
            item.stash[marker_error_key] = str(exc)
            return (yield)
        if not settings.enabled:
            return (yield)
        item.stash[settings_key] = settings
        self.nextitem = nextitem
        self.heap.maybe_full_pass()
        self.guard.install()
        if settings.trace and not tracemalloc.is_tracing():
            tracemalloc.start(TRACE_FRAMES)
            self.started_tracing = True
        self.stop_frame = sys._getframe(1)
        # Opened (collect + freeze) by the innermost setup wrapper, as late as
        # possible: everything the runner made before is simply frozen.
        window = self.window = self.guard.window = Window(settings.cycles)
        try:
            return (yield)
        finally:
            self.guard.window = None
            if self.window is not None:  # teardown never judged (error, interrupt)
                self.window = None
                window.runner.clear()
                if window.opened:
                    close_window(window)
                    settle()
            self.stop_frame = None
            self.nextitem = None
            del item.stash[settings_key]

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_fixture_setup(
        self, fixturedef: pytest.FixtureDef[object], request: pytest.FixtureRequest
    ) -> Generator[None, object, object]:
        """Objects of module/class/session fixtures a test sets up are not its leak."""
        window = self.window
        if window is None or window.rerun or fixturedef.scope == "function":
            return (yield)
        with absorbed(window):
            return (yield)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Generator[None, object, object]:
        """After the function fixtures are finalised: collect, compare, confirm, report."""
        window = self.window
        if window is None or window.rerun:  # not checked, or one of our own reruns
            return (yield)
        result = yield
        if not window.opened:  # setup never ran
            return result
        phase_starts(window)  # what the outer teardown wrappers made since the fixtures ran
        self.window = None
        verdict = self._judge(item, window)
        if verdict is not None and verdict.failed:
            item.user_properties.append((SUMMARY_PROPERTY, verdict.summary_line()))
            item.user_properties.append((LEAKED_PROPERTY, verdict.leaked_objects()))
            message = verdict.message()
            del verdict
            pytest.fail(message, pytrace=False)
        return result

    # -- the verdict --------------------------------------------------------

    def _judge(self, item: pytest.Item, window: Window) -> Verdict | None:
        settings = item.stash[settings_key]
        closed = close_window(window)
        try:
            if not window.passed:
                return None  # a failed/skipped test is reported once, as itself
            if window.guard_calls:
                item.add_report_section(
                    "teardown",
                    "gcguard",
                    "not checked: the test called "
                    + ", ".join(window.guard_calls)
                    + ", which hides or exposes the heap",
                )
                return None
            verdict = self._find_leaks(item, window, closed, settings)
        finally:
            window.runner.clear()
            settle()
        self.checked += 1
        if verdict is None:
            return None
        for message in verdict.warnings:
            item.warn(GcGuardWarning(message))
        if verdict.notes and not verdict.failed:
            item.add_report_section("teardown", "gcguard", "\n".join(verdict.notes))
        return verdict

    def _classify(self, item: pytest.Item, window: Window, own: tuple[object, ...] = ()) -> Survivors:
        # Cheapest exclusions first; stop as soon as nothing is left (the usual
        # case for a clean test), so a check costs what the test allocated.
        survivors = Survivors()
        survivors.exclude_known(window.runner, own)
        survivors.exclude_exact(gc.garbage[window.garbage0 :])
        if not survivors.remaining:
            return survivors
        survivors.exclude_internal()
        survivors.exclude_spent_iterators()
        if not survivors.remaining:
            return survivors
        survivors.exclude_owned_by(item, (pytest.Stash, pytest.FixtureRequest))
        if not survivors.remaining:
            return survivors
        # From this frame up: our own callers' locals (the hook result being
        # returned) are in flight too; our analysis objects are not young.
        survivors.exclude_from_frames(sys._getframe(), self.stop_frame)
        if not survivors.remaining:
            return survivors
        survivors.exclude_reachable(window.runner)
        survivors.exclude_reachable(gc.garbage[window.garbage0 :])
        survivors.exclude_new_modules(window.modules0)
        survivors.exclude_import_caches()
        survivors.exclude_weakrefs_to_others()
        survivors.exclude_spent_iterators()
        return survivors

    def _count(self, survivors: Survivors, filt: TypeFilter) -> dict[type, int]:
        # No lambdas or comprehensions over locals here: on 3.10/3.11 they put a
        # young cell in this frame before the objects are listed.
        counts = survivors.count_suspects()
        kept: dict[type, int] = {}
        for tp, n in counts.items():
            name = type_name(tp)
            if filt.keep(name) and n > filt.allowed(name):
                kept[tp] = n
        return kept

    def _find_leaks(self, item: pytest.Item, window: Window, closed: Closed, settings: Settings) -> Verdict | None:
        # Nothing made here before the objects are listed may count: only
        # ``closed`` exists, and it is excluded by identity.
        survivors = self._classify(item, window, own_objects(closed))
        if not survivors.remaining and not closed.cyclic and not closed.uncollectable and not closed.notes:
            survivors.clear()
            return None  # the usual case: a clean test
        filt = TypeFilter(settings)
        verdict = Verdict(item.nodeid, notes=list(closed.notes))
        verdict.uncollectable = dict(closed.uncollectable)
        if settings.cycles:
            verdict.cyclic_types = filt.kept(closed.cyclic_types)
            verdict.cyclic = min(closed.cyclic, sum(verdict.cyclic_types.values()))
            verdict.cycle_chain = closed.cycle_chain
        confirmation = _Confirmation()
        confirmation.counts.append(self._count(survivors, filt))
        if not confirmation.counts[0] and not verdict.cyclic:
            survivors.clear()
            return verdict
        confirmation.new_ids = survivors.suspect_ids()
        confirmation.previous_ids = confirmation.new_ids
        survivors.clear()
        del survivors
        self.suspected += 1
        if settings.reruns:
            self._confirm(item, window, filt, settings.reruns, confirmation)
            if confirmation.failure:
                verdict.notes.append(f"suspected leak not confirmed: {confirmation.failure}")
                verdict.cyclic = 0
                return verdict
            if verdict.cyclic and min(confirmation.cyclic) == 0:
                verdict.notes.append(
                    f"{verdict.cyclic} object(s) in reference cycles on the first run only (a one-time effect)"
                )
                verdict.cyclic = 0
        self._describe(item, filt, settings, confirmation, verdict)
        return verdict

    def _describe(
        self,
        item: pytest.Item,
        filt: TypeFilter,
        settings: Settings,
        confirmation: _Confirmation,
        verdict: Verdict,
    ) -> None:
        """Turn confirmed growth into the report (runs after all measurements)."""
        confirmed: dict[type, int] = {}
        for tp, n in confirmation.counts[0].items():
            growth = [g.get(tp, 0) for g in confirmation.growth]
            if not growth:
                confirmed[tp] = n
            elif min(growth) > filt.allowed(type_name(tp)):
                confirmed[tp] = min(growth)
        if not confirmed:
            return
        verdict.confirmed_by = len(confirmation.growth)
        # Samples: objects that outlived a later run of the test (accumulating).
        samples: dict[type, list[object]] = {}
        young = gc.get_objects()
        for obj in young:
            tp = type(obj)
            if tp in confirmed and id(obj) in confirmation.new_ids:
                bucket = samples.setdefault(tp, [])
                if len(bucket) < _settings.MAX_SAMPLES:
                    bucket.append(obj)
        del young
        ordered = sorted(confirmed.items(), key=lambda kv: (-kv[1], type_name(kv[0])))
        for tp, n in ordered:
            verdict.leaks.append(Leak(type_name(tp), n, growth=[g.get(tp, 0) for g in confirmation.growth]))
        explain(verdict, [samples.get(tp, []) for tp, _ in ordered], settings, item.nodeid)
        samples.clear()

    def _confirm(
        self,
        item: pytest.Item,
        window: Window,
        filt: TypeFilter,
        reruns: int,
        confirmation: _Confirmation,
    ) -> None:
        """Run the test's protocol again; keep only growth that repeats every time.

        Nothing is frozen between runs, so an object of the first run that a rerun
        replaces (a cache slot, a reassigned global) dies and cancels out, while a
        real leak adds the same objects again on every run (CPython's ``-R`` rule).
        """
        from _pytest.runner import runtestprotocol  # the documented way to re-run an item

        for attempt in range(1, reruns + 1):
            if hasattr(item, "_request"):
                # runtestprotocol re-creates the fixture request when it is falsy,
                # exactly as for pytest-rerunfailures.
                item._request = False
            self.reruns += 1
            # The phase marks open this window and list the runner's objects,
            # exactly as for the first run, so both are judged alike.
            rerun_window = self.window = Window(window.cycles, rerun=True)
            try:
                reports = runtestprotocol(item, log=False, nextitem=self.nextitem)
            finally:
                self.window = None
            failed = [r for r in reports if not r.passed]
            del reports
            if rerun_window.opened:
                phase_starts(rerun_window)  # what the outer teardown wrappers made
                closed = close_window(rerun_window)
                confirmation.cyclic.append(sum(filt.kept(closed.cyclic_types).values()))
                del closed
            window.runner.extend(rerun_window.runner)
            del rerun_window
            if failed:
                confirmation.failure = f"rerun {attempt} {failed[0].outcome} in {failed[0].when}"
                return
            del failed
            survivors = self._classify(item, window)
            confirmation.record(self._count(survivors, filt), survivors.suspect_ids())
            survivors.clear()
            del survivors
