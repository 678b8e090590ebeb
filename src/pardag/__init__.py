"""pardag: run workflows shaped as DAGs, every step as soon as its dependencies allow.

The public API lives here; the modules underneath are the architecture (see DESIGN):
``model`` (steps, workflows, validation), ``scheduler`` (the ready queue), ``runner`` (a run),
``executors`` (where steps run), ``kinds`` (what steps do), ``events`` and ``results``.
"""

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
    "run",
]

__version__ = "0.1.0"
