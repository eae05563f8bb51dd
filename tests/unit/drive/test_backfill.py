"""Backfill: dates in order, no downstream triggers, resumable, alerts aggregated."""
from __future__ import annotations

import datetime as dt

from framework.alerts import Alerts, MemorySink
from framework.drive.session import Session, backfill, date_range
from tests.projects import PROCESSORS, write_project


def test_failures_are_aggregated_into_one_summary_and_nothing_is_published(tmp_path) -> None:
    text = PROCESSORS.replace("      - source: orders_landing\n", "      - {source: orders_landing, critical: true}\n")
    root = write_project(tmp_path / "shop", processors=text)
    sink = MemorySink()
    with Session.open(root) as sess:
        sess.alerts = Alerts([sink], max_per_window=2, aggregate=True)
        wh = sess.warehouse
        wh.create_dataset("landing")
        wh.create_table(sess.project.sources["orders_landing"].table)
        wh.insert_rows("landing.orders", [dict(day=dt.date(2026, 1, 2), customer_id="c1", store_id="s1", amount=1.0)])
        rep = backfill(sess, "2026-01-01", "2026-01-04", select=["orders_raw"])
        assert rep.done == ["2026-01-02"] and sorted(rep.failed) == ["2026-01-01", "2026-01-03", "2026-01-04"]
        assert "critical input(s) have no rows" in rep.failed["2026-01-01"]
        assert len(sink.sent) == 1 and sink.sent[0].suppressed == 3  # one summary for three failures
        assert sess.backends.bus.pending_count("shop-raw-complete-orch") == 0  # no completion: nothing triggered
        # the failed dates are retried by the same command; the finished one is skipped
        again = backfill(sess, "2026-01-01", "2026-01-04", select=["orders_raw"])
        assert again.skipped == ["2026-01-02"]
    assert date_range("2026-01-30", "2026-02-02") == ["2026-01-30", "2026-01-31", "2026-02-01", "2026-02-02"]


def test_a_date_whose_run_was_skipped_is_not_checkpointed_as_done(tmp_path) -> None:
    """Resuming after a crash: the crashed run still holds its claim ('running', not yet
    stale), so the resumed run of that processor is skipped. The date must stay to do (it
    was checkpointed as done, so the backfill never processed it)."""
    from framework.run.history import RunHistory

    root = write_project(tmp_path / "shop")
    with Session.open(root) as sess:
        sess.alerts = Alerts([MemorySink()], aggregate=True)
        wh = sess.warehouse
        wh.create_dataset("landing")
        wh.create_table(sess.project.sources["orders_landing"].table)
        wh.insert_rows("landing.orders", [dict(day=dt.date(2026, 1, d), customer_id="c1", store_id="s1", amount=1.0)
                                          for d in (1, 2)])
        RunHistory(sess.backends.state).start("orders_raw", "2026-01-02", run_id="crashed")
        rep = backfill(sess, "2026-01-01", "2026-01-02", select=["orders_raw"])
        assert rep.done == ["2026-01-01"] and list(rep.failed) == ["2026-01-02"]
        assert "skipped" in rep.failed["2026-01-02"] and "crashed" in rep.failed["2026-01-02"]
