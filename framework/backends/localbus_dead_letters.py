"""Dead letters of the local bus: forwarded after the last attempt, or rejected by a consumer.

A mixin of :class:`framework.backends.localbus.LocalBus` (kept apart so the bus logic reads on
its own): it uses the bus's ``_write``/``_read`` transactions, ``_publish_in``, ``path`` and
``clock``. Every dead letter is a row of the ``dead_letters`` table (with its reason), listed
by ``pipectl bus dead-letters`` and replayed, exactly once, by ``replay-dead-letters``.
"""
from __future__ import annotations

import json
import logging
import sqlite3
from typing import Any, Mapping

from framework.backends.localbus_schema import DeadLetter
from framework.backends.protocols import SubscriptionConfig
from framework.errors import BackendError

log = logging.getLogger("framework.backends.localbus")

DEAD_LETTER_REASON = "max_delivery_attempts_exceeded"
REJECTED_REASON = "rejected"
MAX_ERROR_CHARS = 2000


class DeadLetterMixin:
    """The dead-letter half of the local bus."""

    path: Any
    clock: Any
    _write: Any
    _read: Any
    _publish_in: Any

    def _keep_rejected(self, conn: sqlite3.Connection, topic: str, msg_id: str, data: bytes, attrs: dict[str, str], now: float) -> None:
        """A consumer that cannot handle a message at all (an invalid trigger or envelope)
        publishes it straight to the dead-letter topic with ``rejected_by`` and ``error``
        attributes: keep it in ``dead_letters`` too, with that reason, so it is listed and
        replayable like one that used every delivery attempt."""
        source = attrs.get("rejected_from") or ""
        row = conn.execute("SELECT topic FROM subscriptions WHERE name = ?", (source,)).fetchone() if source else None
        if row and "source_topic" not in attrs:
            attrs = {**attrs, "source_topic": row[0]}
        conn.execute(
            "INSERT INTO dead_letters (topic, source_subscription, message_id, data, attributes, reason, delivery_attempt, last_error, dead_lettered_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (topic, source, msg_id, data, json.dumps(attrs, sort_keys=True), REJECTED_REASON, int(attrs.get("delivery_attempt") or 1),
             (attrs.get("error") or "")[:MAX_ERROR_CHARS] or None, now),
        )

    def _dead_letter_exhausted(self, conn: sqlite3.Connection, sub: SubscriptionConfig, now: float) -> None:
        """Forward available messages that used every attempt to the dead-letter topic."""
        if not sub.dead_letter_topic:
            return
        rows = conn.execute(
            "SELECT d.id, d.message_id, d.attempts, d.last_error, m.topic, m.data, m.attributes FROM deliveries d "
            "JOIN messages m ON m.id = d.message_id WHERE d.subscription = ? AND d.available_at <= ? AND d.attempts >= ? ORDER BY d.id",
            (sub.name, now, sub.max_delivery_attempts),
        ).fetchall()
        for did, mid, attempts, last_error, topic, data, attrs_json in rows:
            attrs = dict(json.loads(attrs_json))
            attrs.update({
                "dead_letter_reason": DEAD_LETTER_REASON,
                "source_subscription": sub.name,
                "source_topic": topic,
                "source_message_id": str(mid),
                "delivery_attempt": str(attempts),
                "CloudPubSubDeadLetterSourceSubscription": sub.name,
                "CloudPubSubDeadLetterSourceDeliveryCount": str(attempts),
            })
            if last_error:
                attrs["last_error"] = last_error[:1000]
            conn.execute(
                "INSERT INTO dead_letters (topic, source_subscription, message_id, data, attributes, reason, delivery_attempt, last_error, dead_lettered_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (sub.dead_letter_topic, sub.name, str(mid), data, json.dumps(attrs, sort_keys=True), DEAD_LETTER_REASON, attempts, last_error, now),
            )
            if conn.execute("SELECT 1 FROM topics WHERE name = ?", (sub.dead_letter_topic,)).fetchone():
                self._publish_in(conn, sub.dead_letter_topic, bytes(data), attrs, now)
            else:
                log.error("dead-letter topic %s of subscription %s no longer exists; message %s kept only in the dead_letters table of %s",
                          sub.dead_letter_topic, sub.name, mid, self.path)
            log.warning("message %s on %s dead-lettered to %s after %d attempts (last error: %s)",
                        mid, sub.name, sub.dead_letter_topic, attempts, (last_error or "none").splitlines()[0] if last_error else "none")
            conn.execute("DELETE FROM deliveries WHERE id = ?", (did,))
            conn.execute("DELETE FROM messages WHERE id = ? AND NOT EXISTS (SELECT 1 FROM deliveries WHERE message_id = ?)", (mid, mid))

    def dead_letters(self, topic: str | None = None) -> list[DeadLetter]:
        """Dead letters, oldest first; ``topic`` limits them to one dead-letter topic."""
        sql = "SELECT id, topic, source_subscription, message_id, data, attributes, reason, delivery_attempt, last_error, dead_lettered_at FROM dead_letters"
        rows = self._read(sql + (" WHERE topic = ? ORDER BY id" if topic else " ORDER BY id"), (topic,) if topic else ())
        return [DeadLetter(r[0], r[1], r[2], r[3], bytes(r[4]), json.loads(r[5]), r[6], r[7], r[8], r[9]) for r in rows]

    def dead_letters_since(self, after_id: int, source_subscription: str) -> list[DeadLetter]:
        """Letters ``source_subscription`` forwarded after using every delivery attempt, with
        an id above ``after_id`` (one primary-key range read): how a fan-out coordinator
        polling its task subscription learns, at once, that a task will never be delivered
        again (``framework.run.fanout``)."""
        rows = self._read("SELECT id, topic, source_subscription, message_id, data, attributes, reason, delivery_attempt, last_error, "
                          "dead_lettered_at FROM dead_letters WHERE id > ? AND source_subscription = ? AND reason = ? ORDER BY id",
                          (int(after_id), source_subscription, DEAD_LETTER_REASON))
        return [DeadLetter(r[0], r[1], r[2], r[3], bytes(r[4]), json.loads(r[5]), r[6], r[7], r[8], r[9]) for r in rows]

    def last_dead_letter_id(self) -> int:
        """The id of the newest dead letter (0 for none): where :meth:`dead_letters_since` starts."""
        return int(self._read("SELECT COALESCE(MAX(id), 0) FROM dead_letters")[0][0])

    def purge_dead_letters(self, topic: str | None = None, up_to: int | None = None) -> int:
        """Forget dead letters (of one topic, or all); returns how many were removed.
        ``up_to``: only those with ``id <= up_to`` (the last one listed), so a letter that
        arrives between listing and purging is kept rather than lost unseen."""
        sql, params = "DELETE FROM dead_letters WHERE 1 = 1", []
        if topic:
            sql, params = sql + " AND topic = ?", params + [topic]
        if up_to is not None:
            sql, params = sql + " AND id <= ?", params + [up_to]
        with self._write() as conn:
            return conn.execute(sql, params).rowcount

    def replay_dead_letter(self, letter_id: int, topic: str, attributes: Mapping[str, str]) -> str | None:
        """Publish dead letter ``letter_id`` to ``topic`` and forget it, in one transaction:
        replayed exactly once. Returns the new message id, or None if it is gone already."""
        with self._write() as conn:
            row = conn.execute("DELETE FROM dead_letters WHERE id = ? RETURNING data", (int(letter_id),)).fetchone()
            if row is None:
                return None
            if not conn.execute("SELECT 1 FROM topics WHERE name = ?", (topic,)).fetchone():
                raise BackendError(f"cannot replay dead letter {letter_id}: topic {topic} does not exist on the local bus {self.path}",
                                   hint="create it with `pipectl apply`")
            return self._publish_in(conn, topic, bytes(row[0]), dict(attributes), self.clock())
