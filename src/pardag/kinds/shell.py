"""The ``shell`` kind: a command or script run in its own process group, killed with it.

Params:

* ``command``: a string, run by ``sh -c``; or a list, run directly as argv (no shell);
* ``script``: several lines, written to a temporary file and run by ``sh -e`` (stop at the
  first failing command), or run directly when it starts with ``#!`` (any interpreter);
* ``args``: extra arguments. Appended to a ``command`` string each as one word (a variable
  reference, like a placeholder's value: see below); given
  to a ``command`` list or a ``script`` as argv (``$1``, ``$2``... in a script). An argument
  that renders to a list adds each item;
* ``env``: extra environment variables; ``cwd``: the working directory;
* ``shell``: the shell that runs a ``command`` string or a ``script`` (``sh`` unless given;
  ``language: bash`` sets ``bash``), by name on PATH or by path.

Every string in them may be a template (``{{ steps.fetch.output.id }}``, see
:mod:`pardag.templates`). In shell text (a ``command`` string, a ``script`` run by a shell,
the TEXT of ``command: [sh, -c, TEXT]``) no value is pasted: each goes into an environment
variable ``PARDAG_V<n>`` and the placeholder becomes a reference to it, written for where it
stands (``echo {{ x }}`` and ``echo "Hello {{ x }}"`` both work), so the shell never parses a
value (:mod:`pardag.shellvalues`). Spots where a value would still be code are validation
problems. Argv items, ``env`` and ``cwd`` are not parsed by a shell and are passed as they
are.

Each dependency's output is given as the environment variable ``INPUT_<ID>`` (JSON; the id
upper-cased, other characters as ``_``). stdin is empty (``/dev/null``). The output is the
first line of stdout that is a JSON object, else ``{"stdout", "stderr", "exit_code"}``. Each
stream keeps its first 10 MiB and its last 64 KiB; what lies between is dropped and replaced
by a line saying how many bytes were dropped. Both streams also go, as they come, into the
step's log (``pardag logs RUN STEP``, see :mod:`pardag.steplog`). A non-zero exit fails the
step with the tail of stderr (of stdout when stderr is empty). A timeout or cancellation
kills the whole process group (``SIGKILL``), background children included.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import re
import signal
import stat
import subprocess
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pardag import child, stepprocs, tether
from pardag.arguments import Spread
from pardag.child import Limits
from pardag.errors import ArgumentError, CommandFailed
from pardag.executors.base import describe_exit
from pardag.kinds.base import IDEMPOTENCY_ENV, Action, Binder, RunContext, idempotency_key
from pardag.kinds.cluster import OnWorker, watched
from pardag.secrets import secrets_of, without_sources
from pardag.shellvalues import (
    ShellValues,
    argv_problems,
    interpreter,
    mark,
    shell_text,
    text_problems,
)
from pardag.states import ExecutorName
from pardag.steplog import BytesInto
from pardag.templates import namespace, render, template_problems, to_text

if TYPE_CHECKING:
    from pardag.model import Step

__all__ = [
    "MAX_OUTPUT",
    "TAIL_OUTPUT",
    "Command",
    "CommandFailed",
    "ShellKind",
    "ShellOnWorker",
    "end_process",
    "execute",
    "input_env",
    "kill_group",
    "run_command",
    "start_process",
]

MAX_OUTPUT = 10 * 1024 * 1024
"""Bytes of each stream (stdout, stderr) kept from its start."""

TAIL_OUTPUT = 64 * 1024
"""Bytes of each stream kept from its end once it passed ``MAX_OUTPUT``."""

_CHUNK = 64 * 1024
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class _Capture:
    """One output stream: its head up to ``limit`` bytes and a rolling tail after that."""

    def __init__(self, limit: int, tail: int = TAIL_OUTPUT) -> None:
        self.limit = limit
        self.head = bytearray()
        self.tail: deque[bytes] = deque()
        self.tail_size = 0
        self.tail_limit = tail
        self.dropped = 0

    def add(self, chunk: bytes) -> None:
        room = self.limit - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if not chunk:
            return
        self.tail.append(chunk)
        self.tail_size += len(chunk)
        while self.tail_size > self.tail_limit:
            excess = self.tail_size - self.tail_limit
            first = self.tail[0]
            if len(first) <= excess:
                self.tail.popleft()
                self.tail_size -= len(first)
                self.dropped += len(first)
            else:
                self.tail[0] = first[excess:]
                self.tail_size -= excess
                self.dropped += excess

    def text(self, name: str) -> str:
        head = self.head.decode(errors="replace")
        if not self.tail:
            return head
        marker = ""
        if self.dropped:
            limit = f"{self.limit:,} bytes" if self.limit % 1024**2 else f"{self.limit >> 20} MiB"
            marker = (
                f"\n[pardag: {self.dropped:,} bytes of {name} dropped after the first {limit}]\n"
            )
        return head + marker + b"".join(self.tail).decode(errors="replace")


async def _drain(stream: asyncio.StreamReader | None, capture: _Capture, name: str) -> None:
    """Read ``stream`` to its end into ``capture``, and into the step's log as it comes."""
    if stream is None:
        return
    log = BytesInto(name)
    while chunk := await stream.read(_CHUNK):
        capture.add(chunk)
        log.add(chunk)
    log.end()


