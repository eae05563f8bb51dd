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
  missing. A lost race costs one round trip. bench/bench_firestore.py measures why this is
  the default: concurrent completions of one partition contend on its ledger document.
* ``pessimistic``: ``@firestore.transactional`` (reads lock documents). On the emulator,
  concurrent readers of one document block each other's commit until a ~2 s lock timeout.

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

from framework.backends.gcp_common import anonymous_credentials_if_emulated, bounded_retry, require
from framework.errors import BackendError

_NESTED = "pipectl~nested_list"
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


def _encode_value(value: Any, in_list: bool = False) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _encode_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        items = [_encode_value(v, in_list=True) for v in value]
        return {_NESTED: items} if in_list else items
    return value


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {_NESTED}:
            return [_decode_value(v) for v in value[_NESTED]]
        return {k: _decode_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode_value(v) for v in value]
    return value


class FirestoreTransaction:
    """One attempt of a transaction: reads go through the Firestore transaction (so they are
    locked/validated at commit), writes are buffered by it and applied atomically at commit."""

    def __init__(self, store: "FirestoreStateStore", txn: Any):
        self._store = store
        self._txn = txn
        self._wrote = False

    def get(self, collection: str, key: str) -> dict[str, Any] | None:
        if self._wrote:
            raise BackendError(
                f"read of {collection}/{key} after a write in the same transaction",
                hint="Firestore requires every read of a transaction before its first write; read first",
            )
        ref = self._store._ref(collection, key)
        snap = self._store._call(lambda: ref.get(transaction=self._txn, retry=self._store._retry, timeout=self._store.timeout), f"read {collection}/{key}")
        return _decode_value(snap.to_dict()) if snap.exists else None

    def set(self, collection: str, key: str, value: Mapping[str, Any]) -> None:
        self._wrote = True
        self._txn.set(self._store._ref(collection, key), self._store._check_size(collection, key, value))

    def update(self, collection: str, key: str, fields: Mapping[str, Any]) -> None:
        self._wrote = True
        if not fields:
            return
        field_path = require("google.cloud.firestore_v1.field_path").FieldPath
        encoded = _encode_value(dict(fields))
        # Backquoted field paths: a top-level name containing '.' must not become a nested path.
        data = {field_path(name).to_api_repr(): value for name, value in encoded.items()}
        self._txn.update(self._store._ref(collection, key), data)

    def delete(self, collection: str, key: str) -> None:
        self._wrote = True
        self._txn.delete(self._store._ref(collection, key))


class _Conflict(Exception):
    """A concurrent writer won; the attempt is retried (never leaves run_transaction)."""


