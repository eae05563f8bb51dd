"""The messages a processor run sends: its completion envelope (what the orchestrator
counts), published even when building it fails (a minimal failed one, FM 17), the run's
error text, and the fan-out task subscription it reads. Split from
:mod:`framework.run.runner`, whose control flow stays apart from message building, and
from :mod:`framework.run.runner_io`, which keeps the warehouse side of a run.
"""
from __future__ import annotations

import logging
from typing import Any

from framework.errors import ConfigError, PipectlError
from framework.manifest.model import Processor, Project


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


def publish_completion(bus: Any, alerts: Any, project: Project, proc: Processor, request: Any, res: Any) -> None:
    """Publish the completion; a failure to build or publish it fails the run (FM 17)
    and a minimal failed completion is attempted so the orchestrator still hears of it."""
    if bus is None:
        return
    topic = completion_topic(project, proc)
    if topic is None:
        return
    try:
        envelope = completion_envelope(project, proc, request, res)
        data, attrs = completion_message(envelope)
        res.message_id = bus.publish(topic, data, attrs)
        res.envelope = envelope
        return
    except Exception as exc:  # noqa: BLE001 - turned into a failed run + failed completion below
        reason = describe_failure(exc, after_write=res.status in ("success", "partial"))
        logging.getLogger(__name__).error("completion of %s for %s could not be published: %s",
                                          proc.name, request.partition, reason)
        res.status, res.error, res.error_type = "failed", reason, type(exc).__name__
        if alerts is not None:
            alerts.alert(f"completion_failed:{proc.name}", "error", reason,
                         {"processor": proc.name, "partition": str(request.partition)})
    envelope = completion_envelope(project, proc, request, res, minimal=True)
    data, attrs = completion_message(envelope)
    res.message_id = bus.publish(topic, data, attrs)
    res.envelope = envelope


def describe_failure(exc: BaseException, after_write: bool) -> str:
    """An exception as the run's error text; ``after_write``: the rows are already written."""
    text = exc.render() if isinstance(exc, PipectlError) else f"{type(exc).__name__}: {exc}"
    if after_write:
        text += " (the output rows were written; the run is failed so it will be retried)"
    return text
