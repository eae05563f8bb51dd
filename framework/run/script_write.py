"""A processor run's write as one script, for warehouses where every statement is a job.

On BigQuery each statement is a job with a second or more of latency, so a selective run
used to wait on seven of them: a critical-input count, the output read before the write,
the MERGE, the read after it, the fingerprint DELETE + INSERT, the change-set insert and the
data tests. Here the write, the reads around it, the fingerprints, the change-set and the data
tests are one script (``bigquery/run_write.sql.j2``): one job, one transaction. What it buys besides the
jobs: the output, its fingerprints and the change-set commit together or not at all. Before,
a crash between those jobs left new output rows with the old fingerprints (the next
detection reprocessed them: safe, but work) or a run without its change-set row.

The script's last SELECT gives what the runner needs from the write, as DuckDB's
``RETURNING`` does (:func:`framework.run.runner_io._write_returning`): per entity the rows and
fingerprint of the consumer-read columns before and after (the entities whose output
changed, which downstream runs take, and each entity's operation in a change-set taken from
upstream lists), and the partition's row count after the write, which the run's row counts
keep, so a downstream processor's critical-input check needs no count job either.

Used when the warehouse offers ``run_script`` (the rows of a script's last statement) and its
dialect has no ``RETURNING``; SQL transforms with an output table only (a Python transform
stages its rows first; a fan-out writes per task).
"""
from __future__ import annotations

import logging
import re
import time
from typing import Any, Sequence

from framework.errors import BackendError
from framework.manifest.model import Processor, Project
from framework.sql.dialects import get_dialect
from framework.sql.params import QueryParam

log = logging.getLogger(__name__)
KEYS = "pipectl_keys"
_TIMED_OUT = re.compile(r"did not (finish|answer) within")
# a selective run of more entities than this writes as before (several jobs): the script keeps
# the output's per-entity fingerprints before the write in a variable, and BigQuery bounds a
# script variable's size (about 100 bytes an entity here, well under 1 MB at this count)
MAX_SCRIPT_ENTITIES = 5000


def applies(warehouse: Any, project: Project, proc: Processor, entity_ids: Sequence[str] | None) -> bool:
    """Whether this run's write goes through one script (see the module docstring)."""
    if proc.output is None or proc.transform.python or get_dialect(warehouse.dialect).returning:
        return False
    if not callable(getattr(warehouse, "run_script", None)):
        return False
    key = project.entity_key(proc)
    if entity_ids is None:
        return True
    return key is not None and proc.output.column(key) is not None and len(entity_ids) <= MAX_SCRIPT_ENTITIES


def write_run(warehouse: Any, project: Project, proc: Processor, partition: Any, entity_ids: Sequence[str] | None,
              run_id: str, decision: Any, correlation_id: str | None, with_tests: bool = True) -> int:
    """Write the run, record its fingerprints and change-set, in one script; returns the rows
    the run's entities now have (all of the partition's after a full batch) and notes on
    ``decision`` what the write changed (``written``, operations), the partition's rows
    (``rows_total``), the partition's entities after a full batch, that it recorded, and
    (``with_tests``) the results of the processor's data tests, run inside the script on the
    rows it wrote (``test_results``; a failing test does not undo the write)."""
    from framework.run.changes import partition_key_of
    from framework.run.runner_io import consumer_columns, merge_params
    from framework.run.transform import entity_type, partition_param
    from framework.sql.render import render_record, render_statement, render_template

    assert proc.output is not None
    out = proc.output
    full = entity_ids is None
    ids = [] if full else [str(e) for e in entity_ids or ()]
    key = project.entity_key(proc)
    keyed = key is not None and out.column(key) is not None
    in_partition = out.column(project.partition_column) is not None
    columns = consumer_columns(project, proc) if not full and decision is not None else None
    merge = render_statement(project, proc, "merge", warehouse.dialect, full_batch=full)
    params: dict[str, QueryParam] = {p.name: p for p in merge_params(warehouse, project, proc, merge, partition,
                                                                      None if full else ids, run_id)}

    def fingerprints(cols: Sequence[str]) -> str:
        return render_template(project, "output_fingerprints.sql.j2", warehouse.dialect, processor=proc.name,
                               table=out.fqn, key=key, columns=list(cols), partition_in_output=in_partition,
                               all_entities=full).sql

    before_sql = fingerprints(columns) if columns is not None else None
    after_sql = fingerprints(columns or ()) if keyed else None
    record_sql, detected_rows = _record(project, proc, warehouse.dialect, ids, full, decision, render_record)
    cs = decision.change_set if decision is not None and proc.inputs else None
    ops_from_output = cs is not None and decision.source == "change-sets" and before_sql is not None

    def render(tests_sql: str | None) -> str:
        return render_template(
            project, "run_write.sql.j2", warehouse.dialect, processor=proc.name, table=out.fqn, key=key,
            partition_in_output=in_partition, merge_sql=merge.sql, before_sql=before_sql, after_sql=after_sql,
            record_sql=record_sql, detected=detected_rows is not None, change_set=cs is not None,
            ops_from_output=ops_from_output, tests_sql=tests_sql).sql

    partition_key = partition_key_of(partition)
    params.setdefault(project.partition_column, partition_param(project, partition))
    extra = [QueryParam("processor", proc.name), QueryParam("run_id", run_id),
             QueryParam(KEYS, ids, "STRING", array=True), QueryParam("pipectl_partition_key", partition_key)]
    if key and (before_sql or after_sql) and "entity_ids" not in params and not full:
        extra.append(QueryParam("entity_ids", ids, entity_type(project, proc), array=True))
    if detected_rows is not None:
        extra += [QueryParam("pipectl_fp_keys", [k for k, _ in detected_rows], "STRING", array=True),
                  QueryParam("pipectl_fp_values", [fp for _, fp in detected_rows], "INT64", array=True)]
    if cs is not None:
        extra += [QueryParam("pipectl_cs_keys", [c.key for c in cs.changes], "STRING", array=True),
                  QueryParam("pipectl_cs_ops", [c.operation for c in cs.changes], "STRING", array=True),
                  # an array parameter holds no NULL: '' stands for none (NULLIF in the script)
                  QueryParam("pipectl_cs_fps", ["" if c.fingerprint is None else str(c.fingerprint) for c in cs.changes],
                             "STRING", array=True),
                  QueryParam("pipectl_entity_kind", cs.entity_kind), QueryParam("pipectl_full_batch", bool(cs.full_batch), "BOOL"),
                  QueryParam("pipectl_fallback_reason", cs.fallback_reason),
                  QueryParam("pipectl_total", int(cs.total_entities or 0), "INT64"),
                  QueryParam("pipectl_correlation_id", correlation_id)]
    for p in extra:
        params.setdefault(p.name, p)
    if record_sql is not None or cs is not None:
        from framework.run.changes import ensure_state_tables

        ensure_state_tables(warehouse, project)  # once per warehouse (created, or listed by the run's catalog query)
    labels = {"pipectl_processor": proc.name, "pipectl_job": "run"}
    tests = _tests(project, proc, partition, warehouse.dialect, params) if with_tests and decision is not None else None
    if tests is not None:
        started = time.perf_counter()
        try:
            rows = warehouse.run_script(render(tests[0]), [*params.values(), *tests[1]], labels)
        except BackendError as exc:
            if _TIMED_OUT.search(str(exc)):  # it may still commit: never sent twice
                raise
            # rolled back whole (its tests run before the commit): a test whose query fails must be
            # an `error` result of its own with the rows written, as with a separate test job
            log.info("%s: the run script with its data tests failed (%s): writing without them", proc.name, exc)
            tests = None
        else:
            from framework.run.data_tests import batched_results

            failures = {int(r["test_index"]): int(r["test_failures"] or 0) for r in rows if r.get("test_index") is not None}
            decision.test_results = batched_results(proc, proc.tests, tests[2], failures, time.perf_counter() - started)
    if tests is None:
        rows = warehouse.run_script(render(None), list(params.values()), labels)
    return _conclude(rows, decision, full, before_sql is not None)


