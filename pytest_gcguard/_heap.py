"""The garbage-collector side of gcguard: windows, survivors, exclusions.

This module does not import pytest, so it can be tested and reused on its own.

The mechanism (see DESIGN.md in the team's shared notes): before a test,
``gc.collect()`` then ``gc.freeze()`` moves every live object into the permanent
generation, which ``gc.collect()`` and ``gc.get_objects()`` then skip.  After the
test, ``gc.collect()`` + ``gc.get_objects()`` return exactly the tracked objects
made since the freeze that are still alive, at a cost that grows with what the
test allocated, not with the heap.

Rules kept throughout: objects are held only while a window is being judged and
are dropped before any report is raised; bookkeeping made after the freeze is
excluded by identity; every piece of gc state we change is restored.
"""

from __future__ import annotations

import _warnings
import contextvars
import functools
import gc
import os
import pathlib
import struct
import subprocess
import sys
import sysconfig
import threading
import time
import types
import weakref
from collections import Counter
from collections.abc import Callable, Container, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import compress
from operator import is_ as _is
from operator import not_
from typing import Any, cast

from ._identity import Identities, identify

# The real functions, taken at import: tests may replace the module attributes,
# and the guard below does so on purpose during a window.
_freeze = gc.freeze
_unfreeze = gc.unfreeze
_collect = gc.collect
#: Where installed packages and the standard library live (see ``_library_code``).
_LIBRARY_PATHS = tuple(
    {path for name in ("purelib", "platlib", "stdlib", "platstdlib") if (path := sysconfig.get_paths().get(name))}
)
_get_objects = gc.get_objects
_get_referents = gc.get_referents
_get_referrers = gc.get_referrers
# CPython 3.12.0-3.12.5 (gh-122695): the _asyncio module's traverse hands out the
# freed objects of its FutureIter free list.  Holding one (a gc.get_referents
# result) puts it on the free list twice, and the next traversal of the module,
# by gc.get_referrers or a full collection, loops forever.  That module's
# referents are then read from its namespace only.
if (3, 12) <= sys.version_info < (3, 12, 6):
    _referents_of = gc.get_referents

    def _get_referents(*objs: object) -> list[object]:
        refs: list[object] = []
        for obj in objs:
            if type(obj) is types.ModuleType and obj.__name__ == "_asyncio":
                refs.append(obj.__dict__)
            else:
                refs.extend(_referents_of(obj))
        return refs


_FrameType = types.FrameType
# Old containers and suspended generators whose young contents are in flight.
_LOOK_INTO = (list, tuple, dict, set, types.GeneratorType)
_PLAIN_CONTAINERS = (list, tuple, dict, set, frozenset)
_PY310 = sys.version_info < (3, 11)
#: 3.13: an instance's ``__dict__``, once made, is not among its referents while
#: its values stay inline (``Py_TPFLAGS_MANAGED_DICT``): the walks read it.
_HIDDEN_DICTS = sys.version_info >= (3, 13)
_MANAGED_DICT = 1 << 4


def _instance_dict(obj: object) -> object:
    """``obj.__dict__`` read without running the object's own code (None if it has none)."""
    try:
        return object.__getattribute__(obj, "__dict__")
    except Exception:
        return None


#: Modules whose objects are test-runner bookkeeping, never the test's leak.
INTERNAL_MODULE_PREFIXES = (
    "_pytest.",
    "pluggy.",
    "pytest_gcguard.",
    "xdist.",
    "execnet.",
    # pytest-cov's measurement: coverage.py starts a tracer for every new thread.
    "coverage.",
    "pytest_cov.",
)
#: Cycles mode: test tooling whose own objects are cyclic by design (a mock and
#: its children point at each other, Hypothesis's engine keeps its data in
#: cycles); cycles among them are the test's scaffolding, not the code under test's.
SCAFFOLDING_MODULE_PREFIXES = (*INTERNAL_MODULE_PREFIXES, "unittest.mock.", "pytest_mock.", "hypothesis.")


def stats_total() -> int:
    """Objects the cyclic GC has freed or found uncollectable, ever (O(1))."""
    total = 0
    for generation in gc.get_stats():
        total += generation["collected"] + generation["uncollectable"]
    return total


# Read through ``type``'s own descriptors, never through a class's metaclass
# (whose ``__getattribute__`` may lie or raise).
_TYPE_DICT = type.__dict__["__dict__"]
_TYPE_DICTOFFSET = type.__dict__["__dictoffset__"]
_TYPE_FLAGS = type.__dict__["__flags__"]
_TYPE_MRO = type.__dict__["__mro__"]
_TYPE_NAME = type.__dict__["__name__"]
_TYPE_MODULE = type.__dict__["__module__"]
_TYPE_QUALNAME = type.__dict__["__qualname__"]


def dict_offset(tp: type) -> int:
    """``tp.__dictoffset__``: non-zero when its instances can have a ``__dict__``."""
    return int(_TYPE_DICTOFFSET.__get__(tp))


def type_mro(tp: type) -> tuple[type, ...]:
    """``tp.__mro__``."""
    return tuple(_TYPE_MRO.__get__(tp))


def type_namespace(tp: type) -> dict[str, object]:
    """A copy of ``tp.__dict__``."""
    return dict(_TYPE_DICT.__get__(tp))


#: How the modules Hypothesis compiles test signatures into are named.
_HYPOTHESIS_COMPILED = "hypothesis_temporary_module_"


def _is_subclass_of(tp: type, base: type) -> bool:
    return issubclass(tp, base)


def _is_dict_type(tp: type) -> bool:
    return tp is dict


def _is_module_type(tp: type) -> bool:
    return tp is types.ModuleType


def _is_path_type(tp: type) -> bool:
    return issubclass(tp, pathlib.PurePath)


def _is_hypothesis_compiled(module: object) -> bool:
    """A module Hypothesis compiled a signature into (``reflection.source_exec_as_module``)."""
    namespace = _instance_dict(module)
    name = plain_str(namespace.get("__name__")) if type(namespace) is dict else None
    return name is not None and name.startswith(_HYPOTHESIS_COMPILED) and sys.modules.get(name) is not module


def _path_under(path: object, prefixes: tuple[str, ...]) -> bool:
    """``path`` (a ``PurePath``) is inside one of the directories ``prefixes`` (each ending in a separator)."""
    try:
        text = plain_str(str(path))
    except Exception:  # a path subclass whose str() raises is nobody's database path
        return False
    return text is not None and text.startswith(prefixes)


_THREAD_LOCAL = type(__import__("_thread")._local())
#: Hypothesis's wrappers of a ``threading.local`` (``utils.threading.ThreadLocal``,
#: ``utils.dynamicvariables.DynamicVariable``), by class name: the attribute that holds it.
_HYPOTHESIS_LOCAL_WRAPPERS = {"ThreadLocal": "_ThreadLocal__threadlocal", "DynamicVariable": "data"}


def _hypothesis_thread_dicts(test: object = None) -> list[dict[object, object]]:
    """Each thread's dicts of the thread-locals Hypothesis keeps.

    Those in its modules' namespaces, and the one each ``@given`` wrapper keeps
    in its closure (``prev_self``, set on a thread's first run of the test),
    found from ``test`` through a few levels of closures (a suite's own
    decorator may wrap it).  Each dict is made on a thread's first use of its
    thread-local (``ThreadLocal``'s defaults, a ``DynamicVariable``'s value
    restored after a ``with_value``).  Nothing is made here: a wrapper's local
    is read by attribute name (reading an instance's ``__dict__`` makes one on
    3.11+, which keeps attributes inline until asked), and each thread's dict
    is found among what the local refers to (reading ``__dict__`` would make
    one for this thread).
    """
    locals_ = [*_module_thread_locals(), *hypothesis_wrapper_locals(test)]
    dicts: list[dict[object, object]] = []
    for local in locals_:
        for inner in _get_referents(local):
            if type(inner) is dict:  # its map from each thread's dummy to that thread's dict
                dicts.extend(value for value in _get_referents(inner) if type(value) is dict)
    return dicts


def _closure_contents(test: object) -> list[object]:
    """What the cells of ``test``'s closure hold, and those of the functions in them, a
    few levels down (a suite's own decorator may wrap the ``@given`` wrapper)."""
    found: list[object] = []
    functions = [test]
    for _ in range(_CLOSURE_DEPTH):
        cells = [
            cell
            for function in functions
            if type(function) is types.FunctionType
            for cell in (function.__closure__ or ())
        ]
        functions = []
        for cell in cells:
            try:
                functions.append(cell.cell_contents)
            except ValueError:  # an empty cell
                continue
        found.extend(functions)
    return found


def hypothesis_wrapper_locals(test: object, declaring: str = "") -> list[threading.local]:
    """The ``threading.local`` objects of the Hypothesis wrappers (``ThreadLocal``) in
    ``test``'s closures, a few levels down (the ``@given`` wrapper keeps its
    ``prev_self`` in one, from Hypothesis 6.136.4).  ``declaring``: only the
    ``ThreadLocal`` wrappers that declare this attribute (read by name: nothing
    is made)."""
    found: list[threading.local] = []
    for content in _closure_contents(test):
        inner = _wrapped_local(content)  # only Hypothesis's wrappers: a closure's own local is not
        if inner is None:
            continue
        if declaring:
            try:
                declared = object.__getattribute__(content, "_ThreadLocal__kwargs")
            except Exception:
                continue
            if type(declared) is not dict or declaring not in declared:
                continue
        found.append(inner)
    return found


def hypothesis_prev_self_cells(test: object) -> list[tuple[types.CellType, object]]:
    """Before Hypothesis 6.136.4 the ``@given`` wrapper keeps ``prev_self`` in a cell of
    its own closure, beside ``Unset``, its value before the first run: each such
    cell, with that value.  Only functions of Hypothesis's modules (their globals;
    the wrapper takes the test's name, module and file)."""
    found: list[tuple[types.CellType, object]] = []
    for function in (test, *_closure_contents(test)):
        if type(function) is not types.FunctionType:
            continue
        module = function.__globals__.get("__name__")
        if type(module) is not str or not module.startswith("hypothesis."):
            continue
        names = function.__code__.co_freevars
        if "prev_self" not in names or "Unset" not in names or not function.__closure__:
            continue
        cells = dict(zip(names, function.__closure__, strict=False))
        try:
            unset = cells["Unset"].cell_contents
        except ValueError:
            continue
        found.append((cells["prev_self"], unset))
    return found


