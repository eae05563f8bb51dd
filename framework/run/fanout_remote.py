"""Remote fan-out: tasks run on many worker instances, the last one to end finishes the run.

Why: in ``pipectl run`` the coordinator waits for its own worker threads
(:mod:`framework.run.fanout`), so one machine runs every task. On Cloud Run the tasks
are pushed to many instances of the worker service (``framework.worker``) and nobody waits:
the coordinator's view of done/failed/retrying tasks lives only in the StateStore (Firestore
on GCP, SQLite locally), so whichever instance records the last task finishes the processor
(row count, processed entities and change-set, completion, run record) exactly once.

The protocol, all through StateStore transactions:

1. :func:`dispatch` (inside the processor's run, on the instance handling the trigger)
   writes the run document ``pipectl_fanout_runs/<run_id>`` (state ``dispatched``: the
   request, what change detection decided, where the run continues), the change-set in
   chunks of :data:`CHUNK` (never one huge array, FM 16) and one task document per entity,
   then publishes the task messages. The run's history claim stays held: a duplicate
   trigger cannot start a second run of the processor meanwhile.
2. :func:`handle_task` (any instance, per push delivery): a task whose run is finished or
   gone is a late duplicate (acknowledged, nothing counted twice); otherwise it claims an
   attempt, runs the entity's transform and records ``done``, or ``retrying`` (the delivery
   fails, so the bus redelivers it, possibly to another instance) or, at the last allowed
   attempt, ``failed``. A task that ended then checks whether any task is still open.
3. :func:`try_finish`: when none is, a transaction moves the run document from
   ``dispatched`` to ``finishing`` (one instance wins); the winner finishes the run
   (:meth:`ProcessorRunner.finish_dispatched`), marks it ``finished`` and deletes the task
   and change documents, then runs the rest of the phase (its continuation: if that fails,
   the delivery fails and its redelivery runs it again). A winner that dies while finishing
   leaves ``finishing``: a
   redelivered task of that run takes the finish over once :data:`FINISH_LEASE_SECONDS`
   passed (the steps are idempotent: rows are replaced, a duplicate completion changes
   nothing in the orchestrator).
4. :func:`handle_dead_letter`: a task message whose every delivery ended without an
   outcome (the instance died each time, the worker did not answer) is moved by the bus to
   the task subscription's dead-letter topic; pipectl's push subscription on it
   (``<dead-letter topic>-pipectl-worker``, managed by ``plan``/``apply``) brings it to the
   worker, which records the task ``failed`` with that reason and finishes the run as in 3.
"""
from __future__ import annotations

import json
import logging
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable

from framework.manifest.model import Processor
from framework.run import decisions, messages, runner_io as io
from framework.run.fanout import TASKS, TaskTracker, dead_letter_reason

log = logging.getLogger(__name__)

RUNS = "pipectl_fanout_runs"
CHANGES = "pipectl_fanout_changes"
CHUNK = 200
FINISH_LEASE_SECONDS = 600.0


@dataclass
class TaskOutcome:
    """What a task delivery came to. ``retry``: the delivery must fail (non-2xx) so the
    bus redelivers it; every other outcome is recorded and the delivery acknowledged."""

    status: str  # done | failed | retry | duplicate
    run_id: str
    entity: str
    attempt: int = 0
    error: str | None = None
    finished: Any = None  # the RunResult when this delivery finished the run

    @property
    def retry(self) -> bool:
        return self.status == "retry"


