"""Which entities a processor must run for, taken from the upstream runs' entity lists.

Change detection (:mod:`framework.run.changes`) finds the changed entities with one query
over every input of the partition. On DuckDB at a few hundred entities that query costs as
much as the processor's whole full batch (planning a many-input statement is the cost,
whatever its size), and in an incremental round the answer is already known: each upstream
run that rewrote an input wrote the rows of the entities of its change-set, no others, and
the input-version records (:mod:`framework.run.input_versions`) say which runs rewrote what
since the processor last processed everything, each with its entity list.

:func:`from_change_sets` turns those lists into the processor's candidate entities:

* an input keyed by the processor's own entity key (``scope: entity``) contributes the
  writer's entities as they are;
* an input of another kind (``scope: mapped``) contributes the entities its rewritten keys
  map to through the declared entity mapping, read at the partition: one small query for
  all such inputs of the processor;
* a rewritten mapping table contributes the entities whose pairs it rewrote, when the
  mapping's target column is its writer's own key (a roster keyed by player, mapping team
  -> player); otherwise the entities it mapped *before* the write are unknown.

It answers "detect" (a reason, never a silent skip) whenever the lists cannot be trusted to
cover every change: no complete earlier run of the processor, a landing source changed or
may have (a source carries no entity list), a writer that ran a full batch or kept no list,
a rewritten input read by a key expression or without a key, a mapping table rewritten with
the wrong key, or a table no declared processor writes. Candidates may include entities
whose rows did not actually change (an upstream run rewrote them identically): they are
processed once more, which costs a little work and never a wrong row.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from framework.manifest.model import Processor, Project


@dataclass(frozen=True)
class Candidates:
    """``ids``: the entities to process (None: run detection, ``reason`` says why);
    ``total``: the partition's entities when the processor last counted them;
    ``rewritten``: the upstream processors whose writes gave the ids."""

    ids: list[str] | None
    reason: str | None = None
    total: int = 0
    rewritten: tuple[str, ...] = field(default_factory=tuple)


def _detect(reason: str) -> Candidates:
    return Candidates(None, reason)


def from_change_sets(warehouse: Any, project: Project, versions: Any, proc: Processor, partition: Any,
                     snapshot: dict[str, Any], sources_announced: bool) -> Candidates:
    """The entities ``proc`` must process for ``partition``, from the entity lists of the
    runs that rewrote its inputs since its last complete run (``snapshot``: the current
    versions of what it reads, taken before anything is read)."""
    from framework.sql.context import input_specs

    if proc.entity is None or not proc.change_detection.enabled:
        return _detect("no entity kind or change detection disabled")
    deps = versions.deps(proc)
    if not deps.exact:
        return _detect("it reads a table that no declared processor writes per partition")
    if deps.sources and not sources_announced:
        return _detect("its landing sources may have changed (the trigger did not say which)")
    own = versions.last_run(proc, partition) or {}
    seen = own.get("seen")
    if not seen or set(seen) != set(snapshot):
        return _detect("no complete earlier run recorded what it read")
    changed = sorted(k for k, v in snapshot.items() if seen.get(k) != v)
    sources = [k.split(":", 1)[1] for k in changed if k.startswith("source:")]
    if sources:
        return _detect(f"landing source(s) {', '.join(sources)} changed (a source carries no entity list)")
    written: dict[str, list[str]] = {}
    for name in changed:
        ids = versions.written_since(name, partition, seen.get(name))
        if ids is None:
            return _detect(f"input '{name}' was rewritten by a full batch or a run whose entity list was not kept")
        written[name] = ids
    producer = {p.output.fqn: n for n, p in project.processors.items() if p.output is not None}
    found: set[str] = set()
    lookups: list[tuple[Any, list[str]]] = []
    for spec in input_specs(project, proc):
        writer = producer.get(spec.table)
        if writer in written:
            writer_key = project.entity_key(project.processors[writer])
            if spec.key_sql or spec.key is None or spec.key != writer_key:
                return _detect(f"input '{spec.name}' was rewritten and is read {_how(spec)}: "
                               f"its rows cannot be told apart by the writer's entities")
            if spec.scope == "entity":
                found.update(written[writer])
            elif written[writer]:
                lookups.append((spec, written[writer]))
        mapper = producer.get(spec.mapping_table) if spec.mapping_table else None
        if mapper in written:
            if spec.mapping_to != project.entity_key(project.processors[mapper]):
                return _detect(f"mapping table {spec.mapping_table} of input '{spec.name}' was rewritten: "
                               f"the entities it mapped before the write are unknown")
            found.update(written[mapper])
    if lookups:
        found.update(_mapped(warehouse, project, proc, partition, lookups))
    return Candidates(sorted(found), None, int(own.get("total") or 0), tuple(sorted(written)))


def _how(spec: Any) -> str:
    if spec.key_sql:
        return f"through the key expression {spec.key_sql}"
    if spec.key is None:
        return "without an entity key"
    return f"by its column {spec.key}"


def _mapped(warehouse: Any, project: Project, proc: Processor, partition: Any,
            lookups: Sequence[tuple[Any, list[str]]]) -> list[str]:
    """The entities the rewritten keys of mapped inputs map to at the partition: one query
    for every mapped input of the processor (values travel as array parameters)."""
    from framework.backends.protocols import QueryParam
    from framework.run.transform import bind_params, partition_param
    from framework.sql.dialects import get_dialect

    dialect = get_dialect(warehouse.dialect)
    pc = project.partition_column
    parts, params = [], [partition_param(project, partition)]
    for i, (spec, ids) in enumerate(lookups):
        where = [dialect.in_array(f"CAST(m.{spec.mapping_from} AS STRING)", f"mapped_{i}")]
        if spec.mapping_partitioned:
            where.insert(0, f"m.{pc} = {dialect.param(pc)}")
        parts.append(f"SELECT DISTINCT CAST(m.{spec.mapping_to} AS STRING) AS k FROM {spec.mapping_table} AS m "
                     f"WHERE {' AND '.join(where)}")
        params.append(QueryParam(f"mapped_{i}", list(ids), "STRING", array=True))
    sql = f"-- entities mapped from rewritten inputs of {proc.name}\n" + "\nUNION DISTINCT\n".join(parts)
    rows = warehouse.query(sql, bind_params(sql, params, warehouse.dialect),
                           labels={"pipectl_processor": proc.name, "pipectl_job": "candidates"})
    return [str(r["k"]) for r in rows if r["k"] is not None]


# ------------------------------------------------------------------ what a write changed
def consumer_columns(project: Project, proc: Processor) -> tuple[str, ...] | None:
    """The columns of ``proc``'s output that some processor compares or maps by (its
    detection reads them); None when no processor reads the output (nothing to narrow)."""
    from framework.sql.context import input_specs

    if proc.output is None:
        return None
    cols: list[str] = []
    read = False
    for other in project.processors.values():
        if not other.inputs:
            continue
        for spec in input_specs(project, other):
            if spec.table == proc.output.fqn:
                read = True
                cols += [*spec.row_columns, *([spec.key] if spec.key else [])]
            if spec.mapping_table == proc.output.fqn:
                read = True
                cols += [spec.mapping_from or "", spec.mapping_to or ""]
    names = set(proc.output.column_names)
    return tuple(sorted({c for c in cols if c in names})) if read else None


def output_fingerprints(warehouse: Any, project: Project, proc: Processor, partition: Any,
                        entity_ids: Sequence[str], columns: Sequence[str]) -> dict[str, tuple[int, str]]:
    """Per entity of ``entity_ids`` with rows: (row count, fingerprint of ``columns``)."""
    from framework.sql.render import query_params, render_template
    from framework.run.transform import entity_type

    assert proc.output is not None
    rendered = render_template(project, "output_fingerprints.sql.j2", warehouse.dialect, processor=proc.name,
                               table=proc.output.fqn, key=project.entity_key(proc), columns=list(columns),
                               partition_in_output=proc.output.column(project.partition_column) is not None)
    params = query_params(project, rendered.params, partition, list(entity_ids), entity_type(project, proc))
    rows = warehouse.query(rendered.sql, params, labels={"pipectl_processor": proc.name, "pipectl_job": "output"})
    return {str(r["entity_key"]): (int(r["row_count"]), str(r["fingerprint"])) for r in rows}


__all__ = ["Candidates", "from_change_sets", "consumer_columns", "output_fingerprints"]