def _wrapped_local(value: object) -> threading.local | None:
    """The ``threading.local`` a Hypothesis wrapper (``ThreadLocal``, ``DynamicVariable``) holds."""
    tp = type(value)
    attribute = _HYPOTHESIS_LOCAL_WRAPPERS.get(_TYPE_NAME.__get__(tp))
    if attribute is None or not (type_module(tp) or "").startswith("hypothesis."):
        return None
    try:
        inner = object.__getattribute__(value, attribute)
    except Exception:
        return None
    return inner if type(inner) is _THREAD_LOCAL and isinstance(inner, threading.local) else None


#: The thread-locals in Hypothesis's modules' namespaces, and how many modules were
#: loaded when they were listed (a new module may add one).  Refilled in place, not
#: an ``lru_cache``: a container made while a suspected test is classified would be
#: new in its rerun.
_MODULE_LOCALS: list[object] = []
_MODULE_LOCALS_AT = [-1]


def hypothesis_module_values() -> Iterator[object]:
    """The values in the namespaces of Hypothesis's loaded modules."""
    for name, module in list(sys.modules.items()):
        if not name.startswith("hypothesis.") or not issubclass(type(module), types.ModuleType):
            continue
        namespace = _instance_dict(module)
        if type(namespace) is dict:
            yield from list(namespace.values())


def _module_thread_locals() -> list[object]:
    """The thread-locals in Hypothesis's modules' namespaces (listed again when a module loads)."""
    if _MODULE_LOCALS_AT[0] == len(sys.modules):
        return _MODULE_LOCALS
    found: list[object] = []
    for value in hypothesis_module_values():
        inner = value if type(value) is _THREAD_LOCAL else _wrapped_local(value)
        if inner is not None:
            found.append(inner)
    _MODULE_LOCALS[:] = found
    _MODULE_LOCALS_AT[0] = len(sys.modules)
    found.clear()
    return _MODULE_LOCALS


#: Levels of closures looked into from a test for its ``@given`` wrapper's thread-local.
_CLOSURE_DEPTH = 3


def _hypothesis_database_dirs(test: object) -> list[str]:
    """The directories of the example databases Hypothesis keeps key paths for.

    The default settings' database and the ``@given`` test's own, looked into
    through the wrappers Hypothesis offers (read-only, multiplexed, background
    writes); only a ``DirectoryBasedExampleDatabase`` (a ``path`` and a
    ``keypaths`` dict) has a directory.  Each ends in a path separator.
    """
    hypothesis = sys.modules.get("hypothesis")
    if hypothesis is None:
        return []
    databases: list[object] = []
    try:
        for settings in (
            getattr(getattr(hypothesis, "settings", None), "default", None),
            getattr(test, "_hypothesis_internal_use_settings", None),
        ):
            databases.append(getattr(settings, "database", None))
    except Exception:  # a Hypothesis whose settings differ: what was found so far
        pass
    directories: list[str] = []
    seen: set[int] = set()
    while databases and len(seen) < 16:
        database = databases.pop()
        if database is None or id(database) in seen:
            continue
        seen.add(id(database))
        attrs = _instance_dict(database)
        if type(attrs) is not dict:
            continue
        path = attrs.get("path")
        if type(attrs.get("keypaths")) is dict and (type(path) is str or issubclass(type(path), pathlib.PurePath)):
            directories.append(os.path.join(str(path), ""))
        for name in ("_wrapped", "_db", "_dbs", "wrapped", "dbs"):
            inner = attrs.get(name)
            databases.extend(inner if type(inner) in (list, tuple) else [inner])  # type: ignore[arg-type]
    return directories


def subclass_registry_of(obj: object) -> type | None:
    """The class whose ``__subclasses__()`` registry ``obj`` is, if it is one.

    CPython keeps a class's subclasses in a dict of ``{id: weakref}`` that the
    gc does not traverse before 3.12, so such a dict has no visible referrer.
    """
    if type(obj) is not dict or not obj:
        return None
    owner: type | None = None
    try:
        for key, ref in list(obj.items()):
            if type(ref) is not weakref.ReferenceType:
                return None
            sub = ref()
            if not issubclass(type(sub), type) or key != id(sub):
                return None
            # type's own __bases__, never a metaclass's (which may lie or raise).
            for base in type.__dict__["__bases__"].__get__(sub):
                if sub in type.__subclasses__(base):
                    owner = base
                    break
    except Exception:
        return None
    return owner


def registered_class(obj: object) -> type | None:
    """The class whose entry ``obj`` is in its bases' ``__subclasses__()`` registries, if it is one.

    CPython registers each class with its bases by the class's plain weak
    reference (no callback: ``weakref.ref(cls)`` hands out the same one), and
    drops it when the class dies: that reference lives exactly as long as its class.
    """
    if type(obj) is not weakref.ReferenceType:
        return None
    ref = cast("weakref.ReferenceType[object]", obj)
    callback: object = ref.__callback__  # None for a plain reference (typeshed says never)
    if callback is not None:
        return None
    target = ref()
    # type(), not isinstance(): a hostile referent's __class__ may raise.
    return cast("type", target) if issubclass(type(target), type) else None


def plain_str(value: object) -> str | None:
    """``value`` as an exact ``str`` without running any of its code (None if it is no str).

    A ``str`` subclass may override ``__eq__``, ``__add__`` or ``__hash__`` to raise;
    joining copies its characters into a plain string without calling them.
    """
    if type(value) is str:
        return value
    if isinstance(value, str):
        return "".join((value,))
    return None


def type_name(tp: type) -> str:
    """Qualified name of a type: ``pkg.mod.Class``; builtins stay bare (``dict``).

    Read through ``type``'s own descriptors: a metaclass may lie or raise.
    """
    try:
        qualname = plain_str(_TYPE_QUALNAME.__get__(tp))
    except Exception:
        return f"<type at {id(tp):#x}>"
    try:
        module = plain_str(_TYPE_MODULE.__get__(tp))
    except Exception:
        # A class the gc cleared but cannot free (its type is itself: h11's
        # sentinels) has no ``__module__`` left; its qualified name stays.
        module = None
    if qualname is None:
        qualname = "?"
    if module is None or module == "builtins":
        return qualname
    return f"{module}.{qualname}"


def type_module(tp: type) -> str | None:
    """The module a class says it is defined in, read without running its code."""
    try:
        return plain_str(_TYPE_DICT.__get__(tp).get("__module__"))  # a mappingproxy: no user code
    except Exception:
        return None


def is_internal_type(tp: type) -> bool:
    """True for the test runner's own classes (pytest, pluggy, xdist, gcguard)."""
    module = type_module(tp)
    return module is not None and (module + ".").startswith(INTERNAL_MODULE_PREFIXES)


class FreezeGuard:
    """Records calls to ``gc.freeze``/``gc.unfreeze`` made while a window is open.

    Either call breaks the freeze baseline (freeze hides the test's objects,
    unfreeze brings the whole heap back), so the verdict is skipped instead.
    Installed once per session (``install``/``uninstall``), not per test.
    """

    def __init__(self) -> None:
        self.window: Window | None = None
        self._saved: tuple[object, object] | None = None

    def freeze(self) -> None:
        if self.window is not None:
            self.window.guard_calls.append("gc.freeze()")
        _freeze()

    def unfreeze(self) -> None:
        if self.window is not None:
            self.window.guard_calls.append("gc.unfreeze()")
        _unfreeze()

    def install(self) -> None:
        if self._saved is None:
            self._saved = gc.freeze, gc.unfreeze
            gc.freeze, gc.unfreeze = self.freeze, self.unfreeze
            _GUARDS.append(self)

    def uninstall(self) -> None:
        if self._saved is not None:
            gc.freeze, gc.unfreeze = self._saved  # type: ignore[assignment]
            self._saved = None
            if self in _GUARDS:
                _GUARDS.remove(self)


#: The installed guards (one per checking session).
_GUARDS: list[FreezeGuard] = []


def heap_refrozen(what: str) -> None:
    """Something of ours froze the whole heap while a test's window is open.

    A block check's leak diagnosis does (``_block``): the test's objects are
    then frozen and hidden from its own check, which is skipped and says why.
    """
    for guard in _GUARDS:
        if guard.window is not None:
            guard.window.guard_calls.append(what)


_INTERPRETER_FROZEN: list[int] = []


def interpreter_frozen() -> int:
    """How many objects a fresh interpreter of this build keeps frozen from startup.

    0, except on 3.12, where the tuples of the static types (375 of them) start
    in the permanent generation.  They are immortal: unfreezing them changes
    nothing but the count, and they cannot be frozen back alone.  Measured once,
    in a child process, and only when something is frozen.
    """
    if not _INTERPRETER_FROZEN:
        count = 0
        if not sys.executable or getattr(sys, "frozen", False):
            _INTERPRETER_FROZEN.append(0)  # no interpreter to ask (an embedded or frozen application)
            return 0
        try:
            out = subprocess.run(
                [sys.executable, "-I", "-S", "-c", "import gc; print(gc.get_freeze_count())"],
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
            )
            count = int(out.stdout.strip())
        except (OSError, ValueError, TypeError, subprocess.SubprocessError):
            count = 0
        _INTERPRETER_FROZEN.append(count)
    return _INTERPRETER_FROZEN[0]


def frozen_by_someone() -> bool:
    """Has some code frozen objects (beyond the interpreter's own)?  O(frozen)."""
    frozen = gc.get_freeze_count()
    return frozen > 0 and frozen > interpreter_frozen()


#: The sessions whose ``Heap`` keeps the heap frozen (a checked block then
#: lists what exists instead of freezing: ``_block``).
_SESSION_FREEZES: list[Heap] = []


