"""End to end: the README's first command (`pipectl demo`), replay, backfill and trace on
the example NBA props project with the embedded backends."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from framework.cli import cli
from projects import copy_example

pytestmark = pytest.mark.timeout(600)


def _invoke(root, *args: str):
    result = CliRunner().invoke(cli, ["-p", str(root), *args], catch_exceptions=False)
    return result


def test_demo_runs_the_game_day_then_one_player_through_every_phase(tmp_path) -> None:
    """In a folder without manifests the demo makes ./pipectl-demo/ (a marked example copy)."""
    empty = tmp_path / "empty"
    empty.mkdir()
    result = _invoke(empty, "demo", "--json", "-q")
    assert result.exit_code == 0, result.output
    root = empty / "pipectl-demo"
    assert json.loads((root / ".pipectl-example").read_text())["made_by"] == "pipectl demo"
    out = json.loads(result.stdout[result.stdout.index("{"):])
    full, update = out["full"], out["update"]
    assert full["status"] == "success"
    assert [p["phase"] for p in full["phases"]] == ["raw", "analytics", "precompute", "predictions", "export"]
    assert full["phases"][0]["distinct_entities"]["player"] >= 400
    assert out["entity_kind"] == "player" and out["entity"] == f"player_lookup={out['entity_id']}"
    player = out["entity_id"]
    phases = {p["phase"]: p for p in update["pipeline"]["phases"]}
    assert update["pipeline"]["status"] == "success"
    for name in ("raw", "analytics", "precompute", "predictions"):
        assert phases[name]["distinct_entities"]["player"] == 1, (name, phases[name])
        assert phases[name]["efficiency_pct"] > 99.0
    runs = {r["processor"]: r for p in update["pipeline"]["phases"] for r in p["runs"]}
    assert runs["player_prop_predictions"]["entities"] == 1 and runs["player_prop_predictions"]["status"] == "success"
    # with history days behind it, the model makes real calls, not only PASS
    recommendations = {p["recommendation"] for p in json.loads(
        (root / ".pipectl" / "exports" / f"predictions_{out['date']}.json").read_text())["picks"]}
    assert {"OVER", "UNDER", "PASS"} <= recommendations
    exported = json.loads((root / ".pipectl" / "exports" / f"predictions_{out['date']}.json").read_text())
    pick = next(p for p in exported["picks"] if p["player_lookup"] == player)
    from framework.backends.duckdb import DuckDBWarehouse
    from framework.backends.protocols import QueryParam

    with DuckDBWarehouse(root / ".pipectl" / "warehouse.duckdb") as wh:
        lines = [r["points_line"] for t in ("odds_api_player_points_props", "bettingpros_player_points_props")
                 for r in wh.query(f"SELECT points_line FROM nba_raw.{t} WHERE player_lookup = $p AND game_date = $d",
                                   [QueryParam("p", player), QueryParam("d", out["date"], "DATE")])]
    assert 31.5 in lines and pick["points_line"] == round(sum(lines) / len(lines), 2)  # the 2 PM line move reached the export
    # the trace of the update names every phase's runs under one correlation id
    trace = _invoke(root, "trace", update["pipeline"]["correlation_id"])
    assert trace.exit_code == 0
    for name in ("raw", "analytics", "precompute", "predictions", "export"):
        assert f"-> {name}" in trace.output
    assert "run player_prop_predictions [predictions] success 1 player" in trace.output
    history = _invoke(root, "history", "--processor", "player_prop_predictions", "--json")
    # 3 history days + the full game day + the update
    assert [r["status"] for r in json.loads(history.stdout)] == ["success"] * 5


def test_replay_entities_from_a_phase_and_resumable_backfill(tmp_path) -> None:
    root = copy_example(tmp_path / "nba")
    assert _invoke(root, "sample", "--date", "2025-01-06", "--days", "3").exit_code == 0
    # backfill the raw phase only: no downstream trigger; "crash" after one date, then resume
    from framework.drive.session import Session, backfill

    with Session.open(root, aggregate_alerts=True) as sess:
        first = backfill(sess, "2025-01-06", "2025-01-08", select=["phase:raw"], stop_after=1)
        assert first.done == ["2025-01-06"]
        second = backfill(sess, "2025-01-06", "2025-01-08", select=["phase:raw"])
        assert second.skipped == ["2025-01-06"] and second.done == ["2025-01-07", "2025-01-08"]
        wh = sess.warehouse
        assert wh.query("SELECT COUNT(DISTINCT game_date) AS n FROM nba_raw.nbac_gamebook_player_stats")[0]["n"] == 3
        assert wh.table_schema("nba_analytics.player_game_summary") is None or \
            wh.query("SELECT COUNT(*) AS n FROM nba_analytics.player_game_summary")[0]["n"] == 0
    run = _invoke(root, "run", "--date", "2025-01-06", "--json", "-q")
    assert run.exit_code == 0, run.output
    player = json.loads(run.stdout)["phases"][1]["runs"][0]
    replay = _invoke(root, "run", "--date", "2025-01-06", "--entities", "player_lookup=lebronjames",
                     "--from-phase", "analytics", "--json", "-q")
    assert replay.exit_code == 0, replay.output
    rep = json.loads(replay.stdout)
    assert rep["mode"] == "replay" and rep["phases"][0]["phase"] == "analytics"
    for phase in rep["phases"]:
        for r in phase["runs"]:
            if r["status"] == "success" and r["processor"] != "export_predictions" and "team" not in r["processor"]:
                assert r["entities"] == 1, r
    assert player["status"] == "success"