async def run_command(
    command: str | list[str],
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    *,
    limit: int = MAX_OUTPUT,
    limits: Limits | None = None,
) -> Any:
    """Run ``command`` (a string for ``sh -c``, or argv); return its output (see the module).

    On cancellation the whole process group is killed before the error propagates. ``env``
    is added to this process's environment; ``limits`` are set in the child (``pardag.child``).
    """
    argv = ["sh", "-c", command] if isinstance(command, str) else [str(a) for a in command]
    full_env = {**without_sources(os.environ), **(env or {})}  # no secret it did not ask for
    try:
        proc = await start_process(argv, full_env, cwd, limits)
    except FileNotFoundError as exc:
        raise CommandFailed(_not_found(argv, cwd, exc)) from exc
    except PermissionError as exc:
        raise CommandFailed(
            f"cannot run {argv[0]!r}: permission denied; make it executable"
        ) from exc
    out, err = _Capture(limit), _Capture(limit)
    try:
        await asyncio.gather(_drain(proc.stdout, out, "stdout"), _drain(proc.stderr, err, "stderr"))
        code = await proc.wait()
    except BaseException:
        await end_process(proc)
        raise
    finally:
        tether.release(proc.pid)
    return _result(out.text("stdout"), err.text("stderr"), code)


async def start_process(
    argv: Sequence[str], env: Mapping[str, str], cwd: str | None, limits: Limits | None = None
) -> asyncio.subprocess.Process:
    """``argv`` started in a session of its own, stdout and stderr piped, stdin empty.

    Its group dies with this process (``pardag.tether``: call ``tether.release(proc.pid)``
    once it ended) and the step attempt's records learn its identity (``pardag.stepprocs``).
    ``limits`` are set in the child before it runs ``argv`` (a ``preexec_fn``: only such
    starts pay for a fork instead of a vfork).

    A cancel that lands while asyncio still connects the new process's pipes would make
    ``create_subprocess_exec`` kill only the direct child and then wait for pipes that a
    grandchild holds open: for ever, or until that grandchild ends (CPython gh-125502;
    ``touch x; sleep 30`` hung Ctrl-C for 30 s). So the start is shielded: a cancel waits
    for it to finish, kills the whole group, and is raised then.
    """
    starting = asyncio.ensure_future(
        asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=None if limits is None else functools.partial(child.apply, limits),
        )
    )
    try:
        proc = await asyncio.shield(starting)
    except asyncio.CancelledError:
        while not starting.done():  # a second cancel does not abandon the start either
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait({starting})
        if not starting.cancelled() and starting.exception() is None:
            await end_process(starting.result())
        raise
    except subprocess.SubprocessError as exc:  # the preexec_fn failed: the limits
        raise CommandFailed(
            f"cannot start {argv[0]!r} with limits ({limits.describe() if limits else ''}): "
            f"{exc}; lower them below the system's hard limits (ulimit -H -a)"
        ) from None
    tether.hold(proc.pid)
    stepprocs.started(proc.pid)
    return proc


