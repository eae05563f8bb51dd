"""Change detection and change-sets: reprocess only the entities whose inputs changed.

For a processor P and a partition D, :func:`detect_changes` renders ``detect.sql.j2``,
which fingerprints every entity of D now (one number over all of P's inputs) and compares
it with the fingerprint P recorded when it last processed D (``_pipectl.entity_fingerprints``,
state format 2) in one hash join. The result is a
:class:`ChangeSet` of inserted, updated and deleted entities. After a successful run the
runner calls :func:`record_processed`, so the next detection sees no change, and
:func:`record_change_set` to keep a queryable history in ``_pipectl.change_sets``.

Never silent: when detection cannot run (missing table, query error, disabled detection,
an input without entity key that changed) the change-set is a full batch and
``fallback_reason`` says why; a warning is logged too.
"""
from __future__ import annotations

import datetime as _dt
import logging
import weakref
from dataclasses import dataclass, field
from typing import Any

from framework.errors import BackendError, ConfigError
from framework.manifest.model import Processor, Project
from framework.sql.context import (PARTITION_SENTINEL, STATE_FORMAT, changeset_table, input_specs, legacy_state_table,
                                   state_table)
from framework.sql.dialects import get_dialect

log = logging.getLogger(__name__)
OPERATIONS = ("insert", "update", "delete")
_ready: "weakref.WeakSet[Any]" = weakref.WeakSet()


@dataclass(frozen=True)
class EntityChange:
    """One changed entity: ``operation`` is insert | update | delete; ``fingerprint`` is the
    entity's current fingerprint over all inputs (an INT64, state format 2), None for deletes."""

    key: str
    operation: str
    fingerprint: int | None


@dataclass
class ChangeSet:
    """What a processor must (re)process for one partition, and the statistics of the run.

    ``full_batch`` means: process every entity of the partition (no entity filter).
    ``fallback_reason`` says why a full batch replaced selective processing (None when
    the processor simply has no entity kind and something changed).
    """

    processor: str
    partition: Any
    entity_kind: str | None
    changes: list[EntityChange] = field(default_factory=list)
    total_entities: int = 0
    full_batch: bool = False
    fallback_reason: str | None = None

    @property
    def changed_keys(self) -> list[str]:
        return [c.key for c in self.changes]

    @property
    def has_work(self) -> bool:
        """False when nothing changed: the run can be skipped."""
        return self.full_batch or bool(self.changes)

    def count(self, operation: str) -> int:
        return sum(1 for c in self.changes if c.operation == operation)

    @property
    def skipped(self) -> int:
        """Entities present now that need no processing."""
        if self.full_batch:
            return 0
        live = sum(1 for c in self.changes if c.operation != "delete")
        return max(self.total_entities - live, 0)

    @property
    def efficiency_pct(self) -> float:
        """Share of the partition's entities skipped (0.0 for full batches and empty partitions)."""
        if not self.total_entities:
            return 0.0
        return 100.0 * self.skipped / self.total_entities

    def to_dict(self) -> dict[str, Any]:
        return {
            "processor": self.processor,
            "partition": partition_key_of(self.partition),
            "entity_kind": self.entity_kind,
            "full_batch": self.full_batch,
            "fallback_reason": self.fallback_reason,
            "total_entities": self.total_entities,
            "changed": len(self.changes),
            "inserted": self.count("insert"),
            "updated": self.count("update"),
            "deleted": self.count("delete"),
            "skipped": self.skipped,
            "efficiency_pct": self.efficiency_pct,
            "changes": [{"key": c.key, "operation": c.operation, "fingerprint": c.fingerprint} for c in self.changes],
        }


def partition_key_of(partition: Any) -> str:
    return partition.isoformat() if hasattr(partition, "isoformat") else str(partition)


def _resolve(project: Project, processor: Processor | str) -> Processor:
    if isinstance(processor, Processor):
        return processor
    found = project.resolve_processor(processor)
    if found is None:
        raise ConfigError(f"unknown processor '{processor}'", hint="see `pipectl ls`")
    return found


def state_dataset(project: Project) -> str:
    """The dataset of pipectl's state tables (``_pipectl`` under the target's prefix)."""
    return state_table(project).split(".", 1)[0]


