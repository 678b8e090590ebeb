"""Durations (``"200ms"``, ``"1.5s"``, ``"2m"``) and rates (``"10/s"``) as written in files."""

from __future__ import annotations

import math
import re

__all__ = ["parse_duration", "parse_rate"]

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h)?\s*$")
_RATE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*/\s*(ms|s|m|h)\s*$")


def parse_duration(value: object, what: str = "duration") -> float:
    """Seconds from a number (seconds) or a string like ``"200ms"``, ``"5s"``, ``"2m"``, ``"1h"``.

    Raises ValueError naming ``what`` and the accepted forms.
    """
    if isinstance(value, bool):
        raise ValueError(
            f"{what} {value!r} is not a duration; write seconds or '200ms', '5s', '2m'"
        )
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(value) if isinstance(value, str) else None
        if match is None:
            raise ValueError(
                f"{what} {value!r} is not a duration; write seconds or '200ms', '5s', '2m', '1h'"
            )
        seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{what} {value!r} must be a finite number of seconds >= 0")
    return seconds


def parse_rate(value: object, what: str = "rate") -> float:
    """Events per second from a number or a string like ``"10/s"``, ``"100/m"``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        rate = float(value)
    else:
        match = _RATE.match(value) if isinstance(value, str) else None
        if match is None:
            raise ValueError(f"{what} {value!r} is not a rate; write a number per second or '10/s'")
        rate = float(match.group(1)) / _UNITS[match.group(2)]
    if not math.isfinite(rate) or rate <= 0:
        raise ValueError(f"{what} {value!r} must be a positive rate")
    return rate
