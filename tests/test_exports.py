"""The public names: ``pardag.__all__`` is exactly ``PUBLIC``, each one shown as ``pardag.X``.

Modelled on httpx's tests/test_exported_members.py and trio's test_exports.py. Adding or
removing a public name is a deliberate change of ``PUBLIC``; an exception class defined
anywhere in the package is either exported or listed in ``INTERNAL`` (and in the docstring of
``pardag.errors``, with the reason), so a new error cannot be forgotten.
"""

from __future__ import annotations

import importlib
import inspect
import pickle
import pkgutil
import re
import textwrap
import traceback
from pathlib import Path
from typing import Any

import pytest

import pardag
import pardag.errors

PUBLIC = {
    "ApprovalMissing",
    "ApprovalRejected",
    "ArgumentError",
    "CommandFailed",
    "CycleError",
    "Event",
    "EventKind",
    "ExpressionError",
    "HTTPFailed",
    "JavaScriptStepError",
    "JavaScriptTimeout",
    "Listener",
    "LuaStepError",
    "LuaTimeout",
    "MissingRuntime",
    "Mode",
    "NodeError",
    "OnFailure",
    "PardagError",
    "PreconditionFailed",
    "Problem",
    "PythonStepError",
    "Recorder",
    "RetryPolicy",
    "RunCancelled",
    "RunOptions",
    "RunResult",
    "RunStatus",
    "RunTimedOut",
    "Secret",
    "SecretMissing",
    "Settings",
    "SettingsError",
    "Step",
    "StepCancelled",
    "StepFailed",
    "StepOptions",
    "StepPaused",
    "StepResult",
    "StepSkipped",
    "StepState",
    "StepTimeout",
    "StoreError",
    "Trigger",
    "UnknownOption",
    "ValidationError",
    "WasmStepError",
    "WasmTimeout",
    "Workflow",
    "approve",
    "load",
    "reject",
    "resume",
    "retry",
    "run",
    "runs",
}

INTERNAL = {
    "pardag.budget.RenderLimit",
    "pardag.cli.logs.ProcessGone",
    "pardag.config._Invalid",
    "pardag.egress.EgressRefused",
    "pardag.formats.json_lines._Constant",
    "pardag.formats.syntax.Bad",
    "pardag.kinds.javascript._DeadlinePassed",
    "pardag.regularfile.NotRegularFile",
    "pardag.server.errors.ApiError",
    "pardag.server.ui.session.LoginNeeded",
    "pardag.shellscan.Misplaced",
    "pardag.templates.NameMissing",
    "pardag.tokens.TokenRefused",
    "pardag.vault.SecretKeyError",
}
"""Exception classes kept out of the API: each is caught where it is raised (see errors.py)."""

EXPORTED_ERRORS = {
    name
    for name in PUBLIC
    if isinstance(getattr(pardag, name), type) and issubclass(getattr(pardag, name), Exception)
}

