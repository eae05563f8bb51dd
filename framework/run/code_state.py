"""Which code produced a partition's rows: the runtime half of code-change awareness.

After every finished run (success, partial, no_data) the runner stores the processor's code
fingerprint (:mod:`framework.manifest.fingerprint`) for the partition in the StateStore
(collection ``pipectl_code_state``, key ``processor|partition``). Before the next run of
that processor and partition it compares: a different fingerprint means the rows were made
by other code, so the run is a full batch of the partition with the reason of what changed
("transform changed: sql/x.sql"), recorded in the run history like every fallback, and its
completion carries "everything changed" downstream. No stored fingerprint (the partition
was never run, or ran before pipectl recorded fingerprints) means nothing to compare:
change detection decides, as before.

:func:`framework.plan.reprocess.pending_reprocessing` is what ``pipectl plan`` shows: per
processor, the partitions whose stored fingerprint differs from the current code, and why.
"""
from __future__ import annotations

import time
from typing import Any, Callable

from framework.manifest.fingerprint import Fingerprint, describe_changes, processor_fingerprint
from framework.manifest.model import Processor, Project
from framework.plan.reprocess import CODE_STATE



def state_key(processor: str, partition: Any) -> str:
    return f"{processor}|{partition}"


class CodeState:
    """Stored fingerprints over a StateStore; fingerprints of the project cached per object."""

    def __init__(self, project: Project, store: Any, clock: Callable[[], float] = time.time):
        self.project = project
        self.store = store
        self.clock = clock
        self._current: dict[str, Fingerprint] = {}

    def current(self, proc: Processor) -> Fingerprint:
        if proc.name not in self._current:
            self._current[proc.name] = processor_fingerprint(self.project, proc)
        return self._current[proc.name]

    def changed_reason(self, proc: Processor, partition: Any) -> str | None:
        """Why ``proc``'s rows of ``partition`` were made by other code, or None."""
        doc = self.store.get(CODE_STATE, state_key(proc.name, partition))
        if doc is None:
            return None
        now = self.current(proc)
        if doc.get("digest") == now.digest:
            return None
        return describe_changes(self.project, proc, doc.get("parts"), now)

    def record(self, proc: Processor, partition: Any, run_id: str) -> None:
        """Store the current fingerprint as the one that made the partition's rows (a write
        only when it differs from the stored one).

        Almost every run finds its own fingerprint stored already: a plain read says so
        without taking the store's write lock (one ``BEGIN IMMEDIATE`` per processor run on
        SQLite, 21 in a one-player update of the example); a different or missing one is
        written by the transaction, which reads again."""
        key = state_key(proc.name, partition)
        now = self.current(proc)
        stored = self.store.get(CODE_STATE, key)
        if stored is not None and stored.get("digest") == now.digest:
            return

        def txn(t: Any) -> None:
            doc = t.get(CODE_STATE, key)
            if doc is not None and doc.get("digest") == now.digest:
                return
            t.set(CODE_STATE, key, {"processor": proc.name, "partition": str(partition), "digest": now.digest,
                                    "parts": dict(now.parts), "run_id": run_id, "at": self.clock()})

        self.store.run_transaction(txn)


__all__ = ["CodeState", "CODE_STATE", "state_key"]