async def end_process(proc: asyncio.subprocess.Process) -> None:
    """Stop ``proc`` at once (a timeout, a cancel): kill its process group, stop reading its
    pipes, and wait for it alone.

    ``proc.wait()`` waits for the pipes to close too, and a process that left the group
    (``setsid cmd &``) holds them open as long as it likes: the step then ran past its
    timeout until that process ended. Such a process is not killed (it left on purpose and
    is beyond the group's reach); it no longer holds the step.
    """
    kill_group(proc.pid)
    transport = getattr(proc, "_transport", None)  # asyncio's: no public way to close it
    if transport is not None:
        transport.close()
    await proc.wait()
    tether.release(proc.pid)


def _not_found(argv: list[str], cwd: str | None, exc: FileNotFoundError) -> str:
    if cwd is not None and not os.path.isdir(cwd):
        return f"the working directory {cwd!r} does not exist; create it first or fix cwd"
    return (
        f"command {argv[0]!r} not found; check the spelling and PATH, or give its full path "
        f"({exc.strerror})"
    )


def kill_group(pid: int) -> None:
    """SIGKILL process group ``pid`` (a command started in its own session), if it lives."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _result(stdout: str, stderr: str, code: int | None) -> Any:
    if code != 0:
        tail = stderr.strip()[-2000:] or stdout.strip()[-2000:]
        how = describe_exit(code)
        raise CommandFailed(f"command {how}" + (f": {tail}" if tail else ""))
    for line in stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                return value
    return {"stdout": stdout, "stderr": stderr, "exit_code": code}


def input_env(inputs: Mapping[str, Any]) -> dict[str, str]:
    """``INPUT_<ID>`` variables holding each input as JSON."""
    return {
        "INPUT_" + re.sub(r"[^A-Za-z0-9]", "_", k).upper(): json.dumps(v, default=str)
        for k, v in inputs.items()
    }


# --- the kind ---------------------------------------------------------------------------

_NEEDS = (
    "a shell step needs params command: 'text' (run by sh -c), command: [program, arg, ...] "
    "(run directly), or script: (several lines, run by sh -e)"
)


def _scalar(value: Any) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def _shape_problems(params: Mapping[str, Any]) -> list[str]:
    """What is wrong with the types of the params, each with what to write instead."""
    command, script = params.get("command"), params.get("script")
    out: list[str] = []
    if command is None and script is None:
        return [_NEEDS]
    if command is not None and script is not None:
        out.append("give either command or script, not both")
    if command is not None and not (
        (isinstance(command, str) and command.strip())
        or (isinstance(command, list) and command and all(_scalar(a) for a in command))
    ):
        out.append(f"command must be non-empty text or a list of strings, got {command!r}")
    if script is not None and not (isinstance(script, str) and script.strip()):
        out.append(f"script must be non-empty text (the lines to run), got {script!r}")
    args = params.get("args")
    if args is not None and not (isinstance(args, list) and all(_scalar(a) for a in args)):
        out.append(f"args must be a list of strings, got {args!r}")
    out += _env_problems(params.get("env"))
    cwd = params.get("cwd")
    if cwd is not None and not (isinstance(cwd, str) and cwd):
        out.append(f"cwd must be a directory path, got {cwd!r}")
    shell = params.get("shell")
    if shell is not None and not (isinstance(shell, str) and shell.strip()):
        out.append(f"shell must be a program name or path, such as bash, got {shell!r}")
    return out + child.limits_problems(params.get("limits"))


def _env_problems(env: Any) -> list[str]:
    if env is None:
        return []
    if not isinstance(env, Mapping):
        return [f"env must be a mapping of NAME: value, got {env!r}"]
    out = []
    for name, value in env.items():
        if not (isinstance(name, str) and _ENV_NAME.fullmatch(name)):
            out.append(f"env name {name!r} is not a valid variable name; use letters, digits, _")
        elif not (_scalar(value) or isinstance(value, bool)):
            out.append(f"env {name} must be a string, got {value!r}")
    return out


class ShellKind:
    """Runs ``command`` or ``script``; see the module docstring."""

    fields: tuple[str, ...] = ("command", "script", "args", "env", "cwd", "shell", "limits")
    templated: tuple[str, ...] = ("command", "script", "args", "env", "cwd")
    """The fields rendered as templates (validation checks what they read)."""
    template_names: tuple[str, ...] = ("idempotency_key",)
    """Names its templates read besides ``pardag.templates.TEMPLATE_NAMES``."""
    cluster = True
    """It may run on a Dask worker, rendered here (``pardag.kinds.cluster``)."""

    def problems(self, step: Step) -> list[str]:
        out = _shape_problems(step.params)
        if out:
            return out
        for field in self.fields:
            out += template_problems(step.params.get(field), field)
        return out or _value_problems(step.params)

    def action(self, step: Step, ctx: RunContext) -> Action:
        params = dict(step.params)
        shell = str(params.get("shell") or "sh")
        limits = Limits.read(params.get("limits"))
        prepare = _preparer(step, ctx, params, shell)
        if step.executor == ExecutorName.DASK:  # rendered here, run on a worker
            call = OnWorker(
                step.id, ShellOnWorker(shell, limits, step.timeout), secrets_of(ctx).masker
            )
            return Action(call, ExecutorName.DASK, _bind_prepared(prepare))

        async def run(inputs: Mapping[str, Any]) -> Any:
            return await execute(prepare(inputs), shell, limits)

        return Action(run, ExecutorName.ASYNC, _bind_inputs)


@dataclass(frozen=True)
class Command:
    """One attempt of a shell step, rendered: its argv (for a ``script``: the script's text,
    then its arguments), its whole environment beyond the process's own, its directory.
    Plain data, so that it can be run on another machine (``pardag.kinds.cluster``)."""

    argv: list[str]
    env: dict[str, str]
    cwd: str | None
    script: bool

    def __repr__(self) -> str:  # the environment may hold secrets
        return f"Command({self.argv[0][:40]!r}, ...)"


def _preparer(
    step: Step, ctx: RunContext, params: Mapping[str, Any], shell: str
) -> Callable[[Mapping[str, Any]], Command]:
    """The step's templates, rendered for one attempt's inputs into a ``Command``."""
    where = f"step {step.id!r} params"
    key = idempotency_key(ctx.run_id, step.id)

    def prepare(inputs: Mapping[str, Any]) -> Command:
        names = namespace(inputs, ctx, idempotency_key=key)
        env = {
            str(k): to_text(v)
            for k, v in render(params.get("env") or {}, names, where=f"{where}.env").items()
        }
        cwd = params.get("cwd")
        cwd = None if cwd is None else to_text(render(cwd, names, where=f"{where}.cwd"))
        values = ShellValues()
        argv = _command(params, names, where, shell, values)
        _refuse_nul(argv, f"{where}.command")
        _refuse_nul(env.values(), f"{where}.env")
        full_env = {
            **input_env(inputs),
            **secrets_of(ctx),
            IDEMPOTENCY_ENV: key,
            **env,
            **values.env,
        }
        return Command(argv, full_env, cwd, "script" in params)

    return prepare


async def execute(command: Command, shell: str, limits: Limits | None) -> Any:
    """Run a rendered ``command``; its output as the step's (see the module docstring)."""
    argv, env, cwd = command.argv, command.env, command.cwd
    if command.script:
        return await _run_script(argv[0], argv[1:], env, cwd, shell, limits)
    return await run_command(argv, env, cwd, limits=limits)


