"""open_store: which store a URL, a path, PARDAG_STORE or nothing at all names."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from pardag.store import RunRecord, Store, StoreError, mask_url, open_store
from pardag.store.sqlite import SQLiteStore


@pytest.fixture(autouse=True)
def no_store_in_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PARDAG_STORE", raising=False)
    monkeypatch.chdir(tmp_path)


def sqlite_file(store: Store) -> Path:
    assert isinstance(store, SQLiteStore)
    store.close()
    return store.path


def test_nothing_given_means_pardag_runs_db_here(tmp_path: Path) -> None:
    assert sqlite_file(open_store()) == tmp_path / ".pardag" / "runs.db"
    assert (tmp_path / ".pardag" / ".gitignore").read_text().splitlines()[-1] == "*"
    assert (tmp_path / ".pardag" / "runs.db").is_file()


def test_nothing_given_and_create_false_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"no pardag run store at .*\.pardag/runs\.db"):
        open_store(create=False)
    assert not (tmp_path / ".pardag").exists()


def test_pardag_store_names_the_store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PARDAG_STORE", "elsewhere/history.db")
    assert sqlite_file(open_store()) == tmp_path / "elsewhere" / "history.db"
    assert not (tmp_path / ".pardag").exists()
    monkeypatch.setenv("PARDAG_STORE", "")  # empty: as if unset
    assert sqlite_file(open_store()) == tmp_path / ".pardag" / "runs.db"


def test_an_explicit_url_wins_over_pardag_store(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PARDAG_STORE", "from-env.db")
    assert sqlite_file(open_store("given.db")) == tmp_path / "given.db"
    assert not (tmp_path / "from-env.db").exists()


@pytest.mark.parametrize(
    ("url", "relative"),
    [
        ("runs.db", "runs.db"),
        ("./sub/runs.db", "sub/runs.db"),
        ("sqlite:rel/runs.db", "rel/runs.db"),
        ("SQLite:rel/runs.db", "rel/runs.db"),
        ("./odd:name.db", "odd:name.db"),
    ],
)
def test_relative_paths_and_urls(url: str, relative: str, tmp_path: Path) -> None:
    assert sqlite_file(open_store(url)) == tmp_path / relative


def test_absolute_sqlite_urls_and_path_objects(tmp_path: Path) -> None:
    target = tmp_path / "abs" / "runs.db"
    assert sqlite_file(open_store(f"sqlite://{target}")) == target
    assert sqlite_file(open_store(f"sqlite://localhost{target}")) == target
    assert sqlite_file(open_store(target)) == target
    assert sqlite_file(open_store(str(target))) == target


def test_the_same_file_through_any_spelling_is_one_store(tmp_path: Path) -> None:
    with open_store("sqlite:one.db") as first:
        first.create_run(RunRecord("shared", "wf", "running", 1.0))
    with open_store(f"sqlite://{tmp_path / 'one.db'}") as second:
        assert second.get_run("shared") is not None
        again = open_store(second.url)  # url is how to reach it again
        assert again.get_run("shared") is not None
        again.close()


def test_a_path_with_a_tilde_is_under_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert sqlite_file(open_store("~/runs.db")) == tmp_path / "home" / "runs.db"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://ana:s3cret@db/runs", "'mysql://ana:***@db/runs' is not supported; use a file"),
        ("http://example.com/runs", "'http://example.com/runs' is not supported"),
        ("odd:name.db", "'odd:name.db' is not supported"),
        ("sqlite://server/runs.db", "names a host (server); SQLite stores are local files"),
        ("sqlite:", "names no file"),
        ("sqlite:///", "names no file"),
        ("sqlite::memory:", "an in-memory store would forget every run"),
    ],
)
def test_urls_it_cannot_use_say_what_to_write(url: str, message: str) -> None:
    with pytest.raises(StoreError) as caught:
        open_store(url)
    assert message in str(caught.value)
    assert "s3cret" not in str(caught.value)


def test_an_unsupported_url_lists_the_accepted_forms() -> None:
    with pytest.raises(StoreError) as caught:
        open_store("redis://localhost")
    for form in ("a file path", "sqlite:///", "sqlite:relative", "postgresql://"):
        assert form in str(caught.value)


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "PostgreSQL"])
def test_postgresql_urls_open_postgresql(scheme: str, postgres_url: str) -> None:
    url = scheme + postgres_url[len("postgresql") :]
    with open_store(url) as store:
        assert type(store).__name__ == "PostgresStore"
        store.create_run(RunRecord("pg-run", "wf", "running", 1.0))
        assert store.get_run("pg-run") is not None


def test_a_sqlite_store_never_becomes_a_postgresql_one(tmp_path: Path) -> None:
    with open_store("postgresql.db") as store:  # a file name that starts like a scheme
        assert isinstance(store, SQLiteStore)
    assert sqlite3.connect(tmp_path / "postgresql.db").execute("SELECT 1").fetchall() == [(1,)]


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://ana:s3cret@db:5432/runs", "postgresql://ana:***@db:5432/runs"),
        ("postgresql://ana:p%40ss%3Aw@db/runs", "postgresql://ana:***@db/runs"),
        ("postgresql://ana@db/runs", "postgresql://ana@db/runs"),
        ("postgresql://db/runs?password=s3cret&x=1", "postgresql://db/runs?password=***&x=1"),
        (
            "postgresql://db/runs?sslmode=require&PASSWORD=s3",
            "postgresql://db/runs?sslmode=require&PASSWORD=***",
        ),
        ("postgresql:///runs", "postgresql:///runs"),
        ("postgresql://ana:s3cret@[::1/runs", "postgresql://ana:***@[::1/runs"),
    ],
)
def test_mask_url_hides_every_password(url: str, masked: str) -> None:
    assert mask_url(url) == masked


WITHOUT_PSYCOPG = """
import sys
sys.modules["psycopg"] = None  # as on a machine where pardag was installed without the extra
from pardag.store import StoreError, open_store
try:
    open_store("postgresql://ana:s3cret@db.example:5432/runs")
