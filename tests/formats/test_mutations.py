"""Every example flow, mutated at random (seeded): reading it gives a workflow or a pardag error.

What a careless reader gets wrong: a value of an unexpected type reaching ``in``, ``len`` or a
dict lookup, an empty id taken for a parent, a template the lexer cannot read. Each showed up
as a traceback before this test; any exception that is not a ``PardagError`` fails it.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import pardag
from pardag.errors import PardagError

FLOWS = Path(__file__).resolve().parents[2] / "examples" / "flows"
EXAMPLES = sorted(p for p in FLOWS.iterdir() if p.suffix in (".json", ".yaml"))
MUTATIONS = 150
"""Mutated files per example: enough to reach every field several times, in a few seconds."""

JUNK: list[Any] = [
    None, "", 0, -1, 2, 1.5, True, [], {}, "x", "$FOO ${BAR}", "re:(", "a b 'c", "{{ x",
    "{% if %}", ["a"], ["a", "b"], {"k": "v"}, ["A=1"], [{"B": 2}], {"predicate": "$X"},
    {"predicate": "$X", "expected": "re:["}, {"limit": -1}, {"limit": 1, "interval_sec": "bad"},
    "condition", "nope", {"stdout": "OUT"}, "1nvalid", [["nested"]], {"name": ["x"]},
]  # fmt: skip


def _places(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every key path in ``value`` (the root excluded)."""
    if path:
        yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _places(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _places(item, (*path, index))


def _mutate(data: Any, r: random.Random) -> Any:
    """``data`` with one to three changes: a value replaced, a key dropped or renamed, an item
    duplicated or removed, or a name reused."""
    data = copy.deepcopy(data)
    for _ in range(r.randint(1, 3)):
        places = list(_places(data))
        if not places:
            break
        *parent_path, last = r.choice(places)
        parent = data
        for key in parent_path:
            parent = parent[key]
        action = r.random()
        if action < 0.6:
            parent[last] = copy.deepcopy(r.choice(JUNK))
        elif isinstance(parent, dict) and action < 0.8:
            value = parent.pop(last)
            if r.random() < 0.5:
                parent[f"{last}s"] = value  # a misspelt field
        elif isinstance(parent, list) and action < 0.9:
            parent.append(copy.deepcopy(parent[last]))  # a duplicate (ids, names)
        elif isinstance(parent, list):
            del parent[last]
    return data


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_a_mutated_example_reads_as_a_workflow_or_a_pardag_error(
    example: Path, tmp_path: Path
) -> None:
    text = example.read_text()
    data = json.loads(text) if example.suffix == ".json" else yaml.safe_load(text)
    r = random.Random(example.name)
    (tmp_path / "etl_steps.py").write_text((FLOWS / "etl_steps.py").read_text())
    for n in range(MUTATIONS):
        mutated = _mutate(data, r)
        path = tmp_path / f"m{n}{example.suffix}"
        dump = json.dumps if example.suffix == ".json" else yaml.safe_dump
        path.write_text(dump(mutated))
        try:
            pardag.load(path)
        except PardagError:
            pass
        except Exception as exc:  # the failure to catch: anything a user would see as a crash
            raise AssertionError(
                f"{example.name} mutation {n} raised {type(exc).__name__}: {exc}\n"
                f"{json.dumps(mutated, indent=1, default=str)[:3000]}"
            ) from exc
