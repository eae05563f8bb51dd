"""What people do every day after the first full run, at the CLI, on the example projects:
run again with nothing changed, run with each selection form, ``--from-phase``, ``--full``
after an earlier date changed, back-fill with a disabled processor. Every form must exit 0
when the work succeeded, with an honest summary, and leave the tables equal to a full
recompute.

One module-scoped project has run two dates in full; each test works on a copy of it (the
``.pipectl/`` state included), so each starts from the same state in about a second.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from framework.cli import cli
from projects import copy_example

pytestmark = [pytest.mark.timeout(600)]

DAY1, DAY2 = "2025-01-06", "2025-01-07"


def invoke(root: Path, *args: str):
    return CliRunner().invoke(cli, ["-p", str(root), *args], catch_exceptions=False)


def run_json(root: Path, *args: str) -> tuple[int, dict]:
    result = invoke(root, "run", *args, "--json", "-q")
    return result.exit_code, json.loads(result.stdout)


@pytest.fixture(scope="module")
def ran(tmp_path_factory) -> Path:
    root = copy_example(tmp_path_factory.mktemp("everyday") / "base")
    assert invoke(root, "sample", "--date", DAY1, "--days", "2").exit_code == 0
    for day in (DAY1, DAY2):
        code, rep = run_json(root, "--date", day, "--full")
        assert code == 0 and rep["status"] == "success", rep
    return root


@pytest.fixture
def project(ran: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "p"
    shutil.copytree(ran, dest)
    return dest


def processed(rep: dict) -> dict[str, int]:
    return {ph["phase"]: ph["entities_processed"] for ph in rep["phases"]}


def test_rerun_with_nothing_changed_exits_0_and_says_so(project: Path) -> None:
    result = invoke(project, "run", "--date", DAY2, "-q")
    assert result.exit_code == 0, result.output
    assert "nothing changed since the last run" in result.output
    assert "waiting:" not in result.output
    code, rep = run_json(project, "--date", DAY2)
    assert code == 0 and rep["status"] == "success" and rep["waiting"] == []
    assert sum(processed(rep).values()) == 0
    assert rep["summary"] == "nothing changed since the last run"
    # every phase of the wave is accounted for: the first had nothing to do, the others nothing to run
    assert [ph["phase"] for ph in rep["phases"]] == ["raw", "analytics", "precompute", "predictions", "export"]
    check = invoke(project, "status", "--date", DAY2, "--check")
    assert check.exit_code == 0, check.output


@pytest.mark.parametrize("selector", ["player_daily_cache", "phase:precompute", "+team_offense_game_summary",
                                      "player_game_summary+", "entity:team"])
def test_rerun_with_each_selection_form_exits_0(project: Path, selector: str) -> None:
    code, rep = run_json(project, "--date", DAY2, "--select", selector)
    assert code == 0, rep
    assert rep["status"] == "success" and rep["waiting"] == [], rep


@pytest.mark.parametrize("args", [("--from-phase", "precompute"), ("--entities", "player_lookup=lebronjames",
                                                                    "--from-phase", "analytics")])
def test_rerun_from_a_phase_and_replay_exit_0(project: Path, args: tuple[str, ...]) -> None:
    code, rep = run_json(project, "--date", DAY2, *args)
    assert code == 0 and rep["status"] == "success" and rep["waiting"] == [], rep


def test_full_rerun_processes_every_entity_in_every_phase(project: Path) -> None:
    code, first = run_json(project, "--date", DAY2)  # nothing changed
    code, rep = run_json(project, "--date", DAY2, "--full")
    assert code == 0 and rep["status"] == "success", rep
    for ph in rep["phases"]:
        if ph["phase"] == "export":
            continue
        assert ph["entities_processed"] > 0 and ph["entities_processed"] == ph["entities_total"], ph
        assert all(r["status"] in ("success", "partial") for r in ph["runs"]), ph


def test_rerun_of_the_iot_example_exits_0(tmp_path: Path) -> None:
    root = tmp_path / "iot"
    shutil.copytree(Path(__file__).resolve().parents[2] / "pipelines" / "iot_sensors", root,
                    ignore=shutil.ignore_patterns("__pycache__"))
    assert invoke(root, "sample", "--days", "1").exit_code == 0
    day = json.loads(invoke(root, "run", "--date", _iot_day(root), "--json", "-q").stdout)
    assert day["status"] == "success", day
    result = invoke(root, "run", "--date", _iot_day(root), "-q")
    assert result.exit_code == 0, result.output
    assert "nothing changed since the last run" in result.output


def _iot_day(root: Path) -> str:
    from framework.project import load
    from framework.drive.session import default_sample_date

    return default_sample_date(load(root))


def test_full_rerun_after_an_earlier_date_changed_equals_a_run_from_scratch(project: Path, tmp_path: Path) -> None:
    from framework.drive.session import Session, generate_sample, run_partition, sample_module
    from projects import snapshot_tables, table_differences

    edit = {"points": 44, "fg_made": 17}
    with Session.open(project) as sess:
        sample_module(sess.project, "apply_update")(sess.warehouse, DAY1, "lebronjames", **edit)
    for day in (DAY1, DAY2):
        code, rep = run_json(project, "--date", day, "--full")
        assert code == 0 and rep["status"] == "success", rep
    with Session.open(project) as sess:
        rerun = snapshot_tables(sess)
    scratch = copy_example(tmp_path / "scratch")
    with Session.open(scratch) as sess:
        generate_sample(sess, DAY1, days=2)
        sample_module(sess.project, "apply_update")(sess.warehouse, DAY1, "lebronjames", **edit)
        for day in (DAY1, DAY2):
            assert run_partition(sess, day, full=True, mode="full").status == "success"
        reference = snapshot_tables(sess)
    assert table_differences(rerun, reference) == []


def test_a_changed_transform_reprocesses_every_entity_and_says_why(project: Path) -> None:
    """Add a column (YAML + SQL): plan lists the processor as reprocessed on its next run,
    the run recomputes all its entities (the column is filled on every row), the reason is
    in the run history, and the next run is incremental again."""
    from framework.drive.session import Session

    sql = project / "pipelines/nba_props/precompute/player_daily_cache.sql"
    sql.write_text(sql.read_text().replace("  z.primary_zone,\n", "  z.primary_zone,\n  COALESCE(f.games_played, 0) + 100 AS games_plus,\n"))
    manifest = project / "processors.yaml"
    text = manifest.read_text()
    anchor = "        - {name: team_possessions_avg_last10, type: FLOAT64}\n        - {name: primary_zone, type: STRING}\n"
    assert text.count(anchor) == 1
    manifest.write_text(text.replace(anchor, anchor + "        - {name: games_plus, type: INT64}\n"))

    plan = invoke(project, "plan")
    assert plan.exit_code == 0, plan.output
    assert "games_plus" in plan.output
    assert "Reprocessing on the next run" in plan.output
    line = next(ln for ln in plan.output.splitlines() if "* player_daily_cache:" in ln)
    assert f"2 partition(s) ({DAY1}, {DAY2})" in line
    assert "transform changed: pipelines/nba_props/precompute/player_daily_cache.sql" in line
    assert "output columns changed" in line
    assert json.loads(invoke(project, "plan", "--json").stdout)["reprocess"][0]["processor"] == "player_daily_cache"
    assert invoke(project, "apply", "--auto-approve").exit_code == 0

    code, rep = run_json(project, "--date", DAY2)
    assert code == 0 and rep["status"] == "success", rep
    runs = {r["processor"]: r for ph in rep["phases"] for r in ph["runs"]}
    cache = runs["player_daily_cache"]
    assert cache["status"] == "success" and cache["reason"].startswith("transform changed: ")
    with Session.open(project) as sess:
        rows = sess.warehouse.query("SELECT games_plus, games_played FROM nba_precompute.player_daily_cache "
                                    "WHERE game_date = DATE '2025-01-07'")
    assert len(rows) == cache["entities"] > 100
    assert all(r["games_plus"] == r["games_played"] + 100 for r in rows)
    history = json.loads(invoke(project, "history", "--processor", "player_daily_cache", "--json").stdout)
    assert history[0]["fallback_reason"].startswith("transform changed: ") and history[0]["full_batch"]
    # only the changed processor is reprocessed for its code; the others detected their changes
    assert [n for n, r in runs.items() if (r["reason"] or "").startswith("transform changed")] == ["player_daily_cache"]
    # the plan now lists only the date not yet re-run, and a second run is incremental again
    after = invoke(project, "plan").output
    assert f"1 partition(s) ({DAY1})" in after
    code, again = run_json(project, "--date", DAY2)
    assert code == 0 and again["summary"] == "nothing changed since the last run", again


def test_a_lost_trigger_fails_status_check_and_a_rerun_heals_the_partition(project: Path, tmp_path: Path,
                                                                           monkeypatch) -> None:
    """The precompute worker acks its trigger and dies (consumed and lost): `status --check`
    names the lost transition and the command; a plain re-run re-dispatches the phase and
    the tables end equal to a run that never lost anything."""
    from framework.drive.pipeline import PipelineDriver
    from framework.drive.session import Session, sample_module
    from projects import snapshot_tables, table_differences

    reference = tmp_path / "reference"
    shutil.copytree(project, reference)
    for root in (project, reference):
        with Session.open(root) as sess:
            sample_module(sess.project, "apply_update")(sess.warehouse, DAY2, "lebronjames", points=45)
    code, ok = run_json(reference, "--date", DAY2)
    assert code == 0 and ok["status"] == "success", ok

    original = PipelineDriver._run_phase

    def lossy(self, phase, env, msg, ctx, report):
        if phase == "precompute":
            return None  # acked by the caller, never run, never reported
        return original(self, phase, env, msg, ctx, report)

    monkeypatch.setattr(PipelineDriver, "_run_phase", lossy)
    code, lost = run_json(project, "--date", DAY2)
    assert code == 1 and lost["status"] == "failed"
    monkeypatch.setattr(PipelineDriver, "_run_phase", original)

    check = invoke(project, "status", "--date", DAY2, "--check", "--grace", "0")
    assert check.exit_code == 1, check.output
    problem = next(ln for ln in check.output.splitlines() if "lost_trigger" in ln)
    assert "analytics->precompute" in problem and f"`pipectl run --date {DAY2}" in problem
    problems = json.loads(invoke(project, "status", "--date", DAY2, "--json", "--grace", "0").stdout)["problems"]
    assert [(p["kind"], p["phase"]) for p in problems] == [("lost_trigger", "precompute")]
    # within the default grace the phase might still be running: not yet a problem
    assert invoke(project, "status", "--date", DAY2, "--check").exit_code == 0

    code, healed = run_json(project, "--date", DAY2)
    assert code == 0 and healed["status"] == "success", healed
    assert any("re-dispatching" in n and "precompute" in n for n in healed["notes"]), healed["notes"]
    assert invoke(project, "status", "--date", DAY2, "--check", "--grace", "0").exit_code == 0
    with Session.open(project) as a, Session.open(reference) as b:
        assert table_differences(snapshot_tables(a), snapshot_tables(b)) == []


def test_a_game_line_change_reprocesses_its_two_teams_and_fanout_never_exceeds_the_full_batch(project: Path) -> None:
    """The odds feed has no team key: declared `entity: game` mapped to teams via the
    schedule, one changed game reprocesses its two teams, not every team of the day. The
    predictions fan-out of the update runs tasks only for changed players the full batch
    would predict (those with a line), never more tasks than the full batch."""
    from framework.drive.session import Session

    with Session.open(project) as sess:
        wh = sess.warehouse
        game = wh.query("SELECT MIN(game_id) AS g FROM nba_landing.odds_api_game_lines WHERE game_date = DATE '2025-01-07'")[0]["g"]
        wh.execute_script("UPDATE nba_landing.odds_api_game_lines SET home_spread = home_spread - 3.0, game_total = game_total + 4.5 "
                          f"WHERE game_date = DATE '2025-01-07' AND game_id = '{game}'")
        teams = wh.query("SELECT COUNT(DISTINCT team_abbr) AS n FROM nba_raw.odds_api_game_lines WHERE game_date = DATE '2025-01-07'")[0]["n"]
        full_tasks = wh.query("SELECT COUNT(*) AS n FROM nba_predictions.player_prop_predictions "
                              "WHERE game_date = DATE '2025-01-07'")[0]["n"]
    code, rep = run_json(project, "--date", DAY2)
    assert code == 0 and rep["status"] == "success", rep
    runs = {r["processor"]: r for ph in rep["phases"] for r in ph["runs"]}
    lines = runs["odds_api_game_lines"]
    assert lines["status"] == "success" and lines["entities"] == 2 < teams, lines
    predictions = runs["player_prop_predictions"]
    assert predictions["status"] == "success"
    assert 0 < predictions["tasks"] <= full_tasks
    assert predictions["tasks"] < predictions["entities"], predictions  # players without a line get no task


def test_backfill_never_runs_a_disabled_processor(tmp_path: Path) -> None:
    root = copy_example(tmp_path / "bf")
    assert invoke(root, "sample", "--date", DAY1, "--days", "1").exit_code == 0
    result = invoke(root, "backfill", "--from", DAY1, "--to", DAY1, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["done"] == 1
    from framework.drive.session import Session

    with Session.open(root) as sess:
        disabled = [p for p in sess.project.processors.values() if not p.enabled]
        assert [p.name for p in disabled] == ["bdl_player_boxscores"]
        assert sess.warehouse.query(f"SELECT COUNT(*) AS n FROM {disabled[0].output.fqn}")[0]["n"] == 0
        assert sess.warehouse.query("SELECT COUNT(*) AS n FROM nba_raw.nbac_gamebook_player_stats")[0]["n"] > 0
    history = json.loads(invoke(root, "history", "--processor", "bdl_player_boxscores", "--json").stdout)
    assert history == []
    # selecting it explicitly does not run it either
    again = invoke(root, "backfill", "--from", DAY1, "--to", DAY1, "--select", "bdl_player_boxscores", "--json")
    assert again.exit_code == 0, again.output
    assert json.loads(invoke(root, "history", "--processor", "bdl_player_boxscores", "--json").stdout) == []


def test_a_one_player_update_detects_only_where_no_upstream_list_covers_the_inputs(project: Path, monkeypatch) -> None:
    """`simulate update` of one player: the raw processor reading the edited landing source
    detects (a source carries no entity list), and so does a processor whose rewritten input
    is also its mapping table (team_defense_game_summary maps players to opponents through the
    gamebook it reads); every other downstream processor that runs takes its entities from
    the upstream change-sets: no detection query reaches DuckDB for it. The tables then equal
    a from-scratch recompute (`pipectl verify`)."""
    from framework.drive.session import Session, simulate_update
    from framework.run.verify import verify
    from tests.recording import detections, record_statements

    with Session.open(project) as sess:  # a player who played and has a points line that day
        player = sess.warehouse.query(
            "SELECT g.player_lookup FROM nba_raw.nbac_gamebook_player_stats g JOIN nba_raw.odds_api_player_points_props p "
            "USING (game_date, player_lookup) WHERE g.game_date = DATE '2025-01-07' AND g.minutes > 0 "
            "ORDER BY g.points DESC, g.player_lookup LIMIT 1")[0]["player_lookup"]
    with record_statements(monkeypatch) as sent, Session.open(project) as sess:
        upd = simulate_update(sess, DAY2, player, edits=[(None, {"points": 41, "fg_made": 16}),
                                                                 ("odds_api_player_points_props", {"points_line": 31.5})])
        assert upd.report.status == "success", upd.report.to_dict()
        ran = {r.processor for ph in upd.report.phases for r in ph.runs if r.status == "success"}
        assert sorted(detections(sent)) == ["nbac_gamebook_player_stats", "odds_api_player_points_props", "team_defense_game_summary"]
        # the update reached every phase without detecting there
        assert {"player_game_summary", "player_daily_cache", "ml_feature_store", "player_prop_predictions"} <= ran
    with Session.open(project) as sess:
        report = verify(sess.project, sess.warehouse, DAY2)
        assert report.ok, report.to_dict() if hasattr(report, "to_dict") else report


@pytest.mark.parametrize("args", [("--sources-changed", "landing_gamebook"), ()])
def test_a_dropped_output_table_is_rebuilt_not_skipped(project: Path, args: tuple[str, ...]) -> None:
    """The state store says player_game_summary already ran the date and no input changed
    since; its table was dropped. The run finds it missing (one catalog listing per dataset,
    not a query per processor), rebuilds it in full, says why, and leaves it equal to before."""
    import duckdb

    db = str(project / ".pipectl" / "warehouse.duckdb")
    con = duckdb.connect(db)
    before = sorted(con.execute("SELECT * EXCLUDE (processed_at) FROM nba_analytics.player_game_summary "
                                "WHERE game_date = DATE '2025-01-07'").fetchall(), key=repr)
    con.execute("DROP TABLE nba_analytics.player_game_summary")
    con.close()
    code, rep = run_json(project, "--date", DAY2, *args)
    assert code == 0 and rep["status"] == "success", rep
    runs = {r["processor"]: r for ph in rep["phases"] for r in ph["runs"]}
    pgs = runs["player_game_summary"]
    assert pgs["status"] == "success" and "nba_analytics.player_game_summary was missing" in (pgs.get("reason") or ""), pgs
    con = duckdb.connect(db)
    after = sorted(con.execute("SELECT * EXCLUDE (processed_at) FROM nba_analytics.player_game_summary "
                               "WHERE game_date = DATE '2025-01-07'").fetchall(), key=repr)
    con.close()
    assert after == before and len(after) > 100