def frozen_by_a_session() -> bool:
    """A gcguard session keeps the heap frozen now (no O(heap) reading needed)."""
    return bool(_SESSION_FREEZES)


class Heap:
    """Session-wide owner of the frozen baseline.

    ``full_pass`` (unfreeze, full collect, freeze) is the only O(heap) step.  It
    runs once at the start, then whenever the time since the last one exceeds
    ``budget`` times its cost, so that frozen objects that became garbage are
    eventually freed (and stop keeping young objects alive) at about 1 % cost.
    """

    def __init__(self, budget: float = 100.0, released_budget: float = 20.0) -> None:
        self.budget = budget
        #: The budget once frozen objects were let go (a module-scoped fixture
        #: torn down): its cyclic garbage is frozen and stays until a full pass.
        #: (Frozen garbage can also keep a test's new objects alive; passing
        #: sooner makes that rarer, never more frequent.)
        self.released_budget = released_budget
        self.released = False
        self.started = False
        self.frozen_before = False
        self.last_pass_end = 0.0
        self.last_pass_cost = 0.0
        self.passes = 0
        self.pass_seconds = 0.0

    def start(self) -> None:
        # get_freeze_count() is O(frozen): fine once per session, never per test.
        self.frozen_before = frozen_by_someone()
        self.started = True
        _SESSION_FREEZES.append(self)
        self.full_pass()

    def full_pass(self) -> None:
        t0 = time.perf_counter()
        _unfreeze()
        _collect()
        _freeze()
        self.released = False
        t1 = time.perf_counter()
        self.passes += 1
        self.last_pass_cost = t1 - t0
        self.pass_seconds += t1 - t0
        self.last_pass_end = t1

    def maybe_full_pass(self) -> None:
        if not self.started:
            self.start()
        else:
            budget = self.released_budget if self.released else self.budget
            if time.perf_counter() - self.last_pass_end > budget * self.last_pass_cost:
                self.full_pass()

    def stop(self) -> None:
        """Give the heap back as we found it (frozen only if it was frozen)."""
        if not self.started:
            return
        self.started = False
        if self in _SESSION_FREEZES:
            _SESSION_FREEZES.remove(self)
        # No collection: the frozen garbage is the automatic collector's again
        # (pytest collects at unconfigure too); one pass of a big heap is
        # seconds at the end of a data-science suite.
        _unfreeze()
        if self.frozen_before:
            _freeze()


def frozen_garbage() -> int:
    """Free the cyclic garbage among the frozen objects; how many objects it held.

    A full pass (unfreeze, collect, freeze: O(heap)), for a large growth's one
    rerun: a cycle of the first run's objects that the rerun replaced is frozen
    garbage, which the frozen count does not see die.
    """
    _unfreeze()
    try:
        return _collect()
    finally:
        _freeze()


class Window:
    """State of one test's measurement window (small values only)."""

    __slots__ = (
        "callbacks0",
        "count_frozen",
        "cycles",
        "cyclic_offset",
        "debug0",
        "enabled0",
        "freeze_first",
        "frozen_at",
        "frozen_freed",
        "garbage0",
        "guard_calls",
        "modules0",
        "opened",
        "passed",
        "rerun",
        "runner",
        "runner_code",
        "scaffolding",
        "stats0",
        "threshold0",
        "warnings_log",
    )

    def __init__(self, cycles: bool, rerun: bool = False) -> None:
        self.cycles = cycles
        #: A confirmation rerun's window: nothing is frozen and no verdict is
        #: given at its teardown; the checker measures it in its own frame.
        self.rerun = rerun
        #: A rerun that freezes what earlier runs kept, so that only its own
        #: survivors are young (the one rerun of a large growth, see _confirm).
        self.freeze_first = False
        self.stats0 = self.garbage0 = self.debug0 = self.cyclic_offset = self.modules0 = 0
        self.enabled0 = self.passed = True
        self.opened = False
        #: Count the frozen objects that die from the window's opening to the
        #: end of teardown's test code (a rerun's, see ``Judge._confirm``): two
        #: O(frozen) readings of the frozen count.
        self.count_frozen = False
        self.frozen_at = -1
        self.frozen_freed = 0
        self.guard_calls: list[str] = []
        #: What the test runner made between the test's phases (reports, hook
        #: calls, logging); held until the verdict so ids cannot be reused.
        self.runner: list[object] = []
        #: Runner code running inside a phase (a broader-scoped fixture's
        #: teardown), by key: what ``runner_code_starts`` saved.
        self.runner_code: dict[int, tuple[int, int]] = {}
        self.threshold0: tuple[int, ...] = ()
        self.callbacks0: tuple[object, ...] = ()
        #: Cycles mode: ids of the code objects of the test function and its
        #: fixtures, whose frames' cycles are the test's scaffolding.
        self.scaffolding: frozenset[int] = frozenset()
        #: The list pytest records the test protocol's warnings in (set by the
        #: plugin): what it holds is the runner's, and reruns must not add to it.
        self.warnings_log: list[object] | None = None


def phase_done(window: Window, last: bool = False) -> None:
    """A phase of test code ended: age its objects, so the runner's are next.

    Collecting generation 1 moves the two young generations to the oldest; it
    only looks at what was made since the last boundary.  ``last``: the end of
    teardown's test code, where a measuring rerun reads the frozen count again.
    """
    _collect(1)
    if last and window.frozen_at >= 0:
        window.frozen_freed += window.frozen_at - gc.get_freeze_count()
        window.frozen_at = -1


def list_runner(window: Window) -> None:
    """What was made since ``phase_done`` is the runner's: list it.

    The collection in ``phase_done`` moved everything older to the oldest
    generation, so the two young generations hold exactly the runner's objects
    (O(those objects)).
    """
    if gc.get_count()[1]:  # an automatic collection moved the older ones to generation 1
        window.runner.extend(_get_objects(1))
    window.runner.extend(_get_objects(0))  # in the order the collector keeps them


def saved_gc_state() -> tuple[bool, int, tuple[int, ...]]:
    """Automatic collection on or off, debug flags and thresholds, to restore later."""
    return gc.isenabled(), gc.get_debug(), gc.get_threshold()


def restore_gc_state(state: tuple[bool, int, tuple[int, ...]]) -> None:
    enabled, debug, threshold = state
    (gc.enable if enabled else gc.disable)()
    gc.set_debug(debug)
    gc.set_threshold(*threshold)


def _is_iterator_type(tp: type) -> bool:
    return bool(_TYPE_NAME.__get__(tp).endswith("iterator"))


#: The node types of ``contextvars``' immutable maps (``Python/hamt.c``).
_CONTEXT_MAP_TYPES = frozenset({"hamt", "hamt_bitmap_node", "hamt_array_node", "hamt_collision_node"})


_HEAPTYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: a class made by a class statement


def _is_context_map_type(tp: type) -> bool:
    return not _TYPE_FLAGS.__get__(tp) & _HEAPTYPE and _TYPE_NAME.__get__(tp) in _CONTEXT_MAP_TYPES


def context_map_nodes() -> list[object]:
    """The nodes of the current ``contextvars`` map (not what it maps to).

    Setting a context variable (pytest's own, a library's per-call state)
    replaces the thread's map with new nodes: made during the test, kept by
    the context until the next setting.  A handful of objects, found by walking
    down from the context through nodes only.
    """
    nodes: list[object] = []
    stack = [ref for ref in _get_referents(contextvars.copy_context()) if _is_context_map_type(type(ref))]
    while stack:
        node = stack.pop()
        nodes.append(node)
        stack.extend(ref for ref in _get_referents(node) if _is_context_map_type(type(ref)))
    return nodes


#: Seconds between thread switches while references are counted (``Quiet``).
NO_SWITCH = 1000.0


class Quiet:
    """No collection and no thread switch while references are counted: a finalizer,
    a ``gc.callbacks`` entry or another thread would change them meanwhile."""

    __slots__ = ("enabled", "interval")

    def __enter__(self) -> None:
        self.enabled, self.interval = gc.isenabled(), sys.getswitchinterval()
        gc.disable()
        sys.setswitchinterval(NO_SWITCH)

    def __exit__(self, *exc: object) -> None:
        sys.setswitchinterval(self.interval)
        if self.enabled:
            gc.enable()


def threads_holding(
    samples: Sequence[Sequence[object]], limit: int = 100_000
) -> tuple[list[str], list[int], list[int]]:
    """The threads the test started and left running, by name; the positions of the
    sample groups that they hold all of, and of those each sample of which they hold
    or refers into what they hold.

    Called with the heap frozen.  A thread started by the test is a new
    ``threading.Thread``; from it (its target, arguments, events) the walk goes
    through new objects only.  Its running frames are not followed: from 3.11
    the gc does not show a running frame's locals, and reading ``f_locals``
    would keep a snapshot of them alive (3.11, 3.12).  The thread's object is
    kept by ``threading._active`` while it runs: what such a thread still holds
    is work in flight (anyio's tests that start a server thread and do not join
    it), and a running frame's stack and the thread's C state hold the rest,
    which the gc does not show either.
    """
    if not any(samples):
        return [], [], []
    me = threading.get_ident()
    young = set(map(id, _get_objects()))
    frames = sys._current_frames()
    names: list[str] = []
    stack: list[object] = []
    running: set[int] = set()
    for thread in threading.enumerate():
        frame = frames.get(thread.ident) if thread.ident is not None else None
        if thread.ident == me or id(thread) not in young or frame is None:
            continue
        names.append(thread.name)
        running.add(id(thread))
        stack.append(thread)
    frames.clear()
    if not running:
        young.clear()
        return [], [], []
    seen: set[int] = set()
    while stack and len(seen) < limit:
        obj = stack.pop()
        key = id(obj)
        if key in seen:
            continue
        seen.add(key)
        if key in young:
            stack.extend(_get_referents(obj))
    stack.clear()
    young.clear()
    # Types all of whose samples the threads hold; and those whose samples the threads
    # hold or that refer into what they hold (a bound method on a running frame's stack,
    # which the gc does not show; the thread's ``_bootstrap``, which its C state keeps).
    seen.update(running)
    held: list[int] = []
    near: list[int] = []
    for n, objs in enumerate(samples):
        if objs and all(id(obj) in seen for obj in objs):
            held.append(n)
        elif objs and all(id(obj) in seen or _refers_into(obj, seen) for obj in objs):
            near.append(n)
    seen.clear()
    return names, held, near


