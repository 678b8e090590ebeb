"""Shell-orchestrator YAML: real ``sh`` subprocesses, real files in ``tmp_path``."""

from __future__ import annotations

import json
import shlex
import sys
import textwrap
from pathlib import Path

import pytest

import pardag
from pardag import CycleError, StepState, ValidationError, Workflow
from pardag.kinds.shellflow import PreconditionFailed
from tests.support import eventually_gone

pytestmark = pytest.mark.timeout(60)

EXAMPLE = Path(__file__).parents[2] / "examples" / "flows" / "shellflow_build.yaml"


def flow(tmp_path: Path, text: str) -> Workflow:
    """The workflow in a YAML file holding ``text``, read by ``pardag.load``."""
    path = tmp_path / "flow.yaml"
    path.write_text(textwrap.dedent(text))
    return pardag.load(path)


def problems(tmp_path: Path, text: str) -> list[str]:
    """The problems ``pardag.load`` reports for ``text``, as strings."""
    with pytest.raises(ValidationError) as caught:
        flow(tmp_path, text)
    return [str(p) for p in caught.value.problems]


def stdout(result: pardag.RunResult, step: str) -> str:
    output = result.outputs[step]
    assert isinstance(output, dict)
    return str(output["stdout"])


# -- reading ------------------------------------------------------------------------------


def test_a_steps_list_with_commands_is_read_as_shellflow(tmp_path: Path) -> None:
    wf = flow(
        tmp_path,
        """
        name: detect
        steps:
          - name: only
            command: "true"
        """,
    )
    assert wf.name == "detect"
    assert wf.steps["only"].kind == "shellflow"
    assert wf.source == str(tmp_path / "flow.yaml")
    assert wf.locations["only"] == f"{tmp_path / 'flow.yaml'}:4"


def test_positional_params_are_bound_to_dollar_one_and_two(tmp_path: Path) -> None:
    wf = flow(
        tmp_path,
        """
        params: "first 'second word'"
        steps:
          - name: show
            command: printf '%s|%s|%s' "$1" "$2" "$#"
        """,
    )
    assert stdout(wf.run(), "show") == "first|second word|2"
    assert stdout(wf.run(params={"params": "x y z"}), "show") == "x|y|3"
    assert stdout(wf.run(params={"params": ["a b", 7]}), "show") == "a b|7|2"
    assert stdout(wf.run(params={"params": 2.0}), "show") == "2.0||1"


def test_env_as_a_mapping_reaches_commands_and_runs_override_it(tmp_path: Path) -> None:
    wf = flow(
        tmp_path,
        """
        env:
          BRANCH: main
          COUNT: 3
        steps:
          - name: show
            command: printf '%s-%s' "$BRANCH" "$COUNT"
        """,
    )
    assert stdout(wf.run(), "show") == "main-3"
    assert stdout(wf.run(params={"BRANCH": "dev"}), "show") == "dev-3"


@pytest.mark.parametrize(
    "name", ["LD_PRELOAD", "BASH_ENV", "ENV", "PATH", "IFS", "SHELLOPTS", "PYTHONSTARTUP"]
)
def test_a_run_param_may_not_set_a_variable_that_changes_what_runs(
    tmp_path: Path, name: str
) -> None:
    """Run params that look like variables are exported to every command; from --set (or a
    webhook body) ``BASH_ENV=evil.sh`` would run the attacker's script in each bash step."""
    evil = tmp_path / "evil.sh"
    evil.write_text(f"touch {tmp_path / 'X'}\n")
    wf = flow(
        tmp_path,
        """
        env:
          BRANCH: main
        steps:
          - name: show
            command: bash -c 'echo "$BRANCH"'
        """,
    )
    with pytest.raises(pardag.ArgumentError, match=f"run param '{name}' would set the"):
        wf.run(params={name: str(evil)})
    assert not (tmp_path / "X").exists()
    # and never exported, whatever the caller: the kind leaves such params out itself
    from pardag.kinds.shellflow import environment

    assert environment({}, {name: str(evil), "BRANCH": "dev"}, {}) == {"BRANCH": "dev"}


