"""A tiny, self-contained runner for the example pipelines' SQL transforms on DuckDB.

Why not the framework's runner: these tests check the *transforms* (that they render with the
four globals of the transform contract, run on DuckDB and are entity-local), independently of
the runtime, so a runtime bug cannot hide a transform bug or the other way round. The jinja
environment implements exactly the contract: ``ref``, ``source``, ``partition`` (``$<column>``),
``entity_filter`` and ``dialect``, with StrictUndefined.
"""
from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, Sequence

import jinja2

from framework.graph.graph import PipelineGraph
from framework.manifest.model import Processor, Project, Table

DUCK_TYPES = {"STRING": "VARCHAR", "INT64": "BIGINT", "FLOAT64": "DOUBLE", "NUMERIC": "DECIMAL(38, 9)", "BOOL": "BOOLEAN",
              "DATE": "DATE", "TIMESTAMP": "TIMESTAMP", "DATETIME": "TIMESTAMP", "JSON": "JSON", "BYTES": "BLOB"}
VOLATILE = ("processed_at",)


def render(project: Project, proc: Processor, entity_ids: Sequence[str] | None = None, dialect: str = "duckdb") -> str:
    """Render ``proc``'s SQL transform as the transform contract says."""
    assert proc.transform.sql, f"{proc.name} has no SQL transform"
    sigil = "@" if dialect == "bigquery" else "$"
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)

    def ref(name: str) -> str:
        up = project.resolve_processor(name)
        assert up is not None and up.output is not None, f"{proc.name}: ref('{name}') is not a processor with a table"
        assert any(i.name == up.name for i in proc.inputs), f"{proc.name}: ref('{name}') is not a declared input"
        return up.output.fqn

    def source(name: str) -> str:
        assert any(i.kind == "source" and i.name == name for i in proc.inputs), f"{proc.name}: source('{name}') is not a declared input"
        return project.sources[name].table.fqn

    def entity_filter(column: str) -> str:
        return "TRUE" if entity_ids is None else f"{column} IN (SELECT UNNEST({sigil}entity_ids))"

    text = (project.root / proc.transform.sql).read_text(encoding="utf-8")
    return env.from_string(text).render(ref=ref, source=source, entity_filter=entity_filter, dialect=dialect,
                                        partition=f"{sigil}{project.partition_column}")


def create_tables(con: Any, project: Project) -> None:
    """Create every processor output table (disabled ones too: their inputs may be declared)."""
    for proc in project.processors.values():
        if proc.output is not None:
            _create(con, proc.output)


def _create(con: Any, table: Table) -> None:
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {table.dataset}")
    cols = ", ".join(f'"{c.name}" {DUCK_TYPES[c.type]}' for c in table.columns)
    con.execute(f"CREATE TABLE IF NOT EXISTS {table.fqn} ({cols})")


def select(con: Any, project: Project, proc: Processor, day: date, entity_ids: Sequence[str] | None = None) -> list[dict]:
    """Run the transform's SELECT and return its rows (checked against the declared columns)."""
    sql = render(project, proc, entity_ids)
    params: dict[str, Any] = {project.partition_column: day}
    if entity_ids is not None:
        params["entity_ids"] = list(entity_ids)
    cur = con.execute(sql, params)
    names = [d[0] for d in cur.description]
    assert names == list(proc.output.column_names), f"{proc.name}: SELECT returns {names}, declared {list(proc.output.column_names)}"
    floats = {c.name for c in proc.output.columns if c.type == "FLOAT64"}
    # DuckDB types 0.44 * n as DECIMAL; the table column is DOUBLE, as the runner's INSERT makes it
    return [{n: (float(v) if n in floats and isinstance(v, Decimal) else v) for n, v in zip(names, row)} for row in cur.fetchall()]


def run_processor(con: Any, project: Project, proc: Processor, day: date) -> int:
    """Full batch of ``proc`` for ``day``: delete the partition's rows, insert the SELECT's."""
    rows = select(con, project, proc, day)
    table = proc.output
    con.execute(f"DELETE FROM {table.fqn} WHERE {project.partition_column} = $d", {"d": day})
    if rows:
        names = list(table.column_names)
        unnest = ", ".join(f"UNNEST(${i + 1}::{DUCK_TYPES[c.type]}[])" for i, c in enumerate(table.columns))
        con.execute(f"INSERT INTO {table.fqn} SELECT {unnest}", [[r[n] for r in rows] for n in names])
    return len(rows)


def sql_processors(project: Project) -> list[Processor]:
    """Enabled processors with a SQL transform, inputs first."""
    order = PipelineGraph(project).topological_order()
    return [project.processors[n] for n in order if project.processors[n].enabled and project.processors[n].transform.sql]


def run_day(con: Any, project: Project, day: date) -> dict[str, int]:
    return {p.name: run_processor(con, project, p, day) for p in sql_processors(project)}


def rows_of(con: Any, project: Project, proc: Processor, day: date, where: str = "TRUE", params: dict | None = None) -> list[dict]:
    cols = [c for c in proc.output.column_names if c not in VOLATILE]
    sql = f"SELECT {', '.join(cols)} FROM {proc.output.fqn} WHERE {project.partition_column} = $d AND {where} ORDER BY ALL"
    cur = con.execute(sql, {"d": day, **(params or {})})
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def strip(rows: list[dict]) -> list[tuple]:
    """Rows without volatile columns, as sorted tuples (for exact comparisons)."""
    return sorted((tuple((k, v) for k, v in r.items() if k not in VOLATILE) for r in rows), key=repr)


def repo_root() -> Path:
    return Path(__file__).resolve().parents[3]


def uncompared_reads(project: Project) -> list[str]:
    """Columns a transform reads from an upstream processor that the upstream's change detection
    (or the input's ``compare``) ignores: a change there would never reach the reader, and an
    incremental run would silently differ from a full recompute.

    Found with sqlglot on the BigQuery rendering: every column qualified by the alias of a
    ``ref()`` table, in the SELECT where that table is read. ``SELECT alias.*`` counts as
    reading every column.
    """
    import sqlglot
    from sqlglot import exp

    problems = []
    for proc in sql_processors(project):
        tables = {project.processors[i.name].output.fqn: i for i in proc.inputs if i.kind == "processor"}
        tree = sqlglot.parse_one(render(project, proc, dialect="bigquery"), read="bigquery")
        for table in tree.find_all(exp.Table):
            inp = tables.get(f"{table.db}.{table.name}")
            if inp is None:
                continue
            up = project.processors[inp.name]
            alias = table.alias_or_name
            cols = [c for c in table.parent_select.find_all(exp.Column) if c.table == alias]
            used = set(up.output.column_names) if any(isinstance(c.this, exp.Star) for c in cols) else {c.name for c in cols}
            compared = set(inp.compare or up.change_detection.columns or up.output.column_names)
            free = {project.partition_column, project.entity_key(up), *VOLATILE}
            for col in sorted(used - compared - free):
                problems.append(f"{proc.name} reads {inp.name}.{col}, which its change detection ignores")
    return problems