def _refers_into(obj: object, ids: set[int]) -> bool:
    """``obj`` refers to one of ``ids``, strongly or (a weak reference: ``threading._dangling``'s) weakly."""
    if not ids.isdisjoint(map(id, _get_referents(obj))):
        return True
    if issubclass(type(obj), weakref.ref):  # ``type()``: an object may lie about its class
        target = obj()  # type: ignore[operator]
        return target is not None and id(target) in ids
    return False


def context_held(objs: list[object]) -> set[int]:
    """The ids of those of ``objs`` that the current context's variables hold: each
    variable's value, and what the values hold among ``objs``.

    Setting a variable copies the nodes on its path in the context's map and frees
    the old ones, so a context that gains a value on every run (a new
    ``ContextVar`` each time: asgiref's ``Local``) frees older objects as it grows,
    as a full cache replacing entries does.  It evicts nothing.
    """
    ids = set(map(id, objs))
    held: set[int] = set()
    stack: list[object] = []
    for node in context_map_nodes():
        for ref in _get_referents(node):
            if id(ref) in ids and id(ref) not in held:
                held.add(id(ref))
                stack.append(ref)
    while stack:
        for ref in _get_referents(stack.pop()):
            if id(ref) in ids and id(ref) not in held:
                held.add(id(ref))
                stack.append(ref)
    ids.clear()
    return held


def _is_method_type(tp: type) -> bool:
    return tp is types.MethodType


def read_attribute(obj: object, name: str) -> object:
    """An attribute read without running the object's code (None when missing)."""
    try:
        return object.__getattribute__(obj, name)
    except Exception:
        return None


def _is_weakref_type(tp: type) -> bool:
    return tp is weakref.ReferenceType


def _not_tracked(obj: object) -> bool:
    return not gc.is_tracked(obj)


def release_runner(window: Window) -> None:
    """Stop holding the runner's objects: keep only those something else keeps alive.

    The runner's listings hold its objects so that the fast path can compare
    identities; once that path is left, holding them would keep alive what
    only they reach, and some of it the gc cannot see (``io.StringIO``'s
    buffer list on 3.10/3.11, filled by test code through ``caplog.text``).
    The objects still alive after a collection are listed again, so their
    identities stay valid for the exclusions that follow.
    """
    # Untracked ones (tuples and dicts of atomic values; a collection untracks
    # what it can first) hold nothing the gc sees and stay held: one that gets
    # a container stored in it later is tracked again, and must still be known.
    _collect()
    untracked = list(filter(_not_tracked, window.runner))
    known = set(map(id, filter(gc.is_tracked, window.runner)))
    window.runner.clear()
    _collect()
    young = _get_objects()
    try:
        window.runner.extend(untracked)
        window.runner.extend(compress(young, map(known.__contains__, map(id, young))))
    finally:
        del young, known, untracked


def phase_starts(window: Window) -> None:
    """Test code is about to run: what the runner made since the last phase is listed."""
    list_runner(window)


def open_window(window: Window) -> Window:
    """Start ``window``: young garbage collected, everything alive frozen.

    Confirmation reruns (``window.rerun``) freeze nothing: they must keep the
    earlier runs' survivors visible to see whether a rerun replaces them.  A
    ``freeze_first`` rerun freezes them, and sees them die in the frozen count.
    """
    window.debug0 = gc.get_debug()
    window.enabled0 = gc.isenabled()
    window.threshold0 = gc.get_threshold()
    window.callbacks0 = tuple(gc.callbacks)  # usually the empty tuple: nothing is allocated
    window.modules0 = len(sys.modules)
    if window.rerun and not window.freeze_first:
        _collect()
        if window.count_frozen:
            window.frozen_at = gc.get_freeze_count()
    else:
        # No collection first: the previous verdict froze the heap (or, before
        # a freeze-first rerun, the classification collected), and what the
        # runner made since then holds no cyclic garbage in practice (none in the
        # benchmark's runs); what little there is is frozen, never counted, and
        # freed by the next full pass.
        if window.freeze_first and window.count_frozen:
            # A large growth's one rerun: the frozen garbage counted after it
            # (``frozen_garbage``) must be what the rerun made garbage.
            frozen_garbage()
        else:
            _freeze()
        if window.count_frozen:
            window.frozen_at = gc.get_freeze_count()
    if window.cycles:
        window.stats0 = stats_total()
    window.garbage0 = len(gc.garbage)
    if window.cycles:
        # SAVEALL keeps the cyclic garbage in gc.garbage so its types can be
        # named; close_window frees it again.
        gc.set_debug(window.debug0 | gc.DEBUG_SAVEALL)
    window.opened = True
    return window


#: Stored in, then removed from, an untracked dict to make the gc track it.
_TRACK_KEY = object()
_TRACKED_VALUE: list[object] = []


def track_dicts(owners: Iterable[object]) -> None:
    """Make the empty or atomic-only dicts among ``owners``' attributes tracked.

    The gc does not track a dict that holds only atomic values, and starts to
    the moment a container is stored in it: a dict made long before the test
    (pytest's ``item.funcargs``, a fixture request's resolved fixtures) would
    then look made by the test and send every test down the slow path.  Called
    before the freeze, which then takes them.
    """
    for owner in owners:
        refs = _get_referents(owner)
        for ref in refs:
            if type(ref) is dict:
                if gc.is_tracked(ref):  # an instance dict: look at its values
                    for value in ref.values():
                        if type(value) is dict and not gc.is_tracked(value):
                            value[_TRACK_KEY] = _TRACKED_VALUE
                            del value[_TRACK_KEY]
                else:
                    ref[_TRACK_KEY] = _TRACKED_VALUE
                    del ref[_TRACK_KEY]
        del refs


def runner_code_starts(window: Window) -> tuple[int, int]:
    """Runner code is about to run inside a test's phase (a module, class or
    session fixture's teardown, in the last test of its scope): what it makes
    is the runner's, as what the runner makes between phases is.

    Ages the test's objects so far (``phase_done``); in cycles mode, also
    collects the test's garbage so far and stops saving cyclic garbage, as
    ``absorbed`` does around such a fixture's setup.  Returns what
    ``runner_code_ends`` restores.
    """
    phase_done(window)
    debug = gc.get_debug()
    before = 0
    if window.cycles:
        _collect()  # the test's garbage so far stays counted (and saved)
        before = stats_total()
        gc.set_debug(debug & ~gc.DEBUG_SAVEALL)
    return debug, before


def runner_code_ends(window: Window, state: tuple[int, int]) -> None:
    """The runner code ``runner_code_starts`` announced ended: list what it made
    as the runner's, and leave its cyclic garbage out of the test's count."""
    debug, before = state
    if window.cycles:
        _collect()
        window.cyclic_offset += stats_total() - before
        gc.set_debug(debug)
    phase_starts(window)


@contextmanager
def absorbed(window: Window) -> Iterator[None]:
    """Freeze what a block creates and leave its cyclic garbage out of the count.

    Used around the setup of broader-scoped fixtures that a test triggers: their
    objects belong to the module/session, not to the test.
    """
    _collect()  # the test's garbage so far stays counted (and saved in cycles mode)
    cycles = window.cycles
    before = stats_total() if cycles else 0
    debug = gc.get_debug()
    if cycles:
        gc.set_debug(debug & ~gc.DEBUG_SAVEALL)
    try:
        yield
    finally:
        _collect()
        if cycles:
            window.cyclic_offset += stats_total() - before
        gc.set_debug(debug)
        _freeze()


@contextmanager
def listed_as_runner(window: Window) -> Iterator[None]:
    """A rerun's version of ``absorbed``: what the block makes is listed as the runner's.

    Reruns freeze nothing (they must see the earlier runs' survivors), so the
    objects a broader-scoped fixture makes when a rerun sets it up again (the
    first run's teardown tore it down: the next test is in another module)
    are listed instead.  The objects alive before are held through the block,
    so no new object can take an old one's id.
    """
    _collect()
    before = _get_objects()
    known = set(map(id, before))
    try:
        yield
    finally:
        _collect()
        # Not the listing itself (nor its set of ids): the runner would then
        # hold every object alive before the block, and the exclusions would
        # take what it holds for the runner's (the earlier runs' survivors).
        known.update((id(before), id(known)))
        young = _get_objects()
        window.runner.extend(compress(young, map(not_, map(known.__contains__, map(id, young)))))
        del young, before, known


def only_runner_left(runner: list[object], kept: tuple[object, ...] = ()) -> bool:
    """After the window's full collection: is every young object one of ``runner``'s?

    The usual case, checked without any ``id()`` or set: the collector keeps
    objects in the order they were made, and the runner's listings were taken
    in that order, so the survivors are exactly the runner's (tracked) objects,
    in order, when nothing else survived.  Anything else (a test object, a
    runner object untracked, moved or frozen) makes the lists differ and sends
    the verdict down the exact path.  On 3.10 frames are gc objects: the ones
    executing this check are made after the last listing, and are allowed.

    ``kept``: objects the runner made inside the test's phases and keeps
    (``runner_kept``), allowed anywhere; the tuple itself too.  Removed from
    both lists in C, by identity, so the order check still holds for the rest.
    """
    young = _get_objects(2)
    expected = list(filter(gc.is_tracked, runner))
    try:
        if kept:
            allowed = set(map(id, kept))
            allowed.add(id(kept))
            young = list(compress(young, map(not_, map(allowed.__contains__, map(id, young)))))
            expected = list(compress(expected, map(not_, map(allowed.__contains__, map(id, expected)))))
            allowed.clear()
        n = len(expected)
        if len(young) < n or not all(map(_is, young, expected)):
            return False
        if len(young) == n:
            return True
        if not _PY310:
            return False
        executing = set()
        frame: types.FrameType | None = sys._getframe()
        while frame is not None:
            executing.add(id(frame))
            frame = frame.f_back
        return all(type(obj) is _FrameType and id(obj) in executing for obj in young[n:])
    finally:
        del young, expected


