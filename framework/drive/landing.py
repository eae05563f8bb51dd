"""``pipectl load``: rows from a file into a declared source's landing table.

A pipeline's first phase reads *sources*: tables an ingestion job fills. In production
that job is the user's (a scraper, a transfer, a Pub/Sub subscription); to try a project,
to backfill from an export, or in CI, ``pipectl load SOURCE FILE`` is that job: it reads
CSV (header row), JSON Lines or a JSON array, checks every row against the source's
declared columns (unknown or missing REQUIRED columns, values that are not of the declared
type: every problem collected, with file and line, before anything is written), creates
the table if it does not exist, and inserts through the target's warehouse (values travel
as query parameters). ``replace=True`` first deletes the rows of the partitions the file
holds, so loading the same day twice does not double it.
"""
from __future__ import annotations

import csv
import datetime as dt
import json
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from framework.backends.protocols import QueryParam
from framework.errors import ConfigError
from framework.manifest.model import Column, Project, Table

MAX_REPORTED = 20
_TRUE, _FALSE = {"true", "t", "1", "yes", "y"}, {"false", "f", "0", "no", "n"}


@dataclass
class LoadResult:
    source: str
    table: str
    rows: int
    partitions: dict[str, int] = field(default_factory=dict)
    replaced: bool = False
    created: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "table": self.table, "rows": self.rows, "partitions": self.partitions,
                "replaced": self.replaced, "created": self.created}


def source_table(project: Project, name: str) -> Table:
    """The landing table of source ``name`` (a source name, or its table's ``dataset.table``)."""
    for source in project.sources.values():
        if name in (source.name, source.table.fqn):
            return source.table
    known = ", ".join(sorted(project.sources)) or "none declared"
    raise ConfigError(f"no source '{name}' in {project.root / 'processors.yaml'} (sources: {known})",
                      hint="load into a declared source (processors.yaml `sources:`)")


def read_rows(path: Path, table: Table) -> list[dict[str, Any]]:
    """Every row of ``path`` as typed values of ``table``'s columns; raises once, listing
    every problem (``file:line: ...``), if any row does not fit."""
    if not path.is_file():
        raise ConfigError(f"{path}: no such file", hint="pass a .csv, .jsonl/.ndjson or .json file")
    raw = _records(path)
    problems: list[str] = []
    rows: list[dict[str, Any]] = []
    declared = {c.name: c for c in table.columns}
    reported: set[str] = set()
    for line, record in raw:
        unknown = sorted(set(record) - set(declared))
        if unknown:
            if not reported.issuperset(unknown):  # a CSV header's problem is reported once, not per row
                where = 1 if path.suffix.lower() == ".csv" else line  # CSV: the header row
                problems.append(f"{path}:{where}: unknown column(s) {', '.join(unknown)} for {table.fqn} "
                                f"(declared: {', '.join(declared)})")
                reported.update(unknown)
            continue
        row: dict[str, Any] = {}
        for col in table.columns:
            value = record.get(col.name)
            try:
                row[col.name] = convert(value, col)
            except ValueError as exc:
                problems.append(f"{path}:{line}: column {col.name}: {exc}")
        rows.append(row)
        if len(problems) >= MAX_REPORTED:
            break
    if problems:
        more = " (first problems only)" if len(problems) >= MAX_REPORTED else ""
        raise ConfigError(f"{len(problems)} row problem(s) in {path}{more}:\n  " + "\n  ".join(problems),
                          hint=f"fix the file; the columns and types of {table.fqn} are declared in processors.yaml")
    return rows


def convert(value: Any, col: Column) -> Any:
    """``value`` as the Python value of manifest type ``col.type``."""
    if value is None:
        if col.mode == "REQUIRED":
            raise ValueError("is REQUIRED but empty")
        return None
    kind = col.type.upper()
    try:
        if kind in ("INT64", "INTEGER"):
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if kind in ("FLOAT64", "FLOAT"):
            return float(value)
        if kind in ("NUMERIC", "BIGNUMERIC"):
            return Decimal(str(value))
        if kind in ("BOOL", "BOOLEAN"):
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text not in _TRUE | _FALSE:
                raise ValueError
            return text in _TRUE
        if kind == "DATE":
            return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
        if kind in ("TIMESTAMP", "DATETIME"):
            return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        if kind == "JSON":
            return value if not isinstance(value, str) else json.loads(value)
        return value if isinstance(value, (list, dict)) else str(value)
    except (ValueError, TypeError, InvalidOperation):
        raise ValueError(f"{value!r} is not a {kind}") from None