# ------------------------------------------------------------------ dispatch (the coordinator)
def dispatch(runner: Any, proc: Processor, request: Any, res: Any, decision: decisions.EntityDecision,
             ids: list[str] | None, entities: list[str], max_attempts: int) -> None:
    """Record the run and its tasks, publish the tasks, and leave ``res`` ``dispatched``."""
    store, clock = runner.store, runner.clock
    run_id = res.run_id
    change_set = decision.change_set
    doc = {
        "run_id": run_id, "processor": proc.name, "partition": str(request.partition), "state": "dispatched",
        "total": len(entities), "max_attempts": int(max_attempts), "started_at": clock() - res.durations.get("detect", 0.0),
        "dispatched_at": clock(), "ids": ids, "changes": _count_chunks(change_set),
        "request": {"correlation_id": res.correlation_id, "parent_id": request.parent_id, "trigger_id": request.trigger_id,
                    "mode": request.mode, "publish": bool(request.publish), "reason": request.reason, "full": bool(request.full),
                    "round_processors": list(request.round_processors) if request.round_processors else None},
        "result": {"full_batch": res.full_batch, "fallback_reason": res.fallback_reason, "entities_total": res.entities_total,
                   "code_changed": res.code_changed, "durations": dict(res.durations)},
        "decision": {"full_batch": decision.full_batch, "total": decision.total, "fallback_reason": decision.fallback_reason,
                     "change_set": _change_set_head(change_set)},
        "continuation": request.continuation,
    }
    store.run_transaction(lambda t: t.set(RUNS, run_id, doc))
    _store_changes(store, run_id, change_set)
    TaskTracker(store, run_id, clock).create(entities, proc.name, str(request.partition), max_attempts)
    res.tasks = len(entities)
    attrs = {"run_id": run_id, "processor": proc.name, "partition": str(request.partition)}
    bodies = [(json.dumps({"run_id": run_id, "processor": proc.name, "partition": str(request.partition), "entity": e,
                           "correlation_id": res.correlation_id}).encode(), attrs) for e in entities]
    assert proc.fanout is not None
    if hasattr(runner.bus, "publish_many"):
        runner.bus.publish_many(proc.fanout.task_topic, bodies)
    else:
        for body, a in bodies:
            runner.bus.publish(proc.fanout.task_topic, body, a)
    res.status = "dispatched"
    log.info("fan-out %s of %s for %s: %d task(s) published on %s", run_id, proc.name, request.partition,
             len(entities), proc.fanout.task_topic)


def _change_set_head(cs: Any) -> dict[str, Any] | None:
    if cs is None:
        return None
    return {"processor": cs.processor, "partition": str(cs.partition), "entity_kind": cs.entity_kind,
            "total_entities": cs.total_entities, "full_batch": cs.full_batch, "fallback_reason": cs.fallback_reason}


def _count_chunks(cs: Any) -> int:
    return 0 if cs is None else (len(cs.changes) + CHUNK - 1) // CHUNK


def _store_changes(store: Any, run_id: str, cs: Any) -> None:
    if cs is None:
        return
    for i in range(_count_chunks(cs)):
        part = [[c.key, c.operation, c.fingerprint] for c in cs.changes[i * CHUNK:(i + 1) * CHUNK]]
        store.run_transaction(lambda t, i=i, part=part: t.set(CHANGES, f"{run_id}|{i}",
                                                              {"run_id": run_id, "index": i, "changes": json.dumps(part)}))


def stored_decision(doc: dict[str, Any]) -> decisions.EntityDecision:
    """What change detection decided for a dispatched run, rebuilt from its run document
    and change chunks (``doc["_chunks"]``) by the instance finishing it."""
    from framework.run.changes import ChangeSet, EntityChange

    d = doc["decision"]
    change_set = None
    if d.get("change_set"):
        head = d["change_set"]
        changes: list[EntityChange] = []
        for _, chunk in sorted(doc.get("_chunks") or [], key=lambda kv: kv[1]["index"]):
            changes += [EntityChange(k, op, fp) for k, op, fp in json.loads(chunk["changes"])]
        change_set = ChangeSet(head["processor"], head["partition"], head["entity_kind"], changes,
                               int(head["total_entities"]), bool(head["full_batch"]), head.get("fallback_reason"))
    return decisions.EntityDecision(bool(d["full_batch"]), list(doc["ids"] or []), int(d.get("total") or 0),
                             d.get("fallback_reason"), change_set)


