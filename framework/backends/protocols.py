"""The three narrow backend protocols. The core reaches backends only through these.

Embedded defaults (DuckDB warehouse, SQLite local bus, SQLite state store) are the test
doubles too; Google Cloud implementations (BigQuery, Pub/Sub, Firestore) plug in by the
same names. Capabilities are attributes (``dialect``, ``supports_push``), not isinstance
checks. Driver exceptions are translated into :class:`framework.errors.BackendError` at
this edge, naming the table/topic and the fix.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager, Iterable, Mapping, Protocol, Sequence, runtime_checkable

from framework.manifest.model import Column, Table
from framework.sql.params import QueryParam


# ------------------------------------------------------------------------- warehouse
@runtime_checkable
class Warehouse(Protocol):
    """Runs SQL with parameters; reads and creates tables.

    SQL text comes only from rendered templates; every value is a :class:`QueryParam`.
    """

    dialect: str  # "duckdb" | "bigquery": selects templates/<dialect>/ overrides

    def query(self, sql: str, params: Sequence[QueryParam] = (), labels: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        """Run one statement, return rows as dicts (empty list for DML/DDL)."""
        ...

    def execute_script(self, sql: str, params: Sequence[QueryParam] = (), labels: Mapping[str, str] | None = None) -> Any:
        """Run several statements atomically where the engine allows (a transaction). May
        return each statement's rows (DuckDB does: what a ``RETURNING`` clause gave); callers
        that need them check, others ignore the result."""
        ...

    def table_schema(self, fqn: str) -> tuple[Column, ...] | None:
        """Columns of ``dataset.table`` as the warehouse has them, or None if it does not exist."""
        ...

    def list_tables(self, dataset: str) -> list[str]:
        ...

    def create_dataset(self, dataset: str) -> None:
        ...

    def create_table(self, table: Table) -> None:
        ...

    def insert_rows(self, fqn: str, rows: Iterable[Mapping[str, Any]]) -> int:
        ...

    def close(self) -> None:
        ...


# ------------------------------------------------------------------------- bus
@dataclass(frozen=True)
class ReceivedMessage:
    """A pulled message. ``delivery_attempt`` starts at 1 and grows with each redelivery."""

    ack_id: str
    message_id: str
    data: bytes
    attributes: Mapping[str, str]
    delivery_attempt: int
    publish_time: float


@dataclass(frozen=True)
class TopicConfig:
    """A topic as a bus backend creates it (name and labels)."""

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SubscriptionConfig:
    """A subscription as a bus backend creates it: delivery settings, dead letters, filter."""

    name: str
    topic: str
    ack_deadline_seconds: int = 60
    max_delivery_attempts: int = 5
    dead_letter_topic: str | None = None
    filter: str | None = None
    push_endpoint: str | None = None
    # push only: the OIDC identity Pub/Sub signs its requests as, and the token's audience
    push_service_account: str | None = None
    push_audience: str | None = None
    # redelivery backoff (Pub/Sub retry policy); None: the bus's default (immediate redelivery)
    retry_min_backoff_seconds: int | None = None
    retry_max_backoff_seconds: int | None = None


@runtime_checkable
class Bus(Protocol):
    """Pub/Sub semantics: at-least-once, ack deadline, redelivery, max attempts, dead letters."""

    supports_push: bool

    def create_topic(self, config: TopicConfig) -> None: ...

    def delete_topic(self, name: str) -> None: ...

    def list_topics(self) -> list[TopicConfig]: ...

    def create_subscription(self, config: SubscriptionConfig) -> None: ...

    def update_subscription(self, config: SubscriptionConfig) -> None: ...

    def delete_subscription(self, name: str) -> None: ...

    def list_subscriptions(self) -> list[SubscriptionConfig]: ...

    def publish(self, topic: str, data: bytes, attributes: Mapping[str, str] | None = None) -> str:
        """Publish to every subscription of ``topic``; returns the message id."""
        ...

    def pull(self, subscription: str, max_messages: int = 10) -> list[ReceivedMessage]: ...

    def ack(self, subscription: str, ack_ids: Sequence[str]) -> None: ...

    def nack(self, subscription: str, ack_ids: Sequence[str]) -> None:
        """Make messages available again at once (counts as a failed delivery attempt)."""
        ...

    def close(self) -> None: ...


# ------------------------------------------------------------------------- state store
class Transaction(Protocol):
    """Reads and writes inside one transaction. Reads must come before writes (Firestore rule);
    implementations enforce it so both backends behave the same."""

    def get(self, collection: str, key: str) -> dict[str, Any] | None: ...

    def set(self, collection: str, key: str, value: Mapping[str, Any]) -> None:
        """Create or fully replace a document."""
        ...

    def update(self, collection: str, key: str, fields: Mapping[str, Any]) -> None:
        """Merge top-level fields into an existing document; other fields are kept."""
        ...

    def delete(self, collection: str, key: str) -> None: ...


@runtime_checkable
class StateStore(Protocol):
    """Small documents with serializable transactions (SQLite ledger, Firestore)."""

    def transaction(self) -> ContextManager[Transaction]:
        """Commit on normal exit, roll back on exception. Conflicts are retried by ``run_transaction``."""
        ...

    def run_transaction(self, fn: Callable[[Transaction], Any], max_attempts: int = 10) -> Any:
        """Run ``fn`` in a transaction, retrying on contention; returns fn's result."""
        ...

    def get(self, collection: str, key: str) -> dict[str, Any] | None: ...

    def query(self, collection: str, where: Mapping[str, Any] | None = None, limit: int | None = None) -> list[tuple[str, dict[str, Any]]]:
        """Documents of ``collection`` whose top-level fields equal ``where``."""
        ...

    def close(self) -> None: ...
