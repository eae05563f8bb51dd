"""The processor runner: one processor, one partition, only the entities that changed.

Steps of :meth:`ProcessorRunner.run` (docs/runtime.md has the long form):

1. claim the run in the run history (a live run of the same processor+partition -> skipped);
2. decide the entities: explicit ones (replay ``--entities``), else change detection
   (``framework.run.changes.detect_changes``); nothing changed -> ``no_data``, efficiency
   100%, completion published so the orchestrator still counts the processor;
3. check every critical input has rows for the partition: never produce output from zero
   upstream rows (FM 23), fail loudly instead;
4. run the transform (SQL template with the selective filter, or a Python callable) and
   write the rows of the affected entities in one transaction: delete the partition's rows
   of those entities, insert the new ones (entities that vanished upstream disappear);
   fanned-out processors write one entity per task instead (``framework.run.fanout``);
5. record what was processed and the change-set;
6. publish the completion envelope on the phase's completion topic.

Any failure, including one after the write succeeded (FM 17), ends as a ``failed`` run with
the reason in the history, an alert, and a ``failed`` completion on the bus.
"""
from __future__ import annotations

import logging
import threading
import time
import traceback
import uuid
from typing import Any, Callable, Sequence

from framework.errors import PipectlError
from framework.manifest.model import Processor, Project
from framework.run import decisions, messages, runner_fanout, runner_io as io, script_write
from framework.run.decisions import CriticalInputError
from framework.run.request import UNCHANGED_INPUTS, RunRequest, RunResult
from framework.run.code_state import CODE_STATE, CodeState, state_key as code_state_key
from framework.run.history import RunHistory
from framework.run.input_versions import InputVersions
from framework.orchestrator.gates import count_partition_rows

log = logging.getLogger(__name__)