def ensure_state_tables(warehouse: Any, project: Project, present: set[str] | None = None) -> None:
    """Create ``_pipectl.entity_fingerprints`` and ``_pipectl.change_sets`` if missing, and
    upgrade state of an older format (once per warehouse object: one catalog listing, and
    DDL only when a table is missing). ``present``: the state dataset's tables, listed by the
    caller's own catalog query (then no listing here)."""
    try:
        if warehouse in _ready:
            return
    except TypeError:  # not weak-referenceable: just check every time
        pass
    from framework.sql.render import render_state_ddl

    if present is None:
        present = set(warehouse.list_tables(state_dataset(project)))
    wanted = {state_table(project).split(".", 1)[1], changeset_table(project).split(".", 1)[1]}
    if not wanted <= present:
        warehouse.execute_script(render_state_ddl(project, warehouse.dialect).sql)
    if legacy_state_table(project).split(".", 1)[1] in present:
        upgrade_state(warehouse, project)
    try:
        _ready.add(warehouse)
    except TypeError:
        pass


def note_state_listed(warehouse: Any, project: Project, present: set[str]) -> None:
    """The caller's catalog query listed the state dataset (``present``): when both state
    tables exist and no older-format table is left, they are ready for this warehouse (no
    listing, no DDL later); otherwise the first detection or record creates or upgrades them."""
    wanted = {state_table(project).split(".", 1)[1], changeset_table(project).split(".", 1)[1]}
    if wanted <= present and legacy_state_table(project).split(".", 1)[1] not in present:
        try:
            _ready.add(warehouse)
        except TypeError:  # not weak-referenceable: checked when used
            pass


def upgrade_state(warehouse: Any, project: Project) -> None:
    """Move format-1 state (``_pipectl.processed_fingerprints``, one string fingerprint per
    input) into the current table and drop the old one. Its fingerprints cannot be
    converted, so each (processor, partition) it held is reprocessed in full once, at its
    next detection (which logs it); its entities are kept so that those of them that
    vanished meanwhile are still deleted downstream."""
    from framework.sql.render import render_state_upgrade

    legacy = legacy_state_table(project)
    log.warning("upgrading pipectl's change-detection state: %s (state format 1) -> %s (format %d); fingerprints "
                "of format 1 cannot be converted, so each processor reprocesses each partition it had processed "
                "in full once, at its next run", legacy, state_table(project), STATE_FORMAT)
    warehouse.execute_script(render_state_upgrade(project, warehouse.dialect).sql,
                             labels={"pipectl_job": "state_upgrade"})


def _fallback(proc: Processor, partition: Any, reason: str) -> ChangeSet:
    # disabled on purpose in the manifest: say so quietly; any other fallback is a warning
    level = logging.INFO if not proc.change_detection.enabled else logging.WARNING
    log.log(level, "change detection for %s at %s: full batch: %s", proc.name, partition_key_of(partition), reason)
    return ChangeSet(proc.name, partition, proc.entity, [], 0, True, reason)


def detect_changes(warehouse: Any, project: Project, processor: Processor | str, partition: Any) -> ChangeSet:
    """The entities of ``partition`` whose inputs changed since ``processor`` last processed it.

    Never raises for detection problems: those give a full batch with ``fallback_reason``.
    """
    from framework.sql.render import template_errors

    proc = _resolve(project, processor)
    if not proc.change_detection.enabled:
        return _fallback(proc, partition, f"change detection is disabled for '{proc.name}' (change_detection.enabled: false)")
    if not proc.inputs:
        return _fallback(proc, partition, f"'{proc.name}' declares no inputs to compare")
    try:
        ensure_state_tables(warehouse, project)
        rows, by_row = _detect_rows(warehouse, project, proc, partition, grouped=False)
        if by_row and _undecided(rows):
            log.info("change detection for %s at %s: an entity of one row gained rows; rerunning with the grouped plan",
                     proc.name, partition_key_of(partition))
            rows, by_row = _detect_rows(warehouse, project, proc, partition, grouped=True)
    except (BackendError, ConfigError, *template_errors()) as exc:
        return _fallback(proc, partition, f"detection query failed: {exc}")
    return _change_set(project, proc, partition, rows)


