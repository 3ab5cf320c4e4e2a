"""What a verdict does to its test: pass, fail, warn, xfail (``expect_leak``), or stay within the baseline.

The test's record (``_records``) is stashed on the item here; its key figures
become ``user_properties`` (JUnit XML ``<property>`` entries).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from . import _records
from ._kinds import KINDS
from ._report import PREFIX, Verdict
from ._settings import RunOptions, Settings
from ._warnings import GcGuardWarning

#: The test's record, or (until it is judged) why it was not: a record is then
#: made only for the tests that need one.
record_key = pytest.StashKey["Mapping[str, Any] | str"]()
#: ``item.user_properties`` key of the one-line summary (JUnit XML ``<property>``; per kind: ``_kinds``).
SUMMARY_PROPERTY = "gcguard"


def act(
    item: pytest.Item,
    verdict: Verdict | None,
    settings: Settings,
    baseline: Mapping[str, _records.Entry] | None,
    options: RunOptions,
) -> None:
    """Decide what a verdict does to the test: fail, warn, expected, within the baseline."""
    expected = settings.expect_leak
    if verdict is None and expected is None:
        item.stash[record_key] = _records.CLEAN  # the usual case
        return
    record = _records.make_record(item.nodeid, verdict, verdict.reruns if verdict is not None else 0)
    item.stash[record_key] = record
    if verdict is None or not verdict.failed:
        if expected is not None:
            record["outcome"] = "failed"
            record["reason"] = f"expected leak did not happen: {expected}"
            pytest.fail(f"{PREFIX} [XPASS(strict)] {item.nodeid}: expected leak did not happen: {expected}", False)
        return
    findings = verdict.summary_line().partition(": ")[2]
    message = verdict.message()
    del verdict
    if expected is not None:
        outcome, record["reason"] = "expected", expected
    elif options.update_baseline:
        outcome = "recorded"
        item.add_report_section("teardown", "gcguard", f"recorded in the baseline:\n{message}")
    elif baseline is not None:
        beyond = _records.Entry.of(record).exceeds(baseline.get(item.nodeid, _records.Entry()))
        if beyond:
            record["reason"] = "beyond the baseline: " + ", ".join(beyond)
            message += f"\n  beyond the baseline {options.baseline}: " + ", ".join(beyond)
            outcome = "warned" if settings.warn else "failed"
        else:
            outcome = "baselined"
            item.add_report_section("teardown", "gcguard", f"known leak, within the baseline:\n{message}")
    else:
        outcome = "warned" if settings.warn else "failed"
    record["outcome"] = outcome
    add_properties(item, record, findings)
    if outcome == "expected":
        pytest.xfail(f"{PREFIX} expected leak ({expected}): {findings}")
    if outcome == "warned":
        item.warn(GcGuardWarning(message))
    elif outcome == "failed":
        pytest.fail(message, pytrace=False)


def add_properties(item: pytest.Item, record: dict[str, Any], findings: str) -> None:
    """Key figures as ``user_properties``: JUnit XML ``<property>`` entries."""
    item.user_properties.append((SUMMARY_PROPERTY, f"{item.nodeid}: {findings}"))
    item.user_properties.append(("gcguard_verdict", record["verdict"]))
    item.user_properties.append(("gcguard_outcome", record["outcome"]))
    for kind in KINDS:
        item.user_properties.extend(kind.junit(record))
    if record["reruns"]:
        item.user_properties.append(("gcguard_reruns", record["reruns"]))
