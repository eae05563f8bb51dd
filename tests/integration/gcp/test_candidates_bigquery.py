"""Candidates from change-sets on the BigQuery emulator: the same run path as on DuckDB
(the mapped-entity lookup, the output fingerprints around the write, the one-statement
critical counts and data tests), ending equal to a full recompute."""
from __future__ import annotations

import datetime as dt
import uuid

import pytest

from framework.backends.bigquery import BigQueryWarehouse
from framework.backends.sqlite_state import SQLiteStateStore
from framework.project import load
from framework.run.runner import ProcessorRunner, RunRequest
from tests.projects import TOPICS, write_project
from tests.unit.run.test_candidates import DAY, FILES, MANIFEST, ORDER, ORDERS, STORES

pytestmark = [pytest.mark.gcp, pytest.mark.timeout(600)]
TABLES = ("shop_raw.orders_raw", "shop_raw.assignments", "shop_analytics.customer_totals", "shop_analytics.store_totals")


def _world(tmp_path, name: str, uid: str):
    project = load(write_project(tmp_path / name, MANIFEST, TOPICS, FILES))
    wh = BigQueryWarehouse(f"cand-{name}-{uid}", timeout=60)
    day = dt.date.fromisoformat(DAY)
    for source in project.sources.values():
        wh.create_dataset(source.table.dataset)
        wh.create_table(source.table)
    wh.insert_rows("landing.orders", [dict(day=day, customer_id=c, store_id=s, amount=a) for c, s, a in ORDERS])
    wh.insert_rows("landing.assignments", [dict(day=day, customer_id=c, store_id=s) for c, s in STORES.items()])
    runner = ProcessorRunner(project, wh, store=SQLiteStateStore(str(tmp_path / f"{name}.sqlite")))
    runner.check_outputs(list(project.processors.values()))
    return project, wh, runner


def _tables(wh) -> dict:
    return {t: sorted(tuple(r.values()) for r in wh.query(f"SELECT * FROM {t}")) for t in TABLES}


def test_change_set_candidates_on_bigquery_equal_a_full_recompute(tmp_path, uid) -> None:
    _, wh, runner = _world(tmp_path, "inc", uid)
    for name in ORDER:
        assert runner.run(RunRequest(name, DAY)).status == "success"
    wh.execute_script(f"UPDATE landing.orders SET amount = 11.5 WHERE customer_id = 'c1' AND day = DATE '{DAY}'")
    runner.versions.announce_sources(["orders_landing", "assignments_landing"], DAY, uuid.uuid4().hex)
    runs = {n: runner.run(RunRequest(n, DAY, trust_versions=True, sources_announced=True)) for n in ORDER}
    assert {n: (r.status, r.entity_ids) for n, r in runs.items()} == {
        "orders_raw": ("success", ["c1"]), "assignments": ("no_data", []),
        "customer_totals": ("success", ["c1"]), "store_totals": ("success", ["s1"])}, {n: r.error for n, r in runs.items()}
    # downstream took the raw run's list: no detection fell back for them
    assert runs["customer_totals"].fallback_reason is None and runs["store_totals"].fallback_reason is None
    _, ref, full = _world(tmp_path, "ref", uid)
    ref.execute_script(f"UPDATE landing.orders SET amount = 11.5 WHERE customer_id = 'c1' AND day = DATE '{DAY}'")
    for name in ORDER:
        assert full.run(RunRequest(name, DAY, full=True)).status == "success"
    assert _tables(wh) == _tables(ref)
    # downstream recorded c1 and s1 with no fingerprint: the next detection (BigQuery's
    # detect statement) reprocesses them once, the one after finds nothing
    again = {n: runner.run(RunRequest(n, DAY)) for n in ("customer_totals", "store_totals")}
    assert {n: (r.status, r.entity_ids) for n, r in again.items()} == {
        "customer_totals": ("success", ["c1"]), "store_totals": ("success", ["s1"])}
    assert {n: runner.run(RunRequest(n, DAY)).status for n in again} == {"customer_totals": "no_data", "store_totals": "no_data"}
    assert _tables(wh) == _tables(ref)
