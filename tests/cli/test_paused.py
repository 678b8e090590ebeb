"""A paused run says what it waits for: each waiting step's question and the command that
answers it, with ``--input`` of the shape the step expects, from ``run``, ``resume`` and
``approve`` alike; the commands, run as printed, answer the run."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest

from pardag.cli.waiting import example_answer
from tests.cli.support import pardag, write

DEPLOY = """\
name: deploy
steps:
  build:
    kind: shell
    command: echo '{"v":7}'
  review:
    kind: approval
    depends_on: build
    prompt: "Deploy build {{ steps.build.output.v }} to which target?"
    schema: {type: object, properties: {target: {enum: [staging, prod]}}, required: [target]}
  go:
    kind: approval
    prompt: Go?
  ship:
    kind: shell
    depends_on: [review, go]
    command: echo '{"shipped":true}'
"""


def answers(stderr: str) -> dict[str, list[str]]:
    """The approve command printed for each waiting step, as arguments, by step."""
    out = {}
    for line in stderr.splitlines():
        if line.strip().startswith("answer:"):
            args = shlex.split(line.split("answer:", 1)[1])
            assert args[:2] == ["pardag", "approve"]
            out[args[3]] = args[1:]
    return out


def test_a_paused_run_prints_each_question_and_the_command_that_answers_it(
    project: Path,
) -> None:
    write(project, "deploy.yaml", DEPLOY)
    done = pardag(project, "run", "deploy.yaml", "--store", "runs/deploy.db")
    assert done.returncode == 3, done.stderr
    run_id = done.stderr.splitlines()[0].split()[1]
    assert "step 'review' waits for an answer: Deploy build 7 to which target?" in done.stderr
    assert "step 'go' waits for an answer: Go?" in done.stderr
    commands = answers(done.stderr)
    assert commands["review"] == [
        "approve",
        run_id[:12],
        "review",
        "--input",
        '{"target": "staging"}',
        "--store",
        "runs/deploy.db",
    ]
    assert commands["go"] == ["approve", run_id[:12], "go", "--store", "runs/deploy.db"]
    assert f"pardag reject {run_id[:12]} go --reason TEXT --store runs/deploy.db" in done.stderr

    again = pardag(project, "resume", run_id, "--store", "runs/deploy.db")  # still waiting
    assert again.returncode == 3, again.stderr
    assert answers(again.stderr) == commands

    first = pardag(project, *commands["review"])  # as printed: the schema takes it
    assert first.returncode == 3, first.stderr  # 'go' still waits, and says so
    assert list(answers(first.stderr)) == ["go"]
    last = pardag(project, *commands["go"])
    assert last.returncode == 0, last.stderr
    assert "waits for an answer" not in last.stderr


def test_the_json_result_carries_the_question_as_the_paused_steps_reason(
    project: Path,
) -> None:

    write(project, "deploy.yaml", DEPLOY)
    done = pardag(project, "run", "deploy.yaml", "--json")
    assert done.returncode == 3
    steps = json.loads(done.stdout)["steps"]
    assert steps["review"]["reason"] == "Deploy build 7 to which target?"
    assert "pardag approve" in done.stderr  # stdout stays JSON only


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, None),  # any answer will do: approve answers true
        ({"choices": ["yes", "no"]}, "yes"),
        ({"schema": {"type": "string", "enum": ["eu", "us"]}}, "eu"),
        ({"schema": {"type": "integer"}}, 0),
        ({"schema": {"type": "boolean"}}, True),
        ({"schema": {"const": 3}}, 3),
        (
            {"schema": {"type": "object", "required": ["n"], "properties": {"n": {"default": 2}}}},
            {"n": 2},
        ),
        ({"schema": {"properties": {"a": {"type": ["string", "null"]}}}}, {"a": "..."}),
    ],
)
def test_the_example_answer_has_the_shape_the_step_expects(
    params: dict[str, Any], expected: Any
) -> None:
    assert example_answer(params) == expected
