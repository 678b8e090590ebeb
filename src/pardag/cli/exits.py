"""What ``pardag`` exits with, and the one rule from a run's status to that code.

``run``, ``resume``, ``approve`` and ``reject`` exit with the code of the run they finished,
``watch`` with that of the run it watched: all go through ``exit_code``, so that a script reads
the same number whichever command it called.
"""

from __future__ import annotations

from enum import IntEnum

from pardag.states import RunStatus

__all__ = ["ExitCode", "exit_code", "worst"]


class ExitCode(IntEnum):
    """What ``pardag`` exits with."""

    SUCCEEDED = 0
    FAILED = 1  # the run failed or timed out, or pardag itself failed
    INVALID = 2  # invalid workflow file, setting or usage
    PAUSED = 3  # the run waits for an approval
    INTERRUPTED = 130  # Ctrl-C, or a run cancelled (pardag cancel)


_OF_STATUS: dict[str, ExitCode] = {
    RunStatus.SUCCEEDED: ExitCode.SUCCEEDED,
    RunStatus.FAILED: ExitCode.FAILED,
    RunStatus.TIMED_OUT: ExitCode.FAILED,
    RunStatus.CANCELLED: ExitCode.INTERRUPTED,  # by Ctrl-C, or by pardag cancel (SIGTERM)
    RunStatus.PAUSED: ExitCode.PAUSED,
}


def exit_code(status: str) -> ExitCode:
    """The code for a run in ``status``: a ``RunStatus``, or the plain string the run store
    records (equal to it). Any other status (``running``) counts as a failure."""
    return _OF_STATUS.get(status, ExitCode.FAILED)


def worst(codes: list[int]) -> int:
    """One exit code for several runs (``resume --due``): an interruption before a failure
    before a pause before success."""
    for code in (ExitCode.INTERRUPTED, ExitCode.FAILED, ExitCode.PAUSED):
        if code in codes:
            return code
    return max(codes, default=ExitCode.SUCCEEDED)
