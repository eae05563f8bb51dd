"""Replay (`pipectl run --entities KEY=ID --from-phase P`): each processor gets the ids of
its own entity kind, mapped through the declared entity mappings; a kind nothing maps to is
reported not run; a kind-less processor keeps change detection; unknown keys are usage errors.

Shop fixture plus two analytics processors: ``region_totals`` (kind ``region``, no mapping
from ``customer``) and ``day_totals`` (no entity kind)."""
from __future__ import annotations

import datetime as dt

import pytest

from framework.errors import ConfigError
from framework.project import load
from framework.drive.pipeline import PipelineDriver
from framework.drive.replay import parse_entity_args
from framework.drive.reports import phase_table
from tests.projects import PROCESSORS, SQL, write_project
from tests.unit.drive.test_pipeline_driver import TOPICS_WITH_START

DAY = "2026-01-15"

EXTRA = """\
  - name: region_totals
    phase: analytics
    entity: region
    inputs: [orders_raw]
    output:
      table: region_totals
      columns:
        - {name: day, type: DATE, mode: REQUIRED}
        - {name: region_id, type: STRING, mode: REQUIRED}
        - {name: total, type: FLOAT64}
    transform: {sql: sql/region_totals.sql}
  - name: day_totals
    phase: analytics
    inputs: [orders_raw]
    output:
      table: day_totals
      columns:
        - {name: day, type: DATE, mode: REQUIRED}
        - {name: total, type: FLOAT64}
    transform: {sql: sql/day_totals.sql}
"""

EXTRA_SQL = {
    "sql/region_totals.sql": "SELECT * FROM (SELECT day, 'r-' || store_id AS region_id, SUM(amount) AS total\n"
                             "FROM {{ ref('orders_raw') }} o WHERE o.day = {{ partition }} GROUP BY 1, 2) t\n"
                             "WHERE {{ entity_filter('t.region_id') }}\n",
    "sql/day_totals.sql": "SELECT day, SUM(amount) AS total FROM {{ ref('orders_raw') }} o\n"
                          "WHERE o.day = {{ partition }} GROUP BY day\n",
}


def _processors() -> str:
    text = PROCESSORS.replace("  store: {key: store_id, type: STRING}\n",
                              "  store: {key: store_id, type: STRING}\n  region: {key: region_id, type: STRING}\n")
    return text + EXTRA


@pytest.fixture
def shop(tmp_path):
    from framework.backends.duckdb import DuckDBWarehouse
    from framework.backends.localbus import LocalBus
    from framework.backends.sqlite_state import SQLiteStateStore

    root = write_project(tmp_path / "shop", processors=_processors(), topics=TOPICS_WITH_START, sql={**SQL, **EXTRA_SQL})
    project = load(root)
    wh = DuckDBWarehouse(":memory:")
    wh.create_dataset("landing")
    wh.create_table(project.sources["orders_landing"].table)
    wh.insert_rows("landing.orders", [dict(day=dt.date.fromisoformat(DAY), customer_id=f"c{i}", store_id=f"s{i % 3}",
                                           amount=float(i)) for i in range(30)])
    bus = LocalBus(tmp_path / "bus.sqlite")
    store = SQLiteStateStore(tmp_path / "ledger.sqlite")
    events: list[tuple[str, dict]] = []
    drv = PipelineDriver(project, wh, bus, store, progress=lambda e, d: events.append((e, d)))
    assert drv.run(DAY, full=True).status == "success"
    yield drv, wh, events, root
    bus.close()
    store.close()
    wh.close()


def _runs(report, phase: str) -> dict:
    return {r.processor: r for r in report.phase(phase).runs}


def _total(wh, table: str, key: str, ident: str) -> float:
    return wh.query(f"SELECT total FROM shop_analytics.{table} WHERE {key} = $id", _params(ident))[0]["total"]


def _params(ident: str) -> list:
    from framework.backends.protocols import QueryParam

    return [QueryParam("id", ident)]


def test_replay_of_one_customer_maps_to_its_store_and_skips_unmapped_kinds(shop) -> None:
    drv, wh, events, _ = shop
    # the raw output changes behind detection's back: only a replay of c4 picks it up
    wh.query("UPDATE shop_raw.orders_raw SET amount = 1000 WHERE customer_id = 'c4'")
    before_s0 = _total(wh, "store_totals", "store_id", "s0")
    rep = drv.run(DAY, from_phase="analytics", entities={"customer": ["c4"]})
    assert rep.mode == "replay" and rep.status == "success", rep.to_dict()
    assert [p.phase for p in rep.phases] == ["analytics"]
    runs = _runs(rep, "analytics")
    # the customer processor processes exactly the given id, the store processor its store only
    assert runs["customer_totals"].entity_ids == ["c4"] and runs["customer_totals"].entities_processed == 1
    assert runs["store_totals"].entity_ids == ["s1"] and runs["store_totals"].entities_processed == 1
    assert "customer -> store via orders_raw" in runs["store_totals"].fallback_reason
    assert rep.phase("analytics").distinct_entities() == {"customer": ["c4"], "store": ["s1"]}
    assert rep.phase("analytics").entities_processed == 2
    assert _total(wh, "customer_totals", "customer_id", "c4") == 1000.0
    assert _total(wh, "store_totals", "store_id", "s1") == sum(i for i in range(1, 30, 3) if i != 4) + 1000.0
    assert _total(wh, "store_totals", "store_id", "s0") == before_s0
    # no mapping customer -> region: not run, and said so (report, run, progress)
    region = runs["region_totals"]
    assert region.status == "no_data" and region.entities_processed == 0
    assert "no entity mapping from customer to region" in region.fallback_reason
    assert any(n.startswith("region_totals [analytics]: ") for n in rep.notes)
    assert "note: region_totals [analytics]" in phase_table(rep)
    done = {d["processor"]: d for e, d in events if e == "processor_done" and d.get("phase") == "analytics"}
    assert "no entity mapping" in done["region_totals"]["reason"]
    # a processor without an entity kind keeps change detection: its input changed -> full batch
    assert runs["day_totals"].status == "success" and runs["day_totals"].full_batch
    assert wh.query("SELECT total FROM shop_analytics.day_totals")[0]["total"] == sum(range(30)) - 4 + 1000.0


