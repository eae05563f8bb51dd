"""In-memory StateStore: the test double for a run's bookkeeping (history, fan-out)."""
from __future__ import annotations

import copy
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Mapping


class _Txn:
    def __init__(self, data: dict[str, dict[str, dict]]):
        self.data = data
        self.writes: list[tuple[str, str, str, Any]] = []

    def get(self, collection: str, key: str) -> dict | None:
        if self.writes:
            raise RuntimeError("reads must come before writes in a transaction")
        doc = self.data.get(collection, {}).get(key)
        return copy.deepcopy(doc) if doc is not None else None

    def set(self, collection: str, key: str, value: Mapping[str, Any]) -> None:
        self.writes.append(("set", collection, key, copy.deepcopy(dict(value))))

    def update(self, collection: str, key: str, fields: Mapping[str, Any]) -> None:
        self.writes.append(("update", collection, key, copy.deepcopy(dict(fields))))

    def delete(self, collection: str, key: str) -> None:
        self.writes.append(("delete", collection, key, None))


class MemoryStateStore:
    def __init__(self) -> None:
        self.data: dict[str, dict[str, dict]] = {}
        self.lock = threading.RLock()

    @contextmanager
    def transaction(self) -> Iterator[_Txn]:
        with self.lock:
            txn = _Txn(self.data)
            yield txn
            for op, coll, key, value in txn.writes:
                docs = self.data.setdefault(coll, {})
                if op == "set":
                    docs[key] = value
                elif op == "update":
                    if key not in docs:
                        raise KeyError(f"{coll}/{key} does not exist")
                    docs[key].update(value)
                else:
                    docs.pop(key, None)

    def run_transaction(self, fn: Callable[[Any], Any], max_attempts: int = 10) -> Any:
        with self.transaction() as txn:
            return fn(txn)

    def get(self, collection: str, key: str) -> dict | None:
        with self.lock:
            doc = self.data.get(collection, {}).get(key)
            return copy.deepcopy(doc) if doc is not None else None

    def query(self, collection: str, where: Mapping[str, Any] | None = None, limit: int | None = None):
        with self.lock:
            rows = [(k, copy.deepcopy(v)) for k, v in self.data.get(collection, {}).items()
                    if all(v.get(f) == x for f, x in (where or {}).items())]
        return rows[:limit] if limit else rows

    def close(self) -> None:
        pass


import pytest  # noqa: E402


@pytest.fixture
def memory_store() -> MemoryStateStore:
    return MemoryStateStore()
