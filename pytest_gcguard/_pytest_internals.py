"""Every access to pytest's and pluggy's private state, in one place.

The rest of the package uses pytest's public API only.  What is here reads or
changes internals that pytest does not document; each function says what it
relies on, so that a pytest release that changes it breaks one function, and
the tests (tox runs the oldest supported pytest and the newest) show which.

Checked against pytest 8.4.0 and 9.2.0, pluggy 1.5.0 and 1.7.0.
"""

from __future__ import annotations

import functools
import sys
import types
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from itertools import chain

import pytest


def load_unrewritten(package: str) -> None:
    """Have pytest's assertion-rewriting import hook leave ``package``'s modules alone.

    pytest marks every module of a plugin's distribution for assertion
    rewriting, and compiles a rewritten module from its source at every start
    when it cannot cache the result (``PYTHONDONTWRITEBYTECODE=1``, which many
    Docker images set, or a read-only site-packages): 0.07 s of CPU per
    process, and per xdist worker, for this package, which has no test
    assertions to rewrite.  Its modules then load from their ordinary
    bytecode.  Relies on ``AssertionRewritingHook._must_rewrite`` (a set of
    names) and ``_marked_for_rewrite_cache`` (a dict of name: bool).
    """
    for finder in sys.meta_path:
        marked = getattr(finder, "_must_rewrite", None)
        cache = getattr(finder, "_marked_for_rewrite_cache", None)
        if type(marked) is set and type(cache) is dict:
            marked.discard(package)
            for name in [name for name in cache if name == package or name.startswith(package + ".")]:
                del cache[name]


def recorded_warnings() -> list[object] | None:
    """The list pytest's warnings plugin records the test protocol's warnings in.

    ``warnings.catch_warnings(record=True)`` (3.10-3.13) records through the
    bound ``append`` of its list; pytest keeps it until the protocol ends and
    then reports what it holds.  None when warnings are not being recorded.
    """
    log = getattr(getattr(warnings, "_showwarnmsg_impl", None), "__self__", None)
    return log if type(log) is list else None


def warnings_filters() -> object:
    """The warning filters in force: while pytest records a test's warnings, its copy for the test.

    pytest's warnings plugin runs each test's protocol inside
    ``warnings.catch_warnings(record=True)``, which installs a copy of the
    filters and puts the session's list back when the protocol ends.
    """
    return getattr(warnings, "filters", None)


#: Hooks through which a rerun would show itself: its reports (subtests log
#: theirs while the test runs) and pytest's failure interaction (``--pdb``).
_SILENT_HOOKS = frozenset({"pytest_runtest_logreport", "pytest_exception_interact"})


def _silence(hook_name: str, hook_impls: Sequence[object], kwargs: Mapping[str, object]) -> None:
    if hook_name in _SILENT_HOOKS and type(hook_impls) is list:
        hook_impls.clear()  # pluggy passes each call its own copy of the list


def _no_trace(*args: object) -> None:
    return None


@contextmanager
def unseen(item: pytest.Item, log: list[object] | None) -> Iterator[None]:
    """Run a rerun so that pytest's output is what it is without gcguard.

    The rerun happens inside the test's own protocol: what it would add there
    (captured output and log sections, recorded warnings, subtest reports) is
    taken back, so the counts and sections a user sees are those of one run.
    """
    sections = len(item._report_sections)
    recorded = len(log) if log is not None else 0
    undo = item.config.pluginmanager.add_hookcall_monitoring(_silence, _no_trace)
    try:
        yield
    finally:
        undo()
        del item._report_sections[sections:]
        if log is not None:
            del log[recorded:]


def stop_test_timer(item: pytest.Item) -> None:
    """pytest-timeout's per-test timer is the test's, not gcguard's reruns'.

    In its default mode the timer covers the whole test protocol, and the
    reruns run inside it: a test that takes more than a third of its timeout
    would time out in a rerun and go unjudged.  The test's own run finished
    in time; the timer is stopped through pytest-timeout's public hook (in its
    ``func_only`` mode, each rerun's call still gets a timer of its own).
    """
    cancel = getattr(item.config.pluginmanager.hook, "pytest_timeout_cancel_timer", None)
    if cancel is not None:
        cancel(item=item)


