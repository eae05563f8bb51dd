"""The BigQuery templates, executed: change detection, record and MERGE on the BigQuery
emulator (bqemulator, started by .ci/emulators.sh). Marked ``gcp``; it fails with the start
command when the emulator is down, or skips under PIPECTL_SKIP_GCP=1 (tests/gcp_support.py).

The golden fixture project is copied with per-run dataset names and a random partition date,
because the emulator is shared between tests and runs.
"""
from __future__ import annotations

import datetime as dt
import random
import shutil
import uuid
from pathlib import Path

import pytest

from framework.project import load
from framework.run.changes import detect_changes, record_change_set, record_processed
from framework.sql.render import query_params, render_statement

pytestmark = pytest.mark.gcp
GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "project"
ORDER = ("player_boxscores", "rosters", "team_summary", "player_summary")


@pytest.fixture
def bq_project(tmp_path):
    from gcp_support import require_emulators

    require_emulators("bigquery")
    uid = f"t{uuid.uuid4().hex[:8]}"
    root = tmp_path / "project"
    shutil.copytree(GOLDEN, root)
    text = (root / "processors.yaml").read_text()
    text = text.replace("landing.", f"{uid}_landing.").replace("dataset: raw", f"dataset: {uid}_raw")
    (root / "processors.yaml").write_text(text.replace("dataset: analytics", f"dataset: {uid}_analytics"))
    return load(root), uid


def test_detect_record_merge_on_bigquery(bq_project):
    from framework.backends.bigquery import BigQueryWarehouse
    from framework.backends.gcp_emulators import EMULATOR_PROJECT

    project, uid = bq_project
    day = dt.date(2030, 1, 1) + dt.timedelta(days=random.randrange(3000))
    wh = BigQueryWarehouse(EMULATOR_PROJECT, timeout=60)
    p = query_params(project, ("game_date",), day)
    for src in project.sources.values():
        wh.create_dataset(src.table.dataset)
        wh.create_table(src.table)
    for proc in project.processors.values():
        wh.execute_script(render_statement(project, proc, "ddl", "bigquery").sql)
    wh.insert_rows(f"{uid}_landing.boxscores", [
        {"game_date": day, "player_lookup": k, "team_abbr": t, "points": n, "minutes": 30.0, "scraped_at": dt.datetime(2030, 1, 1)}
        for k, t, n in (("a", "LAL", 10), ("b", "LAL", 20), ("c", "BOS", 30))])
    wh.insert_rows(f"{uid}_landing.rosters", [{"game_date": day, "player_lookup": k, "team_abbr": t}
                                              for k, t in (("a", "LAL"), ("b", "LAL"), ("c", "BOS"))])

    def run(name: str) -> dict:
        cs = detect_changes(wh, project, name, day)
        assert not cs.full_batch or cs.fallback_reason is None, cs.fallback_reason
        if cs.changes:
            r = render_statement(project, name, "merge", "bigquery")
            wh.execute_script(r.sql, query_params(project, r.params, day, cs.changed_keys))
            record_processed(wh, project, name, day, "run", cs.changed_keys, change_set=cs)
            record_change_set(wh, project, cs, "run", "corr")
        return {c.key: c.operation for c in cs.changes}

    assert [run(n) for n in ORDER] == [{"a": "insert", "b": "insert", "c": "insert"}] * 2 + [
        {"LAL": "insert", "BOS": "insert"}, {"a": "insert", "b": "insert", "c": "insert"}]
    assert [run(n) for n in ORDER] == [{}, {}, {}, {}]
    wh.execute_script(f"UPDATE {uid}_landing.boxscores SET points = 11 WHERE player_lookup = 'a' AND game_date = @game_date", p)
    wh.execute_script(f"UPDATE {uid}_landing.boxscores SET minutes = 1 WHERE player_lookup = 'c' AND game_date = @game_date", p)
    wh.execute_script(f"DELETE FROM {uid}_landing.boxscores WHERE player_lookup = 'b' AND game_date = @game_date", p)
    changed = {n: run(n) for n in ORDER}
    assert changed["player_boxscores"] == {"a": "update", "b": "delete", "c": "update"}
    assert changed["team_summary"] == {"LAL": "update"}  # team compares points only: c's minutes do not count
    assert changed["rosters"] == {}
    rows = wh.query(f"SELECT team_abbr, team_points FROM {uid}_analytics.team_summary WHERE game_date = @game_date ORDER BY 1", p)
    assert rows == [{"team_abbr": "BOS", "team_points": 30}, {"team_abbr": "LAL", "team_points": 11}]
    assert [run(n) for n in ORDER] == [{}, {}, {}, {}]
    # a run that failed after recording un-records its fingerprints: its entities look new again
    from framework.run.changes import forget_processed

    forget_processed(wh, project, "player_boxscores", day, "run")
    assert run("player_boxscores") == {"a": "insert", "c": "insert"}