# ------------------------------------------------------------------ tasks (any instance)
def handle_task(runner: Any, task: dict[str, Any], delivery_attempt: int = 0,
                on_finished: Callable[[dict[str, Any], Any], None] | None = None) -> TaskOutcome:
    """Run one pushed task (see the module docstring). Raises only when the task's state
    could not be recorded: the delivery then fails and is redelivered."""
    run_id, entity = str(task["run_id"]), str(task["entity"])
    store, clock = runner.store, runner.clock
    tracker = TaskTracker(store, run_id, clock)
    doc = tracker.claim_attempt(entity, delivery_attempt)
    if doc is None:
        # ended already (a redelivery of a recorded task, or one dead-lettered), or its run
        # finished and its tasks were deleted, or no remote run has it (a `pipectl run`
        # coordinator's): dropped.
        log.info("fan-out task %s/%s: ended already or not a task of a dispatched run: a duplicate, dropped", run_id, entity)
        return _duplicate(runner, run_id, entity, on_finished)
    attempt = int(doc["attempts"])
    proc = runner.project.resolve_processor(doc["processor"])
    max_attempts = int(doc.get("max_attempts") or 1)
    try:
        if proc is None:
            raise LookupError(f"processor '{doc['processor']}' is not in this worker's manifests")
        io.transform_and_write(runner.warehouse, runner.project, proc, doc["partition"], [entity], run_id, count=False)
    except Exception as exc:  # noqa: BLE001 - recorded on the task, retried via the bus, named in the result
        text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        final = attempt >= max_attempts
        log.warning("fan-out task %s/%s attempt %d of %d failed%s: %s", doc["processor"], entity, attempt, max_attempts,
                    " (final)" if final else ", will be redelivered", text)
        tracker.failed(entity, attempt, text, final)
        if not final:
            return TaskOutcome("retry", run_id, entity, attempt, text)
        outcome = TaskOutcome("failed", run_id, entity, attempt, text)
    else:
        tracker.done(entity, attempt, 0)
        outcome = TaskOutcome("done", run_id, entity, attempt)
    outcome.finished = _finish_if_due(runner, run_id, on_finished)
    return outcome


def _duplicate(runner: Any, run_id: str, entity: str, on_finished: Callable[[dict[str, Any], Any], None] | None) -> TaskOutcome:
    """A delivery that changes nothing; it still finishes a run whose finisher died (its
    lease ran out) and runs a continuation that failed."""
    outcome = TaskOutcome("duplicate", run_id, entity)
    run = runner.store.get(RUNS, run_id)
    if run is not None and run.get("state") != "finished":
        outcome.finished = _finish_if_due(runner, run_id, on_finished)
    elif run is not None and run.get("continuation_state") in ("pending", "running"):
        resume_continuation(runner, run_id, on_finished)
    return outcome


def handle_dead_letter(runner: Any, task: dict[str, Any], deliveries: int, source: str = "",
                       on_finished: Callable[[dict[str, Any], Any], None] | None = None) -> TaskOutcome:
    """A task message the bus dead-lettered: every delivery ended without an outcome (the
    instance died, the request timed out, the worker did not answer), so no instance will
    record it. Records the task ``failed`` with that reason, alerts, and finishes the run
    when it was the last open task (``partial`` naming the failed entities, as a task that
    failed on its last attempt), instead of leaving the run ``running`` until it is stale.
    A dead letter of a task that ended, or of a run that finished, changes nothing."""
    run_id, entity = str(task["run_id"]), str(task["entity"])
    tracker = TaskTracker(runner.store, run_id, runner.clock)
    doc = tracker.dead_lettered(entity, deliveries, lambda d: dead_letter_reason(d, deliveries, source))
    if doc is None:
        log.info("fan-out task %s/%s: dead letter of a task that ended or of a finished run: nothing to record", run_id, entity)
        return _duplicate(runner, run_id, entity, on_finished)
    text = dead_letter_reason(doc, deliveries, source)
    processor, partition = str(doc.get("processor")), str(doc.get("partition"))
    log.error("fan-out task %s/%s of run %s for %s failed: %s", processor, entity, run_id, partition, text)
    if runner.alerts is not None:
        runner.alerts.alert(f"fanout_dead_letter:{processor}", "error", f"fan-out task {processor}/{entity} for {partition}: {text}",
                            {"processor": processor, "partition": partition, "run_id": run_id, "entity": entity})
    outcome = TaskOutcome("failed", run_id, entity, max(int(deliveries or 0), int(doc.get("attempts") or 0)), text)
    outcome.finished = _finish_if_due(runner, run_id, on_finished)
    return outcome


