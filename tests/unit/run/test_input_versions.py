"""Input versions: an incremental round skips a processor whose inputs no run rewrote, with
no warehouse query, and never skips one that has work (an input rewritten, a source the
trigger names, a failed last run); a change a trigger does not name is found by a run that
names none and by a full run. Also the DuckDB warehouse's one-transaction run."""
from __future__ import annotations

import datetime as dt

import pytest

from framework.errors import BackendError
from framework.project import load
from framework.run.input_versions import InputVersions, dependencies
from framework.run.runner import UNCHANGED_INPUTS, ProcessorRunner, RunRequest
from tests.projects import write_project

DAY = "2026-01-15"


@pytest.fixture
def env(tmp_path, memory_store):
    from framework.backends.duckdb import DuckDBWarehouse

    project = load(write_project(tmp_path / "shop"))
    wh = DuckDBWarehouse(":memory:")
    wh.create_dataset("landing")
    wh.create_table(project.sources["orders_landing"].table)
    wh.insert_rows("landing.orders", [dict(day=dt.date.fromisoformat(DAY), customer_id=c, store_id=s, amount=a)
                                      for c, s, a in [("c1", "s1", 10.0), ("c2", "s1", 5.0), ("c3", "s2", 7.0)]])
    runner = ProcessorRunner(project, wh, store=memory_store)
    for name in ("orders_raw", "customer_totals", "store_totals"):  # first runs: everything detected
        assert runner.run(RunRequest(name, DAY)).status == "success"
    yield project, wh, runner
    wh.close()


class Counting:
    """Counts every warehouse call made through the runner."""

    def __init__(self, wh, monkeypatch):
        self.calls: list[str] = []
        for name in ("query", "execute_script", "insert_rows", "table_schema", "list_tables", "create_table"):
            original = getattr(wh, name)
            monkeypatch.setattr(wh, name, self._wrap(name, original))

    def _wrap(self, name, original):
        def call(*args, **kwargs):
            self.calls.append(f"{name}: {str(args[0])[:60]}" if args else name)
            return original(*args, **kwargs)
        return call


def _trusting(name: str, announced: bool = False) -> RunRequest:
    return RunRequest(name, DAY, trust_versions=True, sources_announced=announced)


def test_dependencies_name_input_and_mapping_producers(env) -> None:
    project, _, _ = env
    assert dependencies(project, project.processors["orders_raw"]).sources == ("orders_landing",)
    store = dependencies(project, project.processors["store_totals"])
    assert (store.processors, store.sources, store.exact) == (("orders_raw",), (), True)


def test_an_unchanged_processor_issues_no_warehouse_query(env, monkeypatch) -> None:
    _, wh, runner = env
    counter = Counting(wh, monkeypatch)
    res = runner.run(_trusting("customer_totals"))
    assert (res.status, res.fallback_reason, res.efficiency_pct) == ("no_data", UNCHANGED_INPUTS, 100.0)
    assert counter.calls == []
    # without the driver's say-so the runner still asks the warehouse (library callers)
    assert runner.run(RunRequest("customer_totals", DAY)).status == "no_data"
    assert any("change detection" in c for c in counter.calls)


def test_a_rewritten_input_runs_and_touches_only_the_changed_entity(env, monkeypatch) -> None:
    _, wh, runner = env
    wh.query("UPDATE landing.orders SET amount = 11.0 WHERE customer_id = 'c1'")
    raw = runner.run(_trusting("orders_raw", announced=False))  # no source list: detected
    assert (raw.status, raw.entity_ids) == ("success", ["c1"])
    before = {r["customer_id"]: r["run_id"] for r in wh.query(
        "SELECT entity_key AS customer_id, run_id FROM _pipectl.entity_fingerprints WHERE processor = 'customer_totals'")}
    counter = Counting(wh, monkeypatch)
    totals = runner.run(_trusting("customer_totals"))
    assert (totals.status, totals.entity_ids) == ("success", ["c1"])
    assert counter.calls, "a rewritten input is detected"
    after = {r["customer_id"]: r["run_id"] for r in wh.query(
        "SELECT entity_key AS customer_id, run_id FROM _pipectl.entity_fingerprints WHERE processor = 'customer_totals'")}
    assert {k for k in after if after[k] != before[k]} == {"c1"}  # only the changed entity's fingerprints
    assert wh.query("SELECT total FROM shop_analytics.customer_totals WHERE customer_id = 'c1'")[0]["total"] == 11.0
    stores = runner.run(_trusting("store_totals"))  # through the customer -> store mapping
    assert (stores.status, stores.entity_ids) == ("success", ["s1"])
    assert runner.run(_trusting("customer_totals")).fallback_reason == UNCHANGED_INPUTS


