"""Scheduler jobs as plan resources (``schedule.<job>``): the sweep's Cloud Scheduler job.

A resource's attributes are the job's ``schedule``, ``time_zone``, ``topic``, ``data`` and
``attributes``, so a schedule edited in the console shows as an in-place update back to the
manifest's value, and a job left by an earlier project name shows as drift (deleted only
with ``--prune``). Jobs in scope: the declared ones and the ``pipectl-sweep-*`` jobs whose
message names this project (attribute ``pipectl-project``); a job of the team's own (a
scraper schedule publishing to a managed topic) or another pipectl project's sweep is never
touched.
A job's state (enabled, paused) is an operator's decision: kept in the resource's metadata,
never changed by apply.
"""
from __future__ import annotations

from typing import Any, Sequence

from framework.plan.actual import Scope
from framework.plan.model import AttributeChange, Resource

SWEEP_PREFIX = "pipectl-sweep-"
FIELDS = ("schedule", "time_zone", "topic", "data", "attributes")


class ScheduleProvider:
    """Reads and changes scheduler jobs through :class:`framework.backends.scheduler.CloudScheduler`."""

    type = "schedule"

    def __init__(self, scheduler: Any, project: str):
        self.scheduler = scheduler
        self.project = project

    def _in_scope(self, job: Any, scope: Scope) -> bool:
        # a job is this project's when declared or when its message says so; never a job
        # merely publishing to a managed topic (a team's scraper schedule) nor the sweep job
        # of another pipectl project in the same Google Cloud project
        mine = dict(job.attributes).get("pipectl-project") == self.project
        return job.name in scope.names("schedule") or (job.name.startswith(SWEEP_PREFIX) and mine)

    def read_actual(self, scope: Scope) -> list[Resource]:
        out = []
        for job in self.scheduler.list_jobs():
            if not self._in_scope(job, scope):
                continue
            attrs: dict[str, Any] = {"schedule": job.schedule, "time_zone": job.time_zone, "topic": job.topic,
                                     "data": job.data, "attributes": dict(job.attributes)}
            out.append(Resource("schedule", job.name, attrs, {"state": job.state}))
        return out

    def _job(self, resource: Resource) -> Any:
        from framework.backends.scheduler import Job

        a = resource.attributes
        return Job(resource.name, a["schedule"], a.get("time_zone") or "Etc/UTC", a["topic"], a.get("data") or "",
                   dict(a.get("attributes") or {}), f"pipectl sweep of project {self.project} (managed by pipectl apply)")

    def create(self, resource: Resource) -> None:
        if self.scheduler.get_job(resource.name) is not None:
            self.scheduler.update_job(self._job(resource))
        else:
            self.scheduler.create_job(self._job(resource))

    def update(self, before: Resource, after: Resource, changes: Sequence[AttributeChange]) -> None:
        self.create(after)

    def delete(self, resource: Resource) -> None:
        self.scheduler.delete_job(resource.name)

    def replace(self, before: Resource, after: Resource) -> None:
        self.delete(before)
        self.create(after)


def schedule_providers(backends: Any, project: str) -> list[ScheduleProvider]:
    """A provider when the target's bus can give a scheduler (``scheduler()``, Pub/Sub;
    None on the Pub/Sub emulator without a ``scheduler_endpoint``: there is no emulator)."""
    offer = getattr(backends.bus, "scheduler", None)
    scheduler = offer() if callable(offer) else None
    return [ScheduleProvider(scheduler, project)] if scheduler is not None else []


__all__ = ["ScheduleProvider", "schedule_providers", "SWEEP_PREFIX"]