def release_fixture_values(item: pytest.Item) -> None:
    """Drop the item's hold on its fixture values, as pytest does right after teardown.

    ``runtestprotocol`` sets ``item._request = False`` and ``item.funcargs = None``
    once the teardown hooks return; doing it before the verdict means a value
    that is still alive is kept by something else (a registry the fixture
    added it to), which is the leak to report, while values only the item held
    are simply freed.
    """
    if hasattr(item, "_request"):
        item._request = False
        # Empty rather than None: a plugin may still read it in its teardown report hook.
        item.funcargs = {}  # type: ignore[attr-defined]


def scaffolding_codes(item: pytest.Item) -> frozenset[int]:
    """Ids of the code objects of the test function and of the fixtures it uses.

    A cycle through their frames is the test's own doing (``pytest.raises(...)
    as info`` keeps a traceback that holds the test's frame), not the code
    under test's.  Decorated tests are unwrapped (``__wrapped__``, Hypothesis's
    inner test); code objects live as long as their functions, so ids are stable.
    """
    functions: list[object] = [getattr(item, "obj", None)]
    info = getattr(item, "_fixtureinfo", None)
    for fixturedefs in getattr(info, "name2fixturedefs", {}).values():
        functions.extend(getattr(fixturedef, "func", None) for fixturedef in fixturedefs)
    codes: set[int] = set()
    for function in functions:
        for _ in range(10):  # a bounded unwrap: a lying __wrapped__ may loop
            function = getattr(function, "__func__", function)
            code = getattr(function, "__code__", None)
            if type(code) is types.CodeType:
                codes.add(id(code))
            handle = getattr(function, "hypothesis", None)
            inner = getattr(handle, "inner_test", None)
            function = inner if inner is not None else getattr(function, "__wrapped__", None)
            if function is None:
                break
    return frozenset(codes)


def refill_doctest_globals(item: pytest.Item) -> None:
    """A doctest run clears its globals; give a rerun what collection gave the first run.

    Not a copy kept from before the run: that would hold whatever the leak
    stored in module globals, and make it the test item's.
    """
    dtest = getattr(item, "dtest", None)
    globs = getattr(dtest, "globs", None)
    if type(globs) is not dict or globs:
        return
    module = getattr(item.parent, "obj", None)
    if isinstance(module, types.ModuleType):
        globs.update(vars(module))  # as doctest.DocTestFinder does for a module
    else:
        globs["__name__"] = "__main__"  # as pytest does for a text file


def drop_spent_finalizers(item: pytest.Item, active: Iterable[object] = ()) -> None:
    """Drop the finalizers this test's finished fixtures left on broader-scoped ones.

    pytest registers ``FixtureDef.finish`` of a function-scoped fixture on every
    broader-scoped fixture it uses, and keeps it there after the test (calling
    it later does nothing).  That is the runner's growth, not the test's: a
    refs-mode rerun removes what it added.  Called after a run's protocol,
    when the run's fixture request is gone: ``active`` names the fixtures the
    test's first run made active (``active_fixture_defs``), those it requested
    with ``request.getfixturevalue`` too (pytest-asyncio's event loop runner).
    """
    for finalizers in _finalizer_lists(item, active):
        if finalizers:
            finalizers[:] = [fin for fin in finalizers if not _spent_finalizer(fin, item)]


def _finalizer_lists(item: pytest.Item, more: Iterable[object] = ()) -> Iterator[list[object]]:
    """The finalizer lists of the fixtures ``item`` uses (``FixtureDef._finalizers``), each once:
    its static closure (``item._fixtureinfo.name2fixturedefs``) and ``more``."""
    info = getattr(item, "_fixtureinfo", None)
    seen: set[int] = set()
    for fixturedef in chain(chain.from_iterable(getattr(info, "name2fixturedefs", {}).values()), more):
        finalizers = getattr(fixturedef, "_finalizers", None)
        if type(finalizers) is list and id(finalizers) not in seen:
            seen.add(id(finalizers))
            yield finalizers


def active_fixture_defs(item: pytest.Item) -> tuple[object, ...]:
    """Every fixture the item's request made active, the ones requested by name too
    (``TopRequest._fixture_defs``): read before ``release_fixture_values``.

    A fixture requested with ``request.getfixturevalue`` (pytest-asyncio's
    event loop runner) leaves its finalizer on the broader-scoped fixtures it
    uses, which the item's static closure does not name.
    """
    active = getattr(getattr(item, "_request", None), "_fixture_defs", None)
    return tuple(active.values()) if type(active) is dict else ()


