"""Validation rules of tables and columns, registered by :mod:`framework.graph.rules`.

Apart from the reference and phase rules because they check a different thing: not who
reads whom, but what the tables hold. One writer a table (two writers overwrite each other),
the columns a processor keys, partitions, clusters or compares on exist where they are read
(FM 7), and an id has one type on both sides of a join (FM 8: numeric and string ids match
nothing). Each takes the rules' :class:`~framework.graph.rules.Context`.
"""
from __future__ import annotations

from typing import Any

from framework.manifest.diagnostics import did_you_mean
from framework.manifest.model import Processor, Project


def check_tables(ctx: Any) -> None:
    writers: dict[str, Processor] = {}
    for proc in ctx.project.processors.values():
        if proc.output is None:
            continue
        fqn = proc.output.fqn
        if fqn in writers:
            ctx.diags.error("duplicate-output-table", f"processors '{writers[fqn].name}' and '{proc.name}' both write {fqn}", proc.output.location, "each table has exactly one writing processor")
        else:
            writers[fqn] = proc
        seen: set[str] = set()
        for col in proc.output.columns:
            if col.name in seen:
                ctx.diags.error("duplicate-column", f"processor '{proc.name}': column '{col.name}' declared twice", col.location)
            seen.add(col.name)
    for src in ctx.project.sources.values():
        if src.table.fqn in writers:
            ctx.diags.error("duplicate-output-table", f"source '{src.name}' and processor '{writers[src.table.fqn].name}' both name {src.table.fqn}", src.location)


def check_columns(ctx: Any) -> None:
    """Entity keys and change-detection columns must exist where they are read (FM 7)."""
    p = ctx.project
    for proc in p.processors.values():
        out = proc.output
        kind = p.entity_kinds.get(proc.entity) if proc.entity else None
        if out is not None:
            if kind and out.column(kind.key) is None:
                ctx.diags.error("entity-key-missing", f"processor '{proc.name}': entity key '{kind.key}' ({kind.name}) is not among its output columns", out.location, f"add a column '{kind.key}' of type {kind.type}")
            if out.partition_by and out.column(out.partition_by) is None:
                ctx.diags.error("partition-column-missing", f"processor '{proc.name}': partition column '{out.partition_by}' is not among its output columns", out.location, did_you_mean(out.partition_by, out.column_names))
            if len(out.cluster_by) > 4:
                ctx.diags.error("cluster-columns", f"processor '{proc.name}': {len(out.cluster_by)} cluster columns; BigQuery clusters by at most 4", out.location, f"keep the 4 most selective: {', '.join(out.cluster_by[:4])}")
            for col in out.cluster_by:
                if out.column(col) is None:
                    ctx.diags.error("cluster-column-missing", f"processor '{proc.name}': cluster column '{col}' is not among its output columns", out.location, did_you_mean(col, out.column_names))
            if proc.change_detection.columns:
                for col in proc.change_detection.columns:
                    if out.column(col) is None:
                        ctx.diags.error("change-column-missing", f"processor '{proc.name}': change-detection column '{col}' is not among its output columns", proc.change_detection.location, did_you_mean(col, out.column_names))
        elif proc.change_detection.columns:
            ctx.diags.error("change-column-missing", f"processor '{proc.name}' declares change-detection columns but has no output table", proc.change_detection.location)
        for inp in proc.inputs:
            table = ctx.table_of(inp.kind, inp.name)
            if table is None:
                continue
            for col in inp.compare or ():
                if table.column(col) is None:
                    ctx.diags.error("change-column-missing", f"processor '{proc.name}' compares column '{col}' of '{inp.name}', which {table.fqn} does not have", inp.location, did_you_mean(col, table.column_names))
            if table.column(p.partition_column) is None:
                ctx.diags.error("partition-column-missing", f"processor '{proc.name}' reads '{inp.name}', whose table {table.fqn} has no partition column '{p.partition_column}'", inp.location, f"add '{p.partition_column}' to {table.fqn}")
    for src in p.sources.values():
        for col in src.change_columns or ():
            if src.table.column(col) is None:
                ctx.diags.error("change-column-missing", f"source '{src.name}': change column '{col}' is not among its columns", src.location, did_you_mean(col, src.table.column_names))
        kind = p.entity_kinds.get(src.entity) if src.entity else None
        if kind and src.table.column(kind.key) is None:
            ctx.diags.error("entity-key-missing", f"source '{src.name}': entity key '{kind.key}' is not among its columns", src.location)


def check_key_types(ctx: Any) -> None:
    """Numeric vs string ids in a join match nothing (FM 8): key types must agree."""
    p = ctx.project
    for proc in p.processors.values():
        if proc.output is None:
            continue
        for key in _key_columns(p):
            mine = proc.output.column(key)
            if mine is None:
                continue
            for inp in proc.inputs:
                table = ctx.table_of(inp.kind, inp.name)
                theirs = table.column(key) if table else None
                if theirs is not None and theirs.type != mine.type:
                    ctx.diags.error(
                        "key-type-mismatch",
                        f"processor '{proc.name}': key '{key}' is {mine.type} but input '{inp.name}' has it as {theirs.type}",
                        inp.location,
                        "declare the same type on both sides; numeric and string ids never join",
                    )
    for kind in p.entity_kinds.values():
        for proc in p.processors.values():
            if proc.entity == kind.name and proc.output is not None:
                col = proc.output.column(kind.key)
                if col is not None and col.type != kind.type:
                    ctx.diags.error("key-type-mismatch", f"processor '{proc.name}': key '{kind.key}' is {col.type} but entity kind '{kind.name}' declares {kind.type}", col.location, f"make it {kind.type}")
    for src in p.sources.values():  # where the ids enter: a numeric key here joins nothing downstream
        kind = p.entity_kinds.get(src.entity) if src.entity else None
        col = src.table.column(kind.key) if kind else None
        if kind and col is not None and col.type != kind.type:
            ctx.diags.error("key-type-mismatch", f"source '{src.name}': key '{kind.key}' is {col.type} but entity kind '{kind.name}' declares {kind.type}", col.location, f"make it {kind.type}")


def _key_columns(p: Project) -> list[str]:
    return [p.partition_column] + [k.key for k in p.entity_kinds.values()]