def test_the_files_own_env_may_set_such_a_variable(tmp_path: Path) -> None:
    wf = flow(
        tmp_path,
        f"""
        env:
          PATH: "{tmp_path}/bin:/usr/bin:/bin"
        steps:
          - name: show
            command: printf '%s' "$PATH"
        """,
    )
    assert stdout(wf.run(), "show") == f"{tmp_path}/bin:/usr/bin:/bin"
    assert "PATH" not in wf.params  # so no run param overrides it either


def test_env_as_a_list_expands_earlier_entries(tmp_path: Path) -> None:
    wf = flow(
        tmp_path,
        """
        env:
          - BASE=/srv
          - DATA: ${BASE}/data
          - LOGS=$BASE/logs
          - UNKNOWN=$NOT_SET_ANYWHERE_H3
        steps:
          - name: show
            command: printf '%s %s %s' "$DATA" "$LOGS" "$UNKNOWN"
            env: [LOGS=$DATA/logs]
        """,
    )
    assert stdout(wf.run(), "show") == "/srv/data /srv/data/logs $NOT_SET_ANYWHERE_H3"


def test_args_are_one_word_each_and_expand_variables(tmp_path: Path) -> None:
    wf = flow(
        tmp_path,
        """
        params: P1
        env: {WHO: world}
        steps:
          - name: words
            command: printf '<%s>'
            args: ["a b; echo injected", "$WHO", "$1"]
        """,
    )
    assert stdout(wf.run(), "words") == "<a b; echo injected><world><P1>"


def test_script_steps_run_in_sh_or_in_the_interpreter_named_by_command(tmp_path: Path) -> None:
    wf = flow(
        tmp_path,
        f"""
        params: one two
        steps:
          - name: shell
            script: |
              for word in "$@"; do
                printf '[%s]' "$word"
              done
          - name: python
            command: {shlex.quote(sys.executable)}
            script: |
              import sys
              print("python got", sys.argv[1:])
        """,
    )
    result = wf.run()
    assert stdout(result, "shell") == "[one][two]"
    assert stdout(result, "python") == "python got ['one', 'two']\n"


# -- output variables ---------------------------------------------------------------------


def test_output_variables_reach_descendants_and_not_other_branches(tmp_path: Path) -> None:
    wf = flow(
        tmp_path,
        """
        steps:
          - name: version
            command: echo "  1.2.3  "
            output: {stdout: VERSION, stderr: WARNINGS}
          - name: middle
            command: echo "mid" >&2
            depends: version
          - name: deep
            command: printf 'v=%s w=%s' "$VERSION" "$WARNINGS"
            depends: [middle]
          - name: unrelated
            command: printf 'v=%s' "${VERSION:-unset}"
        """,
    )
    result = wf.run()
    assert result.ok
    assert result.outputs["version"]["VERSION"] == "1.2.3"
    assert result.outputs["version"]["WARNINGS"] == ""
    assert result.outputs["middle"]["vars"] == {"VERSION": "1.2.3", "WARNINGS": ""}
    assert stdout(result, "deep") == "v=1.2.3 w="
    assert stdout(result, "unrelated") == "v=unset"


def test_the_nearest_step_setting_a_variable_wins(tmp_path: Path) -> None:
    wf = flow(
        tmp_path,
        """
        steps:
          - name: last
            command: printf '%s' "$TAG"
            depends: [second, first]
          - name: first
            command: echo one
            output: TAG
          - name: second
            command: echo two
            output: TAG
            depends: first
        """,
    )
    assert wf.steps["last"].depends_on == ("first", "second")  # in the order they run
    assert stdout(wf.run(), "last") == "two"


def test_output_variables_are_read_by_predicates(tmp_path: Path) -> None:
    wf = flow(
        tmp_path,
        """
        steps:
          - name: detect
            command: echo linux
            output: OS
          - name: on_linux
            command: echo yes
            depends: detect
            when: {predicate: "$OS", expected: linux}
            preconditions: [{predicate: "`echo $OS | tr a-z A-Z`", expected: "re:^LIN"}]
        """,
    )
    result = wf.run()
    assert result.steps["on_linux"].state is StepState.SUCCEEDED