@dataclass
class Closed:
    """What a window left behind, summarised by type (no object references)."""

    #: Nothing but the runner's objects survived (``only_runner_left``).
    runner_only: bool = False
    cyclic: int = 0
    cyclic_types: dict[str, int] = field(default_factory=dict)
    uncollectable: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    cycle_chain: str = ""


def _is_scaffolding(obj: object, codes: frozenset[int]) -> bool:
    """An object of the test's scaffolding: runner and test-tool objects, and the
    frames of the test function, its fixtures and those tools."""
    tp = type(obj)
    if tp is _FrameType:
        if id(obj.f_code) in codes:  # type: ignore[attr-defined]
            return True
        module = plain_str(dict.get(obj.f_globals, "__name__"))  # type: ignore[attr-defined]
    elif issubclass(tp, type):  # a class made on the fly (a mock's own subclass)
        module = type_module(obj)  # type: ignore[arg-type]
    else:
        module = type_module(tp)
    return module is not None and (module + ".").startswith(SCAFFOLDING_MODULE_PREFIXES)


def _real_cycles(garbage: list[object], codes: frozenset[int]) -> tuple[dict[type, int], object]:
    """Types of the cyclic garbage that the code under test made, and one member of a cycle.

    The scaffolding is left out first: ``pytest.raises(...) as info`` keeps the
    exception, whose traceback holds the test's frame, which holds ``info``
    (a cycle every such test makes); a mock and its children; Hypothesis's
    engine.  What remains counts only if it still has a cycle of its own
    (strongly connected components, Tarjan's algorithm without recursion):
    then its members and what they hold are reported.
    """
    rest = [obj for obj in garbage if not _is_scaffolding(obj, codes)]
    index_of = {id(obj): n for n, obj in enumerate(rest)}
    edges: list[list[int]] = []
    for obj in rest:
        edges.append([index_of[id(ref)] for ref in _get_referents(obj) if id(ref) in index_of])
    on_cycle = _cycle_members(edges)
    # What the cycles hold goes with them (freed only by the cyclic GC too).
    held = set(on_cycle)
    stack = list(on_cycle)
    while stack:
        for nxt in edges[stack.pop()]:
            if nxt not in held:
                held.add(nxt)
                stack.append(nxt)
    counts: dict[type, int] = {}
    first: object = None
    for n in sorted(held):
        tp = type(rest[n])
        counts[tp] = counts.get(tp, 0) + 1
        if first is None and n in on_cycle and tp is not _FrameType:
            first = rest[n]
    if first is None and on_cycle:
        first = rest[min(on_cycle)]
    rest.clear()
    return counts, first


def _cycle_members(edges: list[list[int]]) -> set[int]:
    """Nodes on a cycle of the graph ``edges`` (adjacency lists), by Tarjan's SCCs."""
    index = [-1] * len(edges)
    low = [0] * len(edges)
    on_stack = [False] * len(edges)
    stack: list[int] = []
    members: set[int] = set()
    counter = 0
    for root in range(len(edges)):
        if index[root] >= 0:
            continue
        work = [(root, 0)]
        while work:
            node, pos = work.pop()
            if pos == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack[node] = True
            recurse = False
            targets = edges[node]
            while pos < len(targets):
                nxt = targets[pos]
                pos += 1
                if index[nxt] < 0:
                    work.append((node, pos))
                    work.append((nxt, 0))
                    recurse = True
                    break
                if on_stack[nxt]:
                    low[node] = min(low[node], index[nxt])
            if recurse:
                continue
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack[top] = False
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1 or node in edges[node]:
                    members.update(component)
    return members


def own_objects(closed: Closed) -> tuple[object, ...]:
    """The objects a ``Closed`` summary is made of (our bookkeeping, not the test's)."""
    return (closed, closed.cyclic_types, closed.uncollectable, closed.notes)


def find_cycle(start: object, members: list[object], limit: int = 50) -> list[object]:
    """A shortest reference path from ``start`` back to itself, through ``members``."""
    allowed = {id(m) for m in members}
    parent: dict[int, object] = {}
    queue = [start]
    seen = {id(start)}
    while queue and len(seen) < 10_000:
        node = queue.pop(0)
        for ref in _get_referents(node):
            if ref is start:
                path = [ref, node]
                while node is not start:
                    node = parent[id(node)]
                    path.append(node)
                path.reverse()
                return path[:limit]
            key = id(ref)
            if key in allowed and key not in seen:
                seen.add(key)
                parent[key] = node
                queue.append(ref)
    return [start]


def _library_code(callback: object) -> bool:
    """``callback`` is code of an installed package or of the standard library (or written in C)."""
    function = getattr(callback, "__func__", callback)
    code = getattr(function, "__code__", None)
    if type(code) is not types.CodeType:
        return True
    return code.co_filename.startswith(_LIBRARY_PATHS)


def _restore_callbacks(before: tuple[object, ...], notes: list[str]) -> None:
    """Undo what a test did to ``gc.callbacks``, except what a library registered for good.

    Callbacks the test removed are put back; callbacks added by the test's own
    code (a conftest, the test module) are removed.  One added by an installed
    package stays: Hypothesis, for one, registers its gc timing once per
    process, on first use, and would never register it again.
    """
    callbacks = gc.callbacks
    if len(callbacks) == len(before) and all(map(_is, callbacks, before)):
        return  # the usual case, at no allocation
    now = list(callbacks)
    added = [cb for cb in now if not any(cb is b for b in before)]
    kept = [cb for cb in added if _library_code(cb)]
    if len(kept) < len(added) or any(not any(b is cb for cb in now) for b in before):
        notes.append("the test left gc.callbacks changed; gcguard restored them")
    restored: list[Any] = [*before, *kept]
    gc.callbacks[:] = restored


def saved_cycles(
    garbage0: int,
    codes: frozenset[int],
    describe_cycle: Callable[[list[object]], str] | None,
    free: bool = True,
) -> tuple[dict[str, int], str]:
    """Name what ``DEBUG_SAVEALL`` kept in ``gc.garbage[garbage0:]``: real cycles by type, and one of them.

    ``free``: then drop the entries and collect again, which really frees
    them; what comes back is uncollectable (legacy finalizers), not freed
    cycles, and is not counted.  Without it the entries stay for whoever set
    ``DEBUG_SAVEALL``.
    """
    garbage = gc.garbage[garbage0:]
    counts, first = _real_cycles(garbage, codes)
    example = describe_cycle(find_cycle(first, garbage)) if first is not None and describe_cycle is not None else ""
    del first
    garbage.clear()
    if free:
        del gc.garbage[garbage0:]
        _collect()
        for obj in gc.garbage[garbage0:]:
            tp = type(obj)
            if tp in counts:
                counts[tp] -= 1
            del obj
    return {name: n for name, n in _named(counts).items() if n > 0}, example


def first_of_each(objs: list[object], name_of: dict[type, str], count: int) -> dict[str, list[object]]:
    """The first ``count`` objects of each type in ``name_of``, by type name.

    A function of its own, so that no loop variable of the caller's is left
    holding a leaked object (it would show as a referrer in the chain search).
    """
    found: dict[str, list[object]] = {}
    full = 0  # types with all their samples
    for obj in compress(objs, map(name_of.__contains__, map(type, objs))):
        group = found.setdefault(name_of[type(obj)], [])
        if len(group) < count:
            group.append(obj)
            full += len(group) == count
            if full == len(name_of):
                break  # enough of every type
    return found


#: Makes a warning, but is not a class (called in C: no frame).
_NOT_A_WARNING_CLASS = functools.partial(UserWarning)


def drop_stale_warning_filters() -> None:
    """Make the interpreter let go of the filter list it copied in the last warning.

    ``warnings.warn`` in C keeps a reference to the ``warnings.filters`` list it
    last matched against, until the next warning.  ``catch_warnings`` (pytest's
    per phase, a test's own) binds a copy and restores the original at exit:
    the copy, made by the test, stays alive in the C state and looks like the
    test's survivor.  A warning whose category is not a class makes the C code
    take the current list, then fail at the first filter's ``issubclass``, before
    any action: nothing is shown, recorded or registered.  Not done on an empty
    filter list, where the default action would apply instead.
    """
    filters = getattr(sys.modules.get("warnings"), "filters", None)
    if type(filters) is not list or not filters:
        return
    del filters
    try:  # noqa: SIM105 (no context manager object on a path every test takes)
        # The C function itself: a wrapper on warnings' could do more.
        _warnings.warn_explicit("", _NOT_A_WARNING_CLASS, "", 0, registry=None)  # type: ignore[call-overload]
    except Exception:
        pass


