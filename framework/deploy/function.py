"""Runtime of the orchestrator Cloud Function: CloudEvent in, Decision out.

Why one generic function: every transition runs the same engine; which transition a message
belongs to follows from the processor that published it (resolved through the manifest),
so the same bundle is deployed once per completion topic with no per-phase code.

Delivery semantics: an exception makes the function return an error, so Pub/Sub redelivers
the message (deploy with ``--retry``); the orchestrator is idempotent, so a redelivered or
duplicated completion changes nothing, and a pending trigger is published by the retry.
Before raising, the error is recorded per message (``pipectl_delivery_errors``, keyed by a
hash of the payload) so ``pipectl bus dead-letters`` can say why a message it lists was
dead-lettered. A blocking quality gate is *not* an error of the delivery: the completion is
recorded, the gate failure alerted and kept in the ledger (the transition stays blocked)
and the message acknowledged; the scheduled sweep re-checks the gate, exactly as the local
driver does. Raising there would redeliver an already-recorded completion until the
delivery limit. Invalid envelopes go to ``PIPECTL_REJECT_TOPIC`` when set (the completion
topic's dead-letter topic), otherwise they raise and reach the subscription's dead-letter
policy.

``handle_sweep`` is the second entry point: a Cloud Scheduler job publishes to the sweep
topic every minute (``pipectl apply`` manages the job) and the function runs one sweeper
pass: deadlines, tiered timeouts, debounce windows, gates re-checked, and pending triggers
whose publish lease expired (a crash between commit and publish).

Alerts go through the rate-limited sinks of the bundled ``pipectl.yaml`` (``alerts:``;
credentials by reference), one limiter per function instance; each sweep flushes the
windows that ended.

Environment: ``PIPECTL_TARGET`` (default ``gcp``) picks the backends from the bundled
``pipectl.yaml``; without that target, Firestore and Pub/Sub in ``GOOGLE_CLOUD_PROJECT``.
"""
from __future__ import annotations

import base64
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any, Mapping

from framework.errors import ConfigError, PipectlError, QualityGateError

_LOCK = threading.Lock()
_STATE: dict[str, Any] = {"project_dir": None, "orchestrator": None, "backends": None, "alerts": None}


def configure(project_dir: str | Path) -> None:
    """Set the folder holding the bundled manifests (done once by ``main.py``), and log the
    framework's lines as Cloud Logging JSON (PIPECTL_LOG_FORMAT / PIPECTL_LOG_LEVEL override)."""
    from framework.config.logs import configure as configure_logs, level_of

    configure_logs(level_of(0, os.environ.get("PIPECTL_LOG_LEVEL") or "INFO"), os.environ.get("PIPECTL_LOG_FORMAT") or "json")
    with _LOCK:
        _STATE["project_dir"] = Path(project_dir)
        _STATE["orchestrator"] = None


def _deployed_target(project_dir: Path) -> Any:
    """The deployed target of pipectl.yaml (PIPECTL_TARGET, default gcp), or None."""
    from framework.config import load_config

    return load_config(project_dir).targets.get(os.environ.get("PIPECTL_TARGET", "gcp"))


def _backend_factories(project_dir: Path) -> dict[str, Any]:
    """Constructors of the state store, bus and warehouse of the configured target, else
    Firestore + Pub/Sub + BigQuery in ``GOOGLE_CLOUD_PROJECT``."""
    from framework.backends.registry import build_backend
    from framework.config import load_config

    target_name = os.environ.get("PIPECTL_TARGET", "gcp")
    config = load_config(project_dir)
    if target_name in config.targets:
        target = config.targets[target_name]
        settings = dict(target.settings)
        return {role: (lambda spec=target.spec(role): build_backend(spec, project_dir, settings))
                for role in ("state", "bus", "warehouse")}
    gcp_project = os.environ.get("GOOGLE_CLOUD_PROJECT") or os.environ.get("GCP_PROJECT")
    if not gcp_project:
        raise ConfigError(f"no target '{target_name}' in {project_dir}/pipectl.yaml and GOOGLE_CLOUD_PROJECT is not set",
                          hint="add a gcp target to pipectl.yaml or deploy with --set-env-vars=GOOGLE_CLOUD_PROJECT=...")
    from framework.backends.bigquery import BigQueryWarehouse
    from framework.backends.firestore import FirestoreStateStore
    from framework.backends.pubsub import PubSubBus

    return {"state": lambda: FirestoreStateStore(gcp_project), "bus": lambda: PubSubBus(gcp_project),
            "warehouse": lambda: BigQueryWarehouse(gcp_project)}


class _GateRows:
    """Quality-gate row counts through the warehouse, opened only when a gate is checked."""

    def __init__(self, project: Any, factory: Any):
        self.project, self.factory, self.warehouse = project, factory, None

    def __call__(self, gate: Any, partition: str) -> int:
        from framework.orchestrator.gates import count_partition_rows

        if self.warehouse is None:
            self.warehouse = self.factory()
            _STATE["backends"] = (*(_STATE["backends"] or ()), self.warehouse)
        return count_partition_rows(self.warehouse, self.project, gate.processor, partition)