class ProcessorRunner:
    """Runs processors of one project against one warehouse (and bus, state store).

    ``bus`` None = do not publish (a library call or test); ``history`` None = not recorded.
    The warehouse is used under a lock so fan-out worker threads can share it.
    ``remote_fanout``: a fanned-out processor publishes its tasks and returns ``dispatched``
    instead of waiting for them; whichever process records the last task finishes the run
    (:mod:`framework.run.fanout_remote`, used by the worker service).
    """

    def __init__(self, project: Project, warehouse: Any, bus: Any = None, store: Any = None,
                 history: RunHistory | None = None, alerts: Any = None, clock: Callable[[], float] = time.time,
                 fanout_timeout: float = 600.0, remote_fanout: bool = False):
        self.project = project
        self.warehouse = warehouse
        self.bus = bus
        self.store = store
        self.history = history if history is not None else (RunHistory(store, clock=clock) if store is not None else None)
        self.alerts = alerts
        self.clock = clock
        self.fanout_timeout = fanout_timeout
        self.remote_fanout = remote_fanout
        self.lock = threading.RLock()
        self.ready_tables: set[str] = set()
        self.code_state = CodeState(project, store, clock=clock) if store is not None else None
        self.lineage: Any = None  # an OpenLineage emitter (framework.run.lineage), set by the session of a target
        self.versions = InputVersions(project, store) if store is not None else None
        # rows per (table, partition) known in this run (framework.run.row_counts); None:
        # always count (the driver sets a fresh one per run, see start_counts)
        self.rows: Any = None
        # output tables found missing and created empty (check_outputs) -> the partitions
        # rebuilt since: a processor whose state says it ran a partition runs a full batch of
        # it, never skipped by input versions nor answered by stored fingerprints
        self.rebuild: dict[str, set[str]] = {}

    # ------------------------------------------------------------------ entry point
    def run(self, request: RunRequest) -> RunResult:
        """Run one processor for one partition. Every log line inside carries the run's
        correlation id, processor, phase, partition and run id (:mod:`framework.config.logs`)."""
        from dataclasses import replace

        from framework.config.logs import log_context

        proc = self.project.resolve_processor(request.processor)
        if proc is None:
            raise PipectlError(f"unknown processor '{request.processor}'", hint="see `pipectl ls`")
        request = replace(request, run_id=request.run_id or uuid.uuid4().hex[:16])
        with log_context(correlation_id=request.correlation_id or request.run_id, processor=proc.name,
                         phase=proc.phase, partition=request.partition, run_id=request.run_id):
            return self._run(proc, request)

    def _run(self, proc: Processor, request: RunRequest) -> RunResult:
        run_id = request.run_id or uuid.uuid4().hex[:16]
        correlation = request.correlation_id or run_id
        started = time.perf_counter()
        res = RunResult(run_id, proc.name, proc.phase, str(request.partition), "running", correlation, request.parent_id,
                        entity_kind=proc.entity)
        record = None
        if self.history is not None:
            claim = self.history.start(proc.name, str(request.partition), phase=proc.phase, run_id=run_id,
                                       correlation_id=correlation, parent_id=request.parent_id,
                                       trigger_id=request.trigger_id, mode=request.mode)
            if not claim.acquired:
                res.status, res.error = "skipped", claim.reason
                return res
            record = claim.run
        self._lineage("START", proc, request, res)
        # what the run's detection read, and the entities whose output its write changed (InputVersions)
        seen: list[Any] = [None, None]
        self.complete(proc, request, res, record, started, lambda: self._execute(proc, request, res, seen), seen)
        return res

    def complete(self, proc: Processor, request: RunRequest, res: RunResult, record: Any, started: float,
                  work: Callable[[], bool], seen: list | None = None) -> None:
        """Run ``work`` (the run's transform and writes), then publish the completion and
        record the run. Shared by :meth:`run` and by :meth:`finish_dispatched` (a remote
        fan-out finished by another process). A ``dispatched`` run is neither published
        nor finished here: its claim stays held until the instance recording its last task
        finishes it."""
        written = False
        try:
            try:
                written = work()
            except Exception as exc:  # noqa: BLE001 - recorded, alerted and published as failed; never swallowed
                res.status, res.error_type = "failed", type(exc).__name__
                res.error = messages.describe_failure(exc, after_write=written or res.durations.get("write") is not None)
                # also reported as the processor_done progress event: a CLI showing progress drops this line
                log.error("processor %s failed for %s: %s", proc.name, request.partition, res.error,
                          extra={"progress_event": "processor_done"})
                log.debug("traceback of %s:\n%s", proc.name, traceback.format_exc())
                if self.alerts is not None:
                    self.alerts.alert(f"processor_failed:{proc.name}", "error", res.error,
                                      {"processor": proc.name, "partition": str(request.partition), "run_id": res.run_id})
            if res.status == "dispatched":
                return
            res.duration_seconds = round(time.perf_counter() - started, 6)
            if request.publish:
                self._publish(proc, request, res)
            if res.status == "success" and res.full_batch and proc.output is not None and proc.output.fqn in self.rebuild:
                self.rebuild[proc.output.fqn].add(str(request.partition))
            if res.status in ("success", "partial", "no_data") and self.code_state is not None \
                    and (res.full_batch or not res.code_changed):
                # the partition's rows are now those of this code (a replay of some entities
                # after a code change is not: the next run still reprocesses them all)
                self.code_state.record(proc, request.partition, res.run_id)
        except BaseException as exc:
            # something failed outside the handled path (the bus is down so even the minimal
            # failed completion could not be published, an alert sink broke, an interrupt):
            # the run is failed and the error propagates (a trigger is then redelivered); the
            # finally below still records it, else it would stay 'running' holding its claim (FM 20)
            first = res.error if res.status == "failed" else None
            res.status, res.error_type = "failed", type(exc).__name__
            text = messages.describe_failure(exc, after_write=False)
            res.error = f"{first}; then: {text}" if first else text
            raise
        finally:
            if res.status != "dispatched":
                self._record_end(proc, request, res, record, *(seen if seen else (None, None)))

    def _lineage(self, state: str, proc: Processor, request: RunRequest, res: RunResult) -> None:
        """An OpenLineage run event when the target configures ``lineage:`` (framework.run.lineage)."""
        if self.lineage is not None:
            self.lineage.emit(state, proc, res.run_id, res.correlation_id, request.partition,
                              error=res.error if state == "FAIL" else None)

    def restore_dispatched(self, doc: dict[str, Any]) -> tuple[Processor, RunRequest, RunResult]:
        """The processor, request and partial result of a dispatched run, from its document."""
        proc = self.project.resolve_processor(doc["processor"])
        if proc is None:
            raise PipectlError(f"fan-out run {doc['run_id']} names processor '{doc['processor']}', unknown to this project",
                               hint="the worker's manifests differ from those of the instance that dispatched the run: redeploy")
        r, out = doc["request"], doc["result"]
        request = RunRequest(proc.name, doc["partition"], full=r.get("full", False), correlation_id=r["correlation_id"],
                             parent_id=r.get("parent_id"), trigger_id=r.get("trigger_id"), mode=r.get("mode", "incremental"),
                             publish=r.get("publish", True), run_id=doc["run_id"], reason=r.get("reason"),
                             round_processors=r.get("round_processors"), continuation=doc.get("continuation"))
        res = RunResult(doc["run_id"], proc.name, proc.phase, doc["partition"], "running", r["correlation_id"],
                        r.get("parent_id"), entity_kind=proc.entity, full_batch=out["full_batch"],
                        fallback_reason=out.get("fallback_reason"), entities_total=int(out.get("entities_total") or 0),
                        code_changed=out.get("code_changed"), durations=dict(out.get("durations") or {}))
        return proc, request, res

    def _record_end(self, proc: Processor, request: RunRequest, res: RunResult, record: Any,
                    seen: dict[str, Any] | None = None, written: list[str] | None = None) -> None:
        if res.status == "failed" and "transform_write" in res.durations:  # may have recorded (partly)
            self._forget_processed(proc, request, res)
        self._record_seen(proc, request, res, seen, written)
        if record is not None and self.history is not None:
            self.history.finish(record, res.status, duration_seconds=res.duration_seconds, durations=res.durations,
                                rows_written=res.record_count, entities_processed=res.entities_processed,
                                entities_total=res.entities_total, efficiency_pct=res.efficiency_pct,
                                full_batch=res.full_batch, fallback_reason=res.fallback_reason,
                                entity_kind=proc.entity, entities=res.entity_ids[:50], error=res.error,
                                metadata={"failed_entities": res.failed_entities, "message_id": res.message_id,
                                          **({"tests": res.tests} if res.tests else {}),
                                          **({"fanout_tasks": res.tasks} if res.tasks is not None else {})})
        self._lineage("FAIL" if res.status == "failed" else "COMPLETE", proc, request, res)
        if res.status != "failed":  # a failure was logged once, as an error, where it was caught
            log.info("%s: %s, %s of %s entities, %s rows in %.3fs%s", proc.name, res.status, res.entities_processed,
                     res.entities_total, res.record_count, res.duration_seconds or 0.0,
                     f" ({res.fallback_reason})" if res.fallback_reason else "")

    def finish_dispatched(self, doc: dict[str, Any], result: Any) -> RunResult:
        """Finish a remote fan-out run from its stored state (:func:`framework.run.runner_fanout.finish_dispatched`)."""
        return runner_fanout.finish_dispatched(self, doc, result)

    def check_outputs(self, procs: Sequence[Processor]) -> set[str]:
        """Which of ``procs``' output tables are gone (one catalog listing per dataset): they
        are created empty and their processors rebuild them in full on their next run. The
        input versions and fingerprints in the state store describe rows that no longer exist
        after a warehouse was wiped or a table dropped; without this a processor would be
        skipped, or detect nothing, and leave its table empty."""
        from framework.run.changes import note_state_listed, state_dataset

        outputs = [p.output for p in procs if p.output is not None]
        sources = [s.table for s in self.project.sources.values()]
        missing: set[str] = set()
        with self.lock:
            # one catalog query: the outputs, the landing sources (known to exist: a critical
            # input's count needs no schema lookup) and pipectl's state tables (no DDL or
            # listing when they exist in the current format)
            state = state_dataset(self.project)
            catalog = io.list_catalog(self.warehouse, [*(t.dataset for t in outputs), *(t.dataset for t in sources), state])
            self.ready_tables |= io.ensure_tables(self.warehouse, outputs, missing, catalog)
            self.ready_tables |= {t.fqn for t in sources if t.name in catalog.get(t.dataset, set())}
            note_state_listed(self.warehouse, self.project, catalog.get(state, set()))
        for fqn in missing:
            self.rebuild[fqn] = set()
        return missing

    def start_counts(self, phases: Sequence[str] | None = None, selected: Sequence[str] | None = None) -> None:
        """A fresh set of row counts for one driver run (framework.run.row_counts): its first
        critical-input or quality-gate count counts the tables such checks of the run's
        ``phases`` (and ``selected`` processors) read, at once."""
        from framework.run.row_counts import PartitionRows, run_tables

        self.rows = PartitionRows(self.warehouse, self.project, run_tables(self.project, phases, selected),
                                  self.ready_tables)

    def missing_output(self, proc: Processor, partition: Any) -> str | None:
        """Why ``proc`` must rebuild ``partition`` in full: its output table was found missing
        since it last ran the partition (the state store still says it did)."""
        out = proc.output
        if out is None or out.fqn not in self.rebuild or str(partition) in self.rebuild[out.fqn]:
            return None
        ran = self.versions.last_run(proc, partition) if self.versions is not None else None
        if ran is None and self.code_state is not None:
            ran = self.code_state.store.get(CODE_STATE, code_state_key(proc.name, partition))
        if ran is None:  # never ran here: change detection finds every entity new, as on a first run
            self.rebuild[out.fqn].add(str(partition))
            return None
        return f"its output table {out.fqn} was missing (dropped, or a new warehouse): full batch"

    # ------------------------------------------------------------------ the work
    def _execute(self, proc: Processor, request: RunRequest, res: RunResult, seen: list) -> bool:
        t0 = time.perf_counter()
        explicit = request.entities is not None and proc.entity is not None
        missing = None if explicit else self.missing_output(proc, request.partition)
        if missing:  # handled like changed code: a full batch with the reason, never skipped
            res.code_changed = missing
        elif self.code_state is not None and not request.full and not explicit:
            # code-change awareness: rows made by other code are all recomputed (docs/runtime.md)
            res.code_changed = self.code_state.changed_reason(proc, request.partition)
        if self.versions is not None and not explicit and proc.inputs:
            seen[0] = self.versions.snapshot(proc, request.partition)  # before detection reads anything
            if request.trust_versions and not request.full and not res.code_changed \
                    and self.versions.unchanged(proc, request.partition, seen[0], request.sources_announced):
                res.durations["detect"] = round(time.perf_counter() - t0, 6)
                res.status, res.efficiency_pct = "no_data", 100.0
                res.fallback_reason = UNCHANGED_INPUTS
                log.debug("%s: inputs unchanged since its last run: no detection", proc.name)
                return False
        with self.lock:
            self._ensure_tables(proc)
            decision = None
            if request.trust_versions and not request.full and not res.code_changed and seen[0] is not None:
                decision = decisions.decide_from_change_sets(self.warehouse, self.project, self.versions, proc,
                                                      request.partition, seen[0], request.sources_announced)
            if decision is None:
                log.debug("%s: detecting changes (mode %s, full %s)", proc.name, request.mode, request.full)
                decision = decisions.decide_entities(self.warehouse, self.project, proc, request, code_changed=res.code_changed)
        res.durations["detect"] = round(time.perf_counter() - t0, 6)
        res.full_batch = decision.full_batch
        res.fallback_reason = decision.fallback_reason
        res.entities_total = decision.total
        if not decision.full_batch and not decision.entity_ids:
            res.status, res.efficiency_pct = "no_data", 100.0
            return False
        t1 = time.perf_counter()
        if proc.output is not None:
            if self.versions is not None:  # before the rows change; downstream reads the entity list
                keyed = proc.output.column(self.project.entity_key(proc) or "") is not None
                self.versions.mark_written(proc, request.partition, res.run_id,
                                           decision.entity_ids if keyed and not decision.full_batch else None)
        with self.lock:
            decisions.check_critical_inputs(self.warehouse, self.project, proc, request.partition, self.ready_tables,
                                     self.rows)
            if self.rows is not None and proc.output is not None:  # moved by the write, or counted again
                prior = self.rows.take(proc.output.fqn, request.partition)
        ids = None if decision.full_batch else list(decision.entity_ids)
        if proc.fanout is not None and self.bus is not None and self.store is not None and proc.entity:
            runner_fanout.run_fanout_processor(self, proc, request, res, ids, decision)
            if res.status == "dispatched":
                res.durations["transform_write"] = round(time.perf_counter() - t1, 6)
                return False
            self._written(proc, request, res, ids, decision, t1)
            return True
        # the rows, their fingerprints and the change-set in one transaction where the
        # warehouse has them (one commit, and never rows without their fingerprints)
        scripted = script_write.applies(self.warehouse, self.project, proc, ids)  # one job where a statement is one
        try:
            with self.lock, io.transaction(self.warehouse):
                if scripted:
                    res.record_count = script_write.write_run(self.warehouse, self.project, proc, request.partition, ids,
                                                              res.run_id, decision, res.correlation_id)
                else:
                    res.record_count = io.transform_and_write(self.warehouse, self.project, proc, request.partition,
                                                              ids, res.run_id, decision=decision)
                res.status = "success"
                self._written(proc, request, res, ids, decision, t1, test=False)
            seen[1] = decision.written
            if self.rows is not None and proc.output is not None:
                if decision.rows_total is not None:
                    self.rows.set(proc.output.fqn, request.partition, decision.rows_total)
                elif prior is not None and decision.rows_delta is not None:
                    self.rows.set(proc.output.fqn, request.partition, prior + decision.rows_delta)
        except Exception:
            if io.transactional(self.warehouse):  # rolled back: nothing was written
                res.durations.pop("write", None)
                res.durations.pop("transform_write", None)
            elif scripted:  # it may have committed before failing (its last SELECT, a timed-out wait):
                # the fingerprints it may have recorded are forgotten, so a retry reprocesses (FM 17)
                res.durations.setdefault("transform_write", round(time.perf_counter() - t1, 6))
            raise
        if proc.tests:  # on the committed rows: a failing test fails the run, it does not undo the write
            self._test(proc, request, res, decision.test_results)
        return True

    def _written(self, proc: Processor, request: RunRequest, res: RunResult, ids: list[str] | None,
                 decision: decisions.EntityDecision, t1: float, test: bool = True) -> None:
        res.durations["transform_write"] = round(time.perf_counter() - t1, 6)
        res.durations["write"] = res.durations["transform_write"]
        self.conclude(proc, request, res, ids, decision, test=test)

    def _record_seen(self, proc: Processor, request: RunRequest, res: RunResult, seen: dict[str, Any] | None,
                     written: list[str] | None = None) -> None:
        """What the finished run saw: a complete run (detection or full batch, success or
        no_data) lets the next round skip ``proc`` while nothing it reads is rewritten; a
        failed or partial one (entities left to reprocess) never lets it skip. ``written``:
        the entities whose output rows the run changed, narrowing its write's entity list."""
        if self.versions is None or not proc.inputs:
            return
        try:
            if written is not None and res.status == "success" and seen is None:  # a replay stores no "seen"
                self.versions.narrow(proc, request.partition, res.run_id, written)
            if res.status in ("failed", "partial"):
                self.versions.finish(proc, request.partition, None)
            elif res.status in ("success", "no_data") and seen is not None and (res.full_batch or not res.code_changed):
                self.versions.finish(proc, request.partition, seen, res.entities_total or None,
                                     written=None if written is None or res.status != "success" else (res.run_id, written))
        except Exception as exc:  # noqa: BLE001 - reported on the run and logged, never silent
            text = messages.describe_failure(exc, after_write=False)
            log.error("run %s of %s: could not store the input versions it saw: %s", res.run_id, proc.name, text)
            if res.status in ("failed", "partial"):
                res.error = f"{res.error}; its input versions could not be cleared ({text}): " \
                            f"the next incremental run may skip it: re-run with --full"

    def conclude(self, proc: Processor, request: RunRequest, res: RunResult, ids: list[str] | None,
                  decision: decisions.EntityDecision, test: bool = True) -> None:
        """After the writes: record what was processed and the change-set, and the run's
        entity statistics (a local run here; a remote fan-out in the process finishing it)."""
        t2 = time.perf_counter()
        done_ids = ids if ids is not None else None
        if res.failed_entities and ids is not None:
            done_ids = [e for e in ids if e not in res.failed_entities]
        with self.lock:
            io.record_processed_and_changes(self.warehouse, self.project, proc, request.partition, res.run_id,
                                            done_ids, decision, res.correlation_id,
                                            skip=set(res.failed_entities))
        res.durations["record"] = round(time.perf_counter() - t2, 6)
        if ids is None and decision.entities_after is not None:  # the write's script listed them
            res.entity_ids = list(decision.entities_after)
        elif ids is None:
            with self.lock:
                res.entity_ids = io.partition_entities(self.warehouse, self.project, proc, request.partition)
        else:
            res.entity_ids = sorted(ids)
        res.entities_processed = len(res.entity_ids)
        if res.full_batch:
            res.entities_total = max(res.entities_total, res.entities_processed)
        if res.entities_total and not res.full_batch:
            res.efficiency_pct = round(100.0 * (1 - res.entities_processed / max(res.entities_total, res.entities_processed)), 2)
        else:
            res.efficiency_pct = 0.0
        if proc.tests and test:
            self._test(proc, request, res)

    def _test(self, proc: Processor, request: RunRequest, res: RunResult, results: list[Any] | None = None) -> None:
        """The processor's data tests on what it wrote (``results``: already run by the write's
        own script, framework.run.script_write); blocking failures fail the run."""
        from framework.run.data_tests import WARN, DataTestError, failure_text, run_tests

        t = time.perf_counter()
        if results is None:
            with self.lock:
                results = run_tests(self.warehouse, self.project, proc, request.partition)
            res.durations["test"] = round(time.perf_counter() - t, 6)
        res.tests = [r.to_dict() for r in results]
        for r in results:
            if r.status == WARN:
                log.warning("data test %s of %s (severity warn): %s", r.name, proc.name, r.message)
        if any(r.blocking for r in results):
            raise DataTestError(failure_text(results))

    def _forget_processed(self, proc: Processor, request: RunRequest, res: RunResult) -> None:
        """A run that recorded its entities as processed and then failed (FM 17) un-records
        them, so its retry reprocesses them instead of publishing ``no_data`` downstream."""
        from framework.run.changes import forget_processed

        try:
            with self.lock:
                forget_processed(self.warehouse, self.project, proc, request.partition, res.run_id)
        except Exception as exc:  # noqa: BLE001 - reported in the run's error and the log, never silent
            text = messages.describe_failure(exc, after_write=False)
            log.error("run %s of %s: could not un-record its processed entities: %s", res.run_id, proc.name, text)
            res.error = f"{res.error}; its entities could not be marked unprocessed ({text}): " \
                        f"re-run with --full to make sure downstream sees them"

    def report_not_run(self, processor: str, partition: str, correlation_id: str, trigger: dict[str, Any],
                       reason: str, round_processors: Sequence[str] | None = None) -> RunResult:
        """Publish a ``no_data`` completion for a dispatched processor that was deliberately
        not run (deselected), so the orchestrator is not left waiting for it (FM 24)."""
        proc = self.project.resolve_processor(processor)
        if proc is None:
            raise PipectlError(f"unknown processor '{processor}' in a trigger's dispatched list",
                               hint="see `pipectl ls`; the trigger's metadata.expected names it")
        res = RunResult(uuid.uuid4().hex[:16], proc.name, proc.phase, str(partition), "no_data", correlation_id,
                        trigger.get("execution_id"), entity_kind=proc.entity, efficiency_pct=100.0)
        req = RunRequest(proc.name, partition, correlation_id=correlation_id, parent_id=trigger.get("execution_id"),
                         trigger_id=trigger.get("trigger_id"), mode="not_run", round_processors=round_processors)
        res.fallback_reason = reason
        self._publish(proc, req, res)
        return res

    def _ensure_tables(self, proc: Processor) -> None:
        if proc.output is not None and proc.output.fqn not in self.ready_tables:
            io.ensure_table(self.warehouse, proc.output)
            self.ready_tables.add(proc.output.fqn)

    # ------------------------------------------------------------------ completion
    def _publish(self, proc: Processor, request: RunRequest, res: RunResult) -> None:
        messages.publish_completion(self.bus, self.alerts, self.project, proc, request, res)


__all__ = ["ProcessorRunner", "RunRequest", "RunResult", "UNCHANGED_INPUTS", "CriticalInputError", "count_partition_rows"]
