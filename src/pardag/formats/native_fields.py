"""The fields of the native steps file, declared once: each with its value's schema and meaning.

``TOP`` (the file's top level), ``EXECUTION`` (its ``execution:`` section), ``POOL`` (a pool
given as a mapping), ``STEP`` (a step's own fields) and ``RETRY`` (a ``retry:`` mapping). The
reader (``pardag.formats.native``) checks a file against them, and ``pardag.formats.schema``
renders them as ``docs/schema.json``, so the two cannot drift apart. The names a choice may
take come from ``pardag.states`` and ``pardag.settings_rules``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pardag import settings_rules as rules
from pardag.states import EXECUTORS, Trigger

__all__ = ["DASK", "EXECUTION", "POOL", "RETRY", "STEP", "STEP_EXECUTORS", "TOP", "Field"]


@dataclass(frozen=True, slots=True)
class Field:
    """One field of the format: its name, the JSON Schema of its value, and what it means."""

    name: str
    schema: dict[str, Any]
    description: str


_DURATION: dict[str, Any] = {
    "anyOf": [
        {"type": "number", "minimum": 0},
        {"type": "string", "pattern": r"^\s*(\d+(\.\d*)?|\.\d+)\s*(ms|s|m|h)?\s*$"},
    ]
}
_HOOK = "^[A-Za-z0-9_.-]{1,100}$"
_STRINGS = {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
STEP_EXECUTORS: tuple[str, ...] = tuple(e.value for e in EXECUTORS)
"""Where a step may run (a run's ``executor`` is one of ``settings_rules.EXECUTORS``)."""

RETRY = (
    Field("retries", {"type": "integer", "minimum": 0}, "How many more attempts after a failure."),
    Field("delay", _DURATION, "Wait before the first retry (default 1s)."),
    Field("factor", {"type": "number", "minimum": 1}, "Each wait is this times the last (2)."),
    Field("max_delay", _DURATION, "Longest wait between attempts (default 60s)."),
    Field("jitter", {"type": "number", "minimum": 0, "maximum": 1}, "Spread of waits (0.1)."),
)
POOL = (
    Field("size", {"type": "integer", "minimum": 1}, "Units of the pool; steps take 1 or more."),
    Field(
        "rate",
        {"anyOf": [{"type": "number", "exclusiveMinimum": 0}, {"type": "string"}]},
        "Most starts of steps holding the pool per time unit: '10/s', '100/m', or per second.",
    ),
)
EXECUTION = (
    Field("mode", {"enum": list(rules.MODES)}, "How ready steps are ordered (dynamic)."),
    Field(
        "max_concurrency",
        {"type": "integer", "minimum": 0},
        "Most steps running at once across the run; 0 means auto (per executor).",
    ),
    Field("timeout", _DURATION, "Longest the whole run may take, e.g. '10m'."),
    Field(
        "on_failure",
        {"enum": list(rules.ON_FAILURES)},
        "fail_fast: a failure cancels the run; continue: independent steps run on.",
    ),
    Field(
        "pools",
        {
            "type": "object",
            "additionalProperties": {
                "anyOf": [{"type": "integer", "minimum": 1}, {"$ref": "#/$defs/pool"}]
            },
        },
        "Named resource pools: a size, or {size, rate}. Steps take units with resources:.",
    ),
    Field(
        "executor",
        {"enum": list(rules.EXECUTORS)},
        "Where plain Python steps run (threads); dask: every step that does work.",
    ),
    Field(
        "dask",
        {"$ref": "#/$defs/dask"},
        "The Dask cluster of steps on executor dask: {address}; none: a LocalCluster.",
    ),
    Field(
        "keep_outputs_on_cluster",
        {"type": "boolean"},
        "true: outputs of dask steps that nothing in the runner reads stay on the cluster.",
    ),
)
DASK = (
    Field(
        "address",
        {"type": "string"},
        "The Dask scheduler's address, e.g. 'tcp://sched:8786'.",
    ),
)
STEP = (
    Field("kind", {"type": "string"}, "What the step does (python by default)."),
    Field("description", {"type": "string"}, "For people reading the file; not used by runs."),
    Field("depends_on", _STRINGS, "Ids of the steps whose outputs this step needs."),
    Field(
        "language",
        {"type": "string"},
        "Instead of kind: lua, python, shell (bash, sh), javascript (js, node), wasm; the "
        "step's code then goes in code.",
    ),
    Field(
        "params",
        {"type": "object"},
        "The kind's parameters (templated); they may also be written at the step's top level.",
    ),
    Field(
        "retry",
        {"anyOf": [{"type": "integer", "minimum": 0}, {"$ref": "#/$defs/retry"}]},
        "A number of retries, or {retries, delay, factor, max_delay, jitter}.",
    ),
    Field("timeout", _DURATION, "Longest one attempt may take: '30s', '2m', or seconds."),
    Field(
        "when",
        {"type": "string"},
        "Run only if this expression over the inputs and params is true, e.g. "
        '"extract.count > 0 and params.full".',
    ),
    Field(
        "trigger",
        {"enum": [t.value for t in Trigger]},
        "When to run once dependencies are final (all_success; merge: any_success).",
    ),
    Field("critical", {"type": "boolean"}, "false: a failure here does not fail the run."),
    Field(
        "cache",
        {
            "anyOf": [
                {"type": "boolean"},
                {
                    "type": "object",
                    "properties": {"key": {"type": "string"}, "ttl": _DURATION},
                    "additionalProperties": False,
                },
            ]
        },
        "true, or {key: TEMPLATE, ttl: DURATION}: reuse a stored output (docs/runs.md).",
    ),
    Field(
        "resources",
        {"type": "object", "additionalProperties": {"type": "integer", "minimum": 1}},
        "Units of named pools this step holds while it runs, e.g. {db: 1}.",
    ),
    Field("priority", {"type": "integer"}, "Higher starts first among ready steps (0)."),
    Field("executor", {"enum": list(STEP_EXECUTORS)}, "Where the step runs."),
    Field("estimate", _DURATION, "Expected duration, for ordering by critical path."),
    Field(
        "branch",
        {
            "type": "object",
            "additionalProperties": {"type": ["string", "boolean", "integer"]},
        },
        "Run only on these condition steps' branches, e.g. {check: true}.",
    ),
    Field(
        "for_each",
        {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
        'Map this step over a list: a step id, or "{{ steps.ID.output }}"; one instance '
        "ID[k] per item, whose templates read {{ item }} and {{ item_index }}. A list of "
        "those zips their lists ({{ item }} is then [a_k, b_k]).",
    ),
    Field(
        "max_concurrency",
        {"type": "integer", "minimum": 1},
        "With for_each: the most instances of this step running at once.",
    ),
    Field(
        "max_items",
        {"type": "integer", "minimum": 1},
        "With for_each: the longest list it maps over (default 100,000); longer fails it.",
    ),
    Field(
        "allow_failures",
        {"type": "number", "minimum": 0},
        "With for_each: how many instances may fail (a count, or a fraction 0.0-1.0) with the "
        "step still succeeding; their outputs are null.",
    ),
    Field(
        "isolation",
        {"enum": ["process"]},
        "On executor dask: process runs each attempt in a subprocess of the worker, which a "
        "timeout or a cancel kills.",
    ),
)
TOP = (
    Field("$schema", {"type": "string"}, "The JSON Schema this file follows (for editors)."),
    Field("name", {"type": "string"}, "The workflow's name (default: the file name)."),
    Field("description", {"type": "string"}, "What the workflow is for."),
    Field("execution", {"$ref": "#/$defs/execution"}, "Settings of its runs."),
    Field(
        "params",
        {"type": "object"},
        "The params its runs take, with their defaults; a run's own params are merged over "
        "them, and a run given another one fails (unless extra_params is true).",
    ),
    Field(
        "extra_params",
        {"type": "boolean"},
        "Whether runs may give params that 'params' does not declare (default false).",
    ),
    Field(
        "secrets",
        {"type": "array", "items": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"}},
        "The secrets its runs need, by name, e.g. [API_TOKEN]: values come from "
        "PARDAG_SECRET_<NAME> or a secrets file; templates read secrets.NAME, shell steps "
        "the variable NAME; every occurrence of a value is shown and stored as ***.",
    ),
    Field(
        "triggers",
        {
            "type": "array",
            "items": {
                "anyOf": [
                    {
                        "type": "object",
                        "properties": {"webhook": {"type": "string", "pattern": _HOOK}},
                        "required": ["webhook"],
                        "additionalProperties": False,
                    },
                    {
                        "type": "object",
                        "properties": {"cron": {"type": "string"}, "timezone": {"type": "string"}},
                        "required": ["cron"],
                        "additionalProperties": False,
                    },
                ]
            },
        },
        "What starts its runs once stored in pardag serve: {webhook: NAME} (POST "
        '/hooks/ORG/NAME, signed) or {cron: "*/5 * * * *", timezone: "Europe/Paris"}.',
    ),
    Field(
        "steps",
        {"type": "object", "additionalProperties": {"$ref": "#/$defs/step"}},
        "The steps, by id (letters, digits, '_', '.', '-').",
    ),
)
