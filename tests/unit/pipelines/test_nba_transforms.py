"""Every SQL transform of the NBA example renders, runs on DuckDB, computes real statistics,
parses as BigQuery SQL, and is entity-local (a selective run equals the full batch)."""
from __future__ import annotations

import dataclasses
import json
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest
import sqlglot

import transform_harness as h
from framework.project import load
from pipelines.nba_props import sample_data

REPO = Path(__file__).resolve().parents[3]
START = date(2025, 1, 6)
DAYS = 8
LAST = START + timedelta(days=DAYS - 1)


@pytest.fixture(scope="module")
def project():
    return load(REPO)


@pytest.fixture(scope="module")
def season(project):
    """DAYS days of sample data run through every SQL transform, date by date."""
    con = duckdb.connect()
    sample_data.generate(con, START, days=DAYS, seed=42)
    h.create_tables(con, project)
    counts = {}
    for k in range(DAYS):
        counts = h.run_day(con, project, START + timedelta(days=k))
    yield con, counts
    con.close()


def one(con, sql, params=None):
    return con.execute(sql, params or {}).fetchone()


def test_every_sql_transform_produces_rows(project, season):
    _, counts = season
    assert set(counts) == {p.name for p in h.sql_processors(project)}
    assert all(n > 0 for n in counts.values()), counts
    assert counts["upcoming_player_game_context"] == 15 * counts["upcoming_team_game_context"]
    assert counts["player_game_summary"] < counts["nbac_gamebook_player_stats"]  # DNP/inactive rows dropped


def test_player_game_summary_statistics(season):
    con, _ = season
    assert one(con, """SELECT COUNT(*) FROM nba_analytics.player_game_summary
                       WHERE points <> 2 * fg_made + three_made + ft_made OR minutes <= 0""")[0] == 0
    lo, hi = one(con, "SELECT MIN(usage_rate), MAX(usage_rate) FROM nba_analytics.player_game_summary")
    assert 0 <= lo and hi <= 1
    # usage is a share of team possessions: the players of a team add up to the whole
    spread = one(con, """SELECT MIN(u), MAX(u) FROM (SELECT game_date, team_abbr, SUM(usage_rate) AS u
                         FROM nba_analytics.player_game_summary GROUP BY 1, 2)""")
    assert 0.99 <= spread[0] and spread[1] <= 1.01
    ts = one(con, "SELECT AVG(true_shooting_pct) FROM nba_analytics.player_game_summary WHERE fg_attempted >= 10")[0]
    assert 0.45 < ts < 0.7
    assert one(con, """SELECT COUNT(*) FROM nba_analytics.player_game_summary
                       WHERE points_line IS NOT NULL AND over_under_result IS NULL""")[0] == 0


def test_defence_is_the_opponents_offence(season):
    con, _ = season
    assert one(con, """SELECT COUNT(*) FROM nba_analytics.team_defense_game_summary AS d
                       JOIN nba_analytics.team_offense_game_summary AS o
                         ON o.game_date = d.game_date AND o.team_abbr = d.opponent_team_abbr
                       WHERE o.points <> d.points_allowed OR o.possessions <> d.opp_possessions""")[0] == 0
    assert one(con, "SELECT COUNT(*) FROM nba_analytics.team_defense_game_summary")[0] == one(
        con, "SELECT COUNT(*) FROM nba_analytics.team_offense_game_summary")[0]


def test_rolling_averages_use_only_earlier_games(season):
    con, _ = season
    player = one(con, """SELECT player_lookup FROM nba_precompute.player_daily_cache
                         WHERE game_date = $d AND games_played >= 5 ORDER BY player_lookup LIMIT 1""", {"d": LAST})[0]
    pts = [r[0] for r in con.execute("""SELECT points FROM nba_analytics.player_game_summary
                                        WHERE player_lookup = $p AND game_date < $d ORDER BY game_date DESC""",
                                     {"p": player, "d": LAST}).fetchall()]
    games, last5, season_avg = one(con, """SELECT games_played, points_avg_last5, points_avg_season
                                          FROM nba_precompute.player_daily_cache WHERE player_lookup = $p AND game_date = $d""",
                                   {"p": player, "d": LAST})
    assert games == len(pts)
    assert last5 == pytest.approx(round(sum(pts[:5]) / 5, 2))
    assert season_avg == pytest.approx(round(sum(pts) / len(pts), 2))
    first_day = one(con, "SELECT COUNT(*), MAX(games_played) FROM nba_precompute.player_daily_cache WHERE game_date = $d", {"d": START})
    assert first_day[0] > 0 and first_day[1] == 0  # no history before the first date


def test_features_and_predictions_are_sane(season):
    con, _ = season
    lo, hi = one(con, "SELECT MIN(composite_adjustment), MAX(composite_adjustment) FROM nba_precompute.player_composite_factors")
    assert 0.85 <= lo <= hi <= 1.15
    q_lo, q_hi = one(con, "SELECT MIN(feature_quality_score), MAX(feature_quality_score) FROM nba_predictions.ml_feature_store_v2")
    assert q_lo == pytest.approx(100 / 11, abs=0.1) and q_hi == 100.0  # a first game without a line has 1 of 11 features
    recs = dict(con.execute("SELECT recommendation, COUNT(*) FROM nba_predictions.player_prop_predictions WHERE game_date = $d GROUP BY 1",
                            {"d": LAST}).fetchall())
    assert set(recs) == {"OVER", "UNDER", "PASS"}
    assert one(con, """SELECT COUNT(*) FROM nba_predictions.player_prop_predictions
                       WHERE ABS(edge - (predicted_points - points_line)) > 0.011 OR confidence < 0.5 OR confidence > 0.95
                          OR (recommendation = 'OVER' AND edge < 1.5) OR (recommendation = 'UNDER' AND edge > -1.5)""")[0] == 0
    # only players with a line get a prediction
    assert one(con, "SELECT COUNT(*) FROM nba_predictions.player_prop_predictions WHERE points_line IS NULL")[0] == 0


