"""The runner's warehouse side, one small function each: output tables, transactions, the
transform's write and what it changed, entity reads and deletes, fingerprints and
change-sets. Kept apart from :mod:`framework.run.runner` so the control flow there reads as
the numbered steps of its docstring, and each effect is testable alone. Deciding what to run
is :mod:`framework.run.decisions`; the completion message is :mod:`framework.run.messages`.
"""
from __future__ import annotations

import uuid
from contextlib import nullcontext
from typing import Any, Iterable, Sequence

from framework.errors import ConfigError
from framework.manifest.model import Processor, Project, Table
from framework.sql.dialects import get_dialect
from framework.run.decisions import EntityDecision
from framework.run.transform import TransformContext, bind_params, entity_type, partition_param, run_python_transform

STAGE_DATASET = "_pipectl_stage"


# ------------------------------------------------------------------ writing
def transactional(warehouse: Any) -> bool:
    """Whether the warehouse offers ``transaction()`` (an optional capability: DuckDB has it)."""
    return callable(getattr(warehouse, "transaction", None))


def transaction(warehouse: Any) -> Any:
    """The warehouse's ``transaction()`` context, else a no-op one: each call then commits
    on its own, as before."""
    return warehouse.transaction() if transactional(warehouse) else nullcontext()


def ensure_table(warehouse: Any, table: Table) -> None:
    if warehouse.table_schema(table.fqn) is None:
        warehouse.create_dataset(table.dataset)
        warehouse.create_table(table)


def list_catalog(warehouse: Any, datasets: Iterable[str]) -> dict[str, set[str]]:
    """The tables of ``datasets``: one catalog query where the warehouse lists several
    datasets at once (DuckDB's ``list_tables_in``), else one listing each."""
    names = list(dict.fromkeys(datasets))
    many = getattr(warehouse, "list_tables_in", None)
    if callable(many) and names:
        return {d: set(tables) for d, tables in many(names).items()}
    return {d: set(warehouse.list_tables(d)) for d in names}


def ensure_tables(warehouse: Any, tables: Iterable[Table], created: set[str] | None = None,
                  catalog: dict[str, set[str]] | None = None) -> set[str]:
    """Create the missing ones (from ``catalog``, else one listing of their datasets); returns
    every fqn ensured and adds those it had to create to ``created`` (an output table found
    missing: dropped, or a new warehouse; its processor must rebuild it, whatever the state
    store says)."""
    by_dataset: dict[str, list[Table]] = {}
    for t in tables:
        by_dataset.setdefault(t.dataset, []).append(t)
    if catalog is None or not set(by_dataset) <= set(catalog):
        catalog = list_catalog(warehouse, by_dataset)
    done: set[str] = set()
    for dataset, group in by_dataset.items():
        existing = catalog.get(dataset, set())
        for t in group:
            if t.name not in existing:
                warehouse.create_dataset(dataset)
                warehouse.create_table(t)
                if created is not None:
                    created.add(t.fqn)
            done.add(t.fqn)
    return done


def _ph(warehouse: Any, name: str) -> str:
    return get_dialect(warehouse.dialect).param(name)


def merge_params(warehouse: Any, project: Project, proc: Processor, rendered: Any, partition: Any,
                  entity_ids: Sequence[str] | None, run_id: str) -> list:
    from framework.sql.render import query_params

    return query_params(project, rendered.params, partition, entity_ids, entity_type(project, proc),
                        processor=proc.name, run_id=run_id)


