"""What only the SQLite store does: its settings, a busy file, a damaged file, a hand-made one."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pardag.store import (
    SCHEMA_VERSION,
    CacheEntry,
    RunRecord,
    StepRecord,
    StoreError,
    open_store,
    schema,
)
from pardag.store.sqlite import SQLiteStore

HOLD_THE_LOCK = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
conn.execute("INSERT INTO cache (key, output_json, stored_at) VALUES ('held', '1', 0)")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("COMMIT")
"""


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "runs.db"


@pytest.fixture
def holder(db: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the store's write lock until a line arrives on its stdin."""
    open_store(db).close()
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD_THE_LOCK, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdout.readline() == "locked\n"
    try:
        yield process
    finally:
        process.communicate("release\n", timeout=30)


def test_the_store_is_set_up_for_durability(db: Path) -> None:
    with SQLiteStore(db) as store:
        assert store.pragmas() == {
            "journal_mode": "wal",
            "synchronous": 2,  # FULL
            "busy_timeout": 5000,
            "foreign_keys": 1,
        }


def test_a_write_waits_out_a_lock_held_past_the_busy_timeout(
    db: Path, holder: subprocess.Popen[str]
) -> None:
    store = SQLiteStore(db, busy_timeout=0.05)  # SQLite alone would give up after 50 ms
    outcome: list[object] = []
    writer = threading.Thread(
        target=lambda: outcome.append(store.put_cache(CacheEntry("mine", "2", 0.0)))
    )
    writer.start()
    time.sleep(0.5)  # let the writer run into the lock, many times its busy timeout
    assert writer.is_alive(), f"the write did not wait for the lock: {outcome}"
    assert holder.stdin is not None
    holder.stdin.write("release\n")
    holder.stdin.flush()
    writer.join(timeout=30)
    assert outcome == [None]
    assert store.get_cache("mine", 0.0) is not None
    assert store.get_cache("held", 0.0) is not None  # the other process's write landed too
    store.close()


def test_reads_go_on_while_another_process_writes(db: Path, holder: subprocess.Popen[str]) -> None:
    with SQLiteStore(db, busy_timeout=0.05, lock_timeout=0.2) as store:
        assert store.list_runs() == []  # WAL: readers never wait for the writer
        assert store.get_cache("held", 0.0) is None  # and see only what was committed


def test_a_lock_held_too_long_is_a_clear_error(db: Path, holder: subprocess.Popen[str]) -> None:
    with SQLiteStore(db, busy_timeout=0.05, lock_timeout=0.3) as store:
        with pytest.raises(StoreError) as caught:
            store.put_cache(CacheEntry("mine", "2", 0.0))
        message = str(caught.value)
        assert str(db) in message
        assert "stayed locked by another process for over 0.3s while storing a cached" in message
        assert "database is locked" not in message


def test_a_file_that_is_not_a_database_is_reported_and_kept(db: Path) -> None:
    db.write_text("name,amount\nana,12\n" * 200)
    before = db.read_bytes()
    with pytest.raises(StoreError) as caught:
        open_store(db)
    message = str(caught.value)
    assert message.startswith(f"{db} is not a pardag run store or is damaged: ")
    assert "move it away to start a new one" in message
    assert db.read_bytes() == before


def test_a_damaged_database_is_reported_with_its_path(db: Path) -> None:
    with open_store(db) as store:
        for n in range(60):
            store.create_run(RunRecord(f"run{n:03d}", "wf" * 200, "succeeded", float(n)))
    conn = sqlite3.connect(db)
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'runs'").fetchone()[0]
    conn.close()
    with db.open("r+b") as raw:  # scribble over the header of the runs table's b-tree page
        raw.seek(page_size * (root - 1))
        raw.write(b"\xa5" * 64)
    with pytest.raises(StoreError, match="is not a pardag run store or is damaged") as caught:
        open_store(db)
    assert str(db) in str(caught.value) and "\n" not in str(caught.value)


def test_a_database_made_by_hand_at_version_1_opens_and_turns_to_wal(db: Path) -> None:
    conn = sqlite3.connect(db, isolation_level=None)  # rollback journal, as sqlite3 defaults
    for statement in schema.MIGRATIONS[0].statements:
        conn.execute(statement)
    conn.execute(schema.CREATE_VERSION_TABLE)
    conn.execute("INSERT INTO pardag_schema VALUES (1, 0, 'pardag by hand')")
    conn.execute(
        "INSERT INTO runs VALUES ('hand01', 'wf', 'succeeded', 5, '', 'python', '', "
        "NULL, '{}', '{}', NULL, NULL, NULL, NULL)"
    )
    conn.close()
    with open_store(db) as store:
        assert store.get_run("hand01") == RunRecord("hand01", "wf", "succeeded", 5.0)
        assert isinstance(store, SQLiteStore) and store.pragmas()["journal_mode"] == "wal"
    versions = sqlite3.connect(db).execute("SELECT version FROM pardag_schema").fetchall()
    assert [v for (v,) in versions] == list(range(1, SCHEMA_VERSION + 1))


def test_any_other_database_is_left_alone(db: Path) -> None:
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE invoices (id INTEGER)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match=r"holds tables \(invoices\) but no pardag_schema"):
        open_store(db)
    tables = sqlite3.connect(db).execute("SELECT name FROM sqlite_master").fetchall()
    assert tables == [("invoices",)]


def test_text_with_nul_characters_round_trips(db: Path) -> None:
    with open_store(db) as store:
        store.create_run(RunRecord("nul", "wf", "failed", 1.0, error="bad\0byte"))
        store.write(steps=[StepRecord("nul", "a", 1, "failed", error="a\0b", traceback="\0")])
        found = store.get_run("nul")
        assert found is not None and found.error == "bad\0byte"
        assert [(s.error, s.traceback) for s in store.get_steps("nul")] == [("a\0b", "\0")]


def test_a_directory_is_not_a_store(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="is a directory; give a file path such as"):
        open_store(tmp_path)


def test_a_missing_file_is_not_created_when_asked_not_to(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "runs.db"
    with pytest.raises(StoreError, match=f"no pardag run store at {path} "):
        open_store(path, create=False)
    assert not path.parent.exists()


def test_a_store_is_created_with_its_directories(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "runs.db"
    with open_store(path) as store:
        assert store.url == str(path)
    assert path.is_file()
