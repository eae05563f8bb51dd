"""The sample data generator is deterministic, realistic and editable."""
from __future__ import annotations

from datetime import date

import duckdb
import pytest

from pipelines.nba_props import sample_data
from pipelines.nba_props.landing import load_sources

DAY = date(2025, 1, 6)


def dump(con, tables=None) -> dict[str, list[tuple]]:
    names = tables or sorted(load_sources())
    return {n: con.execute(f"SELECT * FROM nba_landing.{n} ORDER BY ALL").fetchall() for n in names}


@pytest.fixture(scope="module")
def day_con():
    con = duckdb.connect()
    sample_data.generate(con, DAY, days=1, seed=42)
    yield con
    con.close()


def test_same_seed_same_rows_other_seed_other_rows(day_con):
    again = duckdb.connect()
    sample_data.generate(again, DAY, days=1, seed=42)
    assert dump(again) == dump(day_con)
    other = duckdb.connect()
    sample_data.generate(other, DAY, days=1, seed=7)
    assert dump(other, ["nbac_gamebook"]) != dump(day_con, ["nbac_gamebook"])


def test_a_date_does_not_depend_on_the_range_it_was_generated_in(day_con):
    season = duckdb.connect()
    sample_data.generate(season, date(2025, 1, 4), days=3, seed=42)
    for table in ("nbac_gamebook", "odds_api_player_points_props", "nbac_injury_report"):
        q = f"SELECT * FROM nba_landing.{table} WHERE game_date = DATE '2025-01-06' ORDER BY ALL"
        assert season.execute(q).fetchall() == day_con.execute(q).fetchall()


def test_regenerating_replaces_rather_than_duplicates(day_con):
    con = duckdb.connect()
    first = sample_data.generate(con, DAY, days=1)
    second = sample_data.generate(con, DAY, days=1)
    assert first == second
    assert con.execute("SELECT COUNT(*) FROM nba_landing.nbac_gamebook").fetchone()[0] == first["nbac_gamebook"]


def test_league_shape(day_con):
    one = lambda sql: day_con.execute(sql).fetchone()  # noqa: E731
    assert one("SELECT COUNT(DISTINCT player_lookup), COUNT(DISTINCT team_abbr) FROM nba_landing.br_rosters") == (450, 30)
    games = one("SELECT COUNT(*) FROM nba_landing.nbac_schedule")[0]
    assert 10 <= games <= 15
    assert one("SELECT COUNT(*) FROM nba_landing.nbac_team_boxscore")[0] == 2 * games
    assert one("SELECT COUNT(*) FROM nba_landing.nbac_gamebook")[0] == 2 * games * 15
    assert one("SELECT COUNT(DISTINCT bookmaker) FROM nba_landing.odds_api_player_points_props")[0] == 2
    assert one("SELECT COUNT(DISTINCT bookmaker) FROM nba_landing.bettingpros_player_points_props")[0] == 2
    assert one("SELECT COUNT(*) FROM nba_landing.br_rosters WHERE player_lookup = 'lebronjames' AND team_abbr = 'LAL'")[0] == 1


def test_box_scores_add_up(day_con):
    bad = day_con.execute("""
        SELECT COUNT(*) FROM nba_landing.nbac_gamebook
        WHERE points <> 2 * fg_made + three_made + ft_made OR fg_made > fg_attempted OR three_attempted > fg_attempted
    """).fetchone()[0]
    assert bad == 0
    mismatched = day_con.execute("""
        SELECT COUNT(*) FROM nba_landing.nbac_team_boxscore AS t
        JOIN (SELECT team_abbr, SUM(points) AS pts, SUM(fg_attempted) AS fga FROM nba_landing.nbac_gamebook GROUP BY 1) AS g
          ON g.team_abbr = t.team_abbr
        WHERE g.pts <> t.points OR g.fga <> t.fg_attempted
    """).fetchone()[0]
    assert mismatched == 0
    zones = day_con.execute("""
        SELECT COUNT(*) FROM nba_landing.nbac_gamebook AS g
        LEFT JOIN (SELECT player_lookup, SUM(fg_attempted) AS fga FROM nba_landing.nbac_play_by_play GROUP BY 1) AS p USING (player_lookup)
        WHERE COALESCE(p.fga, 0) <> g.fg_attempted
    """).fetchone()[0]
    assert zones == 0
    avg_team_points = day_con.execute("SELECT AVG(points) FROM nba_landing.nbac_team_boxscore").fetchone()[0]
    assert 95 < avg_team_points < 135