class OptimisticTransaction:
    """Optimistic concurrency: reads take no locks; the writes commit in one atomic batch
    whose preconditions say that every document read is unchanged (same ``update_time``,
    or still missing). A failed precondition means another writer won: retry.

    Why: with pessimistic transactions, concurrent readers of one document block each
    other's commits until a lock timeout (about 2 s on the emulator); here a lost race costs
    one round trip. Same isolation: a commit succeeds only if nothing it read has changed."""

    def __init__(self, store: "FirestoreStateStore"):
        self._store = store
        self._reads: dict[str, tuple[Any, Any]] = {}  # path -> (ref, update_time or None if missing)
        self._writes: list[tuple[str, Any, Any]] = []  # (op, ref, data)
        self._wrote = False

    def get(self, collection: str, key: str) -> dict[str, Any] | None:
        if self._wrote:
            raise BackendError(f"read of {collection}/{key} after a write in the same transaction",
                               hint="Firestore requires every read of a transaction before its first write; read first")
        ref = self._store._ref(collection, key)
        snap = self._store._call(lambda: ref.get(retry=self._store._retry, timeout=self._store.timeout), f"read {collection}/{key}")
        self._reads.setdefault(ref._document_path, (ref, snap.update_time if snap.exists else None))
        return _decode_value(snap.to_dict()) if snap.exists else None

    def set(self, collection: str, key: str, value: Mapping[str, Any]) -> None:
        self._wrote = True
        self._writes.append(("set", self._store._ref(collection, key), self._store._check_size(collection, key, value)))

    def update(self, collection: str, key: str, fields: Mapping[str, Any]) -> None:
        self._wrote = True
        ref = self._store._ref(collection, key)
        read = self._reads.get(ref._document_path)
        if read is not None and read[1] is None:
            raise BackendError(f"update of missing document {collection}/{key}",
                               hint="set() creates a document; update() needs an existing one")
        if fields:
            field_path = require("google.cloud.firestore_v1.field_path").FieldPath
            data = {field_path(n).to_api_repr(): v for n, v in _encode_value(dict(fields)).items()}
            self._writes.append(("update", ref, data))

    def delete(self, collection: str, key: str) -> None:
        self._wrote = True
        self._writes.append(("delete", self._store._ref(collection, key), None))

    def commit(self) -> None:
        if not self._writes:
            return  # read-only: a consistent-enough snapshot for a read-only caller
        store, client = self._store, self._store._client
        types = require("google.cloud.firestore_v1.types")
        batch = client.batch()
        written: set[str] = set()
        for op, ref, data in self._writes:
            path = ref._document_path
            read = self._reads.get(path) if path not in written else None
            before = len(batch._write_pbs)
            if op == "set":
                batch.set(ref, data)
            elif op == "update":
                batch.update(ref, data)
            else:
                batch.delete(ref)
            if read is not None:  # first write of a document that was read: guard it
                pre = (types.Precondition(update_time=read[1]) if read[1] is not None else types.Precondition(exists=False))
                batch._write_pbs[before].current_document = pre
            written.add(path)
        for path, (ref, update_time) in self._reads.items():
            if path in written:
                continue
            if update_time is None:  # verify "still missing": deleting a missing document is a no-op
                batch._add_write_pbs([types.Write(delete=path, current_document=types.Precondition(exists=False))])
            else:  # verify "unchanged": an update of no field, guarded by update_time
                batch._add_write_pbs([types.Write(update=types.Document(name=path), update_mask=types.DocumentMask(field_paths=[]),
                                                  current_document=types.Precondition(update_time=update_time))])
        exc_mod = store._exceptions
        try:
            batch.commit(retry=store._retry, timeout=store.timeout)
        except (exc_mod.FailedPrecondition, exc_mod.AlreadyExists, exc_mod.Aborted) as exc:
            raise _Conflict() from exc
        except exc_mod.NotFound as exc:
            raise BackendError(f"{store._where()}: update of a missing document: {exc.message}",
                               hint="set() creates a document; update() needs an existing one") from exc
        except (exc_mod.GoogleAPICallError, exc_mod.RetryError) as exc:
            raise BackendError(f"{store._where()}: commit failed: {getattr(exc, 'message', exc)}",
                               hint="check the values written (1 MiB per document) and FIRESTORE_EMULATOR_HOST/credentials") from exc


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
        self._client = client or firestore.Client(project=project, database=database, credentials=credentials)
        self._exceptions = require("google.api_core.exceptions")
        self._retry = bounded_retry(timeout)  # the SDK's default retries outlast the timeout
        if concurrency not in ("pessimistic", "optimistic"):
            raise BackendError(f"Firestore state store: unknown concurrency '{concurrency}'", hint="use pessimistic or optimistic")
        self.concurrency = concurrency
        self.retry_base = retry_base
        self.retry_cap = retry_cap
        self.stats = {"attempts": 0, "retries": 0}  # transaction attempts / contention retries (bench, status)
        self._stats_lock = threading.Lock()

    # ----------------------------------------------------------------- helpers
    def _collection_id(self, collection: str) -> str:
        return self.prefix + encode_id(collection)

    def _ref(self, collection: str, key: str) -> Any:
        return self._client.collection(self._collection_id(collection)).document(encode_id(key))

    def _where(self) -> str:
        return f"Firestore project {self.project} database {self.database}"

    def _check_size(self, collection: str, key: str, value: Mapping[str, Any]) -> dict[str, Any]:
        encoded = _encode_value(dict(value))
        # A cheap over-estimate; the server enforces the exact limit (translated in _call).
        approx = len(repr(encoded).encode())
        if approx > _MAX_DOC_BYTES:
            raise BackendError(
                f"document {collection}/{key} is about {approx} bytes, over Firestore's 1 MiB document limit",
                hint="split large values (entity id sets) into chunk documents of their own collection",
            )
        return encoded

    def _call(self, fn: Callable[[], Any], what: str) -> Any:
        """Run one RPC, translating driver errors into BackendError naming the document."""
        exc_mod = self._exceptions
        try:
            return fn()
        except exc_mod.Aborted:
            raise  # contention: handled by run_transaction's retry loop
        except (exc_mod.GoogleAPICallError, exc_mod.RetryError) as exc:
            raise BackendError(
                f"{self._where()}: {what} failed: {exc.message if hasattr(exc, 'message') else exc}",
                hint="check FIRESTORE_EMULATOR_HOST / credentials and that the database exists",
            ) from exc

    # ----------------------------------------------------------------- protocol
    @contextlib.contextmanager
    def transaction(self) -> Iterator[Any]:
        """One attempt: commit on normal exit, roll back on exception. A conflict raises
        BackendError; use :meth:`run_transaction` to retry automatically."""
        if self.concurrency == "optimistic":
            otxn = OptimisticTransaction(self)
            yield otxn
            try:
                otxn.commit()
            except _Conflict as exc:
                raise BackendError(f"{self._where()}: transaction lost to a concurrent writer",
                                   hint="use run_transaction(), which retries on contention") from exc
            return
        txn = self._client.transaction()
        self._call(txn._begin, "begin transaction")
        wrapper = FirestoreTransaction(self, txn)
        try:
            yield wrapper
        except BaseException:
            with contextlib.suppress(self._exceptions.GoogleAPICallError):
                txn._rollback()
            raise
        try:
            self._call(txn._commit, "commit")
        except self._exceptions.Aborted as exc:
            raise BackendError(f"{self._where()}: transaction aborted by a concurrent writer",
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
            except _Conflict as exc:
                last = exc.__cause__ or exc
            with self._stats_lock:
                self.stats["retries"] += 1
            time.sleep(random.uniform(0, min(self.retry_cap, self.retry_base * 2 ** k)))
        raise BackendError(f"{self._where()}: transaction still contended after {attempts} attempts",
                           hint="raise max_attempts or spread writes over more documents") from last

    def _attempt(self, fn: Callable[[Any], Any]) -> Any:
        """One attempt in the configured concurrency mode; contention raises _Conflict."""
        exc_mod = self._exceptions
        if self.concurrency == "optimistic":
            txn = OptimisticTransaction(self)
            result = fn(txn)
            txn.commit()
            return result
        firestore = require("google.cloud.firestore")

        @firestore.transactional
        def attempt(raw: Any) -> Any:
            return fn(FirestoreTransaction(self, raw))

        try:  # max_attempts=1: the backoff in run_transaction replaces the SDK's immediate retry
            return attempt(self._client.transaction(max_attempts=1))
        except exc_mod.Aborted as exc:  # contention surfaced on a read inside fn
            raise _Conflict() from exc
        except ValueError as exc:  # @transactional: the commit was aborted
            if isinstance(exc.__cause__, exc_mod.Aborted):
                raise _Conflict() from exc.__cause__
            raise
        except exc_mod.GoogleAPICallError as exc:
            raise BackendError(f"{self._where()}: transaction failed: {exc}",
                               hint="the transaction was rolled back; check the values written and FIRESTORE_EMULATOR_HOST/credentials") from exc

    def get(self, collection: str, key: str) -> dict[str, Any] | None:
        ref = self._ref(collection, key)
        snap = self._call(lambda: ref.get(retry=self._retry, timeout=self.timeout), f"read {collection}/{key}")
        return _decode_value(snap.to_dict()) if snap.exists else None

    def query(self, collection: str, where: Mapping[str, Any] | None = None,
              limit: int | None = None) -> list[tuple[str, dict[str, Any]]]:
        field_filter = require("google.cloud.firestore_v1.base_query").FieldFilter
        field_path = require("google.cloud.firestore_v1.field_path").FieldPath
        q: Any = self._client.collection(self._collection_id(collection))
        for name, value in (where or {}).items():
            q = q.where(filter=field_filter(field_path(name).to_api_repr(), "==", _encode_value(value)))
        if limit is not None:
            q = q.limit(limit)
        docs = self._call(lambda: list(q.stream(retry=self._retry, timeout=self.timeout)), f"query {collection}")
        out = [(unquote(d.id), _decode_value(d.to_dict())) for d in docs]
        out.sort(key=lambda item: item[0])
        return out

    def delete_collection(self, collection: str) -> int:
        """Delete every document of ``collection`` (tests, resets); returns how many."""
        coll = self._client.collection(self._collection_id(collection))
        refs = self._call(lambda: list(coll.list_documents(retry=self._retry, timeout=self.timeout)), f"list {collection}")
        for ref in refs:
            self._call(lambda ref=ref: ref.delete(retry=self._retry, timeout=self.timeout), f"delete {collection}/{unquote(ref.id)}")
        return len(refs)

    def close(self) -> None:
        self._client.close()
