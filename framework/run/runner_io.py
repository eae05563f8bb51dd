"""The runner's side effects, one small function each: warehouse reads and writes, change
detection calls, envelopes. Kept apart from :mod:`framework.run.runner` so the control
flow there reads as the numbered steps of the docstring, and each effect is testable alone.
"""
from __future__ import annotations

import uuid
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from framework.errors import ConfigError, PipectlError
from framework.manifest.model import Processor, Project, Table
from framework.sql.dialects import get_dialect
from framework.orchestrator.gates import count_rows
from framework.run.transform import TransformContext, bind_params, entity_type, partition_param, run_python_transform

STAGE_DATASET = "_pipectl_stage"


class CriticalInputError(PipectlError):
    """A critical input has no rows for the partition (FM 23: never predict from nothing)."""


@dataclass
class EntityDecision:
    """Which entities a run processes. ``full_batch``: the whole partition."""

    full_batch: bool
    entity_ids: list[str] = field(default_factory=list)
    total: int = 0
    fallback_reason: str | None = None
    change_set: Any = None
    # "detection" (or explicit/full), or "change-sets": taken from the upstream runs' entity
    # lists without a detection query (framework.run.candidates); its entities are then
    # recorded with an unknown fingerprint (framework.run.changes.record_processed)
    source: str = "detection"
    # after a selective SQL write: the entities whose output rows changed in a column some
    # consumer reads (None: not measured); downstream runs take this narrower list
    written: list[str] | None = None
    # after a write: how the output partition's row count moved (rows_delta: inserted minus
    # deleted, from RETURNING) or what it is (rows_total: read after a full batch); None: unknown
    rows_delta: int | None = None
    rows_total: int | None = None
    # the write also recorded the fingerprints and the change-set (one script,
    # framework.run.script_write), and after a full batch the partition's entities it left
    recorded: bool = False
    entities_after: list[str] | None = None
    # the processor's data test results, when the write's script ran them (framework.run.data_tests)
    test_results: list[Any] | None = None


# ------------------------------------------------------------------ deciding what to run
def decide_entities(warehouse: Any, project: Project, proc: Processor, request: Any,
                    code_changed: str | None = None) -> EntityDecision:
    """Explicit entities (replay), forced full batch, changed code (every entity, with what
    changed as the reason), or change detection."""
    if request.entities is not None and proc.entity is not None:
        ids = sorted({str(e) for e in request.entities})
        return EntityDecision(False, ids, total=len(ids), fallback_reason=getattr(request, "reason", None))
    if request.full or not proc.inputs:
        return EntityDecision(True, [], fallback_reason="full batch requested" if request.full else "processor has no inputs")
    if code_changed:
        return EntityDecision(True, [], fallback_reason=code_changed)
    from framework.run.changes import detect_changes

    cs = detect_changes(warehouse, project, proc, request.partition)
    if cs.full_batch or proc.entity is None:
        if proc.entity is None and not cs.full_batch and not cs.changed_keys:
            return EntityDecision(False, [], total=cs.total_entities, change_set=cs)
        return EntityDecision(True, [], total=cs.total_entities, fallback_reason=cs.fallback_reason, change_set=cs)
    return EntityDecision(False, sorted(cs.changed_keys), total=cs.total_entities, change_set=cs)


def decide_from_change_sets(warehouse: Any, project: Project, versions: Any, proc: Processor, partition: Any,
                            snapshot: dict[str, Any], sources_announced: bool) -> EntityDecision | None:
    """The run's entities from the entity lists of the upstream runs that rewrote its inputs
    (no detection query), or None when those lists cannot be trusted: detect then."""
    import logging

    from framework.run.candidates import from_change_sets
    from framework.run.changes import ChangeSet, EntityChange

    if versions is None or not proc.inputs:
        return None
    found = from_change_sets(warehouse, project, versions, proc, partition, snapshot, sources_announced)
    if found.ids is None:
        logging.getLogger(__name__).debug("%s: detection needed: %s", proc.name, found.reason)
        return None
    total = max(found.total, len(found.ids))
    cs = ChangeSet(proc.name, partition, proc.entity, [EntityChange(k, "update", None) for k in found.ids], total)
    return EntityDecision(False, list(found.ids), total=total, change_set=cs, source="change-sets")


