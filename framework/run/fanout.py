"""Fan-out: one task per entity on the bus, a pool of workers, a coordinator that waits.

Why: the predictions phase scores ~450 players; the production system split that into one
request per player consumed by a pool of workers, so one bad player does not fail the day.
Here a processor with ``fanout: {task_topic, workers, max_attempts}`` in processors.yaml runs
as follows (see docs/runtime.md):

1. the coordinator records one task document per entity (StateStore collection
   ``pipectl_fanout_tasks``, key ``run_id|entity``: never one huge array, FM 16) and
   publishes one task message per entity on ``task_topic``; the documents are deleted when
   the run has ended (its result, failed entities named, is kept in the run history);
2. ``workers`` threads pull the task subscription; each task runs the processor's transform
   for that one entity and writes its rows (the runner supplies ``execute``);
3. a task that raises is nacked, so the bus redelivers it, until its ``max_attempts``-th
   delivery fails: then it is recorded as failed (with the error) and acked;
4. when every task has ended (or the timeout passed: remaining tasks are failed as timed out),
   the coordinator returns a :class:`FanOutResult`: ``success``, ``partial`` with the failed
   entities named, or ``failed`` when nothing succeeded.

Workers are threads in the coordinator's process (the embedded DuckDB file admits one
writer process); the tracker and the bus are shared through their stores, so workers in
other processes following the same protocol work too.
"""
from __future__ import annotations

import json
import logging
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from framework.backends.protocols import Bus, ReceivedMessage

log = logging.getLogger(__name__)

TASKS = "pipectl_fanout_tasks"
TASK_ENDED = ("done", "failed")


@dataclass
class FanOutResult:
    """Outcome of a fanned-out run. ``failed`` maps entity -> last error."""

    run_id: str
    total: int
    succeeded: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    rows: int = 0
    attempts: int = 0
    timed_out: bool = False
    worker_errors: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        if not self.failed:
            return "success"
        return "partial" if self.succeeded else "failed"

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "total": self.total, "succeeded": len(self.succeeded), "failed": dict(self.failed),
                "rows": self.rows, "attempts": self.attempts, "timed_out": self.timed_out, "status": self.status}