def test_out_players_do_not_play_and_have_no_props(day_con):
    rows = day_con.execute("""
        SELECT g.minutes, g.player_status, (SELECT COUNT(*) FROM nba_landing.odds_api_player_points_props AS o WHERE o.player_lookup = i.player_lookup)
        FROM (SELECT player_lookup, arg_max(injury_status, report_time) AS status FROM nba_landing.nbac_injury_report GROUP BY 1) AS i
        JOIN nba_landing.nbac_gamebook AS g USING (player_lookup)
        WHERE i.status = 'Out'
    """).fetchall()
    assert rows, "the sample day should have players ruled out"
    assert all(m == 0 and s == "inactive" and props == 0 for m, s, props in rows)


def test_apply_update_edits_one_player():
    con = duckdb.connect()
    sample_data.generate(con, DAY, days=1)
    before = dump(con)
    assert sample_data.apply_update(con, DAY, "lebronjames", points=55, fg_made=20) == 1
    after = dump(con)
    changed = [n for n in before if before[n] != after[n]]
    assert changed == ["nbac_gamebook"]
    assert con.execute("SELECT points, fg_made FROM nba_landing.nbac_gamebook WHERE player_lookup = 'lebronjames'").fetchone() == (55, 20)
    with pytest.raises(ValueError, match="cannot set column"):
        sample_data.apply_update(con, DAY, "lebronjames", pointz=1)
    with pytest.raises(ValueError, match="no row for player 'nobody'"):
        sample_data.apply_update(con, DAY, "nobody", points=1)


def test_random_edits_are_seeded_and_cover_every_operation():
    results = []
    for _ in range(2):
        con = duckdb.connect()
        sample_data.generate(con, DAY, days=1)
        edits = sample_data.apply_random_edits(con, DAY, seed=3, n_edits=12)
        results.append((edits, dump(con)))
    assert results[0] == results[1]
    edits = results[0][0]
    assert {e.operation for e in edits} == {"insert", "update", "delete"}
    assert {e.entity_kind for e in edits} == {"player", "team"}
    assert len({e.table for e in edits}) >= 6
    con = duckdb.connect()
    sample_data.generate(con, DAY, days=1)
    other = sample_data.apply_random_edits(con, DAY, seed=4, n_edits=12)
    assert other != edits


def test_warehouse_protocol_path_writes_the_same_rows(day_con):
    """Through the Warehouse protocol (no raw connection) the generator and edits behave the same."""
    from framework.backends.duckdb import DuckDBWarehouse

    wh = DuckDBWarehouse(":memory:")
    counts = sample_data.generate(wh, DAY, days=1, seed=42)
    assert counts["nbac_gamebook"] == day_con.execute("SELECT COUNT(*) FROM nba_landing.nbac_gamebook").fetchone()[0]
    for table in ("nbac_gamebook", "odds_api_player_points_props", "nbac_schedule"):
        q = f"SELECT * FROM nba_landing.{table} ORDER BY ALL"
        assert [tuple(r.values()) for r in wh.query(q)] == day_con.execute(q).fetchall()
    assert sample_data.apply_update(wh, DAY.isoformat(), "lebronjames", points=50) == 1
    assert wh.query("SELECT points FROM nba_landing.nbac_gamebook WHERE player_lookup = 'lebronjames'") == [{"points": 50}]
    wh.close()


def test_more_leagues_scale_the_world_and_keep_the_first_league_unchanged(day_con):
    """bench_scale's 4x/10x worlds: league 1 is exactly the default world (its rows are the
    default rows), later leagues add their own teams and players with unique keys."""
    world = sample_data.league(leagues=3)
    assert len(world.teams) == 90 and len(world.players) == 1350
    assert len({p.lookup for p in world.players}) == 1350 and len({t.abbr for t in world.teams}) == 90
    assert world.teams[:30] == sample_data.league().teams
    big = duckdb.connect()
    sample_data.generate(big, DAY, days=1, seed=42, leagues=3)
    default = dump(day_con, ["nbac_gamebook", "br_rosters", "nbac_schedule"])
    scaled = dump(big, ["nbac_gamebook", "br_rosters", "nbac_schedule"])
    for table, rows in default.items():
        assert set(rows) < set(scaled[table]), table
    games = big.execute("SELECT home_team_abbr, away_team_abbr FROM nba_landing.nbac_schedule").fetchall()
    league_of = {t.abbr: k // 30 for k, t in enumerate(world.teams)}
    assert all(league_of[home] == league_of[away] for home, away in games)  # games stay within a league
    assert {league_of[home] for home, _ in games} == {0, 1, 2}
    rosters = {r[1] for r in scaled["br_rosters"]}
    assert "lebronjameslgb" in rosters and "lebronjameslgc" in rosters
    with pytest.raises(ValueError, match="leagues"):
        sample_data.league(leagues=0)
