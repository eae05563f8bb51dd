"""SQLite StateStore: the embedded ledger, safe for several processes at once.

Documents are JSON values in one table ``docs(collection, key, value)``. Each transaction
starts with ``BEGIN IMMEDIATE``: it takes the database write lock up front, so concurrent
read-modify-write cycles are serialized instead of failing half-way with a lock upgrade
(the cause of phases stuck at 3/5, FAILURE-MODES 13). WAL mode lets readers run alongside
the writer; a busy timeout makes writers queue; :meth:`SQLiteStateStore.run_transaction`
retries what still reports ``database is locked``.

Like Firestore, reads must come before writes inside a transaction; the rule is enforced
here so code tested on SQLite behaves the same on Firestore. Values must be plain JSON: a
value JSON cannot hold is a BackendError at ``set`` time, inside the transaction, so
nothing is half-written (FAILURE-MODES 15).
"""
from __future__ import annotations

import json
import os
import random
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from framework.errors import BackendError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS docs (
    collection TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    PRIMARY KEY (collection, key)
) WITHOUT ROWID;
"""


def _dumps(value: Mapping[str, Any], where: str) -> str:
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise BackendError(
            f"state document {where} is not plain JSON: {exc}",
            hint="store str/int/float/bool/None/list/dict values only (timestamps as epoch seconds)",
        ) from exc


class StateStoreBusy(BackendError):
    """The database lock is held by another writer (retryable)."""


def is_busy(exc: BaseException) -> bool:
    """True for SQLite lock contention (worth retrying), False for real errors."""
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


class SQLiteTransaction:
    """One open ``BEGIN IMMEDIATE`` transaction; reads must precede writes."""

    def __init__(self, conn: sqlite3.Connection, path: str):
        self._conn = conn
        self._path = path
        self._wrote = False

    def _read(self, collection: str, key: str) -> dict[str, Any] | None:
        row = self._conn.execute("SELECT value FROM docs WHERE collection = ? AND key = ?", (collection, key)).fetchone()
        return json.loads(row[0]) if row else None

    def get(self, collection: str, key: str) -> dict[str, Any] | None:
        if self._wrote:
            raise BackendError(
                f"read of {collection}/{key} after a write in the same transaction ({self._path})",
                hint="do every read of a transaction before its first write (Firestore requires it)",
            )
        return self._read(collection, key)

    def set(self, collection: str, key: str, value: Mapping[str, Any]) -> None:
        text = _dumps(value, f"{collection}/{key}")
        self._wrote = True
        self._conn.execute(
            "INSERT INTO docs (collection, key, value) VALUES (?, ?, ?) "
            "ON CONFLICT (collection, key) DO UPDATE SET value = excluded.value",
            (collection, key, text),
        )

    def update(self, collection: str, key: str, fields: Mapping[str, Any]) -> None:
        current = self._read(collection, key)
        if current is None:
            raise BackendError(f"update of missing document {collection}/{key} ({self._path})", hint="use set() to create it")
        current.update(fields)
        self.set(collection, key, current)

    def delete(self, collection: str, key: str) -> None:
        self._wrote = True
        self._conn.execute("DELETE FROM docs WHERE collection = ? AND key = ?", (collection, key))


class SQLiteStateStore:
    """StateStore over one SQLite file (``":memory:"`` for a private in-process store).

    Connections are per thread and per process: a store object inherited through ``fork``
    opens its own connection in the child instead of sharing the parent's.
    """

    def __init__(self, path: str | Path, busy_timeout: float = 30.0):
        self.path = str(path)
        self.busy_timeout = busy_timeout
        self._local = threading.local()
        self._memory_conn: sqlite3.Connection | None = None
        self._memory_lock = threading.RLock()
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._conn()  # create the schema now: errors surface at construction

    # -- connections -----------------------------------------------------------------
    def _open(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            if self.path != ":memory:":
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
            conn.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise BackendError(f"cannot open the state store {self.path}: {exc}", hint="check the path is writable") from exc
        return conn

    def _conn(self) -> sqlite3.Connection:
        if self.path == ":memory:":
            if self._memory_conn is None:
                self._memory_conn = self._open()
            return self._memory_conn
        conn = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "pid", None) != os.getpid():
            conn = self._open()
            self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    # -- transactions ----------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[SQLiteTransaction]:
        """Commit on normal exit, roll back on any exception (which propagates).

        SQLite errors are translated here: lock contention -> :class:`StateStoreBusy`
        (retried by :meth:`run_transaction`), anything else -> BackendError naming the file."""
        with self._memory_lock if self.path == ":memory:" else _nullcontext():
            conn = self._conn()
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise self._translate(exc, "begin") from exc
            try:
                yield SQLiteTransaction(conn, self.path)
            except BaseException as exc:
                if conn.in_transaction:  # SQLite may have rolled back already (disk full, I/O error)
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise self._translate(exc, "write") from exc
                raise
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise self._translate(exc, "commit") from exc

    def _translate(self, exc: sqlite3.Error, step: str) -> BackendError:
        if is_busy(exc):
            return StateStoreBusy(f"state store {self.path} is locked by another process ({step}: {exc})",
                                  hint="run_transaction retries; if it persists, look for a stuck pipectl process")
        return BackendError(f"state store {self.path}: {step} failed: {exc}", hint="check the file is a pipectl ledger and is writable")

    def run_transaction(self, fn: Callable[[SQLiteTransaction], Any], max_attempts: int = 10) -> Any:
        """Run ``fn`` in a transaction; on lock contention retry with jittered backoff."""
        delay = 0.01
        for attempt in range(1, max_attempts + 1):
            try:
                with self.transaction() as txn:
                    return fn(txn)
            except StateStoreBusy as exc:
                if attempt == max_attempts:
                    raise BackendError(
                        f"state store transaction failed after {attempt} attempt(s) on {self.path}: {exc.message}",
                        hint="another process holds the database lock for too long; check for stuck pipectl processes",
                    ) from exc
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 1.0)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- plain reads -----------------------------------------------------------------
    def get(self, collection: str, key: str) -> dict[str, Any] | None:
        try:
            row = self._conn().execute("SELECT value FROM docs WHERE collection = ? AND key = ?", (collection, key)).fetchone()
        except sqlite3.Error as exc:
            raise self._translate(exc, f"read of {collection}/{key}") from exc
        return json.loads(row[0]) if row else None

    def query(self, collection: str, where: Mapping[str, Any] | None = None, limit: int | None = None) -> list[tuple[str, dict[str, Any]]]:
        """Documents whose top-level fields equal ``where`` (scalars compared in SQL)."""
        sql = "SELECT key, value FROM docs WHERE collection = ?"
        params: list[Any] = [collection]
        rest: dict[str, Any] = {}
        for field, value in (where or {}).items():
            if value is None:
                sql += " AND json_extract(value, ?) IS NULL"
                params.append(f'$."{field}"')
            elif isinstance(value, (str, int, float, bool)):
                sql += " AND json_type(value, ?) IS NOT NULL AND json_extract(value, ?) = ?"
                params += [f'$."{field}"', f'$."{field}"', int(value) if isinstance(value, bool) else value]
            else:
                rest[field] = value
        sql += " ORDER BY key"
        out = []
        try:
            rows = self._conn().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise self._translate(exc, f"query of {collection}") from exc
        for key, text in rows:
            doc = json.loads(text)
            if all(doc.get(f) == v for f, v in rest.items()):
                out.append((key, doc))
                if limit is not None and len(out) >= limit:
                    break
        return out

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
        if self._memory_conn is not None:
            self._memory_conn.close()
            self._memory_conn = None


@contextmanager
def _nullcontext() -> Iterator[None]:
    yield