def transform_and_write(warehouse: Any, project: Project, proc: Processor, partition: Any,
                        entity_ids: Sequence[str] | None, run_id: str, count: bool = True,
                        decision: EntityDecision | None = None) -> int:
    """Replace the output rows of (partition, entities) with the transform's rows, in one
    script (one transaction), and return how many rows the entities now have (``count=False``:
    return 0 and skip that query; a fan-out counts all its entities once at the end instead
    of one query per task). A run whose entities came from upstream change-sets counts per
    entity (the same one query): an entity left without rows is a ``delete`` in its change-set."""
    if proc.output is None:
        if proc.transform.python:  # a side-effect transform (an export): it writes elsewhere
            ctx = TransformContext(warehouse, project, proc, partition, None if entity_ids is None else tuple(entity_ids))
            return len(run_python_transform(ctx))
        raise ConfigError(f"processor '{proc.name}' has no output table to write", proc.location,
                          hint="declare 'output', or make it a Python transform that writes its own artifact")
    full = entity_ids is None
    if proc.transform.python:
        _write_python(warehouse, project, proc, partition, entity_ids, run_id)
    else:
        from framework.sql.render import render_statement

        keyed = entity_ids is not None and proc.output.column(project.entity_key(proc) or "") is not None
        columns = consumer_columns(project, proc) if keyed and count and decision is not None else None
        if keyed and count and get_dialect(warehouse.dialect).returning:
            written = _write_returning(warehouse, project, proc, partition, list(entity_ids or ()), run_id, columns)
            if written is not None:
                before, after, delta = written
                if decision is not None:
                    decision.rows_delta = delta
                    if columns is not None:
                        note_written(decision, before, after)
                return sum(n for n, _ in after.values())
            # the project's merge template returns no rows: its output is read after the write
            return count_entity_rows(warehouse, project, proc, partition, entity_ids)
        rendered = render_statement(project, proc, "merge", warehouse.dialect, full_batch=full)
        before = None
        if columns is not None:
            from framework.run.candidates import output_fingerprints

            before = output_fingerprints(warehouse, project, proc, partition, list(entity_ids or ()), columns)
        warehouse.execute_script(rendered.sql, merge_params(warehouse, project, proc, rendered, partition, entity_ids, run_id))
        if before is not None and decision is not None:
            after = output_fingerprints(warehouse, project, proc, partition, list(entity_ids or ()), columns or ())
            note_written(decision, before, after)
            return sum(n for n, _ in after.values())
    if not count:
        return 0
    n = count_entity_rows(warehouse, project, proc, partition, entity_ids)
    if entity_ids is None and decision is not None and not proc.transform.python:
        decision.rows_total = n  # the partition's rows after a full batch
    return n


def _write_returning(warehouse: Any, project: Project, proc: Processor, partition: Any, entity_ids: list[str],
                     run_id: str, columns: Sequence[str] | None) -> tuple[dict[str, Any], dict[str, Any], int] | None:
    """A selective write whose DELETE and INSERT return their rows (``RETURNING``: each row's
    entity key, the hash of ``columns``, its partition): per entity, (rows, sum of the row
    hashes) removed and added, with no read of the output before or after the write. The
    rows of (partition, entities) before the write are exactly those it deleted, and after it
    those it inserted into that slice, so this is what reading the output twice measured.
    None when the merge template (a project's override) returns no such rows: the write ran,
    what it changed was not measured."""
    from framework.sql.render import render_statement

    assert proc.output is not None
    rendered = render_statement(project, proc, "merge", warehouse.dialect, full_batch=False, returning=list(columns or ()))
    results = warehouse.execute_script(rendered.sql, merge_params(warehouse, project, proc, rendered, partition,
                                                                    entity_ids, run_id))
    if not isinstance(results, list) or len(results) != 2 or any(r and "_pipectl_hash" not in r[0] for r in results):
        return None
    wanted = {str(e) for e in entity_ids}
    part = partition_param(project, partition).value if proc.output.column(project.partition_column) is not None else None
    before, after = _per_entity(results[0], None, None), _per_entity(results[1], wanted, part)
    inserted = sum(1 for r in results[1] if _in_partition(r, part))
    return before, after, inserted - len(results[0])


def _in_partition(row: dict[str, Any], partition: Any) -> bool:
    value = row["_pipectl_partition"]
    return partition is None or value == partition or str(value) == str(partition)


def _per_entity(rows: list[dict[str, Any]], wanted: set[str] | None, partition: Any) -> dict[str, tuple[int, int]]:
    """(row count, exact sum of row hashes) per entity of returned rows; ``wanted``/``partition``:
    keep only the rows of that slice (an INSERT's rows outside it are not the entities')."""
    out: dict[str, tuple[int, int]] = {}
    for r in rows:
        key = r["_pipectl_key"]
        if key is None or (wanted is not None and key not in wanted):
            continue
        if not _in_partition(r, partition):
            continue
        n, h = out.get(key, (0, 0))
        out[key] = (n + 1, h + int(r["_pipectl_hash"]))
    return out


_CONSUMERS: dict[tuple[int, str], tuple[str, ...] | None] = {}


def consumer_columns(project: Project, proc: Processor) -> tuple[str, ...] | None:
    """:func:`framework.run.candidates.consumer_columns`, once per project and processor."""
    key = (id(project), proc.name)
    if key not in _CONSUMERS:
        from framework.run.candidates import consumer_columns as columns

        _CONSUMERS[key] = columns(project, proc)
    return _CONSUMERS[key]


