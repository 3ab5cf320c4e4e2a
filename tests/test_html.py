"""The HTML report (``--gcguard-html``): its content, parsed, and the page in a real headless browser."""

from __future__ import annotations

import json
import os
import shutil
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

SUITE = """
import functools, itertools
import pytest

REGISTRY = []
FRESH = itertools.count()

class Subscriber:
    pass

class Entry:
    pass

@functools.lru_cache(maxsize=64)
def lookup(key):
    return Entry()

def test_clean():
    assert [1, 2]

def test_subscribes():
    REGISTRY.append(Subscriber())

def test_subscribes_twice():
    REGISTRY.extend([Subscriber(), Subscriber()])

def test_fills_a_bounded_cache():
    lookup(next(FRESH))

def test_skipped():
    pytest.skip("not today")
"""


class _Page(HTMLParser):
    """The tags and attributes of a page, and its embedded data."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.data = ""
        self._in_data = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_data = tag == "script" and dict(attrs).get("id") == "gcguard-data"

    def handle_endtag(self, tag: str) -> None:
        self._in_data = False

    def handle_data(self, data: str) -> None:
        if self._in_data:
            self.data += data


def parse(path: Path) -> tuple[_Page, dict[str, Any]]:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page, json.loads(page.data)


def test_html_report_lists_the_noteworthy_tests_with_roots_and_graphs(tester: pytest.Pytester) -> None:
    tester.makepyfile(test_suite=SUITE)
    result = tester.runpytest_subprocess(
        "--gcguard", "--gcguard-html=out/report.html", "--gcguard-graph-dir=graphs", "-p", "no:randomly"
    )
    result.assert_outcomes(passed=4, skipped=1, errors=2)
    result.stdout.fnmatch_lines(["HTML report: *out*report.html"])
    page, data = parse(tester.path / "out" / "report.html")
    # Self-contained: no external script, style, image or font; a policy that forbids loading any.
    for tag, attrs in page.tags:
        for name in ("src", "href"):
            assert not (attrs.get(name) or "").startswith(("http:", "https:", "//")), (tag, attrs)
    metas = [attrs for tag, attrs in page.tags if tag == "meta"]
    policy = next(meta["content"] for meta in metas if meta.get("http-equiv") == "Content-Security-Policy")
    assert "default-src 'none'" in (policy or "")
    assert data["checked"] == 5
    assert data["settings"]["reruns"] == 2
    rows = {t["nodeid"].rpartition("::")[2]: t for t in data["tests"]}
    # Clean tests are counted, not listed; leaking, set-aside and not-judged tests are.
    assert set(rows) == {"test_subscribes", "test_subscribes_twice", "test_fills_a_bounded_cache", "test_skipped"}
    assert rows["test_subscribes_twice"]["leaked"][0]["count"] == 2
    assert rows["test_subscribes"]["leaked"][0]["root"] == "module test_suite -> REGISTRY (list)"
    assert rows["test_fills_a_bounded_cache"]["set_aside"]["types"] == {"test_suite.Entry": 1}
    assert rows["test_fills_a_bounded_cache"]["graph"] == {}  # set aside: no graph
    assert rows["test_skipped"]["reason"] == "not judged: the test skipped"
    # Tests sharing a root are grouped.
    assert data["roots"] == [
        {
            "root": "module test_suite -> REGISTRY (list)",
            "tests": ["test_suite.py::test_subscribes", "test_suite.py::test_subscribes_twice"],
            "types": {"test_suite.Subscriber": 3},
        }
    ]
    graph = rows["test_subscribes"]["graph"]
    if shutil.which("dot"):
        assert graph["svg"].startswith("data:image/svg+xml;base64,")
    else:  # pragma: no cover - CI installs Graphviz
        assert "digraph" in graph["dot"]


def test_html_report_escapes_what_tests_control(tester: pytest.Pytester) -> None:
    """A sample repr that looks like markup stays text: the embedded data cannot end its script."""
    tester.makepyfile(
        """
        KEEP = []

        class Evil:
            def __repr__(self):
                return "</script><script>document.title='pwned'</script><!--"

        def test_evil():
            KEEP.append(Evil())
        """
    )
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-html=report.html")
    result.assert_outcomes(passed=1, errors=1)
    text = (tester.path / "report.html").read_text(encoding="utf-8")
    assert "</script><script>document.title" not in text
    page, data = parse(tester.path / "report.html")
    assert sum(1 for tag, _ in page.tags if tag == "script") == 2  # the data and the page's own
    (test,) = data["tests"]
    assert test["leaked"][0]["samples"] == ["</script><script>document.title='pwned'</script><!--"]


def test_html_path_that_is_a_directory_is_a_usage_error(tester: pytest.Pytester) -> None:
    (tester.path / "adir").mkdir()
    tester.makepyfile("def test_a(): pass")
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-html=adir")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--gcguard-html: *adir is a directory, not a file*"])


def _browser_or_skip() -> Any:
    """Playwright driving Debian's chromium; CI installs both (.ci/run), so there it must run."""
    required = os.environ.get("CI") == "true"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - a test dependency
        if required:
            raise
        pytest.skip("playwright is not installed")
    if CHROMIUM is None:  # pragma: no cover - CI installs chromium
        if required:
            pytest.fail("chromium is not installed (.ci/run installs it)")
        pytest.skip("chromium is not installed")
    return sync_playwright


#: How this machine's headless chromium runs as root with no network (the env notes).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def test_html_report_in_a_real_browser(tester: pytest.Pytester, tmp_path: Path) -> None:
    """The bundled examples' report loads with no console error, filters, opens a test with its graph."""
    sync_playwright = _browser_or_skip()
    shutil.copytree(ROOT / "examples", tester.path / "examples")
    result = tester.runpytest_subprocess(
        "--gcguard",
        "examples",
        "--gcguard-graph-dir=gcguard-graphs",
        "--gcguard-html=report.html",
        "-p",
        "no:randomly",
    )
    result.assert_outcomes(passed=5, errors=2)
    artifacts = Path(os.environ.get("GCGUARD_ARTIFACTS", ROOT / "ci-artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto((tester.path / "report.html").as_uri())
            assert page.title() == "gcguard report"
            names = page.locator("tr.test td:first-child").all_inner_texts()
            assert sorted(names) == [
                "tests/test_inventory.py::test_add_item",
                "tests/test_inventory.py::test_render_report",
            ]
            page.fill("#filter", "render_report")
            assert page.locator("tr.test td:first-child").all_inner_texts() == [
                "tests/test_inventory.py::test_render_report"
            ]
            assert page.locator("#count").inner_text().startswith("1 of 2 test(s)")
            page.fill("#filter", "no such test")
            assert page.locator("tr.test").count() == 0
            assert page.locator("#empty").is_visible()
            page.fill("#filter", "")
            page.click("tr[data-nodeid='tests/test_inventory.py::test_add_item']")
            detail = page.locator("tr.detail")
            assert "held via" in detail.inner_text()
            assert "inventory.Inventory" in detail.inner_text()
            if shutil.which("dot"):
                image = detail.locator("img")
                assert image.get_attribute("src").startswith("data:image/svg+xml;base64,")
                assert page.evaluate("img => img.complete && img.naturalWidth > 0", image.element_handle())
            page.screenshot(path=str(artifacts / "gcguard-report.png"), full_page=True)
        finally:
            browser.close()
    assert errors == []
    assert (artifacts / "gcguard-report.png").stat().st_size > 10_000
