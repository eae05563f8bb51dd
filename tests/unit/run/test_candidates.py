"""Candidates from change-sets: a processor whose inputs only selective upstream runs rewrote
takes its entities from their entity lists, with no detection query (asserted on the
statements DuckDB received), maps them through a declared entity mapping, and detects
whenever a list cannot be trusted (a landing source edited, a full batch upstream, a
rewritten mapping table, a failed last run). Every case ends equal to a full recompute."""
from __future__ import annotations

import datetime as dt
import uuid

import pytest

from framework.backends.duckdb import DuckDBWarehouse
from framework.project import load
from framework.run.runner import ProcessorRunner, RunRequest
from tests.projects import PROCESSORS, SQL, TOPICS, write_project
from tests.recording import RecordingConnection, detections

DAY = "2026-01-15"
# the shop project, with customer -> store assignments in their own processor (the mapping
# table), so that orders can be rewritten without rewriting the mapping
EXTRA_SOURCE = """  - name: assignments_landing
    table: landing.assignments
    entity: customer
    columns:
      - {name: day, type: DATE, mode: REQUIRED}
      - {name: customer_id, type: STRING, mode: REQUIRED}
      - {name: store_id, type: STRING}
phases:"""
EXTRA_PROCESSOR = """processors:
  - name: assignments
    phase: raw
    entity: customer
    inputs:
      - source: assignments_landing
    output:
      table: assignments
      columns:
        - {name: day, type: DATE, mode: REQUIRED}
        - {name: customer_id, type: STRING, mode: REQUIRED}
        - {name: store_id, type: STRING}
    transform: {sql: sql/assignments.sql}"""
MANIFEST = (PROCESSORS.replace("phases:", EXTRA_SOURCE, 1).replace("processors:", EXTRA_PROCESSOR, 1)
            .replace("via: orders_raw", "via: assignments")
            .replace("critical: [orders_raw]", "critical: [orders_raw, assignments]"))
FILES = {**SQL,
         "sql/assignments.sql": "SELECT day, customer_id, store_id FROM {{ source('assignments_landing') }} a\n"
                                "WHERE a.day = {{ partition }} AND {{ entity_filter('a.customer_id') }}\n",
         # store totals from the assignments, not from the store_id an order carries
         "sql/store_totals.sql": "SELECT o.day, a.store_id, SUM(o.amount) AS total FROM {{ ref('orders_raw') }} o\n"
                                 "JOIN {{ ref('assignments') }} a ON a.day = o.day AND a.customer_id = o.customer_id\n"
                                 "WHERE o.day = {{ partition }} AND {{ entity_filter('a.store_id') }}\n"
                                 "GROUP BY o.day, a.store_id\n"}
ORDERS = [("c1", "s1", 10.0), ("c2", "s1", 5.0), ("c3", "s2", 7.0), ("c4", "s3", 2.0)]
STORES = {"c1": "s1", "c2": "s1", "c3": "s2", "c4": "s3"}
ORDER = ["orders_raw", "assignments", "customer_totals", "store_totals"]


class Recording(DuckDBWarehouse):
    """DuckDB that keeps every statement its connection executes (what the engine received)."""

    def __init__(self) -> None:
        self.statements: list[str] = []
        super().__init__(":memory:")

    def _open(self):
        return RecordingConnection(super()._open(), self.statements)

    def detections(self) -> list[str]:
        """The processors a detection query was sent for."""
        return detections(self.statements)


def _world(tmp_path, name: str, memory_store=None, manifest: str = MANIFEST):
    from framework.backends.sqlite_state import SQLiteStateStore

    project = load(write_project(tmp_path / name, manifest, TOPICS, FILES))
    wh = Recording()
    for source in project.sources.values():
        wh.create_dataset(source.table.dataset)
        wh.create_table(source.table)
    day = dt.date.fromisoformat(DAY)
    wh.insert_rows("landing.orders", [dict(day=day, customer_id=c, store_id=s, amount=a) for c, s, a in ORDERS])
    wh.insert_rows("landing.assignments", [dict(day=day, customer_id=c, store_id=s) for c, s in STORES.items()])
    store = memory_store if memory_store is not None else SQLiteStateStore(str(tmp_path / f"{name}.sqlite"))
    runner = ProcessorRunner(project, wh, store=store)
    return project, wh, runner