def spent_finalizer_objects(item: pytest.Item, active: Iterable[object] = ()) -> list[object]:
    """What the finalizers this test left hold that its setup made: the runner's, kept.

    The partial, its bound method and keyword dict, and the fixture request it
    keeps (and, on 3.10, the request's attribute dict, a separate object).
    pytest 8 also adds, to the requests' shared name -> definitions map
    (``_arg2fixturedefs``), the definitions of a fixture requested by name.
    Found without changing anything, so the run stays what plain pytest does.
    ``active``: the fixtures the request made active (``active_fixture_defs``).
    """
    kept: list[object] = []
    maps: set[int] = set()
    for finalizers in _finalizer_lists(item, active):
        # Only the tail this test appended: a session fixture's list holds
        # one entry per earlier test too (pytest keeps them all).
        for fin in reversed(finalizers):
            if not _spent_finalizer(fin, item):
                break
            request = fin.keywords["request"]  # type: ignore[attr-defined]
            kept += (fin, fin.func, fin.keywords, request)  # type: ignore[attr-defined]
            if sys.version_info < (3, 11):
                kept.append(request.__dict__)
            by_name = getattr(request, "_arg2fixturedefs", None)
            if type(by_name) is dict and id(by_name) not in maps:
                maps.add(id(by_name))
                kept += by_name.values()
    return kept


def _spent_finalizer(fin: object, item: pytest.Item) -> bool:
    if type(fin) is not functools.partial:
        return False
    owner = getattr(fin.func, "__self__", None)
    request = fin.keywords.get("request")
    return (
        getattr(fin.func, "__name__", "") == "finish"
        and owner is not None
        and getattr(owner, "cached_result", False) is None
        and getattr(request, "node", None) is item
    )


#: What pytest's call phase sets on a failure (``last_exc`` from Python 3.12).
_LAST_EXCEPTION = ("last_type", "last_value", "last_traceback", "last_exc")


#: Hypothesis phases that run only once a test has failed.
_AFTER_A_FAILURE = frozenset({"shrink", "explain"})


@contextmanager
def _stop_at_first_failure(item: pytest.Item) -> Iterator[None]:
    """A Hypothesis test's rerun stops at its first failing example.

    A rerun that fails leaves the test unjudged whatever its example, and
    shrinking it replays the test until the example is minimal: a cattrs
    test's rerun spent a minute shrinking a failure of cattrs' own.  The
    rerun's settings (the test's, read by Hypothesis at each call from the
    ``@given`` wrapper's ``_hypothesis_internal_use_settings``) leave out
    the phases that follow a failure; the test's own are put back after.
    Every example the first run tried is still tried in the same way.
    """
    function = getattr(item, "function", None)
    hypothesis = sys.modules.get("hypothesis")
    own = getattr(function, "_hypothesis_internal_use_settings", None)
    quiet = None
    if hypothesis is not None and own is not None and getattr(function, "is_hypothesis_test", False) is True:
        try:
            phases = tuple(phase for phase in own.phases if phase.name not in _AFTER_A_FAILURE)
            if len(phases) < len(own.phases):
                quiet = hypothesis.settings(own, phases=phases)
        except Exception:  # a Hypothesis whose settings differ: reruns as they are
            quiet = None
    if quiet is None:
        yield
        return
    function._hypothesis_internal_use_settings = quiet  # type: ignore[union-attr]
    try:
        yield
    finally:
        function._hypothesis_internal_use_settings = own  # type: ignore[union-attr]


#: A missing ``prev_self`` (the wrapper's thread-local has no value for this thread).
_MISSING = object()


