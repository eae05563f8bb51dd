"""What a processor run processes: explicit entities, a full batch, the entity lists of
upstream change-sets, or change detection; and the critical-input gate that refuses a run
over empty inputs (FM 23). Split from :mod:`framework.run.runner_io` so deciding *what* to
run is read and tested apart from the writes that follow.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from framework.errors import PipectlError
from framework.manifest.model import Processor, Project, Table
from framework.orchestrator.gates import count_rows
from framework.run.transform import bind_params, partition_param
from framework.sql.dialects import get_dialect


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
    parts = [f"(SELECT COUNT(*) FROM {t.fqn}" + (f" WHERE {pc} = {get_dialect(warehouse.dialect).param(pc)}" if t.column(pc) is not None else "")
             + f") AS n{i}" for i, t in enumerate(tables)]
    sql = "SELECT " + ", ".join(parts)
    row = warehouse.query(sql, bind_params(sql, [partition_param(project, partition)], warehouse.dialect))[0]
    return [int(row[f"n{i}"] or 0) for i in range(len(tables))]
