"""A durable local bus on SQLite with Google Pub/Sub semantics.

Why SQLite: the embedded default must survive a crash (messages are the only record that a
phase completed), let several worker processes consume one subscription, and need nothing
installed. WAL mode lets readers run beside one writer; every claim of messages runs in a
``BEGIN IMMEDIATE`` transaction, so two processes can never lease the same message at once.

Semantics (the same as Pub/Sub, so code tested locally behaves the same on Google Cloud):

* publish fans out to every subscription of the topic that exists *at publish time* and
  whose filter matches the attributes; messages published earlier are not delivered to a
  subscription created later; a message with no subscription is dropped.
* at-least-once: a pulled message is leased for the subscription's ack deadline; if it is
  not acked in time it becomes available again with ``delivery_attempt + 1``. ``nack`` makes
  it available at once; ``modify_ack_deadline`` extends (or with 0 ends) a lease.
* after ``max_delivery_attempts`` failed deliveries, a subscription with a dead-letter topic
  forwards the message there (attributes of the original plus ``dead_letter_reason``,
  ``source_subscription``, ``source_topic``, ``delivery_attempt``, ``last_error`` and the
  Pub/Sub names ``CloudPubSubDeadLetterSourceSubscription`` /
  ``CloudPubSubDeadLetterSourceDeliveryCount``) and removes it from the subscription. Every
  dead letter is also kept in a ``dead_letters`` table, listed by :meth:`dead_letters`, as is
  a message a consumer *rejected* (published straight to a dead-letter topic with a
  ``rejected_by`` attribute); :meth:`replay_dead_letter` republishes one exactly once.
  Without a dead-letter topic a message is redelivered forever, as on Pub/Sub.
* available messages are delivered oldest publish first.

Errors recorded by ``nack(..., error=...)`` (the worker loop does this) stay on the message
row, so ``pipectl`` can show why a message was redelivered.
"""
from __future__ import annotations

import json
import logging
import random
import secrets
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from framework.manifest.bus_filter import compile_filter
from framework.backends.localbus_dead_letters import DEAD_LETTER_REASON, MAX_ERROR_CHARS, REJECTED_REASON, DeadLetterMixin
from framework.backends.localbus_schema import SCHEMA as _SCHEMA, DeadLetter, PendingMessage
from framework.backends.protocols import ReceivedMessage, SubscriptionConfig, TopicConfig
from framework.errors import BackendError

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
DELETED_TOPIC = "_deleted-topic_"  # what Pub/Sub shows as the topic of a detached subscription

