"""What the commands read: a workflow file with its settings, or the run store."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pardag
from pardag.cli.console import warn
from pardag.config import ResolvedSettings, SettingsError, resolve
from pardag.model import Workflow
from pardag.store import open_store
from pardag.store.base import Store

__all__ = ["open_recorded_store", "prepare"]


def prepare(
    file: Path,
    config: Path | None,
    flags: Mapping[str, object] | None = None,
    *,
    validate: bool = True,
) -> tuple[Workflow, ResolvedSettings]:
    """Load ``file``, resolve its settings and (unless told not to) validate it with them."""
    try:
        below = resolve(None, flags=flags, config=config)  # pools the file may use
        wf = pardag.load(file, defaults={"pools": below.settings().pools})
        settings = resolve(wf, flags=flags, config=config)
    except SettingsError as exc:
        for warning in exc.warnings:
            warn(warning)
        raise
    for warning in settings.warnings:
        warn(warning)
    wf.settings = settings.settings()  # pools from a config file count when validating
    if validate:
        wf.validate()
    return wf, settings


def open_recorded_store(store: str | None, config: Path | None) -> Store:
    """The store named by --store, else PARDAG_STORE or the config file, else the default;
    it must exist already (the run-store commands read what ``pardag run`` recorded)."""
    settings = resolve(None, flags={"store": store}, config=config)
    return open_store(settings.store, create=False)
