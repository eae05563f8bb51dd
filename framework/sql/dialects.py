"""The dialect table: the few facts about each SQL dialect that are data, not SQL text.

Everything that *is* SQL text (placeholders, fingerprint functions, MERGE vs DELETE+INSERT)
lives in per-dialect template overrides (``templates/<dialect>/``), never in ``if`` chains
here. What stays in Python is what templates cannot express well: how a manifest column
type (BigQuery standard SQL names) is spelled in the dialect, how identifiers are quoted,
and which sqlglot dialect parses the rendered text.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping

from framework.errors import ConfigError

# A name that may be written bare (manifest names match it by schema).
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# Words that would break the SQL if used bare as an identifier. Manifest names already
# match ``[A-Za-z_][A-Za-z0-9_]*``; only these need quoting.
RESERVED = frozenset(
    """all and any array as asc at between by case cast collate contains create cross cube
    current default define desc distinct else end enum escape except exclude exists extract
    false fetch following for from full group grouping groups hash having if ignore in inner
    interval intersect into is join lateral left like limit lookup merge natural new no not
    null nulls of on or order outer over partition preceding proto qualify range recursive
    respect right rollup rows select set some struct tablesample then to treesample true
    unbounded union unnest using when where window with within table column primary key
    references check unique constraint analyse analyze asymmetric both current_date
    current_time current_timestamp current_user deferrable do initially leading localtime
    localtimestamp offset only placing returning session_user symmetric trailing variadic
    """.split()
)


@dataclass(frozen=True)
class Dialect:
    """Data about one SQL dialect. ``types`` maps manifest (BigQuery) type names."""

    name: str
    sqlglot: str
    quote: str
    types: Mapping[str, str]
    array_format: str  # how a REPEATED column's type is spelled; {} is the element type
    reverse_types: Mapping[str, str] = field(default_factory=dict)
    # (character, replacement) pairs applied inside a quoted identifier
    quote_escapes: tuple[tuple[str, str], ...] = ()
    param_prefix: str = "$"  # named query parameters: $name (DuckDB), @name (BigQuery)
    # DELETE/INSERT ... RETURNING (DuckDB): a selective write reports the rows it removed and
    # added, so the runner needs no read of its output before and after the write
    returning: bool = False

    def param(self, name: str) -> str:
        """The placeholder of the named query parameter ``name`` (values never go in SQL text)."""
        return f"{self.param_prefix}{name}"

    def in_array(self, column: str, param: str) -> str:
        """``column`` is one of the ARRAY parameter ``param``'s values."""
        return f"{column} IN (SELECT UNNEST({self.param(param)}))"

    def column_type(self, type_name: str, mode: str = "NULLABLE") -> str:
        base = self.types.get(type_name.upper())
        if base is None:
            raise ConfigError(f"column type '{type_name}' has no {self.name} mapping", hint=f"use one of {', '.join(sorted(self.types))}")
        return self.array_format.format(base) if mode == "REPEATED" else base

    def ident(self, name: str) -> str:
        """Leave a plain name bare (keeps SQL readable); quote a reserved word or any other
        name (a row key from a Python transform, a name listed by the backend) with the
        dialect's escaping, so no name can end the identifier and inject SQL."""
        if _PLAIN.fullmatch(name) and name.lower() not in RESERVED:
            return name
        return self.quoted(name)

    def quoted(self, name: str) -> str:
        """Always quote ``name`` as one identifier, escaping the quote character."""
        for char, replacement in self.quote_escapes:
            name = name.replace(char, replacement)
        return f"{self.quote}{name}{self.quote}"

    def manifest_type(self, native: str) -> str:
        """Map a type name reported by the engine back to the manifest (BigQuery) name."""
        native = native.upper()
        if native.endswith("[]"):
            return self.manifest_type(native[:-2])
        if native.startswith("DECIMAL") or native.startswith("NUMERIC"):
            return "NUMERIC"
        return self.reverse_types.get(native, native)


DUCKDB = Dialect(
    name="duckdb",
    returning=True,
    sqlglot="duckdb",
    quote='"',
    types={
        "STRING": "VARCHAR",
        "INT64": "BIGINT",
        "FLOAT64": "DOUBLE",
        "NUMERIC": "DECIMAL(38, 9)",
        "BOOL": "BOOLEAN",
        "DATE": "DATE",
        "TIMESTAMP": "TIMESTAMP",
        "DATETIME": "TIMESTAMP",
        "JSON": "JSON",
        "BYTES": "BLOB",
    },
    array_format="{}[]",
    quote_escapes=(('"', '""'),),
    reverse_types={
        "VARCHAR": "STRING",
        "BIGINT": "INT64",
        "INTEGER": "INT64",
        "HUGEINT": "INT64",
        "UBIGINT": "INT64",
        "DOUBLE": "FLOAT64",
        "FLOAT": "FLOAT64",
        "BOOLEAN": "BOOL",
        "DATE": "DATE",
        "TIMESTAMP": "TIMESTAMP",
        "TIMESTAMP WITH TIME ZONE": "TIMESTAMP",
        "JSON": "JSON",
        "BLOB": "BYTES",
    },
)

BIGQUERY = Dialect(
    name="bigquery",
    param_prefix="@",
    sqlglot="bigquery",
    quote="`",
    types={t: t for t in ("STRING", "INT64", "FLOAT64", "NUMERIC", "BOOL", "DATE", "TIMESTAMP", "DATETIME", "JSON", "BYTES")},
    array_format="ARRAY<{}>",
    reverse_types={"INTEGER": "INT64", "FLOAT": "FLOAT64", "BOOLEAN": "BOOL"},
    quote_escapes=(("\\", "\\\\"), ("`", "\\`")),  # GoogleSQL quoted identifiers take backslash escapes
)

DIALECTS: dict[str, Dialect] = {d.name: d for d in (DUCKDB, BIGQUERY)}


def get_dialect(name: str) -> Dialect:
    try:
        return DIALECTS[name]
    except KeyError:
        raise ConfigError(f"unknown SQL dialect '{name}'", hint=f"use one of {', '.join(sorted(DIALECTS))}") from None