def _records(path: Path) -> list[tuple[int, dict[str, Any]]]:
    suffix = path.suffix.lower()
    text = path.read_text(encoding="utf-8-sig")
    if suffix == ".csv":
        reader = csv.DictReader(text.splitlines())
        out = []
        for record in reader:
            if None in record:
                raise ConfigError(f"{path}:{reader.line_num}: more values than header columns",
                                  hint="quote values that contain commas")
            out.append((reader.line_num, {k: (None if v == "" else v) for k, v in record.items()}))  # empty cell: NULL
        return out
    if suffix in (".jsonl", ".ndjson"):
        out = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    item = json.loads(line)
                except ValueError as exc:
                    raise ConfigError(f"{path}:{number}: not valid JSON ({exc})", hint="one JSON object per line") from exc
                out.append((number, _object(path, number, item)))
        return out
    if suffix == ".json":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"{path}: not valid JSON ({exc})", hint="a .json file holds one array of objects") from exc
        if not isinstance(data, list):
            raise ConfigError(f"{path}: a .json file must hold an array of row objects", hint="or use JSON Lines (.jsonl)")
        return [(1, _object(path, 1, item)) for item in data]
    raise ConfigError(f"{path}: unknown file type '{suffix}'", hint="use .csv (with a header row), .jsonl/.ndjson or .json")


def _object(path: Path, line: int, item: Any) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise ConfigError(f"{path}:{line}: expected a JSON object per row", hint='e.g. {"day": "2025-01-01", "customer_id": "c1"}')
    return item


def load_source(session: Any, source: str, path: str | Path, replace: bool = False) -> LoadResult:
    """Check ``path`` against ``source``'s columns, then write it (see the module docstring)."""
    project: Project = session.project
    table = source_table(project, source)
    rows = read_rows(Path(path), table)  # every check before the first write
    part = project.partition_column
    result = LoadResult(source, table.fqn, len(rows), replaced=replace)
    if part and table.column(part):
        for row in rows:
            key = str(row.get(part))
            result.partitions[key] = result.partitions.get(key, 0) + 1
    elif replace:
        raise ConfigError(f"--replace needs the partition column '{part}' in {table.fqn}",
                          hint="declare it on the source, or load without --replace")
    result.created = write_rows(session.warehouse, table, rows, part if replace else None)
    return result


def write_rows(warehouse: Any, table: Table, rows: list[dict[str, Any]], replace_partitions_of: str | None = None) -> bool:
    """Create ``table`` if missing (returns True then) and insert ``rows``; with
    ``replace_partitions_of`` (the partition column), first delete the partitions the rows
    hold. Also the building block of a project's own sample-data hook."""
    from framework.sql.dialects import get_dialect

    created = False
    if warehouse.table_schema(table.fqn) is None:
        warehouse.create_table(table)
        created = True
    d = get_dialect(warehouse.dialect)
    if replace_partitions_of and rows:
        col = table.column(replace_partitions_of)
        if col is None:
            raise ConfigError(f"{table.fqn} has no column '{replace_partitions_of}' to replace partitions by")
        values = sorted({row[col.name] for row in rows if row.get(col.name) is not None})
        warehouse.query(f"DELETE FROM {_fqn(d, table)} WHERE {d.in_array(d.ident(col.name), 'partitions')}",
                        [QueryParam("partitions", values, type=col.type, array=True)])
    if rows:
        warehouse.insert_rows(table.fqn, rows)
    return created


def update_entity(warehouse: Any, table: Table, where: dict[str, Any], changes: dict[str, Any]) -> int:
    """Set ``changes`` (column -> value, typed by the declared columns) on the rows of
    ``table`` matching ``where`` (column -> value); the shape of a sample hook's
    ``apply_update``. Raises ValueError for an unknown column or when no row matches."""
    from framework.sql.dialects import get_dialect

    if not changes:
        raise ValueError("at least one column=value change is needed")
    for name in [*where, *changes]:
        if table.column(name) is None:
            raise ValueError(f"{table.fqn} has no column '{name}'; columns: {', '.join(c.name for c in table.columns)}")
    d = get_dialect(warehouse.dialect)
    params = [QueryParam(f"w{i}", convert(v, table.column(k)), type=table.column(k).type) for i, (k, v) in enumerate(where.items())]
    cond = " AND ".join(f"{d.ident(k)} = {d.param(f'w{i}')}" for i, k in enumerate(where))
    found = warehouse.query(f"SELECT COUNT(*) AS n FROM {_fqn(d, table)} WHERE {cond}", params)
    count = int(found[0]["n"]) if found else 0
    if count == 0:
        raise ValueError(f"{table.fqn} has no row where " + ", ".join(f"{k} = {v}" for k, v in where.items()))
    sets = [QueryParam(f"s{i}", convert(v, table.column(k)), type=table.column(k).type) for i, (k, v) in enumerate(changes.items())]
    assign = ", ".join(f"{d.ident(k)} = {d.param(f's{i}')}" for i, k in enumerate(changes))
    warehouse.query(f"UPDATE {_fqn(d, table)} SET {assign} WHERE {cond}", params + sets)
    return count


def _fqn(d: Any, table: Table) -> str:
    return ".".join(d.ident(part) for part in table.fqn.split("."))
