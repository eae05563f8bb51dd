"""`pipectl plan` / `apply` on the Google Cloud backends (BigQuery, Pub/Sub, Firestore emulators).

The plan/apply engine is backend-neutral (framework/plan); these tests prove the GCP
backends give it what it needs: datasets and partitioned/clustered tables, topics and
subscriptions with their attributes, the ledger documents, drift on a managed topic.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from framework.backends.protocols import SubscriptionConfig
from framework.backends.pubsub import PubSubBus
from framework.backends.bigquery import BigQueryWarehouse
from framework.plan.planner import PlanOptions, plan_and_apply, plan_project
from projects import PROCESSORS, SQL, TOPICS, write_project


def _gcp_project(uid: str) -> str:
    """A Google Cloud project of its own: the framework tables (dataset _pipectl) are per
    project, and the emulators are shared with other tests."""
    return f"plan-{uid}"


def _project(root: Path, uid: str) -> Path:
    rename = lambda text: text.replace("shop", uid)  # noqa: E731 - unique names on the shared emulators
    write_project(root, rename(PROCESSORS), rename(TOPICS), SQL)
    (root / "pipectl.yaml").write_text(
        f"targets:\n  gcp:\n    project: {_gcp_project(uid)}\n    location: US\n"
        f"    warehouse: {{type: bigquery, timeout: 60}}\n    bus: {{type: pubsub}}\n"
        f"    state: {{type: firestore, prefix: {uid}_}}\n")
    return root


def _summary(plan) -> dict[tuple[str, str], str]:
    return {(c.type, c.name): c.action for c in plan.changes if c.action != "no-op"}


def test_apply_creates_everything_then_plans_no_changes(tmp_path: Path, uid: str) -> None:
    root = _project(tmp_path / "p", uid)
    first = plan_project(root, "gcp")
    pending = _summary(first)
    assert pending[("dataset", f"{uid}_raw")] == "create"
    assert pending[("table", f"{uid}_raw.orders_raw")] == "create"
    assert pending[("topic", f"{uid}-raw-complete")] == "create"
    assert pending[("subscription", f"{uid}-raw-complete-orch")] == "create"

    plan, result = plan_and_apply(root, "gcp")
    assert result is not None
    assert _summary(plan_project(root, "gcp")) == {}  # idempotent: nothing left to do

    bus = PubSubBus(_gcp_project(uid))
    wh = BigQueryWarehouse(_gcp_project(uid))
    try:
        sub = bus.get_subscription(f"{uid}-raw-complete-orch")
        assert (sub.topic, sub.ack_deadline_seconds, sub.max_delivery_attempts, sub.dead_letter_topic) == (
            f"{uid}-raw-complete", 60, 5, f"{uid}-dead-letter")
        assert wh.table_schema(f"{uid}_analytics.customer_totals") is not None
    finally:
        bus.close()
        wh.close()


def test_orphan_subscription_on_a_managed_topic_is_drift(tmp_path: Path, uid: str) -> None:
    root = _project(tmp_path / "p", uid)
    plan_and_apply(root, "gcp")
    bus = PubSubBus(_gcp_project(uid))
    try:  # a leftover of a hand-run deploy: it would receive every completion a second time
        bus.create_subscription(SubscriptionConfig(f"{uid}-old-orchestrator", f"{uid}-raw-complete", ack_deadline_seconds=30))
    finally:
        bus.close()
    drift = plan_project(root, "gcp")
    orphan = [c for c in drift.changes if c.name == f"{uid}-old-orchestrator"]
    assert len(orphan) == 1 and orphan[0].type == "subscription"
    assert orphan[0].action != "delete"  # shown, but deleted only with --prune
    pruned = plan_project(root, "gcp", PlanOptions(prune=True))
    assert _summary(pruned) == {("subscription", f"{uid}-old-orchestrator"): "delete"}


def test_changed_ack_deadline_is_an_in_place_update(tmp_path: Path, uid: str) -> None:
    root = _project(tmp_path / "p", uid)
    plan_and_apply(root, "gcp")
    topics = (root / "topics.yaml").read_text().replace("ack_deadline: 60s", "ack_deadline: 120s")
    (root / "topics.yaml").write_text(topics)
    assert _summary(plan_project(root, "gcp")) == {("subscription", f"{uid}-raw-complete-orch"): "update"}
    plan_and_apply(root, "gcp")
    assert _summary(plan_project(root, "gcp")) == {}


def test_dev_and_prod_targets_share_one_gcp_project_by_their_prefixes(tmp_path: Path, uid: str) -> None:
    """pipectl.yaml `dataset_prefix`/`topic_prefix`: plan and apply create dev's datasets and
    topics beside prod's, in the same project, and each plan sees only its own."""
    root = _project(tmp_path / "p", uid)
    config = (root / "pipectl.yaml").read_text()
    dev = config.replace("  gcp:\n", "  dev:\n    dataset_prefix: dev_\n    topic_prefix: dev-\n", 1)
    (root / "pipectl.yaml").write_text("default_target: gcp\n" + config + dev.split("targets:\n", 1)[1])
    pending = _summary(plan_project(root, "dev"))
    assert pending[("dataset", f"dev_{uid}_raw")] == "create"
    assert pending[("table", f"dev_{uid}_analytics.customer_totals")] == "create"
    assert pending[("topic", f"dev-{uid}-raw-complete")] == "create"
    assert pending[("subscription", f"dev-{uid}-raw-complete-orch")] == "create"
    # nothing of prod's names (the ledger is named by the project; it lives in dev's prefixed state collections)
    assert not any(name.startswith(uid) for kind, name in pending if kind != "ledger")
    plan_and_apply(root, "dev")
    plan_and_apply(root, "gcp")
    assert _summary(plan_project(root, "dev")) == {} and _summary(plan_project(root, "gcp")) == {}
    bus, wh = PubSubBus(_gcp_project(uid)), BigQueryWarehouse(_gcp_project(uid))
    try:
        sub = bus.get_subscription(f"dev-{uid}-raw-complete-orch")
        assert (sub.topic, sub.dead_letter_topic) == (f"dev-{uid}-raw-complete", f"dev-{uid}-dead-letter")
        assert bus.get_subscription(f"{uid}-raw-complete-orch").topic == f"{uid}-raw-complete"
        assert wh.table_schema(f"dev_{uid}_analytics.customer_totals") is not None
        assert wh.table_schema(f"{uid}_analytics.customer_totals") is not None
        assert wh.table_schema("dev__pipectl.entity_fingerprints") is not None
    finally:
        bus.close()
        wh.close()
