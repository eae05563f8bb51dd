"""Where processors execute (``execution: local | remote``) and how the remote worker is sized.

Why a module of its own: ``execution: remote`` changes three commands at once. ``plan`` /
``apply`` point the trigger and task subscriptions at the worker service (push, OIDC),
``package --worker`` prints its ``gcloud run deploy`` command, and ``run`` / ``backfill``
publish the first trigger and follow instead of executing processors. All three read the
same settings and the same figures derived from the manifests, computed here once:

* the worker's request timeout defaults to the longest request the manifests allow: a
  fan-out task runs one processor for one entity (its ``timeout``), a phase trigger runs the
  processors it dispatches one after another (the sum of their ``timeout``; a fan-out
  processor only publishes its tasks there), plus a margin, and never more than Cloud Run's
  60-minute request limit (a timeout caps a request; it costs nothing unused);
* a processor whose ``timeout`` exceeds that limit cannot run inside a request: on a
  remote target it is refused (:func:`check_remote`), naming it, with the ways out (split it
  with ``fanout:``, lower its timeout, or keep that target ``execution: local``);
* a push subscription's ack deadline is how long Pub/Sub waits for the HTTP answer; it fits
  the consumer's timeout up to Pub/Sub's 600 s maximum. Beyond 600 s Pub/Sub redelivers while
  the first request still runs, so the delivery limit is raised by one attempt per extra 600 s
  (:func:`push_delivery`); the worker's claims make the redelivery a no-op that asks to be
  retried later.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from framework.errors import ConfigError, Location
from framework.manifest.model import Processor, Project

EXECUTIONS = ("local", "remote")
CLOUD_RUN_MAX_TIMEOUT = 3600  # seconds: Cloud Run's request timeout limit (60 min)
PUBSUB_MAX_ACK = 600  # seconds: Pub/Sub's ack deadline limit
PUBSUB_MIN_ACK = 10
TIMEOUT_MARGIN = 60  # seconds on top of the longest processor: claims, publish, cold start
RETRY_MIN_BACKOFF = 10  # seconds: Pub/Sub retry policy of push subscriptions
RETRY_MAX_BACKOFF = 600  # seconds: Pub/Sub's maximum backoff
MAX_ATTEMPTS_LIMIT = 100  # Pub/Sub's dead-letter policy limit
TRIGGER_PATH, TASK_PATH = "/trigger", "/task"
TASK_DEAD_LETTER_PATH = "/task-dead-letter"  # fan-out tasks the task subscription dead-lettered


@dataclass(frozen=True)
class WorkerSettings:
    """``worker:`` of a target: the Cloud Run service that runs processors.

    ``timeout`` None means derived from the manifests (:func:`sizing`). ``partitions`` bounds
    how many partitions a remote ``pipectl backfill`` keeps in flight at once."""

    url: str | None = None
    service_account: str | None = None
    service: str = "pipectl-worker"
    region: str = "us-central1"
    max_instances: int = 10
    min_instances: int = 0
    concurrency: int = 4
    memory: str = "2Gi"
    cpu: str = "2"
    timeout: int | None = None
    partitions: int = 4
    location: Location = Location("pipectl.yaml")

    def endpoint(self, path: str) -> str:
        if not self.url:
            raise ConfigError(f"{self.location}: worker.url is not set",
                              hint="deploy the worker (`pipectl package --worker` prints the command), then set "
                                   "worker.url to the service URL (https://<service>-<hash>-<region>.a.run.app)")
        return self.url.rstrip("/") + path


@dataclass(frozen=True)
class PushTarget:
    """Where a consumer's push subscription delivers, and as which service account (OIDC)."""

    url: str
    service_account: str | None = None
    audience: str | None = None


@dataclass(frozen=True)
class Sizing:
    """Figures derived from the manifests for one worker (see the module docstring)."""

    request_timeout: int
    longest: tuple[str, int]  # (processor, timeout seconds)
    too_long: tuple[tuple[str, int], ...] = ()  # processors beyond Cloud Run's request limit
    phase_totals: Mapping[str, int] = field(default_factory=dict)  # a trigger's processors, one after another

    def to_dict(self) -> dict[str, Any]:
        return {"request_timeout": self.request_timeout, "longest": list(self.longest),
                "too_long": [list(t) for t in self.too_long], "phase_totals": dict(self.phase_totals)}