def _finish_if_due(runner: Any, run_id: str, on_finished: Callable[[dict[str, Any], Any], None] | None) -> Any:
    if TaskTracker(runner.store, run_id, runner.clock).any_open():
        return None
    return try_finish(runner, run_id, on_finished)


def try_finish(runner: Any, run_id: str, on_finished: Callable[[dict[str, Any], Any], None] | None = None) -> Any:
    """Finish the run if this process wins the claim; returns its RunResult, else None."""
    store, clock = runner.store, runner.clock

    def claim(t: Any) -> dict[str, Any] | None:
        doc = t.get(RUNS, run_id)
        if doc is None or doc.get("state") == "finished":
            return None
        if doc.get("state") == "finishing" and clock() - float(doc.get("finishing_at") or 0) < FINISH_LEASE_SECONDS:
            return None
        t.update(RUNS, run_id, {"state": "finishing", "finishing_at": clock()})
        return doc

    doc = store.run_transaction(claim)
    if doc is None:
        return None
    tracker = TaskTracker(store, run_id, clock)
    result = tracker.result()
    doc["_chunks"] = store.query(CHANGES, {"run_id": run_id})
    finished = runner.finish_dispatched(doc, result)
    follow = "running" if doc.get("continuation") and on_finished is not None else "none"
    store.run_transaction(lambda t: t.update(RUNS, run_id, {"state": "finished", "finished_at": clock(),
                                                           "status": finished.status, "continuation_state": follow,
                                                           "continuation_at": clock()}))
    log.info("fan-out %s of %s for %s finished here: %s (%d task(s), %d failed)", run_id, doc["processor"],
             doc["partition"], finished.status, result.total, len(result.failed))
    tracker.purge()
    for key, _ in doc["_chunks"]:
        store.run_transaction(lambda t, key=key: t.delete(CHANGES, key))
    if follow == "running":
        _continue(runner, run_id, doc, finished, on_finished)
    return finished


def _continue(runner: Any, run_id: str, doc: dict[str, Any], finished: Any,
              on_finished: Callable[[dict[str, Any], Any], None] | None) -> None:
    """Run the rest of the phase (``on_finished``) and record that it ran. If it raises,
    the continuation is released (``pending``) and the error propagates: the delivery fails,
    and its redelivery (or any later task delivery of the run) runs the continuation again."""
    assert on_finished is not None
    try:
        on_finished(doc, finished)
    except BaseException:
        runner.store.run_transaction(lambda t: t.update(RUNS, run_id, {"continuation_state": "pending"}))
        raise
    runner.store.run_transaction(lambda t: t.update(RUNS, run_id, {"continuation_state": "done"}))


def resume_continuation(runner: Any, run_id: str, on_finished: Callable[[dict[str, Any], Any], None] | None) -> bool:
    """Run a finished run's continuation that failed (or whose instance died running it
    :data:`FINISH_LEASE_SECONDS` ago); True when this process ran it."""
    if on_finished is None:
        return False
    clock = runner.clock

    def claim(t: Any) -> dict[str, Any] | None:
        doc = t.get(RUNS, run_id)
        if doc is None or doc.get("state") != "finished":
            return None
        state = doc.get("continuation_state")
        stale = state == "running" and clock() - float(doc.get("continuation_at") or 0) >= FINISH_LEASE_SECONDS
        if state != "pending" and not stale:
            return None
        t.update(RUNS, run_id, {"continuation_state": "running", "continuation_at": clock()})
        return doc

    doc = runner.store.run_transaction(claim)
    if doc is None:
        return False
    log.warning("fan-out %s of %s for %s: running the rest of its phase again (the last attempt failed or its "
                "instance died)", run_id, doc["processor"], doc["partition"])
    _continue(runner, run_id, doc, None, on_finished)
    return True


__all__ = ["dispatch", "handle_task", "handle_dead_letter", "dead_letter_reason", "try_finish", "resume_continuation", "stored_decision", "TaskOutcome", "RUNS", "CHANGES", "TASKS"]
