"""What starts a stored workflow's runs besides a person: its declared triggers.

A workflow file declares them (``triggers: [{webhook: NAME}, {cron: "*/5 * * * *", timezone:
"Europe/Paris"}]``; a node graph's ``trigger-webhook`` and ``trigger-schedule`` nodes), and
``pardag serve`` registers them when the workflow is stored (docs/server.md). Here they are read
and checked, so that a bad cron expression or time zone is a problem with the file's line,
found by ``pardag validate`` like any other. Cron expressions are checked with ``croniter``
(of ``pardag[server]``), imported only when a file has one.

This module is at the bottom of the layers: it imports nothing of pardag.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "HOOK_NAME",
    "Schedule",
    "TriggerSpec",
    "Webhook",
    "cron_problem",
    "declared",
    "from_node",
    "twice",
    "zone_problem",
]

HOOK_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")
"""A webhook's name: it is a segment of its URL, ``/hooks/ORG/NAME``."""

Where = tuple[str | int, ...]
"""Keys below the trigger's own place where a problem is (``("cron",)``), or ``()``."""


@dataclass(frozen=True)
class Webhook:
    """``POST /hooks/ORG/NAME``, signed with the hook's own secret, starts a run."""

    name: str


@dataclass(frozen=True)
class Schedule:
    """A run at each time the cron expression matches, read in ``timezone``."""

    cron: str
    timezone: str = "UTC"


TriggerSpec = Webhook | Schedule


def declared(value: Any) -> tuple[tuple[TriggerSpec, ...], list[tuple[Where, str]]]:
    """A file's top-level ``triggers:`` read: the triggers, and each problem (where it is
    below ``triggers``: the list index and the field; the message)."""
    if not isinstance(value, list):
        example = '[{webhook: orders}, {cron: "*/5 * * * *"}]'
        return (), [((), f"triggers must be a list such as {example}, got {value!r}")]
    found: list[TriggerSpec] = []
    problems: list[tuple[Where, str]] = []
    for index, item in enumerate(value):
        spec, wrong = _one(item)
        problems += [((index, *where), message) for where, message in wrong]
        if spec is not None:
            found.append(spec)
    problems += [((), message) for message in twice(found)]
    return tuple(found), problems


def from_node(
    node_type: str, data: Mapping[str, Any], node_id: str
) -> tuple[TriggerSpec | None, list[tuple[Where, str]]]:
    """The trigger a node graph's ``trigger_webhook`` / ``trigger_schedule`` node declares
    (``data.webhook``, default the node's id: not ``data.name``, which editors use as a label;
    ``data.cron`` and ``data.timezone``), or None for other trigger nodes (manual); problems
    are placed below the node's ``data``."""
    if node_type == "trigger_webhook":
        name = data.get("webhook", node_id)
        problem = _hook_problem(name)
        return (None, [(("webhook",), problem)]) if problem else (Webhook(name), [])
    if node_type == "trigger_schedule":
        if "cron" not in data:
            why = 'a trigger-schedule node needs data.cron, e.g. "cron": "*/5 * * * *"'
            return None, [((), why)]
        return _schedule(data.get("cron"), data.get("timezone", "UTC"))
    return None, []


def _one(item: Any) -> tuple[TriggerSpec | None, list[tuple[Where, str]]]:
    if isinstance(item, dict) and set(item) == {"webhook"}:
        problem = _hook_problem(item["webhook"])
        return (None, [(("webhook",), problem)]) if problem else (Webhook(item["webhook"]), [])
    if isinstance(item, dict) and "cron" in item and set(item) <= {"cron", "timezone"}:
        return _schedule(item["cron"], item.get("timezone", "UTC"))
    return None, [
        (
            (),
            f"a trigger is {{webhook: NAME}} or {{cron: EXPRESSION, timezone: ZONE}}, got {item!r}",
        )
    ]


def _schedule(cron: Any, timezone: Any) -> tuple[Schedule | None, list[tuple[Where, str]]]:
    problems: list[tuple[Where, str]] = [
        ((key,), message)
        for key, message in (("cron", cron_problem(cron)), ("timezone", zone_problem(timezone)))
        if message
    ]
    return (None, problems) if problems else (Schedule(cron, timezone), [])


def _hook_problem(name: Any) -> str | None:
    if isinstance(name, str) and HOOK_NAME.fullmatch(name):
        return None
    return (
        f"a webhook's name is part of its URL (/hooks/ORG/NAME): letters, digits, '_', '.' "
        f"and '-', 1 to 100 of them; got {name!r}"
    )


def cron_problem(cron: Any) -> str | None:
    """Why ``cron`` is no five-field cron expression (None: it is one)."""
    if not isinstance(cron, str) or len(cron.split()) != 5:
        return (
            f"cron must be five fields, minute hour day month weekday, such as "
            f'"*/5 * * * *" (every 5 minutes) or "0 6 * * 1-5"; got {cron!r}'
        )
    try:
        from croniter import croniter  # type: ignore[import-untyped, unused-ignore]
    except ImportError:
        return "cron triggers need croniter: pip install 'pardag[server]'"
    if not croniter.is_valid(cron):
        return (
            f"cron {cron!r} is not a valid expression: each field is a number in its range, "
            "'*', a list (1,15), a range (1-5) or a step (*/10); minute 0-59, hour 0-23, day "
            "1-31, month 1-12, weekday 0-6"
        )
    return None


def zone_problem(zone: Any) -> str | None:
    """Why ``zone`` is no IANA time zone name (None: it is one)."""
    try:
        if isinstance(zone, str) and zone.strip() == zone and zone:
            zoneinfo.ZoneInfo(zone)
            return None
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        pass
    return f"timezone {zone!r} is not a time zone name; use one such as 'UTC' or 'Europe/Paris'"


def twice(found: list[TriggerSpec]) -> list[str]:
    """A problem for each webhook name declared more than once."""
    names = [t.name for t in found if isinstance(t, Webhook)]
    return [
        f"webhook {name!r} is declared twice; give each webhook its own name"
        for name in sorted({n for n in names if names.count(n) > 1})
    ]
