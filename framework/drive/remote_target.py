"""The library API of ``pipectl run`` / ``backfill`` on an ``execution: remote`` target.

:class:`RemoteTarget` opens what following needs and nothing more: the project, the target's
backends and an orchestrator (status, the sweep) with its quality-gate row counts, but never
the processor runner; it checks that the trigger subscriptions push before publishing, then
hands the partitions to :func:`framework.drive.remote.follow`. The backfill keeps the local
backfill's checkpoint collection, so an interrupted remote backfill resumes too.
"""
from __future__ import annotations

import time
from typing import Any, Sequence

from framework.drive.remote import Progress, RemoteReport, RemoteRun, follow, trigger_topic
from framework.errors import ConfigError


def date_range(start: str, end: str) -> list[str]:
    import datetime as dt

    a, b = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
    if b < a:
        raise ConfigError(f"backfill: --to {end} is before --from {start}")
    return [(a + dt.timedelta(days=i)).isoformat() for i in range((b - a).days + 1)]


BACKFILLS = "pipectl_backfills"  # the local backfill's checkpoint collection (same format)


class RemoteTarget:
    """A remote target's project and backends, opened without the processor runner: the
    orchestrator (for status and the sweep), the bus (the first triggers), the ledger."""

    def __init__(self, project_root: Any, target: str | None = None):
        from framework.backends.registry import open_backends, target_project
        from framework.config import load_config
        from framework.config.worker import check_remote
        from framework.orchestrator.clock import VirtualClock
        from framework.orchestrator.engine import Orchestrator
        from framework.orchestrator.gates import count_partition_rows

        self.target = load_config(project_root).target(target)
        self.project = target_project(project_root, self.target)  # the target's dataset/topic prefixes
        if not self.target.remote:
            raise ConfigError(f"target '{self.target.name}' runs processors locally (execution: local)",
                              hint="set `execution: remote` on the target (docs/gcp.md)")
        check_remote(self.project, self.target.name, self.target.worker_settings())
        self.backends = open_backends(self.project.root, target)
        project, warehouse = self.project, self.backends.warehouse
        self.orchestrator = Orchestrator(project, self.backends.state, self.backends.bus,
                                         clock=VirtualClock(store=self.backends.state),
                                         gate_checker=lambda gate, partition: count_partition_rows(
                                             warehouse, project, gate.processor, partition))

    def close(self) -> None:
        self.backends.close()

    def __enter__(self) -> "RemoteTarget":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def check_push(self, phases: Sequence[str]) -> None:
        """The trigger subscriptions of ``phases`` must push (else nothing would consume the
        triggers this command publishes): the fix is `pipectl apply` on this target."""
        pulling = []
        for phase in phases:
            topic = self.project.topics.get(trigger_topic(self.project, phase))
            for sub in topic.subscriptions if topic else ():
                if sub.consumer != f"phase:{phase}":
                    continue
                actual = self.backends.bus.get_subscription(sub.name) if hasattr(self.backends.bus, "get_subscription") else None
                if actual is None or not actual.push_endpoint:
                    pulling.append(sub.name + (" (missing)" if actual is None else " (pull)"))
        if pulling:
            raise ConfigError(f"target '{self.target.name}' executes remotely, but no worker receives the triggers of "
                              f"{', '.join(pulling)}",
                              hint=f"deploy the worker and run `pipectl --target {self.target.name} apply` "
                                   "(it points the trigger subscriptions at worker.url)")

    def run(self, partitions: Sequence[str], *, from_phase: str | None = None, mode: str = "incremental",
            timeout: float = 3600.0, poll_seconds: float = 2.0, concurrency: int | None = None,
            fast_forward: bool = False, progress: Progress | None = None) -> list[RemoteReport]:
        """Publish each partition's first trigger (at most ``concurrency`` partitions in flight,
        default ``worker.partitions``) and follow them to their end."""
        names = self.project.phase_names()
        self.check_push(names[names.index(from_phase):] if from_phase in names else names)
        runs = [RemoteRun(self.project, self.backends.bus, self.backends.state, self.orchestrator, p,
                          from_phase=from_phase, mode=mode, progress=progress, fast_forward=fast_forward)
                for p in partitions]
        limit = concurrency or self.target.worker_settings().partitions
        return follow(runs, concurrency=limit, timeout=timeout, poll_seconds=poll_seconds)

    def backfill(self, dates: Sequence[str], *, key_parts: Sequence[Any], restart: bool = False,
                 **options: Any) -> tuple[list[RemoteReport], list[str]]:
        """:meth:`run` over ``dates`` with the local backfill's checkpoint: dates that ended
        well are recorded, and a re-run of the same command skips them (``restart``: ignore)."""
        import hashlib
        import json

        store = self.backends.state
        key = hashlib.sha1(json.dumps(["remote", *key_parts]).encode()).hexdigest()[:12]
        done = set(((store.get(BACKFILLS, key) or {}).get("done") or [])) if not restart else set()
        todo = [d for d in dates if d not in done]
        reports = self.run(todo, mode="backfill", **options)
        done |= {r.partition for r in reports if r.ok}
        finished = sorted(done)
        store.run_transaction(lambda t: t.set(BACKFILLS, key, {"from": dates[0] if dates else None,
                                                               "to": dates[-1] if dates else None, "done": finished,
                                                               "updated_at": time.time(), "execution": "remote"}))
        return reports, [d for d in dates if d in done and d not in todo]


__all__ = ["RemoteTarget", "date_range", "BACKFILLS"]
