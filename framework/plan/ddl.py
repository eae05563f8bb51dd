"""The few DDL statements apply needs beyond ``Warehouse.create_table``, per dialect.

A warehouse may implement any of ``add_column(fqn, column)``, ``drop_column(fqn, name)``,
``alter_column(fqn, column)``, ``drop_table(fqn)``, ``drop_dataset(dataset)`` itself (a
capability: BigQuery does it through its API); otherwise these statements run through
``Warehouse.execute_script``. Identifiers come from the manifests (validated by the JSON
Schema pattern) or from the backend's own listing, and are always quoted.
"""
from __future__ import annotations

from typing import Any

from framework.errors import BackendError
from framework.manifest.model import Column

def quote(dialect: str, *parts: str) -> str:
    """``a.b`` quoted per dialect by the dialect's own identifier rule (framework.sql).
    BigQuery takes the whole path in one pair of backticks (``project.dataset.table``)."""
    from framework.sql.dialects import get_dialect

    d = get_dialect(dialect)
    if dialect == "bigquery":
        return d.quoted(".".join(parts))
    return ".".join(d.quoted(p) for p in parts)


def column_type(dialect: str, column: Column) -> str:
    from framework.sql.dialects import get_dialect

    return get_dialect(dialect).column_type(column.type, column.mode)


def _fqn(dialect: str, fqn: str) -> str:
    return quote(dialect, *fqn.split(".", 1))


def add_column(warehouse: Any, fqn: str, column: Column) -> None:
    if hasattr(warehouse, "add_column"):
        warehouse.add_column(fqn, column)
        return
    d = warehouse.dialect
    warehouse.execute_script(f"ALTER TABLE {_fqn(d, fqn)} ADD COLUMN {quote(d, column.name)} {column_type(d, column)}")
    if column.mode == "REQUIRED":
        _set_required(warehouse, fqn, column.name, True)


def drop_column(warehouse: Any, fqn: str, name: str) -> None:
    if hasattr(warehouse, "drop_column"):
        warehouse.drop_column(fqn, name)
        return
    d = warehouse.dialect
    warehouse.execute_script(f"ALTER TABLE {_fqn(d, fqn)} DROP COLUMN {quote(d, name)}")


def alter_column(warehouse: Any, fqn: str, column: Column, type_changed: bool, mode_before: str) -> None:
    if hasattr(warehouse, "alter_column"):
        warehouse.alter_column(fqn, column)
        return
    d = warehouse.dialect
    if type_changed:
        if d == "bigquery":
            stmt = f"ALTER TABLE {_fqn(d, fqn)} ALTER COLUMN {quote(d, column.name)} SET DATA TYPE {column_type(d, column)}"
        else:
            stmt = f"ALTER TABLE {_fqn(d, fqn)} ALTER COLUMN {quote(d, column.name)} TYPE {column_type(d, column)}"
        warehouse.execute_script(stmt)
    if mode_before != column.mode:
        if "REPEATED" in (mode_before, column.mode):
            raise BackendError(f"table {fqn}: column '{column.name}' cannot change between {mode_before} and {column.mode} in place",
                               hint="drop and re-add the column (or the table) with --allow-destructive")
        _set_required(warehouse, fqn, column.name, column.mode == "REQUIRED")


def _set_required(warehouse: Any, fqn: str, name: str, required: bool) -> None:
    d = warehouse.dialect
    if d == "bigquery" and required:
        raise BackendError(f"table {fqn}: BigQuery cannot make column '{name}' REQUIRED in place",
                           hint="recreate the table, or keep the column NULLABLE")
    action = "SET NOT NULL" if required else "DROP NOT NULL"
    warehouse.execute_script(f"ALTER TABLE {_fqn(d, fqn)} ALTER COLUMN {quote(d, name)} {action}")