class TaskTracker:
    """Per-entity task documents of one fanned-out run in the StateStore."""

    def __init__(self, store: Any, run_id: str, clock: Callable[[], float] = time.time):
        self.store = store
        self.run_id = run_id
        self.clock = clock

    def key(self, entity: str) -> str:
        return f"{self.run_id}|{entity}"

    def create(self, entities: Iterable[str], processor: str, partition: str, max_attempts: int | None = None) -> None:
        now = self.clock()
        docs = [(self.key(e), {"run_id": self.run_id, "entity": e, "processor": processor, "partition": partition,
                               "status": "pending", "open": True, "attempts": 0, "error": None, "rows": 0, "created_at": now,
                               **({"max_attempts": int(max_attempts)} if max_attempts is not None else {})})
                for e in entities]
        for start in range(0, len(docs), 200):  # bounded transactions (Firestore: 500 writes max)
            chunk = docs[start:start + 200]

            def txn(t: Any, chunk: list = chunk) -> None:
                for key, doc in chunk:
                    t.set(TASKS, key, doc)

            self.store.run_transaction(txn)

    def _update(self, entity: str, fields: dict[str, Any]) -> None:
        def txn(t: Any) -> None:
            if t.get(TASKS, self.key(entity)) is None:
                raise KeyError(f"fan-out task {self.key(entity)} was never created")
            t.update(TASKS, self.key(entity), fields)

        self.store.run_transaction(txn)

    def started(self, entity: str, attempt: int) -> None:
        self._update(entity, {"status": "running", "attempts": attempt, "updated_at": self.clock()})

    def done(self, entity: str, attempt: int, rows: int) -> None:
        self._update(entity, {"status": "done", "open": False, "attempts": attempt, "rows": rows, "error": None,
                              "updated_at": self.clock()})

    def failed(self, entity: str, attempt: int, error: str, final: bool) -> None:
        self._update(entity, {"status": "failed" if final else "retrying", "open": not final, "attempts": attempt,
                              "error": error, "updated_at": self.clock()})

    def claim_attempt(self, entity: str, delivery_attempt: int) -> dict[str, Any] | None:
        """Mark the task running and return its document with its attempt number: the
        larger of the bus's delivery count (Pub/Sub sends it only with a dead-letter policy)
        and the attempts recorded so far plus one (a push delivery to an instance that died
        counts). None when the task has ended or its run is gone: a late duplicate delivery."""
        def txn(t: Any) -> dict[str, Any] | None:
            doc = t.get(TASKS, self.key(entity))
            if doc is None or doc.get("status") in TASK_ENDED:
                return None
            attempt = max(int(delivery_attempt or 0), int(doc.get("attempts") or 0) + 1)
            fields = {"status": "running", "attempts": attempt, "updated_at": self.clock()}
            t.update(TASKS, self.key(entity), fields)
            return {**doc, **fields}

        return self.store.run_transaction(txn)

    def any_open(self) -> bool:
        """Whether a task of the run has not ended: one indexed equality query, read after
        this process's own last write, so of two instances ending the last two tasks at
        once at least the later one sees none open (then both race for the finish claim)."""
        return bool(self.store.query(TASKS, {"run_id": self.run_id, "open": True}, limit=1))

    def orphaned(self, entity: str, attempt: int) -> bool:
        """Mark a task of a coordinator that is gone as failed, if its document still exists.
        Returns False when the run already ended (documents purged: a late duplicate)."""
        def txn(t: Any) -> bool:
            doc = t.get(TASKS, self.key(entity))
            if doc is None or doc.get("status") in TASK_ENDED:
                return False
            t.update(TASKS, self.key(entity), {"status": "failed", "open": False, "attempts": attempt, "updated_at": self.clock(),
                                               "error": "orphaned: its coordinator is no longer running"})
            return True

        return bool(self.store.run_transaction(txn))

    def dead_lettered(self, entity: str, deliveries: int, why: Callable[[dict[str, Any]], str]) -> dict[str, Any] | None:
        """Record a task the bus dead-lettered (every delivery ended without an outcome) as
        failed, with ``why(doc)`` as its error, in one transaction. Returns the task as it
        was, or None when it had ended already (an instance recorded it, or this dead letter
        was handled before) or its run is gone: then nothing changes, so a duplicate
        delivery of the dead letter, or of the task, counts nothing twice."""
        def txn(t: Any) -> dict[str, Any] | None:
            doc = t.get(TASKS, self.key(entity))
            if doc is None or doc.get("status") in TASK_ENDED:
                return None
            attempts = max(int(deliveries or 0), int(doc.get("attempts") or 0))
            t.update(TASKS, self.key(entity), {"status": "failed", "open": False, "attempts": attempts, "error": why(doc),
                                               "dead_lettered": True, "updated_at": self.clock()})
            return doc

        return self.store.run_transaction(txn)

    def purge(self) -> int:
        """Delete this run's task documents once its result is recorded in the run history
        (so the collection holds only live runs and polling stays cheap)."""
        keys = [self.key(doc["entity"]) for doc in self.tasks()]
        for start in range(0, len(keys), 200):
            chunk = keys[start:start + 200]

            def txn(t: Any, chunk: list = chunk) -> None:
                for key in chunk:
                    t.delete(TASKS, key)

            self.store.run_transaction(txn)
        return len(keys)

    def tasks(self) -> list[dict[str, Any]]:
        return [doc for _, doc in self.store.query(TASKS, {"run_id": self.run_id})]

    def all_ended(self) -> bool:
        return all(doc["status"] in TASK_ENDED for doc in self.tasks())

    def result(self, timed_out: bool = False, worker_errors: list[str] | None = None) -> FanOutResult:
        res = FanOutResult(self.run_id, 0, timed_out=timed_out, worker_errors=list(worker_errors or []))
        for doc in sorted(self.tasks(), key=lambda d: d["entity"]):
            res.total += 1
            res.attempts += int(doc.get("attempts") or 0)
            if doc["status"] == "done":
                res.succeeded.append(doc["entity"])
                res.rows += int(doc.get("rows") or 0)
            elif doc["status"] == "failed":
                res.failed[doc["entity"]] = doc.get("error") or "failed"
            else:
                res.failed[doc["entity"]] = (f"timed out in state '{doc['status']}' after {doc.get('attempts', 0)} attempt(s)"
                                             + (f"; last error: {doc['error']}" if doc.get("error") else ""))
        return res