def check_critical_inputs(warehouse: Any, project: Project, proc: Processor, partition: Any,
                          known_tables: set[str] | None = None, rows: Any = None) -> None:
    """Raise :class:`CriticalInputError` naming every critical input with zero rows.
    ``rows``: the run's counts (:class:`framework.run.row_counts.PartitionRows`): a table it
    knows is not counted again, and the first count of the run counts every such table."""
    from framework.sql.context import input_table

    empty = []
    todo: list[tuple[Any, Table]] = []
    for inp in proc.inputs:
        if inp.critical:
            todo.append((inp, input_table(project, inp)[0]))
    if rows is not None:
        counts = rows.rows_of([t for _, t in todo], partition)
    elif len(todo) > 1 and known_tables is not None and all(t.fqn in known_tables for _, t in todo):
        counts = count_all(warehouse, project, [t for _, t in todo], partition)
    else:
        counts = [count_rows(warehouse, project, t, partition, known_tables) for _, t in todo]
    for (inp, table), n in zip(todo, counts):
        if n == 0:
            empty.append(f"{inp.name} ({table.fqn})")
    if empty:
        raise CriticalInputError(
            f"processor '{proc.name}' refuses to run for {partition}: critical input(s) have no rows: {', '.join(empty)}",
            proc.location, hint="run the upstream processors first, or check the scrapers/landing tables for this date")


def count_all(warehouse: Any, project: Project, tables: Sequence[Table], partition: Any) -> list[int]:
    """Rows of each table (all known to exist) for the partition, in one statement (one plan
    instead of one per table)."""
    pc = project.partition_column
    parts = [f"(SELECT COUNT(*) FROM {t.fqn}" + (f" WHERE {pc} = {_ph(warehouse, pc)}" if t.column(pc) is not None else "")
             + f") AS n{i}" for i, t in enumerate(tables)]
    sql = "SELECT " + ", ".join(parts)
    row = warehouse.query(sql, bind_params(sql, [partition_param(project, partition)], warehouse.dialect))[0]
    return [int(row[f"n{i}"] or 0) for i in range(len(tables))]


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


# ------------------------------------------------------------------ bus
def completion_topic(project: Project, proc: Processor) -> str | None:
    phase = project.phase(proc.phase)
    return phase.transition.completion_topic if phase.transition else None


def task_subscription(project: Project, proc: Processor) -> str:
    assert proc.fanout is not None
    topic = project.topics.get(proc.fanout.task_topic)
    if topic is None or not topic.subscriptions:
        raise ConfigError(f"fan-out of '{proc.name}': task topic '{proc.fanout.task_topic}' has no subscription in topics.yaml",
                          proc.fanout.location, hint="declare a subscription for the workers on that topic")
    return topic.subscriptions[0].name


def task_delivery_limit(project: Project, proc: Processor) -> int:
    """Deliveries the task subscription allows before it dead-letters a task."""
    assert proc.fanout is not None
    topic = project.topics[proc.fanout.task_topic]
    return int(topic.subscriptions[0].max_delivery_attempts)


def completion_envelope(project: Project, proc: Processor, request: Any, res: Any, minimal: bool = False) -> dict[str, Any]:
    """The completion envelope (validated by the orchestrator's schema when it is built)."""
    from framework.orchestrator.envelope import make_envelope

    out = proc.output
    entities: dict[str, list[str]] | None = {}
    if res.status in ("success", "partial") and proc.entity:
        entities = None if res.full_batch else {proc.entity: list(res.entity_ids)}
    elif res.status in ("success", "partial"):
        entities = None
    fields: dict[str, Any] = dict(
        kind="completion", processor_name=proc.name, phase=proc.phase, execution_id=res.run_id,
        correlation_id=res.correlation_id, root_correlation_id=res.correlation_id,
        parent_correlation_id=res.correlation_id if request.parent_id else None,
        parent_execution_id=request.parent_id, trigger_id=request.trigger_id, partition=str(request.partition),
        partition_column=project.partition_column, output_dataset=out.dataset if out else None,
        output_table=out.name if out else None, status=res.status, record_count=int(res.record_count),
        duration_seconds=float(res.duration_seconds), entities_changed=entities,
        # a failure that is not an exception (every fan-out task failed) still needs a type:
        # the schema requires one, and without it the completion itself was rejected
        error_type=(res.error_type or "ProcessorFailed") if res.status == "failed" else None, error_message=res.error,
    )
    metadata = completion_metadata(res) if not minimal else {}
    if getattr(request, "round_processors", None):
        metadata["round_processors"] = sorted(request.round_processors)
    if metadata:
        fields["metadata"] = metadata
    return make_envelope(**fields)


def completion_metadata(res: Any) -> dict[str, Any]:
    return {"mode": "full_batch" if res.full_batch else "incremental", "entities_total": res.entities_total,
            "efficiency_pct": res.efficiency_pct, "fallback_reason": res.fallback_reason,
            "failed_entities": sorted(res.failed_entities), "durations": res.durations}


def completion_message(envelope: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """The message of a completion :func:`completion_envelope` just made (and checked)."""
    from framework.orchestrator.envelope import serialize

    attrs = {"processor": str(envelope.get("processor_name", "")), "status": str(envelope.get("status", "")),
             "correlation_id": str(envelope.get("correlation_id", ""))}
    return serialize(envelope), attrs


def entity_ids_of(iterable: Iterable[Any]) -> list[str]:
    return sorted({str(x) for x in iterable})
