"""pardag: run workflows shaped as DAGs, every step as soon as its dependencies allow.

The public API lives here; the modules underneath are the architecture (see DESIGN):
``model`` (steps, workflows, validation), ``scheduler`` (the ready queue), ``runner`` (a run),
``executors`` (where steps run), ``kinds`` (what steps do), ``events`` and ``results``.
"""

from __future__ import annotations

import os as _os
from collections.abc import Mapping as _Mapping
from types import FunctionType as _FunctionType
from typing import Any as _Any
from typing import Unpack as _Unpack

from pardag.errors import (
    ApprovalMissing,
    ApprovalRejected,
    ArgumentError,
    CommandFailed,
    CycleError,
    ExpressionError,
    HTTPFailed,
    JavaScriptStepError,
    JavaScriptTimeout,
    LuaStepError,
    LuaTimeout,
    MissingRuntime,
    NodeError,
    PardagError,
    PreconditionFailed,
    Problem,
    PythonStepError,
    RunCancelled,
    RunTimedOut,
    SecretMissing,
    SettingsError,
    StepCancelled,
    StepFailed,
    StepPaused,
    StepSkipped,
    StepTimeout,
    StoreError,
    UnknownOption,
    ValidationError,
    WasmStepError,
    WasmTimeout,
)
from pardag.events import Event, EventKind, Listener, Recorder
from pardag.model import RetryPolicy, Settings, Step, Workflow
from pardag.options import RunOptions, StepOptions
from pardag.results import RunResult, StepResult
from pardag.secrets import Secret
from pardag.states import Mode, OnFailure, RunStatus, StepState, Trigger


def load(
    path: str | _os.PathLike[str],
    *,
    format: str | None = None,
    defaults: _Mapping[str, _Any] | None = None,
) -> Workflow:
    """Read a workflow file in any supported format; see ``pardag.formats.load``."""
    from pardag.formats import load as load_file

    return load_file(path, format=format, defaults=defaults)


def resume(run_id: str, **options: _Unpack[RunOptions]) -> RunResult:
    """Finish a recorded run whose process died; see ``pardag.history.resume``."""
    from pardag import history

    return history.resume(run_id, **options)


def approve(
    run_id: str, step_id: str, value: _Any = True, **options: _Unpack[RunOptions]
) -> RunResult:
    """Answer a paused approval step and resume its run; see ``pardag.history.approve``."""
    from pardag import history

    return history.approve(run_id, step_id, value, **options)


def reject(
    run_id: str, step_id: str, reason: str = "", **options: _Unpack[RunOptions]
) -> RunResult:
    """Reject a paused approval step and resume its run; see ``pardag.history.reject``."""
    from pardag import history

    return history.reject(run_id, step_id, reason, **options)


def retry(
    run_id: str,
    *,
    from_: str = "failed",
    downstream: bool = True,
    queue: bool = False,
    **options: _Unpack[RunOptions],
) -> RunResult | str:
    """Run a finished run again, reusing what succeeded; see ``pardag.rerun.retry``."""
    from pardag import rerun

    return rerun.retry(run_id, from_=from_, downstream=downstream, queue=queue, **options)


def runs(
    *,
    store: _Any = None,
    workflow: str | None = None,
    status: str | None = None,
    since: float | None = None,
    until: float | None = None,
    limit: int = 50,
    org: str | None = None,
) -> list[_Any]:
    """Recorded runs (``pardag.store.RunRecord``), newest first; see ``pardag.history.runs``."""
    from pardag import history

    found = history.runs(
        store=store,
        workflow=workflow,
        status=status,
        since=since,
        until=until,
        limit=limit,
        org=org,
    )
    return list(found)


def run(workflow: Workflow, **options: _Unpack[RunOptions]) -> RunResult:
    """Run ``workflow`` to the end; the same as ``workflow.run(**options)``."""
    return workflow.run(**options)


__all__ = [
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
]

__version__ = "0.1.0"


def _name_as_pardag() -> None:
    """Show every public class and function as ``pardag.X`` in tracebacks and reprs (as httpx
    and trio do), not as the module that defines it; pickle finds it here, as it is exported."""
    for name in __all__:
        value = globals()[name]
        if isinstance(value, type | _FunctionType):
            value.__module__ = __name__


_name_as_pardag()
