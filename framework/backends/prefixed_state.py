"""A state store seen through a target's ``dataset_prefix``: every collection renamed.

Why: ``dataset_prefix``/``topic_prefix`` let dev and prod share one cloud project (or one
local ``.pipectl/``); their ledgers, run histories and checkpoints must not share documents
either, or a dev run of a date would find prod's "already triggered" (and the reverse).
Wrapping the store keeps every backend unaware of prefixes; attributes other than the
protocol's are passed through.
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator, Mapping


class PrefixedTransaction:
    def __init__(self, txn: Any, prefix: str):
        self._txn, self._prefix = txn, prefix

    def get(self, collection: str, key: str) -> dict[str, Any] | None:
        return self._txn.get(self._prefix + collection, key)

    def set(self, collection: str, key: str, value: Mapping[str, Any]) -> None:
        self._txn.set(self._prefix + collection, key, value)

    def update(self, collection: str, key: str, fields: Mapping[str, Any]) -> None:
        self._txn.update(self._prefix + collection, key, fields)

    def delete(self, collection: str, key: str) -> None:
        self._txn.delete(self._prefix + collection, key)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._txn, name)


class PrefixedStateStore:
    """``store`` with ``prefix`` before every collection name."""

    def __init__(self, store: Any, prefix: str):
        self._store, self.collection_prefix = store, prefix

    @contextlib.contextmanager
    def transaction(self) -> Iterator[PrefixedTransaction]:
        with self._store.transaction() as txn:
            yield PrefixedTransaction(txn, self.collection_prefix)

    def run_transaction(self, fn: Callable[[Any], Any], max_attempts: int = 10) -> Any:
        return self._store.run_transaction(lambda txn: fn(PrefixedTransaction(txn, self.collection_prefix)),
                                           max_attempts=max_attempts)

    def get(self, collection: str, key: str) -> dict[str, Any] | None:
        return self._store.get(self.collection_prefix + collection, key)

    def query(self, collection: str, where: Mapping[str, Any] | None = None, limit: int | None = None) -> list[tuple[str, dict[str, Any]]]:
        return self._store.query(self.collection_prefix + collection, where, limit)

    def close(self) -> None:
        self._store.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


__all__ = ["PrefixedStateStore", "PrefixedTransaction"]
