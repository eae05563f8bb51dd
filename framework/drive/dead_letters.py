"""Dead letters on any bus: list them with their reason, replay them once after a fix.

Two places hold dead letters:

* the local bus keeps every one in its ``dead_letters`` table (forwarded after the last
  delivery attempt, or rejected by a consumer and published straight to the dead-letter
  topic), with the reason; replaying one publishes it and deletes the row in one SQLite
  transaction, so it is replayed exactly once;
* on Pub/Sub a dead letter is a message on a dead-letter topic. ``pipectl apply`` gives
  every dead-letter topic a subscription of pipectl's own, ``<topic>-pipectl``
  (:data:`INSPECT_SUFFIX`), that nothing else consumes; listing pulls it and releases the
  messages again (``nack``), replaying republishes one to its source topic, records the
  replay (``pipectl_dead_letter_replays``, keyed by subscription and message id) and acks
  it, so a second replay finds nothing to do. Pub/Sub forwards no error with a
  dead-lettered message, so consumers that fail a delivery record why
  (:func:`record_delivery_error`, the Cloud Function does) under a hash of the payload, and
  the listing shows that first error.

Replay publishes to the *topic* the message came from: every subscription of that topic
receives it again, which consumers absorb (completions are idempotent by execution id,
triggers by trigger id). The attributes added by dead-lettering are removed and
``pipectl_replay_of`` names the dead letter.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Sequence

from framework.errors import BackendError, ConfigError
from framework.orchestrator.delivery_errors import DELIVERY_ERRORS, payload_key, record_delivery_error
from framework.plan.resources import INSPECT_SUFFIX, dead_letter_topics, inspect_subscription

REPLAYS = "pipectl_dead_letter_replays"
MAX_LIST = 1000
ADDED_ATTRIBUTES = ("dead_letter_reason", "source_subscription", "source_topic", "source_message_id", "delivery_attempt",
                    "last_error", "rejected_by", "rejected_from", "error", "pipectl_replay_of",
                    "CloudPubSubDeadLetterSourceSubscription", "CloudPubSubDeadLetterSourceDeliveryCount",
                    "CloudPubSubDeadLetterSourceSubscriptionProject", "CloudPubSubDeadLetterSourceTopicPublishTime")


@dataclass(frozen=True)
class Letter:
    """One dead letter, whatever the bus. ``id`` is what ``--id`` takes."""

    id: str
    dead_letter_topic: str | None
    source_subscription: str | None
    source_topic: str | None
    message_id: str
    attributes: Mapping[str, str]
    data: bytes
    reason: str
    delivery_attempt: int | None
    dead_lettered_at: float | None = None
    inspect_subscription: str | None = None
    ack_id: str | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["data"] = self.data.decode("utf-8", "replace")
        out["attributes"] = dict(self.attributes)
        out.pop("ack_id")
        return out


# ----------------------------------------------------------------------------- listing
def list_dead_letters(bus: Any, project: Any, store: Any = None, topic: str | None = None,
                      unreadable: list[str] | None = None) -> list[Letter]:
    """Every dead letter (of one dead-letter topic), oldest first, with its reason.
    Dead-letter topics without pipectl's subscription are appended to ``unreadable`` (an
    error when ``topic`` names one)."""
    if hasattr(bus, "dead_letters"):
        return [_local_letter(d, store) for d in bus.dead_letters(topic)]
    letters = _pull_all(bus, project, store, topic, unreadable)
    for sub, group in _by_subscription(letters).items():
        bus.nack(sub, [x.ack_id for x in group])  # listed, not consumed
    return letters


def _local_letter(d: Any, store: Any = None) -> Letter:
    attrs = dict(d.attributes)
    recorded = store.get(DELIVERY_ERRORS, payload_key(d.data)) if store is not None and not d.last_error else None
    if d.reason == "rejected":
        reason = f"rejected by {attrs.get('rejected_by', 'a consumer')}: {attrs.get('error') or d.last_error or 'no reason given'}"
    elif recorded:
        reason = f"{d.delivery_attempt} delivery attempts failed; first error: {recorded['first_error'].splitlines()[0]}"
    else:
        reason = (d.last_error or "no error recorded: the consumer released it without a reason or its lease expired").splitlines()[0]
        reason = f"{d.delivery_attempt} delivery attempts failed; last error: {reason}"
    return Letter(str(d.id), d.topic, d.source_subscription, attrs.get("source_topic"), d.message_id, attrs, d.data, reason,
                  d.delivery_attempt, d.dead_lettered_at)


def _pull_all(bus: Any, project: Any, store: Any, topic: str | None, unreadable: list[str] | None = None) -> list[Letter]:
    topics = dead_letter_topics(project)
    subs = {s.name: s.topic for s in bus.list_subscriptions()}
    out: list[Letter] = []
    for dlq in sorted(topics):
        if topic and dlq != topic:
            continue
        sub = inspect_subscription(dlq)
        if sub not in subs and not topic and unreadable is not None:
            unreadable.append(dlq)
            continue
        if sub not in subs:
            raise BackendError(f"dead-letter topic {dlq} has no subscription {sub}, so its dead letters cannot be read",
                               hint="run `pipectl plan` / `pipectl apply`: it manages one per dead-letter topic")
        seen: set[str] = set()
        while len(seen) < MAX_LIST:
            batch = [m for m in bus.pull(sub, max_messages=100) if m.message_id not in seen]
            if not batch:
                break
            for m in batch:
                seen.add(m.message_id)
                out.append(_pubsub_letter(bus, project, store, dlq, sub, m, subs))
    return sorted(out, key=lambda x: (x.dead_lettered_at or 0, x.message_id))


def _pubsub_letter(bus: Any, project: Any, store: Any, dlq: str, sub: str, m: Any, subs: Mapping[str, str]) -> Letter:
    attrs = dict(m.attributes)
    source_sub = attrs.get("CloudPubSubDeadLetterSourceSubscription") or attrs.get("source_subscription") or attrs.get("rejected_from")
    source_sub = source_sub.rsplit("/", 1)[-1] if source_sub else None
    count = attrs.get("CloudPubSubDeadLetterSourceDeliveryCount") or attrs.get("delivery_attempt")
    recorded = store.get(DELIVERY_ERRORS, payload_key(m.data)) if store is not None else None
    if attrs.get("rejected_by"):
        reason = f"rejected by {attrs['rejected_by']}: {attrs.get('error') or 'no reason given'}"
    elif recorded:
        reason = f"{count or '?'} delivery attempts failed; first error: {recorded['first_error'].splitlines()[0]}"
    else:
        reason = f"{count or '?'} delivery attempts failed; no error recorded (the consumer does not record errors)"
    source_topic = attrs.get("source_topic") or (subs.get(source_sub) if source_sub else None) or (recorded or {}).get("topic")
    if not source_topic:
        origins = dead_letter_topics(project).get(dlq) or []
        source_topic = origins[0] if len(origins) == 1 else None
    return Letter(m.message_id, dlq, source_sub, source_topic, m.message_id, attrs, bytes(m.data), reason,
                  int(count) if count and str(count).isdigit() else None, m.publish_time, sub, m.ack_id)


def _by_subscription(letters: Sequence[Letter]) -> dict[str, list[Letter]]:
    out: dict[str, list[Letter]] = {}
    for x in letters:
        if x.inspect_subscription and x.ack_id:
            out.setdefault(x.inspect_subscription, []).append(x)
    return out


# ----------------------------------------------------------------------------- replay
@dataclass(frozen=True)
class Replayed:
    id: str
    to_topic: str
    new_message_id: str | None  # None: already replayed before (nothing published)


def replay_dead_letters(bus: Any, project: Any, store: Any = None, subscription: str | None = None,
                        letter_id: str | None = None, topic: str | None = None,
                        unreadable: list[str] | None = None) -> list[Replayed]:
    """Republish dead letters to their source topic, each once. ``subscription`` keeps those
    a given subscription gave up on (or those of a ``<topic>-pipectl`` subscription),
    ``letter_id`` one letter, ``topic`` one dead-letter topic."""
    letters = list_dead_letters(bus, project, store, topic) if hasattr(bus, "dead_letters") else \
        _pull_all(bus, project, store, topic, unreadable)
    chosen = [x for x in letters if _matches(x, subscription, letter_id)]
    others = [x for x in letters if x not in chosen]
    try:
        if letter_id is not None and not chosen:
            raise ConfigError(f"no dead letter with id {letter_id}", hint="list them with `pipectl bus dead-letters`")
        missing = [x for x in chosen if not x.source_topic]
        if missing:
            raise ConfigError(f"dead letter {missing[0].id} on {missing[0].dead_letter_topic}: its source topic is unknown "
                              "(several topics dead-letter into it)", hint="replay with --id one at a time after checking its attributes")
        out = [_replay_one(bus, store, x) for x in chosen]
    finally:
        for sub, group in _by_subscription(others).items():
            bus.nack(sub, [x.ack_id for x in group])
    return out


def _matches(x: Letter, subscription: str | None, letter_id: str | None) -> bool:
    if letter_id is not None and letter_id not in (x.id, x.message_id):
        return False
    return subscription is None or subscription in (x.source_subscription, x.inspect_subscription)


def _clean(attrs: Mapping[str, str], letter: Letter) -> dict[str, str]:
    out = {k: v for k, v in attrs.items() if k not in ADDED_ATTRIBUTES}
    out["pipectl_replay_of"] = f"{letter.dead_letter_topic}/{letter.message_id}"
    return out


def _replay_one(bus: Any, store: Any, x: Letter) -> Replayed:
    assert x.source_topic is not None
    attrs = _clean(x.attributes, x)
    if hasattr(bus, "replay_dead_letter"):  # local bus: publish + delete in one transaction
        return Replayed(x.id, x.source_topic, bus.replay_dead_letter(int(x.id), x.source_topic, attrs))
    key = f"{x.inspect_subscription}|{x.message_id}"
    if store is not None and store.get(REPLAYS, key) is not None:
        bus.ack(x.inspect_subscription, [x.ack_id])  # replayed before; its ack was lost
        return Replayed(x.id, x.source_topic, None)
    new_id = bus.publish(x.source_topic, x.data, attrs)
    if store is not None:
        store.run_transaction(lambda t: t.set(REPLAYS, key, {"to_topic": x.source_topic, "new_message_id": new_id, "at": time.time()}))
    bus.ack(x.inspect_subscription, [x.ack_id])
    return Replayed(x.id, x.source_topic, new_id)


__all__ = ["Letter", "Replayed", "list_dead_letters", "replay_dead_letters", "record_delivery_error", "dead_letter_topics",
           "inspect_subscription", "INSPECT_SUFFIX"]