def parse_worker(data: Mapping[str, Any] | None, loc_of, base: tuple, expand) -> WorkerSettings | None:
    """``worker:`` (schema-checked) -> settings; ``expand(value, loc)`` resolves ``${VAR}``."""
    if data is None:
        return None
    values = {k: expand(v, loc_of(*base, k)) for k, v in data.items()}
    if "timeout" in values:
        from framework.manifest.resolver import parse_duration

        try:
            values["timeout"] = parse_duration(values["timeout"])
        except ValueError as exc:
            raise ConfigError(str(exc), location=loc_of(*base, "timeout"), hint="e.g. timeout: 15m") from None
        if values["timeout"] > CLOUD_RUN_MAX_TIMEOUT:
            raise ConfigError(f"worker.timeout {values['timeout']}s exceeds Cloud Run's {CLOUD_RUN_MAX_TIMEOUT}s request limit",
                              location=loc_of(*base, "timeout"), hint="use at most 60m (docs/gcp.md#sizing)")
    if "cpu" in values:
        values["cpu"] = str(values["cpu"])
    return WorkerSettings(**values, location=loc_of(*base))


def _timed(project: Project) -> list[Processor]:
    return [p for p in project.processors.values() if p.enabled]


def sizing(project: Project, worker: WorkerSettings | None = None) -> Sizing:
    """The worker's request timeout and what does not fit in a request."""
    procs = _timed(project)
    longest = max(((p.name, p.timeout_seconds) for p in procs), key=lambda t: (t[1], t[0]), default=("", 0))
    too_long = tuple(sorted((p.name, p.timeout_seconds) for p in procs if p.timeout_seconds > CLOUD_RUN_MAX_TIMEOUT))
    totals: dict[str, int] = {}
    for p in procs:
        # a fan-out processor's trigger only publishes its tasks: each task is a request of its own
        totals[p.phase] = totals.get(p.phase, 0) + (TIMEOUT_MARGIN if p.fanout else p.timeout_seconds)
    derived = min(CLOUD_RUN_MAX_TIMEOUT, max([longest[1], *totals.values()]) + TIMEOUT_MARGIN)
    timeout = worker.timeout if worker is not None and worker.timeout is not None else derived
    return Sizing(timeout, longest, too_long, totals)


def check_remote(project: Project, target_name: str, worker: WorkerSettings | None) -> Sizing:
    """Refuse what a remote target cannot run, before anything is deployed or published."""
    size = sizing(project, worker)
    problems = []
    for name, seconds in size.too_long:
        proc = project.processors[name]
        problems.append(f"{proc.location}: processor '{name}' declares timeout {_human(seconds)}, beyond Cloud Run's "
                        f"60-minute request limit: it cannot run in the worker service")
    if worker is not None and worker.timeout is not None and worker.timeout < size.longest[1]:
        problems.append(f"{worker.location}: worker.timeout {_human(worker.timeout)} is shorter than processor "
                        f"'{size.longest[0]}' (timeout {_human(size.longest[1])}): Cloud Run would cut its requests")
    if problems:
        raise ConfigError(f"target '{target_name}' (execution: remote): " + "; ".join(problems),
                          hint="split a long processor with `fanout:` (each entity is one request), lower its "
                               "timeout, raise worker.timeout, or run this target with `execution: local` "
                               "(docs/gcp.md#sizing)")
    return size


def push_delivery(timeout_seconds: int, declared_ack: int, declared_attempts: int) -> dict[str, int]:
    """Ack deadline, delivery limit and retry backoff of a push subscription whose consumer
    may take ``timeout_seconds``. The ack deadline covers the request up to Pub/Sub's 600 s;
    beyond it each redelivery of a request still running counts as an attempt, so the limit
    grows by one per extra 600 s (capped at Pub/Sub's 100)."""
    ack = max(PUBSUB_MIN_ACK, min(PUBSUB_MAX_ACK, max(int(declared_ack), int(timeout_seconds) + 30)))
    extra = math.ceil(max(0, timeout_seconds + 30 - PUBSUB_MAX_ACK) / PUBSUB_MAX_ACK)
    attempts = min(MAX_ATTEMPTS_LIMIT, int(declared_attempts) + extra)
    return {"ack_deadline_seconds": ack, "max_delivery_attempts": attempts,
            "retry_min_backoff_seconds": RETRY_MIN_BACKOFF, "retry_max_backoff_seconds": RETRY_MAX_BACKOFF}


def consumer_timeout(project: Project, consumer: str) -> int | None:
    """The longest request a subscription's consumer may make: ``phase:P`` (a trigger runs
    the phase's processors one after another) or ``fanout:P`` (one task)."""
    kind, _, name = consumer.partition(":")
    if kind == "phase":
        return sizing(project).phase_totals.get(name)
    if kind == "fanout" and name in project.processors:
        return project.processors[name].timeout_seconds
    return None


def _human(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


def describe(items: Iterable[tuple[str, int]]) -> str:
    return ", ".join(f"{n} ({_human(s)})" for n, s in items)


__all__ = ["WorkerSettings", "PushTarget", "Sizing", "parse_worker", "sizing", "check_remote", "push_delivery",
           "consumer_timeout", "describe", "EXECUTIONS", "CLOUD_RUN_MAX_TIMEOUT", "PUBSUB_MAX_ACK",
           "TRIGGER_PATH", "TASK_PATH"]