def note_written(decision: EntityDecision, before: dict[str, Any], after: dict[str, Any]) -> None:
    """Which entities' output changed (for downstream), and, for a run that took its entities
    from change-sets, each one's operation as its output shows it: insert (no rows before),
    delete (no rows after), else update."""
    from framework.run.changes import EntityChange

    decision.written = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k)
                              and k in set(decision.entity_ids))
    if decision.source == "change-sets" and decision.change_set is not None:
        decision.change_set.changes = [
            EntityChange(c.key, "delete" if c.key not in after else "insert" if c.key not in before else "update", None)
            for c in decision.change_set.changes]


def _write_python(warehouse: Any, project: Project, proc: Processor, partition: Any,
                  entity_ids: Sequence[str] | None, run_id: str) -> None:
    """Python rows go through a stage table so the visible write is still one transaction."""
    from framework.sql.render import RenderedSQL, finish_rendered, render_template

    assert proc.output is not None
    ctx = TransformContext(warehouse, project, proc, partition, None if entity_ids is None else tuple(entity_ids))
    rows = run_python_transform(ctx)
    key = project.entity_key(proc)
    if entity_ids is not None and key:
        wanted = set(map(str, entity_ids))
        rows = [r for r in rows if str(r.get(key)) in wanted]
    stage = Table(STAGE_DATASET, f"{proc.name}_{run_id}_{uuid.uuid4().hex[:6]}", proc.output.columns)
    warehouse.create_dataset(STAGE_DATASET)
    warehouse.create_table(stage)
    try:
        if rows:
            warehouse.insert_rows(stage.fqn, rows)
        full = entity_ids is None or proc.entity is None
        cols = ", ".join(proc.output.column_names)
        rendered: RenderedSQL = render_template(
            project, "merge.sql.j2", warehouse.dialect, processor=proc.name, table=proc.output.fqn,
            columns=list(proc.output.column_names),
            partition_in_output=proc.output.column(project.partition_column) is not None,
            key=key if key and proc.output.column(key) is not None else None,
            transform_sql=f"SELECT {cols} FROM {stage.fqn}",
            entity_filter=lambda column: "TRUE" if full else get_dialect(warehouse.dialect).in_array(column, "entity_ids"),
            full_batch=full)
        rendered = finish_rendered(rendered.sql, project)
        warehouse.execute_script(rendered.sql, merge_params(warehouse, project, proc, rendered, partition, entity_ids, run_id))
    finally:
        warehouse.query(f"DROP TABLE IF EXISTS {stage.fqn}")


def count_entity_rows(warehouse: Any, project: Project, proc: Processor, partition: Any,
                      entity_ids: Sequence[str] | None) -> int:
    assert proc.output is not None
    pc, key = project.partition_column, project.entity_key(proc)
    where, params = [], []
    if proc.output.column(pc) is not None:
        where.append(f"{pc} = {_ph(warehouse, pc)}")
        params.append(partition_param(project, partition))
    if entity_ids is not None and key:
        from framework.backends.protocols import QueryParam

        where.append(get_dialect(warehouse.dialect).in_array(key, "entity_ids"))
        params.append(QueryParam("entity_ids", list(entity_ids), entity_type(project, proc), array=True))
    sql = f"SELECT COUNT(*) AS n FROM {proc.output.fqn}" + (" WHERE " + " AND ".join(where) if where else "")
    return int(warehouse.query(sql, params)[0]["n"])


def partition_entities(warehouse: Any, project: Project, proc: Processor, partition: Any) -> list[str]:
    """Distinct entity keys of the processor's output for the partition (after a full batch)."""
    key = project.entity_key(proc)
    if proc.output is None or not key or proc.output.column(key) is None:
        return []
    pc = project.partition_column
    if proc.output.column(pc) is None:
        rows = warehouse.query(f"SELECT DISTINCT {key} AS k FROM {proc.output.fqn} ORDER BY 1")
    else:
        rows = warehouse.query(f"SELECT DISTINCT {key} AS k FROM {proc.output.fqn} WHERE {pc} = {_ph(warehouse, pc)} ORDER BY 1",
                               [partition_param(project, partition)])
    return [str(r["k"]) for r in rows if r["k"] is not None]


