"""State format 2 of change detection: the upgrade from format 1, and the row plan.

Upgrade: a warehouse whose state was written by pipectl before format 2 (one string
fingerprint per input, in ``_pipectl.processed_fingerprints``) is upgraded on first use:
each (processor, partition) it held is reprocessed in full once, with a warning and a
``fallback_reason`` saying why, then detection is incremental again; entities that
vanished meanwhile still reach the full batch (its merge replaces the partition).

Row plan: a processor with one input keyed by its entity joins the input's rows with the
state without grouping the partition by entity first; entities of several rows are
grouped after the join, and the one case it cannot decide (an entity of one row that
gained rows while keeping the old one) is seen in the same query and rerun grouped. Its
results must equal the grouped plan's.
"""
from __future__ import annotations

import datetime as dt
import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framework.backends.duckdb import DuckDBWarehouse
from framework.project import load
from framework.run.changes import _change_set, _detect_rows, _undecided, detect_changes, record_processed
from framework.sql.context import STATE_FORMAT
from tests.unit.run.test_changes import D, baseline, ops, player_proc, row, stats_source, write_project

LEGACY_DDL = """
CREATE SCHEMA IF NOT EXISTS _pipectl;
CREATE TABLE _pipectl.processed_fingerprints (
  processor VARCHAR NOT NULL, input_name VARCHAR NOT NULL, partition_key VARCHAR NOT NULL,
  entity_key VARCHAR NOT NULL, fingerprint VARCHAR, run_id VARCHAR, processed_at TIMESTAMP);
"""


def legacy_state(wh, processor: str, entities: list[str], day: dt.date = D, inputs=("stats",)) -> None:
    """State as pipectl wrote it before format 2: one 'rows:sum' string per input and entity."""
    wh.execute_script(LEGACY_DDL)
    wh.insert_rows("_pipectl.processed_fingerprints", [
        {"processor": processor, "input_name": i, "partition_key": day.isoformat(), "entity_key": e,
         "fingerprint": "1:12345", "run_id": "old-run", "processed_at": dt.datetime(2024, 1, 1)}
        for e in entities for i in inputs])


@pytest.fixture
def wh():
    w = DuckDBWarehouse(":memory:")
    yield w
    w.close()


def _project(wh, tmp_path, rows):
    project = load(write_project(tmp_path / "p", [player_proc()], [stats_source(change_columns=["points", "minutes"])]))
    wh.create_table(project.sources["stats"].table)
    wh.insert_rows("landing.stats", rows)
    return project


def test_format_1_state_reprocesses_each_partition_once_then_incremental(wh, tmp_path, caplog):
    project = _project(wh, tmp_path, [row("a"), row("b"), row("c")])
    legacy_state(wh, "player_stats", ["a", "b", "gone"])  # 'gone' was processed, has no rows now
    legacy_state_other_day = D + dt.timedelta(days=1)
    wh.insert_rows("_pipectl.processed_fingerprints", [
        {"processor": "player_stats", "input_name": "stats", "partition_key": legacy_state_other_day.isoformat(),
         "entity_key": "a", "fingerprint": "1:1", "run_id": "old-run", "processed_at": dt.datetime(2024, 1, 1)}])
    with caplog.at_level(logging.WARNING, logger="framework.run.changes"):
        cs = detect_changes(wh, project, "player_stats", D)
    # upgraded: the old table is gone, its entities are kept with their old format
    assert "processed_fingerprints" not in wh.list_tables("_pipectl")
    kept = wh.query("SELECT partition_key, entity_key, fingerprint, state_format FROM _pipectl.entity_fingerprints "
                    "ORDER BY partition_key, entity_key")
    assert [(r["partition_key"], r["entity_key"], r["fingerprint"], r["state_format"]) for r in kept] == [
        ("2024-01-15", "a", None, 1), ("2024-01-15", "b", None, 1), ("2024-01-15", "gone", None, 1), ("2024-01-16", "a", None, 1)]
    # one full reprocess of the partition, said loudly
    assert cs.full_batch and "older state format" in cs.fallback_reason and cs.total_entities == 3
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "state format 1" in messages and "full batch" in messages
    record_processed(wh, project, "player_stats", D, "run-1", None)
    # then incremental: nothing changed, and a change is one entity
    assert detect_changes(wh, project, "player_stats", D).changes == []
    wh.execute_script("UPDATE landing.stats SET points = 99 WHERE player_lookup = 'b'")
    again = detect_changes(wh, project, "player_stats", D)
    assert ops(again) == {"b": "update"} and not again.full_batch
    # the other partition still holds format-1 state: its own full reprocess, once
    other = detect_changes(wh, project, "player_stats", legacy_state_other_day)
    assert other.full_batch and "older state format" in other.fallback_reason


