"""Typed options: ``wf.run``, ``wf.add`` and friends say which options exist, to a type
checker before the run and as ``pardag.UnknownOption`` naming the closest one at run time."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import pardag
from pardag.model import Settings, Step
from pardag.options import RUN_OPTIONS, SETTING_OPTIONS, STEP_OPTIONS


def test_a_misspelt_run_option_names_the_closest_and_runs_nothing() -> None:
    ran: list[int] = []
    wf = pardag.Workflow("typo")
    wf.add("a", lambda: ran.append(1))
    with pytest.raises(pardag.UnknownOption) as info:
        wf.run(max_concurency=8)  # type: ignore[call-arg]
    assert isinstance(info.value, TypeError) and isinstance(info.value, pardag.ArgumentError)
    assert "'max_concurency'; did you mean 'max_concurrency'?" in str(info.value)
    assert ran == []


@pytest.mark.parametrize(
    ("call", "closest"),
    [
        (lambda wf: pardag.run(wf, mode="levels", timeot=2), "'timeot'; did you mean 'timeout'?"),
        (lambda wf: wf.add("b", lambda: 1, retires=2), "'retires'; did you mean 'retry'?"),
        (lambda wf: wf.step(retires=2)(lambda: 1), "'retires'; did you mean 'retry'?"),
    ],
)
def test_every_entry_point_checks_its_options(call: object, closest: str) -> None:
    wf = pardag.Workflow("typo")
    wf.add("a", lambda: 1)
    with pytest.raises(pardag.UnknownOption) as info:
        call(wf)  # type: ignore[operator]
    assert closest in str(info.value)
    assert list(wf.steps) == ["a"]


def test_the_options_are_the_settings_and_the_step_fields() -> None:
    """One source: a new Settings field or Step field must be an option too."""
    assert set(SETTING_OPTIONS) == set(Settings.__dataclass_fields__)
    assert set(SETTING_OPTIONS) < set(RUN_OPTIONS)
    assert set(STEP_OPTIONS) == set(Step.__dataclass_fields__) - {"id", "fn"}


def test_a_type_checker_flags_a_misspelt_option(tmp_path: Path) -> None:
    script = tmp_path / "user.py"
    script.write_text(
        textwrap.dedent(
            """
            import pardag

            wf = pardag.Workflow("w")
            wf.add("a", print, retry=2)
            wf.run(max_concurency=8)
            wf.add("b", print, retires=2)
            """
        )
    )
    found = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", "--strict", str(script)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    errors = [line for line in found.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 2, found.stdout  # line 5's retry=2 is fine
    assert "user.py:6: error:" in errors[0] and '"max_concurency"' in errors[0]
    assert "user.py:7: error:" in errors[1] and '"retires"' in errors[1]