def close_window(
    window: Window,
    describe_cycle: Callable[[list[object]], str] | None = None,
    runner_kept: Callable[[Any], tuple[object, ...]] | None = None,
    owner: object = None,
) -> Closed:
    """Collect the window's garbage and restore the gc state the window changed.

    ``describe_cycle`` turns one reference cycle of the garbage into text
    (cycles mode); the objects themselves are never kept.

    When more than the runner's listed objects survived, the interpreter's
    stale copy of the warning filters is let go and ``runner_kept(owner)``
    names what the runner made in the phases and keeps; the fast check is then
    made again with those allowed.  Only then: a clean test that passes the
    first check (most of them) pays nothing for it.  Passed as a function and
    its argument, so that nothing is made before the first check.

    The young survivors are left unfrozen for ``survivors()``; call ``settle()``
    when the verdict is done.
    """
    test_debug = gc.get_debug()
    if window.rerun:
        drop_stale_warning_filters()  # counted alike in every run
    _collect()
    # Nothing may be made between the runner's last listing and this check.
    runner_only = only_runner_left(window.runner)
    if not runner_only and not window.rerun:
        drop_stale_warning_filters()
        if runner_kept is not None:
            kept = runner_kept(owner)
            runner_only = only_runner_left(window.runner, kept)
            del kept
    closed = Closed(runner_only=runner_only)
    ours = gc.DEBUG_SAVEALL if window.cycles else 0
    if test_debug & ~ours != window.debug0 & ~ours:
        closed.notes.append(f"the test changed gc debug flags to {_debug_names(test_debug)}; gcguard restored them")
    gc.set_debug(window.debug0)
    saved_all = window.cycles and not window.debug0 & gc.DEBUG_SAVEALL
    if saved_all:
        closed.cyclic_types, closed.cycle_chain = saved_cycles(window.garbage0, window.scaffolding, describe_cycle)
    _restore_callbacks(window.callbacks0, closed.notes)
    if gc.get_threshold() != window.threshold0:
        closed.notes.append(
            f"the test changed gc thresholds to {gc.get_threshold()}; gcguard restored {window.threshold0}"
        )
        gc.set_threshold(*window.threshold0)
    if gc.isenabled() != window.enabled0:
        closed.notes.append(
            "the test left automatic gc " + ("enabled" if gc.isenabled() else "disabled") + "; gcguard restored it"
        )
        (gc.enable if window.enabled0 else gc.disable)()
    if window.cycles and closed.cyclic_types:
        # Count only what is not the runner's own garbage.
        closed.cyclic = max(0, stats_total() - window.stats0 - window.cyclic_offset)
        closed.cyclic = min(closed.cyclic, sum(closed.cyclic_types.values()))
    counts: dict[type, int] = {}
    for obj in gc.garbage[window.garbage0 :]:
        tp = type(obj)
        counts[tp] = counts.get(tp, 0) + 1
        del obj
    closed.uncollectable = _named(counts)
    return closed


_gettotalrefcount: Callable[[], int] | None = getattr(sys, "gettotalrefcount", None)
_interned: Callable[..., int] | None = getattr(sys, "getunicodeinternedsize", None)
#: True on debug builds, where ``sys.gettotalrefcount()`` counts every reference.
COUNTS_REFERENCES = _gettotalrefcount is not None


def allocated_blocks() -> int:
    """Live memory blocks, less interned strings (immortal from 3.12), as ``regrtest -R`` reads them."""
    blocks = sys.getallocatedblocks()
    if _interned is not None:
        blocks -= _interned(_only_immortal=True) if sys.version_info >= (3, 13) else _interned()
    return blocks


def total_references() -> int:
    """All references held (debug builds; 0 elsewhere), as ``regrtest -R`` reads them."""
    if _gettotalrefcount is None:
        return 0
    refs = _gettotalrefcount()
    if _interned is not None and sys.version_info[:2] == (3, 12):
        refs -= 2 * _interned()
    return refs


def clear_caches() -> None:
    """Empty the standard library's bounded caches, as ``regrtest -R`` does between runs.

    A cache fed a new key on every run (a numbered temporary directory's name
    through ``re`` or ``fnmatch``) would otherwise grow until full and look
    like a leak to the memory counters.
    """
    for name, attr in _CACHES:
        module = sys.modules.get(name)
        target = getattr(module, attr, None) if module is not None else None
        if target is None:
            continue
        clear = getattr(target, "cache_clear", None) or getattr(target, "clear", None)
        if clear is None and callable(target):
            clear = target
        try:
            if clear is not None:
                clear()
        except Exception:
            continue
    typing = sys.modules.get("typing")
    for clear in getattr(typing, "_cleanups", ()):
        try:
            clear()
        except Exception:
            continue
    _clear_type_cache = getattr(sys, "_clear_internal_caches", None) or getattr(sys, "_clear_type_cache", None)
    if _clear_type_cache is not None:
        _clear_type_cache()


#: (module, attribute): caches emptied by ``clear_caches`` (``regrtest``'s list, where it applies to tests).
_CACHES = (
    ("re", "purge"),
    ("fnmatch", "_compile_pattern"),
    ("linecache", "clearcache"),
    ("struct", "_clearcache"),
    ("_strptime", "_regex_cache"),
    ("urllib.parse", "clear_cache"),
    ("filecmp", "_cache"),
    ("inspect", "_shadowed_dict_from_weakref_mro_tuple"),
    ("inspect", "_shadowed_dict_from_mro_tuple"),
)


def instance_dicts(objs: Iterable[object]) -> list[object]:
    """The ``__dict__`` of each object that has one.

    From 3.12 an instance's dict, once made (a report describing a cycle reads
    ``__dict__``), is not among the instance's ``gc.get_referents()``.
    """
    dicts: list[object] = []
    for obj in objs:
        if dict_offset(type(obj)) != 0:
            attrs = _instance_dict(obj)
            if type(attrs) is dict:
                dicts.append(attrs)
    return dicts


def settle() -> None:
    """End of a verdict: what is alive now joins the frozen baseline."""
    _freeze()


def _debug_names(flags: int) -> str:
    names = ("DEBUG_STATS", "DEBUG_COLLECTABLE", "DEBUG_UNCOLLECTABLE", "DEBUG_SAVEALL")
    return "|".join(f"gc.{n}" for n in names if flags & getattr(gc, n)) or "0"


def _named(counts: dict[type, int]) -> dict[str, int]:
    named: dict[str, int] = {}
    for tp, n in counts.items():
        name = type_name(tp)
        named[name] = named.get(name, 0) + n
    return named