def transform_entities(warehouse: Any, project: Project, proc: Processor, partition: Any,
                       entity_ids: Sequence[str] | None = None) -> list[str]:
    """Entities the transform produces for the partition (of ``entity_ids`` only, when
    given): the fan-out coordinator's task list. An incremental run passes its changed ids
    through the same filters as the full batch, so it never runs more tasks than the full
    batch would (a player without a line gets no prediction task in either)."""
    from framework.sql.render import query_params, render_statement

    key = project.entity_key(proc)
    ids = None if entity_ids is None else tuple(str(e) for e in entity_ids)
    if proc.transform.python:
        rows = run_python_transform(TransformContext(warehouse, project, proc, partition, ids))
        wanted = None if ids is None else set(ids)
        return sorted({str(r[key]) for r in rows if r.get(key) is not None and (wanted is None or str(r[key]) in wanted)})
    rendered = render_statement(project, proc, "transform", warehouse.dialect, full_batch=ids is None)
    sql = f"SELECT DISTINCT t.{key} AS k FROM ({rendered.sql.strip()}) AS t ORDER BY 1"
    params = query_params(project, rendered.params, partition, list(ids) if ids is not None else None,
                          entity_type(project, proc))
    rows = warehouse.query(sql, bind_params(sql, params, warehouse.dialect))
    return [str(r["k"]) for r in rows if r["k"] is not None]


def delete_entities(warehouse: Any, project: Project, proc: Processor, partition: Any, ids: Sequence[str]) -> None:
    """Drop the partition's rows of ``ids`` (entities the transform no longer produces)."""
    from framework.backends.protocols import QueryParam

    assert proc.output is not None
    if not ids:
        return
    key, pc = project.entity_key(proc), project.partition_column
    params = [partition_param(project, partition), QueryParam("drop_ids", list(ids), entity_type(project, proc), array=True)]
    where = f"{pc} = {_ph(warehouse, pc)} AND " if proc.output.column(pc) is not None else ""
    sql = f"DELETE FROM {proc.output.fqn} WHERE {where}{get_dialect(warehouse.dialect).in_array(key, 'drop_ids')}"
    warehouse.execute_script(sql, bind_params(sql, params, warehouse.dialect))


def delete_except(warehouse: Any, project: Project, proc: Processor, partition: Any, keep: Sequence[str]) -> None:
    """Full-batch fan-out: drop the partition's rows of entities that no longer exist."""
    from framework.backends.protocols import QueryParam

    assert proc.output is not None
    key, pc = project.entity_key(proc), project.partition_column
    params = [partition_param(project, partition), QueryParam("keep_ids", list(keep) or [""], entity_type(project, proc), array=True)]
    where = f"{pc} = {_ph(warehouse, pc)} AND " if proc.output.column(pc) is not None else ""
    sql = f"DELETE FROM {proc.output.fqn} WHERE {where}{key} NOT IN (SELECT UNNEST({_ph(warehouse, 'keep_ids')}))"
    warehouse.execute_script(sql, bind_params(sql, params, warehouse.dialect))


def record_processed_and_changes(warehouse: Any, project: Project, proc: Processor, partition: Any, run_id: str,
                                 entity_ids: Sequence[str] | None, decision: EntityDecision, correlation_id: str,
                                 skip: set[str] | None = None) -> None:
    """Remember what was processed (so the next detection sees no change) and store the
    change-set. Entities whose fan-out task failed are not recorded: they are detected again.
    Nothing to do when the write's own script recorded both (``decision.recorded``)."""
    if not proc.inputs or decision.recorded:
        return
    from framework.run.changes import record_change_set, record_processed

    if skip and entity_ids is None:
        keys = [e for e in partition_entities(warehouse, project, proc, partition) if e not in skip]
        record_processed(warehouse, project, proc, partition, run_id, keys)
    else:
        keys = None if entity_ids is None else [str(e) for e in entity_ids]
        detected = decision.change_set if decision.source == "detection" else None
        record_processed(warehouse, project, proc, partition, run_id, keys, change_set=detected_for(detected, keys),
                         unknown=decision.source == "change-sets")
    if decision.change_set is not None:
        record_change_set(warehouse, project, decision.change_set, run_id, correlation_id)


def detected_for(change_set: Any, keys: list[str] | None) -> Any:
    """The change-set whose fingerprints may be recorded for ``keys``: only when every key
    came from that detection (not forced with --entities). Recording what detection saw,
    rather than re-reading inputs, keeps an input change that landed during the transform
    pending for the next run instead of marking it processed unseen."""
    if change_set is None or change_set.full_batch or keys is None:
        return None
    return change_set if set(keys) <= set(change_set.changed_keys) else None


def entity_ids_of(iterable: Iterable[Any]) -> list[str]:
    return sorted({str(x) for x in iterable})
