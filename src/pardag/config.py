"""Settings of a run from the command line: each value from the strongest layer that sets it.

From weakest to strongest:

1. defaults (``pardag.Settings``), or those of the workflow file's format
   (``Workflow.format_settings``: a visual editor's node graph continues after a failure);
2. the config file: the first of ``pardag.toml``, ``[tool.pardag]`` in ``pyproject.toml`` or
   ``[execution]`` in ``config.toml`` found in the current directory or above it, up to the
   project root (``.git``) or home, owned by this user (``pardag.configfile``);
3. the workflow file's own ``execution:`` section (``Workflow.file_settings``);
4. ``PARDAG_*`` environment variables (``PARDAG_MAX_CONCURRENCY``, ...);
5. command-line flags (``--max-concurrency``, ...).

Every value remembers its source, so ``pardag run --show-settings`` can say why a run uses it.
Invalid values fail before anything runs, naming the source and the accepted values. Pools
merge by name: a layer that declares pool ``db`` replaces only ``db``.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

from pardag import settings_rules as rules
from pardag.configfile import (
    CONFIG_FILES,
    ConfigFile,
    Search,
    find_config_file,
    read_config_file,
    search_config_file,
)
from pardag.errors import ArgumentError, SettingsError
from pardag.model import Settings, Workflow
from pardag.states import Mode, OnFailure
from pardag.store import DEFAULT_PATH, mask_url
from pardag.units import parse_duration, parse_rate

__all__ = [
    "CONFIG_FILES",
    "ENVIRONMENT",
    "FLAGS",
    "KEYS",
    "ConfigFile",
    "ResolvedSettings",
    "SettingsError",
    "find_config_file",
    "read_config_file",
    "resolve",
]

HTTP_KEYS = ("http.allow", "http.deny")  # an [http] table's allow and deny: Settings.http_*
DASK_KEYS = ("dask.address",)  # a [dask] table's address (execution: dask: address: in a file)
_CHOICES = ("mode", "max_concurrency", "on_failure", "timeout", "executor", "pools")
RUN_KEYS = (*_CHOICES, *HTTP_KEYS, *DASK_KEYS, "keep_outputs_on_cluster")
"""The settings that are ``pardag.Settings`` fields; ``store`` and ``debug`` are the CLI's."""
KEYS = (*RUN_KEYS, "store", "debug")
"""Every setting, in the order ``--show-settings`` prints them."""
ALIASES = {"max_parallel_steps": "max_concurrency", "dask_address": "dask.address"}
"""Other names a config file may use for a setting (as in existing ``config.toml`` files), and
the ``Settings`` field a workflow's own settings name it by."""
ENVIRONMENT = {
    "PARDAG_EXECUTION_MODE": "mode",
    "PARDAG_MODE": "mode",
    "PARDAG_MAX_CONCURRENCY": "max_concurrency",
    "PARDAG_ON_FAILURE": "on_failure",
    "PARDAG_TIMEOUT": "timeout",
    "PARDAG_EXECUTOR": "executor",
    "PARDAG_POOLS": "pools",
    "PARDAG_HTTP_ALLOW": "http.allow",
    "PARDAG_HTTP_DENY": "http.deny",
    "PARDAG_DASK_ADDRESS": "dask.address",
    "PARDAG_KEEP_OUTPUTS_ON_CLUSTER": "keep_outputs_on_cluster",
    "PARDAG_STORE": "store",
    "PARDAG_DEBUG": "debug",
}
"""Environment variables by setting; where two name one setting, the first listed wins."""
OTHER_ENVIRONMENT = ("PARDAG_CONFIG", "PARDAG_SECRETS_FILE")
"""Known ``PARDAG_*`` variables that are not settings (``PARDAG_CONFIG``: the config file;
``PARDAG_SECRETS_FILE``, and every ``PARDAG_SECRET_<NAME>``: a run's secrets)."""
FLAGS = {
    "mode": "--mode",
    "max_concurrency": "--max-concurrency",
    "on_failure": "--on-failure",
    "timeout": "--timeout",
    "executor": "--executor",
    "http.allow": "--http-allow",
    "http.deny": "--http-deny",
    "dask.address": "--dask-address",
    "keep_outputs_on_cluster": "--keep-outputs-on-cluster",
    "store": "--store",
    "debug": "--debug",
}
"""The command-line flag of each setting that has one."""


