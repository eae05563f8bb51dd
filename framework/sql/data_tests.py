"""Data tests (processors.yaml ``tests:``) rendered as SQL: one query per test that counts
the failing rows of one partition, per dialect, with query parameters.

Why a template (``data_test.sql.j2``) and not Python strings: a project overrides it per
dialect like every other statement (``templates/<dialect>/data_test.sql.j2``), and
``pipectl render PROCESSOR --kind test`` shows exactly what runs. Values (the partition, the
accepted values) are parameters; names are identifiers quoted by the dialect; only the
user's own ``expression``/``sql``/``where`` text is SQL by design.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from framework.errors import ConfigError
from framework.manifest.model import DataTest, Processor, Project
from framework.sql.dialects import get_dialect
from framework.sql.params import QueryParam, partition_param
from framework.sql.render import render_template

PARTITION_PLACEHOLDER = re.compile(r"\{\{\s*partition\s*\}\}")


@dataclass(frozen=True)
class TestQuery:
    """A rendered data test: its SQL (one row, ``failures``) and the parameters to bind."""

    test: DataTest
    sql: str
    params: tuple[QueryParam, ...]


def parent_table(project: Project, test: DataTest) -> Any:
    """The table a ``relationships`` test looks into (a processor's output or a source)."""
    up = project.resolve_processor(test.to or "")
    if up is not None and up.output is not None:
        return up.output
    src = project.sources.get(test.to or "")
    if src is not None:
        return src.table
    raise ConfigError(f"data test {test.name} of {test.processor}: 'to: {test.to}' is not a processor with an output "
                      "or a source", test.location, "name a processor or a source of processors.yaml (`pipectl ls`)")


def render_test(project: Project, processor: Processor, test: DataTest, dialect: str,
                partition: Any = None) -> TestQuery:
    """The query of ``test`` for ``partition`` (None: every partition of the table)."""
    if processor.output is None:
        raise ConfigError(f"processor '{processor.name}' has data tests but no output table", test.location,
                          "declare an output, or move the tests to the processor that writes the table")
    pc = project.partition_column
    partitioned = partition is not None and processor.output.column(pc) is not None
    parent, parent_partitioned = None, False
    if test.kind == "relationships":
        table = parent_table(project, test)
        parent, parent_partitioned = table.fqn, partition is not None and table.column(pc) is not None
    user_sql = None
    if test.kind == "sql":
        placeholder = get_dialect(dialect).param(pc)
        if partition is None and PARTITION_PLACEHOLDER.search(test.sql or ""):
            raise ConfigError(f"data test {test.name} of {processor.name} uses {{{{ partition }}}}: give a partition "
                              "(`pipectl test --date D`)", test.location)
        user_sql = PARTITION_PLACEHOLDER.sub(placeholder, (test.sql or "").strip().rstrip(";"))
    rendered = render_template(project, "data_test.sql.j2", dialect, test=test, table=processor.output.fqn,
                               parent=parent, partitioned=partitioned, parent_partitioned=parent_partitioned,
                               user_sql=user_sql)
    params: list[QueryParam] = []
    if partition is not None and re.search(rf"[@$]{re.escape(pc)}\b", rendered.sql):
        params.append(partition_param(project, partition))
    if test.kind == "accepted_values":
        column = processor.output.column(test.columns[0])
        params.append(QueryParam("accepted_values", list(test.values), column.type if column else "STRING", array=True))
    return TestQuery(test, rendered.sql, tuple(params))


__all__ = ["TestQuery", "parent_table", "render_test"]