def _selection(con, kind: str) -> list[str]:
    """A few entities of the last day, including one that did not play at all."""
    if kind == "player":
        played = [r[0] for r in con.execute("""SELECT player_lookup FROM nba_predictions.player_prop_predictions
                                               WHERE game_date = $d ORDER BY player_lookup LIMIT 2""", {"d": LAST}).fetchall()]
        idle = one(con, """SELECT r.player_lookup FROM nba_raw.br_rosters_current AS r
                           WHERE r.game_date = $d AND r.team_abbr NOT IN (SELECT team_abbr FROM nba_raw.nbac_schedule WHERE game_date = $d)
                           ORDER BY 1 LIMIT 1""", {"d": LAST})
        return played + ([idle[0]] if idle else []) + ["lebronjames"]
    teams = [r[0] for r in con.execute("SELECT team_abbr FROM nba_raw.nbac_schedule WHERE game_date = $d ORDER BY 1 LIMIT 2", {"d": LAST}).fetchall()]
    return teams + ["LAL"]


def test_transforms_are_entity_local(project, season):
    """Selective SELECT for a few entities == the full batch's rows for those entities."""
    con, _ = season
    checked = 0
    for proc in h.sql_processors(project):
        ids = _selection(con, proc.entity)
        key = project.entity_kinds[proc.entity].key
        selective = h.select(con, project, proc, LAST, entity_ids=ids)
        full = h.rows_of(con, project, proc, LAST, where=f"{key} IN (SELECT UNNEST($ids))", params={"ids": ids})
        assert h.strip(selective) == h.strip(full), proc.name
        assert all(r[key] in ids for r in selective), proc.name
        checked += bool(full)
    assert checked >= 20


@pytest.mark.parametrize("name", [
    "player_game_summary", "team_defense_game_summary", "upcoming_player_game_context", "player_daily_cache",
    "player_composite_factors", "ml_feature_store", "player_prop_predictions", "nbac_schedule", "odds_api_game_lines",
])
def test_bigquery_rendering_parses(project, name):
    sql = h.render(project, project.processors[name], entity_ids=["x"], dialect="bigquery")
    assert "@game_date" in sql and "$" not in sql
    sqlglot.parse_one(sql, read="bigquery")


def test_all_transforms_render_for_bigquery(project):
    for proc in h.sql_processors(project):
        sqlglot.parse_one(h.render(project, proc, dialect="bigquery"), read="bigquery")


class _DuckWarehouse:
    """Just enough of the Warehouse protocol for the export transform."""

    dialect = "duckdb"

    def __init__(self, con):
        self.con = con

    def query(self, sql, params=(), labels=None):
        cur = self.con.execute(sql, {p.name: p.value for p in params})
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]


def test_export_writes_the_days_predictions(project, season, tmp_path):
    from framework.run.transform import TransformContext
    from pipelines.nba_props.export import export_path, export_predictions

    con, _ = season
    local = dataclasses.replace(project, root=tmp_path)
    proc = project.processors["export_predictions"]
    for entity_ids in (None, ("lebronjames",)):
        rows = export_predictions(TransformContext(_DuckWarehouse(con), local, proc, LAST, entity_ids))
        assert list(rows) == []
        doc = json.loads(export_path(tmp_path, LAST).read_text())
        expected = one(con, "SELECT COUNT(*) FROM nba_predictions.player_prop_predictions WHERE game_date = $d", {"d": LAST})[0]
        assert doc["game_date"] == LAST.isoformat() and doc["predictions"] == expected == len(doc["picks"])
        assert sum(doc["recommendations"].values()) == expected
        assert doc["picks"][0]["confidence"] >= doc["picks"][-1]["confidence"]
    assert (tmp_path / ".pipectl" / ".gitignore").exists()


@pytest.mark.parametrize("root", [REPO, REPO / "pipelines" / "iot_sensors"])
def test_harness_renders_exactly_like_the_framework(root):
    """The test harness and framework.sql.render agree on the transform contract."""
    from framework.sql.render import render_transform

    proj = load(root)
    for proc in h.sql_processors(proj):
        assert render_transform(proj, proc, "duckdb", full_batch=True) == h.render(proj, proc).strip(), proc.name
        assert render_transform(proj, proc, "duckdb", full_batch=False) == h.render(proj, proc, ["x"]).strip(), proc.name


@pytest.mark.parametrize("entity_ids", [None, ("lebronjames", "LAL")])
def test_bigquery_rendering_means_the_same(project, season, entity_ids):
    """The BigQuery text, read with BigQuery semantics (sqlglot) and run on DuckDB, returns the
    same rows as the DuckDB text: the one dialect branch (days between dates) agrees too."""
    con, _ = season
    for proc in h.sql_processors(project):
        bq = h.render(project, proc, list(entity_ids) if entity_ids else None, dialect="bigquery")
        duck = sqlglot.transpile(bq, read="bigquery", write="duckdb")[0].replace("@game_date", "$game_date").replace("@entity_ids", "$entity_ids")
        params = {"game_date": LAST, **({"entity_ids": list(entity_ids)} if entity_ids else {})}
        cur = con.execute(duck, params)
        names = [d[0] for d in cur.description]
        floats = {c.name for c in proc.output.columns if c.type == "FLOAT64"}
        rows = [{n: (float(v) if n in floats and v is not None else v) for n, v in zip(names, r)} for r in cur.fetchall()]
        assert h.strip(rows) == h.strip(h.select(con, project, proc, LAST, entity_ids)), proc.name