def test_upgrade_is_idempotent_and_keeps_partitions_already_in_format_2(wh, tmp_path):
    from framework.sql.render import render_state_upgrade

    project, _ = baseline(wh, tmp_path)  # format 2 state for D
    legacy_state(wh, "player_stats", ["a", "x"])  # an old copy of the same partition (must not win)
    wh.insert_rows("_pipectl.processed_fingerprints", [
        {"processor": "other_proc", "input_name": "s", "partition_key": D.isoformat(), "entity_key": "k",
         "fingerprint": "1:1", "run_id": "old", "processed_at": dt.datetime(2024, 1, 1)}])
    script = render_state_upgrade(project, "duckdb").sql
    wh.execute_script(script.replace("DROP TABLE _pipectl.processed_fingerprints;", ""))  # as if the DROP had failed
    wh.execute_script(script)  # retried: nothing copied twice
    rows = wh.query("SELECT processor, entity_key, state_format FROM _pipectl.entity_fingerprints ORDER BY 1, 2")
    assert [(r["processor"], r["entity_key"], r["state_format"]) for r in rows] == [
        ("other_proc", "k", 1), ("player_stats", "a", STATE_FORMAT), ("player_stats", "b", STATE_FORMAT), ("player_stats", "c", STATE_FORMAT)]
    assert detect_changes(wh, project, "player_stats", D).changes == []


def test_multi_input_format_1_state_upgrades_to_one_row_per_entity(wh, tmp_path):
    project = load(write_project(tmp_path / "p", [player_proc(inputs=[{"source": "stats"}, {"source": "extra"}])],
                                 [stats_source(), stats_source("extra")]))
    for src in project.sources.values():
        wh.create_table(src.table)
    wh.insert_rows("landing.stats", [row("a")])
    legacy_state(wh, "player_stats", ["a"], inputs=("stats", "extra"))
    cs = detect_changes(wh, project, "player_stats", D)
    assert cs.full_batch and cs.total_entities == 1
    assert wh.query("SELECT COUNT(*) AS n FROM _pipectl.entity_fingerprints")[0]["n"] == 1


def _plan(wh, project, grouped: bool):
    proc = project.processors["player_stats"]
    rows, one_row = _detect_rows(wh, project, proc, D, grouped=grouped)
    return _change_set(project, proc, D, rows), one_row


def test_row_plan_is_used_and_equals_the_grouped_plan(wh, tmp_path):
    project, first = baseline(wh, tmp_path)
    wh.execute_script("UPDATE landing.stats SET points = 7 WHERE player_lookup = 'a'; DELETE FROM landing.stats WHERE player_lookup = 'c'")
    wh.insert_rows("landing.stats", [row("d")])
    fast, by_row = _plan(wh, project, grouped=False)
    slow, grouped_by_row = _plan(wh, project, grouped=True)
    assert by_row and not grouped_by_row
    assert ops(fast) == {"a": "update", "c": "delete", "d": "insert"}
    assert fast.changes == slow.changes and fast.total_entities == slow.total_entities == 3
    # the fingerprints the row plan reports are the ones record stores (grouped): recording
    # what detection saw leaves nothing pending
    record_processed(wh, project, "player_stats", D, "run-2", fast.changed_keys, change_set=fast)
    assert detect_changes(wh, project, "player_stats", D).changes == []