EXAMPLES: dict[str, Exception] = {
    "ApprovalMissing": pardag.ApprovalMissing("answer 'maybe' is not one of ['yes', 'no']"),
    "ApprovalRejected": pardag.ApprovalRejected("rejected: not on a Friday"),
    "ArgumentError": pardag.ArgumentError("max_concurrency must be >= 1, got 0"),
    "UnknownOption": pardag.UnknownOption("run() got an unknown option 'max_concurency'"),
    "CommandFailed": pardag.CommandFailed("command exited with code 4: about to fail"),
    "CycleError": pardag.CycleError(
        "wf", [pardag.Problem(None, "cycle: a -> b -> a")], ["a", "b", "a"]
    ),
    "ExpressionError": pardag.ExpressionError("it failed", "step 'a' when", "x >"),
    "HTTPFailed": pardag.HTTPFailed("HTTP 503 from GET http://example.invalid/", 503),
    "JavaScriptStepError": pardag.JavaScriptStepError("step js: ReferenceError: x"),
    "JavaScriptTimeout": pardag.JavaScriptTimeout("step js: stopped after 1s"),
    "LuaStepError": pardag.LuaStepError("step lua: [string]:1: boom"),
    "LuaTimeout": pardag.LuaTimeout("step lua: stopped after 1s"),
    "MissingRuntime": pardag.MissingRuntime("install pardag[languages]"),
    "NodeError": pardag.NodeError("data.times must be a number, got 'x' (str)"),
    "PardagError": pardag.PardagError("the run store failed"),
    "PreconditionFailed": pardag.PreconditionFailed("expected 'prod', got 'dev'"),
    "PythonStepError": pardag.PythonStepError("step s (python): line 3: ZeroDivisionError"),
    "RunCancelled": pardag.RunCancelled("Ctrl-C"),
    "RunTimedOut": pardag.RunTimedOut(2.5),
    "SecretMissing": pardag.SecretMissing("the secret 'TOKEN' has no value"),
    "SettingsError": pardag.SettingsError(["PARDAG_MODE: bad", "pardag.toml: worse"], ("w",)),
    "StepCancelled": pardag.StepCancelled("s", None, "cancelled"),
    "StepFailed": pardag.StepFailed("s", ValueError("boom"), "ValueError: boom", "Traceback"),
    "StepPaused": pardag.StepPaused("ship it?", 3600.0),
    "StepSkipped": pardag.StepSkipped("no new data"),
    "StepTimeout": pardag.StepTimeout("s", TimeoutError(), "timed out after 1s"),
    "StoreError": pardag.StoreError("cannot open sqlite:///runs.db: it is not a database"),
    "ValidationError": pardag.ValidationError("wf", [pardag.Problem("a", "bad", "f.yaml:3")]),
    "WasmStepError": pardag.WasmStepError("step w: wasm trap: unreachable"),
    "WasmTimeout": pardag.WasmTimeout("step w: stopped after 1s"),
}


def test_all_is_exactly_the_public_names() -> None:
    assert len(pardag.__all__) == len(set(pardag.__all__))
    assert set(pardag.__all__) == PUBLIC


def test_all_is_sorted_and_complete() -> None:
    assert pardag.__all__ == sorted(pardag.__all__)
    for name in pardag.__all__:
        assert hasattr(pardag, name), name
    public = {n for n in vars(pardag) if not n.startswith("_") and n[0].isupper()}
    assert public <= set(pardag.__all__), public - set(pardag.__all__)


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_each_public_class_and_function_is_named_pardag_x(name: str) -> None:
    value = getattr(pardag, name)
    if inspect.isclass(value) or inspect.isfunction(value):
        assert value.__module__ == "pardag"


def test_a_traceback_names_the_error_pardag_x() -> None:
    try:
        raise pardag.HTTPFailed("HTTP 503 from GET http://example.invalid/", 503)
    except pardag.HTTPFailed:
        text = traceback.format_exc()
    assert text.endswith("pardag.HTTPFailed: HTTP 503 from GET http://example.invalid/\n")


def _exception_classes_defined_in_pardag() -> set[str]:
    """``module.Name`` of every exception class a module of the package defines."""
    found = set()
    for info in pkgutil.walk_packages(pardag.__path__, "pardag."):
        if info.name == "pardag.__main__":  # importing it runs the command line
            continue
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__.partition(".")[0] == "pardag"
            ):
                found.add(f"{value.__module__}.{value.__qualname__}")
    return found


def test_every_exception_class_of_the_package_is_exported_or_documented_internal() -> None:
    found = _exception_classes_defined_in_pardag()
    assert found == {f"pardag.{name}" for name in EXPORTED_ERRORS} | INTERNAL


@pytest.mark.parametrize("path", sorted(INTERNAL))
def test_each_internal_exception_is_explained_in_the_errors_docstring(path: str) -> None:
    module, _, name = path.rpartition(".")
    lines = (pardag.errors.__doc__ or "").splitlines()
    line = next((li for li in lines if module in li and name in li), "")
    assert line, f"{path} is not in the docstring of pardag.errors"
    assert line.partition(":")[2].strip(), f"the line for {path} gives no reason"


def test_every_exported_error_is_a_pardag_error_drawn_in_the_hierarchy() -> None:
    drawing = (pardag.errors.__doc__ or "").partition("The hierarchy::")[2]
    for name in EXPORTED_ERRORS:
        assert issubclass(getattr(pardag, name), pardag.PardagError), name
        drawn = re.search(rf"^[ │├└─]*{name} ", drawing, re.MULTILINE)
        assert drawn, f"{name} is missing from the drawing in errors.py"


