"""Change detection on DuckDB with real rows: what counts as a change, and what does not.

Each test writes a small project into tmp_path, loads real rows into an in-memory DuckDB,
runs detect_changes / record_processed and checks the change-set.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from framework.backends.duckdb import DuckDBWarehouse
from framework.project import load
from framework.run.changes import ChangeSet, EntityChange, detect_changes, record_change_set, record_processed

D = dt.date(2024, 1, 15)


def cols(*specs: str) -> list[dict]:
    return [{"name": s.split(":")[0], "type": s.split(":")[1]} for s in specs]


def write_project(root: Path, processors: list[dict], sources: list[dict] | None = None,
                  mappings: list[dict] | None = None, sql: dict[str, str] | None = None) -> Path:
    """A minimal valid project: player/team kinds, partition game_date, phases raw/analytics."""
    doc = {
        "version": 1, "project": "t", "partition": {"column": "game_date", "type": "DATE"},
        "entity_kinds": {"player": {"key": "player_lookup"}, "team": {"key": "team_abbr"}},
        "entity_mappings": mappings or [],
        "sources": sources or [],
        "phases": [{"name": "raw", "order": 1, "dataset": "raw"}, {"name": "analytics", "order": 2, "dataset": "analytics"}],
        "processors": processors,
    }
    root.mkdir(parents=True, exist_ok=True)
    (root / "processors.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    (root / "topics.yaml").write_text("version: 1\ntopics: []\n")
    (root / "sql").mkdir(exist_ok=True)
    for p in processors:
        path = root / p["transform"]["sql"]
        path.write_text((sql or {}).get(p["name"], "SELECT 1 AS x"))
    return root


def stats_source(name: str = "stats", change_columns: list[str] | None = None) -> dict:
    src = {"name": name, "table": f"landing.{name}", "entity": "player",
           "columns": cols("game_date:DATE", "player_lookup:STRING", "points:INT64", "minutes:FLOAT64", "scraped_at:TIMESTAMP")}
    if change_columns:
        src["change_columns"] = change_columns
    return src


def player_proc(name: str = "player_stats", inputs: list | None = None, **extra) -> dict:
    proc = {"name": name, "phase": "analytics", "entity": "player", "inputs": inputs or [{"source": "stats"}],
            "output": {"table": name, "columns": cols("game_date:DATE", "player_lookup:STRING", "points:INT64")},
            "transform": {"sql": f"sql/{name}.sql"}}
    proc.update(extra)
    return proc


@pytest.fixture
def wh():
    w = DuckDBWarehouse(":memory:")
    yield w
    w.close()


def setup(wh, project, rows: dict[str, list[dict]]):
    for src in project.sources.values():
        wh.create_table(src.table)
    for proc in project.processors.values():
        if proc.output is not None:
            wh.create_table(proc.output)
    for fqn, rs in rows.items():
        wh.insert_rows(fqn, rs)


def row(player: str, points: int | None = 10, minutes: float | None = 30.0, day: dt.date = D) -> dict:
    return {"game_date": day, "player_lookup": player, "points": points, "minutes": minutes, "scraped_at": dt.datetime(2024, 1, 15, 12)}


def ops(cs: ChangeSet) -> dict[str, str]:
    return {c.key: c.operation for c in cs.changes}


def baseline(wh, tmp_path, source=None, proc=None, rows=None):
    project = load(write_project(tmp_path / "p", [proc or player_proc()], [source or stats_source(change_columns=["points", "minutes"])]))
    setup(wh, project, {"landing.stats": rows if rows is not None else [row("a"), row("b"), row("c")]})
    first = detect_changes(wh, project, "player_stats", D)
    record_processed(wh, project, "player_stats", D, "run-1", None)
    return project, first


def test_first_run_inserts_every_entity_then_nothing_changes(wh, tmp_path):
    project, first = baseline(wh, tmp_path)
    assert ops(first) == {"a": "insert", "b": "insert", "c": "insert"}
    assert first.total_entities == 3 and not first.full_batch
    again = detect_changes(wh, project, "player_stats", D)
    assert again.changes == [] and again.total_entities == 3
    assert again.skipped == 3 and again.efficiency_pct == 100.0 and not again.has_work


def test_new_entity_is_insert(wh, tmp_path):
    project, _ = baseline(wh, tmp_path)
    wh.insert_rows("landing.stats", [row("d")])
    cs = detect_changes(wh, project, "player_stats", D)
    assert ops(cs) == {"d": "insert"}
    assert cs.total_entities == 4 and cs.skipped == 3 and cs.efficiency_pct == 75.0


def test_changed_value_is_update_with_new_fingerprint(wh, tmp_path):
    project, first = baseline(wh, tmp_path)
    wh.execute_script("UPDATE landing.stats SET points = 31 WHERE player_lookup = 'b'")
    cs = detect_changes(wh, project, "player_stats", D)
    assert ops(cs) == {"b": "update"}
    before = {c.key: c.fingerprint for c in first.changes}["b"]
    assert cs.changes[0].fingerprint and cs.changes[0].fingerprint != before


def test_change_in_non_compared_column_is_not_a_change(wh, tmp_path):
    project, _ = baseline(wh, tmp_path)
    wh.execute_script("UPDATE landing.stats SET scraped_at = TIMESTAMP '2024-01-15 14:00:00'")
    assert detect_changes(wh, project, "player_stats", D).changes == []


@pytest.mark.parametrize("before,after", [(None, 12), (10, None), (None, None)])
def test_null_transitions(wh, tmp_path, before, after):
    project, _ = baseline(wh, tmp_path, rows=[row("a", points=before), row("b")])
    wh.execute_script(f"UPDATE landing.stats SET points = {'NULL' if after is None else after} WHERE player_lookup = 'a'")
    cs = detect_changes(wh, project, "player_stats", D)
    assert ops(cs) == ({} if before == after else {"a": "update"})


def test_null_moved_between_columns_is_a_change(wh, tmp_path):
    project, _ = baseline(wh, tmp_path, rows=[row("a", points=None, minutes=5.0)])
    wh.execute_script("UPDATE landing.stats SET points = 5, minutes = NULL")
    assert ops(detect_changes(wh, project, "player_stats", D)) == {"a": "update"}


def test_deleted_entity_is_delete_and_forgotten_after_record(wh, tmp_path):
    project, _ = baseline(wh, tmp_path)
    wh.execute_script("DELETE FROM landing.stats WHERE player_lookup = 'c'")
    cs = detect_changes(wh, project, "player_stats", D)
    assert ops(cs) == {"c": "delete"} and cs.changes[0].fingerprint is None
    assert cs.total_entities == 2 and cs.skipped == 2
    record_processed(wh, project, "player_stats", D, "run-2", ["c"])
    assert detect_changes(wh, project, "player_stats", D).changes == []


def test_other_partitions_do_not_count(wh, tmp_path):
    project, _ = baseline(wh, tmp_path)
    wh.insert_rows("landing.stats", [row("z", day=D + dt.timedelta(days=1))])
    wh.execute_script("UPDATE landing.stats SET points = 1 WHERE game_date <> DATE '2024-01-15'")
    assert detect_changes(wh, project, "player_stats", D).changes == []
    other = detect_changes(wh, project, "player_stats", D + dt.timedelta(days=1))
    assert ops(other) == {"z": "insert"}


def test_several_rows_per_entity_order_independent_but_duplicates_count(wh, tmp_path):
    project, _ = baseline(wh, tmp_path, rows=[row("a", 1), row("a", 2), row("b", 3)])
    # same multiset of rows in another physical order: no change
    wh.execute_script("DELETE FROM landing.stats; INSERT INTO landing.stats SELECT * FROM (VALUES "
                      "(DATE '2024-01-15', 'b', 3, 30.0, NULL), (DATE '2024-01-15', 'a', 2, 30.0, NULL), "
                      "(DATE '2024-01-15', 'a', 1, 30.0, NULL)) AS v")
    assert detect_changes(wh, project, "player_stats", D).changes == []
    wh.insert_rows("landing.stats", [row("a", 2)])  # a duplicate row is a change
    assert ops(detect_changes(wh, project, "player_stats", D)) == {"a": "update"}


def test_selective_record_keeps_other_entities_pending(wh, tmp_path):
    project, _ = baseline(wh, tmp_path)
    wh.execute_script("UPDATE landing.stats SET points = points + 1 WHERE player_lookup IN ('a', 'b')")
    record_processed(wh, project, "player_stats", D, "run-2", ["a"])
    assert ops(detect_changes(wh, project, "player_stats", D)) == {"b": "update"}


def test_compare_override_and_upstream_change_columns(wh, tmp_path):
    # the source declares points+minutes; the input narrows the comparison to minutes only
    proc = player_proc(inputs=[{"source": "stats", "compare": ["minutes"]}])
    project, _ = baseline(wh, tmp_path, proc=proc)
    wh.execute_script("UPDATE landing.stats SET points = 99 WHERE player_lookup = 'a'")
    assert detect_changes(wh, project, "player_stats", D).changes == []
    wh.execute_script("UPDATE landing.stats SET minutes = 1.5 WHERE player_lookup = 'a'")
    assert ops(detect_changes(wh, project, "player_stats", D)) == {"a": "update"}


def test_all_non_key_columns_compared_by_default(wh, tmp_path):
    project, _ = baseline(wh, tmp_path, source=stats_source())  # no change_columns: all
    wh.execute_script("UPDATE landing.stats SET scraped_at = TIMESTAMP '2024-01-16 00:00:00' WHERE player_lookup = 'a'")
    assert ops(detect_changes(wh, project, "player_stats", D)) == {"a": "update"}


def test_several_inputs_changed_in_any_is_changed(wh, tmp_path):
    inj = {"name": "injuries", "table": "landing.injuries", "entity": "player",
           "columns": cols("game_date:DATE", "player_lookup:STRING", "status:STRING")}
    proc = player_proc(inputs=[{"source": "stats"}, {"source": "injuries"}])
    project = load(write_project(tmp_path / "p", [proc], [stats_source(change_columns=["points"]), inj]))
    setup(wh, project, {"landing.stats": [row("a"), row("b")],
                        "landing.injuries": [{"game_date": D, "player_lookup": "b", "status": "questionable"}]})
    assert ops(detect_changes(wh, project, "player_stats", D)) == {"a": "insert", "b": "insert"}
    record_processed(wh, project, "player_stats", D, "r1", None)
    wh.execute_script("UPDATE landing.injuries SET status = 'out'")
    assert ops(detect_changes(wh, project, "player_stats", D)) == {"b": "update"}
    # an entity that appears in a second input only is still an update of an existing entity
    wh.insert_rows("landing.injuries", [{"game_date": D, "player_lookup": "a", "status": "probable"}])
    record_processed(wh, project, "player_stats", D, "r2", ["b"])
    assert ops(detect_changes(wh, project, "player_stats", D)) == {"a": "update"}
    # gone from one input but present in the other: update, not delete
    record_processed(wh, project, "player_stats", D, "r3", None)
    wh.execute_script("DELETE FROM landing.stats WHERE player_lookup = 'b'")
    cs = detect_changes(wh, project, "player_stats", D)
    assert ops(cs) == {"b": "update"} and cs.total_entities == 2


def team_project(tmp_path, wh):
    roster = {"name": "roster", "table": "landing.roster", "entity": "player",
              "columns": cols("game_date:DATE", "player_lookup:STRING", "team_abbr:STRING")}
    team = {"name": "team_stats", "phase": "analytics", "entity": "team",
            "inputs": [{"source": "stats", "compare": ["points"]}],
            "output": {"table": "team_stats", "columns": cols("game_date:DATE", "team_abbr:STRING", "points:INT64")},
            "transform": {"sql": "sql/team_stats.sql"}}
    mappings = [{"name": "roster_map", "from": "player", "to": "team", "via": "roster"}]
    project = load(write_project(tmp_path / "p", [team], [stats_source(), roster], mappings))
    setup(wh, project, {
        "landing.stats": [row("a", 10), row("b", 20), row("c", 30)],
        "landing.roster": [{"game_date": D, "player_lookup": p, "team_abbr": t} for p, t in (("a", "LAL"), ("b", "LAL"), ("c", "BOS"))],
    })
    return project


def test_mapping_player_change_marks_team_changed(wh, tmp_path):
    project = team_project(tmp_path, wh)
    first = detect_changes(wh, project, "team_stats", D)
    assert ops(first) == {"LAL": "insert", "BOS": "insert"} and first.entity_kind == "team"
    record_processed(wh, project, "team_stats", D, "r1", None)
    wh.execute_script("UPDATE landing.stats SET points = 11 WHERE player_lookup = 'a'")
    assert ops(detect_changes(wh, project, "team_stats", D)) == {"LAL": "update"}
    record_processed(wh, project, "team_stats", D, "r2", ["LAL"])
    # swapping values between two players of one team is still a change of that team
    wh.execute_script("UPDATE landing.stats SET points = CASE player_lookup WHEN 'a' THEN 20 WHEN 'b' THEN 11 ELSE points END")
    assert ops(detect_changes(wh, project, "team_stats", D)) == {"LAL": "update"}


def test_mapping_change_moves_player_between_teams(wh, tmp_path):
    project = team_project(tmp_path, wh)
    record_processed(wh, project, "team_stats", D, "r1", None)
    wh.execute_script("UPDATE landing.roster SET team_abbr = 'BOS' WHERE player_lookup = 'b'")
    assert ops(detect_changes(wh, project, "team_stats", D)) == {"LAL": "update", "BOS": "update"}
    wh.execute_script("UPDATE landing.roster SET team_abbr = 'NYK' WHERE player_lookup = 'c'")
    assert ops(detect_changes(wh, project, "team_stats", D)) == {"LAL": "update", "BOS": "update", "NYK": "insert"}


def test_detection_failure_falls_back_to_full_batch_with_reason(wh, tmp_path, caplog):
    project = load(write_project(tmp_path / "p", [player_proc()], [stats_source()]))
    # landing.stats was never created
    cs = detect_changes(wh, project, "player_stats", D)
    assert cs.full_batch and cs.has_work and cs.changes == []
    assert "landing.stats" in cs.fallback_reason and "does not exist" in cs.fallback_reason
    assert cs.to_dict()["fallback_reason"] == cs.fallback_reason
    assert any("full batch" in r.message for r in caplog.records)


def test_query_error_falls_back_too(wh, tmp_path):
    project = load(write_project(tmp_path / "p", [player_proc()], [stats_source()]))
    wh.execute_script("CREATE SCHEMA landing; CREATE TABLE landing.stats (game_date DATE, player_lookup VARCHAR)")
    cs = detect_changes(wh, project, "player_stats", D)  # compared columns missing from the real table
    assert cs.full_batch and "points" in cs.fallback_reason


def test_disabled_detection_is_full_batch_with_reason(wh, tmp_path):
    proc = player_proc(change_detection={"enabled": False})
    project = load(write_project(tmp_path / "p", [proc], [stats_source()]))
    cs = detect_changes(wh, project, "player_stats", D)
    assert cs.full_batch and "disabled" in cs.fallback_reason


def test_input_without_entity_key_changes_everything(wh, tmp_path):
    sched = {"name": "schedule", "table": "landing.schedule", "columns": cols("game_date:DATE", "home:STRING", "away:STRING")}
    proc = player_proc(inputs=[{"source": "stats"}, {"source": "schedule"}])
    project = load(write_project(tmp_path / "p", [proc], [stats_source(), sched]))
    setup(wh, project, {"landing.stats": [row("a"), row("b")], "landing.schedule": [{"game_date": D, "home": "LAL", "away": "BOS"}]})
    record_processed(wh, project, "player_stats", D, "r1", None)
    assert detect_changes(wh, project, "player_stats", D).changes == []
    wh.execute_script("UPDATE landing.schedule SET away = 'NYK'")
    cs = detect_changes(wh, project, "player_stats", D)
    assert cs.full_batch and "schedule" in cs.fallback_reason and cs.total_entities == 2


def test_entity_less_processor_runs_whole_partition_when_anything_changed(wh, tmp_path):
    proc = player_proc()
    del proc["entity"]
    project = load(write_project(tmp_path / "p", [proc], [stats_source()]))
    setup(wh, project, {"landing.stats": [row("a")]})
    cs = detect_changes(wh, project, "player_stats", D)
    assert cs.full_batch and cs.fallback_reason is None and cs.entity_kind is None
    record_processed(wh, project, "player_stats", D, "r1", None)
    assert not detect_changes(wh, project, "player_stats", D).has_work


def test_record_change_set_is_queryable(wh, tmp_path):
    project, first = baseline(wh, tmp_path)
    record_change_set(wh, project, first, "run-1", "corr-1")
    rows = wh.query("SELECT entity_key, operation, total_entities, correlation_id FROM _pipectl.change_sets ORDER BY operation, entity_key")
    assert [(r["entity_key"], r["operation"]) for r in rows] == [("a", "insert"), ("b", "insert"), ("c", "insert"), (None, "summary")]
    assert rows[-1]["total_entities"] == 3 and {r["correlation_id"] for r in rows} == {"corr-1"}


def test_change_set_statistics():
    cs = ChangeSet("p", D, "player", [EntityChange("a", "update", "x"), EntityChange("z", "delete", None)], 450, False, None)
    assert cs.changed_keys == ["a", "z"] and cs.skipped == 449 and cs.efficiency_pct == pytest.approx(100 * 449 / 450)
    d = cs.to_dict()
    assert d["partition"] == "2024-01-15" and d["updated"] == 1 and d["deleted"] == 1 and d["changed"] == 2
    full = ChangeSet("p", D, "player", [], 450, True, "why")
    assert full.skipped == 0 and full.efficiency_pct == 0.0


def test_record_with_change_set_keeps_a_change_that_landed_during_the_run(wh, tmp_path):
    project, _ = baseline(wh, tmp_path)
    wh.execute_script("UPDATE landing.stats SET points = 1 WHERE player_lookup = 'a'")
    cs = detect_changes(wh, project, "player_stats", D)
    assert ops(cs) == {"a": "update"}
    # while the run transforms, a later correction lands for the same player
    wh.execute_script("UPDATE landing.stats SET points = 2 WHERE player_lookup = 'a'")
    record_processed(wh, project, "player_stats", D, "run-2", cs.changed_keys, change_set=cs)
    assert ops(detect_changes(wh, project, "player_stats", D)) == {"a": "update"}
    # without a late change, recording the detected fingerprints leaves nothing pending
    cs = detect_changes(wh, project, "player_stats", D)
    record_processed(wh, project, "player_stats", D, "run-3", cs.changed_keys, change_set=cs)
    assert detect_changes(wh, project, "player_stats", D).changes == []


def test_record_with_change_set_forgets_deleted_and_handles_several_inputs(wh, tmp_path):
    inj = {"name": "injuries", "table": "landing.injuries", "entity": "player",
           "columns": cols("game_date:DATE", "player_lookup:STRING", "status:STRING")}
    proc = player_proc(inputs=[{"source": "stats"}, {"source": "injuries"}])
    project = load(write_project(tmp_path / "p", [proc], [stats_source(), inj]))
    setup(wh, project, {"landing.stats": [row("a"), row("b")],
                        "landing.injuries": [{"game_date": D, "player_lookup": "a", "status": "out"}]})
    cs = detect_changes(wh, project, "player_stats", D)
    record_processed(wh, project, "player_stats", D, "r1", cs.changed_keys, change_set=cs)
    assert detect_changes(wh, project, "player_stats", D).changes == []
    wh.execute_script("DELETE FROM landing.stats WHERE player_lookup = 'b'; UPDATE landing.injuries SET status = 'in'")
    cs = detect_changes(wh, project, "player_stats", D)
    assert ops(cs) == {"a": "update", "b": "delete"}
    record_processed(wh, project, "player_stats", D, "r2", cs.changed_keys, change_set=cs)
    assert detect_changes(wh, project, "player_stats", D).changes == []
