from __future__ import annotations

import itertools

import pytest
from inventory import Inventory, Node, render, valid_sku

REPORT_IDS = itertools.count()


@pytest.fixture(scope="module")
def catalogue() -> list[str]:
    # module-scoped data: owned by the module, never reported as the test's
    return [f"ABC-{i:04d}" for i in range(100)]


def test_valid_sku(catalogue: list[str]) -> None:  # clean
    assert all(valid_sku(sku) for sku in catalogue)


def test_add_item() -> None:  # leaks: Inventory stays registered in _LISTENERS
    inventory = Inventory()
    inventory.add("ABC-0001", 3)
    assert inventory.items["ABC-0001"].qty == 3


def test_render_report() -> None:  # leaks: a new cache entry each run
    # A new key on every run (``id(object())`` is not: CPython often hands the
    # same address back, and then the cache gains nothing).
    report = render(next(REPORT_IDS))
    assert report.rows


def test_tree() -> None:  # clean by default; a reference cycle in --gcguard-cycles mode
    root = Node("root")
    root.add_child("leaf")
    assert root.children[0].parent is root


def test_tmp_file(tmp_path) -> None:  # clean: pytest's own bookkeeping is not a leak
    (tmp_path / "stock.csv").write_text("sku,qty\n")
    assert (tmp_path / "stock.csv").exists()
