"""Keeping a partition's ledger document small: old rounds move to documents of their own.

A ledger document (``orch_ledger/<transition>|<partition>``) gains a round per update of
that partition: about 640 bytes for a small transition, over 1 KB for the 12-processor raw
phase (its round lists every completion key). A partition updated every few minutes for a
season would pass Firestore's 1 MiB document limit, and every transaction on it reads and
rewrites the whole document, so its size is also the cost of every completion.

So the document keeps the newest :data:`KEEP_ROUNDS` closed rounds (plus the open one);
older closed rounds are archived, inside the same transaction that closed a round, to
``orch_rounds/<ledger key>|<round>`` with the run keys that pointed at them, and each of
those run keys gets a small ``orch_archived_run_keys/<ledger key>|<run key>`` document, so
a very late completion of an archived round is still recognised as late (one extra read,
only for a run key the ledger does not know). At most :data:`MAX_ARCHIVE_PER_TXN` rounds
move per transaction (a Firestore commit takes at most 500 writes); an old, large ledger
shrinks over its next few transactions. The document's size is then bounded by
``KEEP_ROUNDS`` x the size of one round, whatever the number of rounds
(tests/unit/orchestrator/test_compaction.py).
"""
from __future__ import annotations

from typing import Any

ROUNDS = "orch_rounds"
ARCHIVED_RUN_KEYS = "orch_archived_run_keys"
KEEP_ROUNDS = 20
MAX_ARCHIVE_PER_TXN = 25


def archived_run_key(ledger_key: str, run_key: str) -> str:
    return f"{ledger_key}|{run_key}"


def compact(txn: Any, ledger: dict[str, Any], ledger_key: str) -> list[int]:
    """Archive the oldest closed rounds beyond ``KEEP_ROUNDS`` (write phase of ``txn``).
    Returns the archived round numbers."""
    closed = sorted(int(n) for n, r in ledger["rounds"].items() if r["state"] != "open" and int(n) != ledger.get("open_round"))
    excess = closed[:-KEEP_ROUNDS][:MAX_ARCHIVE_PER_TXN] if len(closed) > KEEP_ROUNDS else []
    if not excess:
        return []
    by_round: dict[int, list[str]] = {}
    for key, number in ledger["run_keys"].items():
        by_round.setdefault(int(number), []).append(key)
    for number in excess:
        rnd = ledger["rounds"].pop(str(number))
        keys = sorted(by_round.get(number, ()))
        for key in keys:
            del ledger["run_keys"][key]
            txn.set(ARCHIVED_RUN_KEYS, archived_run_key(ledger_key, key), {"ledger": ledger_key, "round": number})
        txn.set(ROUNDS, f"{ledger_key}|{number}", {**rnd, "ledger": ledger_key, "run_keys": keys})
    ledger["archived_through"] = max(excess[-1], int(ledger.get("archived_through") or 0))
    ledger["archived_rounds"] = int(ledger.get("archived_rounds") or 0) + len(excess)
    return excess