@pytest.fixture
def world(tmp_path, memory_store):
    project, wh, runner = _world(tmp_path, "inc", memory_store)
    for name in ORDER:  # first runs: everything detected, recorded
        assert runner.run(RunRequest(name, DAY)).status == "success"
    yield project, wh, runner
    wh.close()


def _round(runner, announced=("orders_landing", "assignments_landing"), only=ORDER) -> dict:
    """One incremental round as the driver runs it: the trigger named the edited sources."""
    if announced is not None:
        runner.versions.announce_sources(announced, DAY, uuid.uuid4().hex)
    return {name: runner.run(RunRequest(name, DAY, trust_versions=True, sources_announced=announced is not None))
            for name in only}


def _tables(wh) -> dict:
    return {t: sorted(tuple(r.values()) for r in wh.query(f"SELECT * FROM {t}")) for t in ("shop_raw.orders_raw", "shop_raw.assignments", "shop_analytics.customer_totals",
                      "shop_analytics.store_totals")}


def _full_recompute(tmp_path, wh) -> dict:
    """The same landing rows, every processor in full, in a fresh warehouse."""
    _, ref, runner = _world(tmp_path, f"ref{len(list(tmp_path.iterdir()))}")
    ref.query("DELETE FROM landing.orders")
    ref.query("DELETE FROM landing.assignments")
    for table in ("landing.orders", "landing.assignments"):
        ref.insert_rows(table, wh.query(f"SELECT * FROM {table}"))
    for name in ORDER:
        assert runner.run(RunRequest(name, DAY, full=True)).status == "success"
    try:
        return _tables(ref)
    finally:
        ref.close()


def test_downstream_takes_entities_from_change_sets_without_a_detection_query(world, tmp_path) -> None:
    _, wh, _runner = world
    wh.query("UPDATE landing.orders SET amount = 11.0 WHERE customer_id = 'c1'")
    wh.statements.clear()
    runs = _round(_runner)
    assert {n: r.status for n, r in runs.items()} == {"orders_raw": "success", "assignments": "no_data",
                                                      "customer_totals": "success", "store_totals": "success"}
    assert runs["customer_totals"].entity_ids == ["c1"]
    assert runs["store_totals"].entity_ids == ["s1"]  # c1 -> s1 through the assignments mapping
    # the raw processors read landing sources (no entity list): detected; downstream: none
    assert sorted(wh.detections()) == ["assignments", "orders_raw"]
    assert sum("-- entities mapped from rewritten inputs of store_totals" in s for s in wh.statements) == 1
    # the touched entities only are recorded as processed, with an unknown fingerprint (NULL:
    # no fingerprint query over the inputs); the other entities keep theirs
    for name, key in (("customer_totals", "c1"), ("store_totals", "s1")):
        assert [(r["entity_key"], r["fingerprint"]) for r in wh.query(
            "SELECT entity_key, fingerprint FROM _pipectl.entity_fingerprints "
            f"WHERE processor = '{name}' AND run_id = '{runs[name].run_id}'")] == [(key, None)]
        assert wh.query("SELECT COUNT(*) AS n FROM _pipectl.entity_fingerprints "
                        f"WHERE processor = '{name}' AND fingerprint IS NULL")[0]["n"] == 1
    before = _tables(wh)
    assert before == _full_recompute(tmp_path, wh)
    # the price: the next detection reprocesses those entities once (their output unchanged),
    # records their fingerprints, and the one after finds nothing
    for name, key in (("customer_totals", "c1"), ("store_totals", "s1")):
        again = _runner.run(RunRequest(name, DAY))
        assert (again.status, again.entity_ids) == ("success", [key])
        assert _runner.run(RunRequest(name, DAY)).status == "no_data"
    assert wh.query("SELECT COUNT(*) AS n FROM _pipectl.entity_fingerprints WHERE fingerprint IS NULL")[0]["n"] == 0
    assert _tables(wh) == before


