"""pardag: run workflows shaped as DAGs, every step as soon as its dependencies allow.

The public API lives here; the modules underneath are the architecture (see DESIGN):
``model`` (steps, workflows, validation), ``scheduler`` (the ready queue), ``runner`` (a run),
``executors`` (where steps run), ``kinds`` (what steps do), ``events`` and ``results``.
"""

from __future__ import annotations

import os as _os
from collections.abc import Mapping as _Mapping
from typing import Any as _Any

from pardag.errors import (
    ArgumentError,
    CycleError,
    PardagError,
    Problem,
    RunCancelled,
    RunTimedOut,
    StepCancelled,
    StepFailed,
    StepTimeout,
    ValidationError,
)
from pardag.events import Event, EventKind, Listener, Recorder
from pardag.model import Mode, OnFailure, RetryPolicy, Settings, Step, StepState, Trigger, Workflow
from pardag.results import RunResult, RunStatus, StepResult


def load(
    path: str | _os.PathLike[str],
    *,
    format: str | None = None,
    defaults: _Mapping[str, _Any] | None = None,
) -> Workflow:
    """Read a workflow file in any supported format; see ``pardag.formats.load``."""
    from pardag.formats import load as load_file

    return load_file(path, format=format, defaults=defaults)


def resume(run_id: str, **options: _Any) -> RunResult:
    """Finish a recorded run whose process died; see ``pardag.history.resume``."""
    from pardag.history import resume as resume_run

    return resume_run(run_id, **options)


def run(workflow: Workflow, **settings: object) -> RunResult:
    """Run ``workflow`` to the end; the same as ``workflow.run(**settings)``."""
    return workflow.run(**settings)


__all__ = [
    "ArgumentError",
    "CycleError",
    "Event",
    "EventKind",
    "Listener",
    "Mode",
    "OnFailure",
    "PardagError",
    "Problem",
    "Recorder",
    "RetryPolicy",
    "RunCancelled",
    "RunResult",
    "RunStatus",
    "RunTimedOut",
    "Settings",
    "Step",
    "StepCancelled",
    "StepFailed",
    "StepResult",
    "StepState",
    "StepTimeout",
    "Trigger",
    "ValidationError",
    "Workflow",
    "load",
    "resume",
    "run",
]

__version__ = "0.1.0"
