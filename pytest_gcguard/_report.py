"""Turning a verdict into text: safe reprs, why-alive chains, failure messages.

Nothing here keeps a reference to a reported object once the text is built.
"""

from __future__ import annotations

import functools
import re
import reprlib
import signal
import sys
import threading
import types
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import compress, count, islice, repeat
from operator import is_
from typing import Any

from . import _kinds
from ._heap import (
    _get_referents,
    dict_offset,
    registered_class,
    subclass_registry_of,
    type_mro,
    type_name,
    type_namespace,
)

#: Every gcguard failure message starts with this (tests match on it).
PREFIX = "gcguard:"
REPR_LIMIT = 120
REPR_SECONDS = 0.25
#: Levels of referrers a why-alive search goes up from a sample to the first older
#: object.  Each level past the first few costs a pass only for a search still going:
#: one through new objects alone (what a Hypothesis strategy that a cache keeps builds:
#: 17 levels in cattrs' suite, from a list in an ``IntervalSet`` up to the cache, on
#: 3.11; twice as many on 3.10, where each object's ``__dict__`` is a level of its own).
CHAIN_DEPTH = 40

_MODULE_DICT: Any = vars(types.ModuleType)["__dict__"]
_SAFE_BUILTINS = (int, float, complex, bool, str, bytes, type(None), range)
_CONTAINERS = (list, tuple, dict, set, frozenset)


class _Repr(reprlib.Repr):
    def __init__(self) -> None:
        super().__init__()
        self.maxlevel = 2
        self.maxlist = self.maxtuple = self.maxset = self.maxfrozenset = self.maxdict = 4
        self.maxstring = 40
        self.maxother = REPR_LIMIT

    def repr1(self, x: object, level: int) -> str:
        tp = type(x)
        if tp in _CONTAINERS or tp in _SAFE_BUILTINS:
            return super().repr1(x, level)
        return short_repr(x)


_reprs = _Repr()


def default_repr(obj: object) -> str:
    return f"<{type_name(type(obj))} object at {id(obj):#x}>"


class _ReprTimeout(Exception):
    pass


def _on_alarm(signum: int, frame: object) -> None:
    raise _ReprTimeout


@contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Interrupt a slow ``__repr__`` (main thread, platforms with SIGALRM).

    Does nothing when another tool (pytest-timeout, say) already owns SIGALRM.
    """
    usable = (
        hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, signal.SIG_IGN, None)
        and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    )
    if not usable:
        yield
        return
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def short_repr(obj: object) -> str:
    """``repr(obj)``, cut to REPR_LIMIT characters, never raising or stalling.

    A repr that raises, recurses or takes longer than REPR_SECONDS gives
    ``<Type object at 0x..>`` instead.
    """
    try:
        with _time_limit(REPR_SECONDS):
            text = repr(obj)
    except _ReprTimeout:
        return default_repr(obj) + f" (repr took over {REPR_SECONDS}s)"
    except BaseException as exc:  # a hostile __repr__ must never break the run
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        return default_repr(obj) + f" (repr raised {type(exc).__name__})"
    if len(text) > REPR_LIMIT:
        text = text[: REPR_LIMIT - 3] + "..."
    return text.replace("\n", "\\n")


def safe_repr(obj: object) -> str:
    """Repr for a leaked object: containers shown shallowly, others via short_repr."""
    if type(obj) in _CONTAINERS:
        try:
            return _reprs.repr(obj)
        except Exception:
            return default_repr(obj)
    if type(obj) is types.FunctionType:
        return f"<function {obj.__qualname__}>"
    return short_repr(obj)


def _module_dict(module: object) -> Any:
    # vars() would call a hostile __getattribute__; this reads the slot.
    return _MODULE_DICT.__get__(module)


def _describe_node(node: object) -> str:
    obj: Any = node  # only exact types are trusted below
    tp = type(obj)
    if issubclass(tp, types.ModuleType):
        return f"module {_module_dict(obj).get('__name__', '?')}"
    if issubclass(tp, type):
        return f"class {type_name(obj)}"
    if tp is types.FunctionType:
        return f"function {obj.__module__}.{obj.__qualname__}"
    return type_name(tp)


def _edge(node: object, child: object) -> str:
    """How ``node`` refers to ``child``: ``.attr``, ``[key]``, ``[3]``, ...

    Containers are read through their base type's methods (``dict.items``,
    ``list.__iter__``), never a subclass's own code, which may lie or sleep.
    """
    tp = type(node)
    try:
        if issubclass(tp, type) and type(child) is dict and subclass_registry_of(child) is node:
            return ".__subclasses__()"
        if issubclass(tp, type):
            if registered_class(child) is node:
                return "its weak reference in its bases' __subclasses__()"
            # type's own descriptors: a metaclass's may lie or raise.
            for name in ("__mro__", "__bases__", "__base__"):
                if type.__dict__[name].__get__(node) is child:
                    return f".{name}"
        if child is tp:  # an instance refers to its (heap) class
            return ".__class__"
        for base, edge in _EDGES:
            if issubclass(tp, base):
                return edge(node, child)
        return _attribute_edge(node, child)
    except Exception:
        return ""


def _position(values: Iterator[object], child: object) -> int:
    """Index of ``child`` (by identity) in ``values``, found in C; -1 if absent."""
    return next(compress(count(), map(is_, values, repeat(child))), -1)


_MISSING = object()


def _key_of(mapping: dict[Any, object], child: object) -> object:
    """The key under which ``mapping`` holds ``child`` (by identity), or ``_MISSING``."""
    index = _position(iter(dict.values(mapping)), child)
    return _MISSING if index < 0 else next(islice(dict.keys(mapping), index, None))


def _dict_edge(node: Any, child: object) -> str:
    key = _key_of(node, child)
    if key is not _MISSING:
        return f"[{_reprs.repr(key)}]"
    return "a key" if _position(iter(dict.keys(node)), child) >= 0 else ""


def _sequence_edge(node: Any, child: object) -> str:
    index = _position(tuple.__iter__(node) if issubclass(type(node), tuple) else list.__iter__(node), child)
    return f"[{index}]" if index >= 0 else ""


def _method_edge(node: Any, child: object) -> str:
    if node.__self__ is child:
        return ".__self__"
    return ".__func__" if node.__func__ is child else ""


def _function_edge(node: Any, child: object) -> str:
    for name in ("__closure__", "__defaults__", "__kwdefaults__", "__globals__", "__dict__"):
        if getattr(node, name, None) is child:
            return "." + name
    return ""


def _module_edge(node: Any, child: object) -> str:
    key = _key_of(_module_dict(node), child)
    return "" if key is _MISSING else f".{key}"


def _attribute_edge(node: Any, child: object) -> str:
    attrs = _instance_dict(node)
    if attrs is not None:
        key = _key_of(attrs, child)
        if key is not _MISSING:
            return f".{key}"
        if attrs is child:
            return ".__dict__"
    for slot in _slots(type(node)):
        try:
            if object.__getattribute__(node, slot) is child:
                return f".{slot}"
        except AttributeError:
            continue
    return ""


#: How to name an edge, by the referrer's (base) type, first match wins.
_EDGES: tuple[tuple[type | tuple[type, ...], Callable[[Any, object], str]], ...] = (
    (dict, _dict_edge),
    ((list, tuple), _sequence_edge),
    (types.CellType, lambda node, child: ".cell_contents"),
    (types.MethodType, _method_edge),
    (types.FunctionType, _function_edge),
    (types.ModuleType, _module_edge),
    # functools.lru_cache's C wrapper: its cache dict is not an attribute.
    (type(functools.lru_cache(maxsize=1)(len)), lambda node, child: ".<cache>" if type(child) is dict else ""),
)


def _instance_dict(node: object) -> dict[str, object] | None:
    obj: Any = node
    if issubclass(type(obj), type):
        return type_namespace(obj)
    if dict_offset(type(obj)) == 0:
        return None
    try:
        attrs = object.__getattribute__(obj, "__dict__")
    except Exception:
        return None
    return attrs if type(attrs) is dict else None


def _slots(tp: type) -> list[str]:
    names: list[str] = []
    for klass in type_mro(tp):
        slots = type_namespace(klass).get("__slots__", ())
        if isinstance(slots, str):
            slots = (slots,)
        if type(slots) in (tuple, list):  # anything else is not iterated: it might run user code
            names.extend(s for s in slots if type(s) is str)  # type: ignore[attr-defined]
    return names


def format_chain(chain: Sequence[object]) -> str:
    """``module tests.test_api -> _REGISTRY (list) [3] -> Widget``.

    Dicts that are a module's, class's or instance's namespace are folded into
    the attribute step (``module m -> .NAME``), as a reader thinks of them.
    """
    parts: list[str] = []
    i = 0
    while i < len(chain):
        node = chain[i]
        if i == 0:
            parts.append(_describe_node(node))
        nxt = chain[i + 1] if i + 1 < len(chain) else None
        if nxt is None:
            break
        if type(nxt) is dict and i + 2 < len(chain) and _is_namespace_of(nxt, node):
            target = chain[i + 2]
            edge = _edge(nxt, target)
            name = edge[2:-2] if edge.startswith("['") and edge.endswith("']") else edge
            parts.append(f"{name.lstrip('.')} ({_describe_node(target)})" if name else _describe_node(target))
            i += 2
            continue
        edge = _edge(node, nxt)
        parts.append(
            f"{edge.lstrip('.') or '?'} ({_describe_node(nxt)})"
            if not edge.startswith("[")
            else f"{edge} {_describe_node(nxt)}"
        )
        i += 1
    return " -> ".join(parts)


def _is_namespace_of(d: dict[str, object], node: object) -> bool:
    owner: Any = node
    tp = type(owner)
    if issubclass(tp, types.ModuleType):
        return bool(_module_dict(owner) is d)
    if tp is types.FunctionType:
        return bool(owner.__globals__ is d or owner.__dict__ is d)
    if issubclass(tp, type):  # a class's namespace is a mappingproxy over its dict
        return any(ref is d for ref in _get_referents(owner))
    # An instance's own __dict__ (from 3.11 its referents are its attribute
    # values, so a dict held in an attribute must not pass for its namespace).
    return _instance_dict(owner) is d


@dataclass
class Leak:
    """One leaked type in a report (text only)."""

    name: str
    count: int
    growth: list[int] = field(default_factory=list)
    samples: list[str] = field(default_factory=list)
    chain: str = ""
    allocated: list[str] = field(default_factory=list)
    #: Where the chain's old part ends: from a module or class to the last object
    #: that existed before the test (the holder), e.g. ``module app -> REGISTRY (list)``.
    root: str = ""


def root_text(chain: Sequence[object], holder: int) -> str:
    """The chain from its module or class to ``chain[holder]``, the last pre-existing object.

    A namespace dict at the end is folded into its owner: a new attribute of
    a module is held via ``module m``, not via its ``__dict__``.
    """
    end = holder + 1
    last = chain[end - 1]
    if end >= 2 and type(last) is dict and type(chain[end - 2]) is not dict and _is_namespace_of(last, chain[end - 2]):
        end -= 1
    return format_chain(chain[:end])


def roots_of(leaks: Sequence[Leak]) -> list[tuple[str, list[Leak]]]:
    """The leaks grouped by where they are held, the root holding most objects first.

    Weak references count last: they are bookkeeping about other objects (a
    ``WeakSet`` of all tasks), not what a reader looks for.
    """
    groups: dict[str, list[Leak]] = {}
    for leak in leaks:
        if leak.root:
            groups.setdefault(leak.root, []).append(leak)
    return sorted(groups.items(), key=_root_weight)


def _root_weight(item: tuple[str, list[Leak]]) -> tuple[int, int]:
    held = item[1]
    strong = sum(leak.count for leak in held if not leak.name.startswith("weakref."))
    return -strong, -sum(leak.count for leak in held)


#: How a suspected test's confirmation ended (the record's ``suspicion.cause``).
SUSPICION_CAUSES = {
    "first use": "the growth was not repeated by a rerun (a cache or table filled once)",
    "bounded cache": "repeated growth held only by a cache that declares its bound",
    "replacing": "repeated growth while as many older objects were freed (a cache at capacity)",
    "replaced": "growth that replaced the value of a slot tests rebind, whose old value died (no rerun)",
    "hypothesis": "growth held only by Hypothesis's bounded strategy cache and strategies it builds once (no rerun)",
    "leak": "repeated growth, reported",
    "cycles": "reference cycles made in the first run only, or repeated and reported",
    "not confirmed": "a rerun failed, so the test was not judged",
}
#: The first run's suspects kept in a record, most numerous first.
FIRST_RUN_TYPES = 5


@dataclass
class Verdict:
    """Everything gcguard found for one test, as text and numbers."""

    nodeid: str
    leaks: list[Leak] = field(default_factory=list)
    uncollectable: dict[str, int] = field(default_factory=dict)
    cyclic: int = 0
    cyclic_types: dict[str, int] = field(default_factory=dict)
    cycle_chain: str = ""
    notes: list[str] = field(default_factory=list)
    confirmed_by: int = 0
    reruns: int = 0
    unconfirmed: str = ""
    #: Confirmed growth not reported because it only fed a bounded cache: why, and the types.
    set_aside_reason: str = ""
    set_aside: dict[str, int] = field(default_factory=dict)
    #: Refs mode: growth of memory blocks / references in each measured run.
    blocks: list[int] = field(default_factory=list)
    references: list[int] = field(default_factory=list)
    graphs: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: What the reruns and the diagnosis took (for the report only: no verdict reads them).
    rerun_seconds: float = 0.0
    diagnosis_seconds: float = 0.0
    #: Why the test was suspected and how the suspicion ended (``SUSPICION_CAUSES``),
    #: and the first run's most numerous suspects: what suspicion costs, per cause.
    suspicion: str = ""
    first_run: dict[str, int] = field(default_factory=dict)
    #: Wording for a checked block (``_block``) instead of a test: what it
    #: outlived, and what repeated it.
    after: str = "teardown"
    repeats: str = "rerun(s) of the test"
    growth_label: str = "reruns"

    @property
    def blocks_leaked(self) -> int:
        """Memory blocks lost per run (0 unless every measured run grew)."""
        return min(self.blocks) if self.blocks and min(self.blocks) >= 1 else 0

    @property
    def references_leaked(self) -> int:
        """References lost per run (debug builds; 0 unless every measured run grew)."""
        return min(self.references) if self.references and min(self.references) >= 1 else 0

    @property
    def failed(self) -> bool:
        return bool(_kinds.found(self))

    def headline(self) -> str:
        parts = [kind.headline(n) for kind, n in _kinds.found(self)]
        return f"{PREFIX} {self.nodeid}: " + ", ".join(parts)

    def _leak_lines(self) -> list[str]:
        """The leaked part of the message: where the leaks are held, then each type."""
        if self.confirmed_by:
            lines = [
                f"  leaked (still alive after {self.after} and a full collection; the same growth "
                f"repeated in {self.confirmed_by} {self.repeats}):"
            ]
        else:
            once = "not rerun" if self.growth_label == "reruns" else "run once"
            lines = [f"  leaked (still alive after {self.after} and a full collection; {once}):"]
        for root, held in roots_of(self.leaks):
            total = sum(leak.count for leak in held)
            kinds = ", ".join(f"{leak.name} x{leak.count}" for leak in held)
            lines.append(f"    {total} object(s) held via {root}: {kinds}")
        for leak in self.leaks:
            growth = f"  ({self.growth_label}: {', '.join(f'+{g}' for g in leak.growth)})" if leak.growth else ""
            lines.append(f"    {leak.name} x{leak.count}{growth}")
            lines.extend(f"        {sample}" for sample in leak.samples)
            if leak.chain:
                lines.append(f"        why alive: {leak.chain}")
            if leak.allocated:
                lines.append(f"        allocated at: {leak.allocated[0]}")
                lines.extend(f"            from {frame}" for frame in leak.allocated[1:])
        return lines

    def message(self) -> str:
        lines = [self.headline()]
        if self.leaks:
            lines.extend(self._leak_lines())
        if self.uncollectable:
            lines.append("  uncollectable (new entries in gc.garbage):")
            lines.extend(f"    {name} x{count}" for name, count in sorted(self.uncollectable.items()))
        if self.cyclic:
            lines.append(f"  reference cycles (objects only the cyclic GC could free): {self.cyclic}")
            lines.extend(
                f"    {name} x{count}" for name, count in sorted(self.cyclic_types.items(), key=lambda kv: -kv[1])[:10]
            )
            if self.cycle_chain:
                lines.append(f"    one cycle: {self.cycle_chain}")
        if self.blocks_leaked or self.references_leaked:
            runs = len(self.blocks)
            lines.append(
                f"  memory the gc does not track grew in each of {runs} measured run(s) of the test "
                "(str, int, bytes, C-extension allocations and references):"
            )
            if self.blocks_leaked:
                deltas = ", ".join(f"{d:+d}" for d in self.blocks)
                lines.append(f"    memory blocks (sys.getallocatedblocks): {deltas}")
            if self.references_leaked:
                deltas = ", ".join(f"{d:+d}" for d in self.references)
                lines.append(f"    references (sys.gettotalrefcount, debug build): {deltas}")
        for note in self.notes:
            lines.append(f"  note: {note}")
        for path in self.graphs:
            lines.append(f"  graph: {path}")
        return "\n".join(lines)

    def summary_line(self) -> str:
        return f"{self.nodeid}: " + "; ".join(kind.summary(self) for kind, _ in _kinds.found(self))


_RUNNER_PATH = re.compile(r"[/\\\\](_pytest|pluggy|pytest_gcguard)[/\\\\]")


def allocation_site(obj: object, frames: int = 4) -> list[str]:
    """Where tracemalloc saw ``obj`` allocated: innermost ``file:line`` first."""
    import tracemalloc

    traceback = tracemalloc.get_object_traceback(obj)
    if traceback is None:
        if sys.version_info[:2] == (3, 11) and dict_offset(type(obj)) < 0:
            # CPython 3.11's tracemalloc misses the managed-dict preheader (fixed in 3.12).
            return ["unknown: tracemalloc on Python 3.11 cannot locate instances of classes with a __dict__"]
        return ["unknown: allocated before tracing started"]
    sites = []
    for frame in reversed(list(traceback)):  # innermost first
        if _RUNNER_PATH.search(frame.filename):
            continue  # the test runner's frames say nothing about the leak
        sites.append(f"{frame.filename}:{frame.lineno}")
    return sites[:frames]


def cycle_text(path: list[object]) -> str:
    """One reference cycle as a chain: ``Node -> other (Node) -> other (Node)``."""
    if len(path) < 2:
        return ""
    return format_chain(path)


def unreferenced_note() -> str:
    return (
        "no referrer found: nothing the gc tracks refers to it, so it is held by an object the gc does not "
        "track (some C types do not) or by a reference count raised without a referrer (a C-extension leak)"
    )
