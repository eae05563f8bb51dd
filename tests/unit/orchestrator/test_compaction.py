"""A partition's ledger document stays small however many rounds it sees (Firestore: 1 MiB).

Without compaction the document grew by a round per update (about 640 bytes here, more for
wide phases) forever; with it the document holds the newest KEEP_ROUNDS closed rounds and
the rest live in ``orch_rounds`` documents. Semantics are unchanged: a late completion of an
archived round is still late (no new round opened).
"""
from __future__ import annotations

import json

from orch_support import DAY, RAW, completion
from framework.orchestrator import compaction
from framework.orchestrator import ledger as lg

ROUNDS = 80


def _rounds(orch, clock, n: int) -> None:
    start = orch.__dict__.setdefault("_test_rounds", 0)
    orch._test_rounds = start + n
    for i in range(start, start + n):
        for name in RAW:
            orch.handle_completion(completion(name, execution_id=f"r{i}-{name}", correlation_id=f"run-{i}", entities_changed=None))
        clock.advance(3600)
        orch.sweep()  # an update round fires when its debounce window closes


def test_ledger_document_size_is_bounded_and_old_rounds_are_archived(make_orch, store, clock) -> None:
    orch = make_orch()
    sizes = []
    for block in range(ROUNDS // 10):
        _rounds(orch, clock, 10)
        doc = store.get(lg.LEDGER, f"raw->analytics|{DAY}")
        sizes.append(len(json.dumps(doc)))
    assert doc["round"] == ROUNDS
    assert len(doc["rounds"]) == compaction.KEEP_ROUNDS
    assert min(doc["rounds"], key=int) == str(ROUNDS - compaction.KEEP_ROUNDS + 1)
    assert doc["archived_rounds"] == ROUNDS - compaction.KEEP_ROUNDS and doc["archived_through"] == ROUNDS - compaction.KEEP_ROUNDS
    assert len(doc["run_keys"]) == compaction.KEEP_ROUNDS
    # the size stops growing once KEEP_ROUNDS rounds are kept: the last blocks differ by a few bytes
    per_round = sizes[1] / 20
    assert max(sizes[2:]) - min(sizes[2:]) < per_round, sizes
    assert max(sizes) < 1024 * 1024 / 20  # far below Firestore's 1 MiB, whatever the number of rounds
    archived = store.get(compaction.ROUNDS, f"raw->analytics|{DAY}|1")
    assert archived["state"] == "triggered" and archived["run_keys"] == ["c:run-0"] and archived["ledger"] == f"raw->analytics|{DAY}"
    assert len(archived["completions"]) == len(RAW)


def test_late_completion_of_an_archived_round_is_still_late(make_orch, store, clock, alerts) -> None:
    orch = make_orch()
    _rounds(orch, clock, compaction.KEEP_ROUNDS + 5)
    before = store.get(lg.LEDGER, f"raw->analytics|{DAY}")
    assert "1" not in before["rounds"]
    late = orch.handle_completion(completion("r2", execution_id="r0-r2-retry", correlation_id="run-0", status="no_data"))
    assert (late.action, late.round) == ("late", 1) and "archived" in late.reason
    after = store.get(lg.LEDGER, f"raw->analytics|{DAY}")
    assert after["round"] == before["round"] and after["open_round"] is None  # no new round opened
    assert any("late_completion" in s for s in alerts.signatures())


def test_a_large_old_ledger_shrinks_over_a_few_transactions(make_orch, store, clock, monkeypatch) -> None:
    """A ledger written before compaction existed (many rounds in the document) is archived
    at most MAX_ARCHIVE_PER_TXN rounds per transaction (a Firestore commit allows 500 writes)."""
    orch = make_orch()
    monkeypatch.setattr(compaction, "KEEP_ROUNDS", 10_000)  # as if compaction did not exist yet
    _rounds(orch, clock, 70)
    monkeypatch.setattr(compaction, "KEEP_ROUNDS", 20)
    key = f"raw->analytics|{DAY}"
    assert len(store.get(lg.LEDGER, key)["rounds"]) == 70
    orch.handle_completion(completion("r1", execution_id="next-r1", correlation_id="next", entities_changed=None))
    assert len(store.get(lg.LEDGER, key)["rounds"]) == 71 - compaction.MAX_ARCHIVE_PER_TXN  # 70 closed + the new open one
    orch.handle_completion(completion("r2", execution_id="next-r2", correlation_id="next", entities_changed=None))
    orch.handle_completion(completion("r3", execution_id="next-r3", correlation_id="next", entities_changed=None))
    assert len(store.get(lg.LEDGER, key)["rounds"]) == 20 + 1