# -- values -----------------------------------------------------------------------------------
# ``pardag.settings_rules`` decides whether a value is valid, as it does for the Python API and
# a workflow file's ``execution:``. What is read differently here, on purpose: flags and
# variables are text typed by hand, so a choice is matched loosely (``Fail-Fast``), a count may
# be digits (``"8"``), a timeout may be ``none``, ``off`` or 0 (no limit), and pools may be
# JSON text or ``[size, rate]``; a rate may be ``"10/s"`` (as in a workflow file).


T = TypeVar("T")


class _Invalid(ValueError):
    """A raw value does not parse; the message is what was expected."""


def _checked(value: T, rule: Callable[[T], str | None], expected: str = "") -> T:
    """``value`` if ``rule`` accepts it; else ``_Invalid`` with ``expected`` or the rule's words."""
    words = rule(value)
    if words is not None:
        raise _Invalid(expected or words)
    return value


def _choice(rule: Callable[[object], str | None]) -> Callable[[object], str]:
    """A reader of a choice: case, spaces and ``-`` for ``_`` do not matter (``Fail-Fast``)."""

    def parse(raw: object) -> str:
        text = raw.strip().lower().replace("-", "_") if isinstance(raw, str) else raw
        return str(_checked(text, rule))

    return parse


def _mode(raw: object) -> Mode:
    return Mode(_choice(rules.mode)(raw))


def _on_failure(raw: object) -> OnFailure:
    return OnFailure(_choice(rules.on_failure)(raw))


def _non_negative_int(raw: object) -> int:
    """An integer >= 0, also written as digits (variables and flags are text)."""
    if isinstance(raw, str) and re.fullmatch(r"\s*[0-9]+\s*", raw):
        raw = int(raw.strip())
    return cast(int, _checked(raw, rules.max_concurrency))


_TIMEOUT_EXPECTED = "a duration like '30s', '2m' or a number of seconds (0 or 'none': no limit)"


def _timeout(raw: object) -> float | None:
    """A duration; ``none``, ``off``, empty or 0 mean no limit (a flag can lift one below it)."""
    if isinstance(raw, str) and raw.strip().lower() in ("none", "off", ""):
        return None
    try:
        seconds = parse_duration(raw, "timeout")
    except ValueError:
        raise _Invalid(_TIMEOUT_EXPECTED) from None
    return _checked(seconds or None, rules.timeout, _TIMEOUT_EXPECTED)


_executor = _choice(rules.executor)

_POOLS_EXPECTED = (
    "pools by name, each a size (an integer >= 1) or a size and a rate, "
    'like {"db": 2, "api": {"size": 4, "rate": "10/s"}}'
)


def _pools(raw: object) -> dict[str, int | tuple[int, float]]:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise _Invalid(_POOLS_EXPECTED) from None
    if not isinstance(raw, Mapping):
        raise _Invalid(_POOLS_EXPECTED)
    return {str(name): _pool(spec) for name, spec in raw.items()}


def _pool(spec: object) -> int | tuple[int, float]:
    size: object = spec
    rate: object = None
    if isinstance(spec, Mapping) and set(spec) <= {"size", "rate"}:
        size, rate = spec.get("size"), spec.get("rate")
    elif isinstance(spec, tuple | list) and len(spec) == 2:
        size, rate = spec
    units = cast(int, _checked(size, rules.pool_size, _POOLS_EXPECTED))
    if rate is None:
        return units
    try:
        per_second = parse_rate(rate, "rate")
    except ValueError:
        raise _Invalid(_POOLS_EXPECTED) from None
    return units, _checked(per_second, rules.pool_rate, _POOLS_EXPECTED)


def _store(raw: object) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise _Invalid("a file path or database URL")
    return raw.strip()


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