def test_output_variables_are_written_into_single_quotes_as_users_files_expect(
    tmp_path: Path,
) -> None:
    """``test '$myVar' = 'test123'``: the value is written in before ``sh`` reads the text."""
    wf = flow(
        tmp_path,
        """
        steps:
          - name: produce
            command: echo test123
            output: myVar
          - name: command
            command: test '$myVar' = 'test123'
            depends: produce
          - name: args
            command: test
            args: ["${myVar}", "=", "test123"]
            depends: produce
          - name: script
            script: |
              test '$myVar' = 'test123' || exit 1
              printf %s '${myVar}-$HOME'
            depends: produce
          - name: predicates
            command: "true"
            depends: produce
            when: {predicate: "`test '$myVar' = 'test123' && echo yes`", expected: "yes"}
            preconditions: [{predicate: "'$myVar'", expected: "'test123'"}]
        """,
    )
    result = wf.run(params={"HOME": "/home/run"})
    assert result.ok, result.error
    assert stdout(result, "script") == "test123-$HOME"  # only output variables are written


HOSTILE = [
    "'; touch X; '",
    "$(touch X)",
    "`touch X`",
    '"; touch X #',
    "a\\b\\",
    "one\ntouch X\nthree",
    "*",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_a_hostile_output_variable_arrives_intact_in_every_field_and_never_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "value.txt").write_text(value)
    expected = json.dumps(value)  # JSON is YAML: the value as a quoted scalar
    wf = flow(
        tmp_path,
        f"""
        steps:
          - name: produce
            command: cat value.txt
            output: V
          - name: single
            command: printf %s '$V'
            depends: produce
          - name: double
            command: printf %s "pre${{V}}post"
            depends: produce
          - name: bare
            command: printf %s $V
            depends: produce
          - name: args
            command: printf %s
            args: ["$V"]
            depends: produce
          - name: script
            script: printf %s "`printf %s '$V'`"
            depends: produce
          - name: predicates
            command: "true"
            depends: produce
            when: {{predicate: "$V", expected: {expected}}}
            preconditions: [{{predicate: "`printf %s '$V'`", expected: {expected}}}]
        """,
    )
    result = wf.run()
    assert result.ok, result.error
    for step in ("single", "bare", "args", "script"):
        assert stdout(result, step) == value, step
    assert stdout(result, "double") == f"pre{value}post"
    assert result.steps["predicates"].state is StepState.SUCCEEDED
    assert not (tmp_path / "X").exists()


def test_a_quote_left_open_around_a_variable_fails_the_step_saying_where(tmp_path: Path) -> None:
    wf = flow(
        tmp_path,
        """
        steps:
          - name: produce
            command: echo x
            output: V
          - name: open
            command: "echo '$V"
            depends: produce
        """,
    )
    reason = wf.run().steps["open"].reason or ""
    assert "command: the ' opened on line 1 is never closed" in reason


# -- dependencies -------------------------------------------------------------------------


def test_after_waits_for_the_step_and_all_its_descendants(tmp_path: Path) -> None:
    log = tmp_path / "order.log"
    wf = flow(
        tmp_path,
        f"""
        env: {{LOG: {log}}}
        steps:
          - name: cleanup
            command: echo cleanup >> "$LOG"
            after: build
          - name: report
            command: echo report >> "$LOG"
            after: [build]
          - name: build
            command: echo build >> "$LOG"
          - name: test
            command: sleep 0.2; echo test >> "$LOG"
            depends: build
          - name: publish
            command: sleep 0.2; echo publish >> "$LOG"
            depends: test
          - name: lint
            command: echo lint >> "$LOG"
        """,
    )
    assert wf.steps["cleanup"].depends_on == ("build", "test", "publish")
    assert wf.steps["report"].depends_on == ("build", "test", "publish")  # not on cleanup
    assert wf.steps["lint"].depends_on == ()
    assert wf.run().ok
    lines = log.read_text().split()
    assert lines.index("cleanup") > lines.index("publish") > lines.index("test")
    assert lines.index("report") > lines.index("publish")


