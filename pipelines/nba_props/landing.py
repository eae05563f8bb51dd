"""Write and edit the scraper landing tables (``nba_landing.*``) of the NBA props example.

The sample generator and the edit helpers need the same three operations on two kinds of
target: a DuckDB connection (columnar inserts through ``UNNEST`` of Python lists, which loads a
160-day season in seconds) or any :class:`framework.backends.protocols.Warehouse`
(generic path: ``create_table`` + ``insert_rows``; values always travel as query parameters).
Table layouts come from the ``sources`` of ``processors.yaml``, so the manifest stays the one
place a landing column is declared.
"""
from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from framework.manifest.model import Project, Table

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LANDING_DATASET = "nba_landing"


def load_sources(project: Project | None = None) -> dict[str, Table]:
    """Landing tables by bare table name (``nbac_gamebook`` -> Table), from the manifest."""
    if project is None:
        from framework.project import load

        project = load(PROJECT_ROOT)
    return {s.table.name: s.table for s in project.sources.values() if s.table.dataset == LANDING_DATASET}


def duckdb_connection(target: Any) -> Any | None:
    """``target`` if it is a raw DuckDB connection; None for a Warehouse (protocol path)."""
    if hasattr(target, "insert_rows") and hasattr(target, "dialect"):
        return None
    try:
        import duckdb
    except ImportError:  # pragma: no cover - duckdb is a core dependency
        return None
    return target if isinstance(target, duckdb.DuckDBPyConnection) else None


def _dialect(target: Any) -> str:
    return "duckdb" if duckdb_connection(target) is not None else getattr(target, "dialect", "duckdb")


def placeholder(target: Any, name: str) -> str:
    """How a named parameter is spelled for ``target`` (``$name`` DuckDB, ``@name`` BigQuery)."""
    from framework.sql.dialects import get_dialect

    return get_dialect(_dialect(target)).param(name)


def ensure_tables(target: Any, tables: Iterable[Table]) -> None:
    """Create the landing dataset and tables if they do not exist yet."""
    from framework.sql.dialects import get_dialect

    con = duckdb_connection(target)
    tables = list(tables)
    if con is None:
        target.create_dataset(LANDING_DATASET)
        for table in tables:
            if target.table_schema(table.fqn) is None:
                target.create_table(table)
        return
    d = get_dialect("duckdb")
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {LANDING_DATASET}")
    for table in tables:
        cols = ", ".join(f"{d.ident(c.name)} {d.column_type(c.type, c.mode)}" for c in table.columns)
        con.execute(f"CREATE TABLE IF NOT EXISTS {table.fqn} ({cols})")


def run(target: Any, sql: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Run one statement with named parameters (written ``$name`` in ``sql``) on either target."""
    con = duckdb_connection(target)
    if con is not None:
        cur = con.execute(sql, dict(params))
        if cur.description is None:
            return []
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]
    from framework.backends.protocols import QueryParam

    text = sql
    if _dialect(target) == "bigquery":
        for name in sorted(params, key=len, reverse=True):
            text = text.replace(f"${name}", f"@{name}")
    qp = [QueryParam(name, value, _param_type(value)) for name, value in params.items()]
    return target.query(text, qp)


def _param_type(value: Any) -> str:
    from datetime import datetime

    if isinstance(value, bool):
        return "BOOL"
    if isinstance(value, int):
        return "INT64"
    if isinstance(value, float):
        return "FLOAT64"
    if isinstance(value, datetime):
        return "TIMESTAMP"
    if isinstance(value, date):
        return "DATE"
    return "STRING"


def replace_dates(target: Any, table: Table, rows: Sequence[Mapping[str, Any]], first: date, last: date) -> int:
    """Delete ``table``'s rows for ``first..last`` then insert ``rows``: regenerating is idempotent."""
    run(target, f"DELETE FROM {table.fqn} WHERE game_date BETWEEN $first AND $last", {"first": first, "last": last})
    return insert(target, table, rows)


def insert(target: Any, table: Table, rows: Sequence[Mapping[str, Any]]) -> int:
    """Insert dict rows (missing keys become NULL); columnar UNNEST insert on DuckDB."""
    if not rows:
        return 0
    con = duckdb_connection(target)
    if con is None:
        return target.insert_rows(table.fqn, [{c.name: r.get(c.name) for c in table.columns} for r in rows])
    from framework.sql.dialects import get_dialect

    d = get_dialect("duckdb")
    names = [c.name for c in table.columns]
    unknown = set().union(*(r.keys() for r in rows[:50])) - set(names)
    if unknown:
        raise ValueError(f"{table.fqn} has no column(s) {sorted(unknown)}; declare them in processors.yaml sources")
    columns = [[r.get(n) for r in rows] for n in names]
    selects = ", ".join(f"UNNEST(${i + 1}::{d.column_type(c.type)}[])" for i, c in enumerate(table.columns))
    col_list = ", ".join(d.ident(n) for n in names)
    con.execute(f"INSERT INTO {table.fqn} ({col_list}) SELECT {selects}", columns)
    return len(rows)
