"""A tiny inventory service with three classic leaks (and clean code around them)."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

_LISTENERS: list[Callable[[str], None]] = []  # module-level registry: lives forever


class Item:
    def __init__(self, sku: str, qty: int) -> None:
        self.sku = sku
        self.qty = qty

    def __repr__(self) -> str:
        return f"Item({self.sku!r}, qty={self.qty})"


class Inventory:
    def __init__(self) -> None:
        self.items: dict[str, Item] = {}
        # Leak 1: a bound method registered in a global list and never removed:
        # every Inventory (and all its items) stays alive for the whole process.
        _LISTENERS.append(self.on_event)

    def on_event(self, event: str) -> None:
        pass

    def add(self, sku: str, qty: int) -> Item:
        item = self.items[sku] = Item(sku, qty)
        return item


class Report:
    def __init__(self, rows: list[str]) -> None:
        self.rows = rows


@functools.cache
def render(inventory_id: int) -> Report:
    # Leak 2: an unbounded cache keyed by something new on every call.
    return Report([f"row {inventory_id}"])


_SKU = re.compile(r"^[A-Z]{3}-\d{4}$")  # compiled once at import: not a leak


def valid_sku(sku: str) -> bool:
    return bool(_SKU.match(sku))


class Node:
    def __init__(self, name: str) -> None:
        self.name = name
        self.parent: Node | None = None
        self.children: list[Node] = []

    def add_child(self, name: str) -> Node:
        child = Node(name)
        child.parent = self  # Leak 3 (strict mode only): parent <-> child reference cycle
        self.children.append(child)
        return child