def test_after_leaves_out_the_step_itself_and_what_depends_on_it(tmp_path: Path) -> None:
    wf = flow(
        tmp_path,
        """
        steps:
          - name: root
            command: "true"
          - name: a
            command: "true"
            depends: root
          - name: b
            command: "true"
            depends: a
            after: root
          - name: c
            command: "true"
            depends: b
        """,
    )
    assert wf.steps["b"].depends_on == ("root", "a")
    assert wf.run().ok


# -- when, preconditions, retries, continue_on_error --------------------------------------


def test_a_when_that_does_not_hold_skips_the_step_and_its_descendants(tmp_path: Path) -> None:
    wf = flow(
        tmp_path,
        """
        env: {BRANCH: feature}
        steps:
          - name: deploy
            command: echo deploying
            when: {predicate: "$BRANCH", expected: main}
          - name: announce
            command: echo announced
            depends: deploy
          - name: always
            command: echo always
        """,
    )
    result = wf.run()
    assert result.status == "succeeded"
    assert result.steps["deploy"].state is StepState.SKIPPED
    assert result.steps["deploy"].reason == "condition false"
    assert result.steps["announce"].state is StepState.SKIPPED
    assert result.steps["announce"].reason == "upstream skipped: deploy"
    assert result.steps["always"].state is StepState.SUCCEEDED
    result = wf.run(params={"BRANCH": "main"})
    assert result.steps["announce"].state is StepState.SUCCEEDED


def test_when_matches_a_regex_after_re(tmp_path: Path) -> None:
    wf = flow(
        tmp_path,
        """
        steps:
          - name: weekday
            command: echo ok
            when: {predicate: "`echo release-2024`", expected: "re:^release-[0-9]+$"}
          - name: never
            command: echo no
            when: {predicate: "`echo release-x`", expected: "re:^release-[0-9]+$"}
        """,
    )
    result = wf.run()
    assert result.steps["weekday"].state is StepState.SUCCEEDED
    assert result.steps["never"].reason == "condition false"


def test_a_slow_when_does_not_hold_up_other_steps(tmp_path: Path) -> None:
    """The predicate is awaited, not run on the event loop: a step beside it finishes first."""
    wf = flow(
        tmp_path,
        """
        steps:
          - name: gated
            command: echo gated
            when: {predicate: "`sleep 1; echo no`", expected: "yes"}
          - name: quick
            command: echo quick
        """,
    )
    recorder = pardag.Recorder()
    result = wf.run(listeners=[recorder])
    order = [(e.kind.value, e.step) for e in recorder.events]
    assert result.steps["gated"].reason == "condition false"
    assert order.index(("step_succeeded", "quick")) < order.index(("step_skipped", "gated"))


def test_a_when_is_not_retried(tmp_path: Path) -> None:
    wf = flow(
        tmp_path,
        """
        steps:
          - name: gated
            command: echo gated
            when: {predicate: "$X", expected: "set"}
            retry_policy: {limit: 3, interval_sec: 0}
        """,
    )
    step = wf.run().steps["gated"]
    assert (step.state, step.attempts) == (StepState.SKIPPED, 1)


def test_a_failed_precondition_fails_once_but_failed_commands_are_retried(
    tmp_path: Path,
) -> None:
    attempts = tmp_path / "attempts"
    wf = flow(
        tmp_path,
        f"""
        env: {{COUNT: {attempts}, STAGE: dev}}
        steps:
          - name: guarded
            command: echo x >> "$COUNT.guarded"
            preconditions:
              - {{predicate: "$STAGE", expected: prod}}
            retry_policy: {{limit: 3}}
          - name: flaky
            command: echo x >> "$COUNT.flaky"; exit 1
            retry_policy: {{limit: 2, interval_sec: 0}}
        """,
    )
    result = wf.run(on_failure="continue")
    guarded = result.steps["guarded"]
    assert guarded.state is StepState.FAILED
    assert guarded.attempts == 1
    assert guarded.error is not None and isinstance(guarded.error.cause, PreconditionFailed)
    assert "precondition failed: expected 'prod', got 'dev'" in (guarded.reason or "")
    assert not Path(f"{attempts}.guarded").exists()  # the command never ran
    flaky = result.steps["flaky"]
    assert flaky.attempts == 3
    assert Path(f"{attempts}.flaky").read_text().count("x") == 3
    assert "command exited with code 1" in (flaky.reason or "")