def _value_problems(params: Mapping[str, Any]) -> list[str]:
    """Placeholders where a value would become code (see :mod:`pardag.shellvalues`)."""
    shell = str(params.get("shell") or "sh")
    command, script = params.get("command"), params.get("script")
    if isinstance(script, str):
        return text_problems(script, "script", interpreter(script) or shell)
    if isinstance(command, str):
        return text_problems(command, "command", shell)
    command = list(command or [])
    spec = [*command, *(params.get("args") or [])]
    found = shell_text(spec)
    if found is None:
        return argv_problems(spec, "command")
    at, run_by = found
    field = "command" if at < len(command) else "args"
    return text_problems(spec[at], field, run_by) + argv_problems(spec, "command")


def _command(
    params: Mapping[str, Any], names: Mapping[str, Any], where: str, shell: str, values: ShellValues
) -> list[str]:
    """The argv to run (for a ``script``: the script's text, then its arguments), every value
    in shell text an environment variable of ``values``."""
    raw_args = params.get("args") or []
    if "script" in params:
        source = params["script"]
        text = str(render(source, names, where=f"{where}.script", quote=mark))
        run_by = interpreter(text) or shell
        args = _argv(render(raw_args, names, where=f"{where}.args"))
        return [values.text(text, f"{where}.script", source, run_by), *args]
    command = params["command"]
    if isinstance(command, str):
        text = str(render(command, names, where=f"{where}.command", quote=mark))
        args = _argv(render(raw_args, names, where=f"{where}.args"))
        # args are words after the text, placed like values: a text that ends in a comment
        # or a here-document body must not turn one into code
        line = " ".join([text, *(mark(a) for a in args)])
        return [shell, "-c", values.text(line, f"{where}.command", command, shell)]
    spec = [*command, *raw_args]
    at, run_by = shell_text(spec) or (-1, "")
    argv: list[str] = []
    for i, item in enumerate(spec):
        field = f"{where}.command" if i < len(command) else f"{where}.args"
        if i == at:
            text = to_text(render(item, names, where=field, quote=mark))
            argv.append(values.text(text, field, str(item), run_by))
        else:
            argv += _argv([render(item, names, where=field)])
    return argv