class Survivors:
    """The young objects alive after a window, split into excluded and candidates.

    Made to be cheap: the runner's objects (listed between phases) are removed
    by identity in two passes in C, which leaves a handful of candidates; every
    later rule looks only at candidates and walks only through them.  Objects
    are held only while the verdict is computed: call ``clear()`` before
    reporting.
    """

    def __init__(self) -> None:
        # Called without arguments on purpose: an argument tuple would be a
        # young object alive while the heap is listed.
        self._young = _get_objects()
        self._candidates: list[object] = self._young
        self._ids: set[int] | None = None
        self._types: set[type] | None = None
        #: Ids of our own bookkeeping (``exclude_known``), never looked into.
        self._own: set[int] = set()

    def exclude_known(self, runner: list[object], own: tuple[object, ...] = ()) -> None:
        """Exclude by identity the runner's objects and our own (``own``)."""
        known = set(map(id, runner))
        self._own = set(map(id, own))
        self._own.add(id(own))
        # Their instance dicts too (separate objects on 3.10, or once made).
        self._own.update(id(_instance_dict(obj)) for obj in own if dict_offset(type(obj)) != 0)
        known.update(self._own)
        known.add(id(self))
        # One pass in C; the candidate list is narrowed lazily (``candidates``).
        self._ids = set(map(id, self._young))
        self._ids.difference_update(known)

    @property
    def ids(self) -> set[int]:
        """Ids of the candidates: young objects not excluded yet."""
        if self._ids is None:
            self._ids = set(map(id, self._candidates))
        return self._ids

    def candidates(self) -> list[object]:
        """The young objects not excluded yet (usually a handful)."""
        ids = self.ids
        if len(ids) != len(self._candidates):
            self._candidates = list(compress(self._candidates, map(ids.__contains__, map(id, self._candidates))))
        return self._candidates

    def of_types(self, wanted: Callable[[type], bool]) -> list[object]:
        """The candidates whose type satisfies ``wanted`` (asked once per type).

        The selection runs in C: a leak of a million objects of one type costs
        one call of ``wanted``, not a million iterations in Python.
        """
        if self._types is None:
            self._types = set(map(type, self._candidates))
        # The types seen once are a superset of the candidates' types for good:
        # exclusions only remove candidates.
        kinds = {tp for tp in self._types if wanted(tp)}
        if not kinds:
            return []
        ids = self.ids
        chosen = list(compress(self._candidates, map(kinds.__contains__, map(type, self._candidates))))
        return list(compress(chosen, map(ids.__contains__, map(id, chosen))))

    @property
    def remaining(self) -> int:
        """How many young objects are not excluded yet."""
        return len(self.ids)

    def exclude_exact(self, objs: Iterable[object]) -> None:
        """Exclude exactly these objects (by identity), not what they reach."""
        self.ids.difference_update(map(id, objs))

    def exclude_ids(self, ids: set[int]) -> None:
        """Exclude the candidates with these ids (exactly: not what they reach)."""
        self.ids.difference_update(ids)

    def made_dicts(self, ids: set[int]) -> set[int]:
        """3.13: the ids of the instance dicts of the young objects with these ids, which a
        walk read (and so made: they are not among the objects' referents) after the
        objects were listed."""
        if not _HIDDEN_DICTS:
            return set()
        young = self._young
        chosen = compress(young, map(ids.__contains__, map(id, young)))
        managed = [obj for obj in chosen if _TYPE_FLAGS.__get__(type(obj)) & _MANAGED_DICT]
        return {id(namespace) for namespace in map(_instance_dict, managed) if namespace is not None}

    def count_of(self, ids: set[int]) -> dict[type, int]:
        """How many of the young objects with these ids (candidates or not) are of each type."""
        young = self._young
        return dict(Counter(map(type, compress(young, map(ids.__contains__, map(id, young))))))

    def exclude_reachable(self, starts: Iterable[object]) -> None:
        """Exclude candidates reachable from ``starts`` through candidates.

        Starts that are not candidates (old objects, the runner's) are looked
        into once: what they hold directly is reached too.
        """
        ids = self.ids
        if not ids:
            return
        # In C, in bulk: which starts are candidates, and which candidates the
        # others hold directly (the runner's listing: thousands of objects).
        starts = list(starts)
        is_candidate = list(map(ids.__contains__, map(id, starts)))
        reached = list(compress(starts, is_candidate))
        held = _get_referents(*compress(starts, map(not_, is_candidate)))
        reached += compress(held, map(ids.__contains__, map(id, held)))
        del starts, is_candidate, held
        stack = []
        for obj in reached:
            key = id(obj)
            if key in ids:
                ids.discard(key)
                stack.append(obj)
        del reached
        while stack:
            obj = stack.pop()
            refs = _get_referents(obj)
            if _HIDDEN_DICTS and _TYPE_FLAGS.__get__(type(obj)) & _MANAGED_DICT:
                refs.append(_instance_dict(obj))
            del obj
            for ref in refs:
                key = id(ref)
                if key in ids:
                    ids.discard(key)
                    stack.append(ref)
            del refs

    def exclude_from_frames(self, frame: types.FrameType | None, stop: types.FrameType | None) -> None:
        """Exclude what the executing frames (``frame`` up to ``stop``) hold.

        That is the test runner's in-flight machinery: hook-call lists, wrapper
        generators, reports being built, captured warnings.  A frame's locals are
        read through ``f_locals`` (an executing frame does not expose them to
        ``gc.get_referents``); containers among them are looked into, because a
        frozen list can hold young objects (pluggy's teardown list).
        """
        while frame is not None:
            starts: list[object] = [frame]
            f_locals = frame.f_locals
            starts.append(f_locals)  # <= 3.12: a snapshot dict kept on the frame
            own = self._own
            for value in f_locals.values():
                if id(value) in own:
                    continue  # our bookkeeping (a million ids, say): nothing in flight
                starts.append(value)
                if type(value) in _LOOK_INTO:
                    for ref in _get_referents(value):
                        if type(ref) in _LOOK_INTO:
                            starts.append(ref)
            del f_locals
            self.exclude_reachable(starts)
            if frame is stop or not self.remaining:
                break
            frame = frame.f_back

    def exclude_owned_by(self, owner: object, containers: tuple[type, ...] = (), depth: int = 4) -> None:
        """Exclude candidates hanging off ``owner`` (e.g. a test item's attributes).

        Follows plain containers (and ``containers``, e.g. ``pytest.Stash``) old or
        young, ``depth`` levels down; never other objects, so the walk stays small.
        """
        plain = (list, dict, tuple, set)
        level = [owner]
        starts: list[object] = []
        for _ in range(depth):
            following: list[object] = []
            for obj in level:
                for ref in _get_referents(obj):
                    starts.append(ref)
                    # By MRO identity: isinstance() on an ABC (FixtureRequest) would
                    # fill ABC caches with new weakrefs while we measure.
                    if type(ref) in plain or any(c in _TYPE_MRO.__get__(type(ref)) for c in containers):
                        following.append(ref)
            level = following
        self.exclude_reachable(starts)

    def exclude_spent_iterators(self) -> None:
        """Exclude iterators that hold no candidate.

        A ``for`` loop's iterator lives on an executing frame's value stack,
        which no Python API shows (pluggy's ``reversed(teardowns)``).
        """
        ids = self.ids
        for obj in self.of_types(_is_iterator_type):
            for ref in _get_referents(obj):
                if id(ref) in ids:
                    break
            else:
                ids.discard(id(obj))

    def exclude_internal(self) -> None:
        """Exclude the runner's own objects and everything only they reach.

        Also what plainly belongs to them: callbacks bound to them (pytest
        registers ``functools.partial(fixturedef.finish, request=...)`` on
        broader-scoped fixtures for every test that uses them) and plain
        containers that hold nothing but runner objects (pluggy's argument
        lists, pytest's per-request fixture maps).
        """
        internal: dict[type, bool] = {}

        # Defaults, not closures: the three functions are deleted at the end.
        def runner_owned_type(tp: type, internal: dict[type, bool] = internal) -> bool:
            flag = internal.get(tp)
            if flag is None:
                flag = internal[tp] = is_internal_type(tp)
            return flag

        def runner_owned(obj: object, owned: Callable[[type], bool] = runner_owned_type) -> bool:
            return owned(type(obj))

        def worth_a_look(tp: type, owned: Callable[[type], bool] = runner_owned_type) -> bool:
            return tp in (functools.partial, types.MethodType, *_PLAIN_CONTAINERS) or owned(tp)

        ids = self.ids
        starts = [obj for obj in self.of_types(worth_a_look) if _belongs_to_runner(obj, ids, runner_owned)]
        internal.clear()
        del runner_owned, runner_owned_type, worth_a_look
        if starts:
            self.exclude_reachable(starts)

    def exclude_cached_formats(self) -> None:
        """Exclude the ``struct.Struct`` objects ``struct``'s cache alone holds, exactly.

        Its keys are the callers' format objects, which stay counted; and a
        Struct that another candidate refers to (a kept ``iter_unpack``
        iterator) stays counted too.  A ``struct.Struct`` made directly is not
        in the cache.
        """
        cache = _struct_cache()
        if not cache or not self.remaining:
            return
        ids = self.ids
        cached = [value for value in cache.values() if type(value) is _STRUCT and id(value) in ids]
        if not cached:
            return
        held = {id(ref) for obj in self.candidates() if type(obj) is not _STRUCT for ref in _get_referents(obj)}
        ids.difference_update(id(value) for value in cached if id(value) not in held)
        cached.clear()

    def exclude_finalize_hook(self) -> None:
        """Exclude the bound method ``weakref.finalize`` registers with ``atexit`` on its first
        use (once per process; ``atexit`` holds it in C, where the gc does not look)."""
        finalize = sys.modules["weakref"].finalize
        if not getattr(finalize, "_registered_with_atexit", False) or not self.remaining:
            return
        exitfunc = getattr(finalize._exitfunc, "__func__", None)
        for obj in self.of_types(_is_method_type):
            if read_attribute(obj, "__self__") is finalize and read_attribute(obj, "__func__") is exitfunc:
                self.ids.discard(id(obj))
                break

    def exclude_weakrefs_to_others(self) -> None:
        """Exclude weak references to objects that are not candidates.

        CPython keeps one in ``type.__subclasses__()`` bookkeeping for every new
        class; a weakref to something that is not itself leaked is bookkeeping
        about that object, not growth of its own.
        """
        ids = self.ids
        for obj in self.of_types(_is_weakref_type):
            target = obj()  # type: ignore[operator]
            if target is None or id(target) not in ids:
                ids.discard(id(obj))
            del target

    def exclude_abc_caches(self) -> None:
        """Exclude the entries of the ``abc`` module's caches (exactly: not the classes).

        ``isinstance(obj, SomeABC)`` for a class not seen before records the
        answer in the ABC's positive or negative cache: a set (made on first
        use) of weak references to classes, each with a ``_destroy`` callback
        bound to a weak reference to that set (``Modules/_abc.c``).  A class
        stays a candidate; regrtest ``-R`` empties these caches between runs.
        """
        ids = self.ids
        for ref in self.of_types(_is_weakref_type):
            callback = ref.__callback__  # type: ignore[attr-defined]
            if type(callback) is types.BuiltinFunctionType and callback.__name__ == "_destroy":
                to_set = callback.__self__
                if type(to_set) is weakref.ReferenceType:
                    weak_set = to_set()
                    if type(weak_set) is set:
                        ids.difference_update((id(ref), id(callback), id(to_set), id(weak_set)))
                    del weak_set
                del to_set
            del callback

    def exclude_hypothesis_labels(self) -> None:
        """Exclude the tags Hypothesis keeps per strategy label (exactly: the tags alone).

        Hypothesis keeps one ``StructuralCoverageTag`` for every strategy label
        it has seen, for the whole run, in a plain dict
        (``hypothesis.internal.conjecture.data.STRUCTURAL_COVERAGE_CACHE``).  A
        test whose strategies make new labels on every example (a class or a
        lambda built per example) grows it on every run: the test tool's memory,
        as pytest's reports are, which the code under test cannot give back.
        A tag holds only its label (an int); what the test's strategies hold
        stays a candidate.
        """
        module = sys.modules.get("hypothesis.internal.conjecture.data")
        cache = getattr(module, "STRUCTURAL_COVERAGE_CACHE", None) if module is not None else None
        if type(cache) is dict:
            self.ids.difference_update(map(id, cache.values()))

    def exclude_hypothesis_runner(self, test: object = None) -> None:
        """Exclude what Hypothesis's runner keeps once per test, for the whole run.

        Its tags per strategy label (``exclude_hypothesis_labels``), and what
        a ``@given`` test's first run makes once, which made every such test
        suspected and rerun (bidict's, at the cost of all its examples again):

        - the module Hypothesis compiles a test's signature into, kept by
          source in ``hypothesis.internal.reflection.eval_cache`` (its name
          starts ``hypothesis_temporary_module_``, and no import made it);
        - the set of recursion limits its stack-frame guard rebinds on every
          run (``junkdrawer._stackframe_limiter._known_limits``);
        - the paths its example database keeps per test key
          (``DirectoryBasedExampleDatabase.keypaths``), under the database's
          directory.  ``test``: the ``@given`` test, whose own settings may
          name a database of their own;
        - each thread's dict of its thread-locals (in its modules, and the
          ``@given`` wrapper's), made on the thread's first use of each, and
          the values in it (``_hypothesis_thread_dicts``).

        Each is recognised exactly, among the candidates: what the test's
        strategies and code hold stays a candidate.
        """
        self.exclude_hypothesis_labels()
        if not self.remaining or "hypothesis.internal.reflection" not in sys.modules:
            return
        self.exclude_reachable(module for module in self.of_types(_is_module_type) if _is_hypothesis_compiled(module))
        # Exactly: the dicts and the values in them, not what the values hold (a
        # ``unittest`` instance kept as ``prev_self`` holds what its test made).
        thread_dicts = _hypothesis_thread_dicts(test)
        self.exclude_exact(thread_dicts)
        self.exclude_exact([value for attrs in thread_dicts for value in attrs.values()])
        thread_dicts.clear()
        junkdrawer = sys.modules.get("hypothesis.internal.conjecture.junkdrawer")
        limits = getattr(getattr(junkdrawer, "_stackframe_limiter", None), "_known_limits", None)
        if type(limits) is set:
            self.exclude_exact([limits])
        del limits
        paths = self.of_types(_is_path_type)
        if paths:
            prefixes = tuple(_hypothesis_database_dirs(test))
            if prefixes:
                self.exclude_reachable(path for path in paths if _path_under(path, prefixes))
        del paths

    def exclude_cancelled_timers(self) -> None:
        """Exclude cancelled asyncio timers, their contexts (exactly: not what the contexts hold), and
        in asyncio's debug mode the record of where each was made.

        ``TimerHandle.cancel()`` drops the callback and its arguments, but the
        loop keeps the handle in its ``_scheduled`` heap until its time comes
        (or until cancelled handles are most of the heap): a server running
        its own loop in another thread (httpx's test server, under uvicorn)
        leaves a cancelled keep-alive timer per connection, for seconds.
        Bounded by its time, and holding nothing but the context it was made
        in; what that context holds stays a candidate.
        """
        events = sys.modules.get("asyncio.events")
        timer = getattr(events, "TimerHandle", None)
        base = getattr(events, "Handle", None)
        if type(timer) is not type or type(base) is not type:
            return
        slots = type_namespace(base)
        cancelled_slot, context_slot = slots.get("_cancelled"), slots.get("_context")
        traceback_slot = slots.get("_source_traceback")
        member = types.MemberDescriptorType
        if type(cancelled_slot) is not member or type(context_slot) is not member:
            return
        done: list[object] = []
        made_at: list[object] = []  # in asyncio's debug mode: where each was made
        for handle in self.of_types(functools.partial(_is_subclass_of, base=timer)):
            try:
                if cancelled_slot.__get__(handle) is True:
                    done.append(handle)
                    context = context_slot.__get__(handle)
                    if type(context) is contextvars.Context:
                        done.append(context)
                    del context
                    if type(traceback_slot) is member:
                        made_at.append(traceback_slot.__get__(handle))
            except Exception:  # a slot never set: not a timer asyncio made
                continue
        self.exclude_exact(done)
        self.exclude_reachable(made_at)  # a StackSummary of FrameSummary: names and line numbers
        done.clear()
        made_at.clear()

    def exclude_context_maps(self) -> None:
        """Exclude the nodes of ``contextvars``' maps (exactly: not what they map to).

        Setting a context variable gives the thread's context a new immutable
        map (a HAMT) and drops the old one: new nodes, held by the context,
        that the next setting replaces.  The values stay candidates, and so
        does any new ``Context`` that holds a map: growth of maps needs one.
        """
        self.exclude_exact(self.of_types(_is_context_map_type))

    def exclude_new_modules(self, modules_before: int) -> None:
        """Exclude modules first imported in the window and what they made at import.

        Only modules registered under their own name: an object stored in
        ``sys.modules`` under a new name on every run is growth like any other.
        """
        if len(sys.modules) > modules_before:
            ids = self.ids
            imported = []
            for name, module in list(sys.modules.items()):
                if id(module) not in ids or type(module) is not types.ModuleType:
                    continue
                namespace = _instance_dict(module)
                if type(namespace) is not dict:
                    continue
                # Made by the import system: its own name, and a spec.
                if plain_str(namespace.get("__name__")) == name and namespace.get("__spec__") is not None:
                    imported.append(module)
                del namespace
            self.exclude_reachable(imported)
            if imported and self.remaining:
                # A class's registry of its subclasses (made when its first subclass
                # is) is not among the class's referents: it is the new class's.
                self.exclude_reachable(
                    registry
                    for registry in self.of_types(_is_dict_type)
                    if (owner := subclass_registry_of(registry)) is not None and id(owner) not in ids
                )

    def identities(self, names: Container[str]) -> Identities:
        """What tells the candidates (of the types ``names`` names, or by type only)
        from later objects at their addresses (``_identity``)."""
        every = self.candidates()
        return identify(self.of_types(lambda tp: type_name(tp) in names), (self._young, every), every)

    def holds(self) -> int:
        """How many times this object's own lists hold each candidate."""
        return 1 if self._candidates is self._young else 2

    def suspect_ids(self) -> set[int]:
        """The candidates' ids, handed over (not copied: call ``clear()`` next)."""
        return self.ids

    def count_suspects(self) -> dict[type, int]:
        # Counted in C (Counter's helper): a million survivors cost one pass.
        counts: dict[type, int] = dict(Counter(map(type, self.candidates())))
        if _PY310 and dict in counts:
            _fold_instance_dicts(self, counts)
        return counts

    def clear(self) -> None:
        self._young = []
        self._candidates = []
        self._ids = set()
        self._types = set()


