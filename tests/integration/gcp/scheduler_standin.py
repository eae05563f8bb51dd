"""A LOCAL STAND-IN for the Cloud Scheduler API (not Google's service, not an emulator).

Cloud Scheduler has no emulator. This is a small in-memory gRPC server speaking the real
``google.cloud.scheduler.v1.CloudScheduler`` protocol (ListJobs, GetJob, CreateJob,
UpdateJob with an update mask, DeleteJob, PauseJob, ResumeJob), using the request and
response messages of the real client library (``google-cloud-scheduler``), so pipectl's
client code runs unchanged against it. It checks what the service checks that matters
here: names under ``projects/P/locations/L``, ``ALREADY_EXISTS`` / ``NOT_FOUND``, a 5-field
cron schedule, a Pub/Sub topic path. It does not run jobs: the tests publish the job's
message themselves, exactly as configured in the job (its topic, data and attributes).
"""
from __future__ import annotations

import re
import threading
from concurrent import futures
from typing import Any, Callable

import grpc
from google.cloud import scheduler_v1
from google.protobuf import empty_pb2

SERVICE = "google.cloud.scheduler.v1.CloudScheduler"
_JOB_NAME = re.compile(r"^projects/[^/]+/locations/[^/]+/jobs/[A-Za-z0-9_-]{1,500}$")
_TOPIC = re.compile(r"^projects/[^/]+/topics/[^/]+$")


class CloudSchedulerStandIn:
    """Jobs in memory; ``calls`` records every RPC as (method, job name)."""

    def __init__(self) -> None:
        self.jobs: dict[str, scheduler_v1.Job] = {}
        self.calls: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._server: grpc.Server | None = None
        self.port = 0

    # ------------------------------------------------------------------ RPCs
    def _check(self, job: scheduler_v1.Job, context: grpc.ServicerContext) -> None:
        if not _JOB_NAME.match(job.name):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"Job name {job.name!r} is invalid")
        if len(job.schedule.split()) != 5:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"Schedule has an invalid format: {job.schedule!r}")
        if not _TOPIC.match(job.pubsub_target.topic_name):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"Invalid Pub/Sub topic {job.pubsub_target.topic_name!r}")

    def list_jobs(self, request: scheduler_v1.ListJobsRequest, context: grpc.ServicerContext) -> scheduler_v1.ListJobsResponse:
        self.calls.append(("ListJobs", request.parent))
        with self._lock:
            jobs = [j for name, j in sorted(self.jobs.items()) if name.startswith(request.parent + "/jobs/")]
        return scheduler_v1.ListJobsResponse(jobs=jobs)

    def get_job(self, request: scheduler_v1.GetJobRequest, context: grpc.ServicerContext) -> scheduler_v1.Job:
        self.calls.append(("GetJob", request.name))
        with self._lock:
            job = self.jobs.get(request.name)
        if job is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Job not found: {request.name}")
        return job

    def create_job(self, request: scheduler_v1.CreateJobRequest, context: grpc.ServicerContext) -> scheduler_v1.Job:
        job = scheduler_v1.Job(request.job)
        self.calls.append(("CreateJob", job.name))
        if not job.name.startswith(request.parent + "/jobs/"):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "Job name must be under the parent")
        self._check(job, context)
        job.state = scheduler_v1.Job.State.ENABLED
        with self._lock:
            if job.name in self.jobs:
                context.abort(grpc.StatusCode.ALREADY_EXISTS, f"Job {job.name} already exists")
            self.jobs[job.name] = job
        return job

    def update_job(self, request: scheduler_v1.UpdateJobRequest, context: grpc.ServicerContext) -> scheduler_v1.Job:
        self.calls.append(("UpdateJob", request.job.name))
        with self._lock:
            current = self.jobs.get(request.job.name)
            if current is None:
                context.abort(grpc.StatusCode.NOT_FOUND, f"Job not found: {request.job.name}")
            updated = scheduler_v1.Job(current)
            for path in request.update_mask.paths or ("description", "schedule", "time_zone", "pubsub_target"):
                setattr(updated, path, getattr(request.job, path))
            self._check(updated, context)
            self.jobs[updated.name] = updated
        return updated

    def delete_job(self, request: scheduler_v1.DeleteJobRequest, context: grpc.ServicerContext) -> empty_pb2.Empty:
        self.calls.append(("DeleteJob", request.name))
        with self._lock:
            if self.jobs.pop(request.name, None) is None:
                context.abort(grpc.StatusCode.NOT_FOUND, f"Job not found: {request.name}")
        return empty_pb2.Empty()

    def _set_state(self, state: Any) -> Callable[..., scheduler_v1.Job]:
        def rpc(request: Any, context: grpc.ServicerContext) -> scheduler_v1.Job:
            with self._lock:
                job = self.jobs.get(request.name)
                if job is None:
                    context.abort(grpc.StatusCode.NOT_FOUND, f"Job not found: {request.name}")
                job.state = state
                return job
        return rpc

    # ------------------------------------------------------------------ server
    def start(self) -> str:
        """Serve on a free local port; returns ``host:port`` for ``scheduler_endpoint``."""
        def unary(fn: Callable, req: Any, resp_serializer: Callable) -> grpc.RpcMethodHandler:
            return grpc.unary_unary_rpc_method_handler(fn, request_deserializer=req.deserialize,
                                                       response_serializer=resp_serializer)

        job_out = scheduler_v1.Job.serialize
        handlers = {
            "ListJobs": unary(self.list_jobs, scheduler_v1.ListJobsRequest, scheduler_v1.ListJobsResponse.serialize),
            "GetJob": unary(self.get_job, scheduler_v1.GetJobRequest, job_out),
            "CreateJob": unary(self.create_job, scheduler_v1.CreateJobRequest, job_out),
            "UpdateJob": unary(self.update_job, scheduler_v1.UpdateJobRequest, job_out),
            "DeleteJob": unary(self.delete_job, scheduler_v1.DeleteJobRequest, lambda m: m.SerializeToString()),
            "PauseJob": unary(self._set_state(scheduler_v1.Job.State.PAUSED), scheduler_v1.PauseJobRequest, job_out),
            "ResumeJob": unary(self._set_state(scheduler_v1.Job.State.ENABLED), scheduler_v1.ResumeJobRequest, job_out),
        }
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        self._server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=None)
            self._server = None
