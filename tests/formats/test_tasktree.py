"""Task-tree JSON: nesting, ids, real commands run without a shell, user input from params."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import pardag
from pardag import CycleError, StepState, ValidationError, Workflow

pytestmark = pytest.mark.timeout(60)

EXAMPLE = Path(__file__).parents[2] / "examples" / "flows" / "tasktree_deploy.json"


def cli(tid: str, command: str, *args: str, below: list[Any] | None = None) -> dict[str, Any]:
    """A ``cli_command`` task, with ``next_tasks`` when ``below`` is given."""
    task: dict[str, Any] = {
        "id": tid,
        "name": tid.title(),
        "function": {"name": "cli_command", "input": {"command": command, "args": list(args)}},
    }
    if below is not None:
        task["next_tasks"] = below
    return task


def logged(tid: str, log: Path, below: list[Any] | None = None) -> dict[str, Any]:
    """A task that appends its id to ``log``."""
    return cli(tid, "sh", "-c", f'echo {tid} >> "{log}"', below=below)


def write(tmp_path: Path, tree: Any) -> Path:
    path = tmp_path / "tree.json"
    path.write_text(json.dumps(tree, indent=2))
    return path


def tree(tmp_path: Path, tasks: list[Any], **top: Any) -> Workflow:
    """The workflow of a task tree holding ``tasks``, read by ``pardag.load``."""
    return pardag.load(write(tmp_path, {"id": "t", "name": "T", **top, "tasks": tasks}))


def problems(tmp_path: Path, document: Any) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        pardag.load(write(tmp_path, document))
    return [str(p) for p in caught.value.problems]


def line_of(path: Path, text: str, nth: int = 1) -> int:
    """The 1-based line of the ``nth`` line of ``path`` containing ``text``."""
    found = [i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line]
    return found[nth - 1]


# -- structure ----------------------------------------------------------------------------


def test_children_run_after_their_parent_and_siblings_side_by_side(tmp_path: Path) -> None:
    log = tmp_path / "log"
    wf = tree(
        tmp_path,
        [
            logged(
                "root",
                log,
                [
                    logged("left", log, [logged("left_leaf", log)]),
                    logged("right", log, [logged("right_leaf", log)]),
                ],
            ),
            logged("alone", log),
        ],
    )
    assert wf.name == "t"
    assert list(wf.steps) == ["root", "left", "left_leaf", "right", "right_leaf", "alone"]
    assert wf.steps["left"].depends_on == ("root",)
    assert wf.steps["left_leaf"].depends_on == ("root", "left")  # every task above it
    assert wf.steps["right_leaf"].depends_on == ("root", "right")
    assert wf.steps["alone"].depends_on == ()
    assert wf.levels() == [["alone", "root"], ["left", "right"], ["left_leaf", "right_leaf"]]
    result = wf.run()
    assert result.ok
    order = log.read_text().split()
    assert sorted(order) == sorted(wf.steps)
    assert order.index("root") < order.index("left") < order.index("left_leaf")
    assert order.index("root") < order.index("right") < order.index("right_leaf")


def test_a_string_in_next_tasks_joins_two_branches(tmp_path: Path) -> None:
    log = tmp_path / "log"
    wf = tree(
        tmp_path,
        [
            logged("a", log, ["report"]),
            logged("b", log, [logged("b2", log, ["report"])]),
            logged("report", log),
        ],
    )
    assert wf.steps["report"].depends_on == ("a", "b", "b2")
    assert wf.run().ok
    order = log.read_text().split()
    assert order[-1] == "report"


def test_a_failed_task_skips_everything_below_it(tmp_path: Path) -> None:
    wf = tree(tmp_path, [cli("fails", "false", below=[cli("below", "true")]), cli("other", "true")])
    result = wf.run(on_failure="continue")
    assert result.steps["fails"].state is StepState.FAILED
    assert result.steps["below"].reason == "upstream failed: fails"
    assert result.steps["other"].state is StepState.SUCCEEDED


# -- cli_command --------------------------------------------------------------------------


def test_args_are_passed_as_argv_without_a_shell(tmp_path: Path) -> None:
    wf = tree(tmp_path, [cli("show", "printf", "<%s>", "a b", "x; echo injected", "$HOME", "*")])
    assert wf.run().outputs["show"]["stdout"] == "<a b><x; echo injected><$HOME><*>"


def test_args_are_templates_reading_any_task_above(tmp_path: Path) -> None:
    wf = tree(
        tmp_path,
        [
            cli(
                "version",
                "echo",
                "1.2.3",
                below=[
                    cli(
                        "middle",
                        "true",
                        below=[
                            cli(
                                "use",
                                "printf",
                                "%s|%s",
                                "{{ steps.version.output.stdout | trim }}; rm -rf x",
                                "{{ params.target }}",
                            )
                        ],
                    )
                ],
            )
        ],
    )
    result = wf.run(params={"target": "prod env"})
    assert result.outputs["use"]["stdout"] == "1.2.3; rm -rf x|prod env"


def test_a_missing_program_fails_the_step_saying_so(tmp_path: Path) -> None:
    result = tree(tmp_path, [cli("nope", "no-such-program-h3")]).run()
    assert result.steps["nope"].state is StepState.FAILED
    assert "'no-such-program-h3' not found" in (result.steps["nope"].reason or "")


# -- user_input ---------------------------------------------------------------------------


def ask(tid: str, prompt: str, below: list[Any] | None = None, **extra: Any) -> dict[str, Any]:
    task: dict[str, Any] = {
        "id": tid,
        "name": tid,
        "function": {"name": "user_input", "input": {"prompt": prompt, **extra}},
    }
    if below is not None:
        task["next_tasks"] = below
    return task


def test_user_input_takes_its_answer_from_the_run_params(tmp_path: Path) -> None:
    wf = tree(
        tmp_path,
        [
            ask(
                "target",
                "Where to?",
                [cli("go", "echo", "{{ steps.target.output.answer }}")],
                input_type="string",
                required=True,
                default=None,
            )
        ],
    )
    assert wf.steps["target"].kind == "approval"
    result = wf.run(params={"approvals": {"target": "staging"}})
    assert result.ok
    assert result.outputs["target"] == {"approved": "staging", "answer": "staging"}
    assert result.outputs["go"]["stdout"] == "staging\n"


def test_user_input_without_an_answer_pauses_the_run(tmp_path: Path) -> None:
    wf = tree(tmp_path, [ask("confirm", "Deploy?", [cli("deploy", "true")])])
    result = wf.run()
    assert result.status == "paused"
    assert result.steps["confirm"].state is StepState.PAUSED
    assert result.steps["deploy"].state is StepState.PENDING


def test_a_boolean_user_input_accepts_only_yes_or_no(tmp_path: Path) -> None:
    wf = tree(tmp_path, [ask("confirm", "Deploy?", input_type="boolean")])
    assert wf.run(params={"approvals": {"confirm": "yes"}}).outputs["confirm"]["approved"] is True
    result = wf.run(params={"approvals": {"confirm": "maybe"}})
    assert result.steps["confirm"].state is StepState.FAILED
    assert "not one of the choices" in (result.steps["confirm"].reason or "")


# -- problems -----------------------------------------------------------------------------


def test_a_duplicate_id_anywhere_in_the_tree_is_reported_with_its_line(tmp_path: Path) -> None:
    document = {
        "id": "t",
        "name": "T",
        "tasks": [cli("build", "true", below=[cli("test", "true", below=[cli("build", "true")])])],
    }
    path = write(tmp_path, document)
    with pytest.raises(ValidationError) as caught:
        pardag.load(path)
    (problem,) = caught.value.problems
    assert problem.message == "Duplicate task ID: build"
    second = line_of(path, '"id": "build"', nth=2)
    assert problem.where == f"{path}:{second}"


def test_an_unknown_function_lists_the_known_ones(tmp_path: Path) -> None:
    task = {"id": "agent", "name": "A", "function": {"name": "cursor_agent", "input": {}}}
    (found,) = problems(tmp_path, {"id": "t", "tasks": [task]})
    assert found.endswith(
        "step 'agent': function 'cursor_agent' is unknown; use one of cli_command, user_input"
    )
    task["function"]["name"] = "cli_comand"
    (found,) = problems(tmp_path, {"id": "t", "tasks": [task]})
    assert found.endswith("did you mean 'cli_command'?")


def test_unknown_fields_and_references_are_named_with_their_lines(tmp_path: Path) -> None:
    task = cli("build", "make", below=["tset"])
    task["nxt_tasks"] = []
    task["function"]["input"]["arg"] = ["x"]
    path = write(tmp_path, {"id": "t", "name": "T", "tasks": [task, cli("test", "true")]})
    with pytest.raises(ValidationError) as caught:
        pardag.load(path)
    arg, tset, nxt = (line_of(path, f'"{key}"') for key in ("arg", "tset", "nxt_tasks"))
    assert [str(p) for p in caught.value.problems] == [
        f"{path}:{arg}: step 'build': unknown field 'arg'; did you mean 'args'?",
        f"{path}:{tset}: step 'build': next_tasks names unknown task 'tset'; did you mean 'test'?",
        f"{path}:{nxt}: step 'build': unknown field 'nxt_tasks'; did you mean 'next_tasks'?",
    ]


def test_wrong_types_are_all_reported_at_once(tmp_path: Path) -> None:
    document = {
        "id": "t",
        "tasks": [
            {"id": "a", "function": {"name": "cli_command", "input": {"args": "x"}}},
            {
                "id": "b",
                "function": {"name": "user_input", "input": {"input_type": "date", "required": 1}},
            },
            {"name": "no id"},
            {"id": "c", "function": "cli_command", "next_tasks": {"id": "d"}},
        ],
    }
    found = "\n".join(problems(tmp_path, document))
    for message in [
        "step 'a': command must be the program to run",
        "step 'a': args must be a list of strings",
        "step 'b': prompt must say what to ask",
        "step 'b': input_type 'date' is unknown; use one of string, number, boolean",
        "step 'b': required must be true or false",
        "each task needs an id (a non-empty string)",
        "step 'c': function must be a mapping {name, input}",
        "step 'c': next_tasks must be a list of tasks (or of task ids)",
    ]:
        assert message in found


def test_a_reference_back_up_the_tree_is_a_cycle(tmp_path: Path) -> None:
    with pytest.raises(CycleError) as caught:
        tree(tmp_path, [cli("a", "true", below=[cli("b", "true", below=["a"])])])
    assert caught.value.cycle in (["a", "b", "a"], ["b", "a", "b"])


def test_a_bad_task_id_is_reported_at_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, {"id": "t", "tasks": [cli("has space", "true")]})
    with pytest.raises(ValidationError) as caught:
        pardag.load(path)
    (problem,) = caught.value.problems
    assert problem.where == f"{path}:{line_of(path, '{', nth=2)}"
    assert "the id may use only letters" in problem.message


# -- the example --------------------------------------------------------------------------


def test_the_example_runs_with_an_answer_and_stops_without_one() -> None:
    wf = pardag.load(EXAMPLE)
    result = wf.run(params={"approvals": {"confirm": "yes"}})
    assert result.status == "succeeded", result.error
    assert result.outputs["deploy"]["stdout"].startswith("deploying")
    result = wf.run()
    assert result.status == "paused"
    assert result.steps["confirm"].state is StepState.PAUSED
    assert result.steps["deploy"].state is StepState.PENDING
