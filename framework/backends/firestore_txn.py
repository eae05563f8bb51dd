"""Transactions of the Firestore state store, written against the SDK's public API only.

Why public only: the orchestrator's exactly-once guarantees run through these commits; an SDK
upgrade that renames a private attribute would break them at run time, mid-transition. Every
call here is documented google-cloud-firestore API (``DocumentReference.path``,
``WriteBatch.create/set/update/delete``, ``Client.write_option``, ``DELETE_FIELD``,
``@transactional``, ``Transaction.set/update/delete``); ``tests/unit/backends/
test_firestore_public_api.py`` fails if a private SDK name comes back.

* :class:`OptimisticTransaction`: lock-free reads recorded with their ``update_time``; one
  atomic batch commit in which each written document is guarded by a precondition (created
  only if still missing, or changed only if its ``update_time`` is unchanged) and each
  document read but not written is verified by a write that changes nothing under the same
  precondition. A failed precondition raises :class:`Conflict`; ``run_transaction`` retries.
* :class:`FirestoreTransaction`: the pessimistic wrapper over an SDK ``Transaction``
  (reads lock documents); :func:`pessimistic_block` gives it a with-block.
"""
from __future__ import annotations

import contextlib
import queue
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping

from framework.backends.gcp_common import require
from framework.errors import BackendError

if TYPE_CHECKING:
    from framework.backends.firestore import FirestoreStateStore

_NESTED = "pipectl~nested_list"
_UNCHANGED = "pipectl~unchanged"  # a field no document has: deleting it is a write that changes nothing
HELPER_THREAD = "pipectl-firestore-transaction"
_READ_AFTER_WRITE = "Firestore requires every read of a transaction before its first write; read first"


def _read(store: Any, wrote: bool, collection: str, key: str, **options: Any) -> tuple[Any, Any]:
    """One document's reference and snapshot for a transaction's read (both kinds); a read
    after the transaction's first write is refused, as Firestore requires."""
    if wrote:
        raise BackendError(f"read of {collection}/{key} after a write in the same transaction", hint=_READ_AFTER_WRITE)
    ref = store.ref(collection, key)
    snap = store.call(lambda: ref.get(retry=store.retry, timeout=store.timeout, **options), f"read {collection}/{key}")
    return ref, snap


