"""Entity sets outside the ledger document, in fixed-size chunks.

A full day touches 450+ players; an array of that size inside one ledger document ran
into the store's per-field limits (FAILURE-MODES 16). Here a completion's or a trigger's
ids per entity kind live in their own documents (``CHUNK`` ids each) under a deterministic
set id, and the ledger/envelope carry only ``{"ref": set_id, "count": n}``. Writing a set
is idempotent (same id, same content), so it is done before the ledger transaction and a
retry or a duplicate rewrites identical chunks. The header document is written last: a
reader that finds the header finds every chunk.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from framework.errors import BackendError

ENTITY_SETS = "orch_entity_sets"
ENTITY_CHUNKS = "orch_entity_chunks"
CHUNK = 500  # ids per chunk document
INLINE_LIMIT = 200  # ids per kind kept inline in a completion record
TRIGGER_INLINE_LIMIT = 1000  # ids per kind carried inline in a trigger envelope
_WRITES_PER_TXN = 200


def store_entity_set(store: Any, set_id: str, ids: Iterable[Any]) -> dict[str, Any]:
    """Write ``ids`` (deduplicated, order kept) as chunks; return the reference."""
    unique = list(dict.fromkeys(ids))
    chunks = [unique[i:i + CHUNK] for i in range(0, len(unique), CHUNK)]
    for start in range(0, len(chunks), _WRITES_PER_TXN):
        batch = list(enumerate(chunks))[start:start + _WRITES_PER_TXN]

        def write(txn: Any, batch: list = batch) -> None:
            for index, chunk in batch:
                txn.set(ENTITY_CHUNKS, f"{set_id}#{index:06d}", {"set": set_id, "index": index, "ids": chunk})

        store.run_transaction(write)
    store.run_transaction(lambda txn: txn.set(ENTITY_SETS, set_id, {"count": len(unique), "chunks": len(chunks)}))
    return {"ref": set_id, "count": len(unique)}


def load_entity_set(store: Any, ref: str | Mapping[str, Any]) -> list[Any]:
    """All ids of a stored set; BackendError if it is missing or incomplete."""
    set_id = ref["ref"] if isinstance(ref, Mapping) else ref
    header = store.get(ENTITY_SETS, set_id)
    if header is None:
        raise BackendError(f"entity set {set_id!r} not found in the state store", hint="the producer must store the set before publishing its reference")
    ids: list[Any] = []
    for index in range(header["chunks"]):
        chunk = store.get(ENTITY_CHUNKS, f"{set_id}#{index:06d}")
        if chunk is None:
            raise BackendError(f"entity set {set_id!r} is missing chunk {index}", hint="re-run the producer; sets are written idempotently")
        ids.extend(chunk["ids"])
    return ids


def compact(store: Any, set_prefix: str, entities: Mapping[str, Any] | None, limit: int = INLINE_LIMIT) -> dict[str, Any] | None:
    """Store kinds with more than ``limit`` ids as sets; keep small ones inline."""
    if entities is None:
        return None
    out: dict[str, Any] = {}
    for kind, value in entities.items():
        if isinstance(value, Mapping):  # already a reference
            out[kind] = dict(value)
        elif len(value) > limit:
            out[kind] = store_entity_set(store, f"{set_prefix}:{kind}", value)
        else:
            out[kind] = list(dict.fromkeys(value))
    return out


def expand(store: Any, entities: Mapping[str, Any] | None) -> dict[str, list[Any]] | None:
    """Inline every reference (``None`` stays None: everything changed)."""
    if entities is None:
        return None
    return {kind: (load_entity_set(store, v) if isinstance(v, Mapping) else list(v)) for kind, v in entities.items()}


def aggregate(store: Any, parts: Iterable[Mapping[str, Any] | None]) -> dict[str, list[Any]] | None:
    """Union per entity kind of several change-sets; any ``None`` (everything) wins."""
    union: dict[str, dict[Any, None]] = {}
    for part in parts:
        expanded = expand(store, part)
        if expanded is None:
            return None
        for kind, ids in expanded.items():
            union.setdefault(kind, {}).update(dict.fromkeys(ids))
    return {kind: list(ids) for kind, ids in sorted(union.items())}


def resolve_entities(store: Any, envelope: Mapping[str, Any]) -> dict[str, list[Any]] | None:
    """For consumers: the envelope's ``entities_changed`` with references loaded."""
    return expand(store, envelope.get("entities_changed"))
