"""The options of ``Workflow.run``, ``Workflow.add`` and friends, typed once.

``RunOptions`` and ``StepOptions`` are ``TypedDict``s that the public entry points take as
``**options: Unpack[...]``, so that a user's type checker flags ``wf.run(max_concurency=8)``
before it runs; at run time ``check_options`` raises ``pardag.UnknownOption`` (a ``TypeError``
and an ``ArgumentError``) naming the closest option. The option names come from these classes,
so a new option is declared in one place.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypedDict

from pardag.errors import UnknownOption
from pardag.states import Mode, OnFailure, Trigger

if TYPE_CHECKING:
    from pardag.clock import Clock
    from pardag.egress import EgressPolicy
    from pardag.events import Listener
    from pardag.model import RetryPolicy
    from pardag.secrets import Secret, SecretSource
    from pardag.store.base import Store

__all__ = [
    "RUN_OPTIONS",
    "SETTING_OPTIONS",
    "STEP_OPTIONS",
    "RunOptions",
    "SettingOptions",
    "StepOptions",
    "check_options",
]


class SettingOptions(TypedDict, total=False):
    """The run settings (``pardag.Settings`` fields): each replaces the workflow's own."""

    mode: Mode | str
    max_concurrency: int
    on_failure: OnFailure | str
    timeout: float | None
    pools: Mapping[str, int | tuple[int, float]]
    executor: str | None
    http_allow: Sequence[str] | str
    http_deny: Sequence[str] | str
    dask_address: str | None
    keep_outputs_on_cluster: bool


class RunOptions(SettingOptions, total=False):
    """What ``Workflow.run`` (and ``run_async``, ``pardag.run``, ``resume``) accept.

    ``listeners`` take every event; ``params`` are merged over the workflow's own; ``store``
    (a ``Store`` or a URL; default ``PARDAG_STORE``) records the run; ``encoder`` turns outputs
    JSON cannot hold into ones it can; ``cache=False`` runs cached steps anyway (their fresh
    outputs still refresh the cache); ``clock`` replaces the real clock (tests:
    ``pardag.clock.VirtualClock``); ``secrets`` gives secret values by name (or names to take
    from the sources), ``secrets_file`` a dotenv file of them, ``secret_sources`` replaces the
    sources (the secrets file, then ``PARDAG_SECRET_<NAME>``); ``egress_floor`` is checked
    before ``http_allow``/``http_deny`` and cannot be lifted by them (a worker gives the
    service's runs ``egress.service_floor``).
    """

    listeners: Sequence[Listener]
    params: Mapping[str, Any] | None
    store: Store | str | os.PathLike[str] | None
    encoder: Callable[[Any], Any] | None
    cache: bool
    clock: Clock | None
    secrets: Mapping[str, str | Secret | None] | Sequence[str] | None
    secrets_file: str | os.PathLike[str] | None
    secret_sources: Sequence[SecretSource] | None
    egress_floor: EgressPolicy | None


class StepOptions(TypedDict, total=False):
    """What ``Workflow.add`` and ``@wf.step`` accept besides the id and the function: the
    ``Step`` fields (DESIGN §1); ``retry`` also takes a number of retries, or a mapping of
    ``RetryPolicy``'s numbers as the workflow files write it (``{"retries": 2, "delay": 0.1}``)."""

    depends_on: Iterable[str] | str | None
    retry: RetryPolicy | int | Mapping[str, Any] | None
    kind: str
    params: dict[str, Any]
    timeout: float | None
    when: str | Callable[..., Any] | None
    trigger: Trigger | str
    critical: bool
    cache: Any
    resources: dict[str, int]
    priority: int
    executor: str | None
    estimate: float | None
    branch: dict[str, str]
    map_over: str | Sequence[str] | None
    map_concurrency: int | None
    max_items: int | None
    allow_failures: int | float | None
    isolation: str | None


SETTING_OPTIONS = tuple(SettingOptions.__annotations__)
RUN_OPTIONS = tuple(RunOptions.__annotations__)
STEP_OPTIONS = tuple(StepOptions.__annotations__)


def check_options(given: Iterable[str], known: Sequence[str], call: str) -> None:
    """Raise ``UnknownOption`` for the first name in ``given`` that ``known`` lacks."""
    for name in given:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise UnknownOption(
                f"{call} got an unknown option {name!r}; {hint}(the options are: "
                f"{', '.join(known)})"
            )
