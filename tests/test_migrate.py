"""The migrator: each file once, in order, under an advisory lock; applied files are frozen."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from bus.migrate import MIGRATIONS, MigrationError, migrate


@pytest.fixture()
def fresh_db(postgres_server: str) -> Iterator[str]:
    name = f"switchyard_mig_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield postgres_server.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def applied(url: str) -> list[tuple[int, str]]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT version, name FROM schema_migrations ORDER BY version").fetchall()


def test_migrations_apply_once_and_in_order(fresh_db: str) -> None:
    names = [p.name for p in sorted(MIGRATIONS.glob("*.sql"))]
    assert migrate(fresh_db) == names
    assert migrate(fresh_db) == []
    assert [n for _, n in applied(fresh_db)] == names


def test_concurrent_migrations_wait_for_each_other(fresh_db: str) -> None:
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(migrate(fresh_db))
        except BaseException as err:  # noqa: BLE001 - collected for the assertion
            errors.append(err)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(len(r) for r in results) == [0, 0, 0, len(list(MIGRATIONS.glob("*.sql")))]


def test_a_changed_applied_file_is_refused(fresh_db: str, tmp_path: Path) -> None:
    (tmp_path / "0001_things.sql").write_text("CREATE TABLE things (id int);")
    migrate(fresh_db, tmp_path)
    (tmp_path / "0001_things.sql").write_text("CREATE TABLE things (id bigint);")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        migrate(fresh_db, tmp_path)


def test_a_failing_file_applies_nothing_of_itself(fresh_db: str, tmp_path: Path) -> None:
    (tmp_path / "0001_ok.sql").write_text("CREATE TABLE ok_table (id int);")
    (tmp_path / "0002_broken.sql").write_text("CREATE TABLE half (id int); SELECT no_such_function();")
    with pytest.raises(psycopg.errors.UndefinedFunction):
        migrate(fresh_db, tmp_path)
    assert [n for _, n in applied(fresh_db)] == ["0001_ok.sql"]
    with psycopg.connect(fresh_db) as conn:
        assert conn.execute("SELECT to_regclass('half')").fetchone() == (None,)


def test_badly_named_files_are_refused(fresh_db: str, tmp_path: Path) -> None:
    (tmp_path / "add_things.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=r"NNNN_lower_case\.sql"):
        migrate(fresh_db, tmp_path)