def import_cache_roots() -> list[object]:
    """What the import system caches per directory and module (its growth is not the test's).

    ``sys.path_importer_cache`` gains a finder for every new directory on
    ``sys.path`` (each ``pytester`` run makes one); CPython's own leak
    hunter (regrtest ``-R``) restores it between runs for the same reason.
    """
    roots: list[object] = list(sys.path_importer_cache.values())
    # Bounded first-use caches of the standard library, which CPython's
    # regrtest -R clears between runs: typing's generic-alias caches,
    # inspect's MRO cache (3.12+), the re module's pattern caches.
    typing_module = sys.modules.get("typing")
    for clear in getattr(typing_module, "_cleanups", ()):
        roots.append(getattr(clear, "__self__", None))
    inspect_module = sys.modules.get("inspect")
    for name in ("_shadowed_dict_from_mro_tuple", "_shadowed_dict_from_weakref_mro_tuple"):
        roots.append(getattr(inspect_module, name, None))
    re_module = sys.modules.get("re")
    roots.append(getattr(re_module, "_cache", None))
    roots.append(getattr(re_module, "_cache2", None))
    # linecache's source lines: code generated at run time registers its text
    # there under a name of its own (attrs, for every class it makes), so a
    # rerun replaces it; regrtest empties it too.  It holds only strings,
    # lists and tuples of them.
    roots.append(getattr(sys.modules.get("linecache"), "cache", None))
    # tempfile's name generator, made on first use (with its own ``Random``): one per process.
    for module_name, attr in (
        ("_strptime", "_regex_cache"),
        ("filecmp", "_cache"),
        ("urllib.parse", "_parse_cache"),
        ("tempfile", "_name_sequence"),
    ):
        roots.append(getattr(sys.modules.get(module_name), attr, None))
    # The caches of modules whose caches regrtest empties (urllib.parse's
    # urlsplit: a dict emptied when full up to 3.10, an lru_cache from 3.11;
    # fnmatch's compiled patterns): bounded, fed strings.
    for module_name in ("urllib.parse", "fnmatch"):
        module = sys.modules.get(module_name)
        namespace = _instance_dict(module) if module is not None else None
        if type(namespace) is dict:
            roots.extend(value for value in namespace.values() if type(value) is _LRU_WRAPPER)
    return [root for root in roots if root is not None]


def _struct_cache() -> dict[object, object] | None:
    """The formats ``struct``'s module functions compiled (emptied when it passes 100): a
    dict in ``_struct``'s module state, which only the gc's view of the module shows."""
    module = sys.modules.get("_struct")
    if module is None:
        return None
    namespace = _instance_dict(module)
    for ref in _get_referents(module):
        if type(ref) is dict and ref is not namespace:
            return ref
    return None


_LRU_WRAPPER = type(functools.lru_cache(maxsize=1)(len))
_STRUCT = struct.Struct


def is_lru_table(obj: object) -> bool:
    """``obj`` is an ``lru_cache``'s table: the dict whose values are its links (C, not
    tracked by the gc), among the wrapper's referents with its ``__dict__`` and results."""
    return (
        type(obj) is dict and bool(obj) and all(_TYPE_NAME.__get__(type(v)) == "_lru_list_elem" for v in obj.values())
    )


def coverage_tracer_roots() -> list[object]:
    """What coverage.py's per-thread C tracers hold (pytest-cov, ``--cov``): the runner's.

    coverage.py gives every new thread a tracer of its own and keeps it in
    its collector's ``tracers`` until measurement stops; a C tracer is not
    tracked by the gc, so the bound methods it holds (the collector's
    ``switch_context``, its data lock's ``acquire``...) have no referrer
    the gc can show.  They are read from the tracers' attributes.  Checked
    against coverage 7.10-7.17 (``Collector._collectors``, ``.tracers``).
    """
    collector_module = sys.modules.get("coverage.collector")
    collectors = getattr(getattr(collector_module, "Collector", None), "_collectors", None)
    if type(collectors) is not list:
        return []
    held: list[object] = []
    for collector in collectors:
        for tracer in getattr(collector, "tracers", ()):
            if gc.is_tracked(tracer):
                continue  # the Python tracer: an internal object, excluded with what it reaches
            for name, descriptor in type_namespace(type(tracer)).items():
                if type(descriptor) is types.MemberDescriptorType:
                    held.append(getattr(tracer, name, None))
    return held


def _belongs_to_runner(obj: object, ids: set[int], runner_owned: Callable[[object], bool]) -> bool:
    """A runner object, a callback bound to one, or a container of nothing but runner objects."""
    tp = type(obj)
    if tp is functools.partial:
        bound = obj.func  # type: ignore[attr-defined]
        return type(bound) is types.MethodType and runner_owned(bound.__self__)
    if tp is types.MethodType:
        return runner_owned(obj.__self__)  # type: ignore[attr-defined]
    if tp in _PLAIN_CONTAINERS:
        held = 0
        for ref in _get_referents(obj):
            if not gc.is_tracked(ref):
                continue
            if id(ref) in ids or not runner_owned(ref):
                return False
            held += 1
        return held > 0
    return runner_owned(obj)


def _fold_instance_dicts(survivors: Survivors, counts: dict[type, int]) -> None:
    """On 3.10 an instance's ``__dict__`` is a separate object: count the instance only."""
    folded = 0
    ids = survivors.ids
    for obj in survivors.candidates():
        tp = type(obj)
        if tp is dict or dict_offset(tp) <= 0 or issubclass(tp, type):
            continue
        for ref in _get_referents(obj):
            if type(ref) is dict and id(ref) in ids:
                ids.discard(id(ref))
                folded += 1
                break
    counts[dict] -= folded
    if counts[dict] <= 0:
        del counts[dict]