def test_an_entity_recorded_without_fingerprint_is_still_deleted_by_a_later_detection(world, tmp_path) -> None:
    """An entity a change-set-driven run recorded with an unknown fingerprint keeps its state
    row: when its inputs are later deleted and the next run *detects* (no trusted lists),
    detection still sees it as deleted and its output rows go, as a full recompute has it."""
    _, wh, runner = world
    wh.query("UPDATE landing.orders SET amount = 12.0 WHERE customer_id = 'c3'")
    wh.statements.clear()
    runs = _round(runner)
    assert runs["customer_totals"].entity_ids == ["c3"] and sorted(wh.detections()) == ["assignments", "orders_raw"]
    assert wh.query("SELECT fingerprint FROM _pipectl.entity_fingerprints "
                    "WHERE processor = 'customer_totals' AND entity_key = 'c3'") == [{"fingerprint": None}]
    wh.query("DELETE FROM landing.orders WHERE customer_id = 'c3'")
    wh.query("DELETE FROM landing.assignments WHERE customer_id = 'c3'")
    wh.statements.clear()
    for name in ORDER:  # plain runs: every processor detects
        runner.run(RunRequest(name, DAY))
    assert sorted(wh.detections()) == sorted(ORDER)
    assert [r["customer_id"] for r in wh.query("SELECT customer_id FROM shop_analytics.customer_totals "
                                                "ORDER BY 1")] == ["c1", "c2", "c4"]
    assert _tables(wh) == _full_recompute(tmp_path, wh)


def test_a_rewrite_that_changed_no_row_gives_downstream_nothing_to_do(world) -> None:
    _, wh, runner = world
    # a replay of c2 rewrites its raw rows identically: the write's list narrows to nothing
    replay = runner.run(RunRequest("orders_raw", DAY, entities=["c2"]))
    assert (replay.status, replay.entity_ids) == ("success", ["c2"])
    doc = runner.versions.last_run(runner.project.processors["orders_raw"], DAY)
    assert doc["writes"][-1] == {"run": replay.run_id, "after": doc["writes"][-2]["run"], "entities": []}
    wh.statements.clear()
    runs = _round(runner, announced=(), only=["customer_totals", "store_totals"])
    assert {n: (r.status, r.entity_ids) for n, r in runs.items()} == {"customer_totals": ("no_data", []),
                                                                     "store_totals": ("no_data", [])}
    assert wh.detections() == []
    # c2 changes for real: its list is kept, and downstream runs it
    wh.query("UPDATE landing.orders SET amount = 6.0 WHERE customer_id = 'c2'")
    runs = _round(runner)
    assert runs["customer_totals"].entity_ids == ["c2"] and runs["store_totals"].entity_ids == ["s1"]


def test_a_selective_write_reports_what_it_changed_without_reading_its_output(world) -> None:
    """On DuckDB the write's DELETE and INSERT return their rows (RETURNING): no read of the
    output before or after it, no row count; the list downstream takes is still narrowed."""
    _, wh, runner = world
    wh.query("UPDATE landing.orders SET amount = 12.0 WHERE customer_id = 'c3'")
    wh.statements.clear()
    runs = _round(runner, only=["orders_raw", "customer_totals"])
    assert runs["orders_raw"].entity_ids == ["c3"] and runs["customer_totals"].entity_ids == ["c3"]
    assert runs["orders_raw"].record_count == 1 and runs["customer_totals"].record_count == 1
    assert not [s for s in wh.statements if "-- output fingerprints" in s or s.startswith("SELECT COUNT(*) AS n FROM shop_")]
    writes = [s for s in wh.statements if s.startswith(("-- write processed rows", "INSERT INTO shop_"))]
    assert len(writes) == 4 and all("RETURNING" in s for s in writes)


