"""Turning gcguard on and off, tuning it, and bad input."""

from __future__ import annotations

import json

import pytest

LEAK = """
import pytest
KEEP = []

class Widget:
    pass

def test_leak():
    KEEP.append(Widget())
"""


def test_off_by_default_and_inert(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        """
        import gc
        KEEP = []
        FROZEN_AT_IMPORT = gc.get_freeze_count()  # 3.12+ may freeze objects at start-up

        def test_leak():
            KEEP.append([1])

        def test_nothing_was_frozen():
            # gcguard freezes the heap only when it checks tests
            assert gc.get_freeze_count() == FROZEN_AT_IMPORT
            assert "gcguard" not in repr(gc.freeze)
        """
    )
    result = tester.runpytest_subprocess()
    result.assert_outcomes(passed=2)
    result.stdout.no_fnmatch_line("gcguard:*")


def test_the_plugin_loads_without_assertion_rewriting(tester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """pytest would rewrite every module of the plugin's package, from source at each start
    when bytecode cannot be written (PYTHONDONTWRITEBYTECODE=1); they load as plain modules."""
    tester.makepyfile(
        """
        import sys

        def test_loaders():
            names = [name for name in sys.modules if name.startswith("pytest_gcguard.")]
            assert len(names) > 5
            rewritten = [
                name for name in names
                if type(sys.modules[name].__loader__).__name__ == "AssertionRewritingHook"
            ]
            # At most the module that tells pytest's hook to leave the others alone
            # (none from an editable install, whose modules the hook does not load).
            assert set(rewritten) <= {"pytest_gcguard._pytest_internals"}, rewritten
        """
    )
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    result = tester.runpytest_subprocess("--gcguard", "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*gcguard: checked 1 test(s)*"])


def test_plugin_can_be_disabled_with_dash_p(tester: pytest.Pytester) -> None:
    tester.makepyfile(LEAK)
    result = tester.runpytest_subprocess("-p", "no:gcguard")
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("gcguard:*")  # not loaded: nothing checked
    result = tester.runpytest_subprocess("-p", "no:gcguard", "--gcguard")
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_ini_turns_it_on_for_the_project(tester: pytest.Pytester) -> None:
    tester.makeini("[pytest]\naddopts = -p no:cacheprovider\ngcguard = true\n")
    tester.makepyfile(LEAK)
    result = tester.runpytest_subprocess()
    result.assert_outcomes(errors=1, passed=1)
    result.stdout.fnmatch_lines(["gcguard: on (cycles=off, reruns=2)"])


def test_pyproject_table_turns_it_on(tester: pytest.Pytester) -> None:
    (tester.path / "tox.ini").unlink()
    tester.makepyprojecttoml('[tool.pytest.ini_options]\naddopts = "-p no:cacheprovider"\ngcguard = true\n')
    tester.makepyfile(LEAK)
    result = tester.runpytest_subprocess()
    result.assert_outcomes(errors=1, passed=1)


def test_marker_checks_one_test_without_the_flag(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        """
        import pytest
        KEEP = []

        @pytest.mark.gcguard
        def test_checked():
            KEEP.append([1])

        def test_unchecked():
            KEEP.append([1])
        """
    )
    result = tester.runpytest_subprocess()
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_checked*"])


def test_marker_opts_a_test_out(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        """
        import pytest
        KEEP = []

        @pytest.mark.gcguard(enabled=False)
        def test_known_leak():
            KEEP.append([1])
        """
    )
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-json=out.json")
    result.assert_outcomes(passed=1)
    (record,) = json.loads((tester.path / "out.json").read_text())["tests"]
    assert (record["verdict"], record["outcome"]) == ("skipped", "skipped")
    assert "enabled=False" in record["reason"]


def test_marker_on_module_and_closest_wins(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        """
        import pytest
        pytestmark = pytest.mark.gcguard
        KEEP = []

        def test_checked():
            KEEP.append([1])

        @pytest.mark.gcguard(enabled=False)
        def test_opted_out():
            KEEP.append([1])
        """
    )
    result = tester.runpytest_subprocess()
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_checked*"])


@pytest.mark.parametrize(
    ("args", "ini", "marker"),
    [
        (["--gcguard-ignore=test_*.Widget"], "", ""),
        ([], "gcguard_ignore = Widget", ""),
        ([], "", "@pytest.mark.gcguard(ignore=['Widget'])"),
        (["--gcguard-only=dict"], "", ""),
        (["--gcguard-allow=Widget=1"], "", ""),
        ([], "gcguard_allow = test_*.Widget=1", ""),
        ([], "", "@pytest.mark.gcguard(allow={'Widget': 1})"),
    ],
    ids=["ignore-cli", "ignore-ini", "ignore-marker", "only-cli", "allow-cli", "allow-ini", "allow-marker"],
)
def test_tuning_silences_a_type(tester: pytest.Pytester, args: list[str], ini: str, marker: str) -> None:
    tester.makeini(f"[pytest]\naddopts = -p no:cacheprovider\n{ini}\n")
    tester.makepyfile(
        f"""
        import pytest
        KEEP = []

        class Widget:
            pass

        {marker}
        def test_leak():
            KEEP.append(Widget())
        """
    )
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-json=out.json", *args)
    result.assert_outcomes(passed=1)
    (record,) = json.loads((tester.path / "out.json").read_text())["tests"]
    assert (record["verdict"], record["outcome"]) == ("clean", "passed")  # judged, the type silenced


def test_allow_is_a_threshold_not_a_pass(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        """
        KEEP = []

        class Widget:
            pass

        def test_leak_two():
            KEEP.extend([Widget(), Widget()])
        """
    )
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-allow=Widget=1")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*Widget x2*"])