def test_a_retried_command_that_recovers_succeeds(tmp_path: Path) -> None:
    marker = tmp_path / "tries"
    wf = flow(
        tmp_path,
        f"""
        steps:
          - name: second_time_lucky
            script: |
              echo x >> {marker}
              [ "$(wc -l < {marker})" -ge 2 ]
            retry_policy: {{limit: 5}}
        """,
    )
    result = wf.run()
    assert result.ok
    assert result.steps["second_time_lucky"].attempts == 2


def test_continue_on_error_lets_the_run_succeed_and_skips_descendants(tmp_path: Path) -> None:
    wf = flow(
        tmp_path,
        """
        steps:
          - name: optional
            command: echo "no network" >&2; exit 4
            continue_on_error: true
          - name: after_optional
            command: echo never
            depends: optional
          - name: main
            command: echo main
        """,
    )
    result = wf.run()
    assert result.status == "succeeded"
    assert result.steps["optional"].state is StepState.FAILED
    assert "no network" in (result.steps["optional"].reason or "")
    assert result.steps["after_optional"].reason == "upstream failed: optional"
    assert result.steps["main"].state is StepState.SUCCEEDED


def test_a_predicate_the_shell_cannot_expand_fails_the_step(tmp_path: Path) -> None:
    wf = flow(
        tmp_path,
        """
        steps:
          - name: broken
            command: echo never
            when: {predicate: "$(exit 3)${X:?is required}", expected: ""}
        """,
    )
    result = wf.run()
    step = result.steps["broken"]
    assert step.state is StepState.FAILED
    assert step.attempts == 1
    assert "could not be expanded" in (step.reason or "")
    assert "is required" in (step.reason or "")