def test_a_processor_taking_change_sets_sends_seven_statements(world) -> None:
    """What one running processor costs the warehouse: its transaction, the write's DELETE and
    INSERT, the fingerprints' DELETE and INSERT, the change-set: no detection, no count, no read."""
    _, wh, runner = world
    wh.query("UPDATE landing.orders SET amount = 9.0 WHERE customer_id = 'c2'")
    runner.start_counts()
    _round(runner, only=["orders_raw"])
    wh.statements.clear()
    runs = _round(runner, announced=(), only=["customer_totals"])
    assert (runs["customer_totals"].status, runs["customer_totals"].entity_ids) == ("success", ["c2"])
    firsts = [s.strip().splitlines()[0] for s in wh.statements]
    assert firsts == ["BEGIN TRANSACTION", "-- write processed rows of processor customer_totals",
                      firsts[2], "-- record processed fingerprints for processor customer_totals", firsts[4],
                      firsts[5], "COMMIT"], firsts
    assert firsts[2].startswith("INSERT INTO shop_analytics.customer_totals")
    assert firsts[4].startswith("INSERT INTO _pipectl.entity_fingerprints")
    assert firsts[5].startswith("INSERT INTO _pipectl.change_sets")


def test_one_catalog_query_lists_outputs_sources_and_state(tmp_path) -> None:
    """A run's set-up lists every dataset it needs in one statement; the state tables found
    there are not listed or created again, and a critical landing input needs no schema lookup."""
    from framework.run import changes

    project, wh, runner = _world(tmp_path, "cat")
    try:
        assert runner.run(RunRequest("orders_raw", DAY)).status == "success"  # creates the state tables
        changes._ready.discard(wh)  # as a new process would find them
        fresh = ProcessorRunner(project, wh, store=runner.store)
        wh.statements.clear()
        fresh.check_outputs(list(project.processors.values()))
        catalog = [s for s in wh.statements if "information_schema" in s or "duckdb_tables()" in s]
        assert len(catalog) == 1
        wh.statements.clear()
        wh.query("UPDATE landing.orders SET amount = 3.0 WHERE customer_id = 'c4'")
        assert fresh.run(RunRequest("orders_raw", DAY)).entity_ids == ["c4"]
        assert not [s for s in wh.statements if "information_schema" in s or "duckdb_tables()" in s or s.startswith("CREATE")]
    finally:
        wh.close()


def test_critical_inputs_are_counted_once_per_run_and_kept_exact_by_its_writes(tmp_path) -> None:
    """A driver run counts every critical input (and gate table) in one statement; each write
    moves its output's count by what RETURNING reported, so a later check needs no query and
    reads what a COUNT(*) would (an entity deleted upstream included)."""
    manifest = (MANIFEST.replace("      - source: orders_landing", "      - {source: orders_landing, critical: true}", 1)
                .replace("    inputs: [orders_raw]", "    inputs:\n      - {processor: orders_raw, critical: true}", 1))
    _, wh, runner = _world(tmp_path, "crit", manifest=manifest)
    try:
        for name in ORDER:
            assert runner.run(RunRequest(name, DAY)).status == "success"
        wh.query("UPDATE landing.orders SET amount = 1.0 WHERE customer_id = 'c1'")
        wh.query("DELETE FROM landing.orders WHERE customer_id = 'c4'")
        wh.query("INSERT INTO landing.orders VALUES (DATE '2026-01-15', 'c5', 's3', 4.0), (DATE '2026-01-15', 'c6', 's3', 1.0)")
        runner.start_counts()
        wh.statements.clear()
        runs = _round(runner)
        assert runs["orders_raw"].entity_ids == ["c1", "c4", "c5", "c6"] and runs["customer_totals"].status == "success"
        counts = [s for s in wh.statements if s.startswith("SELECT") and "COUNT(*)" in s]
        assert len(counts) == 1 and counts[0].startswith("SELECT (SELECT COUNT(*)")
        for fqn in ("landing.orders", "shop_raw.orders_raw"):
            kept = runner.rows.counts.get((fqn, DAY))
            assert kept == wh.query(f"SELECT COUNT(*) AS n FROM {fqn} WHERE day = DATE '{DAY}'")[0]["n"] == 5, fqn
        # a run of one phase counts only what that phase's checks read
        from framework.run.row_counts import run_tables

        assert [t.fqn for t in run_tables(runner.project, phases=["analytics"])] == ["shop_raw.orders_raw"]
        assert [t.fqn for t in run_tables(runner.project, selected=["orders_raw"])] == ["landing.orders"]
    finally:
        wh.close()


