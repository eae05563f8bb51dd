"""What DuckDB actually received: a connection wrapper that keeps every statement.

Tests of the run path assert on the statements the engine executed (no detection query for a
processor that takes upstream change-sets, one mapping query per processor), not on a mock of
the code under test. One wrapper serves a warehouse subclass (:class:`RecordingConnection`) and
a running session or worker whose warehouse was opened elsewhere (:func:`record_statements`).
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator


class RecordingConnection:
    """A DuckDB connection that appends every executed statement's SQL to ``log``."""

    def __init__(self, con: Any, log: list[str]) -> None:
        self._con, self._log = con, log

    def execute(self, sql: str, params: Any = None) -> Any:
        self._log.append(sql)
        return self._con.execute(sql, params) if params else self._con.execute(sql)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)


@contextlib.contextmanager
def record_statements(monkeypatch: Any, *held: Any) -> Iterator[list[str]]:
    """Record what every DuckDB warehouse opened inside the block executes, and what the
    already-open warehouses in ``held`` execute (a worker keeps its connection); both are
    restored when the block ends, so later checks (``verify``) are not recorded."""
    from framework.backends.duckdb import DuckDBWarehouse

    sent: list[str] = []
    real_open = DuckDBWarehouse._open
    monkeypatch.setattr(DuckDBWarehouse, "_open", lambda self: RecordingConnection(real_open(self), sent))
    kept = [(wh, wh._con) for wh in held if wh._con is not None]
    for wh, con in kept:
        wh._con = RecordingConnection(con, sent)
    try:
        yield sent
    finally:
        monkeypatch.setattr(DuckDBWarehouse, "_open", real_open)
        for wh, con in kept:
            wh._con = con


def detections(statements: list[str]) -> list[str]:
    """The processors a change-detection query was sent for (the template's first line names it)."""
    return [s.split("for processor ", 1)[1].split()[0] for s in statements if "-- change detection" in s]
