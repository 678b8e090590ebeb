"""The native steps file: every field, every problem with its line, the examples, the schema."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import pardag
from pardag.errors import CycleError, ValidationError
from pardag.formats import native
from pardag.formats.document import parse_document
from pardag.formats.schema import render
from pardag.model import RetryPolicy
from pardag.states import Trigger

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = [ROOT / "examples" / "flows" / f"etl.{ext}" for ext in ("yaml", "toml", "json")]


def load(tmp_path: Path, text: str, ext: str = "yaml") -> pardag.Workflow:
    path = tmp_path / f"flow.{ext}"
    path.write_text(text)
    return pardag.load(path)


def problems(tmp_path: Path, text: str, ext: str = "yaml") -> list[str]:
    """Each problem as ``line: message``, from loading ``text``."""
    path = tmp_path / f"flow.{ext}"
    path.write_text(text)
    with pytest.raises(ValidationError) as exc:
        pardag.load(path)
    assert exc.value.workflow == str(path)
    out = []
    for p in exc.value.problems:
        assert p.where is not None and p.where.startswith(str(path))
        line = p.where.removeprefix(f"{path}:") if p.where != str(path) else "-"
        out.append(f"{line}: {'' if p.step is None else p.step + ': '}{p.message}")
    return out


# -- detection --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"steps": {}}, True),
        ({"steps": {"a": {"kind": "shell"}}}, True),
        ({"steps": [{"name": "a"}]}, False),  # the shell-orchestrator format has a list
        ({"tasks": []}, False),
    ],
)
def test_detect_wants_a_steps_mapping(data: dict[str, Any], expected: bool) -> None:
    assert native.detect(parse_document(json.dumps(data), "f.json", "json")) is expected


# -- every field ------------------------------------------------------------------------------

FULL = """\
name: full
description: every field
execution:
  mode: levels
  max_concurrency: 3
  timeout: 2m
  on_failure: continue
  executor: threads
  pools:
    db: 2
    api: {size: 4, rate: 10/s}
params:
  limit: 5
steps:
  first:
    kind: shell
    command: echo hi
    env: {A: "1"}
    retry: 2
    timeout: 1500ms
    priority: 3
    estimate: 2s
    resources: {db: 1}
  check:
    kind: condition
    depends_on: first
    params: {expression: "params.limit > 1"}
  yes:
    kind: shell
    description: only when check is true
    depends_on: [check, first]
    branch: {check: true}
    command: echo yes
    retry: {retries: 3, delay: 100ms, factor: 3, max_delay: 1m, jitter: 0}
    when: params.limit < 10
    critical: false
    cache: {key: x}
    resources: {api: 2}
    executor: async
  join:
    kind: merge
    depends_on: [yes]
    trigger: all_done
"""


def test_every_field_reaches_the_model(tmp_path: Path) -> None:
    wf = load(tmp_path, FULL)
    assert wf.name == "full"
    s = wf.settings
    assert (s.mode, s.max_concurrency, s.timeout, s.on_failure) == ("levels", 3, 120.0, "continue")
    assert s.executor == "threads"
    assert s.pools == {"db": 2, "api": (4, 10.0)}
    assert wf.file_settings == {
        "mode": "levels",
        "max_concurrency": 3,
        "timeout": 120.0,
        "on_failure": "continue",
        "executor": "threads",
        "pools": {"db": 2, "api": (4, 10.0)},
    }
    assert wf.params == {"limit": 5}
    assert wf.source == str(tmp_path / "flow.yaml")
    first, check, yes, join = (wf.steps[i] for i in ("first", "check", "yes", "join"))
    assert first.kind == "shell" and first.params == {"command": "echo hi", "env": {"A": "1"}}
    assert first.retry == RetryPolicy(retries=2)
    assert (first.timeout, first.priority, first.estimate) == (1.5, 3, 2.0)
    assert first.resources == {"db": 1}
    assert check.depends_on == ("first",) and check.params == {"expression": "params.limit > 1"}
    assert yes.depends_on == ("check", "first")
    assert yes.branch == {"check": "true"}
    assert yes.retry == RetryPolicy(retries=3, delay=0.1, factor=3.0, max_delay=60.0, jitter=0.0)
    assert (yes.when, yes.critical, yes.cache, yes.executor) == (
        "params.limit < 10",
        False,
        {"key": "x"},
        "async",
    )
    assert yes.trigger == Trigger.ALL_SUCCESS and join.trigger == Trigger.ALL_DONE
    assert wf.locations == {
        "first": f"{tmp_path / 'flow.yaml'}:15",
        "check": f"{tmp_path / 'flow.yaml'}:24",
        "yes": f"{tmp_path / 'flow.yaml'}:28",
        "join": f"{tmp_path / 'flow.yaml'}:40",
    }


def test_defaults(tmp_path: Path) -> None:
    wf = load(tmp_path, "steps:\n  a: {kind: shell, command: 'true'}\n  m: {kind: merge}\n")
    assert wf.name == "flow"  # the file's stem
    assert wf.params == {} and wf.file_settings == {}
    assert wf.settings == pardag.Settings()
    assert wf.steps["m"].trigger == Trigger.ANY_SUCCESS  # merge steps default to any_success
    assert wf.steps["a"].retry is None and wf.steps["a"].depends_on == ()


def test_a_run_of_a_file_uses_its_params_and_settings(tmp_path: Path) -> None:
    wf = load(
        tmp_path,
        """\
