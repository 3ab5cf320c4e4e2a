"""The HTML report (``--gcguard-html=PATH``): one self-contained file, no network.

The page is built in the browser from the run's JSON document, embedded in the
file: a table of the tests gcguard had something to say about (leaking,
cycles, uncollectable, set aside, not judged), sortable and filterable, shown a
page at a time so that thousands of leaking tests stay usable; details (roots,
types, samples, chains, allocation sites, the retainer graph) are drawn only
when a row is opened.  Every piece of test-controlled text goes into the page
through ``textContent``, never as markup; a graph is shown as an ``<img>`` of
its SVG (an image runs no script).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from . import _records

#: Graph files larger than this are not embedded (the page says where the file is).
MAX_EMBEDDED_GRAPH = 2_000_000


def _graph_of(record: Mapping[str, Any], base: Path) -> dict[str, str]:
    """The test's graph for the page: an SVG as a data URL, else the DOT text, else nothing."""
    paths = [Path(p) if Path(p).is_absolute() else base / p for p in record.get("graphs") or ()]
    for path in paths:
        if path.suffix == ".svg":
            try:
                data = path.read_bytes()
            except OSError:
                continue
            if len(data) <= MAX_EMBEDDED_GRAPH:
                return {"svg": "data:image/svg+xml;base64," + base64.b64encode(data).decode("ascii")}
            return {"note": f"graph too large to embed ({len(data)} bytes): {path}"}
    for path in paths:
        if path.suffix == ".dot":
            try:
                text = path.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            if len(text) <= MAX_EMBEDDED_GRAPH:
                return {
                    "dot": text,
                    "note": "Graphviz was not installed when the graph was written: its DOT text "
                    f"follows (render it with: dot -Tsvg {path} -o graph.svg)",
                }
    return {}


def _noteworthy(record: Mapping[str, Any]) -> bool:
    return record["verdict"] != "clean" or bool(record.get("set_aside"))


def page_data(document: Mapping[str, Any], base: Path) -> dict[str, Any]:
    """What the page shows: settings, totals, the noteworthy tests and the shared roots."""
    tests = [dict(record) for record in document["tests"] if _noteworthy(record)]
    for record in tests:
        record["graph"] = _graph_of(record, base)
    records = {record["nodeid"]: record for record in tests}
    roots = [
        {"root": root, "tests": nodeids, "types": types} for root, nodeids, types in _records.shared_roots(records)
    ]
    return {
        "plugin": document["plugin"],
        "version": document["version"],
        "settings": document["settings"],
        "totals": document["totals"],
        "checked": len(document["tests"]),
        "tests": tests,
        "roots": roots,
        "stale": document.get("stale_baseline_entries") or {},
    }


def render(document: Mapping[str, Any], base: Path) -> str:
    """The whole page, with the run's data embedded as JSON."""
    data = json.dumps(page_data(document, base), separators=(",", ":"), sort_keys=True)
    data = data.replace("<", "\\u003c")  # only inside strings: no ``</script>`` or ``<!--`` can end the data
    page = resources.files("pytest_gcguard").joinpath("report.html").read_text(encoding="utf-8")
    return page.replace("/*DATA*/", data)