def test_replay_of_two_customers_maps_to_each_store_once(shop) -> None:
    drv, wh, _, _ = shop
    rep = drv.run(DAY, from_phase="analytics", entities={"customer": ["c4", "c7", "c5"]})
    runs = _runs(rep, "analytics")
    assert runs["customer_totals"].entity_ids == ["c4", "c5", "c7"]
    assert runs["store_totals"].entity_ids == ["s1", "s2"]  # c4, c7 -> s1; c5 -> s2
    assert runs["day_totals"].status == "no_data"  # nothing changed upstream of the kind-less processor


def test_replay_of_a_store_runs_store_processors_only(shop) -> None:
    drv, wh, _, _ = shop
    rep = drv.run(DAY, from_phase="analytics", entities={"store": ["s2"]})
    runs = _runs(rep, "analytics")
    assert runs["store_totals"].entity_ids == ["s2"]
    for name in ("customer_totals", "region_totals"):  # no store -> customer / region mapping declared
        assert runs[name].status == "no_data" and runs[name].entity_ids == []
        assert "no entity mapping from store" in runs[name].fallback_reason
    assert rep.status == "success"


def test_entity_args_name_a_kind_by_its_key_column(shop) -> None:
    drv = shop[0]
    assert parse_entity_args(drv.project, ["customer_id=c1", "customer_id=c2", "store_id=s0", "customer_id=c1"]) == \
        {"customer": ["c1", "c2"], "store": ["s0"]}
    with pytest.raises(ConfigError) as err:
        parse_entity_args(drv.project, ["player_lookup=lebronjames"])
    assert "unknown entity key 'player_lookup'" in str(err.value.render())
    assert "customer_id, region_id, store_id" in err.value.render()
    with pytest.raises(ConfigError, match="name the entity key"):
        parse_entity_args(drv.project, ["c1"])  # several kinds: a bare id is ambiguous


def test_cli_unknown_entity_key_is_a_usage_error(shop, capsys, monkeypatch) -> None:
    from framework.cli import main

    root = shop[3]
    monkeypatch.chdir(root)
    code = main(["--project", str(root), "run", "--date", DAY, "--from-phase", "analytics",
                 "--entities", "player_lookup=lebronjames", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert "unknown entity key 'player_lookup'" in err and "customer_id" in err and "store_id" in err


def test_given_kinds_are_exact_even_when_another_given_kind_maps_to_them(shop) -> None:
    drv = shop[0]
    rep = drv.run(DAY, from_phase="analytics", entities={"customer": ["c1"], "store": ["s0"]})
    runs = _runs(rep, "analytics")
    assert runs["customer_totals"].entity_ids == ["c1"]
    assert runs["store_totals"].entity_ids == ["s0"]  # given: not widened by c1 -> s1


def test_example_project_replay_of_one_player_from_analytics(tmp_path) -> None:
    """The README's replay on the example project: player processors get the player only,
    team processors exactly the teams his declared mappings name (his team, his opponent)."""
    from framework.drive.session import Session, default_sample_date, generate_sample, run_partition
    from framework.drive.replay import map_ids, mappings_between
    from projects import copy_example

    root = copy_example(tmp_path / "nba")
    with Session.open(root) as sess:
        date = default_sample_date(sess.project)
        generate_sample(sess, date)
        assert run_partition(sess, date, full=True).status == "success"
        player = "lebronjames"
        teams = sorted({t for m in mappings_between(sess.project, "player", "team")
                        for t in map_ids(sess.warehouse, sess.project, m, [player], date)})
        # independently: his roster team and his opponent in the gamebook, read directly
        from framework.backends.protocols import QueryParam

        params = [QueryParam("p", player), QueryParam("d", date, "DATE")]
        gamebook = sess.project.processors["nbac_gamebook_player_stats"].output.fqn
        roster = sess.project.processors["br_rosters_current"].output.fqn
        expected = {r["t"] for r in sess.warehouse.query(
            f"SELECT team_abbr AS t FROM {roster} WHERE player_lookup = $p AND game_date = $d UNION "
            f"SELECT opponent_team_abbr FROM {gamebook} WHERE player_lookup = $p AND game_date = $d", params)}
        assert teams == sorted(expected) and len(teams) == 2
        rep = run_partition(sess, date, from_phase="analytics", entities={"player": [player]})
    assert rep.status == "success" and rep.mode == "replay", rep.to_dict()
    assert rep.phases[0].phase == "analytics"
    seen = {"player": 0, "team": 0}
    for ph in rep.phases:
        for r in ph.runs:
            kind = sess.project.processors[r.processor].entity
            if kind == "player":
                assert r.entity_ids == [player], r.processor
            elif kind == "team":
                assert r.entity_ids == teams, r.processor
                assert r.entities_processed == len(teams)
            if kind in seen:
                seen[kind] += 1
    assert seen["player"] and seen["team"]
    assert rep.phase("analytics").distinct_entities() == {"player": [player], "team": teams}
