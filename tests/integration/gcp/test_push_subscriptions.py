"""`plan` / `apply` of an ``execution: remote`` target on the emulators: push subscriptions to
the worker with OIDC, ack deadlines and retry policy, drift of endpoint, auth and pull/push."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from framework.backends.pubsub import PubSubBus
from framework.plan.planner import plan_and_apply, plan_project
from projects import PROCESSORS, SQL, TOPICS, write_project

pytestmark = pytest.mark.gcp

SA = "pipectl-worker@p.iam.gserviceaccount.com"


def _project(root: Path, uid: str, url: str = "http://127.0.0.1:18081", account: str = SA) -> Path:
    rename = lambda text: text.replace("shop", uid)  # noqa: E731 - unique names on the shared emulators
    write_project(root, rename(PROCESSORS), rename(TOPICS), SQL)
    write_target(root, uid, url, account)
    return root


def write_target(root: Path, uid: str, url: str, account: str) -> None:
    (root / "pipectl.yaml").write_text(
        f"targets:\n  gcp:\n    project: push-{uid}\n    location: US\n    execution: remote\n"
        f"    warehouse: {{type: bigquery, timeout: 60}}\n    bus: {{type: pubsub}}\n"
        f"    state: {{type: firestore, prefix: {uid}_}}\n"
        f"    worker: {{url: '{url}', service_account: {account}}}\n"
        f"    orchestrator: {{url: 'http://127.0.0.1:18082/'}}\n")


def _changes(plan) -> dict[str, dict]:
    return {c.address: {a.path: (a.before, a.after) for a in c.attribute_changes} for c in plan.pending}


def test_apply_creates_push_subscriptions_and_drift_checks_them(tmp_path: Path, uid: str) -> None:
    root = _project(tmp_path / "p", uid)
    plan, result = plan_and_apply(root, "gcp")
    assert result is not None and result.converged, result and result.remaining
    assert not plan_project(root, "gcp").has_changes  # read back exactly as applied

    bus = PubSubBus(f"push-{uid}")
    try:
        trig = bus.get_subscription(f"{uid}-analytics-trigger-sub")
        assert trig.push_endpoint == "http://127.0.0.1:18081/trigger"
        assert (trig.push_service_account, trig.push_audience) == (SA, "http://127.0.0.1:18081")
        assert (trig.ack_deadline_seconds, trig.max_delivery_attempts, trig.dead_letter_topic) == (600, 7, f"{uid}-dead-letter")
        assert (trig.retry_min_backoff_seconds, trig.retry_max_backoff_seconds) == (10, 600)
        orch = bus.get_subscription(f"{uid}-raw-complete-orch")
        assert orch.push_endpoint == f"http://127.0.0.1:18082/projects/push-{uid}/topics/{uid}-raw-complete"
        assert orch.push_service_account is None
        assert orch.ack_deadline_seconds == 90

        # changed endpoint and auth (a redeploy under a new URL and identity): in-place updates
        write_target(root, uid, "http://127.0.0.1:18099", "other@p.iam.gserviceaccount.com")
        changes = _changes(plan_project(root, "gcp"))
        assert changes == {f"subscription.{uid}-analytics-trigger-sub": {
            "push_endpoint": ("http://127.0.0.1:18081/trigger", "http://127.0.0.1:18099/trigger"),
            "push_service_account": (SA, "other@p.iam.gserviceaccount.com"),
            "push_audience": ("http://127.0.0.1:18081", "http://127.0.0.1:18099")}}
        _, applied = plan_and_apply(root, "gcp")
        assert applied is not None and applied.converged
        assert bus.get_subscription(f"{uid}-analytics-trigger-sub").push_endpoint == "http://127.0.0.1:18099/trigger"

        # pull vs push: someone switched the trigger subscription to pull by hand
        current = bus.get_subscription(f"{uid}-analytics-trigger-sub")
        bus.update_subscription(dataclasses.replace(current, push_endpoint=None, push_service_account=None, push_audience=None))
        assert bus.get_subscription(f"{uid}-analytics-trigger-sub").push_endpoint is None
        drift = _changes(plan_project(root, "gcp"))[f"subscription.{uid}-analytics-trigger-sub"]
        assert drift["push_endpoint"] == (None, "http://127.0.0.1:18099/trigger")
        _, healed = plan_and_apply(root, "gcp")
        assert healed is not None and healed.converged
        assert not plan_project(root, "gcp").has_changes
    finally:
        bus.close()
