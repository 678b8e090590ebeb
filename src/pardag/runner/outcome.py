"""A finished run as the ``RunResult`` its caller gets back, read from the run's flat state.

The result's ``steps`` and ``outputs`` are views over the run's lists, built on first access:
a run of a million steps makes no million objects that nobody reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pardag.errors import PardagError
from pardag.results import Outputs, RunResult, StepResult, StepResults
from pardag.runner.mapping import Mapper
from pardag.runner.plan import Plan
from pardag.runner.state import RunState
from pardag.scheduler import Scheduler
from pardag.secrets import Masker
from pardag.states import RunStatus

__all__ = ["build_result"]


def build_result(
    plan: Plan,
    state: RunState,
    sched: Scheduler,
    run_id: str,
    params: Mapping[str, Any],
    times: tuple[float, float],
    ending: tuple[RunStatus, PardagError | None],
    masker: Masker | None = None,
    maps: Mapper | None = None,
) -> RunResult:
    """The result of run ``run_id``, which started and finished at ``times``, ending as
    ``ending`` (its status and error); with a ``masker`` (a run with secrets), the outputs and
    params show ``***`` for each secret (the steps themselves had the real values). With
    ``maps``, an instance's result names its mapped step and its item."""
    graph = plan.graph
    values: list[Any] = state.outputs
    if masker:
        values, params = [masker.value(v) for v in values], masker.value(params)
    ids, reasons, states = graph.ids, sched.reason, sched.state

    def make(i: int) -> StepResult:
        found = maps.item_of(i) if maps is not None else None
        return StepResult(
            ids[i],
            states[i],
            state.attempts[i],
            state.started[i] or None,
            state.finished[i] or None,
            state.errors.get(i),
            reasons.get(i),
            plan.executor_of[i],
            i in state.cached,
            *(() if found is None else _instance(ids[found[0]], found[1], masker)),
        )

    steps = StepResults(ids, graph.index, make)
    outputs = Outputs(ids, graph.index, values, states)
    last = tuple(i for i in range(len(ids)) if not graph.succs[i])
    terminal = tuple(ids[i] for i in last if sched.parent_of(i) is None)  # not instances
    status, error = ending
    started, finished = times
    return RunResult(
        run_id, plan.workflow, status, steps, outputs, terminal, error, started, finished, params
    )


def _instance(parent: str, item: Any, masker: Masker | None) -> tuple[str, Any]:
    """An instance's parent and item, its secrets shown as ``***``."""
    return parent, masker.value(item) if masker else item