def _state(value: Any) -> Any:
    """What an exception holds, comparable after a round trip (exceptions by type and args)."""
    if isinstance(value, BaseException):
        return (type(value), value.args, {k: _state(v) for k, v in vars(value).items()})
    return value


def test_every_exported_error_has_an_example() -> None:
    assert set(EXAMPLES) == EXPORTED_ERRORS
    assert all(type(error).__name__ == name for name, error in EXAMPLES.items())


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_each_exported_error_pickles_to_the_same_type_message_and_attributes(name: str) -> None:
    error = EXAMPLES[name]
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is type(error)
    assert str(back) == str(error)
    assert _state(back) == _state(error)
    if isinstance(back, pardag.StepFailed):
        assert back.__cause__ is back.cause


# -- through a worker process --------------------------------------------------------------------


def raise_http_failed() -> None:
    """A step function for the processes executor (workers import it by name)."""
    raise pardag.HTTPFailed("HTTP 503 from GET http://example.invalid/", 503)


RAISE_HTTP_FAILED = """
import pardag

def run():
    raise pardag.HTTPFailed("HTTP 503 from GET http://example.invalid/", 503)
"""


@pytest.mark.timeout(60)
@pytest.mark.parametrize("how", ["processes executor", "code step"])
def test_an_error_raised_in_a_worker_process_comes_back_as_itself(how: str) -> None:
    wf = pardag.Workflow("worker")
    if how == "code step":  # a Python code step runs in a worker process by default
        wf.add("fetch", params={"code": textwrap.dedent(RAISE_HTTP_FAILED)})
    else:
        wf.add("fetch", raise_http_failed, executor="processes")
    error = wf.run(on_failure="continue").steps["fetch"].error
    assert error is not None
    assert type(error.cause) is pardag.HTTPFailed
    assert error.cause.status == 503
    assert error.reason == "HTTPFailed: HTTP 503 from GET http://example.invalid/"


# -- retry_on names the error a shell step raises ---------------------------------------------

COUNT = "n=$(( $(cat attempts 2>/dev/null || echo 0) + 1 )); echo $n > attempts; "
"""Shell text counting the attempts in the file ``attempts``, the count in ``$n``."""


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("retry_on", "attempts"),
    [
        ((pardag.CommandFailed,), 3),
        ((pardag.PardagError,), 3),
        ((pardag.HTTPFailed,), 1),
    ],
    ids=["CommandFailed", "PardagError", "HTTPFailed"],
)
def test_retry_on_retries_a_failing_shell_step_only_for_the_errors_it_names(
    tmp_path: Path, retry_on: tuple[type[BaseException], ...], attempts: int
) -> None:
    wf = pardag.Workflow("retry")
    wf.add(
        "sh",
        kind="shell",
        params={"command": COUNT + "[ $n -ge 3 ] || exit 4; echo done", "cwd": str(tmp_path)},
        retry=pardag.RetryPolicy(retries=5, delay=0, retry_on=retry_on),
    )
    result = wf.run(on_failure="continue")
    step = result.steps["sh"]
    assert step.attempts == attempts
    assert (tmp_path / "attempts").read_text().strip() == str(attempts)
    if attempts == 3:
        assert result.ok
        assert result.outputs["sh"]["stdout"] == "done\n"
    else:
        assert step.state is pardag.StepState.FAILED
        assert step.error is not None
        assert type(step.error.cause) is pardag.CommandFailed
        assert step.reason == "CommandFailed: command exited with code 4"


@pytest.mark.timeout(60)
def test_retry_on_command_failed_stops_at_another_error(tmp_path: Path) -> None:
    wf = pardag.Workflow("retry")
    wf.add(
        "sh",
        kind="shell",  # the first attempt exits 4, the second runs past its timeout
        params={"command": COUNT + "[ $n -ge 2 ] || exit 4; sleep 30", "cwd": str(tmp_path)},
        timeout=0.5,
        retry=pardag.RetryPolicy(retries=5, delay=0, retry_on=(pardag.CommandFailed,)),
    )
    step = wf.run(on_failure="continue").steps["sh"]
    assert step.attempts == 2
    assert step.state is pardag.StepState.FAILED
    assert isinstance(step.error, pardag.StepTimeout)
    assert (tmp_path / "attempts").read_text().strip() == "2"