def test_row_plan_decides_entities_of_several_rows_in_one_query(wh, tmp_path):
    project, _ = baseline(wh, tmp_path, rows=[row("a", 1), row("a", 2), row("b", 3)])
    rows, by_row = _detect_rows(wh, project, project.processors["player_stats"], D, grouped=False)
    assert by_row and not _undecided(rows)
    assert _change_set(project, project.processors["player_stats"], D, rows).changes == []
    for edit, expected in [("INSERT INTO landing.stats SELECT * FROM landing.stats WHERE player_lookup = 'a' AND points = 2", {"a": "update"}),
                           ("DELETE FROM landing.stats WHERE player_lookup = 'a' AND points = 1", {"a": "update"}),
                           ("INSERT INTO landing.stats SELECT game_date, 'n', 5, minutes, scraped_at FROM landing.stats LIMIT 2", {"a": "update", "n": "insert"})]:
        wh.execute_script(edit)
        rows, by_row = _detect_rows(wh, project, project.processors["player_stats"], D, grouped=False)
        cs = _change_set(project, project.processors["player_stats"], D, rows)
        assert by_row and not _undecided(rows) and ops(cs) == expected
        assert cs.changes == _plan(wh, project, grouped=True)[0].changes


@pytest.mark.parametrize("edit", ["duplicate_of_unchanged", "second_differing_row"])
def test_row_plan_reruns_grouped_when_an_entity_of_one_row_gains_rows(wh, tmp_path, edit, caplog):
    project, _ = baseline(wh, tmp_path)
    wh.insert_rows("landing.stats", {"duplicate_of_unchanged": [row("a")], "second_differing_row": [row("b", 77)]}[edit])
    expected = {"duplicate_of_unchanged": {"a": "update"}, "second_differing_row": {"b": "update"}}[edit]
    fast_rows, by_row = _detect_rows(wh, project, project.processors["player_stats"], D, grouped=False)
    assert by_row and _undecided(fast_rows)  # the row plan sees it cannot decide
    with caplog.at_level(logging.INFO, logger="framework.run.changes"):
        cs = detect_changes(wh, project, "player_stats", D)
    assert ops(cs) == expected and not cs.full_batch
    assert "grouped plan" in caplog.text
    assert cs.changes == _plan(wh, project, grouped=True)[0].changes
    record_processed(wh, project, "player_stats", D, "run-2", cs.changed_keys, change_set=cs)
    assert detect_changes(wh, project, "player_stats", D).changes == []


keys = st.sampled_from([f"p{i}" for i in range(8)])
values = st.one_of(st.none(), st.integers(0, 3))
rows_of = st.lists(st.tuples(keys, values), max_size=14)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(before=rows_of, after=rows_of, kept=st.integers(0, 14))
def test_row_plan_equals_grouped_plan_on_random_edits(tmp_path_factory, before, after, kept):
    """Differential: on random rows (one or several per entity, duplicates), the row plan,
    and detect_changes with its rerun, give exactly the grouped plan's change-set and
    fingerprints."""
    project = load(write_project(tmp_path_factory.mktemp("rows"), [player_proc()], [stats_source(change_columns=["points"])]))
    after = before[:kept] + after  # many entities unchanged, some edited
    with DuckDBWarehouse(":memory:") as wh:
        wh.create_table(project.sources["stats"].table)
        wh.insert_rows("landing.stats", [row(k, v) for k, v in before])
        record_processed(wh, project, "player_stats", D, "r1", None)
        wh.execute_script("DELETE FROM landing.stats")
        wh.insert_rows("landing.stats", [row(k, v) for k, v in after])
        grouped, _ = _plan(wh, project, grouped=True)
        rows, by_row = _detect_rows(wh, project, project.processors["player_stats"], D, grouped=False)
        if not _undecided(rows):
            fast = _change_set(project, project.processors["player_stats"], D, rows)
            assert fast.changes == grouped.changes and fast.total_entities == grouped.total_entities
        cs = detect_changes(wh, project, "player_stats", D)
        assert cs.changes == grouped.changes and cs.total_entities == grouped.total_entities == len({k for k, _ in after})
