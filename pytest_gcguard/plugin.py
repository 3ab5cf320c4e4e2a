"""pytest entry point: options, marker, and the per-test leak check."""

from __future__ import annotations

import functools
import os
import sys
import time
import tracemalloc
import types
from collections.abc import Callable, Generator, Mapping
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any, TextIO

import pytest

from . import _html, _records, _settings
from ._block import Checks
from ._diagnose import ChainMemo
from ._heap import (
    COUNTS_REFERENCES,
    FreezeGuard,
    Heap,
    Window,
    _collect,
    absorbed,
    allocated_blocks,
    clear_caches,
    close_window,
    list_runner,
    listed_as_runner,
    open_window,
    phase_done,
    phase_starts,
    restore_gc_state,
    runner_code_ends,
    runner_code_starts,
    saved_gc_state,
    settle,
    total_references,
    track_dicts,
)
from ._judge import judge
from ._outcome import act, record_key
from ._pytest_internals import (
    active_fixture_defs,
    drop_spent_finalizers,
    fixture_request,
    recorded_warnings,
    release_fixture_values,
    rerun_protocol,
    scaffolding_codes,
    stop_test_timer,
    unseen,
)
from ._report import Verdict
from ._settings import Settings
from ._slots import Slots

settings_key = pytest.StashKey[Settings]()
marker_error_key = pytest.StashKey[str]()

outcome_key = pytest.StashKey[str]()

#: Attribute of the teardown report that carries the test's record (see _records).
RECORD_ATTRIBUTE = "gcguard"
#: Frames tracemalloc keeps per allocation with --gcguard-trace.
TRACE_FRAMES = 8
#: Refs mode: measured runs at least (``regrtest -R`` measures 4 after 5 warm-ups).
MEMORY_RUNS = 3


def pytest_addoption(parser: pytest.Parser) -> None:
    _settings.addoption(parser)


def pytest_configure(config: pytest.Config) -> None:
    # Registered first and always, so --strict-markers works with the plugin off.
    config.addinivalue_line("markers", _settings.MARKER_HELP)
    settings = _settings.from_config(config)
    options = _settings.run_options(config)
    if settings.graph_dir:
        try:
            import objgraph  # noqa: F401
        except ImportError:  # pragma: no cover - objgraph is a dependency
            raise pytest.UsageError("--gcguard-graph-dir requires objgraph: pip install objgraph") from None
    baseline: dict[str, _records.Entry] | None = None
    if options.baseline is not None:
        try:
            baseline = _records.load_baseline(options.baseline)
        except _records.BaselineError as exc:
            if not (options.update_baseline and not options.baseline.exists()):
                raise pytest.UsageError(f"--gcguard-baseline: {exc}") from None
            baseline = {}
    config.pluginmanager.register(GcGuardSession(config, settings, options, baseline), "gcguard-session")


@pytest.fixture
def gcguard() -> Checks:
    """Leak checks for a call or a block inside a test: ``gcguard.assert_no_leaks(func)``, ``with gcguard.check():``.

    Works with or without ``--gcguard``; with it, the test is still judged as a
    whole around the block checks.
    """
    return Checks()


def _is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