@contextmanager
def _a_new_executor_is_expected(item: pytest.Item) -> Iterator[None]:
    """A Hypothesis test's rerun may run on a new instance of its class.

    The ``@given`` wrapper keeps the instance it first ran on (``prev_self``:
    in a ``ThreadLocal`` in its closure, per thread, from Hypothesis 6.136.4;
    in a cell of its closure before) and fails the ``differing_executors``
    health check when another runs it: pytest makes a new
    ``unittest.TestCase`` for each run, so every rerun of a ``unittest``
    ``@given`` test failed, and a leak in one was never confirmed.  The rerun
    starts with the value unset, as the first run did; the first run's is put
    back after.  Nothing is made: the thread's dict of the local exists (the
    first run set it), and its key is removed and set again; a cell's contents
    are replaced.
    """
    function = getattr(item, "function", None)
    if getattr(function, "is_hypothesis_test", False) is not True:
        yield
        return
    # Imported here: this module is the one pytest's assertion rewriter loads, and
    # it tells the rewriter to leave the package's others alone (``load_unrewritten``).
    from ._heap import hypothesis_prev_self_cells, hypothesis_wrapper_locals

    saved = [
        (local, getattr(local, "prev_self", _MISSING)) for local in hypothesis_wrapper_locals(function, "prev_self")
    ]
    saved = [(local, value) for local, value in saved if value is not _MISSING]
    cells = []
    for cell, unset in hypothesis_prev_self_cells(function):
        try:
            cells.append((cell, cell.cell_contents, unset))
        except ValueError:  # an empty cell: nothing to put back
            continue
    try:
        for local, _ in saved:
            delattr(local, "prev_self")
        for cell, _, unset in cells:
            cell.cell_contents = unset
        yield
    finally:
        for local, value in saved:
            local.prev_self = value
        for cell, value, _ in cells:
            cell.cell_contents = value
        saved.clear()
        cells.clear()


def rerun_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> list[pytest.TestReport]:
    """Run ``item``'s whole protocol again, without logging (as pytest-rerunfailures does).

    ``runtestprotocol`` re-creates the fixture request when ``item._request`` is
    falsy, and re-runs setup, call and teardown with every plugin's hooks.
    """
    from _pytest.runner import runtestprotocol

    if hasattr(item, "_request"):
        item._request = False
    refill_doctest_globals(item)
    # A rerun that fails gets ``sys.last_*`` set by pytest's call phase: its
    # traceback kept the failed run's frames (a Hypothesis engine of a million
    # objects) alive into the next freeze, frozen garbage until a full pass
    # that every later search and collection walked; nothing was reported.
    last = {name: getattr(sys, name) for name in _LAST_EXCEPTION if hasattr(sys, name)}
    try:
        with _stop_at_first_failure(item), _a_new_executor_is_expected(item):
            return runtestprotocol(item, log=False, nextitem=nextitem)
    finally:
        for name in _LAST_EXCEPTION:
            if name in last:
                setattr(sys, name, last[name])
            elif hasattr(sys, name):
                delattr(sys, name)
        last.clear()
        # The rerun's protocol ends by setting ``item.funcargs = None``, but the
        # test's own protocol is still in its teardown, whose report hooks come
        # next: pytest-benchmark's reads ``item.funcargs.get("benchmark")``.
        if hasattr(item, "_request") and getattr(item, "funcargs", None) is None:
            item.funcargs = {}  # type: ignore[attr-defined]


def historic_call_lists(config: pytest.Config) -> list[list[object]]:
    """pluggy's records of the calls of historic hooks, replayed to each plugin registered later.

    Registering a plugin calls the historic ``pytest_plugin_registered`` hook,
    and pluggy keeps every historic call for the whole session
    (``HookCaller._call_history``: a ``(kwargs, callback)`` tuple per call): a
    fixture that unregisters and registers a plugin around every test (flask's
    ``reset_logging``, for the logging plugin) grows it by one per test.  The
    runner's memory, as its reports are.
    """
    lists: list[list[object]] = []
    relay = getattr(config.pluginmanager, "hook", None)
    namespace = getattr(relay, "__dict__", None)
    if type(namespace) is dict:
        for caller in namespace.values():
            history = getattr(caller, "_call_history", None)
            if type(history) is list:
                lists.append(history)
    return lists


def plugin_result_lists(config: pytest.Config) -> list[list[object]]:
    """Lists in which other plugins keep each test's results until their session report.

    pytest-benchmark's ``BenchmarkSession.benchmarks`` (``config._benchmarksession``)
    gets one entry per benchmarked run: the plugin's bookkeeping, as pytest's
    own reports are, never the test's.
    """
    results = getattr(getattr(config, "_benchmarksession", None), "benchmarks", None)
    return [results] if type(results) is list else []


def fixture_request(item: pytest.Item) -> object:
    """The item's fixture request (``item._request``), or None."""
    return getattr(item, "_request", None)


def setup_state(session: pytest.Session) -> object:
    """The runner's stack of set-up nodes and their finalizers (``session._setupstate``)."""
    return getattr(session, "_setupstate", None)
