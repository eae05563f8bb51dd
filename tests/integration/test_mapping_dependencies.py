"""Entity-mapping tables are graph dependencies: the processor that writes a mapping's ``via``
table runs before every processor whose detection reads the mapping, so an incremental run
equals a full recompute even when the mapping table is not one of the reader's inputs.

The fixture is the shape of the example's ``odds_api_game_lines`` (game lines read from a
landing source, mapped game -> team through the schedule that runs in the same phase): here
``home_store_visits`` reads a visits landing and maps customer -> store through
``store_roster``, a processor of the same phase whose name sorts *after* it. Before mapping
tables were graph edges, the phase ran ``home_store_visits`` first (phase order, then name),
mapped a new customer through the roster as the previous run left it, found no store for
them, and left the new store out: silent drift that only the next run repaired.
"""
from __future__ import annotations

import datetime as dt

import pytest

from framework.drive.pipeline import PipelineDriver
from framework.graph.graph import PipelineGraph
from framework.project import load
from tests.projects import ROSTER_FILES as FILES, ROSTER_PROCESSORS as MANIFEST, START_TOPIC, TOPICS, \
    table_differences, write_project

DAY = "2026-01-15"
# (customer, home store, order amount = visit minutes)
CUSTOMERS = [("c1", "s1", 10.0), ("c2", "s1", 5.0), ("c3", "s2", 7.0)]


class World:
    """A project, DuckDB, a local bus and a ledger, driven like ``pipectl run``."""

    def __init__(self, root, manifest: str = MANIFEST):
        from framework.backends.duckdb import DuckDBWarehouse
        from framework.backends.localbus import LocalBus
        from framework.backends.sqlite_state import SQLiteStateStore

        self.project = load(write_project(root, manifest, TOPICS + START_TOPIC, FILES))
        self.wh = DuckDBWarehouse(":memory:")
        self.wh.create_dataset("landing")
        for source in self.project.sources.values():
            self.wh.create_table(source.table)
        self.bus = LocalBus(root / "bus.sqlite")
        self.store = SQLiteStateStore(root / "ledger.sqlite")
        self.driver = PipelineDriver(self.project, self.wh, self.bus, self.store)

    def land(self, customers) -> None:
        day = dt.date.fromisoformat(DAY)
        for table in ("orders", "roster", "visits"):
            self.wh.query(f"DELETE FROM landing.{table}")
        self.wh.insert_rows("landing.orders", [dict(day=day, customer_id=c, store_id=s, amount=a) for c, s, a in customers])
        self.wh.insert_rows("landing.roster", [dict(day=day, customer_id=c, store_id=s) for c, s, _ in customers])
        self.wh.insert_rows("landing.visits", [dict(day=day, customer_id=c, home_store=s, minutes=a) for c, s, a in customers])

    def tables(self) -> dict[str, list[tuple]]:
        out = {}
        for proc in self.project.processors.values():
            cols = ", ".join(proc.output.column_names)
            out[proc.name] = sorted((tuple(r.values()) for r in self.wh.query(f"SELECT {cols} FROM {proc.output.fqn}")),
                                    key=repr)
        return out

    def close(self) -> None:
        self.bus.close()
        self.store.close()
        self.wh.close()


@pytest.fixture
def worlds(tmp_path):
    made: list[World] = []

    def make(name: str, manifest: str = MANIFEST) -> World:
        made.append(World(tmp_path / name, manifest))
        return made[-1]

    yield make
    for w in made:
        w.close()


def test_the_mapping_table_is_written_before_the_processor_that_maps_through_it(tmp_path) -> None:
    graph = PipelineGraph(load(write_project(tmp_path, MANIFEST, TOPICS + START_TOPIC, FILES)))
    order = graph.topological_order()
    assert order.index("store_roster") < order.index("home_store_visits")
    assert graph.upstream("home_store_visits") == {"store_roster"}
    assert graph.downstream("store_roster") == {"home_store_visits"}


def test_an_incremental_run_maps_new_entities_through_the_rewritten_table(worlds) -> None:
    """A new customer at a new store lands in both landings; one incremental run must give
    what a full recompute gives (the new store's row), not what the next run would repair."""
    inc = worlds("inc")
    inc.land(CUSTOMERS)
    assert inc.driver.run(DAY, full=True).status == "success"
    edited = [("c1", "s1", 11.0), *CUSTOMERS[1:], ("c4", "s3", 4.0)]
    inc.land(edited)
    report = inc.driver.run(DAY)
    assert report.status == "success", report.to_dict()
    ref = worlds("ref")
    ref.land(edited)
    assert ref.driver.run(DAY, full=True).status == "success"
    assert table_differences(inc.tables(), ref.tables()) == []
    ran = [r.processor for r in report.phase("raw").runs]
    assert ran.index("store_roster") < ran.index("home_store_visits")
    assert {row[1] for row in inc.tables()["home_store_visits"]} == {"s1", "s2", "s3"}


def test_a_replay_maps_through_the_pairs_before_and_after_the_run_rewrites_them(worlds) -> None:
    """A replay of a customer who moved store reprocesses both stores: the one the mapping
    table named before this run rewrote it, and the one it names after."""
    inc = worlds("inc")
    inc.land(CUSTOMERS)
    assert inc.driver.run(DAY, full=True).status == "success"
    moved = [("c1", "s1", 10.0), ("c2", "s2", 5.0), ("c3", "s2", 7.0)]  # c2: s1 -> s2
    inc.land(moved)
    report = inc.driver.run(DAY, entities={"customer": ["c2"]})
    assert report.status == "success", report.to_dict()
    ref = worlds("ref")
    ref.land(moved)
    assert ref.driver.run(DAY, full=True).status == "success"
    assert table_differences(inc.tables(), ref.tables()) == []
    visits = next(r for r in report.phase("raw").runs if r.processor == "home_store_visits")
    assert visits.entity_ids == ["s1", "s2"]
    totals = next(r for r in report.phase("analytics").runs if r.processor == "store_totals")
    assert totals.entity_ids == ["s1", "s2"]
