"""Why is it alive?  Sample reprs, back-reference chains and graphs for a verdict.

Runs only for a test that is being reported.  The heap is unfrozen first:
``gc.get_referrers`` (and so objgraph) cannot see frozen referrers.
"""

from __future__ import annotations

import gc
import sys
import types
from collections.abc import Callable, Sequence

from . import _graph
from ._report import (
    CHAIN_DEPTH,
    Verdict,
    allocation_site,
    format_chain,
    safe_repr,
    subclass_registry_of,
    unreferenced_note,
)
from ._settings import Settings
from ._snapshot import _freeze, _unfreeze, type_name

#: Chains are searched for at most this many leaked types per test.
MAX_CHAINS = 5
#: Referrers followed per level of a chain search: a class or a shared dict
#: can have thousands, and each level costs one pass over the heap per 100.
MAX_FRONTIER = 200


def _is_root(obj: object) -> bool:
    return issubclass(type(obj), (types.ModuleType, type))


def backref_chain(
    target: object, predicate: Callable[[object], bool], max_depth: int, ignore: set[int]
) -> list[object]:
    """A shortest chain of references from an object matching ``predicate`` to ``target``.

    objgraph's ``find_backref_chain`` finds the same chain, but runs a full
    collection and one ``gc.get_referrers`` call (a pass over the whole heap)
    per object it visits: minutes per test on a large heap.  This asks for the
    referrers of a whole level at once: one pass per level (``max_depth`` at
    most), with the level cut to ``MAX_FRONTIER`` objects.  Returns
    ``[target]`` when nothing matches within ``max_depth`` levels.
    """
    parent: dict[int, object] = {id(target): None}
    frontier: list[object] = [target]
    ours = {id(parent), id(frontier), id(sys._getframe())}  # 3.10: a frame is a referrer
    for _ in range(max_depth):
        ours.add(id(frontier))
        referrers = gc.get_referrers(*frontier)
        ours.add(id(referrers))
        by_id = {id(obj): obj for obj in frontier}
        ours.add(id(by_id))
        following: list[object] = []
        ours.add(id(following))
        found: object = None
        for ref in referrers:
            key = id(ref)
            if key in parent or key in ignore or key in ours:
                continue
            child = next((by_id[id(r)] for r in gc.get_referents(ref) if id(r) in by_id), None)
            if child is None:
                continue
            parent[key] = child
            if predicate(ref):
                found = ref
                break
            if len(following) < MAX_FRONTIER:
                following.append(ref)
        del referrers, by_id
        if found is not None:
            chain = [found]
            node = parent[id(found)]
            while node is not None:
                chain.append(node)
                node = parent[id(node)]
            del found, node
            parent.clear()
            return chain
        frontier = following
        if not frontier:
            break
    parent.clear()
    return [target]


def explain(
    verdict: Verdict, samples: Sequence[list[object]], settings: Settings, nodeid: str, chains_wanted: bool = True
) -> None:
    """Fill in samples, why-alive chains and graph paths for ``verdict.leaks``.

    ``chains_wanted=False`` leaves the chains out (the run's budget for them is spent).
    """
    objs = gc.get_objects()
    young = {id(o) for o in objs}
    del objs
    ignore: set[int] = {id(samples), id(young)}
    ignore.update(id(s) for s in samples)
    frame: types.FrameType | None = sys._getframe()
    while frame is not None:
        ignore.add(id(frame))
        frame = frame.f_back
    del frame

    def pre_existing(obj: object) -> bool:
        return id(obj) not in young and type(obj) is not types.FrameType

    chains: list[list[object]] = []  # the found paths, drawn as the graph
    ignore.add(id(chains))
    _unfreeze()
    try:
        for index, (leak, objs_of_type) in enumerate(zip(verdict.leaks, samples, strict=False)):
            leak.samples = [safe_repr(o) for o in objs_of_type]
            if settings.trace and objs_of_type:
                leak.allocated = allocation_site(objs_of_type[0])
            if not objs_of_type or index >= MAX_CHAINS or not chains_wanted:
                continue
            target = objs_of_type[0]
            chain = backref_chain(target, pre_existing, CHAIN_DEPTH, ignore)
            if len(chain) == 1:
                ignore.add(id(chain))
                referrers = [r for r in gc.get_referrers(target) if id(r) not in ignore]
                ignore.discard(id(chain))
                has_referrer = any(type(r) is not types.FrameType for r in referrers)
                del referrers
                owner = None if has_referrer else subclass_registry_of(target)
                if owner is not None:
                    leak.chain = (
                        f"the registry of subclasses of {type_name(owner)} (type.__subclasses__(), "
                        "not shown to the gc): that class keeps it, and lives as long as it"
                    )
                elif has_referrer:
                    leak.chain = (
                        f"no pre-existing object reaches it within {CHAIN_DEPTH} steps "
                        "(it is kept by other new objects)"
                    )
                else:
                    leak.chain = unreferenced_note()
                del owner
            else:
                if not _is_root(chain[0]):
                    ignore.add(id(chain))
                    upward = backref_chain(chain[0], _is_root, 8, ignore)
                    ignore.discard(id(chain))
                    if len(upward) > 1:
                        chain = upward[:-1] + chain
                    del upward
                leak.chain = format_chain(chain)
                ignore.add(id(chain))
                chains.append(chain)
            del chain, target
        if settings.graph_dir:
            flat = [o for objs_of_type in samples for o in objs_of_type[:1]]
            ignore.add(id(flat))
            paths, note = _graph.write_graph(flat, chains, settings.graph_dir, nodeid, ignore)
            del flat
            verdict.graphs.extend(paths)
            hint = _graph.render_hint(paths)
            if hint:
                verdict.notes.append(hint)
            if note:
                verdict.warnings.append(note)
    finally:
        chains.clear()
        del pre_existing
        _freeze()