@pytest.mark.parametrize("case", ["source_not_announced", "full_upstream", "mapping_rewritten", "failed_last_run"])
def test_lists_that_cannot_be_trusted_fall_back_to_detection(world, tmp_path, monkeypatch, case) -> None:
    project, wh, runner = world
    wh.query("UPDATE landing.orders SET amount = 12.0 WHERE customer_id = 'c3'")
    wh.statements.clear()
    expect = {"customer_totals": ["c3"], "store_totals": ["s2"]}
    if case == "source_not_announced":  # a run that names no sources (`pipectl run`): raw detects
        runs = _round(runner, announced=None)
        assert sorted(wh.detections()) == ["assignments", "orders_raw"]  # downstream trusts raw's lists
    elif case == "full_upstream":
        runner.run(RunRequest("orders_raw", DAY, full=True))
        wh.statements.clear()
        runs = _round(runner, only=["customer_totals", "store_totals"])
        assert sorted(wh.detections()) == ["customer_totals", "store_totals"]
        expect = {"customer_totals": ["c1", "c2", "c3", "c4"], "store_totals": ["s2"]}
    elif case == "mapping_rewritten":  # c3 moves from s2 to s3: the entities it mapped before are unknown
        wh.query("UPDATE landing.assignments SET store_id = 's3' WHERE customer_id = 'c3'")
        wh.statements.clear()
        runs = _round(runner)
        assert "store_totals" in wh.detections() and "customer_totals" not in wh.detections()
        expect = {"customer_totals": ["c3"], "store_totals": ["s2", "s3"]}
    else:  # the last run of customer_totals failed: its stored "seen" is cleared
        from framework.run import runner_io
        from framework.errors import BackendError

        runner.run(RunRequest("orders_raw", DAY, trust_versions=True))
        real = runner_io.record_processed_and_changes
        monkeypatch.setattr(runner_io, "record_processed_and_changes",
                            lambda *a, **k: (_ for _ in ()).throw(BackendError("state table unavailable")))
        assert runner.run(RunRequest("customer_totals", DAY, trust_versions=True)).status == "failed"
        monkeypatch.setattr(runner_io, "record_processed_and_changes", real)
        wh.statements.clear()
        runs = _round(runner, only=["customer_totals", "store_totals"])
        assert wh.detections() == ["customer_totals"]
    for name, ids in expect.items():
        # a full batch upstream makes detection's answer: only the changed customer, in full
        got = runs[name]
        assert got.status == "success", got.error
        if case == "full_upstream" and name == "customer_totals":
            assert got.entity_ids == ["c3"]
        else:
            assert got.entity_ids == ids, (name, got.entity_ids)
    assert _tables(wh) == _full_recompute(tmp_path, wh)


def test_a_mapped_input_and_a_source_edit_mixed_over_rounds_equal_a_full_run(world, tmp_path) -> None:
    _, wh, runner = world
    edits = [
        ["UPDATE landing.orders SET amount = amount + 1 WHERE customer_id IN ('c1', 'c4')"],
        ["UPDATE landing.assignments SET store_id = 's2' WHERE customer_id = 'c1'",
         "UPDATE landing.orders SET amount = 3.5 WHERE customer_id = 'c2'"],
        [f"INSERT INTO landing.orders VALUES (DATE '{DAY}', 'c5', 's3', 4.0)",
         f"INSERT INTO landing.assignments VALUES (DATE '{DAY}', 'c5', 's3')"],
        ["DELETE FROM landing.orders WHERE customer_id = 'c3'"],
    ]
    for statements in edits:
        for sql in statements:
            wh.query(sql)
        runs = _round(runner)
        assert all(r.status in ("success", "no_data") for r in runs.values()), {n: r.error for n, r in runs.items()}
        assert _tables(wh) == _full_recompute(tmp_path, wh)
