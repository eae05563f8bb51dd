"""Build an Orchestrator for a project folder and target (what `pipectl sweep`/`status` use).

The backends come from the target of ``pipectl.yaml`` through the backend registry (embedded
default: ``.pipectl/ledger.sqlite`` and ``.pipectl/bus.sqlite``), the alerts from its
``alerts:`` section (rate limited), the clock from the runtime's virtual clock (wall time
plus the offset `pipectl run`/`demo` may have moved forward, stored in the ledger, so the
sweeper and the runs agree on what time it is). Quality gates count rows in the target's
warehouse, opened only when a transition declares a gate.
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from framework.orchestrator.engine import Orchestrator


@contextmanager
def open_orchestrator(project_root: str | Path = ".", target: str | None = None, *, publish: bool = True) -> Iterator[Orchestrator]:
    """Yield a ready Orchestrator; closes the backends and flushes alert summaries after.

    ``publish=False`` (status) never opens the bus or the warehouse."""
    from framework.backends.registry import open_backends, target_project
    from framework.alerts import alerts_from_config, load_alerts_config
    from framework.alerts.alert_log import attach
    from framework.orchestrator.clock import VirtualClock

    backends = open_backends(project_root, target)
    project = target_project(project_root, backends.target)  # the target's dataset/topic prefixes
    alerts = None
    try:
        store = backends.state
        clock = VirtualClock(store=store)
        alerts = alerts_from_config(load_alerts_config(project.root), clock=clock)
        attach(alerts, store)  # kept for `pipectl ui` (the alerts page)
        gate_checker = None
        if publish and any(t.quality_gates for t in project.transitions()):
            gate_checker = _gate_checker(project, backends)
        bus = backends.bus if publish else _NoBus()
        yield Orchestrator(project, store, bus, alerts=alerts, clock=clock, gate_checker=gate_checker)
    finally:
        try:
            if alerts is not None:
                # the command ends with this process: report windows still open too, or
                # their suppressed alerts would vanish unreported (FAILURE-MODES 21)
                alerts.flush(final=True)
        finally:
            backends.close()


def _gate_checker(project: Any, backends: Any) -> Any:
    from framework.orchestrator.gates import count_partition_rows

    def check(gate: Any, partition: str) -> int:
        return count_partition_rows(backends.warehouse, project, gate.processor, partition)

    return check


class _NoBus:
    """The bus of a read-only orchestrator: publishing from `pipectl status` is a bug."""

    supports_push = False

    def publish(self, topic: str, data: bytes, attributes: Any = None) -> str:
        raise RuntimeError(f"read-only orchestrator (pipectl status) tried to publish to {topic}")


def sweep(project_root: str | Path = ".", target: str | None = None) -> list[dict[str, Any]]:
    """One sweeper pass; returns the decisions as dicts (raises QualityGateError if a gate blocked)."""
    with open_orchestrator(project_root, target) as orch:
        return [d.to_dict() for d in orch.sweep()]


def status(project_root: str | Path = ".", target: str | None = None, partition: str | None = None) -> list[Any]:
    """TransitionStatus rows for every (transition, partition), or one partition."""
    with open_orchestrator(project_root, target, publish=False) as orch:
        return orch.status(partition)


def status_and_problems(project_root: str | Path = ".", target: str | None = None, partition: str | None = None,
                        grace: float | None = None) -> tuple[list[Any], list[Any]]:
    """`pipectl status [--check]`: the rows, and the problems of started partitions
    (:mod:`framework.orchestrator.health`), read with one orchestrator."""
    from framework.orchestrator.health import DEFAULT_GRACE_SECONDS, find_problems

    with open_orchestrator(project_root, target, publish=False) as orch:
        return orch.status(partition), find_problems(orch, partition, grace=DEFAULT_GRACE_SECONDS if grace is None else grace)