def dead_letter_reason(doc: dict[str, Any], deliveries: int, source: str = "") -> str:
    """Why a task the bus dead-lettered failed, from what its document recorded before."""
    count = f"{deliveries} delivery attempts" if deliveries else "its delivery attempts"
    head = f"dead-lettered: {count} exhausted{f' on {source}' if source else ''} without a recorded outcome"
    recorded = int(doc.get("attempts") or 0)
    if recorded == 0:
        why = ("no attempt was recorded: every delivery ran past the ack deadline or its process died, or, on a "
               "remote target, the worker did not answer (check its push endpoint and invoker permission)")
    else:
        why = (f"{recorded} attempt(s) recorded, the last one left '{doc.get('status')}' "
               "(the process handling it died, or it ran past the ack deadline)")
    last = f"; last recorded error: {str(doc['error']).splitlines()[0]}" if doc.get("error") else ""
    return f"{head}: {why}{last}"


class DeadLetterWatch:
    """The coordinator's view of its task subscription's dead letters, on a bus that keeps
    them (the local bus: ``dead_letters_since``). A task whose every delivery ended without
    an outcome (its worker hung past the ack deadline, or died) is dead-lettered by the bus
    and never delivered again: recorded failed at once, rather than left open until the
    fan-out timeout. On Pub/Sub the dead letter is only a message (the remote path handles
    it, :func:`framework.run.fanout_remote.handle_dead_letter`); there the timeout stays."""

    POLL_SECONDS = 0.25

    def __init__(self, bus: Any, subscription: str, tracker: TaskTracker):
        self.bus, self.subscription, self.tracker = bus, subscription, tracker
        self.enabled = hasattr(bus, "dead_letters_since") and hasattr(bus, "last_dead_letter_id")
        self.after = bus.last_dead_letter_id() if self.enabled else 0

    def take(self) -> list[str]:
        """The run's tasks dead-lettered since the last call, each recorded failed once."""
        if not self.enabled:
            return []
        ended = []
        for letter in self.bus.dead_letters_since(self.after, self.subscription):
            self.after = max(self.after, int(letter.id))
            try:
                task = json.loads(letter.data)
            except ValueError:
                continue  # a malformed message: the workers logged it on every delivery
            if not isinstance(task, dict) or task.get("run_id") != self.tracker.run_id or "entity" not in task:
                continue
            entity, n = str(task["entity"]), int(letter.delivery_attempt or 0)
            doc = self.tracker.dead_lettered(entity, n, lambda d, n=n: dead_letter_reason(d, n, self.subscription))
            if doc is not None:
                log.error("fan-out task %s/%s failed: %s", doc.get("processor"), entity, dead_letter_reason(doc, n, self.subscription))
                ended.append(entity)
        return ended


