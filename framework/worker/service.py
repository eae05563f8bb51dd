"""The worker's work: a phase trigger runs its processors, a fan-out task runs one entity.

Why here and not in the pipeline driver: ``pipectl run`` (:class:`PipelineDriver`) plays every
role of the deployment in one process and pulls the bus; the worker service is the deployed
counterpart of its *phase worker* role only, fed by Pub/Sub push, one delivery per request,
on as many instances as Cloud Run starts. The orchestrator stays the Cloud Function; the
scheduler publishes the first phase's trigger. What it reuses, unchanged: the processor runner
(run claims in the run history: a live run of the same processor and partition is skipped),
the trigger dedupe collection of the driver (``orch_trigger_dedup``: a trigger id is run once,
by the driver or by a worker), the fan-out task documents, ``pipectl trace``'s trigger records.

Delivery is at least once, so every handler is idempotent, and answers 2xx only once its work
is recorded:

* trigger: claimed by id with a lease (:class:`TriggerClaims`); a redelivery while another
  instance runs it answers 503 (Pub/Sub retries later), after it ran 200 (dropped); a
  failure un-claims it and answers 500, so it is redelivered. The processors the trigger
  dispatches run in dependency order; a fanned-out one publishes its tasks and the rest of
  the phase continues on the instance that finishes the fan-out.
* task: :func:`framework.run.fanout_remote.handle_task`.
* task dead letter: :func:`framework.run.fanout_remote.handle_dead_letter` (a task whose
  every delivery ended without an outcome fails, and its run finishes, at once).
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from framework.errors import EnvelopeError
from framework.worker.push import MalformedPush, PushMessage, parse_json_data

log = logging.getLogger(__name__)
deliveries = logging.getLogger("framework.worker.deliveries")

PROJECT_DIR_ENV = "PIPECTL_PROJECT_DIR"
TARGET_ENV = "PIPECTL_TARGET"
LEASE_ENV = "PIPECTL_WORKER_TRIGGER_LEASE"
DEFAULT_LEASE_SECONDS = 600.0  # Pub/Sub's longest push ack deadline: a live handler is never taken over
DEAD_LETTER_ROUTE = "task-dead-letter"


@dataclass
class Reply:
    """An HTTP answer: ``status`` 2xx acknowledges the delivery, anything else redelivers it."""

    status: int
    body: dict[str, Any] = field(default_factory=dict)


class TriggerClaims:
    """Trigger ids claimed with a lease, in the driver's dedupe collection.

    ``claim`` answers ``claimed`` (run it), ``running`` (another instance is running it:
    answer 503 so Pub/Sub retries) or ``done`` (run before: a duplicate). A claim whose
    holder died (no ``done`` within ``lease`` seconds) is taken over. Documents written by
    :class:`framework.orchestrator.engine.TriggerDedup` (``pipectl run``) count as done.
    """

    def __init__(self, store: Any, lease: float = DEFAULT_LEASE_SECONDS, clock: Callable[[], float] = time.time,
                 holder: str = ""):
        from framework.orchestrator.engine import TriggerDedup

        self.collection = TriggerDedup.COLLECTION
        self.store, self.lease, self.clock, self.holder = store, lease, clock, holder

    def claim(self, trigger_id: str) -> str:
        def txn(t: Any) -> str:
            doc = t.get(self.collection, trigger_id)
            now = self.clock()
            if doc is not None:
                if doc.get("state") != "running":
                    return "done"
                if now - float(doc.get("at") or 0) < self.lease:
                    return "running"
                log.warning("trigger %s: claim of %s expired after %.0fs (instance presumed dead): taken over",
                            trigger_id, doc.get("holder"), now - float(doc.get("at") or 0))
            t.set(self.collection, trigger_id, {"at": now, "state": "running", "holder": self.holder})
            return "claimed"

        return str(self.store.run_transaction(txn))

    def done(self, trigger_id: str) -> None:
        self.store.run_transaction(lambda t: t.set(self.collection, trigger_id,
                                                   {"at": self.clock(), "state": "done", "holder": self.holder}))

    def forget(self, trigger_id: str) -> None:
        self.store.run_transaction(lambda t: t.delete(self.collection, trigger_id))


class WorkerService:
    """One worker instance: the project, its target's backends, a runner with remote fan-out."""

    def __init__(self, session: Any, lease: float | None = None, clock: Callable[[], float] = time.time):
        from framework.graph.graph import PipelineGraph
        from framework.run.runner import ProcessorRunner

        self.session = session
        self.project = session.project
        self.store = session.backends.state
        self.alerts = session.alerts
        self.instance = f"{os.uname().nodename}:{os.getpid()}:{uuid.uuid4().hex[:4]}"
        self.runner = ProcessorRunner(self.project, session.warehouse, session.backends.bus, self.store,
                                      alerts=self.alerts, clock=clock, remote_fanout=True)
        # OpenLineage run events (pipectl.yaml lineage:), as `pipectl run` emits them: START where
        # a run starts, COMPLETE/FAIL where it ends (for a fan-out: the instance finishing it)
        self.runner.lineage = getattr(session, "lineage", None)
        self.graph = PipelineGraph(self.project)
        lease = float(os.environ.get(LEASE_ENV, DEFAULT_LEASE_SECONDS)) if lease is None else lease
        self.claims = TriggerClaims(self.store, lease, clock, self.instance)
        self.counts: dict[str, int] = {}
        self._counts_lock = threading.Lock()
        self._tables_ready = False

    @classmethod
    def open(cls, project_dir: str | Path | None = None, target: str | None = None) -> "WorkerService":
        """The project in ``project_dir`` (else ``PIPECTL_PROJECT_DIR``, else the working
        directory) with the backends of ``target`` (else ``PIPECTL_TARGET``)."""
        from framework.drive.session import Session

        root = project_dir or os.environ.get(PROJECT_DIR_ENV) or "."
        # alerts go out as they happen (rate-limited per instance), not aggregated until exit
        return cls(Session.open(root, target or os.environ.get(TARGET_ENV) or None))

    def close(self) -> None:
        self.session.close()

    def health(self) -> dict[str, Any]:
        with self._counts_lock:
            counts = dict(self.counts)
        return {"status": "ok", "instance": self.instance, "project": self.project.name, "handled": counts}

    # ------------------------------------------------------------------ triggers
    def handle_trigger(self, msg: PushMessage) -> Reply:
        from framework.orchestrator.envelope import decode
        from framework.drive.trace import record_trigger

        try:
            env = decode(msg.data)
        except EnvelopeError as exc:
            raise MalformedPush(f"trigger {msg.message_id} is not a valid envelope: {exc.render()}") from exc
        phase = env.get("phase")
        if env.get("kind") != "trigger":
            raise MalformedPush(f"message {msg.message_id} is a '{env.get('kind')}' envelope, not a trigger: "
                                f"the push subscription of /trigger must be on a phase's trigger topic")
        if phase == "end":
            return self._reply("trigger", 200, {"outcome": "nothing to run", "phase": phase})
        if phase not in self.project.phase_names():
            raise MalformedPush(f"trigger {env.get('trigger_id')} is for phase '{phase}', not a phase of this project "
                                f"({', '.join(self.project.phase_names())})")
        trigger_id = str(env.get("trigger_id") or msg.attributes.get("trigger_id") or msg.message_id)
        state = self.claims.claim(trigger_id)
        if state == "done":
            log.info("phase %s: dropped duplicate trigger %s", phase, trigger_id)
            return self._reply("trigger", 200, {"outcome": "duplicate", "trigger_id": trigger_id, "phase": phase})
        if state == "running":
            return self._reply("trigger", 503, {"outcome": "running elsewhere", "trigger_id": trigger_id, "phase": phase})
        try:
            self._ensure_tables(phase)
            record_trigger(self.store, env, msg.subscription_name, phase)
            results = self.run_phase(phase, env)
        except BaseException:
            self.claims.forget(trigger_id)  # not handled after all: the redelivery runs it
            raise
        self.claims.done(trigger_id)
        return self._reply("trigger", 200, {"outcome": "ran", "trigger_id": trigger_id, "phase": phase,
                                            "partition": env.get("partition"),
                                            "runs": [{"processor": r.processor, "status": r.status, "run_id": r.run_id}
                                                     for r in results]})

    def _ensure_tables(self, phase: str) -> None:
        """Every output table exists (what `pipectl apply` does; the driver does it too): a
        disabled processor's table stays, empty, for the inputs that still name it. Later
        triggers list the phase's own tables again (one catalog query per dataset): one found
        missing is rebuilt by its processor (ProcessorRunner.check_outputs), as locally."""
        if not self._tables_ready:
            self.runner.check_outputs(list(self.project.processors.values()))
            self._tables_ready = True
        else:
            self.runner.check_outputs(self.project.processors_in(phase))

    def run_phase(self, phase: str, env: dict[str, Any]) -> list[Any]:
        """The processors ``env`` dispatches in ``phase`` (all of them for a first trigger),
        plus those whose code changed since they last ran the partition, in dependency order."""
        meta = env.get("metadata") or {}
        procs = [p.name for p in self.project.processors_in(phase)]
        dispatched = meta.get("expected")
        full = meta.get("full") is True  # `pipectl run --full` with remote execution: every entity
        if isinstance(dispatched, list) and not full:
            # beyond the dispatch list: code changed, or the output table went missing (rebuilt)
            state, partition = self.runner.code_state, str(env.get("partition"))
            changed = {n for n in procs if self.runner.missing_output(self.project.processors[n], partition)
                       or (state is not None and state.changed_reason(self.project.processors[n], partition))}
            extra = set(changed)
            for name in changed:
                extra |= self.graph.downstream(name) & set(procs)
            procs = [p for p in procs if p in set(dispatched) or p in extra]
        order = self.graph.topological_order(procs)
        versions = self.runner.versions
        announced = versions is not None and versions.announce_trigger(env, env.get("partition"))
        return self.run_processors(phase, order, env, list(procs), full, announced)

    def run_processors(self, phase: str, order: Sequence[str], env: dict[str, Any], round_processors: list[str],
                       full: bool, sources_announced: bool = False) -> list[Any]:
        """Run ``order``; a processor whose fan-out was dispatched ends the list here (the
        instance that finishes the fan-out runs the rest: its ``continuation``). An
        incremental trigger runs them as the local driver does: a processor whose inputs no
        run rewrote is skipped without a query, one whose inputs only selective runs rewrote
        takes their entity lists (``RunRequest.trust_versions``, docs/runtime.md)."""
        from framework.run.runner import RunRequest

        meta = env.get("metadata") or {}
        corr = env.get("root_correlation_id") or env.get("correlation_id") or uuid.uuid4().hex[:16]
        trigger = {k: env.get(k) for k in ("kind", "trigger_id", "execution_id", "correlation_id", "root_correlation_id",
                                           "partition", "phase")}
        trigger["metadata"] = {"mode": meta.get("mode"), "source": meta.get("source")}
        results = []
        for i, name in enumerate(order):
            cont = {"phase": phase, "names": list(order[i + 1:]), "round_processors": round_processors, "full": full,
                    "trigger": trigger, "sources_announced": sources_announced}
            mode = str(meta.get("mode") or ("full" if full else "incremental"))
            req = RunRequest(name, str(env.get("partition")), full=full, correlation_id=corr,
                             parent_id=env.get("execution_id"), trigger_id=env.get("trigger_id"),
                             mode=mode, publish=True, round_processors=round_processors, continuation=cont,
                             trust_versions=mode == "incremental" and not full, sources_announced=sources_announced)
            res = self.runner.run(req)
            results.append(res)
            log.info("phase %s: %s for %s: %s%s", phase, name, req.partition, res.status,
                     f" ({res.error})" if res.error else "")
            if res.status == "dispatched":
                break
        return results

    def _continue(self, doc: dict[str, Any], finished: Any) -> None:
        """A fan-out finished here: run the rest of its phase (its continuation)."""
        cont = doc.get("continuation") or {}
        if cont.get("names"):
            log.info("phase %s: fan-out of %s finished here; running the rest of the phase: %s",
                     cont["phase"], doc["processor"], ", ".join(cont["names"]))
            self.run_processors(cont["phase"], cont["names"], cont["trigger"], cont["round_processors"], cont["full"],
                                bool(cont.get("sources_announced")))

    # ------------------------------------------------------------------ tasks
    def handle_task(self, msg: PushMessage) -> Reply:
        from framework.run.fanout_remote import handle_task

        task = parse_json_data(msg, "fan-out task")
        if "run_id" not in task or "entity" not in task:
            raise MalformedPush(f"fan-out task {msg.message_id} has no 'run_id' and 'entity'")
        lock = nullcontext() if getattr(self.runner.warehouse, "concurrent_jobs", False) else self.runner.lock
        with lock:
            out = handle_task(self.runner, task, msg.delivery_attempt, on_finished=self._continue)
        body = {"outcome": out.status, "run_id": out.run_id, "entity": out.entity, "attempt": out.attempt,
                "processor": task.get("processor"), **({"error": out.error} if out.error else {}),
                **({"finished": out.finished.status} if out.finished is not None else {})}
        return self._reply("task", 500 if out.retry else 200, body)

    def handle_task_dead_letter(self, msg: PushMessage) -> Reply:
        """A fan-out task the bus dead-lettered (pushed by the dead-letter topic's
        ``-pipectl-worker`` subscription): the task is recorded failed and its run finished
        (:func:`framework.run.fanout_remote.handle_dead_letter`). A letter that is not a task
        (a dead-letter topic several topics share, a malformed task rejected on every
        delivery) is acknowledged and left to ``pipectl bus dead-letters``: answering
        anything else would only make Pub/Sub push it again until its retention ends."""
        from framework.run.fanout_remote import handle_dead_letter

        attrs = msg.attributes
        source = str(attrs.get("CloudPubSubDeadLetterSourceSubscription") or attrs.get("source_subscription") or "")
        try:
            task = json.loads(msg.data)
        except ValueError:
            task = None
        if not isinstance(task, dict) or "run_id" not in task or "entity" not in task:
            log.warning("worker /%s: dead letter %s from %s is not a fan-out task: acknowledged, listed by "
                        "`pipectl bus dead-letters`", DEAD_LETTER_ROUTE, msg.message_id, source or "?")
            return self._reply(DEAD_LETTER_ROUTE, 200, {"outcome": "not a task", "message_id": msg.message_id})
        count = str(attrs.get("CloudPubSubDeadLetterSourceDeliveryCount") or attrs.get("delivery_attempt") or "0")
        lock = nullcontext() if getattr(self.runner.warehouse, "concurrent_jobs", False) else self.runner.lock
        with lock:
            out = handle_dead_letter(self.runner, task, int(count) if count.isdigit() else 0, source.rsplit("/", 1)[-1],
                                     on_finished=self._continue)
        body = {"outcome": out.status, "run_id": out.run_id, "entity": out.entity, "processor": task.get("processor"),
                **({"error": out.error} if out.error else {}),
                **({"finished": out.finished.status} if out.finished is not None else {})}
        return self._reply(DEAD_LETTER_ROUTE, 200, body)

    def _reply(self, route: str, status: int, body: dict[str, Any]) -> Reply:
        key = f"{route}:{body.get('outcome')}"
        with self._counts_lock:
            self.counts[key] = self.counts.get(key, 0) + 1
        deliveries.info("%s", json.dumps({"worker": self.instance, "route": route, "status": status, **body}, default=str))
        if self.alerts is not None:
            self.alerts.flush()  # the summaries of rate-limit windows that ended (the process lives on)
        return Reply(status, body)

    def reject(self, route: str, msg_text: str, subscription: str = "") -> Reply:
        """A delivery that can never run (FM 5): 400, logged and alerted on every delivery;
        the subscription's dead-letter policy moves it to the dead-letter topic after
        ``max_delivery_attempts`` (docs/gcp.md#the-worker-service)."""
        text = f"worker /{route}: rejected a delivery{f' of {subscription}' if subscription else ''}: {msg_text}"
        log.error("%s", text)
        if self.alerts is not None:
            self.alerts.alert(f"worker_rejected:{route}", "error", text, {"subscription": subscription})
        return self._reply(route, 400, {"outcome": "rejected", "error": msg_text})