def _tests(project: Project, proc: Processor, partition: Any, dialect: str,
           params: dict[str, QueryParam]) -> tuple[str, list[QueryParam], list[Any]] | None:
    """The processor's data tests as one query for the script (framework.run.data_tests), or
    None: no tests, or their parameters would clash with the script's (a separate job then)."""
    from framework.run.data_tests import batched_query

    if not proc.tests:
        return None
    batch = batched_query(project, proc, partition, proc.tests, dialect)
    if batch is None or any(p.name in params and params[p.name] != p for p in batch[1]):
        return None
    return batch[0], [p for p in batch[1] if p.name not in params], batch[2]


def _record(project: Project, proc: Processor, dialect: str, ids: list[str], full: bool, decision: Any,
            render_record: Any) -> tuple[str | None, list[tuple[str, int]] | None]:
    """The fingerprint statements, as :func:`framework.run.runner_io.record_processed_and_changes`
    would send them (:func:`framework.run.changes.record_processed`): the fingerprints detection
    saw when every key came from it; for a run fed by upstream change-sets, its entities with
    an unknown (NULL) fingerprint; else those of the inputs now (a full batch, explicit
    entities); none for a processor without inputs or with detection disabled. Returns the
    record statements (``record.sql.j2``) and the detected (key, fingerprint) rows to insert."""
    from framework.run.runner_io import detected_for

    if not proc.inputs or not proc.change_detection.enabled or (not full and not ids):
        return None, None
    keys = None if full else ids
    detected = detected_for(decision.change_set if decision is not None and decision.source == "detection" else None, keys)
    if detected is not None:
        wanted = set(ids)
        rows = [(c.key, int(c.fingerprint)) for c in detected.changes
                if c.key in wanted and c.operation != "delete" and c.fingerprint is not None]
        return render_record(project, proc, dialect, selective=True, delete_only=True, ids_param=KEYS).sql, rows
    unknown = not full and decision is not None and decision.source == "change-sets"
    return render_record(project, proc, dialect, selective=not full, ids_param=KEYS, unknown=unknown).sql, None


def _conclude(rows: list[dict[str, Any]], decision: Any, full: bool, measured: bool) -> int:
    """Read the script's last SELECT into ``decision``; the run's record count."""
    before: dict[str, tuple[int, str]] = {}
    after: dict[str, tuple[int, str]] = {}
    total = 0
    for r in rows:
        if r.get("test_index") is not None:
            continue
        if r["partition_rows"] is not None:
            total = int(r["partition_rows"])
            continue
        k = r["entity_key"]
        if k is None:
            continue
        if r["before_rows"] is not None:
            before[str(k)] = (int(r["before_rows"]), str(r["before_fingerprint"]))
        if r["after_rows"] is not None:
            after[str(k)] = (int(r["after_rows"]), str(r["after_fingerprint"]))
    if decision is not None:
        decision.recorded = True
        decision.rows_total = total
        if full:
            decision.entities_after = sorted(after)
        elif measured:
            from framework.run.runner_io import note_written

            note_written(decision, before, after)
    return total if full else sum(n for n, _ in after.values())


__all__ = ["applies", "write_run"]