def test_a_source_change_the_trigger_does_not_name_is_found_by_a_run_naming_none_and_a_full_run(env) -> None:
    project, wh, runner = env
    wh.query("UPDATE landing.orders SET amount = 6.0 WHERE customer_id = 'c2'")
    runner.versions.announce_sources([], DAY, "t1")  # a trigger naming no source of orders_raw
    skipped = runner.run(_trusting("orders_raw", announced=True))
    assert (skipped.status, skipped.fallback_reason) == ("no_data", UNCHANGED_INPUTS)
    found = runner.run(_trusting("orders_raw", announced=False))  # `pipectl run`: no source list
    assert (found.status, found.entity_ids) == ("success", ["c2"])
    wh.query("UPDATE landing.orders SET amount = 7.0 WHERE customer_id = 'c3'")
    full = runner.run(RunRequest("orders_raw", DAY, full=True, trust_versions=True, sources_announced=True))
    assert full.status == "success" and full.full_batch
    assert wh.query("SELECT amount FROM shop_raw.orders_raw WHERE customer_id = 'c3'")[0]["amount"] == 7.0
    # a trigger naming the source: its processor is asked again
    wh.query("UPDATE landing.orders SET amount = 8.0 WHERE customer_id = 'c3'")
    runner.versions.announce_sources(["orders_landing"], DAY, "t2")
    named = runner.run(_trusting("orders_raw", announced=True))
    assert (named.status, named.entity_ids) == ("success", ["c3"])


def test_a_failed_run_is_never_skipped_by_the_next_round(env, monkeypatch) -> None:
    from framework.run import runner_io

    _, wh, runner = env
    wh.query("UPDATE landing.orders SET amount = 12.0 WHERE customer_id = 'c1'")
    assert runner.run(_trusting("orders_raw")).entity_ids == ["c1"]
    real = runner_io.record_processed_and_changes

    def broken(*args, **kwargs):
        raise BackendError("state table unavailable")

    monkeypatch.setattr(runner_io, "record_processed_and_changes", broken)
    failed = runner.run(_trusting("customer_totals"))
    assert failed.status == "failed"
    # one transaction: the rows were rolled back with the fingerprints, and the error says so
    assert wh.query("SELECT total FROM shop_analytics.customer_totals WHERE customer_id = 'c1'")[0]["total"] == 10.0
    assert "output rows were written" not in failed.error
    monkeypatch.setattr(runner_io, "record_processed_and_changes", real)
    retry = runner.run(_trusting("customer_totals"))
    assert (retry.status, retry.entity_ids) == ("success", ["c1"])
    assert wh.query("SELECT total FROM shop_analytics.customer_totals WHERE customer_id = 'c1'")[0]["total"] == 12.0


def test_a_write_bumps_the_output_version_before_the_rows_change(env) -> None:
    project, wh, runner = env
    versions = InputVersions(project, runner.store)
    proc = project.processors["customer_totals"]
    before = versions.snapshot(proc, DAY)
    wh.query("UPDATE landing.orders SET amount = 13.0 WHERE customer_id = 'c2'")
    raw = runner.run(_trusting("orders_raw"))
    assert versions.snapshot(proc, DAY) == {"orders_raw": raw.run_id} != before
    again = runner.run(_trusting("orders_raw"))  # nothing new: no write, same version
    assert again.status == "no_data" and versions.snapshot(proc, DAY) == {"orders_raw": raw.run_id}


def test_duckdb_transaction_commits_together_rolls_back_together_and_nests(tmp_path) -> None:
    from framework.backends.duckdb import DuckDBWarehouse

    wh = DuckDBWarehouse(tmp_path / "w.duckdb")  # per-operation connections: held for the transaction
    wh.execute_script("CREATE TABLE t (a INTEGER)")
    with wh.transaction():
        wh.execute_script("INSERT INTO t VALUES (1)")
        with wh.transaction():  # joins the outer one
            wh.insert_rows("t", [{"a": 2}])
    assert [r["a"] for r in wh.query("SELECT a FROM t ORDER BY a")] == [1, 2]
    with pytest.raises(BackendError):
        with wh.transaction():
            wh.execute_script("INSERT INTO t VALUES (3)")
            wh.execute_script("INSERT INTO missing VALUES (4)")
    assert [r["a"] for r in wh.query("SELECT a FROM t ORDER BY a")] == [1, 2]
    wh.execute_script("INSERT INTO t VALUES (5)")  # usable afterwards, outside any transaction
    assert wh.query("SELECT COUNT(*) AS n FROM t")[0]["n"] == 3
    wh.close()
