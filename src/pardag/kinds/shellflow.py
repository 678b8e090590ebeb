"""The ``shellflow`` kind: one step of a shell-orchestrator YAML file (``formats.shellflow``).

Such files are written for tools that treat a workflow as a shell session spread over a DAG:
positional parameters, environment variables and variables captured from a step's output.
A step runs ``sh -c TEXT sh $1 $2 ...`` in its own process group (killed on timeout or
cancellation), so ``$1``, ``$2`` ... in the text are the run's positional parameters.

Params (``step.params``):

* ``command``: shell text. ``args`` are appended, each as one double-quoted word: ``$VAR``,
  ``$1`` and ``$(...)`` expand in them, spaces and ``;`` do not split them.
* ``script``: a script for ``sh``; with ``command`` too, ``command`` is its interpreter
  (``command: python3``) and gets ``args``, the script's path and the positional parameters.
* ``dir``: the working directory. ``env``: variables for this step only.
* ``when``: ``{"predicate": ..., "expected": ...}``, checked like a precondition when the step
  starts, as a subprocess the event loop awaits; one that does not hold skips the step
  (``StepSkipped("condition false")``), so its dependents follow their trigger rules.
* ``preconditions``: ``[{"predicate": ..., "expected": ...}]``. Each predicate is expanded
  like a double-quoted shell word (``"$BRANCH"``, ``"`date +%u`"``) and compared, trimmed, to
  ``expected``; ``re:PATTERN`` searches instead (unanchored, as the original tools do). One
  that does not hold fails the step with :class:`PreconditionFailed`, which is never retried.
* ``output``: ``{"stdout": VAR, "stderr": VAR}``: the trimmed stream becomes variable ``VAR``
  for every step that descends from this one.

Output variables are also written into the text before ``sh`` reads it, as the engines of
these files do: ``$VAR`` and ``${VAR}`` in ``command``, ``args``, a ``script`` that ``sh`` runs
and the predicates of ``when`` and ``preconditions`` are replaced by the value, quoted for the
spot it lands in (:func:`pardag.shellquote.substitute`), so ``test '$VAR' = 'x'`` compares the
value and no value can run as a command. Other ``$NAME`` (the run's and the step's variables,
``$HOME``, the script's own) are left for the shell; a script run by another interpreter
(``command: python3``) reads output variables from its environment.

The environment of a command, lowest first: the process's own; the run's params that look
like variables (a name such as ``BRANCH`` with a string, number or bool value; the file's
``env:`` lands there, so ``wf.run(params={"BRANCH": "dev"})`` overrides it); the output
variables of the steps it descends from; the step's ``env``. The run param ``params`` holds
the positional parameters: a string split as the shell splits words, or a list.

The output is ``{"stdout", "stderr", "exit_code"}``, one key per output variable the step
set, and ``"vars"``: every output variable it passes on (inherited ones and its own).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pardag import tether
from pardag.errors import ArgumentError, PreconditionFailed, StepSkipped
from pardag.kinds.base import IDEMPOTENCY_ENV, Action, RunContext, idempotency_key
from pardag.kinds.shell import MAX_OUTPUT, CommandFailed, end_process, start_process
from pardag.secrets import secrets_of, without_sources
from pardag.shellquote import substitute
from pardag.states import ExecutorName
from pardag.steplog import BytesInto

if TYPE_CHECKING:
    from pardag.model import Step

__all__ = [
    "RESERVED_OUTPUTS",
    "VARIABLE",
    "PreconditionFailed",
    "Predicate",
    "ShellflowKind",
    "expected_text",
    "positional_params",
    "refused_param",
]

VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
"""What an environment or output variable's name may look like."""
RESERVED_OUTPUTS = frozenset({"stdout", "stderr", "exit_code", "vars"})
"""Keys of a step's output that an output variable may not be named."""
_TAIL = 2000
_CHUNK = 64 * 1024