def test_a_cancelled_step_has_its_process_group_killed(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    wf = Workflow("kill")
    wf.add(
        "hang",
        kind="shellflow",
        timeout=0.5,
        params={"command": f"sleep 30 & echo $! > {pid_file}; wait"},
    )
    result = wf.run()
    assert result.steps["hang"].reason == "timed out after 0.5s"
    assert eventually_gone(int(pid_file.read_text()))


def test_the_kind_works_from_python_and_checks_its_params() -> None:
    wf = Workflow("vars")
    wf.add("version", kind="shellflow", params={"command": "echo $1", "output": "VERSION"})
    wf.add("tag", kind="shellflow", depends_on=["version"], params={"command": "echo v$VERSION"})
    result = wf.run(params={"params": "1.2"})
    assert result.outputs["tag"]["stdout"] == "v1.2\n"
    assert result.outputs["tag"]["vars"] == {"VERSION": "1.2"}

    bad = Workflow("bad")
    bad.add("nothing", kind="shellflow", params={"env": {"1X": "y"}})
    bad.add("reserved", kind="shellflow", params={"script": "true", "output": {"stdout": "vars"}})
    with pytest.raises(ValidationError) as caught:
        bad.validate()
    assert [str(p) for p in caught.value.problems] == [
        "step 'nothing': a shellflow step needs a command (shell text) or a script",
        "step 'nothing': env must map variable names to strings, e.g. {'BRANCH': 'main'}",
        "step 'reserved': output variable 'vars' would clash with the step's 'vars' output; "
        "rename it",
    ]


# -- problems -----------------------------------------------------------------------------


def test_an_unknown_field_is_named_with_its_line_and_the_closest_field(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
        steps:
          - name: build
            command: make
            depnds: setup
            retry_policy: {limt: 2}
        """,
    )
    path = tmp_path / "flow.yaml"
    assert found == [
        f"{path}:5: step 'build': unknown field 'depnds'; did you mean 'depends'?",
        f"{path}:6: step 'build': unknown field 'limt'; did you mean 'limit'?",
    ]


def test_unknown_steps_in_depends_and_after_are_problems(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
        steps:
          - name: build
            command: make
          - name: test
            command: make test
            depends: [biuld]
            after: deploy
        """,
    )
    path = tmp_path / "flow.yaml"
    assert found == [
        f"{path}:7: step 'test': depends names unknown step 'biuld'; did you mean 'build'?",
        f"{path}:8: step 'test': after names unknown step 'deploy'; declare it or fix the name",
    ]


def test_duplicate_names_are_a_problem_naming_both_places(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
        steps:
          - name: build
            command: make
          - name: build
            command: make again
        """,
    )
    path = tmp_path / "flow.yaml"
    assert found == [
        f"{path}:5: step 'build': the name 'build' is already used by step 1 ({path}:3); "
        "give each step a unique name"
    ]


def test_wrong_types_are_all_reported_at_once(tmp_path: Path) -> None:
    found = "\n".join(
        problems(
            tmp_path,
            """
            params: {a: 1}
            env: [JUST_A_NAME]
            steps:
              - name: one
                command: ["make"]
                depends: 3
                continue_on_error: "yes"
                retry_policy: {limit: -1}
                output: {stdout: 1BAD}
              - name: two
                script: echo
                args: [x]
                when: {predicate: "$X"}
                preconditions: [{predicate: "$Y", expected: "re:("}]
              - name: three
                command: echo
                output: {stdout: vars}
            """,
        )
    )
    for message in [
        ":2: params must be a string of space-separated values",
        ":3: env item 'JUST_A_NAME' must be 'KEY=value' or {KEY: value}",
        ":6: step 'one': command must be non-empty shell text",
        ":7: step 'one': depends must be a step name or a list of names",
        ":8: step 'one': continue_on_error must be true or false, got 'yes'",
        ":9: step 'one': limit must be a whole number >= 0, got -1",
        ":10: step 'one': output variable '1BAD' must be a name like VERSION",
        ":13: step 'two': args go with command",
        ":14: step 'two': add expected: the text the predicate must expand to",
        ":15: step 'two': expected 're:(' is not a valid regular expression",
        ":18: step 'three': output variable 'vars' would clash with the step's 'vars' output",
    ]:
        assert message in found


def test_a_step_without_command_or_script_is_a_problem(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
        steps:
          - name: build
            command: make
          - name: nothing
            depends: build
        """,
    )
    assert found == [
        f"{tmp_path / 'flow.yaml'}:5: step 'nothing': the step needs a command (shell text) "
        "or a script"
    ]


def test_a_cycle_is_reported_with_its_path(tmp_path: Path) -> None:
    with pytest.raises(CycleError) as caught:
        flow(
            tmp_path,
            """
            steps:
              - name: a
                command: "true"
                depends: b
              - name: b
                command: "true"
                depends: a
            """,
        )
    assert caught.value.cycle in (["a", "b", "a"], ["b", "a", "b"])
    assert "flow.yaml:" in str(caught.value)


def test_a_bad_step_name_is_reported_at_its_line(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
        steps:
          - name: build app
            command: make
        """,
    )
    assert len(found) == 1
    assert found[0].startswith(f"{tmp_path / 'flow.yaml'}:3: step 'build app': the id may use")


def test_bad_run_params_fail_the_step_saying_why(tmp_path: Path) -> None:
    wf = flow(
        tmp_path,
        """
        steps:
          - name: show
            command: echo "$1"
        """,
    )
    result = wf.run(params={"params": "unterminated 'quote"})
    assert result.status == "failed"
    assert "run param 'params'" in (result.steps["show"].reason or "")


# -- the example --------------------------------------------------------------------------


def test_the_example_runs(tmp_path: Path) -> None:
    wf = pardag.load(EXAMPLE)
    quiet = {"TMPDIR": str(tmp_path), "CHAT_WEBHOOK": ""}
    assert wf.steps["package"].depends_on == ("compile", "lint", "unit_tests")
    result = wf.run(params=quiet)
    assert result.status == "succeeded", result.error
    archive = Path(result.outputs["package"]["ARCHIVE"])
    assert archive.parent.parent == tmp_path
    assert archive.name == "demo-app-1.4.2.tar"
    assert archive.exists()
    assert result.steps["publish"].reason == "condition false"
    assert result.steps["notify"].state is StepState.FAILED
    result = wf.run(params={**quiet, "BRANCH": "main", "params": "2.0"})
    assert result.status == "succeeded"
    assert stdout(result, "publish").startswith("publishing ")
    assert stdout(result, "publish").strip().endswith("demo-app-2.0.tar")
