"""The settings rules, and the three front ends that use them agreeing on what is valid.

The front ends: the Python API (``with_overrides``, as ``run(**settings)`` uses it), the
config layers (``resolve``, here through a workflow file's layer, which takes values as they
are), and a native workflow file's ``execution:`` section (``pardag.formats.native``).
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pardag import settings_rules as rules
from pardag.config import SettingsError, resolve
from pardag.errors import ArgumentError, ValidationError
from pardag.formats import native
from pardag.formats.document import Document
from pardag.model import Settings, Workflow, with_overrides

NAN, INF = math.nan, math.inf

# -- each rule --------------------------------------------------------------------------------

RULES: list[tuple[Any, list[object], list[object], str]] = [
    (rules.mode, ["dynamic", "levels", "sequential"], ["fast", "LEVELS", 3, None], "one of "),
    (rules.on_failure, ["fail_fast", "continue"], ["stop", "fail-fast", True], "one of "),
    (rules.executor, ["threads", "processes", "inline"], ["async", "gpu", 1, None], "one of "),
    (rules.max_concurrency, [0, 1, 64], [-1, 1.5, True, False, "8", None], "an integer >= 0"),
    (rules.timeout, [None, 0.001, 1, 1.5, 3600], [0, 0.0, -1, NAN], "more than 0 seconds"),
    (rules.pool_size, [1, 2, 100], [0, -1, 1.5, True, "2", None], "an integer >= 1"),
    (rules.pool_rate, [0.001, 1, 10.0], [0, 0.0, -1, NAN], "more than 0 per second"),
]


@pytest.mark.parametrize(
    ("rule", "good", "bad", "expected"), RULES, ids=[r[0].__name__ for r in RULES]
)
def test_each_rule_accepts_and_refuses_what_it_should(
    rule: Any, good: list[object], bad: list[object], expected: str
) -> None:
    for value in good:
        assert rule(value) is None, value
    for value in bad:
        assert rule(value) is not None and rule(value).startswith(expected), value


def test_choices_are_the_states_values_as_plain_strings() -> None:
    assert rules.MODES == ("dynamic", "levels", "sequential")
    assert rules.ON_FAILURES == ("fail_fast", "continue")
    assert rules.EXECUTORS == ("threads", "processes", "inline", "dask")
    assert all(type(name) is str for name in (*rules.MODES, *rules.EXECUTORS))
    assert rules.mode("x") == "one of dynamic, levels, sequential"
    assert rules.executor("async") == "one of threads, processes, inline, dask"


def test_the_rules_and_the_model_import_nothing_above_the_model() -> None:
    code = "import sys, pardag.model; print('\\n'.join(sorted(sys.modules)))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    assert "pardag.settings_rules" in loaded
    above = ("pardag.kinds", "pardag.executors", "pardag.config", "pardag.formats", "jinja2")
    assert [m for m in loaded if m.startswith(above)] == []


# -- the front ends agree -----------------------------------------------------------------------


def _value(front: str, setting: str, value: object) -> tuple[str, object]:
    """The key and value that give ``front`` ``value`` for ``setting`` (a pool: pool ``p``)."""
    if setting == "pool_size":
        return "pools", {"p": value}
    if setting == "pool_rate":
        return "pools", {"p": (1, value) if front == "python" else {"size": 1, "rate": value}}
    return setting, value


def in_python(setting: str, value: object) -> bool:
    key, given = _value("python", setting, value)
    try:
        with_overrides(Settings(), {key: given})
    except ArgumentError:
        return False
    return True


def in_config(setting: str, value: object, cwd: Path) -> bool:
    key, given = _value("config", setting, value)
    wf = Workflow("flow")
    wf.file_settings = {key: given}
    try:
        resolve(wf, environ={}, cwd=cwd)
    except SettingsError:
        return False
    return True


def in_file(setting: str, value: object) -> bool:
    key, given = _value("file", setting, value)
    doc = Document("flow.yaml", {"execution": {key: given}, "steps": {}})
    try:
        native.read(doc, {})
    except ValidationError:
        return False
    return True


SHARED: list[tuple[str, object, bool]] = [
    *[("mode", v, True) for v in rules.MODES],
    *[("mode", v, False) for v in ("fast", "", 3, None)],
    *[("on_failure", v, True) for v in rules.ON_FAILURES],
    *[("on_failure", v, False) for v in ("stop", True)],
    *[("executor", v, True) for v in rules.EXECUTORS],
    *[("executor", v, False) for v in ("async", "gpu", 1)],
    *[("max_concurrency", v, True) for v in (0, 1, 64)],
    *[("max_concurrency", v, False) for v in (-1, 1.5, True, None)],
    *[("timeout", v, True) for v in (0.25, 30, 3600)],
    *[("timeout", v, False) for v in (-1, -0.5, NAN)],
    *[("pool_size", v, True) for v in (1, 4)],
    *[("pool_size", v, False) for v in (0, -2, 1.5, "2", None, False)],
    *[("pool_rate", v, True) for v in (0.5, 10, 10.0)],
    *[("pool_rate", v, False) for v in (0, -1, NAN)],
]
"""(setting, value, valid): values every front end takes as they are, judged alike."""


@pytest.mark.parametrize(("setting", "value", "valid"), SHARED)
def test_the_front_ends_agree_where_the_rule_is_shared(
    setting: str, value: object, valid: bool, tmp_path: Path
) -> None:
    found = {
        "python": in_python(setting, value),
        "config": in_config(setting, value, tmp_path),
        "file": in_file(setting, value),
    }
    assert found == dict.fromkeys(found, valid)


DIFFERENT: list[tuple[str, object, bool | None, bool, bool]] = [
    # flags and variables are typed by hand: choices match loosely, counts may be digits
    ("mode", "LEVELS", False, True, False),
    ("on_failure", "fail-fast", False, True, False),
    ("executor", " Threads ", False, True, False),
    ("max_concurrency", "8", False, True, False),
    # a config layer's 0 is no limit (a flag can lift a timeout set below it); a file says so
    ("timeout", 0, False, True, False),
    # None is no limit, and the default executor, only in Python
    ("timeout", None, True, False, False),
    ("executor", None, True, False, False),
    # text is read by pardag.units (finite numbers, no bools); the Python API takes seconds
    ("timeout", "2m", None, True, True),
    ("pool_rate", "10/s", None, True, True),
    ("timeout", INF, True, False, False),
    ("pool_rate", INF, True, False, False),
    ("timeout", True, True, False, False),
    # the Python API has always taken True as a pool size of 1
    ("pool_size", True, True, False, False),
]
"""(setting, value, valid in Python (None: not asked), in config, in a file): kept on purpose."""


@pytest.mark.parametrize(("setting", "value", "python", "config", "file"), DIFFERENT)
def test_where_the_front_ends_read_a_value_their_own_way(
    setting: str, value: object, python: bool | None, config: bool, file: bool, tmp_path: Path
) -> None:
    if python is not None:
        assert in_python(setting, value) is python
    assert in_config(setting, value, tmp_path) is config
    assert in_file(setting, value) is file


def test_the_rules_words_reach_config_and_file_messages(tmp_path: Path) -> None:
    wf = Workflow("flow")
    wf.file_settings = {"max_concurrency": -1, "executor": "gpu", "pools": {"db": 0}}
    with pytest.raises(SettingsError) as config:
        resolve(wf, environ={}, cwd=tmp_path)
    doc = Document("flow.yaml", {"execution": {"max_concurrency": -1, "mode": 3}, "steps": {}})
    with pytest.raises(ValidationError) as file:
        native.read(doc, {})
    assert f"expected {rules.max_concurrency(-1)}" in str(config.value)
    assert f"expected {rules.executor('gpu')}" in str(config.value)
    assert f"'max_concurrency' must be {rules.max_concurrency(-1)}, got -1" in str(file.value)
    assert f"'mode' must be {rules.mode(3)}, got 3" in str(file.value)
