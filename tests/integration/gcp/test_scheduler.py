"""The sweep's Cloud Scheduler job as a plan/apply resource, and the dead-letter subscriptions.

Cloud Scheduler has no emulator: these tests drive pipectl's real client code (the
``google-cloud-scheduler`` library over gRPC) against ``CloudSchedulerStandIn``
(tests/integration/gcp/scheduler_standin.py), a LOCAL STAND-IN of the API written for the
tests. Topics and subscriptions are on the Pub/Sub emulator, the ledger on the Firestore one.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
from click.testing import CliRunner
from google.cloud import scheduler_v1

from framework.cli import cli
from framework.plan.planner import PlanOptions, plan_and_apply, plan_project
from projects import PROCESSORS, SQL, TOPICS, write_project
from scheduler_standin import CloudSchedulerStandIn


@pytest.fixture
def standin() -> Iterator[CloudSchedulerStandIn]:
    server = CloudSchedulerStandIn()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _project(root: Path, uid: str, endpoint: str, sweep: str = "") -> Path:
    rename = lambda text: text.replace("shop", uid)  # noqa: E731 - unique names on the shared emulators
    write_project(root, rename(PROCESSORS) + sweep, rename(TOPICS), SQL)
    (root / "pipectl.yaml").write_text(
        f"targets:\n  gcp:\n    project: sched-{uid}\n    warehouse: {{type: bigquery, timeout: 60}}\n"
        f"    bus: {{type: pubsub, scheduler_region: europe-west1, scheduler_endpoint: '{endpoint}'}}\n"
        f"    state: {{type: firestore, prefix: {uid}_}}\n")
    return root


def _pending(plan) -> dict[tuple[str, str], str]:
    return {(c.type, c.name): c.action for c in plan.changes if c.action != "no-op"}


def _job(standin: CloudSchedulerStandIn, uid: str) -> scheduler_v1.Job:
    return standin.jobs[f"projects/sched-{uid}/locations/europe-west1/jobs/pipectl-sweep-{uid}"]


def test_sweep_job_is_planned_created_updated_and_drift_is_repaired(tmp_path: Path, uid: str, standin: CloudSchedulerStandIn) -> None:
    root = _project(tmp_path / "p", uid, f"127.0.0.1:{standin.port}")
    job = f"pipectl-sweep-{uid}"
    result = CliRunner().invoke(cli, ["-p", str(root), "--target", "gcp", "plan"], catch_exceptions=False)
    assert f"+ schedule.{job}" in result.output
    assert f'+ schedule: "* * * * *" (Etc/UTC) -> publishes to topic pipectl-sweep-{uid}' in result.output
    pending = _pending(plan_project(root, "gcp"))
    assert pending[("schedule", job)] == "create" and pending[("topic", f"pipectl-sweep-{uid}")] == "create"
    assert pending[("subscription", f"{uid}-dead-letter-pipectl")] == "create"  # every dead-letter topic gets one

    plan_and_apply(root, "gcp")
    created = _job(standin, uid)
    assert (created.schedule, created.time_zone, created.pubsub_target.topic_name) == (
        "* * * * *", "Etc/UTC", f"projects/sched-{uid}/topics/pipectl-sweep-{uid}")
    assert created.pubsub_target.data == b'{"kind": "sweep"}' and created.pubsub_target.attributes["kind"] == "sweep"
    assert _pending(plan_project(root, "gcp")) == {}

    # the schedule is declared in processors.yaml: a change there is an in-place update
    _project(root, uid, f"127.0.0.1:{standin.port}", sweep='sweep: {schedule: "*/5 * * * *", time_zone: Europe/Paris}\n')
    plan = plan_project(root, "gcp")
    [change] = [c for c in plan.changes if c.action != "no-op"]
    assert (change.address, change.action) == (f"schedule.{job}", "update")
    assert {(a.path, a.before, a.after) for a in change.attribute_changes} == {
        ("schedule", "* * * * *", "*/5 * * * *"), ("time_zone", "Etc/UTC", "Europe/Paris")}
    plan_and_apply(root, "gcp")
    assert (_job(standin, uid).schedule, _job(standin, uid).time_zone) == ("*/5 * * * *", "Europe/Paris")
    assert ("UpdateJob", f"projects/sched-{uid}/locations/europe-west1/jobs/{job}") in standin.calls

    # someone edits the job in the console: plan shows it, apply puts the manifest's value back
    _job(standin, uid).schedule = "0 * * * *"
    assert _pending(plan_project(root, "gcp")) == {("schedule", job): "update"}
    plan_and_apply(root, "gcp")
    assert _job(standin, uid).schedule == "*/5 * * * *"


def test_leftover_sweep_job_is_drift_deleted_only_with_prune(tmp_path: Path, uid: str, standin: CloudSchedulerStandIn) -> None:
    root = _project(tmp_path / "p", uid, f"127.0.0.1:{standin.port}")
    plan_and_apply(root, "gcp")
    # a job of an earlier project name, still ticking
    old = scheduler_v1.Job(_job(standin, uid))
    old.name = old.name.replace(f"pipectl-sweep-{uid}", f"pipectl-sweep-{uid}-old")
    standin.jobs[old.name] = old
    # and a team's own job publishing to a managed topic (a scraper schedule): never pipectl's
    scraper = scheduler_v1.Job(_job(standin, uid))
    scraper.name = scraper.name.replace(f"pipectl-sweep-{uid}", "scrape-gamebook-hourly")
    scraper.pubsub_target.topic_name = f"projects/sched-{uid}/topics/{uid}-raw-complete"
    standin.jobs[scraper.name] = scraper
    other = scheduler_v1.Job(_job(standin, uid))  # another pipectl project's sweep, same GCP project
    other.name = other.name.replace(f"pipectl-sweep-{uid}", "pipectl-sweep-iot_sensors")
    other.pubsub_target.attributes["pipectl-project"] = "iot_sensors"
    standin.jobs[other.name] = other
    plan = plan_project(root, "gcp")
    assert _pending(plan) == {("schedule", f"pipectl-sweep-{uid}-old"): "drift"}
    assert _pending(plan_project(root, "gcp", PlanOptions(prune=True))) == {("schedule", f"pipectl-sweep-{uid}-old"): "delete"}
    plan_and_apply(root, "gcp", PlanOptions(prune=True))
    assert old.name not in standin.jobs and ("DeleteJob", old.name) in standin.calls
    assert scraper.name in standin.jobs and other.name in standin.jobs  # pruning never touches them
    # sweep disabled in the manifest: the job becomes drift too (prune deletes it)
    _project(root, uid, f"127.0.0.1:{standin.port}", sweep="sweep: {enabled: false}\n")
    assert _pending(plan_project(root, "gcp"))[("schedule", f"pipectl-sweep-{uid}")] == "drift"


def test_emulated_project_without_a_scheduler_endpoint_never_plans_a_job(tmp_path: Path, uid: str) -> None:
    """No emulator exists, and an emulated project must never reach the real service."""
    root = _project(tmp_path / "p", uid, "")
    (root / "pipectl.yaml").write_text((root / "pipectl.yaml").read_text().replace(", scheduler_endpoint: ''", ""))
    assert not [c for c in plan_project(root, "gcp").changes if c.type == "schedule"]
