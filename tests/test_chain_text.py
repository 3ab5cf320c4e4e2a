"""How a why-alive chain reads, edge by edge (``_report.format_chain``): pure, in-process."""

from __future__ import annotations

import weakref

from pytest_gcguard._report import format_chain


class Base:
    pass


class Made(Base):
    pass


class Sub(Made):
    pass


def test_a_class_s_edges_are_named() -> None:
    instance = Sub()
    kept = {"key": instance}
    text = format_chain([kept, instance, Sub, Made, weakref.ref(Made)])
    assert text.split(" -> ")[1:] == [
        f"['key'] {__name__}.Sub",
        f"__class__ (class {__name__}.Sub)",
        f"__base__ (class {__name__}.Made)",
        "its weak reference in its bases' __subclasses__() (weakref.ReferenceType)",
    ], text
    assert format_chain([Sub, Sub.__mro__]).endswith(" -> __mro__ (tuple)")
    assert format_chain([Sub, Sub.__bases__]).endswith(" -> __bases__ (tuple)")


def test_a_dict_key_reads_as_a_key() -> None:
    kept = {Made: "value"}
    assert format_chain([kept, Made]).endswith(f" -> a key (class {__name__}.Made)")


def test_a_weak_reference_with_a_callback_is_no_registry_entry() -> None:
    ref = weakref.ref(Made, lambda r: None)
    assert "its weak reference" not in format_chain([Made, ref])
