"""ensure_topology: topics.yaml -> topics and subscriptions on a bus, idempotently."""
from __future__ import annotations

from pathlib import Path

from framework.backends.localbus import LocalBus
from framework.backends.protocols import SubscriptionConfig
from framework.manifest.model import Project, Subscription, Topic
from framework.drive.bus_setup import ensure_topology


def _project(topics: list[Topic]) -> Project:
    return Project(root=Path("."), name="t", partition_column="day", partition_type="DATE", entity_kinds={},
                   entity_mappings=(), sources={}, phases=(), processors={}, topics={t.name: t for t in topics})


def _topics(ack: int = 60, flt: str | None = None) -> list[Topic]:
    subs = (
        Subscription("raw-complete-orch", "raw-complete", "orchestrator:raw", ack_deadline_seconds=ack, max_delivery_attempts=5,
                     dead_letter_topic="pipeline-dlq", filter=flt),
        Subscription("raw-complete-audit", "raw-complete", "external:audit"),
    )
    return [Topic("raw-complete", "completion", ("phase:raw",), ("orchestrator:raw",), subs, dead_letter_topic="pipeline-dlq")]


def test_creates_topics_dead_letter_topics_and_subscriptions(tmp_path):
    bus = LocalBus(tmp_path / "bus.sqlite")
    report = ensure_topology(bus, _project(_topics()))
    assert report.created_topics == ["raw-complete", "pipeline-dlq"]
    assert sorted(report.created_subscriptions) == ["raw-complete-audit", "raw-complete-orch"]
    subs = {s.name: s for s in bus.list_subscriptions()}
    assert subs["raw-complete-orch"] == SubscriptionConfig("raw-complete-orch", "raw-complete", 60, 5, "pipeline-dlq", None, None)
    bus.publish("raw-complete", b"x")
    assert bus.pending_count("raw-complete-orch") == 1 and bus.pending_count("raw-complete-audit") == 1


def test_is_idempotent_and_updates_changed_settings(tmp_path):
    bus = LocalBus(tmp_path / "bus.sqlite")
    ensure_topology(bus, _project(_topics()))
    again = ensure_topology(bus, _project(_topics()))
    assert not again.changed
    changed = ensure_topology(bus, _project(_topics(ack=120, flt='attributes:game_date')))
    assert changed.updated_subscriptions == ["raw-complete-orch"] and not changed.created_topics
    sub = {s.name: s for s in bus.list_subscriptions()}["raw-complete-orch"]
    assert (sub.ack_deadline_seconds, sub.filter) == (120, "attributes:game_date")


def test_reports_orphan_subscriptions_without_deleting_them(tmp_path):
    bus = LocalBus(tmp_path / "bus.sqlite")
    ensure_topology(bus, _project(_topics()))
    bus.create_subscription(SubscriptionConfig("left-behind", "raw-complete"))
    report = ensure_topology(bus, _project(_topics()))
    assert report.orphan_subscriptions == ["left-behind"]
    assert "left-behind" in {s.name for s in bus.list_subscriptions()}
