"""Which config file a run reads: the search upward from the current directory, and trust.

A config file can name the run store, so a file planted in a shared folder above a project
(``/tmp/pardag.toml`` for a user working in ``/tmp/project``) could redirect every run. The
search therefore:

- stops at the project root (the first folder holding ``.git``) or at the user's home,
  whichever comes first, after looking in it; from outside home it goes on to ``/``;
- reads only a file owned by the current user (or root) that nobody else may write: not a
  world-writable file, not a file in a world-writable folder without the sticky bit (where
  anyone may replace it), not a symlink owned by someone else;
- stops at a file it refuses (no file is read) and says why, so a refused file never lets
  one further up take its place unseen.

A file named with ``--config`` or ``PARDAG_CONFIG`` is the user's own choice and is read
without the ownership check, but like every config file it must be a regular file (no
device or FIFO: ``/dev/zero`` would never end) of at most ``MAX_CONFIG_BYTES``.
"""

from __future__ import annotations

import os
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pardag.errors import SettingsError
from pardag.regularfile import NotRegularFile, read_regular

__all__ = [
    "CONFIG_FILES",
    "MAX_CONFIG_BYTES",
    "ConfigFile",
    "Search",
    "find_config_file",
    "read_config_file",
    "search_config_file",
]

CONFIG_FILES = ("pardag.toml", "pyproject.toml", "config.toml")
"""Config file names, in the order they are tried in each directory."""
MAX_CONFIG_BYTES = 1024 * 1024
"""Largest config file read (1 MiB): settings are a few lines."""


@dataclass(frozen=True, slots=True)
class ConfigFile:
    """A config file that was found: its path, label and the settings table it holds."""

    path: Path
    label: str  # "pardag.toml", "pyproject.toml [tool.pardag]", "config.toml [execution]"
    table: tuple[str, ...]  # where the settings live in the file, () for the top level
    data: Mapping[str, Any]
    text: str


@dataclass(frozen=True, slots=True)
class Search:
    """What the search found: the file read (or None), the folders it looked in (nearest
    first) and the files it refused, each as a message naming the file, why and the fix."""

    found: ConfigFile | None
    searched: tuple[Path, ...]
    refused: tuple[str, ...] = ()


def find_config_file(cwd: Path, *, home: Path | None = None) -> ConfigFile | None:
    """The config file that applies in ``cwd`` (see ``search_config_file``), or None."""
    return search_config_file(cwd, home=home).found


def search_config_file(cwd: Path, *, home: Path | None = None) -> Search:
    """Look in ``cwd`` and its parents, up to the project root or ``home`` (default: the
    user's home), for the nearest config file this user can trust."""
    stop = _home(home)
    searched: list[Path] = []
    for directory in (cwd, *cwd.parents):
        searched.append(directory)
        for name in CONFIG_FILES:
            path = directory / name
            if not path.is_file():
                continue
            why = untrusted(path)
            if why is not None:
                message = (
                    f"{path}: ignored, {why}; no config file is used (remove the file, or name "
                    "a file you own with --config or PARDAG_CONFIG)"
                )
                return Search(None, tuple(searched), (message,))
            found = read_config_file(path, required=False)
            if found is not None:
                return Search(found, tuple(searched))
        if (directory / ".git").exists() or directory == stop:
            break
    return Search(None, tuple(searched))


def _home(home: Path | None) -> Path | None:
    if home is not None:
        return home.resolve()
    try:
        return Path.home().resolve()
    except (RuntimeError, KeyError, OSError):  # no HOME and no passwd entry
        return None


def untrusted(path: Path) -> str | None:
    """Why someone other than this user (or root) could have written ``path``; None if no
    one could. Owners are checked on the link and its target; writers on the file and its
    folder (a sticky world-writable folder, like ``/tmp``, lets only a file's owner replace
    it)."""
    me = os.geteuid() if hasattr(os, "geteuid") else None
    try:
        link, target, folder = os.lstat(path), os.stat(path), os.stat(path.parent)
    except OSError as exc:
        return f"cannot be checked ({exc.strerror})"
    if me is None:  # Windows: no owners to compare
        return None
    owners = [("the file", target)]
    if stat.S_ISLNK(link.st_mode):
        owners.insert(0, ("the symlink", link))
    for what, info in owners:
        if info.st_uid not in (me, 0):
            return f"{what} is owned by user id {info.st_uid}, not by you (user id {me}) or root"
    if target.st_mode & stat.S_IWOTH:
        return "anyone may write to it (it is world-writable)"
    if folder.st_mode & stat.S_IWOTH and not folder.st_mode & stat.S_ISVTX:
        return f"its folder {path.parent} lets anyone replace it (world-writable, no sticky bit)"
    return None


def read_config_file(path: Path, *, required: bool = True) -> ConfigFile | None:
    """Read ``path`` as a config file; None when it holds no pardag table and not ``required``.

    Raises ``SettingsError`` for a file that cannot be read, is not a regular file, is larger
    than ``MAX_CONFIG_BYTES`` or is not valid TOML.
    """
    if not required and not path.is_file():
        return None
    try:
        raw = read_regular(path, MAX_CONFIG_BYTES)
        if len(raw) > MAX_CONFIG_BYTES:
            raise SettingsError(
                [f"{path}: is larger than {MAX_CONFIG_BYTES // 1024} KiB; is it a config file?"]
            )
        text = raw.decode("utf-8")
        data = tomllib.loads(text)
    except NotRegularFile as exc:
        raise SettingsError([f"{path}: {exc.strerror}; name a config file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError([f"{path}: cannot read the config file: {exc}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError([f"{path}: malformed TOML: {exc}; fix the file"]) from None
    table: tuple[str, ...] = ()
    label = path.name
    if path.name == "pyproject.toml":
        table, label = ("tool", "pardag"), "pyproject.toml [tool.pardag]"
    elif path.name == "config.toml":
        table, label = ("execution",), "config.toml [execution]"
    section = _table(data, table)
    if section is None:
        if required:
            raise SettingsError([f"{path}: has no [{'.'.join(table)}] table of pardag settings"])
        return None
    return ConfigFile(path, label, table, section, text)


def _table(data: Mapping[str, Any], path: tuple[str, ...]) -> Mapping[str, Any] | None:
    for part in path:
        data = data.get(part)  # type: ignore[assignment]
        if not isinstance(data, Mapping):
            return None
    return data
