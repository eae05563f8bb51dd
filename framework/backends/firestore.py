"""StateStore on Google Cloud Firestore: the orchestrator ledger when running on GCP.

Mapping: a StateStore ``(collection, key)`` is the Firestore document
``{prefix}{collection}/{key}`` (both percent-encoded, so keys may contain ``/``). One
document per key means one ledger document per (transition, partition): unrelated partitions
never contend on a hot document; large entity sets are stored by the orchestrator in their own
documents through the same API, so no ledger document approaches the 1 MiB limit.

Transactions (``concurrency``), both serializable, both retried by ``run_transaction`` with
full-jitter exponential backoff, both enforcing *reads before writes* (the Firestore rule) so
the SQLite store and this one fail the same way on misuse:

* ``optimistic`` (default): lock-free reads, then one atomic batch commit whose
  preconditions require every document read to be unchanged (``update_time``) or still
  missing (framework/backends/firestore_txn.py). A lost race costs one round trip. bench/bench_firestore.py measures why this is
  the default: concurrent completions of one partition contend on its ledger document.
* ``pessimistic``: ``@firestore.transactional`` (reads lock documents; ``transaction()`` as
  a with-block runs it on a helper thread). On the emulator,
  concurrent readers of one document block each other's commit until a ~2 s lock timeout.

Only public google-cloud-firestore API is used (tests/unit/backends/test_firestore_public_api.py
checks), so an SDK upgrade within the range pyproject.toml allows cannot break a commit.

Values: JSON-like (dict, list, str, int, float, bool, None). Firestore forbids arrays directly
inside arrays; those are wrapped transparently so both stores round-trip the same values.
"""
from __future__ import annotations

import contextlib
import random
import threading
import time
from typing import Any, Callable, Iterator, Mapping
from urllib.parse import quote, unquote

from framework.backends.firestore_txn import (Conflict, OptimisticTransaction, FirestoreTransaction, causes, decode_value,
                                              encode_value, pessimistic_block)
from framework.backends.gcp_common import anonymous_credentials_if_emulated, bounded_retry, require
from framework.errors import BackendError

_MAX_DOC_BYTES = 1_048_576


def encode_id(text: str) -> str:
    """Percent-encode a collection or key into a legal Firestore id (no ``/``, not ``.``/``..``,
    not ``__reserved__``). Reversible with :func:`urllib.parse.unquote`."""
    if not text:
        raise BackendError("Firestore keys and collection names must not be empty")
    out = quote(text, safe="")
    if out in (".", "..") or out.startswith("__"):
        out = "%{:02X}".format(ord(out[0])) + out[1:]
    return out


