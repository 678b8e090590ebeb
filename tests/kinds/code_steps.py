"""Scaffolding shared by the Lua, JavaScript and WebAssembly tests.

``Language`` runs or validates a one-step workflow and says why the step failed. The checks
every embedded language must pass alike are written once, in ``RuntimeChecks`` (all three)
and ``CodeChecks`` (the kinds taking ``code``); a test file subclasses one as ``Test...`` and
gives its language's sources, so each check is collected once per language.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import pytest

from pardag import RunResult, StepState, StepTimeout, ValidationError, Workflow
from pardag.errors import StepFailed
from pardag.formats import load
from tests.support import step_problems


@dataclass(frozen=True)
class Language:
    """One embedded language as its tests use it: the kind, the step's id, its error type."""

    kind: str
    step: str
    error: type[Exception]

    def workflow(self, source: Any, **options: Any) -> Workflow:
        """One step: ``source`` is its params when a mapping, else its ``code``."""
        params = dict(source) if isinstance(source, Mapping) else {"code": source}
        wf = Workflow(self.kind)
        wf.add(self.step, params=params, **{"kind": self.kind, **options})
        return wf

    def run(self, source: Any, **options: Any) -> RunResult:
        return self.workflow(source, **options).run()

    def problems(self, source: Any, **options: Any) -> list[str]:
        return step_problems(self.workflow(source, **options), self.step)

    def failure(self, result: RunResult, step: str | None = None) -> str:
        """Why the step failed, after checking it failed with this language's error."""
        outcome = result.steps[step or self.step]
        assert outcome.state is StepState.FAILED
        assert isinstance(outcome.error, StepFailed)
        assert isinstance(outcome.error.cause, self.error)
        return str(outcome.error.cause)


class RuntimeChecks:
    """What every embedded runtime does alike: a worker process by default, a timeout that
    stops, the output cap."""

    language: ClassVar[Language]
    kind_module: ClassVar[ModuleType]
    """The kind's module: its caps keep their names there."""
    quick: ClassVar[tuple[Any, Any]]
    """A source whose ``run`` returns at once, and its output."""
    endless: ClassVar[Any]
    """A source whose ``run`` never returns."""
    too_big: ClassVar[Any]
    """A source whose output takes more than ``MAX_OUTPUT`` bytes of JSON."""

    def test_a_worker_process_by_default_threads_on_request(self) -> None:
        source, output = self.quick
        result = self.language.run(source)
        assert result.steps[self.language.step].executor == "processes"
        assert result.outputs[self.language.step] == output
        on_threads = self.language.run(source, executor="threads")
        assert on_threads.steps[self.language.step].executor == "threads"
        assert on_threads.outputs[self.language.step] == output

    def test_no_other_executor(self) -> None:
        [message] = self.language.problems(self.quick[0], executor="inline")
        assert message == (
            f"a {self.language.kind} step runs on 'processes' (the default: a worker process, "
            "killed at the timeout), 'threads' (in the runner's process) or 'dask' (on a Dask "
            "worker), not 'inline'; remove the executor setting"
        )

    def test_an_infinite_loop_is_stopped_by_the_step_timeout(self) -> None:
        result = self.language.run(self.endless, timeout=0.3)
        assert result.status == "failed"
        step = result.steps[self.language.step]
        assert step.state is StepState.FAILED
        assert isinstance(step.error, StepTimeout)

    def test_a_timeout_that_is_not_reached_changes_nothing(self) -> None:
        source, output = self.quick
        assert self.language.run(source, timeout=30).outputs[self.language.step] == output

    def test_an_output_over_the_cap_fails_saying_so(self) -> None:
        message = self.language.failure(self.language.run(self.too_big))
        assert "over the cap" in message
        assert str(self.kind_module.MAX_OUTPUT) in message


