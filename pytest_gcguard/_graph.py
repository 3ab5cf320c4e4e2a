"""objgraph back-reference graphs for leaking tests: ``.dot`` always, ``.png`` and ``.svg`` with Graphviz."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import re
import shutil
import subprocess
import types
from collections.abc import Iterator
from typing import Any

#: Longest file-name stem we write (well under every file system's limit).
MAX_STEM = 80
#: Sources whose edge labels objgraph may compute itself: exact types, whose
#: attribute reads and iteration run no user code.
_PLAIN_SOURCES = (dict, list, tuple, set, frozenset, types.FrameType, types.FunctionType, types.MethodType)


def _node_label(obj: object) -> str:
    """objgraph's node label, computed without running user code longer than a repr's time limit."""
    from ._report import _describe_node, safe_repr

    node: Any = obj
    tp = type(node)
    if issubclass(tp, (type, types.ModuleType)):
        return _describe_node(node)
    if tp is types.FunctionType:
        return str(node.__qualname__)
    if tp is types.MethodType:
        return f"{_node_label(node.__func__)} (bound)"
    if tp is types.FrameType:
        return f"{node.f_code.co_filename}:{node.f_lineno}"
    if tp in (tuple, list, dict, set, frozenset):
        return f"{len(node)} items"
    return safe_repr(node)[:40]


@contextlib.contextmanager
def _safe_labels(objgraph: Any) -> Iterator[None]:
    """objgraph labels nodes with ``repr()`` and edges by iterating the source,
    with no time limit and through a subclass's own ``items()``: while a graph is
    drawn, its two label functions are ours (and given back after)."""
    short_repr, edge_label = objgraph._short_repr, objgraph._edge_label

    def safe_edge_label(source: object, target: object, shortnames: bool = True) -> str:
        if type(source) in _PLAIN_SOURCES:
            return str(edge_label(source, target, shortnames))
        return ""

    objgraph._short_repr, objgraph._edge_label = _node_label, safe_edge_label
    try:
        yield
    finally:
        objgraph._short_repr, objgraph._edge_label = short_repr, edge_label


def safe_stem(nodeid: str) -> str:
    """A short file-name stem from a test id, safe on every file system.

    Example::

        >>> safe_stem("tests/test_a.py::test_b[x/y]")
        'tests_test_a.py_test_b_x_y-e1db60bbea'
    """
    digest = hashlib.sha1(nodeid.encode("utf-8", "surrogateescape")).hexdigest()[:10]
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", nodeid).strip("._") or "test"
    return f"{stem[: MAX_STEM - 11]}-{digest}"


def write_graph(
    objs: list[object],
    chains: list[list[object]],
    directory: str,
    nodeid: str,
    ignore: set[int],
) -> tuple[list[str], str]:
    """Draw why ``objs`` are alive; return (paths written, warning or "").

    With reference chains found, the graph is those chains (objgraph
    ``show_chain``), leaked objects highlighted; otherwise a shallow
    back-reference graph (``show_backrefs``).  A ``.dot`` file is always
    written; a ``.png`` too when Graphviz's ``dot`` is installed.
    """
    import objgraph

    if not objs:
        return [], ""
    stem = os.path.join(directory, safe_stem(nodeid))
    dot_path = stem + ".dot"
    leaked = {id(o) for o in objs}
    try:
        os.makedirs(directory, exist_ok=True)
        with (
            open(os.devnull, "w") as quiet,
            contextlib.redirect_stdout(quiet),  # objgraph prints a line
            _safe_labels(objgraph),
        ):
            if chains:
                objgraph.show_chain(
                    *chains,
                    filename=dot_path,
                    highlight=lambda o: id(o) in leaked,
                    shortnames=False,
                )
            else:
                objgraph.show_backrefs(
                    objs,
                    max_depth=3,
                    extra_ignore=tuple(ignore),
                    filter=lambda o: type(o) is not types.FrameType,
                    too_many=8,
                    filename=dot_path,
                    shortnames=False,
                )
        if chains:
            _connect_chains(dot_path, chains)
    except OSError as exc:
        return [], f"gcguard could not write a graph to {directory!r}: {exc}"
    except Exception as exc:  # objgraph calls reprs; a hostile object must not break the run
        return [], f"gcguard could not draw a graph for {nodeid}: {type(exc).__name__}: {exc}"
    paths = [dot_path]
    dot = shutil.which("dot")
    if dot is None:
        return paths, ""
    for image in ("png", "svg"):  # svg: opens in a browser, and the HTML report shows it inline
        image_path = f"{stem}.{image}"
        try:
            subprocess.run([dot, f"-T{image}", dot_path, "-o", image_path], check=True, capture_output=True, timeout=60)
        except (OSError, subprocess.SubprocessError) as exc:
            return paths, f"gcguard could not render {dot_path} with Graphviz: {exc}"
        paths.append(image_path)
    return paths, ""


def _connect_chains(dot_path: str, chains: list[list[object]]) -> None:
    """Draw the chains' steps that objgraph could not see (dashed).

    objgraph draws an edge where ``gc.get_referrers`` shows one; an instance
    does not show its own ``__dict__`` as a referent on 3.11+ (it keeps its
    attributes inline), so a leaked dict would float with no edge from its
    owner.  The chain search knows the step: it is added to the graph.
    """
    from ._report import _edge

    with open(dot_path, encoding="utf-8") as handle:
        text = handle.read()
    drawn = set(re.findall(r"(o\d+) -> (o\d+)", text))
    extra = []
    for chain in chains:
        for holder, held in itertools.pairwise(chain):
            pair = (f"o{id(holder)}", f"o{id(held)}")
            if pair in drawn or f"{pair[0]}[" not in text or f"{pair[1]}[" not in text:
                continue
            drawn.add(pair)
            label = _edge(holder, held).strip(".").replace("\\", "\\\\").replace('"', '\\"')
            extra.append(f'  {pair[0]} -> {pair[1]} [label="{label}", style=dashed];\n')
    if extra:
        end = text.rstrip().rfind("}")
        with open(dot_path, "w", encoding="utf-8") as handle:
            handle.write(text[:end] + "".join(extra) + text[end:])


def remove_graphs(paths: list[str]) -> None:
    """Delete graph files written for growth that was then set aside (no leak: no graph)."""
    for path in paths:
        with contextlib.suppress(OSError):
            os.remove(path)
    paths.clear()


def render_hint(paths: list[str]) -> str:
    """How to render a ``.dot`` file later when Graphviz was not installed."""
    dots = [p for p in paths if p.endswith(".dot")]
    if not dots or any(p.endswith(".png") for p in paths):
        return ""
    return f"Graphviz 'dot' not found; render later with: dot -Tpng {dots[0]} -o {dots[0][:-4]}.png"
