"""Quality gates count rows: a processor's output rows for one partition.

Why in the orchestrator: the orchestrator checks a transition's quality gates before it
publishes the trigger (in ``pipectl sweep``, in the Cloud Function and in the driver), and it
may not import the runtime; the runner counts a critical input's rows the same way
(used by :mod:`framework.run.decisions`). Values are query parameters.
"""
from __future__ import annotations

from typing import Any

from framework.errors import PipectlError
from framework.manifest.model import Project, Table
from framework.sql.dialects import get_dialect
from framework.sql.params import partition_param


def count_rows(warehouse: Any, project: Project, table: Table, partition: Any, known_tables: set[str] | None = None) -> int:
    """Rows of ``table`` for the partition (0 if the table does not exist). ``known_tables``:
    tables known to exist (no schema lookup); a table found to exist is added to it."""
    if known_tables is None or table.fqn not in known_tables:
        if warehouse.table_schema(table.fqn) is None:
            return 0
        if known_tables is not None:
            known_tables.add(table.fqn)
    pc = project.partition_column
    if table.column(pc) is None:
        rows = warehouse.query(f"SELECT COUNT(*) AS n FROM {table.fqn}")
    else:
        sql = f"SELECT COUNT(*) AS n FROM {table.fqn} WHERE {pc} = {get_dialect(warehouse.dialect).param(pc)}"
        rows = warehouse.query(sql, [partition_param(project, partition)])
    return int(rows[0]["n"]) if rows else 0


def count_partition_rows(warehouse: Any, project: Project, processor: str, partition: str,
                         known_tables: set[str] | None = None) -> int:
    """Rows of a processor's output for a partition: the orchestrator's quality-gate check."""
    proc = project.resolve_processor(processor)
    if proc is None or proc.output is None:
        what = "an unknown processor" if proc is None else "a processor without an output table"
        raise PipectlError(f"quality gate of processors.yaml counts rows of '{processor}', {what}",
                           hint="point quality_gates[].processor at a processor that declares an output table "
                                "(see `pipectl ls`)")
    return count_rows(warehouse, project, proc.output, partition, known_tables)


__all__ = ["count_rows", "count_partition_rows"]