class CodeChecks(RuntimeChecks):
    """What the kinds whose ``code`` defines ``run`` (``CodeKind``) do alike."""

    label: ClassVar[str]
    """The language's name in messages."""
    missing_run: ClassVar[str]
    run_is_a_number: ClassVar[str]
    syntax_error: ClassVar[tuple[str, str]]
    """Code with a syntax error on its line 2, and how the runtime names that line."""
    counter: ClassVar[str]
    """A ``run`` counting its calls in a global, returning the count."""
    doubles_param_n: ClassVar[str]
    memory_hog: ClassVar[str]
    """A ``run`` using 16 MiB of memory."""
    one_two_three: ClassVar[str]
    """A ``run`` returning ``[1, 2, 3]``."""
    reads_inputs: ClassVar[tuple[str, Any]]
    """A ``run`` reading the outputs of ``nums`` and ``cfg`` (see the test), and its output."""
    expensive_rows: ClassVar[str]
    """A ``run`` returning the names of the rows of input ``load`` priced over 10."""
    parallel: ClassVar[str]
    """Code keeping ``{n}`` in a global through some work, returning it and the work's sum."""
    flow: ClassVar[str]
    """A workflow file: ``nums`` returns [1, 2, 3], ``total`` (line 9) their sum."""
    flow_typo: ClassVar[tuple[str, str, str]]
    """Text in ``total``'s code, that text with a syntax error, and what the message says."""

    def test_missing_run_is_named(self) -> None:
        message = self.language.failure(self.language.run(self.missing_run))
        assert f"No 'run' function found in step {self.language.step}" in message

    def test_run_that_is_not_a_function_is_named(self) -> None:
        message = self.language.failure(self.language.run(self.run_is_a_number))
        assert f"'run' is not callable in step {self.language.step}" in message
        assert "number" in message

    def test_syntax_errors_are_validation_problems_with_the_line(self) -> None:
        code, line_2 = self.syntax_error
        [message] = self.language.problems(code)
        assert f"{self.label} syntax error" in message
        assert line_2 in message

    def test_code_must_be_a_non_empty_string(self) -> None:
        assert "needs params 'code'" in self.language.problems(42)[0]
        assert "needs params 'code'" in self.language.problems("   ")[0]

    def test_each_attempt_starts_from_a_fresh_runtime(self) -> None:
        wf = Workflow(self.language.kind)
        wf.add("a", kind=self.language.kind, params={"code": self.counter})
        wf.add("b", kind=self.language.kind, params={"code": self.counter}, depends_on=["a"])
        assert wf.run().outputs == {"a": 1, "b": 1}

    def test_run_params_are_the_second_argument(self) -> None:
        wf = self.language.workflow(self.doubles_param_n)
        assert wf.run(params={"n": 5}).outputs[self.language.step] == 10

    def test_memory_is_capped(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(self.kind_module, "MAX_MEMORY", 8 * 1024 * 1024)
        message = self.language.failure(self.language.run(self.memory_hog))
        assert f"ran out of its 8 MiB of {self.label} memory" in message

    def test_inputs_are_by_dependency_id_and_a_root_step_takes_none(self) -> None:
        code, output = self.reads_inputs
        wf = Workflow(self.language.kind)
        wf.add("nums", kind=self.language.kind, params={"code": self.one_two_three})
        wf.add("cfg", lambda: {"scale": 10, "tags": ["a", "b"], "none": None})
        wf.add("sum", kind=self.language.kind, depends_on=["nums", "cfg"], params={"code": code})
        result = wf.run()
        assert result.ok
        assert result.outputs["sum"] == output

    def test_a_step_between_python_steps(self) -> None:
        wf = Workflow("mixed")
        wf.add("load", lambda: [{"name": "a", "price": 3}, {"name": "b", "price": 40}])
        code = {"code": self.expensive_rows}
        wf.add("filter", kind=self.language.kind, depends_on=["load"], params=code)
        wf.add("report", lambda filter: ", ".join(filter).upper(), depends_on=["filter"])
        result = wf.run()
        assert result.ok
        assert result.outputs["filter"] == ["b"]
        assert result.outputs["report"] == "B"

    def test_parallel_steps_keep_their_own_state(self) -> None:
        wf = Workflow(self.language.kind)
        for n in range(8):
            wf.add(f"s{n}", kind=self.language.kind, params={"code": self.parallel.format(n=n)})
        result = wf.run()
        assert result.ok
        expected = sum(i % 7 for i in range(1, 20001))
        assert result.outputs == {f"s{n}": {"n": n, "s": expected} for n in range(8)}

    def test_a_workflow_file_runs_the_steps(self, tmp_path: Path) -> None:
        path = tmp_path / "flow.yaml"
        path.write_text(self.flow)
        result = load(path).run()
        assert result.ok
        assert result.outputs == {"nums": [1, 2, 3], "total": 6}

    def test_a_syntax_error_in_a_file_names_the_file_step_and_code_line(
        self, tmp_path: Path
    ) -> None:
        text, typo, said = self.flow_typo
        path = tmp_path / "flow.yaml"
        path.write_text(self.flow.replace(text, typo))
        with pytest.raises(ValidationError) as info:
            load(path).validate()
        [problem] = info.value.problems
        assert problem.step == "total"
        assert problem.where == f"{path}:9"  # the step's line; the code line is in the message
        assert said in problem.message
