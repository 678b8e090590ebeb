"""The fixture the ``pardag`` command tests share."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A directory to run in; its ``.git`` keeps the config file search inside it."""
    (tmp_path / ".git").mkdir()
    return tmp_path
