"""The ``shell`` kind: a command run in its own process group, killed with it when stopped.

Params: ``command`` (a string for the shell, or a list of arguments), optional ``env`` and
``cwd``. Each dependency's output is given as the environment variable ``INPUT_<ID>`` (JSON;
the id upper-cased, other characters as ``_``). The output is the first line of stdout that is
a JSON object, else ``{"stdout", "stderr", "exit_code"}``. A non-zero exit fails the step with
the tail of stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pardag.kinds.base import Action, RunContext

if TYPE_CHECKING:
    from pardag.model import Step

__all__ = ["CommandFailed", "ShellKind", "run_command"]


class CommandFailed(Exception):
    """A shell step's command exited with a non-zero code."""


async def run_command(
    command: str | list[str], env: Mapping[str, str] | None = None, cwd: str | None = None
) -> Any:
    """Run ``command``; on cancellation kill its whole process group before re-raising."""
    full_env = {**os.environ, **(env or {})}
    if isinstance(command, str):
        proc = await asyncio.create_subprocess_shell(
            command, stdout=-1, stderr=-1, env=full_env, cwd=cwd, start_new_session=True
        )
    else:
        proc = await asyncio.create_subprocess_exec(
            *command, stdout=-1, stderr=-1, env=full_env, cwd=cwd, start_new_session=True
        )
    try:
        out, err = await proc.communicate()
    except BaseException:
        _kill_group(proc.pid)
        await proc.wait()
        raise
    return _result(out.decode(errors="replace"), err.decode(errors="replace"), proc.returncode)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def _result(stdout: str, stderr: str, code: int | None) -> Any:
    if code != 0:
        tail = stderr.strip()[-2000:] or stdout.strip()[-2000:]
        raise CommandFailed(f"command exited with code {code}" + (f": {tail}" if tail else ""))
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


class ShellKind:
    """Runs ``params['command']``; see the module docstring."""

    fields: tuple[str, ...] = ("command", "env", "cwd")

    def problems(self, step: Step) -> list[str]:
        command = step.params.get("command")
        if not isinstance(command, str | list) or not command:
            return ["a shell step needs params={'command': 'text'} (or a list of arguments)"]
        return []

    def action(self, step: Step, ctx: RunContext) -> Action:
        params = step.params

        def bind(
            inputs: Mapping[str, Any], run_params: Mapping[str, Any]
        ) -> tuple[tuple[Any, ...], dict[str, Any]]:
            env = {**input_env(inputs), **params.get("env", {})}
            return (params["command"], env, params.get("cwd")), {}

        return Action(run_command, "async", bind)


KINDS = {"shell": ShellKind()}