def test_state_upgrade_and_one_row_plan_on_bigquery(bq_project):
    """Format-1 state on BigQuery: upgraded on first use (one full reprocess of the partition,
    then incremental); the row plan and its rerun as grouped when an entity of one row
    gains a row. Under a per-test dataset prefix, so the shared emulator's _pipectl is not touched."""
    from framework.backends.bigquery import BigQueryWarehouse
    from framework.backends.gcp_emulators import EMULATOR_PROJECT
    from framework.manifest.prefix import with_prefixes
    from framework.sql.context import legacy_state_table, state_table

    base, uid = bq_project
    project = with_prefixes(base, dataset_prefix=f"{uid}_")
    day = dt.date(2030, 1, 1) + dt.timedelta(days=random.randrange(3000))
    wh = BigQueryWarehouse(EMULATOR_PROJECT, timeout=60)
    p = query_params(project, ("game_date",), day)
    src = project.sources["boxscores_landing"].table
    wh.create_dataset(src.dataset)
    wh.create_table(src)
    wh.insert_rows(src.fqn, [{"game_date": day, "player_lookup": k, "team_abbr": "LAL", "points": n, "minutes": 30.0,
                              "scraped_at": dt.datetime(2030, 1, 1)} for k, n in (("a", 10), ("b", 20))])
    legacy = legacy_state_table(project)
    wh.create_dataset(legacy.split(".")[0])
    wh.execute_script(f"CREATE TABLE {legacy} (processor STRING NOT NULL, input_name STRING NOT NULL, "
                      "partition_key STRING NOT NULL, entity_key STRING NOT NULL, fingerprint STRING, run_id STRING, "
                      "processed_at TIMESTAMP)")
    wh.insert_rows(legacy, [{"processor": "player_boxscores", "input_name": "boxscores_landing", "partition_key": day.isoformat(),
                             "entity_key": k, "fingerprint": "1:42", "run_id": "old", "processed_at": dt.datetime(2030, 1, 1)}
                            for k in ("a", "b", "gone")])
    cs = detect_changes(wh, project, "player_boxscores", day)
    assert cs.full_batch and "older state format" in cs.fallback_reason and cs.total_entities == 2
    assert wh.table_schema(legacy) is None and wh.table_schema(state_table(project)) is not None
    record_processed(wh, project, "player_boxscores", day, "run-1", None)
    assert detect_changes(wh, project, "player_boxscores", day).changes == []
    wh.execute_script(f"UPDATE {src.fqn} SET points = 11 WHERE player_lookup = 'a' AND game_date = @game_date", p)
    cs = detect_changes(wh, project, "player_boxscores", day)
    assert {c.key: c.operation for c in cs.changes} == {"a": "update"} and not cs.full_batch
    record_processed(wh, project, "player_boxscores", day, "run-2", cs.changed_keys, change_set=cs)
    assert detect_changes(wh, project, "player_boxscores", day).changes == []
    # a second row for b: the row plan cannot decide it and reruns the grouped plan
    wh.insert_rows(src.fqn, [{"game_date": day, "player_lookup": "b", "team_abbr": "LAL", "points": 20, "minutes": 30.0,
                              "scraped_at": dt.datetime(2030, 1, 2)}])
    cs = detect_changes(wh, project, "player_boxscores", day)
    assert {c.key: c.operation for c in cs.changes} == {"b": "update"}
    record_processed(wh, project, "player_boxscores", day, "run-3", cs.changed_keys, change_set=cs)
    assert detect_changes(wh, project, "player_boxscores", day).changes == []