def drop_table(warehouse: Any, fqn: str) -> None:
    for method in ("drop_table", "delete_table"):
        if hasattr(warehouse, method):
            getattr(warehouse, method)(fqn)
            return
    warehouse.execute_script(f"DROP TABLE IF EXISTS {_fqn(warehouse.dialect, fqn)}")


def drop_dataset(warehouse: Any, dataset: str) -> None:
    if hasattr(warehouse, "drop_dataset"):
        warehouse.drop_dataset(dataset)
        return
    warehouse.execute_script(f"DROP SCHEMA IF EXISTS {quote(warehouse.dialect, dataset)} CASCADE")


def can_report_layout(warehouse: Any) -> bool:
    return hasattr(warehouse, "table_layout") or hasattr(warehouse, "get_table")


def table_layout(warehouse: Any, fqn: str) -> dict[str, Any]:
    """``{"partition_by", "cluster_by"}`` as the warehouse has them. ``get_table`` is the
    BigQuery warehouse's capability returning the client's Table (time_partitioning.field,
    clustering_fields)."""
    if hasattr(warehouse, "table_layout"):
        layout = warehouse.table_layout(fqn) or {}
        return {"partition_by": layout.get("partition_by"), "cluster_by": list(layout.get("cluster_by") or ())}
    table = warehouse.get_table(fqn)
    partitioning = getattr(table, "time_partitioning", None)
    return {"partition_by": getattr(partitioning, "field", None) if partitioning else None,
            "cluster_by": list(getattr(table, "clustering_fields", None) or ())}


def has_rows(warehouse: Any, fqn: str) -> bool | None:
    """True/False, or None when the warehouse cannot tell (treated as 'may have rows').
    Table metadata (``get_table().num_rows``) is used when offered: a query costs money."""
    if hasattr(warehouse, "get_table"):
        table = warehouse.get_table(fqn)
        rows = getattr(table, "num_rows", None)
        streaming = getattr(table, "streaming_buffer", None)
        if rows is not None:
            return bool(rows) or streaming is not None
    try:
        rows = warehouse.query(f"SELECT 1 AS present FROM {_fqn(warehouse.dialect, fqn)} LIMIT 1")
    except BackendError:
        return None
    return bool(rows)


def tables_with_rows(warehouse: Any, dataset: str, names: list[str], chunk: int = 200) -> dict[str, bool | None]:
    """``has_rows`` for many tables of one dataset: one ``UNION ALL`` query per ``chunk``
    tables (tables are referred to by position, no name is pasted as a value); metadata
    instead when the warehouse offers it. A failing batch falls back to one query per table
    so one unreadable table cannot hide the others."""
    if hasattr(warehouse, "get_table") or not names:
        return {n: has_rows(warehouse, f"{dataset}.{n}") for n in names}
    out: dict[str, bool | None] = {}
    d = warehouse.dialect
    for start in range(0, len(names), chunk):
        part = names[start:start + chunk]
        sql = " UNION ALL ".join(f"SELECT {i} AS i, EXISTS (SELECT 1 FROM {quote(d, dataset, n)}) AS present"
                                 for i, n in enumerate(part))
        try:
            rows = warehouse.query(sql)
        except BackendError:
            out.update({n: has_rows(warehouse, f"{dataset}.{n}") for n in part})
            continue
        found = {int(r["i"]): bool(r["present"]) for r in rows}
        out.update({n: found.get(i) for i, n in enumerate(part)})
    return out


def dataset_exists(warehouse: Any, dataset: str) -> bool:
    if hasattr(warehouse, "dataset_exists"):
        return bool(warehouse.dataset_exists(dataset))
    if hasattr(warehouse, "list_datasets"):
        return dataset in warehouse.list_datasets()
    from framework.backends.protocols import QueryParam
    from framework.sql.dialects import get_dialect

    marker = get_dialect(warehouse.dialect).param("name")
    rows = warehouse.query(f"SELECT schema_name FROM information_schema.schemata WHERE schema_name = {marker}",
                           [QueryParam("name", dataset)])
    return bool(rows)
