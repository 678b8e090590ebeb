"""A native steps file's ``execution:`` section: the settings of its runs, checked.

``pardag.settings_rules`` decides whether a value is valid, as it does for the Python API and
config files; this module reads the file's values into the ones ``pardag.Settings`` holds and
words each problem at its line. What a file may write that the Python API may not: a timeout
as ``"2m"`` and a pool's rate as ``"10/s"`` (``pardag.units``). What it may not: a timeout of
0 (leave it out for no limit; a config file's 0 means no limit), and ``true`` as a pool size.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pardag import settings_rules as rules
from pardag.formats.native_checks import MISSING, Checks, show
from pardag.formats.native_fields import DASK, EXECUTION, POOL
from pardag.units import parse_rate

__all__ = ["read_execution"]

_AT = "execution"


def read_execution(checks: Checks, section: Any) -> dict[str, Any]:
    """The settings of ``section`` (``MISSING``: the file has none) that are valid.

    Each invalid one is a problem recorded in ``checks``, and is left out.
    """
    if section is MISSING or not checks.mapping(section, "execution", _AT):
        return {}
    checks.unknown(section, [f.name for f in EXECUTION], " in execution", (_AT,))
    settings: dict[str, Any] = {}
    for key, read in _READERS.items():
        if key in section:
            value = read(checks, section[key])
            if value is not MISSING:
                settings["dask_address" if key == "dask" else key] = value
    return settings


_Read = Callable[[Checks, Any], Any]
"""Reads one setting's value: the value to use, or ``MISSING`` after recording a problem."""


def _choice(rule: Callable[[object], str | None], options: tuple[str, ...], what: str) -> _Read:
    """A choice setting's reader: the rule decides, a misspelt name is told the closest."""

    def read(checks: Checks, value: Any) -> Any:
        return checks.ruled(value, what, rule(value), _AT, what, options=options)

    return read


def _max_concurrency(checks: Checks, value: Any) -> Any:
    return checks.ruled(
        value, "max_concurrency", rules.max_concurrency(value), _AT, "max_concurrency"
    )


def _timeout(checks: Checks, value: Any) -> Any:
    seconds = checks.duration(value, "timeout", _AT, "timeout")
    expected = None if seconds is MISSING else rules.timeout(seconds)
    if expected is None:
        return seconds
    return checks.bad(
        f"'timeout' must be {expected}, got {seconds:g}; leave it out for no limit", _AT
    )


def _pools(checks: Checks, pools: Any) -> Any:
    if not checks.mapping(pools, "pools", _AT, "pools"):
        return MISSING
    out: dict[str, int | tuple[int, float]] = {}
    for name, spec in pools.items():
        pool = _pool(checks, name, spec)
        if pool is not MISSING:
            out[name] = pool
    return out


def _pool(checks: Checks, name: str, spec: Any) -> Any:
    """A size, or a mapping ``{size, rate}`` (a rate as a number per second or ``"10/s"``)."""
    at = (_AT, "pools", name)
    if not isinstance(spec, dict):
        return checks.ruled(spec, f"pools.{name}", rules.pool_size(spec), *at)
    checks.unknown(spec, [f.name for f in POOL], f" in pool {name!r}", at)
    size = spec.get("size")
    size = checks.ruled(size, f"pools.{name}.size", rules.pool_size(size), *at, "size")
    rate = (
        _rate(checks, spec["rate"], f"pools.{name}.rate", *at, "rate") if "rate" in spec else None
    )
    if size is MISSING or rate is MISSING:
        return MISSING
    return size if rate is None else (size, rate)


def _rate(checks: Checks, value: Any, what: str, *key: str) -> Any:
    try:
        per_second = parse_rate(value, what)
    except ValueError:
        expected = "a rate like '10/s' or a number per second"
        return checks.bad(f"{what!r} must be {expected}, got {show(value)}", *key)
    return checks.ruled(per_second, what, rules.pool_rate(per_second), *key)


def _dask(checks: Checks, section: Any) -> Any:
    """``dask: {address: ...}``: the scheduler, as ``Settings.dask_address``."""
    if not checks.mapping(section, "dask", _AT, "dask"):
        return MISSING
    checks.unknown(section, [f.name for f in DASK], " in execution.dask", (_AT, "dask"))
    address = section.get("address")
    where = (_AT, "dask", "address") if "address" in section else (_AT, "dask")
    return checks.ruled(address, "dask.address", rules.dask_address(address), *where)


def _keep(checks: Checks, value: Any) -> Any:
    """``keep_outputs_on_cluster``: true or false."""
    name = "keep_outputs_on_cluster"
    ok = checks.expect(type(value) is bool, value, name, "true or false", _AT, name)
    return value if ok else MISSING


_READERS: dict[str, _Read] = {
    "mode": _choice(rules.mode, rules.MODES, "mode"),
    "max_concurrency": _max_concurrency,
    "timeout": _timeout,
    "on_failure": _choice(rules.on_failure, rules.ON_FAILURES, "on_failure"),
    "pools": _pools,
    "executor": _choice(rules.executor, rules.EXECUTORS, "executor"),
    "dask": _dask,
    "keep_outputs_on_cluster": _keep,
}
"""Each setting's reader, in the order the settings are checked (and reported)."""