class LocalBus(DeadLetterMixin):
    """The embedded :class:`framework.backends.protocols.Bus` (see the module docstring).

    One instance per process (open another in each worker process; never share across a
    fork). It is thread-safe: a lock serialises use of its one connection. ``clock`` is
    injectable so tests can move time past ack deadlines without sleeping.
    """

    supports_push = False
    records_errors = True  # capability: ``nack(..., error=...)`` keeps the reason

    def __init__(self, path: str | Path, clock: Callable[[], float] = time.time, busy_timeout: float = 30.0):
        self.path = Path(path)
        self.clock = clock
        self.busy_timeout = busy_timeout
        self._lock = threading.RLock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = sqlite3.connect(str(self.path), timeout=busy_timeout, isolation_level=None, check_same_thread=False)
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = NORMAL")
            with self._write() as conn:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version not in (0, SCHEMA_VERSION):
                    raise BackendError(
                        f"local bus {self.path} has schema version {version}, this pipectl expects {SCHEMA_VERSION}",
                        hint="upgrade pipectl, or delete the file to start with an empty bus",
                    )
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.DatabaseError as exc:
            raise BackendError(f"cannot open the local bus at {self.path}: {exc}", hint="check the path is a writable SQLite file (bus.path in pipectl.yaml)") from exc

    # ----------------------------------------------------------------- plumbing
    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction: takes the write lock up front so a claim
        never races another process between its read and its update."""
        with self._lock:
            self._retry_busy(lambda: self._conn.execute("BEGIN IMMEDIATE"))
            try:
                yield self._conn
            except BaseException:
                if self._conn.in_transaction:  # SQLite may have rolled back already (disk full, I/O error)
                    self._conn.execute("ROLLBACK")
                raise
            try:
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:  # never leave the connection inside a dead transaction
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise BackendError(f"local bus {self.path}: commit failed, nothing was written: {exc}",
                                   hint="check free disk space and that the file is writable") from exc

    def _retry_busy(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` until it gets past SQLITE_BUSY or ``busy_timeout`` seconds pass
        (SQLite's busy handler waits first; this translates what remains into BackendError)."""
        deadline = time.monotonic() + self.busy_timeout
        while True:
            try:
                return fn()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise BackendError(f"local bus {self.path}: {exc}") from exc
                if time.monotonic() >= deadline:
                    raise BackendError(f"local bus {self.path} stayed locked for {self.busy_timeout:.0f}s: {exc}",
                                       hint="another process holds it too long; raise busy_timeout in pipectl.yaml (bus.busy_timeout)") from exc
                time.sleep(random.uniform(0.0002, 0.002))

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        with self._lock:
            return self._retry_busy(lambda: self._conn.execute(sql, params).fetchall())

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> "LocalBus":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- topics
    def create_topic(self, config: TopicConfig) -> None:
        """Create a topic; creating an existing one only updates its labels (idempotent)."""
        with self._write() as conn:
            conn.execute(
                "INSERT INTO topics (name, labels) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET labels = excluded.labels",
                (config.name, json.dumps(dict(config.labels), sort_keys=True)),
            )

    def delete_topic(self, name: str) -> None:
        """Delete a topic; its subscriptions stay, detached, as on Pub/Sub. Missing: no-op."""
        with self._write() as conn:
            conn.execute("DELETE FROM topics WHERE name = ?", (name,))
            conn.execute("UPDATE subscriptions SET topic = ? WHERE topic = ?", (DELETED_TOPIC, name))

    def list_topics(self) -> list[TopicConfig]:
        rows = self._read("SELECT name, labels FROM topics ORDER BY name")
        return [TopicConfig(name, json.loads(labels)) for name, labels in rows]

    # ----------------------------------------------------------------- subscriptions
    def _check_subscription(self, conn: sqlite3.Connection, config: SubscriptionConfig) -> None:
        compile_filter(config.filter)  # raises BackendError with the position of a bad filter
        if config.ack_deadline_seconds <= 0:
            raise BackendError(f"subscription {config.name}: ack deadline must be positive, got {config.ack_deadline_seconds}")
        if config.max_delivery_attempts < 1:
            raise BackendError(f"subscription {config.name}: max_delivery_attempts must be at least 1")
        if config.dead_letter_topic and not conn.execute("SELECT 1 FROM topics WHERE name = ?", (config.dead_letter_topic,)).fetchone():
            raise BackendError(
                f"subscription {config.name}: dead-letter topic {config.dead_letter_topic} does not exist",
                hint="create the dead-letter topic first (ensure_topology does this)",
            )

    def create_subscription(self, config: SubscriptionConfig) -> None:
        """Create a subscription. It receives only messages published from now on.

        Creating one that exists on the same topic is a no-op (use update_subscription to
        change it); on another topic it is an error, as on Pub/Sub."""
        with self._write() as conn:
            if not conn.execute("SELECT 1 FROM topics WHERE name = ?", (config.topic,)).fetchone():
                raise BackendError(f"cannot create subscription {config.name}: topic {config.topic} does not exist", hint="create the topic first")
            row = conn.execute("SELECT topic FROM subscriptions WHERE name = ?", (config.name,)).fetchone()
            if row is not None:
                if row[0] != config.topic:
                    raise BackendError(
                        f"subscription {config.name} already exists on topic {row[0]}, not {config.topic}",
                        hint="delete it first or choose another subscription name",
                    )
                return
            self._check_subscription(conn, config)
            conn.execute(
                "INSERT INTO subscriptions VALUES (?, ?, ?, ?, ?, ?, ?)",
                (config.name, config.topic, config.ack_deadline_seconds, config.max_delivery_attempts,
                 config.dead_letter_topic, config.filter, config.push_endpoint),
            )

    def update_subscription(self, config: SubscriptionConfig) -> None:
        """Change ack deadline, max attempts, dead-letter topic, filter or push endpoint.

        A new filter applies to messages published from now on. The topic cannot change."""
        with self._write() as conn:
            row = conn.execute("SELECT topic FROM subscriptions WHERE name = ?", (config.name,)).fetchone()
            if row is None:
                raise BackendError(f"subscription {config.name} does not exist", hint="create it first (pipectl apply)")
            if row[0] != config.topic:
                raise BackendError(f"subscription {config.name} is attached to topic {row[0]}; its topic cannot change to {config.topic}",
                                   hint="delete and recreate the subscription")
            self._check_subscription(conn, config)
            conn.execute(
                "UPDATE subscriptions SET ack_deadline_seconds = ?, max_delivery_attempts = ?, dead_letter_topic = ?, "
                "filter = ?, push_endpoint = ? WHERE name = ?",
                (config.ack_deadline_seconds, config.max_delivery_attempts, config.dead_letter_topic,
                 config.filter, config.push_endpoint, config.name),
            )

    def delete_subscription(self, name: str) -> None:
        """Delete a subscription and its undelivered messages. Missing: no-op."""
        with self._write() as conn:
            conn.execute("DELETE FROM deliveries WHERE subscription = ?", (name,))
            conn.execute("DELETE FROM subscriptions WHERE name = ?", (name,))
            conn.execute("DELETE FROM messages WHERE id NOT IN (SELECT message_id FROM deliveries)")

    def list_subscriptions(self) -> list[SubscriptionConfig]:
        rows = self._read("SELECT name, topic, ack_deadline_seconds, max_delivery_attempts, dead_letter_topic, filter, push_endpoint "
                          "FROM subscriptions ORDER BY name")
        return [SubscriptionConfig(*row) for row in rows]

    def _subscription(self, conn: sqlite3.Connection, name: str) -> SubscriptionConfig:
        row = conn.execute("SELECT name, topic, ack_deadline_seconds, max_delivery_attempts, dead_letter_topic, filter, push_endpoint "
                           "FROM subscriptions WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise BackendError(f"subscription {name} does not exist on the local bus {self.path}",
                               hint="declare it in topics.yaml and run `pipectl apply` (or ensure_topology)")
        return SubscriptionConfig(*row)

    # ----------------------------------------------------------------- publish
    def publish(self, topic: str, data: bytes, attributes: Mapping[str, str] | None = None) -> str:
        """Publish to every current subscription of ``topic`` whose filter matches."""
        attrs = dict(attributes or {})
        if not isinstance(data, (bytes, bytearray)):
            raise BackendError(f"publish to {topic}: data must be bytes, got {type(data).__name__}", hint="encode the payload, e.g. json.dumps(...).encode()")
        bad = [k for k, v in attrs.items() if not isinstance(k, str) or not isinstance(v, str)]
        if bad:
            raise BackendError(f"publish to {topic}: attribute values must be strings (Pub/Sub rule); not strings: {', '.join(map(str, bad))}",
                               hint="convert attribute values with str()")
        with self._write() as conn:
            if not conn.execute("SELECT 1 FROM topics WHERE name = ?", (topic,)).fetchone():
                raise BackendError(f"cannot publish: topic {topic} does not exist on the local bus {self.path}",
                                   hint="declare it in topics.yaml and run `pipectl apply` (or ensure_topology)")
            now = self.clock()
            msg_id = self._publish_in(conn, topic, bytes(data), attrs, now)
            if attrs.get("rejected_by"):
                self._keep_rejected(conn, topic, msg_id, bytes(data), attrs, now)
            return msg_id

    def _publish_in(self, conn: sqlite3.Connection, topic: str, data: bytes, attrs: Mapping[str, str], now: float) -> str:
        cur = conn.execute("INSERT INTO messages (topic, data, attributes, publish_time) VALUES (?, ?, ?, ?)",
                           (topic, data, json.dumps(attrs, sort_keys=True), now))
        msg_id = cur.lastrowid
        subs = conn.execute("SELECT name, filter FROM subscriptions WHERE topic = ?", (topic,)).fetchall()
        targets = [(name, msg_id, now) for name, flt in subs if compile_filter(flt)(attrs)]
        if targets:
            conn.executemany("INSERT INTO deliveries (subscription, message_id, available_at) VALUES (?, ?, ?)", targets)
        else:
            conn.execute("DELETE FROM messages WHERE id = ?", (msg_id,))
        return str(msg_id)

    # ----------------------------------------------------------------- pull / ack
    def pull(self, subscription: str, max_messages: int = 10) -> list[ReceivedMessage]:
        """Lease up to ``max_messages`` available messages, oldest publish first.

        An existing subscription with nothing available (deliveries due, exhausted ones
        included) answers from one read, without taking the write lock: a driver polls
        every phase's subscriptions after each step and most polls find nothing (about 50
        of a one-player update's 60 pulls). Anything else, and every claim, runs in the
        ``BEGIN IMMEDIATE`` transaction, which reads again, so a message published between
        the two is simply left for the next pull, as on Pub/Sub."""
        now = self.clock()
        if not self._anything_due(subscription, now):
            return []
        with self._write() as conn:
            sub = self._subscription(conn, subscription)
            self._dead_letter_exhausted(conn, sub, now)
            rows = conn.execute(
                "SELECT d.id, d.message_id, d.attempts, m.data, m.attributes, m.publish_time FROM deliveries d "
                "JOIN messages m ON m.id = d.message_id WHERE d.subscription = ? AND d.available_at <= ? ORDER BY d.id LIMIT ?",
                (subscription, now, max(0, int(max_messages))),
            ).fetchall()
            out = []
            for did, mid, attempts, data, attrs, ptime in rows:
                token = secrets.token_hex(8)
                conn.execute("UPDATE deliveries SET attempts = ?, available_at = ?, ack_token = ? WHERE id = ?",
                             (attempts + 1, now + sub.ack_deadline_seconds, token, did))
                out.append(ReceivedMessage(f"{did}:{token}", str(mid), bytes(data), json.loads(attrs), attempts + 1, ptime))
            return out

    def _anything_due(self, subscription: str, now: float) -> bool:
        """False only when the subscription exists and has no delivery available at ``now``
        (read outside a transaction); a missing subscription says True, so the claim path
        raises its error."""
        rows = self._read("SELECT EXISTS (SELECT 1 FROM deliveries WHERE subscription = s.name AND available_at <= ?) "
                          "FROM subscriptions s WHERE s.name = ?", (now, subscription))
        return not rows or bool(rows[0][0])

    @staticmethod
    def _parse_ack_ids(ack_ids: Sequence[str]) -> list[tuple[int, str]]:
        parsed = []
        for ack_id in ack_ids:
            did, sep, token = str(ack_id).partition(":")
            if not sep or not did.isdigit():
                raise BackendError(f"malformed ack id {ack_id!r}", hint="pass the ack_id of a ReceivedMessage from this bus")
            parsed.append((int(did), token))
        return parsed

    def ack(self, subscription: str, ack_ids: Sequence[str]) -> None:
        """Acknowledge. An ack for a lease that expired and was re-leased is ignored (the
        message is already being redelivered), as on Pub/Sub."""
        ids = self._parse_ack_ids(ack_ids)
        with self._write() as conn:
            for did, token in ids:
                row = conn.execute("DELETE FROM deliveries WHERE id = ? AND subscription = ? AND ack_token = ? RETURNING message_id",
                                   (did, subscription, token)).fetchone()
                if row is None:
                    log.debug("ack of %s on %s ignored: lease no longer held", did, subscription)
                    continue
                conn.execute("DELETE FROM messages WHERE id = ? AND NOT EXISTS (SELECT 1 FROM deliveries WHERE message_id = ?)", (row[0], row[0]))

    def nack(self, subscription: str, ack_ids: Sequence[str], error: str | None = None) -> None:
        """Make messages available at once; ``error`` (local-bus extension) is recorded on the
        message so status displays can say why it was redelivered. A message that has used
        its last attempt goes to the dead-letter topic now."""
        self.modify_ack_deadline(subscription, ack_ids, 0, error=error)

    def modify_ack_deadline(self, subscription: str, ack_ids: Sequence[str], seconds: float, error: str | None = None) -> None:
        """Extend the lease of held messages to ``seconds`` from now (0 = nack)."""
        ids = self._parse_ack_ids(ack_ids)
        now = self.clock()
        err = error[:MAX_ERROR_CHARS] if error else None
        with self._write() as conn:
            sub = self._subscription(conn, subscription)
            for did, token in ids:
                if err is None:
                    conn.execute("UPDATE deliveries SET available_at = ?, ack_token = CASE WHEN ? > 0 THEN ack_token END "
                                 "WHERE id = ? AND subscription = ? AND ack_token = ?", (now + seconds, seconds, did, subscription, token))
                else:
                    conn.execute("UPDATE deliveries SET available_at = ?, ack_token = CASE WHEN ? > 0 THEN ack_token END, "
                                 "last_error = ?, last_error_at = ? WHERE id = ? AND subscription = ? AND ack_token = ?",
                                 (now + seconds, seconds, err, now, did, subscription, token))
            if seconds <= 0:
                self._dead_letter_exhausted(conn, sub, now)

    # ----------------------------------------------------------------- consuming
    def dispatch(self, subscription: str, handler: Callable[[ReceivedMessage], Any], max_messages: int = 10) -> Any:
        """Pull once and run ``handler`` on each message: ack on success, nack with the
        error recorded on failure. See :func:`framework.backends.bus_worker.dispatch`."""
        from framework.backends.bus_worker import dispatch

        return dispatch(self, subscription, handler, max_messages)

    # ----------------------------------------------------------------- status
    def pending_count(self, subscription: str) -> int:
        """Messages not yet acked by ``subscription`` (leased or available)."""
        with self._lock:
            self._subscription(self._conn, subscription)
        return self._read("SELECT COUNT(*) FROM deliveries WHERE subscription = ?", (subscription,))[0][0]

    def pending(self, subscription: str, limit: int = 100) -> list[PendingMessage]:
        """The oldest un-acked messages of a subscription with their attempts and last error."""
        now = self.clock()
        rows = self._read(
            "SELECT d.message_id, d.attempts, d.available_at, d.last_error, m.attributes, m.publish_time FROM deliveries d "
            "JOIN messages m ON m.id = d.message_id WHERE d.subscription = ? ORDER BY d.id LIMIT ?", (subscription, limit))
        return [PendingMessage(str(mid), subscription, json.loads(attrs), attempts, avail > now, avail, ptime, err)
                for mid, attempts, avail, err, attrs, ptime in rows]


__all__ = ["LocalBus", "PendingMessage", "DeadLetter", "DEAD_LETTER_REASON", "REJECTED_REASON", "DELETED_TOPIC"]