class FirestoreStateStore:
    """StateStore protocol on Firestore (emulator honoured via ``FIRESTORE_EMULATOR_HOST``)."""

    def __init__(self, project: str, database: str = "(default)", prefix: str = "pipectl_",
                 credentials: Any = None, client: Any = None, timeout: float = 30.0,
                 concurrency: str = "optimistic", retry_base: float = 0.1, retry_cap: float = 4.0):
        firestore = require("google.cloud.firestore")
        self.project = project
        self.database = database
        self.prefix = prefix
        self.timeout = timeout
        credentials = anonymous_credentials_if_emulated("FIRESTORE_EMULATOR_HOST", credentials)
        self.client = client or firestore.Client(project=project, database=database, credentials=credentials)
        self.exceptions = require("google.api_core.exceptions")
        self.retry = bounded_retry(timeout)  # the SDK's default retries outlast the timeout
        if concurrency not in ("pessimistic", "optimistic"):
            raise BackendError(f"Firestore state store: unknown concurrency '{concurrency}'", hint="use pessimistic or optimistic")
        self.concurrency = concurrency
        self.retry_base = retry_base
        self.retry_cap = retry_cap
        self.stats = {"attempts": 0, "retries": 0}  # transaction attempts / contention retries (bench, status)
        self._stats_lock = threading.Lock()

    # ------------------------------------------- helpers (shared with firestore_txn)
    def _collection_id(self, collection: str) -> str:
        return self.prefix + encode_id(collection)

    def ref(self, collection: str, key: str) -> Any:
        """The SDK DocumentReference of ``(collection, key)`` (ids percent-encoded)."""
        return self.client.collection(self._collection_id(collection)).document(encode_id(key))

    def location(self) -> str:
        """Where this store lives, for error messages."""
        return f"Firestore project {self.project} database {self.database}"

    def check_size(self, collection: str, key: str, value: Mapping[str, Any]) -> dict[str, Any]:
        """``value`` encoded for Firestore; refused early (with the fix) when over 1 MiB."""
        encoded = encode_value(dict(value))
        # A cheap over-estimate; the server enforces the exact limit (translated in call).
        approx = len(repr(encoded).encode())
        if approx > _MAX_DOC_BYTES:
            raise BackendError(
                f"document {collection}/{key} is about {approx} bytes, over Firestore's 1 MiB document limit",
                hint="split large values (entity id sets) into chunk documents of their own collection",
            )
        return encoded

    def call(self, fn: Callable[[], Any], what: str) -> Any:
        """Run one RPC, translating driver errors into BackendError naming the document."""
        exc_mod = self.exceptions
        try:
            return fn()
        except exc_mod.Aborted:
            raise  # contention: handled by run_transaction's retry loop
        except (exc_mod.GoogleAPICallError, exc_mod.RetryError) as exc:
            raise BackendError(
                f"{self.location()}: {what} failed: {exc.message if hasattr(exc, 'message') else exc}",
                hint="check FIRESTORE_EMULATOR_HOST / credentials and that the database exists",
            ) from exc

    # ----------------------------------------------------------------- protocol
    @contextlib.contextmanager
    def transaction(self) -> Iterator[Any]:
        """One attempt: commit on normal exit, roll back on exception. A conflict raises
        BackendError; use :meth:`run_transaction` to retry automatically."""
        if self.concurrency == "pessimistic":
            with pessimistic_block(self) as txn:
                yield txn
            return
        otxn = OptimisticTransaction(self)
        yield otxn
        try:
            otxn.commit()
        except Conflict as exc:
            raise BackendError(f"{self.location()}: transaction lost to a concurrent writer",
                               hint="use run_transaction(), which retries on contention") from exc

    def run_transaction(self, fn: Callable[[Any], Any], max_attempts: int = 10) -> Any:
        """Run ``fn`` in a transaction; on contention retry with full-jitter exponential backoff.

        Why jitter: Firestore (and its emulator) lock what a pessimistic transaction reads;
        when several transactions read one document and then all try to commit, they wait for
        each other until a lock timeout and abort together. Retrying at once repeats the
        collision; random delays (``retry_base * 2**k``, capped at ``retry_cap``) spread them
        out. ``max_attempts`` is at least 10 (the protocol default)."""
        attempts = max(10, max_attempts)
        last: BaseException | None = None
        for k in range(attempts):
            with self._stats_lock:
                self.stats["attempts"] += 1
            try:
                return self._attempt(fn)
            except Conflict as exc:
                last = exc.__cause__ or exc
            with self._stats_lock:
                self.stats["retries"] += 1
            time.sleep(random.uniform(0, min(self.retry_cap, self.retry_base * 2 ** k)))
        raise BackendError(f"{self.location()}: transaction still contended after {attempts} attempts",
                           hint="raise max_attempts or spread writes over more documents") from last

    def _attempt(self, fn: Callable[[Any], Any]) -> Any:
        """One attempt in the configured concurrency mode; contention raises Conflict."""
        if self.concurrency == "optimistic":
            txn = OptimisticTransaction(self)
            result = fn(txn)
            txn.commit()
            return result
        firestore = require("google.cloud.firestore")
        exc_mod = self.exceptions

        @firestore.transactional
        def attempt(raw: Any) -> Any:
            return fn(FirestoreTransaction(self, raw))

        try:  # max_attempts=1: the backoff in run_transaction replaces the SDK's immediate retry
            return attempt(self.client.transaction(max_attempts=1))
        except (exc_mod.GoogleAPICallError, ValueError) as exc:
            # Aborted on a read inside fn, or at commit (which @transactional raises as a
            # ValueError from the Aborted once its attempts are used up): contention.
            aborted = next((c for c in causes(exc) if isinstance(c, exc_mod.Aborted)), None)
            if aborted is not None:
                raise Conflict() from aborted
            if isinstance(exc, ValueError):
                raise
            raise BackendError(f"{self.location()}: transaction failed: {exc}",
                               hint="the transaction was rolled back; check the values written and FIRESTORE_EMULATOR_HOST/credentials") from exc

    def get(self, collection: str, key: str) -> dict[str, Any] | None:
        ref = self.ref(collection, key)
        snap = self.call(lambda: ref.get(retry=self.retry, timeout=self.timeout), f"read {collection}/{key}")
        return decode_value(snap.to_dict()) if snap.exists else None

    def query(self, collection: str, where: Mapping[str, Any] | None = None,
              limit: int | None = None) -> list[tuple[str, dict[str, Any]]]:
        field_filter = require("google.cloud.firestore_v1.base_query").FieldFilter
        field_path = require("google.cloud.firestore_v1.field_path").FieldPath
        q: Any = self.client.collection(self._collection_id(collection))
        for name, value in (where or {}).items():
            q = q.where(filter=field_filter(field_path(name).to_api_repr(), "==", encode_value(value)))
        if limit is not None:
            q = q.limit(limit)
        docs = self.call(lambda: list(q.stream(retry=self.retry, timeout=self.timeout)), f"query {collection}")
        out = [(unquote(d.id), decode_value(d.to_dict())) for d in docs]
        out.sort(key=lambda item: item[0])
        return out

    def delete_collection(self, collection: str) -> int:
        """Delete every document of ``collection`` (tests, resets); returns how many."""
        coll = self.client.collection(self._collection_id(collection))
        refs = self.call(lambda: list(coll.list_documents(retry=self.retry, timeout=self.timeout)), f"list {collection}")
        for ref in refs:
            self.call(lambda ref=ref: ref.delete(retry=self.retry, timeout=self.timeout), f"delete {collection}/{unquote(ref.id)}")
        return len(refs)

    def close(self) -> None:
        self.client.close()
