"""The fan-out half of a processor run: its tasks, their outcome, and finishing a run whose
tasks other processes executed.

Split from :mod:`framework.run.runner` along the seam between one run's lifecycle (claim,
decide, write, record, publish: the runner) and what only fanned-out processors do (a task
per entity on the bus, run by worker threads here or by the worker service's instances, and
the run finished by whichever process records the last task: :mod:`framework.run.fanout_remote`).
The functions take the :class:`~framework.run.runner.ProcessorRunner` whose warehouse, bus,
store, lock and alerts they use, and call back its shared steps (``conclude``,
``complete``, ``restore_dispatched``).
"""
from __future__ import annotations

import time
from contextlib import nullcontext
from typing import Any

from framework.manifest.model import Processor
from framework.run import decisions, messages, runner_io as io


def run_fanout_processor(runner: Any, proc: Processor, request: Any, res: Any, ids: list[str] | None,
                         decision: decisions.EntityDecision) -> None:
    """A fanned-out processor's run: its task list (the entities the transform produces, of
    ``ids``), rows of entities it no longer produces dropped, then one task per entity on the
    bus, run here by worker threads or, with ``remote_fanout``, dispatched to other processes."""
    from framework.run.fanout import run_fanout

    assert proc.fanout is not None
    with runner.lock:
        if ids is None or not proc.transform.python:
            entities = io.transform_entities(runner.warehouse, runner.project, proc, request.partition, ids)
        else:  # a Python transform cannot say which entities it produces without running them all
            entities = list(ids)
        if ids is None:
            io.delete_except(runner.warehouse, runner.project, proc, request.partition, entities)
        else:  # changed entities the transform no longer produces (their line was pulled): rows go
            io.delete_entities(runner.warehouse, runner.project, proc, request.partition,
                               sorted(set(ids) - set(entities)))
    subscription = messages.task_subscription(runner.project, proc)
    # the bus dead-letters a task after the subscription's max_delivery_attempts: a larger
    # fanout.max_attempts would leave it 'retrying' until the fan-out timeout, its error lost
    max_attempts = min(proc.fanout.max_attempts, messages.task_delivery_limit(runner.project, proc))

    # a warehouse that runs jobs concurrently (BigQuery) is not serialised: the lock exists
    # for the embedded DuckDB file's one connection (bench/bench_fanout_gcp.py measures it)
    lock = nullcontext() if getattr(runner.warehouse, "concurrent_jobs", False) else runner.lock

    if runner.remote_fanout and entities:  # the tasks go to other processes; whoever records the last one finishes
        from framework.run.fanout_remote import dispatch

        dispatch(runner, proc, request, res, decision, ids, list(entities), max_attempts)
        return

    def execute(entity: str, attempt: int) -> int:  # rows are counted once for all entities below
        with lock:
            return io.transform_and_write(runner.warehouse, runner.project, proc, request.partition, [entity], res.run_id,
                                          count=False)

    out = run_fanout(runner.bus, runner.store, run_id=res.run_id, processor=proc.name, partition=str(request.partition),
                     entities=list(entities), task_topic=proc.fanout.task_topic, subscription=subscription,
                     execute=execute, workers=proc.fanout.workers, max_attempts=max_attempts,
                     timeout=runner.fanout_timeout, correlation_id=res.correlation_id, clock=runner.clock)
    apply_result(runner, proc, request, res, out)

def apply_result(runner: Any, proc: Processor, request: Any, res: Any, out: Any) -> None:
    """The run's rows, status and error from its tasks' outcome; failed tasks alerted."""
    if out.succeeded and proc.output is not None:  # one query, not one per task (bench_fanout_gcp.py)
        with runner.lock:
            res.record_count = io.count_entity_rows(runner.warehouse, runner.project, proc, request.partition, out.succeeded)
    else:
        res.record_count = out.rows
    res.tasks = out.total
    res.failed_entities = dict(out.failed)
    res.status = out.status
    if out.failed:
        names = ", ".join(sorted(out.failed)[:20]) + (" ..." if len(out.failed) > 20 else "")
        res.error = f"{len(out.failed)} of {out.total} fan-out task(s) failed: {names}"
        if out.timed_out:
            res.error += f" (tasks still unfinished after the {runner.fanout_timeout:.0f}s fan-out timeout)"
        if out.worker_errors:  # why tasks were left unfinished: a worker died
            res.error += "; worker(s) stopped: " + "; ".join(out.worker_errors[:5])
        if runner.alerts is not None:
            runner.alerts.alert(f"fanout_partial:{proc.name}", "error" if out.status == "failed" else "warning",
                              res.error, {"processor": proc.name, "partition": str(request.partition)})


def finish_dispatched(runner: Any, doc: dict[str, Any], result: Any) -> Any:
    """Finish a remote fan-out run from its stored state ``doc`` (written by
    :func:`framework.run.fanout_remote.dispatch`) and its tasks' ``result``
    (a :class:`~framework.run.fanout.FanOutResult`): the steps after the tasks of
    :meth:`ProcessorRunner._execute`, the completion and the run record, exactly as a local run would."""
    from framework.run.fanout_remote import stored_decision

    proc, request, res = runner.restore_dispatched(doc)
    decision, ids = stored_decision(doc), doc.get("ids")
    record = runner.history.get(res.run_id) if runner.history is not None else None
    started = time.perf_counter() - max(0.0, runner.clock() - float(doc.get("started_at") or runner.clock()))

    def work() -> bool:
        t1 = time.perf_counter()
        apply_result(runner, proc, request, res, result)
        res.durations["tasks"] = round(max(0.0, runner.clock() - float(doc.get("dispatched_at") or runner.clock())), 6)
        res.durations["transform_write"] = round(res.durations.get("transform_write", 0.0) + time.perf_counter() - t1, 6)
        res.durations["write"] = res.durations["transform_write"]
        runner.conclude(proc, request, res, ids, decision)
        return True

    runner.complete(proc, request, res, record, started, work)
    return res


__all__ = ["apply_result", "finish_dispatched", "run_fanout_processor"]