def _detect_rows(warehouse: Any, project: Project, proc: Processor, partition: Any, grouped: bool) -> tuple[list[dict[str, Any]], bool]:
    """The detection query's rows, and whether it used the row plan (detect.sql.j2)."""
    from framework.sql.render import query_params, render_statement

    rendered = render_statement(project, proc, "detect", warehouse.dialect, grouped=grouped)
    params = query_params(project, rendered.params, partition, processor=proc.name)
    rows = warehouse.query(rendered.sql, params, labels={"pipectl_processor": proc.name, "pipectl_job": "detect"})
    return rows, any(r["operation"] == "previous" for r in rows)


def _undecided(rows: list[dict[str, Any]]) -> bool:
    """Whether the row plan met the one case it cannot decide (an entity of one row that
    gained rows while keeping the old one): then a state row was counted more than once, and
    the state rows the result accounts for outnumber the state's rows."""
    previous = sum(int(r["entities"] or 0) for r in rows if r["operation"] == "previous")
    matched = sum(int(r["previous_rows"] or 0) for r in rows if r["operation"] != "previous")
    return matched > previous


def _change_set(project: Project, proc: Processor, partition: Any, rows: list[dict[str, Any]]) -> ChangeSet:
    total = 0
    legacy = False
    changes: list[EntityChange] = []
    for row in rows:
        if row["operation"] == "previous":
            continue
        total += int(row["entities"] or 0)
        if row["state_format"] is not None and int(row["state_format"]) != STATE_FORMAT:
            legacy = True
        if row["entity_key"] is not None:
            fp = row["fingerprint"]
            changes.append(EntityChange(str(row["entity_key"]), row["operation"], None if fp is None else int(fp)))
    changes.sort(key=lambda c: c.key)
    if legacy:
        # state written before an upgrade of pipectl's state format: its fingerprints
        # cannot be compared, so the partition is reprocessed in full once (and recorded anew)
        reason = (f"the fingerprints '{proc.name}' recorded for this partition are of an older state format "
                  f"(pipectl was upgraded): one full reprocess, then incremental again")
        log.warning("change detection for %s at %s: full batch: %s", proc.name, partition_key_of(partition), reason)
        return ChangeSet(proc.name, partition, proc.entity, [c for c in changes if c.key != PARTITION_SENTINEL],
                         total if proc.entity is not None else 1, True, reason)
    partition_changed = [c for c in changes if c.key == PARTITION_SENTINEL]
    if proc.entity is None:
        # no entity kind: any change means one full run of the partition
        return ChangeSet(proc.name, partition, None, changes, 1 if total or changes else 0, bool(changes), None)
    if partition_changed:
        keyless = [s.name for s in input_specs(project, proc) if s.scope == "partition"]
        key = project.entity_key(proc)
        reason = (f"input(s) {', '.join(keyless)} of '{proc.name}' carry no '{key}' column and no entity mapping, "
                  f"and changed: every entity is affected")
        cs = ChangeSet(proc.name, partition, proc.entity, [c for c in changes if c.key != PARTITION_SENTINEL], total, True, reason)
        log.info("change detection for %s at %s: full batch: %s", proc.name, partition_key_of(partition), reason)
        return cs
    return ChangeSet(proc.name, partition, proc.entity, changes, total, False, None)


def record_processed(warehouse: Any, project: Project, processor: Processor | str, partition: Any, run_id: str,
                     entity_keys: list[str] | None, change_set: ChangeSet | None = None,
                     unknown: bool = False) -> None:
    """Store the input fingerprints of ``partition`` as processed by ``processor``.

    ``entity_keys=None`` records every entity of the partition (after a full batch);
    otherwise only those entities (after a selective run; deleted ones are forgotten).
    Call it after the run's output is committed. Raises BackendError on failure.

    Pass the run's ``change_set`` (selective runs) to record the fingerprints detection saw
    rather than recomputing them now: an input change that lands while the run is
    transforming then stays pending and is picked up by the next detection.

    ``unknown`` (a selective run whose entities came from upstream change-sets, with no
    detection): record the entities as processed with an unknown fingerprint (NULL) instead
    of computing their fingerprints over every input, a query that cost about what the
    run's write did. A change-set-driven run never reads the state; the next *detection* of
    the partition finds NULL distinct from every fingerprint and reprocesses those entities
    once (an update, or a delete when their inputs are gone: they keep a state row, so a
    deletion is still seen), then records their fingerprints. Outputs stay exact; the
    price is that one reprocess (docs/change-detection.md).
    """
    from framework.sql.render import query_params, render_record

    proc = _resolve(project, processor)
    if not proc.inputs or not proc.change_detection.enabled:
        return
    if entity_keys is not None and not entity_keys:
        return
    ensure_state_tables(warehouse, project)
    detected = change_set is not None and not change_set.full_batch and entity_keys is not None
    unknown = unknown and entity_keys is not None and not detected
    rendered = render_record(project, proc, warehouse.dialect, selective=entity_keys is not None,
                             delete_only=detected, unknown=unknown)
    params = query_params(project, rendered.params, partition,
                          entity_ids=[str(k) for k in entity_keys] if entity_keys is not None else None,
                          processor=proc.name, run_id=run_id)
    warehouse.execute_script(rendered.sql, params, labels={"pipectl_processor": proc.name, "pipectl_job": "record"})
    if detected:
        assert change_set is not None and entity_keys is not None
        _insert_detected(warehouse, project, proc, partition, run_id, change_set, {str(k) for k in entity_keys})


