"""Run history: running row at start, final status after, skip if live, stale -> failed (FM 20)."""
from __future__ import annotations

import pytest

from framework.run.history import RunHistory



class Clock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def history(memory_store) -> RunHistory:
    return RunHistory(memory_store, stale_after_seconds=600, clock=Clock())


def test_running_row_then_final_status_with_counts(history: RunHistory) -> None:
    claim = history.start("player_game_summary", "2026-01-15", phase="analytics", correlation_id="c1",
                          parent_id="e0", trigger_id="t1", mode="incremental")
    assert claim.acquired
    assert history.get(claim.run.run_id).status == "running"
    history.clock.now += 2.5
    history.finish(claim.run, "success", rows_written=3, entities_processed=1, entities_total=450,
                   efficiency_pct=99.78, durations={"transform": 1.0})
    rec = history.get(claim.run.run_id)
    assert (rec.status, rec.rows_written, rec.entities_processed, rec.duration_seconds) == ("success", 3, 1, 2.5)
    assert (rec.correlation_id, rec.parent_id, rec.trigger_id) == ("c1", "e0", "t1")
    # claim released: the next run proceeds
    assert history.start("player_game_summary", "2026-01-15").acquired


def test_second_run_while_first_is_running_is_skipped_and_recorded(history: RunHistory) -> None:
    first = history.start("p", "2026-01-15")
    history.clock.now += 100
    second = history.start("p", "2026-01-15")
    assert not second.acquired
    assert "already running" in second.reason and first.run.run_id in second.reason
    assert history.get(second.run.run_id).status == "skipped"
    # another partition is independent
    assert history.start("p", "2026-01-16").acquired
    # a skipped run finishing must not release the first run's claim
    history.finish(first.run, "success")
    assert history.start("p", "2026-01-15").acquired


def test_stale_running_row_is_marked_failed_and_taken_over(history: RunHistory) -> None:
    first = history.start("p", "d")
    history.clock.now += 601
    second = history.start("p", "d")
    assert second.acquired and second.took_over_from == first.run.run_id
    old = history.get(first.run.run_id)
    assert old.status == "failed" and old.error.startswith("stale:") and second.run.run_id in old.error


def test_mark_stale_sweeps_without_a_new_run(history: RunHistory) -> None:
    a = history.start("a", "d")
    history.clock.now += 300
    b = history.start("b", "d")
    history.clock.now += 400  # a is 700s old, b is 400s old
    assert history.mark_stale() == [a.run.run_id]
    assert history.get(a.run.run_id).status == "failed"
    assert history.get(b.run.run_id).status == "running"
    assert history.start("a", "d").acquired


def test_list_filters_newest_first(history: RunHistory) -> None:
    ids = []
    for i in range(3):
        claim = history.start("p", f"d{i}", correlation_id="root")
        history.clock.now += 1
        history.finish(claim.run, "success" if i else "failed", error=None if i else "boom")
        ids.append(claim.run.run_id)
    assert [r.run_id for r in history.list()] == ids[::-1]
    assert [r.run_id for r in history.list(status="failed")] == [ids[0]]
    assert len(history.list(correlation_id="root", limit=2)) == 2
    with pytest.raises(ValueError):
        history.finish(history.list()[0], "done")