def run_fanout(bus: Bus, store: Any, *, run_id: str, processor: str, partition: str, entities: list[str],
               task_topic: str, subscription: str, execute: Callable[[str, int], int], workers: int = 4,
               max_attempts: int = 3, timeout: float = 600.0, correlation_id: str = "",
               clock: Callable[[], float] = time.time) -> FanOutResult:
    """Coordinate one fanned-out run (see the module docstring). ``execute(entity, attempt)``
    computes and writes one entity's rows and returns the row count; it raises to fail."""
    tracker = TaskTracker(store, run_id, clock)
    tracker.create(entities, processor, str(partition))
    attrs = {"run_id": run_id, "processor": processor, "partition": str(partition)}
    bodies = [json.dumps({"run_id": run_id, "processor": processor, "partition": str(partition), "entity": entity,
                          "correlation_id": correlation_id}).encode() for entity in entities]
    if hasattr(bus, "publish_many"):  # Pub/Sub: batched, one wait for all ids (bench/bench_fanout_gcp.py)
        bus.publish_many(task_topic, [(body, attrs) for body in bodies])
    else:
        for body in bodies:
            bus.publish(task_topic, body, attrs)
    stop = threading.Event()
    errors: list[str] = []
    deadline = time.monotonic() + timeout
    ended: set[str] = set()  # this coordinator's workers report here: no store polling
    ended_lock = threading.Lock()
    wanted = set(entities)

    def finish(entity: str) -> None:
        with ended_lock:
            ended.add(entity)
            if ended >= wanted:
                stop.set()

    def handle(msg: ReceivedMessage) -> None:
        try:
            task = json.loads(msg.data)
            if not isinstance(task, dict) or "entity" not in task:
                raise ValueError("not a task object with an 'entity'")
        except ValueError as exc:
            # not a task of this protocol: never let it stop a worker. Like a failing task it
            # is retried up to max_attempts deliveries, then acked (logged as an error, with
            # its content) so it cannot starve the workers of real tasks.
            text = f"malformed fan-out task message {msg.message_id} on {subscription}: {exc}"
            if msg.delivery_attempt >= max_attempts:
                log.error("%s; dropped after %d deliveries: %r", text, msg.delivery_attempt, msg.data[:500])
                bus.ack(subscription, [msg.ack_id])
                return
            log.error("%s (delivery %d, will retry)", text, msg.delivery_attempt)
            if getattr(bus, "records_errors", False):
                bus.nack(subscription, [msg.ack_id], error=text)  # type: ignore[call-arg]
            else:
                bus.nack(subscription, [msg.ack_id])
            return
        if task.get("run_id") != run_id:
            # A task of another coordinator: crashed (record it failed there) or already ended
            # (a late duplicate: at-least-once delivery). Never loop on it, never die on it.
            other = TaskTracker(store, str(task.get("run_id", "?")), clock)
            if other.orphaned(str(task.get("entity", "?")), msg.delivery_attempt):
                log.warning("fan-out worker of run %s dropped task of run %s (entity %s): its coordinator is gone",
                            run_id, task.get("run_id"), task.get("entity"))
            else:
                log.info("fan-out worker of run %s dropped a duplicate task of ended run %s (entity %s)",
                         run_id, task.get("run_id"), task.get("entity"))
            bus.ack(subscription, [msg.ack_id])
            return
        entity = task["entity"]
        try:
            rows = execute(entity, msg.delivery_attempt)
        except Exception as exc:  # noqa: BLE001 - recorded on the task, retried via the bus, named in the result
            text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            final = msg.delivery_attempt >= max_attempts
            log.warning("fan-out task %s/%s attempt %d failed%s: %s", processor, entity, msg.delivery_attempt,
                        " (final)" if final else ", will retry", text)
            tracker.failed(entity, msg.delivery_attempt, text, final)
            if final:
                bus.ack(subscription, [msg.ack_id])
                finish(entity)
            elif getattr(bus, "records_errors", False):
                bus.nack(subscription, [msg.ack_id], error=text)  # type: ignore[call-arg]
            else:
                bus.nack(subscription, [msg.ack_id])
            return
        tracker.done(entity, msg.delivery_attempt, rows)
        bus.ack(subscription, [msg.ack_id])
        finish(entity)

    def worker(index: int) -> None:
        try:
            while not stop.is_set() and time.monotonic() < deadline:
                messages = bus.pull(subscription, max_messages=1)
                for msg in messages:
                    handle(msg)
                if not messages:
                    time.sleep(0.02)
        except Exception as exc:  # noqa: BLE001 - a dead worker is reported in the result, not hidden
            errors.append(f"worker {index}: {type(exc).__name__}: {exc}")
            log.exception("fan-out worker %d of %s stopped", index, processor)

    threads = [threading.Thread(target=worker, args=(i,), name=f"fanout-{processor}-{i}", daemon=True)
               for i in range(max(1, workers))]
    if not entities:
        stop.set()
    for t in threads:
        t.start()
    watch = DeadLetterWatch(bus, subscription, tracker)
    while not stop.is_set() and time.monotonic() < deadline and any(t.is_alive() for t in threads):
        stop.wait(DeadLetterWatch.POLL_SECONDS if watch.enabled else max(0.0, min(1.0, deadline - time.monotonic())))
        for entity in watch.take():
            finish(entity)
    # the others leave their loop within a pull; a worker stuck in a task that was
    # dead-lettered is not waited for (a daemon thread: its late result is dropped)
    joined_by = min(deadline, time.monotonic() + 2.0) if stop.is_set() else max(deadline, time.monotonic()) + 1.0
    stop.set()
    for t in threads:
        t.join(max(0.0, joined_by - time.monotonic()) + 0.1)
    timed_out = not tracker.all_ended()
    result = tracker.result(timed_out=timed_out, worker_errors=errors)
    if not timed_out:
        tracker.purge()  # the result (failed entities named) goes into the run history
    return result
