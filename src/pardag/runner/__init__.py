"""Drives a run: one mutator of a typed run state, pure decisions and set-up beside it.

The modules, from the entry points down:

* ``entry``: ``run_sync`` (``Workflow.run``), ``run_workflow`` (``run_async``) and
  ``resume_run`` (``pardag.resume``): options checked, the store opened, Ctrl-C handled;
* ``core``: the ``Runner``, the only code that changes run state; its loop settles messages
  and starts what the scheduler says is ready;
* ``state``: ``RunState`` and the typed messages of its inbox;
* ``decisions``: what follows a failed attempt, how a run ends (pure functions);
* ``plan``: the set-up decided before a run starts (a frozen ``Plan``, the scheduler);
* ``records``: what a durable run writes to its journal, and restores when resumed;
* ``chains``: the fast path for short steps on threads (chains, hand-ahead);
* ``events``, ``workers``, ``outcome``: events to listeners, the run's executors, the result.

The package is ``pardag.runner``, not ``pardag.run``: a submodule of that name would replace
the function ``pardag.run`` once imported.
"""

from __future__ import annotations

from pardag.runner.core import Runner
from pardag.runner.entry import new_runner, resume_run, run_sync, run_workflow
from pardag.runner.plan import past_durations

__all__ = ["Runner", "new_runner", "past_durations", "resume_run", "run_sync", "run_workflow"]