params: {who: world, big: false}
execution: {max_concurrency: 2}
steps:
  greet:
    kind: shell
    command: ["printf", '{"greeting": "hello"}\\n']
  pick:
    kind: condition
    depends_on: greet
    expression: params.big
  large:
    kind: shell
    depends_on: [pick]
    branch: {pick: true}
    command: echo large
  small:
    kind: shell
    depends_on: [pick, greet]
    branch: {pick: false}
    command: 'printf "%s" "$INPUT_GREET"'
  done:
    kind: merge
    depends_on: [large, small]
""",
    )
    result = wf.run()
    assert result.status == "succeeded", result.error
    assert result.outputs["greet"] == {"greeting": "hello"}
    assert result.steps["large"].state == "skipped"
    assert result.outputs["small"] == {"greeting": "hello"}  # its input, printed back
    assert set(result.outputs["done"]) == {"small"}
    # the run's own params are merged over the file's
    again = wf.run(params={"big": True})
    assert again.steps["small"].state == "skipped"
    assert again.outputs["large"]["stdout"] == "large\n"


def test_the_three_syntaxes_give_the_same_workflow(tmp_path: Path) -> None:
    data = parse_document(FULL, "f.yaml", "yaml").data
    toml_text = _to_toml(data)
    workflows = [
        load(tmp_path, FULL, "yaml"),
        load(tmp_path, json.dumps(data, indent=1), "json"),
        load(tmp_path, toml_text, "toml"),
    ]
    first = workflows[0]
    for wf in workflows[1:]:
        assert wf.settings == first.settings and wf.params == first.params
        assert list(wf.steps.values()) == list(first.steps.values())


def _to_toml(data: dict[str, Any]) -> str:
    """A TOML rendering of FULL's data: top-level keys, [execution], [params], [steps.X]."""

    def value(v: Any) -> str:
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + "}"
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return json.dumps(v)

    out = [f"{k} = {value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for section in ("execution", "params"):
        out += [f"[{section}]", *(f"{k} = {value(v)}" for k, v in data[section].items())]
    for sid, step in data["steps"].items():
        out += [f"[steps.{sid}]", *(f"{k} = {value(v)}" for k, v in step.items())]
    return "\n".join(out) + "\n"


# -- problems, each with its line -------------------------------------------------------------


def test_unknown_fields_say_what_was_meant(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """\
nam: typo
execution:
  max_concurency: 2
  pools:
    api: {sise: 2}
steps:
  extract:
    kind: shell
    command: echo
    comand: echo
  load:
    kind: shell
    command: echo
    depend_on: extract
    retry: {retries: 1, dealy: 1s}
  py:
    command: echo
  other:
    kind: shell
    command: echo
    whatever: 1
""",
    )
    assert found == [
        "1: unknown field 'nam' at the top level; did you mean 'name'?",
        "3: unknown field 'max_concurency' in execution; did you mean 'max_concurrency'?",
        "5: unknown field 'sise' in pool 'api'; did you mean 'size'?",
        "5: 'pools.api.size' must be an integer >= 1, got None",
        "10: extract: unknown field 'comand'; did you mean 'command'?",
        "14: load: unknown field 'depend_on'; did you mean 'depends_on'?",
        "15: load: unknown field 'dealy' in retry; did you mean 'delay'?",
        found[7],
        found[8],
    ]
    # the kinds registered decide the rest of these messages
    assert found[7].startswith("17: py: unknown field 'command': it is a parameter of kind 'shell'")
    assert found[7].endswith("; set kind")
    assert found[8].startswith(
        "21: other: unknown field 'whatever'; use one of kind, description, depends_on, "
        "language, params, retry, timeout, when, trigger, critical, cache, resources, priority, "
        "executor, estimate, branch, for_each, max_concurrency, max_items, allow_failures, "
        "isolation, command, "
    )


def test_wrong_types_say_what_was_expected(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """\
name: 5
params: [1]
execution:
  mode: dynamik
  max_concurrency: -1
  timeout: soon
  on_failure: 3
  executor: gpu
  pools: {db: 0, api: {size: 2, rate: fast}}
steps:
  a:
    kind: shell
    command: echo
    timeout: [1]
    depends_on: 5
    retry: many
    critical: "yes"
    priority: 1.5
    estimate: -2
    resources: {db: 0}
    branch: {c: [1]}
    trigger: all_sucess
    when: ""
    executor: gpu
  b:
    kind: shell
    command: echo
    depends_on: [a, 7]
    retry: {retries: -1, delay: x, factor: big, jitter: "1"}
    params: {command: other}
""",
    )
    assert found == [
        "1: 'name' must be a string, got 5",
        "2: 'params' must be a mapping, got [1]",
        "4: 'mode' is 'dynamik'; did you mean 'dynamic'?",
        "5: 'max_concurrency' must be an integer >= 0, got -1",
        "6: 'timeout' must be a duration like '30s' or a number of seconds >= 0, got 'soon'",
        "7: 'on_failure' must be one of fail_fast, continue, got 3",
        "8: 'executor' is 'gpu'; use one of threads, processes, inline, dask",
        "9: 'pools.db' must be an integer >= 1, got 0",
        "9: 'pools.api.rate' must be a rate like '10/s' or a number per second, got 'fast'",
        "14: a: 'timeout' must be a duration like '30s' or a number of seconds >= 0, got [1]",
        "15: a: 'depends_on' must be a step id or a list of step ids, got 5",
        "16: a: 'retry' must be a number of retries or a mapping {retries, delay, ...}, got 'many'",
        "17: a: 'critical' must be true or false, got 'yes'",
        "18: a: 'priority' must be an integer, got 1.5",
        "19: a: 'estimate' must be a duration like '30s' or a number of seconds >= 0, got -2",
        "20: a: 'resources.db' must be an integer >= 1, got 0",
        "21: a: 'branch.c' must be a handle such as true, false or a case name, got [1]",
        "22: a: 'trigger' is 'all_sucess'; did you mean 'all_success'?",
        "23: a: 'when' must be a non-empty string, got ''",
        "24: a: 'executor' is 'gpu'; use one of async, threads, processes, inline, dask",
        "27: b: 'command' is given both at the step's top level and under params; keep one",
        "28: b: 'depends_on' items must be step ids, got 7",
        "29: b: 'retry.retries' must be an integer >= 0, got -1",
        "29: b: 'retry.delay' must be a duration like '30s' or a number of seconds >= 0, got 'x'",
        "29: b: 'retry.factor' must be a number, got 'big'",
        "29: b: 'retry.jitter' must be a number, got '1'",
    ]


def test_hints_across_kinds_and_a_zero_run_timeout(tmp_path: Path) -> None:
    found = problems(tmp_path, "execution: {timeout: 0}\nsteps:\n  a: {comand: echo}\n")
    assert found[0] == (
        "1: 'timeout' must be more than 0 seconds, got 0; leave it out for no limit"
    )
    assert found[1].startswith(
        "3: a: unknown field 'comand'; did you mean 'command'? (a parameter of kind 'shell'"
    )
    assert len(found) == 2


def test_a_step_that_is_not_a_mapping(tmp_path: Path) -> None:
    found = problems(
        tmp_path, "steps:\n  a: echo hi\n  b: {kind: shell, command: x, depends_on: a}\n"
    )
    # b's dependency on the broken step is not reported as unknown
    assert found == ["2: a: must be a mapping of step fields (kind, depends_on, ...), got a string"]


def test_the_models_problems_carry_lines(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """\
steps:
  extract:
    kind: shell
    command: echo
  load:
    kind: shell
    command: echo
    depends_on:
      - extract
      - extrct
  noop:
    kind: shell
  bad-id!:
    kind: merge
  slow:
    kind: shell
    command: echo
    timeout: 0
""",
    )
    assert [found[0], *found[2:]] == [  # in the order of the file's lines
        "10: load: depends on unknown step 'extrct'; did you mean 'extract'?",
        "13: bad-id!: the id may use only letters, digits, '_', '.' and '-'",
        "15: slow: timeout must be a positive number of seconds, got 0.0",
    ]
    assert found[1].startswith("11: noop: ") and "command" in found[1]


def test_pools_given_as_defaults_count_when_the_file_is_validated() -> None:
    text = (
        "execution: {pools: {db: 1}}\n"
        "steps:\n  a: {kind: shell, command: echo, resources: {db: 1, gpu: 1}}\n"
    )
    with pytest.raises(ValidationError, match="uses pool 'gpu', which is not declared"):
        native.read(parse_document(text, "flow.yaml", "yaml"), {})
    wf = native.read(parse_document(text, "flow.yaml", "yaml"), {"pools": {"gpu": 2, "db": 5}})
    assert wf.settings.pools == {"gpu": 2, "db": 1}  # the file's own pool wins over a default


def test_a_cycle_is_a_cycle_error_at_its_first_step(tmp_path: Path) -> None:
    path = tmp_path / "flow.yaml"
    path.write_text(
        "steps:\n"
        "  a: {kind: merge, depends_on: c}\n"
        "  b: {kind: merge, depends_on: a}\n"
        "  c: {kind: merge, depends_on: b}\n"
    )
    with pytest.raises(CycleError) as exc:
        pardag.load(path)
    cycle = exc.value.cycle
    assert len(cycle) == 4 and cycle[0] == cycle[-1] and set(cycle) == {"a", "b", "c"}
    assert " -> ".join(cycle) in str(exc.value)
    line = {"a": 2, "b": 3, "c": 4}[cycle[0]]
    assert [p.where for p in exc.value.problems] == [f"{path}:{line}"]


def test_an_unknown_kind_is_named_at_its_line_with_a_suggestion(tmp_path: Path) -> None:
    found = problems(tmp_path, "steps:\n  a:\n    kind: shel\n    command: echo\n")
    assert found == ["3: a: kind 'shel' is unknown; did you mean 'shell'?"]


def test_file_and_model_problems_are_reported_together(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        "steps:\n"
        "  a: {kind: shell, command: echo, timeout: never}\n"
        "  b: {kind: shell, command: echo, depends_on: [a, zz]}\n",
    )
    assert found == [
        "2: a: 'timeout' must be a duration like '30s' or a number of seconds >= 0, got 'never'",
        "3: b: depends on unknown step 'zz'; declare it or fix the name",
    ]


def test_toml_and_json_problems_carry_lines(tmp_path: Path) -> None:
    toml_found = problems(
        tmp_path, '[steps.a]\nkind = "shell"\ncommand = "x"\ndepend_on = "b"\n', "toml"
    )
    assert toml_found == ["4: a: unknown field 'depend_on'; did you mean 'depends_on'?"]
    json_found = problems(
        tmp_path,
        '{"steps": {\n  "a": {"kind": "shell",\n    "command": "x", "timeout": [1]}}}',
        "json",
    )
    assert json_found == [
        "3: a: 'timeout' must be a duration like '30s' or a number of seconds >= 0, got [1]"
    ]


def test_forcing_the_format_on_a_file_without_a_steps_mapping(tmp_path: Path) -> None:
    path = tmp_path / "flow.yaml"
    path.write_text("name: x\nsteps: [a, b]\n")
    with pytest.raises(ValidationError) as exc:
        pardag.load(path, format="native")
    assert [str(p) for p in exc.value.problems] == [
        f"{path}:2: 'steps' must be a mapping, got ['a', 'b']"
    ]


# -- the examples -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_the_example_flows_run(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    result = pardag.load(path.relative_to(ROOT)).run()
    assert result.status == "succeeded", result.error
    steps = result.steps
    assert steps["rates"].attempts == 2  # failed once, retried
    assert result.outputs["clean"]["rejected"] == [
        {"order_id": "3", "currency": "USD", "amount": "not-a-number"}
    ]
    assert len(result.outputs["clean"]["good"]) == 4
    assert result.outputs["is_large"] is True  # 4 good rows > large_batch 3
    assert steps["row_load"].state == "skipped"
    assert "branch not taken" in (steps["row_load"].reason or "")
    assert result.outputs["audit"] == ["rejected order 3"]
    assert result.outputs["summary"] == "bulk-loaded 4 rows; total 564.98"
    # a templated shell command: the value arrived quoted, as one argument
    assert result.outputs["notify"]["stdout"] == "loaded bulk-loaded 4 rows; total 564.98\n"


def test_the_examples_are_one_flow_in_three_syntaxes() -> None:
    data = [parse_document(p.read_text(), str(p), p.suffix[1:]).data for p in EXAMPLES]
    for d in data:
        d.pop("$schema", None)
    assert len(data) == 3 and data[0] == data[1] == data[2]


def test_an_example_runs_from_the_command_line_of_a_user() -> None:
    code = (
        "import pardag; r = pardag.load('examples/flows/etl.yaml').run(); "
        "print(r.outputs['summary'])"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "bulk-loaded 4 rows; total 564.98\n"


# -- the examples in docs/formats.md ----------------------------------------------------------

FENCE = re.compile(r"^```(yaml|toml|json|text)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def doc_blocks() -> list[tuple[str, str, str | None]]:
    """(syntax, file text, the error text shown after it or None) in the native section."""
    text = (ROOT / "docs" / "formats.md").read_text()
    section = text.split("\n## The native steps file\n")[1].split("\n## ")[0]
    blocks = [(m.group(1), m.group(2), m.end()) for m in FENCE.finditer(section)]
    out: list[tuple[str, str, str | None]] = []
    for n, (syntax, body, end) in enumerate(blocks):
        if syntax == "text":
            continue
        shows_error = section[end:].lstrip().startswith("gives:")
        out.append((syntax, body, blocks[n + 1][1] if shows_error else None))
    return out


def test_the_native_section_of_the_docs_has_examples() -> None:
    syntaxes = [syntax for syntax, _, _ in doc_blocks()]
    assert {"yaml", "toml", "json"} <= set(syntaxes)
    assert any(error for _, _, error in doc_blocks())


@pytest.mark.parametrize(("syntax", "body", "error"), doc_blocks())
def test_the_docs_examples_do_what_the_docs_say(
    syntax: str, body: str, error: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path(f"flow.{syntax}").write_text(body)
    if error is not None:
        with pytest.raises(ValidationError) as exc:
            pardag.load(f"flow.{syntax}")
        assert str(exc.value) + "\n" == error
        return
    result = pardag.load(f"flow.{syntax}").run()
    assert result.status == "succeeded", result.error


def test_the_first_docs_example_takes_the_branch_it_says() -> None:
    syntax, body, _ = doc_blocks()[0]
    wf = native.read(parse_document(body, "flow.yaml", syntax), {})
    result = wf.run()
    assert result.outputs["load"]["stdout"] == "loading 120 rows in eu\n"
    assert result.outputs["report"] == {"load": result.outputs["load"]}


# -- the schema -------------------------------------------------------------------------------


def test_docs_schema_json_is_up_to_date() -> None:
    committed = (ROOT / "docs" / "schema.json").read_text()
    assert committed == render(), "regenerate: python -m pardag.formats.schema > docs/schema.json"


def test_the_schema_generator_runs_as_a_module() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pardag.formats.schema"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == render()


@pytest.fixture(scope="module")
def validator() -> Any:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((ROOT / "docs" / "schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_the_examples_follow_the_schema(path: Path, validator: Any) -> None:
    data = parse_document(path.read_text(), str(path), path.suffix[1:]).data
    assert list(validator.iter_errors(data)) == []


def test_the_schema_refuses_what_the_reader_refuses(validator: Any) -> None:
    good = parse_document(FULL, "f.yaml", "yaml").data
    assert list(validator.iter_errors(good)) == []
    for bad in (
        {"steps": {}, "nam": "x"},
        {"steps": {"a": {"kind": "shell", "comand": "x"}}},
        {"steps": {"a": {"kind": "shell", "command": "x", "depend_on": "b"}}},
        {"steps": {"a": {"kind": "condition", "command": "x"}}},  # command is shell's
        {"steps": {"a": {"retry": {"retries": 1, "dealy": 2}}}},
        {"steps": {"a": {"timeout": [1]}}},
        {"steps": {"a": {"kind": "nope"}}},
        {"execution": {"max_concurency": 2}, "steps": {}},
        {"execution": {"pools": {"db": 0}}, "steps": {}},
        {"steps": []},
    ):
        assert list(validator.iter_errors(bad)), bad


def test_a_language_and_code_name_the_kind(tmp_path: Path) -> None:
    flow = tmp_path / "langs.yaml"
    flow.write_text(
        "steps:\n"
        "  greet:\n"
        "    language: bash\n"
        '    code: echo \'{"hello":"world"}\'\n'
        "  shout:\n"
        "    language: lua\n"
        "    depends_on: greet\n"
        "    code: |\n"
        "      function run(inputs) return string.upper(inputs.greet.hello) end\n"
        "  both:\n"
        "    language: bash\n"
        "    kind: shell\n"
        "    code: echo\n"
    )
    with pytest.raises(ValidationError, match="gives both 'language' and 'kind'; keep one"):
        pardag.load(flow)
    flow.write_text(flow.read_text().split("  both:")[0])
    wf = pardag.load(flow)
    assert wf.steps["greet"].kind == "shell" and wf.steps["shout"].kind == "lua"
    assert wf.run().outputs["shout"] == "WORLD"


def test_bash_code_runs_in_bash_and_sh_code_in_sh(tmp_path: Path) -> None:
    flow = tmp_path / "shells.yaml"
    flow.write_text(
        "steps:\n"
        "  b:\n"
        "    language: bash\n"
        "    code: echo hi\n"
        "  s:\n"
        "    language: sh\n"
        "    code: echo hi\n"
        "  chosen:\n"
        "    language: bash\n"
        "    shell: dash\n"
        "    code: echo hi\n"
        "  under_params:\n"
        "    language: bash\n"
        "    params: {shell: zsh}\n"
        "    code: echo hi\n"
    )
    steps = pardag.load(flow).steps
    assert steps["b"].params["shell"] == "bash"
    assert "shell" not in steps["s"].params
    assert steps["chosen"].params["shell"] == "dash"
    assert steps["under_params"].params["shell"] == "zsh"


def test_an_unknown_language_is_named_as_a_language_and_nothing_else(tmp_path: Path) -> None:
    flow = tmp_path / "langs.yaml"
    flow.write_text(
        "steps:\n  b:\n    code: 'def run(:'\n  a:\n    language: cobol\n    code: DISPLAY 'HI'.\n"
    )
    with pytest.raises(ValidationError) as info:
        pardag.load(flow)
    messages = [str(p) for p in info.value.problems]
    assert messages == [  # in the order of the file's lines, whichever check found each
        f"{flow}:2: step 'b': Python syntax error in 'code' line 1: invalid syntax: 'def run(:'; "
        "fix the code",
        f"{flow}:4: step 'a': language 'cobol' is unknown; use one of lua, shell, bash, sh, "
        "python, javascript, js, node, nodejs, wasm",
    ]
