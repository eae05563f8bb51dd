"""What a processor's transform sees: one context object for SQL and Python transforms.

The transform contract (docs/runtime.md) says a SQL transform renders one SELECT with
``ref()``, ``source()``, ``partition`` and ``entity_filter()``; a Python transform
(``transform.python: "module.path:function"``, module path relative to the project root)
receives a :class:`TransformContext` offering the same four things plus ``query()``, and
returns an iterable of row dicts. Values always travel as query parameters.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

from framework.backends.protocols import QueryParam
from framework.errors import ConfigError, PipectlError
from framework.manifest.model import Processor, Project
from framework.sql.dialects import get_dialect
from framework.sql.params import partition_param

ENTITY_IDS_PARAM = "entity_ids"


class TransformError(PipectlError):
    """A transform could not be loaded or failed; names the processor and the file."""


@dataclass(frozen=True)
class TransformContext:
    """Everything a transform needs for one run: where to read, which partition and which
    entities (``entity_ids is None`` means a full batch of the partition)."""

    warehouse: Any
    project: Project
    processor: Processor
    partition: Any
    entity_ids: tuple[str, ...] | None = None

    @property
    def full_batch(self) -> bool:
        return self.entity_ids is None

    @property
    def dialect(self) -> str:
        return self.warehouse.dialect

    @property
    def partition_column(self) -> str:
        return self.project.partition_column

    def placeholder(self, name: str) -> str:
        return get_dialect(self.dialect).param(name)

    @property
    def partition_placeholder(self) -> str:
        return self.placeholder(self.project.partition_column)

    def ref(self, name: str) -> str:
        """The output table (``dataset.table``) of an upstream processor."""
        proc = self.project.resolve_processor(name)
        if proc is None or proc.output is None:
            raise TransformError(f"{self.processor.name}: ref('{name}') names no processor with an output table",
                                 self.processor.location)
        return proc.output.fqn

    def source(self, name: str) -> str:
        src = self.project.sources.get(name)
        if src is None:
            raise TransformError(f"{self.processor.name}: source('{name}') is not declared in processors.yaml",
                                 self.processor.location)
        return src.table.fqn

    def entity_filter(self, column: str) -> str:
        if self.full_batch:
            return "TRUE"
        return get_dialect(self.dialect).in_array(column, ENTITY_IDS_PARAM)

    def params(self) -> list[QueryParam]:
        """The partition parameter and, for a selective run, the entity id array."""
        out = [partition_param(self.project, self.partition)]
        if not self.full_batch:
            out.append(QueryParam(ENTITY_IDS_PARAM, list(self.entity_ids or ()), entity_type(self.project, self.processor), array=True))
        return out

    def query(self, sql: str, extra: Sequence[QueryParam] = ()) -> list[dict[str, Any]]:
        """Run a SELECT with the context's parameters bound (only those the SQL uses)."""
        return self.warehouse.query(sql, bind_params(sql, [*self.params(), *extra], self.dialect))


def entity_type(project: Project, processor: Processor) -> str:
    if processor.entity and processor.entity in project.entity_kinds:
        return project.entity_kinds[processor.entity].type
    return "STRING"


def bind_params(sql: str, params: Sequence[QueryParam], dialect: str) -> list[QueryParam]:
    """Keep the parameters the statement references: DuckDB rejects unused named parameters."""
    used = set(re.findall(re.escape(get_dialect(dialect).param_prefix) + r"([A-Za-z_][A-Za-z0-9_]*)", sql))
    seen: set[str] = set()
    out = []
    for p in params:
        if p.name in used and p.name not in seen:
            seen.add(p.name)
            out.append(p)
    return out


_CALLABLES: dict[tuple[str, str], Callable[[TransformContext], Iterable[Mapping[str, Any]]]] = {}


def load_python_transform(project: Project, processor: Processor) -> Callable[[TransformContext], Iterable[Mapping[str, Any]]]:
    """Import ``module.path:function`` with the project root on sys.path (cached)."""
    spec = processor.transform.python or ""
    key = (str(project.root), spec)
    if key in _CALLABLES:
        return _CALLABLES[key]
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise TransformError(f"{processor.name}: transform.python must be 'module.path:function', got {spec!r}",
                             processor.transform.location)
    from framework.manifest.code import import_project_module

    root = str(project.root)
    try:
        module = import_project_module(root, module_name)
    except ImportError as exc:
        raise TransformError(f"{processor.name}: cannot import transform module '{module_name}' from {root}: {exc}",
                             processor.transform.location, hint="module paths are relative to the project root") from exc
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise TransformError(f"{processor.name}: '{module_name}' has no callable '{attr}'", processor.transform.location)
    _CALLABLES[key] = fn
    return fn


def run_python_transform(ctx: TransformContext) -> list[dict[str, Any]]:
    """Call the processor's Python transform and check every row has exactly the output columns."""
    fn = load_python_transform(ctx.project, ctx.processor)
    rows = [dict(r) for r in fn(ctx)]
    if ctx.processor.output is not None:
        expected = set(ctx.processor.output.column_names)
        for i, row in enumerate(rows):
            if set(row) != expected:
                missing, extra = sorted(expected - set(row)), sorted(set(row) - expected)
                raise TransformError(f"{ctx.processor.name}: python transform row {i} does not match the output columns "
                                     f"of {ctx.processor.output.fqn} (missing {missing}, unexpected {extra})",
                                     ctx.processor.transform.location)
    return rows
