"""Durations (``"200ms"``, ``"1.5s"``, ``"2m"``), rates (``"10/s"``) and sizes (``"10MiB"``) as
written in files."""

from __future__ import annotations

import math
import re

__all__ = ["format_size", "parse_duration", "parse_rate", "parse_size"]

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h)?\s*$")
_RATE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*/\s*(ms|s|m|h)\s*$")
_SIZE_UNITS = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([kmg]i?b|b)?\s*$", re.IGNORECASE)
_BINARY = (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024))


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


def parse_size(value: object, what: str = "size") -> int:
    """Bytes from a whole number (bytes) or a string like ``"512KiB"``, ``"10MiB"``, ``"1GB"``
    (``KiB``/``MiB``/``GiB`` count in 1024s, ``KB``/``MB``/``GB`` in 1000s; any case).

    Raises ValueError naming ``what`` and the accepted forms.
    """
    match = _SIZE.match(value) if isinstance(value, str) else None
    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    elif match is not None:
        size = int(float(match.group(1)) * _SIZE_UNITS[(match.group(2) or "b").lower()])
    else:
        raise ValueError(
            f"{what} {value!r} is not a size; write bytes or '512KiB', '10MiB', '1GiB'"
        )
    if size < 0:
        raise ValueError(f"{what} {value!r} must be a size of 0 bytes or more")
    return size


def format_size(size: int) -> str:
    """A size as messages name it: ``"10 MiB"`` when it is whole in a binary unit, else
    ``"1,500 bytes"``."""
    for unit, scale in _BINARY:
        if size and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size:,} bytes"