def _bool(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise _Invalid("one of " + ", ".join(v for v in (*_TRUE, *_FALSE) if v))


def _http(raw: object) -> tuple[str, ...]:
    """An egress list: entries, or comma-separated text (``pardag.egress``)."""
    try:
        return rules.http_list(raw)
    except ValueError as exc:
        raise _Invalid(str(exc)) from None


def _dask_address(raw: object) -> str | None:
    """A scheduler's address; ``none``, ``local`` or empty: a LocalCluster for the run."""
    if raw is None or (isinstance(raw, str) and raw.strip().lower() in ("", "none", "local")):
        return None
    return cast(str, _checked(raw.strip() if isinstance(raw, str) else raw, rules.dask_address))


_PARSERS: dict[str, Callable[[object], Any]] = {
    "mode": _mode,
    "max_concurrency": _non_negative_int,
    "on_failure": _on_failure,
    "timeout": _timeout,
    "executor": _executor,
    "pools": _pools,
    "http.allow": _http,
    "http.deny": _http,
    "dask.address": _dask_address,
    "keep_outputs_on_cluster": _bool,
    "store": _store,
    "debug": _bool,
}
_DEFAULTS = Settings()


def _default(key: str) -> Any:
    if key in RUN_KEYS:
        return getattr(_DEFAULTS, key.replace(".", "_"))
    return str(DEFAULT_PATH) if key == "store" else False  # the store pardag run records to


# -- layers -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Entry:
    """One raw value of one layer: ``name`` and ``where`` place it in error messages."""

    key: str
    raw: object
    source: str
    name: str
    where: str = ""
    shown: object = None  # the value to quote in a message, when not ``raw``


def _file_entries(cfg: ConfigFile, shown: str) -> tuple[list[_Entry], list[str], list[str]]:
    """(entries, problems, warnings) of a config file's table and its ``execution`` table."""
    entries: list[_Entry] = []
    problems: list[str] = []
    warnings: list[str] = []
    lenient = cfg.path.name == "config.toml"  # a file other tools may share
    source = shown + cfg.label.removeprefix(cfg.path.name)  # "../pyproject.toml [tool.pardag]"
    for table, key, raw in _walk(cfg):
        where = _place(cfg, shown, (*cfg.table, *table), key.rpartition(".")[2])
        name = ALIASES.get(key, key)
        if name not in KEYS:
            hint = _closest(key, (*KEYS, *ALIASES)) or f"; the settings are: {', '.join(KEYS)}"
            (warnings if lenient else problems).append(f"unknown setting {key!r} in {where}{hint}")
            continue
        if any(e.key == name for e in entries):
            problems.append(f"setting {name!r} is given twice in {shown}; keep one ({where})")
        elif name == "pools" and isinstance(raw, Mapping):
            entries += _pool_entries(cfg, shown, source, (*cfg.table, *table, "pools"), raw, where)
        else:
            entries.append(_Entry(name, raw, source, key, f" in {where}"))
    return entries, problems, warnings


def _pool_entries(
    cfg: ConfigFile,
    shown: str,
    source: str,
    table: tuple[str, ...],
    pools: Mapping[str, object],
    where: str,
) -> list[_Entry]:
    """One entry per pool, so that a bad pool is named with its own line."""
    return [
        _Entry(
            "pools",
            {name: spec},
            source,
            f"pools.{name}",
            f" in {_place(cfg, shown, table, str(name), where)}",
            spec,
        )
        for name, spec in pools.items()
    ]


def _walk(cfg: ConfigFile) -> Iterator[tuple[tuple[str, ...], str, object]]:
    """(sub-table, key, value) of the settings table and its optional ``execution`` table."""
    for key, raw in cfg.data.items():
        if key == "execution" and isinstance(raw, Mapping) and cfg.table != ("execution",):
            for inner, value in raw.items():
                yield ("execution",), str(inner), value
        elif key in ("http", "dask") and isinstance(raw, Mapping):  # [http] allow = [...]
            for inner, value in raw.items():
                yield (key,), f"{key}.{inner}", value
        else:
            yield (), str(key), raw


def _place(
    cfg: ConfigFile, shown: str, table: tuple[str, ...], key: str, otherwise: str = ""
) -> str:
    """``shown:line`` of ``key`` in ``table``; ``otherwise`` (or ``shown``) when not found."""
    line = _toml_line(cfg.text, table, key)
    return f"{shown}:{line}" if line else otherwise or shown


_HEADER = re.compile(r"^\s*\[([^\[\]]+)\]\s*(?:#.*)?$")


def _toml_line(text: str, table: tuple[str, ...], key: str) -> int | None:
    """The line of ``key = ...`` under ``[table]`` in TOML text; a cheap scan, not a parser."""
    current: tuple[str, ...] = ()
    assign = re.compile(rf"""^\s*(?:{re.escape(key)}|"{re.escape(key)}"|'{re.escape(key)}')\s*=""")
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            current = tuple(p.strip().strip("\"'") for p in header.group(1).split("."))
            if current == (*table, key):  # the key is itself a table: [pools]
                return number
        elif current == table and assign.match(line):
            return number
    return None


def _format_entries(wf: Workflow | None) -> list[_Entry]:
    """The defaults of the workflow file's format, in place of pardag's own."""
    if wf is None or not wf.format_settings:
        return []
    source = f"default of the file's format ({wf.definition_format.partition(':')[0]})"
    return [_Entry(key, raw, source, key) for key, raw in wf.format_settings.items()]


def _workflow_entries(wf: Workflow | None) -> list[_Entry]:
    if wf is None or not wf.file_settings:
        return []
    source = f"workflow file {wf.source}" if wf.source else f"workflow {wf.name!r}"
    where = f" in {wf.source} (execution: section)" if wf.source else f" in workflow {wf.name!r}"
    return [
        _Entry(ALIASES.get(key, key), raw, source, key, where)
        for key, raw in wf.file_settings.items()
        if ALIASES.get(key, key) in KEYS
    ]


def _env_entries(environ: Mapping[str, str]) -> tuple[list[_Entry], list[str]]:
    entries: dict[str, _Entry] = {}
    for var, key in ENVIRONMENT.items():
        if var in environ and key not in entries:  # the first name listed wins
            entries[key] = _Entry(key, environ[var], var, var)
    known = (*ENVIRONMENT, *OTHER_ENVIRONMENT)
    warnings = [
        f"unknown environment variable {var} is ignored{_closest(var, known)}"
        for var in sorted(environ)
        if var.startswith("PARDAG_") and var not in known and not var.startswith("PARDAG_SECRET_")
    ]
    return list(entries.values()), warnings


def _flag_entries(flags: Mapping[str, object]) -> list[_Entry]:
    out = []
    for key, raw in flags.items():
        if key not in FLAGS:
            raise ArgumentError(f"{key!r} is not a setting with a flag; use one of {list(FLAGS)}")
        if raw is not None:
            out.append(_Entry(key, raw, FLAGS[key], FLAGS[key]))
    return out


def _closest(word: str, known: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, known, n=1)
    if not close:
        return ""
    return f"; did you mean {close[0]}?" if word.isupper() else f"; did you mean {close[0]!r}?"


# -- resolution -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResolvedSettings:
    """Each setting's value and the layer it came from (``"default"``, ``"--mode"``, ...).

    ``pools`` has one source per pool, in ``pool_sources``. ``warnings`` are things worth
    saying that do not stop a run (an unknown ``PARDAG_*`` variable, say).
    """

    values: Mapping[str, Any]
    sources: Mapping[str, str]
    pool_sources: Mapping[str, str] = field(default_factory=dict)
    config_file: Path | None = None
    warnings: tuple[str, ...] = ()
    config_note: str = ""
    """How the config file was chosen, or where the search looked when it found none."""

    def settings(self) -> Settings:
        """The run settings as ``pardag.Settings``: assign to ``Workflow.settings``."""
        return Settings(**{key.replace(".", "_"): self.values[key] for key in RUN_KEYS})

    @property
    def store(self) -> str:
        """Where runs are recorded: a file path or database URL (``.pardag/runs.db`` by
        default, relative to the current directory)."""
        value: str = self.values["store"]
        return value

    @property
    def debug(self) -> bool:
        """Show tracebacks for errors."""
        return bool(self.values["debug"])

    def rows(self) -> list[tuple[str, str, str]]:
        """(setting, value as text, source) for each setting, each pool on its own row."""
        out = []
        for key in KEYS:
            if key == "pools" and self.values["pools"]:
                for name, spec in self.values["pools"].items():
                    out.append((f"pools.{name}", _show_pool(spec), self.pool_sources[name]))
            else:
                out.append((key, _show(key, self.values[key]), self.sources[key]))
        return out

    def as_json(self) -> dict[str, dict[str, Any]]:
        """``{setting: {"value": ..., "source": ...}}``, each pool as ``pools.NAME``."""
        out: dict[str, dict[str, Any]] = {}
        for key in KEYS:
            value = self.values[key]
            if key == "pools" and value:
                for name, spec in value.items():
                    shown = {"size": spec[0], "rate": spec[1]} if isinstance(spec, tuple) else spec
                    out[f"pools.{name}"] = {"value": shown, "source": self.pool_sources[name]}
            else:
                shown = mask_url(value) if key == "store" else value
                out[key] = {"value": shown, "source": self.sources[key]}
        return out


def _show(key: str, value: Any) -> str:
    if value is None:
        return "none"
    if key == "max_concurrency" and value == 0:
        return "0 (auto)"
    if key == "timeout":
        return f"{value:g}s"
    if key == "pools":
        return "{}"
    if key.startswith("http."):
        return ", ".join(value) or "none"
    if key == "store":  # a path keeps its case; a database URL hides its password
        return mask_url(value)
    return str(value.value if isinstance(value, Mode | OnFailure) else value).lower()


def _show_pool(spec: int | tuple[int, float]) -> str:
    return f"{spec[0]} at {spec[1]:g}/s" if isinstance(spec, tuple) else str(spec)


def resolve(
    workflow: Workflow | None = None,
    *,
    flags: Mapping[str, object] | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    config: str | os.PathLike[str] | None = None,
) -> ResolvedSettings:
    """Resolve every setting for a run of ``workflow`` (see the module docstring).

    Args:
        workflow: gives the workflow file's layer (``file_settings``); None for none.
        flags: raw flag values by setting name (``{"max_concurrency": "8"}``); None = not given.
        environ: the environment (default ``os.environ``).
        cwd: where the config file search starts (default the current directory).
        config: a config file to use instead of searching (``--config``, ``PARDAG_CONFIG``).

    Raises:
        SettingsError: listing every invalid value, each with its source and accepted values.
    """
    env = os.environ if environ is None else environ
    start = Path(cwd if cwd is not None else os.getcwd()).resolve()
    cfg, note, warnings = _config_file(start, config, env)
    layers: list[_Entry] = []
    problems: list[str] = []
    if cfg is not None:
        layers, problems, file_warnings = _file_entries(cfg, _relative(cfg.path, start))
        warnings += file_warnings
    layers = [*_format_entries(workflow), *layers]
    env_entries, env_warnings = _env_entries(env)
    layers += [*_workflow_entries(workflow), *env_entries, *_flag_entries(flags or {})]
    try:
        resolved = _apply(layers, problems)
    except SettingsError as exc:
        raise SettingsError(exc.problems, (*warnings, *env_warnings)) from None
    return ResolvedSettings(
        resolved.values,
        resolved.sources,
        resolved.pool_sources,
        cfg.path if cfg else None,
        (*warnings, *env_warnings),
        note,
    )


def _config_file(
    start: Path, config: str | os.PathLike[str] | None, env: Mapping[str, str]
) -> tuple[ConfigFile | None, str, list[str]]:
    """(the config file, how it was chosen, warnings about files the search refused)."""
    if config is not None:
        return read_config_file(start / config), "given with --config", []
    if env.get("PARDAG_CONFIG"):
        return read_config_file(start / env["PARDAG_CONFIG"]), "named by PARDAG_CONFIG", []
    home = Path(env["HOME"]) if env.get("HOME") else None
    search: Search = search_config_file(start, home=home)
    looked = f"{search.searched[0]} up to {search.searched[-1]}"
    if search.found is not None:
        return search.found, f"found searching {looked}", []
    why = "refused, see the warning" if search.refused else "none found"
    return None, f"{why}; searched {looked}", list(search.refused)


def _apply(layers: list[_Entry], problems: list[str]) -> ResolvedSettings:
    """Parse each entry, weakest first, over the defaults; raise every problem at once."""
    values = {key: _default(key) for key in KEYS}
    sources = dict.fromkeys(KEYS, "default")
    pools: dict[str, int | tuple[int, float]] = {}
    pool_sources: dict[str, str] = {}
    for entry in layers:
        try:
            value = _PARSERS[entry.key](entry.raw)
        except _Invalid as exc:
            shown = entry.raw if entry.shown is None else entry.shown
            problems.append(f"Invalid {entry.name} value {shown!r}{entry.where}: expected {exc}")
            continue
        if entry.key == "pools":
            pools.update(value)
            pool_sources.update(dict.fromkeys(value, entry.source))
            value = pools
        values[entry.key] = value
        sources[entry.key] = entry.source
    if problems:
        raise SettingsError(problems)
    return ResolvedSettings(values, sources, pool_sources)


def _relative(path: Path, start: Path) -> str:
    """``path`` relative to ``start`` when it lies at or above it (``../pardag.toml``)."""
    try:
        return os.path.relpath(path, start)
    except ValueError:  # another drive on Windows
        return str(path)