except StoreError as exc:
    print(exc)
"""


def test_postgresql_without_the_driver_names_the_extra_to_install(tmp_path: Path) -> None:
    """psycopg is the ``postgres`` extra: SQLite users never install it, and a PostgreSQL URL
    without it says how to get it (and still hides the password)."""
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_PSYCOPG], capture_output=True, text=True, check=True
    )
    message = done.stdout
    assert "pip install 'pardag[postgres]'" in message
    assert "postgresql://ana:***@db.example:5432/runs" in message
    assert "s3cret" not in message


def test_the_cli_says_the_same_without_a_traceback(tmp_path: Path) -> None:
    script = (
        "import sys; sys.modules['psycopg'] = None\nfrom pardag.cli import main\nsys.exit(main())"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, "runs", "--store", "postgresql://db.example/runs"],
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0
    assert "pardag[postgres]" in done.stderr
    assert "Traceback" not in done.stderr


def test_sqlite_runs_never_import_the_postgresql_driver(tmp_path: Path) -> None:
    script = (
        "import sys, pardag\n"
        "wf = pardag.Workflow('w')\n"
        "wf.add('a', lambda: 1)\n"
        "assert wf.run(store='runs.db').ok\n"
        "print('psycopg' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert done.stdout.strip() == "False"


def test_a_new_store_and_its_folder_are_private_to_their_owner(tmp_path: Path) -> None:
    """Runs hold params, outputs and logs: the file (and SQLite's -wal beside it) is 0600,
    a ``.pardag`` folder pardag makes 0700, whichever spelling names the store."""
    urls = (None, "elsewhere/.pardag/runs.db", f"sqlite:///{tmp_path}/other/.pardag/runs.db")
    for n, url in enumerate(urls):
        store = open_store(url)
        store.create_run(RunRecord(f"{n:032x}", "wf", "running", 1.0))  # the WAL is written
        path = sqlite_file(store)
        assert path.stat().st_mode & 0o777 == 0o600, url
        for extra in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            if extra.exists():
                assert extra.stat().st_mode & 0o777 == 0o600, extra
        assert path.parent.stat().st_mode & 0o777 == 0o700, url
        assert (path.parent / ".gitignore").read_text().splitlines()[-1] == "*", url


def test_pardag_run_makes_the_gitignore_the_docs_promise(tmp_path: Path) -> None:
    (tmp_path / "flow.yaml").write_text("name: f\nsteps:\n  a: {kind: shell, command: 'true'}\n")
    done = subprocess.run(
        [sys.executable, "-m", "pardag", "run", "flow.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / ".pardag" / ".gitignore").is_file()
    assert (tmp_path / ".pardag" / "runs.db").stat().st_mode & 0o777 == 0o600
