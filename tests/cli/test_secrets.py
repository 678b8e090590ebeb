"""``pardag run`` with secrets (issue 13 §7): the errors a user meets, each naming the fix,
with no traceback; ``--secrets-file`` and ``PARDAG_SECRETS_FILE``. (Every sink is grepped
for planted secrets in tests/test_secrets.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pardag
from tests.cli.support import clean_env, write
from tests.cli.support import pardag as run_pardag

FLOW = """\
name: f
secrets: [API_TOKEN]
steps:
  a:
    kind: shell
    command: 'test "$API_TOKEN" = tok-abcd-1234 && echo {{ secrets.API_TOKEN }}'
"""


def env(**extra: str) -> dict[str, str]:
    """A clean environment running this pardag's sources (a worktree's too)."""
    return clean_env(PYTHONPATH=str(Path(pardag.__file__).resolve().parents[1]), **extra)


def secrets_file(directory: Path, mode: int) -> Path:
    path = write(directory, "secrets.env", "# the run's secrets\nAPI_TOKEN=tok-abcd-1234\n")
    path.chmod(mode)
    return path


def test_a_secret_with_no_value_is_an_error_naming_every_way_to_give_it(project: Path) -> None:
    write(project, "f.yaml", FLOW)
    done = run_pardag(project, "run", "f.yaml", env=env())
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("error: the secret 'API_TOKEN' has no value")
    for way in ("PARDAG_SECRET_API_TOKEN", "--secrets-file FILE", "PARDAG_SECRETS_FILE"):
        assert way in done.stderr
    assert "Traceback" not in done.stderr
    recorded = run_pardag(project, "runs", "--json", env=env())
    assert json.loads(recorded.stdout) == []  # refused before the run began


def test_a_secrets_file_others_may_read_is_refused_with_the_chmod(project: Path) -> None:
    write(project, "f.yaml", FLOW)
    secrets_file(project, 0o644)
    done = run_pardag(project, "run", "f.yaml", "--secrets-file", "secrets.env", env=env())
    assert done.returncode == 2
    assert "secrets.env may be read by other users (mode 0644)" in done.stderr
    assert "chmod 600 secrets.env" in done.stderr and "Traceback" not in done.stderr


def test_the_secret_comes_from_the_file_or_the_environment_and_shows_masked(
    project: Path,
) -> None:
    write(project, "f.yaml", FLOW)
    secrets_file(project, 0o600)
    by_flag = run_pardag(
        project, "run", "f.yaml", "--json", "--secrets-file", "secrets.env", env=env()
    )
    by_env = run_pardag(
        project, "run", "f.yaml", "--json", env=env(PARDAG_SECRETS_FILE="secrets.env")
    )
    by_var = run_pardag(
        project, "run", "f.yaml", "--json", env=env(PARDAG_SECRET_API_TOKEN="tok-abcd-1234")
    )
    for done in (by_flag, by_env, by_var):
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["outputs"]["a"]["stdout"] == "***\n"
        assert "tok-abcd" not in done.stdout + done.stderr
        assert "warning" not in done.stderr  # PARDAG_SECRET_* is not an unknown setting


def test_reading_an_undeclared_secret_is_a_validation_problem_at_its_line(project: Path) -> None:
    write(project, "f.yaml", FLOW.replace("{{ secrets.API_TOKEN }}", "{{ secrets.API_TOKN }}"))
    done = run_pardag(project, "validate", "f.yaml", env=env())
    assert done.returncode != 0
    assert "f.yaml:6: step 'a': command reads secrets.API_TOKN" in done.stderr
    assert "did you mean 'API_TOKEN'?" in done.stderr and "secrets: list" in done.stderr


def test_a_secrets_entry_that_is_no_name_is_a_problem_at_its_line(project: Path) -> None:
    write(project, "f.yaml", FLOW.replace("[API_TOKEN]", "[API_TOKEN, 'no good']"))
    done = run_pardag(project, "validate", "f.yaml", env=env())
    assert done.returncode != 0
    assert "f.yaml:2" in done.stderr and "'no good' is not a valid secret name" in done.stderr
