"""Storage layout of the local bus and the records it returns for status displays.

Kept apart from :mod:`framework.backends.localbus` so the bus logic reads on its own.
Tables: ``topics``; ``subscriptions``; ``messages`` (one row per published message that
reached at least one subscription); ``deliveries`` (one row per message and subscription:
``available_at`` is the lease end or the time it became available, ``attempts`` the
deliveries so far, ``ack_token`` the current lease, ``last_error`` what the last consumer
reported); ``dead_letters`` (every message a subscription gave up on).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

SCHEMA = """
CREATE TABLE IF NOT EXISTS topics (
    name TEXT PRIMARY KEY,
    labels TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS subscriptions (
    name TEXT PRIMARY KEY,
    topic TEXT NOT NULL,
    ack_deadline_seconds INTEGER NOT NULL,
    max_delivery_attempts INTEGER NOT NULL,
    dead_letter_topic TEXT,
    filter TEXT,
    push_endpoint TEXT
);
CREATE INDEX IF NOT EXISTS subscriptions_topic ON subscriptions (topic);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    data BLOB NOT NULL,
    attributes TEXT NOT NULL,
    publish_time REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    subscription TEXT NOT NULL,
    message_id INTEGER NOT NULL REFERENCES messages (id),
    available_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    ack_token TEXT,
    last_error TEXT,
    last_error_at REAL
);
CREATE INDEX IF NOT EXISTS deliveries_order ON deliveries (subscription, id, available_at);
CREATE INDEX IF NOT EXISTS deliveries_exhausted ON deliveries (subscription, attempts, available_at);
CREATE INDEX IF NOT EXISTS deliveries_message ON deliveries (message_id);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT,
    source_subscription TEXT NOT NULL,
    message_id TEXT NOT NULL,
    data BLOB NOT NULL,
    attributes TEXT NOT NULL,
    reason TEXT NOT NULL,
    delivery_attempt INTEGER NOT NULL,
    last_error TEXT,
    dead_lettered_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_topic ON dead_letters (topic);
"""


@dataclass(frozen=True)
class PendingMessage:
    """A message not yet acked by a subscription (for status displays and tests)."""

    message_id: str
    subscription: str
    attributes: Mapping[str, str]
    delivery_attempts: int
    leased: bool
    available_at: float
    publish_time: float
    last_error: str | None


@dataclass(frozen=True)
class DeadLetter:
    """A message a subscription gave up on after its maximum delivery attempts."""

    id: int
    topic: str | None
    source_subscription: str
    message_id: str
    data: bytes
    attributes: Mapping[str, str]
    reason: str
    delivery_attempt: int
    last_error: str | None
    dead_lettered_at: float


__all__ = ["SCHEMA", "PendingMessage", "DeadLetter"]
