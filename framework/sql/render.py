"""Render the SQL statements of a processor from the templates, per dialect.

One public entry per job: :func:`render_statement` (detect | filter | ddl | merge |
transform) and :func:`render_transform` (the processor's own SQL file under the transform
contract). Every statement comes back as :class:`RenderedSQL`: text plus the names of the
query parameters it needs, so callers bind values with :func:`query_params` and no value is
ever pasted into SQL text.

A statement of a project loaded through the project cache is looked up first in the
statements rendered by earlier commands (:mod:`framework.sql.rendered`); Jinja is imported
only when something must really be rendered.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Sequence

from framework.errors import ConfigError
from framework.manifest.diagnostics import did_you_mean
from framework.manifest.model import Processor, Project, Table

from framework.sql import rendered as _rendered
from framework.sql.context import (PARTITION_SENTINEL, STATE_FORMAT, changeset_table, input_specs, legacy_state_table,
                                   row_plan_applies, state_table)
from framework.sql.params import QueryParam, coerce_value

KINDS = ("detect", "filter", "ddl", "merge", "transform")
ENTITY_IDS = "entity_ids"
_FIXED_PARAMS = (ENTITY_IDS, "processor", "run_id")


def template_errors() -> tuple[type[BaseException], ...]:
    """Jinja's error type once Jinja is imported (something was rendered), else none: code
    that turns a template error into a fallback names it without importing Jinja itself
    (an ``except`` clause is evaluated when an exception reaches it)."""
    jinja2 = sys.modules.get("jinja2")
    return (jinja2.TemplateError,) if jinja2 is not None else ()


@dataclass(frozen=True)
class RenderedSQL:
    """Rendered SQL text and the names of the query parameters it references."""

    sql: str
    params: tuple[str, ...]


def _processor(project: Project, processor: Processor | str) -> Processor:
    if isinstance(processor, Processor):
        return processor
    found = project.resolve_processor(processor)
    if found is None:
        raise ConfigError(f"unknown processor '{processor}'", hint=did_you_mean(processor, project.processors) or "see `pipectl ls`")
    return found


def _params_of(sql: str, project: Project) -> tuple[str, ...]:
    names = (project.partition_column, *_FIXED_PARAMS)
    return tuple(n for n in names if re.search(rf"[@$]{re.escape(n)}\b", sql))


def finish_rendered(sql: str, project: Project) -> RenderedSQL:
    """Rendered text with blank runs collapsed, and the parameters it names (public: the
    runner finishes statements it assembles from several templates the same way)."""
    text = re.sub(r"\n{3,}", "\n\n", sql).strip() + "\n"
    return RenderedSQL(text, _params_of(text, project))


def render_template(project: Project, template: str, dialect: str, **context: Any) -> RenderedSQL:
    """Render any template by name (``detect.sql.j2``) with the standard context."""
    base = {"partition_column": project.partition_column, "state_table": state_table(project),
            "changeset_table": changeset_table(project), "sentinel": PARTITION_SENTINEL,
            "state_format": STATE_FORMAT, "legacy_table": legacy_state_table(project)}
    base.update(context)
    memo, key = _rendered.memo_for(project), None
    if memo is not None:
        try:
            key = _rendered.call_key("template", template, dialect, base)
        except _rendered.NotKeyable:  # a function in the context: rendered every time
            key = None
        found = memo.get(key) if key is not None else None
        if found is not None:
            return RenderedSQL(*found)
    from framework.sql.environment import environment

    out = finish_rendered(environment(project.root, dialect).get_template(template).render(**base), project)
    if memo is not None and key is not None:
        memo.put(key, out.sql, out.params)
    return out


# ----------------------------------------------------------------- transform contract
def transform_globals(project: Project, processor: Processor, dialect: str, full_batch: bool) -> dict[str, Any]:
    """The names a transform template sees (public: the SQL checks and `pipectl verify`
    render transforms with the same globals as a run)."""
    from framework.sql.environment import dialect_macros

    macros = dialect_macros(project.root, dialect)
    selective = not full_batch and processor.entity is not None

    def ref(name: str) -> str:
        up = project.processors.get(name)
        if up is None or up.output is None:
            import jinja2

            why = "has no output table" if up is not None else "is not a processor"
            hint = did_you_mean(name, [p for p, x in project.processors.items() if x.output]) or "use a processor name from processors.yaml"
            raise jinja2.UndefinedError(f"ref('{name}') in the transform of '{processor.name}': '{name}' {why} ({hint})")
        return up.output.fqn

    def source(name: str) -> str:
        src = project.sources.get(name)
        if src is None:
            import jinja2

            hint = did_you_mean(name, project.sources) or "declare it under 'sources'"
            raise jinja2.UndefinedError(f"source('{name}') in the transform of '{processor.name}': unknown source ({hint})")
        return src.table.fqn

    def entity_filter(column: str) -> str:
        return str(macros.entity_in(column)) if selective else "TRUE"

    return {"ref": ref, "source": source, "partition": str(macros.param(project.partition_column)),
            "entity_filter": entity_filter, "dialect": dialect, "processor": processor.name}


@lru_cache(maxsize=4096)
def _compile(env: Any, text: str) -> Any:
    return env.from_string(text)


# A transform that uses nothing but ``{{ ref('x') }}``, ``{{ source('x') }}``,
# ``{{ entity_filter('a.b') }}``, ``{{ partition }}`` and ``{{ dialect }}`` is rendered by
# substitution: same output as Jinja, without compiling a template per file (validate
# renders every transform of 10,000-processor manifests in both dialects).
_SIMPLE_CALL = re.compile(r"""\{\{\s*(ref|source|entity_filter)\(\s*(?:'([^'{}]*)'|"([^"{}]*)")\s*\)\s*\}\}""")
_SIMPLE_NAME = re.compile(r"\{\{\s*(partition|dialect)\s*\}\}")
_JINJA = re.compile(r"\{[{%#]")


def _render_text(env: Any, text: str, globals_: dict[str, Any]) -> str:
    if not _JINJA.search(_SIMPLE_CALL.sub("", _SIMPLE_NAME.sub("", text))):
        out = _SIMPLE_CALL.sub(lambda m: str(globals_[m.group(1)](m.group(2) if m.group(2) is not None else m.group(3))), text)
        return _SIMPLE_NAME.sub(lambda m: str(globals_[m.group(1)]), out)
    return _compile(env, text).render(**globals_)


def transform_path(project: Project, processor: Processor) -> Path:
    if not processor.transform.sql:
        raise ConfigError(f"processor '{processor.name}' has a Python transform, not SQL", processor.transform.location)
    return project.root / processor.transform.sql


def read_transform(project: Project, processor: Processor) -> str:
    """The text of the processor's transform file (a located error if it cannot be read)."""
    path = transform_path(project, processor)
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"processor '{processor.name}': cannot read transform file {path}: {exc.strerror}", processor.transform.location, "create it (paths are relative to the project root)") from exc


def render_transform(project: Project, processor: Processor | str, dialect: str, full_batch: bool,
                     globals_: dict[str, Any] | None = None, text: str | None = None) -> str:
    """Render the processor's ``transform.sql`` file: one SELECT returning the output columns.

    ``entity_filter()`` renders TRUE in a full batch (and always for entity-less processors).
    ``globals_`` replaces the contract's globals (the SQL checks wrap ``ref`` to watch it);
    ``text`` is the file's text when the caller has read it already.
    """
    from framework.sql.environment import environment

    proc = _processor(project, processor)
    if text is None:
        text = read_transform(project, proc)
    sql = _render_text(environment(project.root, dialect), text,
                       globals_ or transform_globals(project, proc, dialect, full_batch)).strip()
    return sql[:-1].rstrip() if sql.endswith(";") else sql


def dialect_free(text: str) -> bool:
    """True if a transform's text differs between dialects only through ``{{ partition }}``
    and ``{{ entity_filter() }}`` (no ``{{ dialect }}``, no other Jinja): its SQL in one
    dialect can then be derived from its parsed tree in another."""
    return not _JINJA.search(_SIMPLE_CALL.sub("", re.sub(r"\{\{\s*partition\s*\}\}", "", text)))


# ----------------------------------------------------------------- statements
def _output(proc: Processor) -> Table:
    if proc.output is None:
        raise ConfigError(f"processor '{proc.name}' has no output table", proc.location, "declare 'output' to render DDL or merge")
    return proc.output


def render_statement(project: Project, processor: Processor | str, kind: str, dialect: str, full_batch: bool = False,
                     grouped: bool = False, returning: Sequence[str] | None = None) -> RenderedSQL:
    """Render one of the processor's statements (``kind`` in :data:`KINDS`) for ``dialect``.

    ``full_batch`` applies to ``merge`` and ``transform`` (no entity filter). ``grouped``
    applies to ``detect``: always aggregate rows per entity first, even for a processor whose
    one input is keyed by its entity (whose default plan joins the rows themselves, and asks
    for this one in the rare case it cannot decide).
    """
    proc = _processor(project, processor)
    if kind in ("transform", "merge"):
        memo = _rendered.memo_for(project)
        if memo is not None:  # keyed by the transform's text: its render holds functions (ref, entity_filter)
            text = read_transform(project, proc)
            ret = None if returning is None else list(returning)
            key = _rendered.call_key("statement", proc.name, kind, dialect, bool(full_batch), text, *([ret] if ret is not None else []))
            found = memo.get(key)
            if found is not None:
                return RenderedSQL(*found)
            out = _render_statement(project, proc, kind, dialect, full_batch, grouped, text, returning)
            memo.put(key, out.sql, out.params)
            return out
    return _render_statement(project, proc, kind, dialect, full_batch, grouped, returning=returning)


def _render_statement(project: Project, proc: Processor, kind: str, dialect: str, full_batch: bool, grouped: bool,
                      text: str | None = None, returning: Sequence[str] | None = None) -> RenderedSQL:
    if kind == "transform":
        return finish_rendered(render_transform(project, proc, dialect, full_batch, text=text), project)
    if kind == "ddl":
        return render_template(project, "ddl.sql.j2", dialect, processor=proc.name, table=_output(proc))
    if kind == "merge":
        out = _output(proc)
        key = project.entity_key(proc)
        full = full_batch or proc.entity is None
        return render_template(
            project, "merge.sql.j2", dialect,
            processor=proc.name, table=out.fqn, columns=list(out.column_names),
            partition_in_output=out.column(project.partition_column) is not None,
            key=key if key and out.column(key) is not None else None,
            transform_sql=render_transform(project, proc, dialect, full, text=text),
            entity_filter=transform_globals(project, proc, dialect, full)["entity_filter"],
            full_batch=full,
            **({"returning": list(returning)} if returning is not None else {}),
        )
    if kind in ("detect", "filter"):
        if not proc.inputs:
            raise ConfigError(f"processor '{proc.name}' has no inputs: nothing to detect changes in", proc.location)
        specs = input_specs(project, proc)
        return render_template(project, f"{kind}.sql.j2", dialect, processor=proc.name, inputs=specs,
                               by_row=not grouped and row_plan_applies(specs))
    raise ConfigError(f"unknown statement kind '{kind}'", hint=f"use one of {', '.join(KINDS)}")


def render_record(project: Project, processor: Processor | str, dialect: str, selective: bool,
                  delete_only: bool = False, ids_param: str = ENTITY_IDS, unknown: bool = False) -> RenderedSQL:
    """The script that stores the processor's current input fingerprints as processed
    (``delete_only``: just forget the state of the partition/selected entities; ``unknown``,
    selective only: record the selected entities with no fingerprint).
    ``ids_param``: the name of the STRING array of selected keys (a script that also binds
    the output's typed ``entity_ids`` passes the state's keys under another name)."""
    proc = _processor(project, processor)
    extra = {"ids_param": ids_param} if ids_param != ENTITY_IDS else {}
    return render_template(project, "record.sql.j2", dialect, processor=proc.name,
                           inputs=input_specs(project, proc), selective=selective, delete_only=delete_only,
                           unknown=unknown, **extra)


def render_state_upgrade(project: Project, dialect: str) -> RenderedSQL:
    """The script that moves format-1 state into the current state table (see
    ``state_upgrade.sql.j2``)."""
    return render_template(project, "state_upgrade.sql.j2", dialect)


def render_state_ddl(project: Project, dialect: str) -> RenderedSQL:
    """DDL of pipectl's own tables: processed fingerprints and change-sets."""
    a = render_template(project, "state_ddl.sql.j2", dialect)
    b = render_template(project, "changeset_ddl.sql.j2", dialect)
    return RenderedSQL(a.sql + "\n" + b.sql, ())


def render_table_ddl(table: Table, dialect: str, project_root: Path | str | None = None) -> str:
    """``CREATE SCHEMA/TABLE IF NOT EXISTS`` for any table (used by warehouses' create_table)."""
    from framework.sql.environment import environment

    env = environment(project_root, dialect)
    return env.get_template("ddl.sql.j2").render(processor=table.fqn, table=table).strip() + "\n"


# ----------------------------------------------------------------- parameters
def query_params(project: Project, names: Sequence[str], partition: Any = None, entity_ids: Iterable[Any] | None = None,
                 entity_type: str = "STRING", **values: Any) -> list:
    """Typed :class:`QueryParam` values for the parameter ``names`` of a rendered statement.

    The partition parameter takes the project's partition type; ``entity_ids`` is an
    ARRAY of ``entity_type`` (the kind's key type for transform/merge/filter, STRING for
    the state table); anything else comes from ``values`` as STRING.
    """
    out = []
    for name in names:
        if name == project.partition_column:
            out.append(QueryParam(name, coerce_value(partition, project.partition_type), project.partition_type))
        elif name == ENTITY_IDS:
            if entity_ids is None:
                raise ConfigError("a selective statement needs entity_ids", hint="pass the change-set's keys, or render a full batch")
            out.append(QueryParam(name, [coerce_value(v, entity_type) for v in entity_ids], entity_type, array=True))
        elif name in values:
            out.append(QueryParam(name, values[name], "STRING"))
        else:
            raise ConfigError(f"no value for query parameter '{name}' of the rendered statement",
                              hint=f"pass {name}=... to query_params (the statement's parameters: {', '.join(names)})")
    return out