def _refuse_nul(items: Iterable[str], where: str) -> None:
    """A NUL byte cannot be in an argument or an environment variable: say so, not
    ``ValueError: embedded null byte``."""
    for item in items:
        if "\x00" in item:
            raise ArgumentError(
                f"{where}: a value holds a NUL byte, which no program argument or environment "
                f"variable can hold: {item[:60]!r}; remove it first, e.g. | replace('\\x00', '')"
            )


def _bind_inputs(
    inputs: Mapping[str, Any], params: Mapping[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return (inputs,), {}


def _bind_prepared(prepare: Callable[[Mapping[str, Any]], Command]) -> Binder:
    """A binder that renders the attempt in the runner: the worker gets a ``Command``."""

    def bind(
        inputs: Mapping[str, Any], params: Mapping[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (prepare(inputs),), {}

    return bind


def _argv(values: list[Any]) -> list[str]:
    """Rendered arguments as text, one each (a list as JSON), but for ``| spread``, whose
    items are arguments of their own (``pardag.arguments``)."""
    out: list[str] = []
    for value in values:
        if isinstance(value, Spread):
            out += [to_text(item) for item in value]
        else:
            out.append(to_text(value))
    return out


async def _run_script(
    script: str,
    args: list[str],
    env: dict[str, str],
    cwd: str | None,
    shell: str,
    limits: Limits | None = None,
) -> Any:
    """Run ``script`` from a temporary file: by ``shell -e``, or by its ``#!`` line."""
    fd, path = tempfile.mkstemp(prefix="pardag-", suffix=".sh")
    try:
        with os.fdopen(fd, "w") as file:
            file.write(script if script.endswith("\n") else script + "\n")
        if script.startswith("#!"):
            os.chmod(path, stat.S_IRWXU)
            return await run_command([path, *args], env, cwd, limits=limits)
        return await run_command([shell, "-e", path, *args], env, cwd, limits=limits)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


@dataclass(frozen=True)
class ShellOnWorker:
    """A shell step's rendered ``Command`` on a Dask worker (``pardag.kinds.cluster``): its
    process group killed at the step's ``timeout``, or once Dask cancels the task."""

    shell: str
    limits: Limits | None
    timeout: float | None

    def __call__(self, command: Command) -> Any:
        return watched(lambda: execute(command, self.shell, self.limits), self.timeout, _WHAT)


_WHAT = "the command"


KINDS = {"shell": ShellKind()}
