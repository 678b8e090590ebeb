"""Validation of what templates and expressions read: each step read must be a dependency,
each step must exist, each param must be declared (when the workflow declares its params);
each problem at its field's line, with the fix in the file's own syntax."""

from __future__ import annotations

from pathlib import Path

import pytest

from pardag import ArgumentError, Problem, ValidationError, Workflow, load


def problems(wf_or_path: Workflow | Path) -> list[Problem]:
    with pytest.raises(ValidationError) as info:
        wf_or_path.validate() if isinstance(wf_or_path, Workflow) else load(wf_or_path)
    return info.value.problems


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


UNDECLARED_YAML = """\
steps:
  fetch:
    kind: shell
    command: echo '{"rows":5}'
  report:
    kind: shell
    when: fetch.rows > 3
    command: "echo {{ steps.fetch.output.rows }}"
"""


def test_a_step_read_without_depending_on_it_is_found_at_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "flow.yaml", UNDECLARED_YAML)
    (problem,) = problems(path)
    assert problem.step == "report"
    assert problem.where == f"{path}:7"  # the first field reading it: when
    assert problem.message == (
        "when and command read the output of 'fetch', which it does not depend on (a step "
        "gets only its dependencies' outputs); add depends_on: [fetch]"
    )
    fixed = UNDECLARED_YAML.replace("    when:", "    depends_on: [fetch]\n    when:")
    load(write(tmp_path, "fixed.yaml", fixed)).validate()


def test_the_fix_keeps_the_dependencies_there_are_and_speaks_the_files_syntax(
    tmp_path: Path,
) -> None:
    toml = """\
[steps.fetch]
kind = "shell"
command = "echo 1"

[steps.other]
kind = "shell"
command = "echo 2"

[steps.report]
kind = "shell"
depends_on = ["other"]
command = "echo {{ inputs['fetch'] }}"
"""
    (problem,) = problems(write(tmp_path, "flow.toml", toml))
    assert problem.message.endswith('add depends_on = ["other", "fetch"]')
    assert problem.where == f"{tmp_path / 'flow.toml'}:12"

    wf = Workflow("py")
    wf.add("fetch", lambda: 1)
    wf.add("report", kind="shell", params={"command": "echo {{ steps.fetch.output }}"})
    (problem,) = problems(wf)
    assert problem.message.endswith('add depends_on=["fetch"]')


def test_a_template_naming_a_step_that_does_not_exist_says_the_closest(tmp_path: Path) -> None:
    text = UNDECLARED_YAML.replace("steps.fetch.output", "steps.fetc.output").replace(
        "    when: fetch.rows > 3\n", "    depends_on: fetch\n"
    )
    (problem,) = problems(write(tmp_path, "flow.yaml", text))
    assert problem.message == (
        "command reads steps.fetc, but there is no step 'fetc'; did you mean 'fetch'?"
    )
    assert problem.where == f"{tmp_path / 'flow.yaml'}:8"


def test_a_step_entry_holds_only_output() -> None:
    wf = Workflow("entry")
    wf.add("fetch", lambda: {"rows": 1})
    wf.add(
        "say", kind="shell", depends_on=["fetch"], params={"command": "echo {{ steps.fetch.rows }}"}
    )
    (problem,) = problems(wf)
    assert "write steps.fetch.output.rows" in problem.message


def test_a_misspelt_name_in_a_template_or_expression_says_the_closest() -> None:
    wf = Workflow("names")
    wf.add("fetch", lambda: 1)
    wf.add("a", kind="shell", depends_on=["fetch"], params={"command": "echo {{ parms.x }}"})
    wf.add("b", lambda fetch: 1, when="fetc > 1")
    found = {p.step: p.message for p in problems(wf)}
    assert found["a"] == "command reads 'parms', which is not defined; did you mean 'params'?"
    assert found["b"] == "when reads 'fetc', which is not defined; did you mean 'fetch'?"


def test_conditions_and_cache_keys_are_checked_too() -> None:
    wf = Workflow("more")
    wf.add("fetch", lambda: 1)
    wf.add("check", kind="condition", params={"expression": "steps.fetch.output > 1"})
    wf.add("keep", lambda: 1, cache={"key": "{{ inputs.fetch }}"})
    found = {p.step: p.message for p in problems(wf)}
    assert found["check"].startswith("expression reads the output of 'fetch'")
    assert found["keep"].startswith("cache reads the output of 'fetch'")


def test_a_key_computed_at_run_time_is_left_to_the_run() -> None:
    wf = Workflow("dynamic")
    wf.add("fetch", lambda: 1)
    wf.add(
        "say",
        kind="shell",
        depends_on=["fetch"],
        params={"command": "echo {{ steps['fe' ~ 'tch'] }}"},
    )
    wf.validate()


PARAMS_YAML = """\
params:
  env: dev
steps:
  deploy:
    kind: shell
    command: "echo deploying to {{ params.enviro }}"
"""


def test_a_param_the_file_does_not_declare_is_found(tmp_path: Path) -> None:
    (problem,) = problems(write(tmp_path, "flow.yaml", PARAMS_YAML))
    assert problem.where == f"{tmp_path / 'flow.yaml'}:6"
    assert problem.message.startswith(
        "command reads params.enviro: workflow 'flow' has no param 'enviro' (it declares env); "
        "did you mean 'env'?"
    )
    takes_any = PARAMS_YAML.replace("params:\n", "extra_params: true\nparams:\n")
    load(write(tmp_path, "any.yaml", takes_any)).validate()
    undeclared = PARAMS_YAML.replace("params:\n  env: dev\n", "")
    load(write(tmp_path, "none.yaml", undeclared)).validate()  # declares none: takes any


def test_extra_params_must_be_a_boolean(tmp_path: Path) -> None:
    problem = problems(write(tmp_path, "flow.yaml", "extra_params: yes please\n" + PARAMS_YAML))[0]
    assert problem.message == "'extra_params' must be true or false, got 'yes please'"
    assert problem.where == f"{tmp_path / 'flow.yaml'}:1"


def test_a_run_given_a_param_the_workflow_does_not_declare_fails_before_it_starts() -> None:
    ran: list[str] = []
    wf = Workflow("deploy", params={"env": "dev"})
    wf.add("go", lambda params: ran.append(params["env"]))
    with pytest.raises(ArgumentError) as info:
        wf.run(params={"enviro": "prod"})
    assert str(info.value) == (
        "run(params=...): workflow 'deploy' has no param 'enviro' (it declares env); did you "
        "mean 'env'? declare it in the workflow's params, or let it take any (extra_params)"
    )
    assert ran == []
    assert wf.run(params={"env": "prod", "approvals": {}}).ok and ran == ["prod"]
    assert Workflow("any", params={"env": "dev"}, extra_params=True).run(params={"x": 1}).ok
    assert Workflow("undeclared").run(params={"x": 1}).ok