def _insert_detected(warehouse: Any, project: Project, proc: Processor, partition: Any, run_id: str, change_set: ChangeSet, keys: set[str]) -> None:
    """Insert the fingerprints carried by the change-set (one per entity, state format 2).
    The DELETE already ran: a crash in between only makes those entities look new (they are
    reprocessed), never processed-but-unseen."""

    now = _dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None)
    rows = [{"processor": proc.name, "partition_key": partition_key_of(partition), "entity_key": change.key,
             "fingerprint": int(change.fingerprint), "state_format": STATE_FORMAT, "run_id": run_id, "processed_at": now}
            for change in change_set.changes
            if change.key in keys and change.operation != "delete" and change.fingerprint is not None]
    if rows:
        warehouse.insert_rows(state_table(project), rows)


def forget_processed(warehouse: Any, project: Project, processor: Processor | str, partition: Any, run_id: str) -> None:
    """Drop the fingerprints ``run_id`` recorded as processed, so the entities it touched
    look new to the next detection and are reprocessed.

    Why: a run that wrote and recorded its entities but then failed (its completion could not
    be built or published, FM 17) is retried; without this the retry would detect no change,
    publish ``no_data`` and downstream phases would never hear of those entities."""
    from framework.backends.protocols import QueryParam

    proc = _resolve(project, processor)
    if not proc.inputs or not proc.change_detection.enabled:
        return
    ph = get_dialect(warehouse.dialect).param
    sql = (f"DELETE FROM {state_table(project)} WHERE processor = {ph('processor')} AND partition_key = {ph('partition_key')} "
           f"AND run_id = {ph('run_id')}")
    warehouse.execute_script(sql, [QueryParam("processor", proc.name), QueryParam("partition_key", partition_key_of(partition)),
                                   QueryParam("run_id", run_id)],
                             labels={"pipectl_processor": proc.name, "pipectl_job": "forget"})


def record_change_set(warehouse: Any, project: Project, change_set: ChangeSet, run_id: str, correlation_id: str | None) -> None:
    """Append the change-set to ``_pipectl.change_sets``: one row per changed entity plus one
    ``summary`` row (totals, full_batch, fallback_reason), so history is queryable."""
    ensure_state_tables(warehouse, project)
    now = _dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None)
    base = {
        "processor": change_set.processor,
        "partition_key": partition_key_of(change_set.partition),
        "entity_kind": change_set.entity_kind,
        "full_batch": change_set.full_batch,
        "run_id": run_id,
        "correlation_id": correlation_id,
        "recorded_at": now,
    }
    rows = [dict(base, entity_key=None, operation="summary", fingerprint=None,
                 fallback_reason=change_set.fallback_reason, total_entities=change_set.total_entities)]
    rows += [dict(base, entity_key=c.key, operation=c.operation, fingerprint=None if c.fingerprint is None else str(c.fingerprint),
                  fallback_reason=None, total_entities=None) for c in change_set.changes]
    warehouse.insert_rows(changeset_table(project), rows)


__all__ = ["EntityChange", "ChangeSet", "detect_changes", "record_processed", "forget_processed", "record_change_set",
           "ensure_state_tables", "note_state_listed", "state_dataset", "upgrade_state"]
