"""Create the topics and subscriptions declared in ``topics.yaml`` on a Bus.

Why: a message published to a topic with no subscription is dropped (Pub/Sub semantics),
so the topology must exist before the first processor runs. ``ensure_topology`` is
idempotent and converges: it creates what is missing and updates subscriptions whose ack
deadline, max attempts, dead-letter topic, filter or push endpoint changed. It never
deletes anything (that is `pipectl apply`'s job, with a plan), but it reports
subscriptions on managed topics that the manifest does not declare, because orphans
deliver every message twice (FAILURE-MODES 18).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from framework.backends.protocols import Bus, SubscriptionConfig, TopicConfig
from framework.manifest.model import Project, Subscription


@dataclass
class TopologyReport:
    """What ensure_topology changed, and the orphans it found but left alone."""

    created_topics: list[str] = field(default_factory=list)
    created_subscriptions: list[str] = field(default_factory=list)
    updated_subscriptions: list[str] = field(default_factory=list)
    orphan_subscriptions: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created_topics or self.created_subscriptions or self.updated_subscriptions)


def subscription_config(sub: Subscription) -> SubscriptionConfig:
    """The backend view of a declared subscription."""
    return SubscriptionConfig(
        name=sub.name,
        topic=sub.topic,
        ack_deadline_seconds=int(sub.ack_deadline_seconds),
        max_delivery_attempts=int(sub.max_delivery_attempts),
        dead_letter_topic=sub.dead_letter_topic,
        filter=sub.filter,
        push_endpoint=sub.push_endpoint,
    )


def desired_topics(project: Project) -> list[str]:
    """Declared topics plus every dead-letter topic they reference (which must exist
    before a subscription can point at it)."""
    names = list(project.topics)
    for topic in project.topics.values():
        for dlq in [topic.dead_letter_topic, *(s.dead_letter_topic for s in topic.subscriptions)]:
            if dlq and dlq not in names:
                names.append(dlq)
    return names


def ensure_topology(bus: Bus, project: Project) -> TopologyReport:
    """Create/update every topic and subscription of ``project`` on ``bus``."""
    report = TopologyReport()
    existing_topics = {t.name for t in bus.list_topics()}
    for name in desired_topics(project):
        if name not in existing_topics:
            bus.create_topic(TopicConfig(name))
            report.created_topics.append(name)
    actual = {s.name: s for s in bus.list_subscriptions()}
    declared: set[str] = set()
    for topic in project.topics.values():
        for sub in topic.subscriptions:
            want = subscription_config(sub)
            declared.add(want.name)
            have = actual.get(want.name)
            if have is None:
                bus.create_subscription(want)
                report.created_subscriptions.append(want.name)
            elif have != want:
                bus.update_subscription(want)
                report.updated_subscriptions.append(want.name)
    managed = set(project.topics)
    report.orphan_subscriptions = sorted(n for n, s in actual.items() if s.topic in managed and n not in declared)
    return report





def bus_status(bus: Bus, subscription: str | None = None, limit: int = 20) -> list[dict]:
    """Per subscription: pending messages and, for those redelivered, attempts and the last
    error (local bus; other buses do not expose their backlog and raise BackendError)."""
    from framework.errors import BackendError

    if not hasattr(bus, "pending"):
        raise BackendError(f"{type(bus).__name__} cannot list pending messages", hint="use the cloud console / gcloud for Pub/Sub backlogs")
    out = []
    for sub in bus.list_subscriptions():
        if subscription and sub.name != subscription:
            continue
        pending = bus.pending(sub.name, limit=limit)  # type: ignore[attr-defined]
        out.append({
            "subscription": sub.name,
            "topic": sub.topic,
            "pending": bus.pending_count(sub.name),  # type: ignore[attr-defined]
            "retrying": [
                {"message_id": m.message_id, "attempts": m.delivery_attempts, "leased": m.leased,
                 "last_error": (m.last_error or "").splitlines()[0] if m.last_error else None}
                for m in pending if m.delivery_attempts > 0 and (m.last_error or not m.leased)
            ],
        })
    if subscription and not out:
        raise BackendError(f"subscription {subscription} does not exist", hint="see `pipectl bus status` for the list")
    return out


__all__ = ["ensure_topology", "TopologyReport", "subscription_config", "desired_topics", "bus_status"]