def test_only_watches_listed_types(tester: pytest.Pytester) -> None:
    tester.makepyfile(LEAK)
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-only=test_*.Widget")
    result.assert_outcomes(passed=1, errors=1)


@pytest.mark.parametrize(
    ("args", "ini", "message"),
    [
        (["--gcguard-reruns=abc"], "", "*argument --gcguard-reruns: 'abc' is not a whole number*"),
        (["--gcguard-reruns=-1"], "", "*argument --gcguard-reruns: '-1' must be 0 or more*"),
        ([], "gcguard_reruns = many", "*ini option gcguard_reruns: 'many' is not a whole number*"),
        (["--gcguard-allow=Widget"], "", "*--gcguard-allow: 'Widget' is not TYPE=N*"),
        (
            [],
            "gcguard_allow = Widget=x",
            "*ini option gcguard_allow: allowed count for 'Widget' must be a whole number*",
        ),
        ([], "gcguard = maybe", "*ini option gcguard: invalid truth value 'maybe'*"),
    ],
    ids=["reruns-text", "reruns-negative", "reruns-ini", "allow-cli", "allow-ini", "enable-ini"],
)
def test_bad_configuration_is_a_usage_error(tester: pytest.Pytester, args: list[str], ini: str, message: str) -> None:
    tester.makeini(f"[pytest]\n{ini}\n")
    tester.makepyfile("def test_x(): pass")
    result = tester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    output = "\n".join(result.stderr.lines + result.stdout.lines)
    assert pytest.importorskip("fnmatch").fnmatch(output.replace("\n", " "), message), output


@pytest.mark.parametrize(
    "marker",
    ["gcguard(enabled='yes')", "gcguard(reruns=-2)", "gcguard(colour=True)", "gcguard(allow=['Widget'])", "gcguard(1)"],
)
def test_bad_marker_fails_only_that_test(tester: pytest.Pytester, marker: str) -> None:
    tester.makepyfile(
        f"""
        import pytest

        @pytest.mark.{marker}
        def test_bad():
            pass

        def test_good():
            pass
        """
    )
    result = tester.runpytest_subprocess("--gcguard")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at setup of test_bad*", "*bad @pytest.mark.gcguard arguments*"])


def test_marker_is_registered_for_strict_markers(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        """
        import pytest

        @pytest.mark.gcguard(enabled=False)
        def test_x():
            pass
        """
    )
    result = tester.runpytest("--strict-markers")
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*PytestUnknownMarkWarning*")
    result = tester.runpytest("--markers")
    result.stdout.fnmatch_lines(
        ["@pytest.mark.gcguard(*enabled*expect_leak*): check this test even without --gcguard*"]
    )


def test_help_lists_every_option(tester: pytest.Pytester) -> None:
    result = tester.runpytest("--help")
    result.stdout.fnmatch_lines(
        [
            "*Leak and reference-cycle detection*",
            "*--gcguard *",
            "*--gcguard-cycles*",
            "*--gcguard-ignore=TYPES*",
            "*--gcguard-only=TYPES*",
            "*--gcguard-allow=TYPE=N*",
            "*--gcguard-reruns=N*",
            "*--gcguard-graph-dir=DIR*",
        ]
    )


def test_gc_state_is_restored(tester: pytest.Pytester) -> None:
    tester.makeconftest(
        """
        import gc, json, pytest

        ORIGINAL = (gc.freeze, gc.unfreeze, gc.collect)
        FROZEN_BEFORE = gc.get_freeze_count()  # 3.12+ may freeze objects at start-up
        THRESHOLD_BEFORE = list(gc.get_threshold())

        @pytest.hookimpl(trylast=True)
        def pytest_unconfigure(config):
            with open("gc_state.json", "w") as f:
                json.dump({
                    "debug": gc.get_debug(),
                    "enabled": gc.isenabled(),
                    "threshold": list(gc.get_threshold()),
                    "threshold_before": THRESHOLD_BEFORE,
                    "frozen": gc.get_freeze_count(),
                    "frozen_before": FROZEN_BEFORE,
                    "functions_restored": (gc.freeze, gc.unfreeze, gc.collect) == ORIGINAL,
                    "garbage": len(gc.garbage),
                }, f)
        """
    )
    tester.makepyfile(
        """
        import gc
        import pytest
        KEEP = []

        def test_leak_with_cycles():
            a = []
            a.append(a)
            KEEP.append([1])

        def test_raises():
            raise RuntimeError("boom")

        def test_disables_gc():
            gc.disable()

        def test_gc_is_back_on():
            assert gc.isenabled()

        def test_calls_freeze():
            gc.freeze()
            gc.unfreeze()
        """
    )
    result = tester.runpytest_subprocess("--gcguard", "--gcguard-cycles", "-rA")
    result.assert_outcomes(passed=4, failed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*the test left automatic gc disabled; gcguard restored it*",
            "*not judged: the test called gc.freeze(), gc.unfreeze()*",
        ]
    )
    import json

    state = json.loads((tester.path / "gc_state.json").read_text())
    # gcguard cannot tell objects frozen by others from its own: it gives the heap
    # back unfrozen, or refrozen whole when something had frozen objects before.
    frozen_before = state.pop("frozen_before")
    frozen = state.pop("frozen")
    # Unfrozen if nothing was frozen before; refrozen whole (at least as many) otherwise.
    assert frozen == 0 if frozen_before == 0 else frozen >= frozen_before
    assert state.pop("threshold") == state.pop("threshold_before")
    assert state == {"debug": 0, "enabled": True, "functions_restored": True, "garbage": 0}