class GcGuardSession:
    """Session-level part, always registered: header, records, reports, summary.

    The per-test checker is registered only once collection shows that some
    test is to be checked (``--gcguard``, the ini key, or a marker), so a run
    without any of them pays nothing per test.  Records arrive through the
    teardown reports, so on pytest-xdist's controller they cover every worker.
    """

    def __init__(
        self,
        config: pytest.Config,
        settings: Settings,
        options: _settings.RunOptions,
        baseline: dict[str, _records.Entry] | None,
    ) -> None:
        self.config = config
        self.settings = settings
        self.options = options
        self.baseline = baseline
        self.checker: GcGuard | None = None
        self.records: dict[str, Mapping[str, Any]] = {}
        self.stale: dict[str, str] = {}
        self.notes: list[str] = []

    def pytest_report_header(self) -> str | None:
        """Say how the run was checked, so it can be reproduced."""
        if not self.settings.enabled:
            return None
        extra = ""
        if self.options.baseline is not None:
            verb = "updating" if self.options.update_baseline else "against"
            extra = f", {verb} baseline {self.options.baseline} ({len(self.baseline or {})} known)"
        return f"gcguard: on ({self.settings.describe()}{extra})"

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Register the per-test checker only if some collected test is checked."""
        if self.checker is not None:
            return
        if not self.settings.enabled and not any(item.get_closest_marker("gcguard") for item in session.items):
            return
        self.checker = GcGuard(self.config, self.settings, self)
        self.config.add_cleanup(self.checker.restore)
        self.config.pluginmanager.register(self.checker, "gcguard-checker")
        self.config.pluginmanager.register(_PhaseMarks(self.checker), "gcguard-phases")
        self.config.pluginmanager.register(_TeardownCodeEnd(self.checker), "gcguard-teardown-end")
        self.config.pluginmanager.register(_LastTeardownImpl(), "gcguard-teardown-last")

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Gather records from teardown reports (works on xdist's controller too)."""
        if report.when != "teardown":
            return
        record = getattr(report, RECORD_ATTRIBUTE, None)
        if isinstance(record, dict):
            self.records[report.nodeid] = record

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Write the JSON report and the baseline, and fail on stale entries if asked (controller only)."""
        if _is_xdist_worker(self.config):
            return
        options = self.options
        if self.baseline is not None and options.baseline is not None:
            if options.update_baseline:
                entries = _records.updated_baseline(self.baseline, self.records, self.config.rootpath)
                if self._write(session, options.baseline, _records.baseline_text(entries), "--gcguard-baseline"):
                    self.notes.append(
                        f"baseline: {len(entries)} test(s) with known leaks written to {options.baseline}"
                    )
            else:
                self.stale = _records.stale_entries(self.baseline, self.records)
                if self.stale and options.fail_stale and session.exitstatus == pytest.ExitCode.OK:
                    session.exitstatus = pytest.ExitCode.TESTS_FAILED
                    self.notes.append("failing the run: stale baseline entries (--gcguard-fail-stale)")
        if options.json is None and options.html is None:
            return
        from . import __version__

        settings = self.settings.to_json()
        settings["baseline"] = str(options.baseline) if options.baseline else None
        head = _records.report_head(self.records, settings, __version__)
        head["stale_baseline_entries"] = self.stale
        if options.json is not None:
            write = functools.partial(_records.write_json_report, records=self.records, head=head)
            if self._write(session, options.json, write, "--gcguard-json"):
                self.notes.append(f"JSON report: {options.json}")
        if options.html is not None:
            page = _html.render(_records.json_report(self.records, head), self.config.invocation_params.dir)
            if self._write(session, options.html, page, "--gcguard-html"):
                self.notes.append(f"HTML report: {options.html}")

    def _write(self, session: pytest.Session, path: Path, content: str | Callable[[TextIO], None], option: str) -> bool:
        """Write an output file (``content``: its text, or what writes it); on failure,
        say so in the summary and fail the run as a usage error.

        Not a warning: under ``filterwarnings = error`` a warning raised here
        would end the run with a bare traceback before the summary.
        """
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            with tmp.open("w", encoding="utf-8") as out:
                if isinstance(content, str):
                    out.write(content)
                else:
                    content(out)  # writes it piece by piece
            os.replace(tmp, path)
        except OSError as exc:
            self.notes.append(f"error: {option}: cannot write {path}: {exc.strerror or exc}")
            if session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.USAGE_ERROR
            return False
        return True

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        """A compact table of every leaking test at the end of the run, limited by verbosity."""
        verbosity = self.config.get_verbosity()
        records = self.records
        lines = _records.summary_lines(records, self.stale, verbosity, self.options.baseline)
        # The count line alone is worth a section when tests were rerun: what suspicion cost.
        suspected = any(record["reruns"] for record in records.values())
        if verbosity < -1 or not (lines or self.notes or suspected or (verbosity > 0 and records)):
            return
        terminalreporter.write_sep("=", "gcguard summary")
        for line in lines:
            terminalreporter.write_line(line)
        if records:
            count = _records.count_line(records)
            checker = self.checker
            if checker is not None and checker.heap.passes:
                count += f"; {checker.heap.passes} full collection(s) took {checker.heap.pass_seconds:.2f}s"
            terminalreporter.write_line(count)
        for note in self.notes:
            terminalreporter.write_line(note)


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
        checker = self.checker
        window = checker.window
        if window is None and item is checker.protocol_item and not checker.probing:
            # Another plugin runs the test's phases again (pytest-rerunfailures).
            window = checker.new_window(item, item.stash[settings_key])
        if window is None:
            return (yield)
        if not window.rerun:
            track_dicts((item, fixture_request(item)))
            window.warnings_log = recorded_warnings()
            checker.slots.note()  # before the freeze, which takes what it made
        open_window(window)
        try:
            return (yield)
        except BaseException:
            window.passed = False  # failed, skipped or xfailed: reported once, as itself
            raise
        finally:
            phase_done(window)

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
            phase_done(window)

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_runtest_teardown(self) -> Generator[None, object, object]:
        window = self.checker.window
        if window is not None and window.opened:
            phase_starts(window)
        return (yield)


class _TeardownCodeEnd:
    """Marks the end of teardown's test code: the last implementation but one.

    Teardown's marks cannot be a wrapper's: the verdict is given while the
    teardown hook is still running, and by the time a wrapper resumes, the hook
    call has made objects (its argument lists, its loop over the wrappers) that
    are still alive at the verdict.  Here, only this call's empty argument list
    exists, and the next implementation's replaces it.
    """

    def __init__(self, checker: GcGuard) -> None:
        self.checker = checker

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_teardown(self) -> None:
        window = self.checker.window
        if window is not None and window.opened:
            phase_done(window, last=True)


class _LastTeardownImpl:
    """The very last teardown implementation; its argument list is made after
    ``_TeardownCodeEnd``'s mark, so the runner's objects are known by identity."""

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_teardown(self) -> None:
        return None


class GcGuard:
    """Per-test leak checker, registered as ``gcguard-checker`` when some test is checked."""

    def __init__(self, config: pytest.Config, settings: Settings, session: GcGuardSession) -> None:
        self.config = config
        self.settings = settings
        self.session = session
        self.heap = Heap()
        self.guard = FreezeGuard()
        #: Climbs from older containers up to a module or class, reused by later reports.
        self.chains = ChainMemo()
        #: Slots tests rebind, and what was noted of their values before the current test.
        self.slots = Slots()
        self.window: Window | None = None
        self.stop_frame: types.FrameType | None = None
        #: The checked test whose protocol is running.
        self.protocol_item: pytest.Item | None = None
        self.nextitem: pytest.Item | None = None
        self.started_tracing = False
        #: Refs mode is running the test again: every hook of ours stands aside.
        self.probing = False

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self) -> None:
        """Free what the frozen baseline held back and give the heap back unfrozen."""
        self.restore()

    def restore(self) -> None:
        """Give back every piece of global state the checker changed (idempotent).

        Also registered with ``config.add_cleanup``, as pytest's own
        unraisableexception and threadexception plugins do: it runs even when
        another session-finish hook raised first.
        """
        self.heap.stop()
        self.guard.uninstall()
        if self.started_tracing:
            self.started_tracing = False
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
            item.stash[record_key] = str(exc)
            return (yield)
        if not settings.enabled:
            item.stash[record_key] = "disabled by @pytest.mark.gcguard(enabled=False)"
            return (yield)
        item.stash[settings_key] = settings
        self.nextitem = nextitem
        self.heap.maybe_full_pass()
        self.guard.install()
        if settings.trace and not tracemalloc.is_tracing():
            tracemalloc.start(TRACE_FRAMES)
            self.started_tracing = True
        self.stop_frame = sys._getframe(1)
        self.protocol_item = item
        self.new_window(item, settings)
        try:
            return (yield)
        finally:
            self.guard.window = None
            self.slots.forget()
            window = self.window
            if window is not None:  # teardown never judged (error, interrupt)
                self.window = None
                window.runner.clear()
                if window.opened:
                    close_window(window)
                    settle()
                del window
            self.stop_frame = None
            self.nextitem = None
            self.protocol_item = None
            del item.stash[settings_key]

    def new_window(self, item: pytest.Item, settings: Settings) -> Window:
        """The window of one run of the test's phases.

        Opened (collect + freeze) by the innermost setup wrapper, as late as
        possible: everything the runner made before is simply frozen.  A plugin
        that runs the phases again inside one protocol (pytest-rerunfailures)
        gets a new window for each run, judged like the first.
        """
        # Replaced once the test is judged; stays if it never gets there.
        item.stash[record_key] = "not judged: the test did not complete its teardown"
        window = self.window = self.guard.window = Window(settings.cycles)
        if settings.cycles:
            window.scaffolding = scaffolding_codes(item)
        return window

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        """Note how a test's own phases ended; attach its record to the teardown report."""
        report = yield
        if self.probing or (self.window is not None and self.window.rerun):
            return report  # one of our own reruns: nothing is logged
        if call.when != "teardown":
            if not report.passed:
                item.stash[outcome_key] = "xfailed" if hasattr(report, "wasxfail") else report.outcome
            return report
        record = item.stash.get(record_key, None)
        if record is not None:
            del item.stash[record_key]
            if isinstance(record, str):
                record = _records.skipped_record(item.nodeid, record)
            setattr(report, RECORD_ATTRIBUTE, record)
        if outcome_key in item.stash:
            del item.stash[outcome_key]
        return report

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_fixture_setup(
        self, fixturedef: pytest.FixtureDef[object], request: pytest.FixtureRequest
    ) -> Generator[None, object, object]:
        """Objects of module/class/session fixtures a test sets up are not its leak.

        Nor what their teardown makes, in the last test of their scope: a
        finalizer added after the setup runs first at the teardown (pytest
        runs a fixture's finalizers last-in first-out) and marks its start;
        ``pytest_fixture_post_finalizer`` marks its end.  (unittest's class
        fixture gives each class a new ``tearDown_exceptions`` list there: 166
        of more-itertools' 181 suspected tests.)
        """
        window = self.window
        if fixturedef.scope == "function":
            return (yield)
        if window is None:
            block: AbstractContextManager[None] = nullcontext()
        else:
            block = listed_as_runner(window) if window.rerun else absorbed(window)
        with block:
            result = yield
            # Made inside the block: frozen (or listed) with the fixture's objects.
            fixturedef.addfinalizer(functools.partial(self._fixture_teardown_starts, fixturedef))
            return result

    def _fixture_teardown_starts(self, fixturedef: pytest.FixtureDef[object]) -> None:
        window = self.window
        if window is not None and window.opened and not self.probing:
            window.runner_code[id(fixturedef)] = runner_code_starts(window)

    def pytest_fixture_post_finalizer(self, fixturedef: pytest.FixtureDef[object]) -> None:
        """A broader-scoped fixture's teardown ended and let go of its (frozen) objects.

        What the teardown made is listed as the runner's.  The fixture's cyclic
        garbage is frozen and stays until a full pass; once this happened, the
        next full pass is due when the time since the last one exceeds 20 times
        its cost (instead of 100 times), which bounds the memory it holds at a
        cost of at most a 21st of the time since that pass.  (5 times made a
        suite of small unittest classes, each a class-scoped fixture, spend a
        sixth of its time in full passes: cachetools.)
        """
        if fixturedef.scope == "function":
            return
        self.heap.released = True
        window = self.window
        if window is None:
            return
        state = window.runner_code.pop(id(fixturedef), None)
        if state is not None:
            runner_code_ends(window, state)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Generator[None, object, object]:
        """After the function fixtures are finalised: collect, compare, confirm, report."""
        window = self.window
        if window is None or window.rerun:  # not checked, or one of our own reruns
            return (yield)
        result = yield
        if not window.opened:  # setup never ran
            return result
        fixtures = (item, active_fixture_defs(item))  # made before the runner's last listing
        release_fixture_values(item)
        list_runner(window)  # what the outer teardown wrappers made since the fixtures ran
        self.window = None
        settings = item.stash[settings_key]
        try:
            verdict, reason = judge(
                item,
                window,
                settings,
                item.stash.get(outcome_key, None),
                self.stop_frame,
                self,
                self.chains,
                self.slots,
                fixtures,
            )
        finally:
            self.slots.forget()
        if settings.refs and not reason and (verdict is None or not verdict.failed):
            verdict, reason = self._measure_memory(item, settings, verdict, window, fixtures[1])
        if reason:
            # A verdict beside a reason: its confirmation ended unjudged, at a cost.
            record = reason if verdict is None else _records.skipped_record(item.nodeid, reason, verdict)
            item.stash[record_key] = record
            return result
        act(item, verdict, settings, self.session.baseline, self.session.options)
        return result

    def _measure_memory(
        self,
        item: pytest.Item,
        settings: Settings,
        verdict: Verdict | None,
        window: Window,
        active: tuple[object, ...] = (),
    ) -> tuple[Verdict | None, str]:
        """Refs mode: run the test again and count what the gc cannot see.

        ``regrtest -R``'s procedure: one warm-up run, then ``max(reruns, 3)``
        measured runs; after each, the standard library's caches are emptied,
        the runner's own leftovers dropped, and memory blocks (and, on a debug
        build, references) read after collections.  A leak is growth in every
        measured run.  The loop holds the same objects at every reading, so its
        own bookkeeping cancels out.  ``active``: the fixtures the test's first
        run made active, whose spent finalizers each run drops.
        """
        runs = max(settings.reruns, MEMORY_RUNS)
        blocks = [0] * runs
        references = [0] * runs
        failed = ""
        before_blocks = before_refs = 0
        # What the window restored: each run is measured under it, and a run
        # that changes it (gc.disable(), DEBUG_SAVEALL) is undone at once.
        gc_state = saved_gc_state()
        stop_test_timer(item)
        self.probing = True
        started = time.perf_counter()
        try:
            for index in range(-1, runs):  # -1: the warm-up
                try:
                    failed = self.rerun_once(item, window, None)
                finally:
                    restore_gc_state(gc_state)
                if failed:
                    failed = f"run {index + 2} {failed}"
                    break
                # What the runner keeps of each run is not the test's.
                drop_spent_finalizers(item, active)
                clear_caches()
                _collect()
                _collect()
                after_blocks = allocated_blocks()
                after_refs = total_references()
                if index >= 0:
                    blocks[index] = after_blocks - before_blocks
                    references[index] = after_refs - before_refs
                before_blocks = after_blocks
                before_refs = after_refs
        finally:
            self.probing = False
            settle()
        if failed:
            return verdict, f"not judged: memory not measured, {failed}"
        if verdict is None:
            verdict = Verdict(item.nodeid)
        verdict.blocks = blocks
        verdict.references = references if COUNTS_REFERENCES else []
        verdict.reruns += runs + 1
        verdict.rerun_seconds += time.perf_counter() - started
        return verdict, ""

    def rerun_once(self, item: pytest.Item, window: Window, rerun_window: Window | None) -> str:
        """Run the test's protocol once more: "" or how it failed.

        The phase marks open ``rerun_window`` (if given) and list the runner's
        objects, exactly as for the first run, so both are judged alike; nothing
        of the rerun reaches pytest's reports (``unseen``).
        """
        if rerun_window is not None:
            rerun_window.scaffolding = window.scaffolding
            self.window = rerun_window
        try:
            with unseen(item, window.warnings_log):
                reports = rerun_protocol(item, self.nextitem)
        finally:
            if rerun_window is not None:
                self.window = None
        failed = next((f"{r.outcome} in {r.when}" for r in reports if not r.passed), "")
        del reports
        return failed