def encode_value(value: Any, in_list: bool = False) -> Any:
    """Firestore forbids arrays directly inside arrays: wrap them (undone by decode_value)."""
    if isinstance(value, Mapping):
        return {str(k): encode_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        items = [encode_value(v, in_list=True) for v in value]
        return {_NESTED: items} if in_list else items
    return value


def decode_value(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {_NESTED}:
            return [decode_value(v) for v in value[_NESTED]]
        return {k: decode_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_value(v) for v in value]
    return value


def field_updates(fields: Mapping[str, Any]) -> dict[str, Any]:
    """``{name: value}`` as update() field paths: backquoted, so a top-level name containing
    ``.`` never becomes a nested path."""
    field_path = require("google.cloud.firestore_v1.field_path").FieldPath
    return {field_path(name).to_api_repr(): value for name, value in fields.items()}


class Conflict(Exception):
    """A concurrent writer won; the attempt is retried (never leaves run_transaction)."""


@dataclass(frozen=True)
class _Read:
    ref: Any
    update_time: Any  # None: the document was missing
    fields: frozenset[str]  # its top-level field names, as read


def _absent_field(present: Iterable[str]) -> str:
    name, taken = _UNCHANGED, set(present)
    while name in taken:
        name += "~"
    return name


class OptimisticTransaction:
    """Optimistic concurrency: reads take no locks; the writes commit in one atomic batch whose
    preconditions say that every document read is unchanged (same ``update_time``, or still
    missing). A failed precondition means another writer won: retry.

    Why: with pessimistic transactions, concurrent readers of one document block each other's
    commits until a lock timeout (about 2 s on the emulator); here a lost race costs one round
    trip. Same isolation: a commit succeeds only if nothing it read has changed."""

    def __init__(self, store: "FirestoreStateStore"):
        self._store = store
        self._reads: dict[str, _Read] = {}  # ref.path -> first read
        self._writes: list[tuple[str, Any, Any]] = []  # (op, ref, data)
        self._wrote = False

    def get(self, collection: str, key: str) -> dict[str, Any] | None:
        ref, snap = _read(self._store, self._wrote, collection, key)
        data = snap.to_dict() if snap.exists else None
        self._reads.setdefault(ref.path, _Read(ref, snap.update_time if snap.exists else None, frozenset(data or ())))
        return decode_value(data) if data is not None else None

    def set(self, collection: str, key: str, value: Mapping[str, Any]) -> None:
        self._wrote = True
        self._writes.append(("set", self._store.ref(collection, key), self._store.check_size(collection, key, value)))

    def update(self, collection: str, key: str, fields: Mapping[str, Any]) -> None:
        self._wrote = True
        ref = self._store.ref(collection, key)
        read = self._reads.get(ref.path)
        if read is not None and read.update_time is None:
            raise BackendError(f"update of missing document {collection}/{key}",
                               hint="set() creates a document; update() needs an existing one")
        if fields:
            self._writes.append(("update", ref, field_updates(encode_value(dict(fields)))))

    def delete(self, collection: str, key: str) -> None:
        self._wrote = True
        self._writes.append(("delete", self._store.ref(collection, key), None))

    def commit(self) -> None:
        if not self._writes:
            return  # read-only: a consistent-enough snapshot for a read-only caller
        store = self._store
        batch = store.client.batch()
        written: set[str] = set()
        for op, ref, data in self._writes:
            read = self._reads.get(ref.path) if ref.path not in written else None
            self._add_write(batch, op, ref, data, read)
            written.add(ref.path)
        for path, read in self._reads.items():
            if path not in written:
                self._add_verify(batch, read)
        exc_mod = store.exceptions
        try:
            batch.commit(retry=store.retry, timeout=store.timeout)
        except (exc_mod.FailedPrecondition, exc_mod.AlreadyExists, exc_mod.Aborted) as exc:
            raise Conflict() from exc
        except exc_mod.NotFound as exc:
            raise BackendError(f"{store.location()}: update of a missing document: {exc.message}",
                               hint="set() creates a document; update() needs an existing one") from exc
        except (exc_mod.GoogleAPICallError, exc_mod.RetryError) as exc:
            raise BackendError(f"{store.location()}: commit failed: {getattr(exc, 'message', exc)}",
                               hint="check the values written (1 MiB per document) and FIRESTORE_EMULATOR_HOST/credentials") from exc

    def _add_write(self, batch: Any, op: str, ref: Any, data: Any, read: _Read | None) -> None:
        """One write; ``read`` is set on the first write of a document this transaction read,
        which then carries the precondition that the document is as it was read."""
        if read is None:
            if op == "set":
                batch.set(ref, data)
            elif op == "update":
                batch.update(ref, data)  # the SDK's default precondition: the document exists
            else:
                batch.delete(ref)
            return
        client = self._store.client
        if read.update_time is None:  # read as missing: it must still be missing
            if op == "set":
                batch.create(ref, data)
            elif op == "delete":
                batch.delete(ref, option=client.write_option(exists=False))
            else:  # refused by update() already; kept so a new caller cannot skip the guard
                raise BackendError(f"update of missing document {ref.path}", hint="set() creates a document; update() needs an existing one")
            return
        unchanged = client.write_option(last_update_time=read.update_time)
        if op == "update":
            batch.update(ref, data, option=unchanged)
        elif op == "delete":
            batch.delete(ref, option=unchanged)
        else:  # set replaces the document: write every new field, delete every other field read
            batch.update(ref, self._replacement(data, read.fields), option=unchanged)

    def _add_verify(self, batch: Any, read: _Read) -> None:
        """A write that changes nothing and fails if the document changed since it was read."""
        client = self._store.client
        if read.update_time is None:  # deleting a missing document is a no-op
            batch.delete(read.ref, option=client.write_option(exists=False))
        else:  # deleting a field the document does not have is a no-op
            delete_field = require("google.cloud.firestore").DELETE_FIELD
            batch.update(read.ref, field_updates({_absent_field(read.fields): delete_field}),
                         option=client.write_option(last_update_time=read.update_time))

    @staticmethod
    def _replacement(data: Mapping[str, Any], old_fields: frozenset[str]) -> dict[str, Any]:
        """The field updates that turn a document holding ``old_fields`` into exactly ``data``.

        Why not ``batch.set``: the SDK's set() takes no precondition; update() does, and an
        update of top-level fields replaces each one whole (nested maps included)."""
        delete_field = require("google.cloud.firestore").DELETE_FIELD
        fields = dict(data)
        fields.update({name: delete_field for name in old_fields if name not in data})
        if not fields:  # {} over {}: nothing to change, still guarded
            fields = {_absent_field(()): delete_field}
        return field_updates(fields)


class FirestoreTransaction:
    """One attempt of a pessimistic transaction: reads go through the SDK transaction (so they
    are locked until commit), writes are buffered by it and applied atomically at commit."""

    def __init__(self, store: "FirestoreStateStore", txn: Any):
        self._store = store
        self._txn = txn
        self._wrote = False

    def get(self, collection: str, key: str) -> dict[str, Any] | None:
        _, snap = _read(self._store, self._wrote, collection, key, transaction=self._txn)
        return decode_value(snap.to_dict()) if snap.exists else None

    def set(self, collection: str, key: str, value: Mapping[str, Any]) -> None:
        self._wrote = True
        self._txn.set(self._store.ref(collection, key), self._store.check_size(collection, key, value))

    def update(self, collection: str, key: str, fields: Mapping[str, Any]) -> None:
        self._wrote = True
        if fields:
            self._txn.update(self._store.ref(collection, key), field_updates(encode_value(dict(fields))))

    def delete(self, collection: str, key: str) -> None:
        self._wrote = True
        self._txn.delete(self._store.ref(collection, key))


class _BlockFailed(Exception):
    """The with-block raised: @transactional rolls the transaction back."""


def causes(exc: BaseException | None) -> Iterator[BaseException]:
    """``exc`` and what it was raised from or during (@transactional wraps and chains errors)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


@contextlib.contextmanager
def pessimistic_block(store: "FirestoreStateStore") -> Iterator[FirestoreTransaction]:
    """A pessimistic transaction as a with-block: begun before the block, committed after it,
    rolled back if it raises. One attempt; a lost race raises BackendError.

    Why a helper thread: the SDK's only public way to begin, commit and roll back a
    transaction is ``@transactional``, which wraps a function, and a with-block is not one.
    The helper thread runs ``@transactional`` and waits inside the wrapped function while the
    block runs here; the two hand over through queues, so the SDK transaction is only ever
    used by one thread at a time."""
    firestore = require("google.cloud.firestore")
    to_block: queue.Queue[tuple[str, Any]] = queue.Queue()
    block_end: queue.Queue[BaseException | None] = queue.Queue()

    @firestore.transactional
    def hold(raw: Any) -> None:
        to_block.put(("begun", FirestoreTransaction(store, raw)))
        failure = block_end.get()
        if failure is not None:
            raise _BlockFailed() from failure

    def helper() -> None:
        try:
            hold(store.client.transaction(max_attempts=1))  # the store's run_transaction does the retrying
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            to_block.put(("failed", exc))
        else:
            to_block.put(("committed", None))

    thread = threading.Thread(target=helper, name=HELPER_THREAD, daemon=True)
    thread.start()
    state, value = to_block.get()
    if state != "begun":
        thread.join()
        _reraise(store, value, "begin transaction")
    try:
        yield value
    except BaseException as exc:
        block_end.put(exc)
        to_block.get()  # rolled back (a failed rollback must not hide the block's own error)
        thread.join()
        raise
    block_end.put(None)
    state, value = to_block.get()
    thread.join()
    if state == "failed":
        _reraise(store, value, "commit")


def _reraise(store: "FirestoreStateStore", exc: BaseException, what: str) -> None:
    """Raise ``exc`` from the helper thread, driver errors translated into BackendError."""
    exc_mod = store.exceptions
    for cause in causes(exc):
        if isinstance(cause, exc_mod.Aborted):
            raise BackendError(f"{store.location()}: transaction aborted by a concurrent writer",
                               hint="use run_transaction(), which retries on contention") from cause
        if isinstance(cause, (exc_mod.GoogleAPICallError, exc_mod.RetryError)):
            raise BackendError(f"{store.location()}: {what} failed: {getattr(cause, 'message', cause)}",
                               hint="check FIRESTORE_EMULATOR_HOST / credentials and that the database exists") from cause
    raise exc
