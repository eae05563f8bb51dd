"""The virtual clock of the ledger, owned by the orchestrator: the orchestrator service (sweep,
status, the Cloud Function) and the runtime's driver must read the same time, and the
orchestrator may not import the runtime (re-exported by :mod:`framework.drive.pipeline`)."""
from __future__ import annotations

import time
from typing import Any, Callable


class VirtualClock:
    """Wall time plus an offset the driver moves forward when only timers are pending.

    The orchestrator's ledger lives on this clock; the offset is kept in the StateStore
    (``pipectl_clock/virtual``) so that it never runs backwards between two commands."""

    COLLECTION, KEY = "pipectl_clock", "virtual"

    def __init__(self, base: Callable[[], float] = time.time, store: Any = None):
        self.base = base
        self.store = store
        doc = store.get(self.COLLECTION, self.KEY) if store is not None else None
        self.offset = float(doc["offset"]) if doc else 0.0

    def __call__(self) -> float:
        return self.base() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds
        if self.store is not None:
            offset = self.offset

            def txn(t: Any) -> None:
                t.set(self.COLLECTION, self.KEY, {"offset": offset})

            self.store.run_transaction(txn)
