"""Retries after a failed attempt: the policy's numbers and the one reading of a retry mapping.

Kept apart from ``pardag.model`` so that the model stays one concept (steps, settings, the
graph); the model and the file formats both read retries through ``retry_policy`` here.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pardag.errors import ArgumentError
from pardag.units import parse_duration

__all__ = ["RETRY_KEYS", "RetryPolicy", "as_retry_policy", "retry_policy"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retries after a failed attempt: ``retries`` more attempts, exponential backoff.

    The n-th retry waits ``min(max_delay, delay * factor**(n-1))``, spread by +/- ``jitter``
    (a fraction) so that many steps failing together do not retry in lockstep. Only errors that
    are instances of ``retry_on`` are retried.
    """

    retries: int = 0
    delay: float = 1.0
    factor: float = 2.0
    max_delay: float = 60.0
    jitter: float = 0.1
    retry_on: tuple[type[BaseException], ...] = (Exception,)

    def backoff(self, retry_number: int, rand: float) -> float:
        """Seconds to wait before retry ``retry_number`` (1-based); ``rand`` is in [0, 1)."""
        base = min(self.max_delay, self.delay * self.factor ** (retry_number - 1))
        return max(0.0, base * (1.0 + self.jitter * (2.0 * rand - 1.0)))

    def problems(self) -> list[str]:
        """What is wrong with these numbers, as messages."""
        out = []
        if self.retries < 0:
            out.append(f"retry.retries must be >= 0, got {self.retries}")
        if self.delay < 0 or self.max_delay < 0:
            out.append("retry.delay and retry.max_delay must be >= 0 seconds")
        if self.factor < 1:
            out.append(f"retry.factor must be >= 1, got {self.factor}")
        if not 0 <= self.jitter <= 1:
            out.append(f"retry.jitter must be between 0 and 1, got {self.jitter}")
        return out


def as_retry_policy(
    retry: RetryPolicy | int | Mapping[str, Any] | None, sid: str
) -> RetryPolicy | None:
    """``retry=`` as given to ``wf.add`` (a number, a mapping, a policy) as a policy."""
    if retry is None or isinstance(retry, RetryPolicy):
        return retry
    if isinstance(retry, Mapping):
        policy, problems = retry_policy(retry)
        if policy is None:
            raise ArgumentError(f"step {sid!r}: " + "; ".join(m for _, m in problems))
        return policy
    if isinstance(retry, bool) or not isinstance(retry, int):
        raise ArgumentError(
            f"retry={retry!r} is not valid; give a number of retries, a mapping "
            "{'retries': 2, 'delay': 0.5, ...} or a pardag.RetryPolicy"
        )
    return RetryPolicy(retries=retry)


RETRY_KEYS = ("retries", "delay", "factor", "max_delay", "jitter")
"""The keys of a retry mapping (``retry: {retries: 2, delay: 1s}``), RetryPolicy's numbers."""


def retry_policy(spec: Mapping[str, Any]) -> tuple[RetryPolicy | None, list[tuple[str, str]]]:
    """The ``RetryPolicy`` a mapping describes, or None and its problems as (key, message).

    The one reading of a retry mapping, for the Python API (``retry={"retries": 2}``) and
    the workflow files (which place each message at its key's line): durations may be
    written ``"500ms"``; the numbers' ranges are checked later, by ``RetryPolicy.problems``.
    """
    problems: list[tuple[str, str]] = []
    values: dict[str, Any] = {}
    for key, value in spec.items():
        if key not in RETRY_KEYS:
            close = difflib.get_close_matches(str(key), RETRY_KEYS, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}?" if close else "use one of " + ", ".join(RETRY_KEYS)
            problems.append((key, f"unknown field {key!r} in retry; {hint}"))
            continue
        got, expected = _retry_value(key, value)
        if expected:
            problems.append((key, f"'retry.{key}' must be {expected}, got {_show(value)}"))
        values[key] = got
    return (None, problems) if problems else (RetryPolicy(**values), [])


def _retry_value(key: str, value: Any) -> tuple[Any, str]:
    """The value of retry key ``key``, and what was expected instead ('' when it is good)."""
    if key == "retries":
        ok = type(value) is int and value >= 0
        return value, "" if ok else "an integer >= 0"
    if key in ("delay", "max_delay"):
        try:
            return parse_duration(value, f"retry.{key}"), ""
        except ValueError:
            return value, "a duration like '30s' or a number of seconds >= 0"
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return (float(value), "") if ok else (value, "a number")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