def orchestrator() -> Any:
    """The process-wide Orchestrator, built on first use (a warm instance reuses it)."""
    with _LOCK:
        if _STATE["orchestrator"] is None:
            from framework.project import load
            from framework.orchestrator import Orchestrator

            project_dir = _STATE["project_dir"] or Path(os.environ.get("PIPECTL_PROJECT_DIR") or Path.cwd())
            target = _deployed_target(Path(project_dir))
            project = load(project_dir)
            factories = _backend_factories(Path(project_dir))
            store, bus = factories["state"](), factories["bus"]()
            if target is not None:  # its dataset/topic prefixes: dev and prod apart in one cloud project
                from framework.backends.registry import target_project

                project = target_project(project_dir, target, project)
                if target.dataset_prefix:
                    from framework.backends.prefixed_state import PrefixedStateStore

                    store = PrefixedStateStore(store, target.dataset_prefix)
            _STATE["backends"] = (store, bus)
            _STATE["alerts"] = alerts = _alerts(Path(project_dir))
            _STATE["orchestrator"] = Orchestrator(project, store, bus, alerts=alerts,
                                                  gate_checker=_GateRows(project, factories["warehouse"]),
                                                  dead_letter_topic=os.environ.get("PIPECTL_REJECT_TOPIC") or None)
        return _STATE["orchestrator"]


def _alerts(project_dir: Path) -> Any:
    """The rate-limited alerts of the bundled pipectl.yaml (a log sink by default: the
    function's log is Cloud Logging, where log-based alerts can pick them up)."""
    from framework.alerts import alerts_from_config, load_alerts_config

    return alerts_from_config(load_alerts_config(project_dir))


def message_data(cloud_event: Any) -> tuple[bytes, Mapping[str, str]]:
    """The Pub/Sub message payload and attributes of a ``messagePublished`` CloudEvent."""
    data = cloud_event.data if hasattr(cloud_event, "data") else cloud_event.get("data")
    if isinstance(data, (bytes, str)):
        data = json.loads(data)
    try:
        message = data["message"]
    except (KeyError, TypeError) as exc:
        raise ConfigError("the CloudEvent is not a Pub/Sub messagePublished event (no data.message)",
                          hint="trigger the function from the completion topic (--trigger-topic)") from exc
    return base64.b64decode(message.get("data") or ""), dict(message.get("attributes") or {})


def handle_completion(cloud_event: Any) -> dict[str, Any]:
    """Handle one completion; returns the Decision as a dict and logs it as one JSON line.

    A blocking quality gate is acknowledged (alerted, recorded, re-checked by the sweep);
    other failures (BackendError, ...) are recorded for ``pipectl bus dead-letters`` and
    re-raised so the message is redelivered."""
    from framework.config.logs import log_context

    payload, attributes = message_data(cloud_event)
    with log_context(correlation_id=attributes.get("correlation_id"), processor=attributes.get("processor"),
                     partition=attributes.get("partition")):
        return _handle_completion(cloud_event, payload, attributes)


def _handle_completion(cloud_event: Any, payload: bytes, attributes: Mapping[str, str]) -> dict[str, Any]:
    event_id = _event_id(cloud_event)
    orch = orchestrator()
    try:
        decision = orch.handle_completion(payload)
    except QualityGateError as exc:
        result = {"action": "gate_failed", "reason": exc.message}
        _log("WARNING", {"event_id": event_id, "decision": result, "acknowledged": True,
                         "note": "transition blocked until the gate passes; the scheduled sweep re-checks it"})
        return result
    except PipectlError as exc:
        _log("ERROR", {"event_id": event_id, "error": type(exc).__name__, "message": exc.render(), "attributes": attributes})
        if not getattr(exc, "delivery_error_recorded", False):  # the orchestrator records publish failures itself
            _record_delivery_error(orch.store, payload, attributes, exc.render(), _source_topic(cloud_event))
        raise
    result = decision.to_dict()
    _log("INFO", {"event_id": event_id, "decision": result})
    return result


def handle_sweep(cloud_event: Any = None) -> dict[str, Any]:
    """One sweeper pass (the Cloud Scheduler tick). Gate failures are alerted and reported
    in the result, not raised: the next tick re-checks them; a redelivered tick would only
    repeat the pass."""
    from framework.orchestrator.sweeper import sweep_report

    orch = orchestrator()
    report = sweep_report(orch)
    alerts = _STATE.get("alerts")
    if alerts is not None:
        alerts.flush()  # windows that ended: their summaries go out now, not at the next alert
    _log("WARNING" if report["gate_failures"] else "INFO", {"event_id": _event_id(cloud_event), "sweep": report})
    return report


def _source_topic(cloud_event: Any) -> str | None:
    """The topic of a Pub/Sub CloudEvent (``//pubsub.googleapis.com/projects/P/topics/T``)."""
    try:
        source = cloud_event["source"]
    except (KeyError, TypeError):
        return None
    return source.rsplit("/topics/", 1)[1] if isinstance(source, str) and "/topics/" in source else None


def _record_delivery_error(store: Any, payload: bytes, attributes: Mapping[str, str], error: str, topic: str | None) -> None:
    """Keep why a delivery failed, for ``pipectl bus dead-letters`` (Pub/Sub carries no error
    with a dead-lettered message). Best effort: never hides the original error."""
    from framework.orchestrator.delivery_errors import record_delivery_error

    try:
        record_delivery_error(store, payload, error, topic=topic)
    except PipectlError as exc:
        _log("ERROR", {"error": "could not record the delivery error", "message": exc.render()})


def _event_id(cloud_event: Any) -> str | None:
    try:
        return cloud_event["id"]
    except (KeyError, TypeError):
        return None


def _log(severity: str, fields: Mapping[str, Any]) -> None:
    """One structured log line (Cloud Logging parses JSON on stdout)."""
    line = json.dumps({"severity": severity, "component": "pipectl-orchestrator", **fields}, default=str)
    print(line, file=sys.stdout, flush=True)  # the function's log, not library output


def reset() -> None:
    """Forget the cached orchestrator and close its backends (tests, reconfiguration)."""
    with _LOCK:
        backends = _STATE.get("backends")
        _STATE.update(orchestrator=None, backends=None, alerts=None)
    for backend in backends or ():
        backend.close()
