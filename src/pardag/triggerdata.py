"""A run's trigger data: what ``trigger`` reads in its templates, expressions and node-graph
``trigger`` nodes.

A run queued with trigger data (a webhook's JSON body, a schedule's slot, the API's
``trigger_data``, ``pardag.worker.submit(trigger=...)``) keeps it in the store with the run
(``trigger_json``); whichever process runs it (a worker, ``resume``, ``retry``) reads it back,
so every attempt sees the same data. A run without trigger data (a plain ``pardag run``, or
empty trigger data) keeps ``trigger`` as its params, as before.

The data rides on the run's params (``TriggeredParams``, a ``dict`` of the params with the
trigger data beside them), which the runner hands to every step's binder as it is: ``when``
and condition expressions get it with no change to the runner's hot path.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["TriggeredParams", "recorded_trigger", "trigger_of", "with_trigger"]


class TriggeredParams(dict[str, Any]):
    """A run's params, with its trigger data (``trigger``) beside them."""

    __slots__ = ("trigger",)

    def __init__(self, params: Mapping[str, Any], trigger: Mapping[str, Any]) -> None:
        super().__init__(params)
        self.trigger: Mapping[str, Any] = trigger

    def __reduce__(self) -> tuple[Any, ...]:  # pickled whole to process executors
        return (TriggeredParams, (dict(self), dict(self.trigger)))


def trigger_of(params: Mapping[str, Any]) -> Mapping[str, Any]:
    """What ``trigger`` reads in a run whose params are ``params``: its trigger data when it
    has some, else the params themselves."""
    return params.trigger if isinstance(params, TriggeredParams) else params


def with_trigger(params: Mapping[str, Any], trigger: Mapping[str, Any] | None) -> dict[str, Any]:
    """The run's params carrying ``trigger`` (none or empty: plain params)."""
    return TriggeredParams(params, trigger) if trigger else dict(params)


def recorded_trigger(trigger_json: str | None) -> dict[str, Any] | None:
    """The trigger data a run record keeps (``trigger_json``); None when it has none."""
    if not trigger_json:
        return None
    try:
        data = json.loads(trigger_json)
    except ValueError:
        return None  # not JSON: written by no pardag; the run reads its params as before
    return data if isinstance(data, dict) and data else None
