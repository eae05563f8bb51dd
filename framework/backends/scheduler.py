"""Cloud Scheduler jobs that publish to Pub/Sub: what runs the sweep on Google Cloud.

Production checked deadlines only when a message arrived (FAILURE-MODES 14); the sweeper
fixes that only if something runs it. On Google Cloud that is a Cloud Scheduler job
publishing a tick to the sweep topic every minute; the function bundle's ``handle_sweep``
consumes it. ``pipectl apply`` manages the job like any other resource (create, update in
place, drift, prune), through :class:`framework.plan.schedules.ScheduleProvider` over this
small client.

The SDK (``google-cloud-scheduler``, in the ``[gcp]`` extra) is imported on first use.
Cloud Scheduler has no emulator: ``endpoint="host:port"`` points the client at a gRPC
stand-in over an insecure channel (the tests run one); without it the client reaches the
real service with Application Default Credentials.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from framework.backends.gcp_common import require
from framework.errors import BackendError

UPDATE_PATHS = ("description", "schedule", "time_zone", "pubsub_target")


@dataclass(frozen=True)
class Job:
    """A Pub/Sub-target job, by short name (``pipectl-sweep-nba_props``)."""

    name: str
    schedule: str
    time_zone: str
    topic: str
    data: str = ""
    attributes: Mapping[str, str] = field(default_factory=dict)
    description: str = ""
    state: str = "ENABLED"


class CloudScheduler:
    """Jobs of one project and region. ``timeout`` bounds every RPC (seconds)."""

    def __init__(self, project: str, region: str = "us-central1", endpoint: str | None = None, credentials: Any = None,
                 timeout: float = 30.0):
        self.project, self.region, self.endpoint, self.timeout = project, region, endpoint, timeout
        self._credentials = credentials
        self._client: Any = None
        self._types: Any = None

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.region}"

    def job_path(self, name: str) -> str:
        return f"{self.parent}/jobs/{name}"

    def topic_path(self, topic: str) -> str:
        return topic if topic.startswith("projects/") else f"projects/{self.project}/topics/{topic}"

    def _api(self) -> Any:
        if self._client is None:
            scheduler = require("google.cloud.scheduler_v1")
            self._types = scheduler
            if self.endpoint:  # a local stand-in: insecure gRPC, no credentials
                grpc = require("grpc")
                from google.cloud.scheduler_v1.services.cloud_scheduler.transports import CloudSchedulerGrpcTransport

                transport = CloudSchedulerGrpcTransport(channel=grpc.insecure_channel(self.endpoint))
                self._client = scheduler.CloudSchedulerClient(transport=transport)
            else:
                self._client = scheduler.CloudSchedulerClient(credentials=self._credentials)
        return self._client

    def _call(self, fn: Callable[[Any], Any], what: str) -> Any:
        exceptions = require("google.api_core.exceptions")
        client = self._api()
        try:
            return fn(client)
        except exceptions.NotFound:
            return None
        except (exceptions.GoogleAPICallError, exceptions.RetryError) as exc:
            raise BackendError(f"Cloud Scheduler {self.parent}: {what} failed: {getattr(exc, 'message', exc)}",
                               hint="enable cloudscheduler.googleapis.com and grant roles/cloudscheduler.admin "
                                    "to the account running `pipectl apply`") from exc

    def _proto(self, job: Job) -> Any:
        self._api()
        t = self._types
        return t.Job(name=self.job_path(job.name), description=job.description, schedule=job.schedule, time_zone=job.time_zone,
                     pubsub_target=t.PubsubTarget(topic_name=self.topic_path(job.topic), data=job.data.encode(),
                                                  attributes=dict(job.attributes)))

    def _job(self, proto: Any) -> Job:
        target = proto.pubsub_target
        return Job(proto.name.rsplit("/", 1)[-1], proto.schedule, proto.time_zone, target.topic_name.rsplit("/", 1)[-1],
                   bytes(target.data).decode("utf-8", "replace"), dict(target.attributes), proto.description,
                   type(proto).State(proto.state).name)

    def list_jobs(self) -> list[Job]:
        found = self._call(lambda c: list(c.list_jobs(request={"parent": self.parent}, timeout=self.timeout)), "listing jobs")
        return [self._job(j) for j in found or () if j.pubsub_target.topic_name]

    def get_job(self, name: str) -> Job | None:
        found = self._call(lambda c: c.get_job(request={"name": self.job_path(name)}, timeout=self.timeout), f"reading job {name}")
        return self._job(found) if found is not None else None

    def create_job(self, job: Job) -> None:
        self._call(lambda c: c.create_job(request={"parent": self.parent, "job": self._proto(job)}, timeout=self.timeout),
                   f"creating job {job.name}")

    def update_job(self, job: Job) -> None:
        self._call(lambda c: c.update_job(request={"job": self._proto(job), "update_mask": {"paths": list(UPDATE_PATHS)}},
                                          timeout=self.timeout), f"updating job {job.name}")

    def delete_job(self, name: str) -> None:
        self._call(lambda c: c.delete_job(request={"name": self.job_path(name)}, timeout=self.timeout), f"deleting job {name}")

    def close(self) -> None:
        if self._client is not None:
            self._client.transport.close()
            self._client = None


__all__ = ["CloudScheduler", "Job"]