def expected_text(value: Any) -> str:
    """An ``expected`` value as the text it is compared with (YAML may give a number)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value).strip()


@dataclass(frozen=True, slots=True)
class Predicate:
    """Shell text expanded as a double-quoted word, compared with ``expected``."""

    text: str
    expected: str

    def script(self) -> str:
        """The ``sh -c`` text that prints the expansion."""
        return f'printf "%s" "{self.text}"'

    def holds(self, value: str) -> bool:
        """Whether the expansion ``value`` is what was expected (``re:`` searches)."""
        if self.expected.startswith("re:"):
            return re.search(self.expected[3:], value) is not None
        return value == self.expected

    def verdict(self, stdout: str, stderr: str, code: int | None) -> bool:
        """Whether the predicate holds, from its ``sh`` run; a shell error raises."""
        if code != 0:
            tail = stderr.strip()[-_TAIL:]
            raise PreconditionFailed(
                f"predicate {self.text!r} could not be expanded (sh exited with code {code})"
                + (f": {tail}" if tail else "")
            )
        return self.holds(stdout.strip())

    def failure(self, value: str) -> str:
        return f"precondition failed: expected {self.expected!r}, got {value.strip()!r}"


def positional_params(run_params: Mapping[str, Any]) -> list[str]:
    """``$1``, ``$2`` ... from the run param ``params``: a string of words, a list, or one value."""
    value = run_params.get("params")
    if value is None:
        return []
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError as exc:
            raise ArgumentError(
                f"run param 'params' {value!r} cannot be split into words ({exc}); "
                "close the quote or pass a list"
            ) from None
    if _is_scalar(value):  # one value: a number given on the command line
        return [_text(value)]
    if isinstance(value, list | tuple) and all(_is_scalar(v) for v in value):
        return [_text(v) for v in value]
    raise ArgumentError(
        f"run param 'params' must be a string of space-separated values or a list of them, "
        f"got {value!r}"
    )


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


UNSAFE_VARIABLES = frozenset(
    {"PATH", "IFS", "ENV", "BASH_ENV", "SHELLOPTS", "BASHOPTS", "PS4", "CDPATH", "GLOBIGNORE"}
    | {"PERL5LIB", "PERL5OPT", "PERLLIB", "RUBYOPT", "RUBYLIB", "NODE_OPTIONS", "NODE_PATH"}
)
"""Variables that change which program runs or what the shell does before the command:
a run param may not set them (the file's own ``env:`` may)."""
UNSAFE_PREFIXES = ("LD_", "DYLD_", "PYTHON", "BASH_FUNC_")
"""... and every variable with these prefixes (the loader's, Python's, bash's functions)."""


def refused_param(name: str) -> str | None:
    """Why the run param ``name`` may not become a command's environment variable, or None.

    A run param that looks like a variable is exported to every command (see the module
    docstring), and run params are data from outside: ``--set``, soon webhook bodies. Set
    as ``LD_PRELOAD`` or ``BASH_ENV`` it would run code of its own in every step."""
    if name in UNSAFE_VARIABLES or name.startswith(UNSAFE_PREFIXES):
        return (
            f"run param {name!r} would set the environment variable {name} of every command, "
            "which changes what runs; a run param may not set it (set it in the file's env: "
            "if the workflow means to)"
        )
    return None


def _run_env(run_params: Mapping[str, Any]) -> dict[str, str]:
    """The run params that are variables: a variable-like name and a scalar value (never an
    unsafe one: ``refused_param``, which refuses them before the run too)."""
    return {
        key: _text(value)
        for key, value in run_params.items()
        if key != "params"
        and _is_scalar(value)
        and VARIABLE.fullmatch(key)
        and refused_param(key) is None
    }


def inherited(inputs: Mapping[str, Any]) -> dict[str, str]:
    """The output variables the dependencies pass on; later ones (in depends order) win."""
    found: dict[str, str] = {}
    for output in inputs.values():
        if isinstance(output, Mapping) and isinstance(output.get("vars"), Mapping):
            found.update(output["vars"])
    return found


def environment(
    inputs: Mapping[str, Any], run_params: Mapping[str, Any], step_env: Mapping[str, str]
) -> dict[str, str]:
    """A command's variables on top of the process's; see the module docstring for the order."""
    return {**_run_env(run_params), **inherited(inputs), **step_env}


@dataclass(frozen=True, slots=True)
class _Spec:
    """A step's params, checked and typed once per run."""

    command: str | None
    script: str | None
    args: tuple[str, ...]
    cwd: str | None
    env: dict[str, str]
    when: Predicate | None
    preconditions: tuple[Predicate, ...]
    outputs: dict[str, str]  # stream -> variable

    @classmethod
    def of(cls, params: Mapping[str, Any]) -> _Spec:
        output = params.get("output") or {}
        when = params.get("when")
        return cls(
            params.get("command"),
            params.get("script"),
            tuple(params.get("args") or ()),
            params.get("dir"),
            dict(params.get("env") or {}),
            None if when is None else _predicate(when),
            tuple(_predicate(p) for p in params.get("preconditions") or ()),
            {"stdout": output} if isinstance(output, str) else dict(output),
        )

    def text(self, script_path: str | None) -> str:
        """The ``sh -c`` text of the step."""
        if self.command is None:
            assert self.script is not None  # validated
            return self.script
        words = [self.command, *(f'"{arg}"' for arg in self.args)]
        if script_path is not None:
            words += [shlex.quote(script_path), '"$@"']
        return " ".join(words)


async def _capture(
    argv: Sequence[str], env: Mapping[str, str], cwd: str | None
) -> tuple[str, str, int]:
    """Run ``argv``; its streams and exit code. Cancelled, it kills the process group.

    Unlike ``shell.run_command``, it returns stdout as written even when a line of it is
    JSON: output variables capture the text.
    """
    proc = await start_process(argv, {**without_sources(os.environ), **env}, cwd)
    try:
        out, err = await asyncio.gather(_read(proc.stdout, "stdout"), _read(proc.stderr, "stderr"))
        code = await proc.wait()
    except BaseException:
        await end_process(proc)
        raise
    finally:
        tether.release(proc.pid)  # over: its group no longer dies with the runner
    return out, err, code


async def _read(stream: asyncio.StreamReader | None, name: str) -> str:
    """A stream's text, its first ``MAX_OUTPUT`` bytes kept (and how much was dropped); all
    of it goes into the step's log as it comes."""
    kept, dropped, log = bytearray(), 0, BytesInto(name)
    while stream is not None and (chunk := await stream.read(_CHUNK)):
        log.add(chunk)
        room = max(0, MAX_OUTPUT - len(kept))
        kept += chunk[:room]
        dropped += len(chunk) - min(room, len(chunk))
    log.end()
    text = kept.decode(errors="replace")
    return text + (f"\n[pardag: {dropped:,} more bytes dropped]\n" if dropped else "")


def _predicate(spec: Mapping[str, Any]) -> Predicate:
    return Predicate(spec["predicate"], expected_text(spec.get("expected")))


def _written(text: str, env: Mapping[str, str], passed: Mapping[str, str], where: str) -> str:
    """``text`` with the output variables written in, quoted (see the module docstring)."""
    try:
        return substitute(text, {name: env[name] for name in passed if name in env})
    except ArgumentError as exc:
        raise ArgumentError(f"{where}: {exc}") from None


async def _holds(
    predicate: Predicate,
    spec: _Spec,
    positional: list[str],
    env: Mapping[str, str],
    passed: Mapping[str, str],
) -> tuple[bool, str]:
    """Whether ``predicate`` holds, and what it expanded to; awaited, never blocking the loop."""
    script = _written(predicate.script(), env, passed, f"predicate {predicate.text!r}")
    out, err, code = await _capture(["sh", "-c", script, "sh", *positional], env, spec.cwd)
    return predicate.verdict(out, err, code), out


async def _check(
    spec: _Spec, positional: list[str], env: Mapping[str, str], passed: Mapping[str, str]
) -> None:
    """``when`` (false: the step is skipped), then each precondition (false: it fails)."""
    if spec.when is not None and not (await _holds(spec.when, spec, positional, env, passed))[0]:
        raise StepSkipped("condition false")
    for predicate in spec.preconditions:
        ok, out = await _holds(predicate, spec, positional, env, passed)
        if not ok:
            raise PreconditionFailed(predicate.failure(out))


async def _run_step(
    spec: _Spec, positional: list[str], env: dict[str, str], passed: dict[str, str]
) -> dict[str, Any]:
    """One attempt: ``when`` and preconditions, then the command; its output with the
    variables set."""
    await _check(spec, positional, env, passed)
    where = "script" if spec.command is None else "command"
    with _script_file(spec) as path:
        text = _written(spec.text(path), env, passed, where)
        argv = ["sh", "-c", text, "sh", *positional]
        out, err, code = await _capture(argv, env, spec.cwd)
    if code != 0:
        tail = err.strip()[-_TAIL:] or out.strip()[-_TAIL:]
        raise CommandFailed(f"command exited with code {code}" + (f": {tail}" if tail else ""))
    streams = {"stdout": out, "stderr": err}
    own = {var: streams[stream].strip() for stream, var in spec.outputs.items()}
    return {**streams, "exit_code": code, **own, "vars": {**passed, **own}}


@contextlib.contextmanager
def _script_file(spec: _Spec) -> Any:
    """The path of ``script`` written to a temporary file, when an interpreter runs it."""
    if spec.script is None or spec.command is None:
        yield None
        return
    fd, path = tempfile.mkstemp(prefix="pardag-", suffix=".script")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(spec.script)
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


class ShellflowKind:
    """Runs one shell-orchestrator step; see the module docstring."""

    fields: tuple[str, ...] = (
        "command",
        "script",
        "args",
        "dir",
        "env",
        "when",
        "preconditions",
        "output",
    )

    def problems(self, step: Step) -> list[str]:
        return param_problems(step.params)

    def action(self, step: Step, ctx: RunContext) -> Action:
        spec = _Spec.of(step.params)
        key = idempotency_key(ctx.run_id, step.id)

        def bind(
            inputs: Mapping[str, Any], run_params: Mapping[str, Any]
        ) -> tuple[tuple[Any, ...], dict[str, Any]]:
            secrets = secrets_of(ctx)  # each secret as a variable, under what the file sets
            env = {**secrets, IDEMPOTENCY_ENV: key, **environment(inputs, run_params, spec.env)}
            return (spec, positional_params(run_params), env, inherited(inputs)), {}

        return Action(_run_step, ExecutorName.ASYNC, bind)


def param_problems(params: Mapping[str, Any]) -> list[str]:
    """What is wrong with a shellflow step's params, each message saying how to fix it."""
    out = _command_problems(params)
    env = params.get("env", {})
    if not isinstance(env, Mapping) or not all(
        isinstance(k, str) and VARIABLE.fullmatch(k) and isinstance(v, str) for k, v in env.items()
    ):
        out.append("env must map variable names to strings, e.g. {'BRANCH': 'main'}")
    if not isinstance(params.get("dir", ""), str):
        out.append("dir must be a directory path (a string)")
    when = params.get("when")
    if when is not None:
        out += _precondition_problems([when], "when must be {predicate: text, expected: value}")
    out += _precondition_problems(params.get("preconditions", []))
    out += output_problems(params.get("output", {}))
    return out


def _command_problems(params: Mapping[str, Any]) -> list[str]:
    command, script = params.get("command"), params.get("script")
    if command is None and script is None:
        return ["a shellflow step needs a command (shell text) or a script"]
    out = []
    for name, value in (("command", command), ("script", script)):
        if value is not None and (not isinstance(value, str) or not value.strip()):
            out.append(f"{name} must be non-empty shell text, got {value!r}")
    args = params.get("args", [])
    if not isinstance(args, list | tuple) or not all(isinstance(a, str) for a in args):
        out.append("args must be a list of strings, e.g. ['--verbose', '$1']")
    elif args and command is None:
        out.append("args go with command; put them in the script instead")
    return out


def _precondition_problems(
    preconditions: Any,
    shape: str = "preconditions must be a list of {predicate: text, expected: value}",
) -> list[str]:
    if not isinstance(preconditions, list | tuple) or not all(
        isinstance(p, Mapping) and isinstance(p.get("predicate"), str) for p in preconditions
    ):
        return [shape]
    return [m for p in preconditions for m in expected_problems(p.get("expected"))]


def expected_problems(expected: Any) -> list[str]:
    """A regular expression after ``re:`` must compile."""
    text = expected_text(expected)
    if not text.startswith("re:"):
        return []
    try:
        re.compile(text[3:])
    except re.error as exc:
        return [f"expected {text!r} is not a valid regular expression ({exc}); fix the pattern"]
    return []


def output_problems(output: Any) -> list[str]:
    """``output`` must name variables for ``stdout`` and ``stderr`` (a string: stdout)."""
    mapping = {"stdout": output} if isinstance(output, str) else output
    if not isinstance(mapping, Mapping) or not set(mapping) <= {"stdout", "stderr"}:
        return ["output must be a variable name or {stdout: NAME, stderr: NAME}"]
    out = []
    for var in mapping.values():
        if not isinstance(var, str) or not VARIABLE.fullmatch(var):
            out.append(f"output variable {var!r} must be a name like VERSION (letters, digits, _)")
        elif var in RESERVED_OUTPUTS:
            out.append(
                f"output variable {var!r} would clash with the step's {var!r} output; rename it"
            )
    return out


KINDS = {"shellflow": ShellflowKind()}
