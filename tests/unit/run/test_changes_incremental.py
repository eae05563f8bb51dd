"""Incremental equals full recompute: run the golden fixture project on DuckDB through the
rendered merge statements, edit the landing rows, reprocess only the detected entities, and
compare every output table with a from-scratch full batch of the same landing data.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from framework.backends.duckdb import DuckDBWarehouse
from framework.project import load
from framework.run.changes import detect_changes, record_processed
from framework.sql.render import query_params, render_statement

PROJECT = Path(__file__).resolve().parents[2] / "golden" / "project"
D = dt.date(2024, 1, 15)
ORDER = ("player_boxscores", "rosters", "player_summary", "team_summary")


def landing(wh, project, box, roster, schedule):
    for src in project.sources.values():
        wh.create_table(src.table)
        wh.execute_script(f"DELETE FROM {src.table.fqn}")
    wh.insert_rows("landing.boxscores", [{"game_date": D, "player_lookup": p, "team_abbr": t, "points": pts, "minutes": 30.0,
                                          "scraped_at": dt.datetime(2024, 1, 15)} for p, t, pts in box])
    wh.insert_rows("landing.rosters", [{"game_date": D, "player_lookup": p, "team_abbr": t} for p, t in roster])
    wh.insert_rows("landing.schedule", [{"game_date": D, "home": h, "away": a, "order": i} for i, (h, a) in enumerate(schedule)])


def run(wh, project, name, selective: bool) -> dict:
    proc = project.processors[name]
    wh.create_table(proc.output)
    cs = detect_changes(wh, project, name, D)
    full = not selective or cs.full_batch or proc.entity is None
    if not full and not cs.changes:
        return cs.to_dict()
    r = render_statement(project, name, "merge", "duckdb", full_batch=full)
    key_type = project.entity_kinds[proc.entity].type if proc.entity else "STRING"
    wh.execute_script(r.sql, query_params(project, r.params, D, None if full else cs.changed_keys, key_type))
    record_processed(wh, project, name, D, "run", None if full else cs.changed_keys)
    return cs.to_dict()


def snapshot(wh, project) -> dict:
    out = {}
    for name in ORDER:
        cols = [c for c in project.processors[name].output.column_names if c != "processed_at"]
        out[name] = sorted(tuple(r.values()) for r in wh.query(f"SELECT {', '.join(cols)} FROM {project.processors[name].output.fqn}"))
    return out


def test_selective_runs_equal_full_recompute():
    project = load(PROJECT)
    box = [("a", "LAL", 10), ("b", "LAL", 20), ("c", "BOS", 30), ("d", "BOS", 5)]
    roster = [("a", "LAL"), ("b", "LAL"), ("c", "BOS"), ("d", "BOS")]
    schedule = [("LAL", "BOS")]
    with DuckDBWarehouse(":memory:") as wh:
        landing(wh, project, box, roster, schedule)
        for name in ORDER:
            run(wh, project, name, selective=False)
        # 2 PM: one stat correction, one player dropped from the box score, one traded
        box2 = [("a", "LAL", 12), ("b", "LAL", 20), ("c", "BOS", 30)]
        roster2 = [("a", "LAL"), ("b", "BOS"), ("c", "BOS"), ("d", "BOS")]
        landing(wh, project, box2, roster2, schedule)
        stats = {name: run(wh, project, name, selective=True) for name in ORDER}
        incremental = snapshot(wh, project)
    with DuckDBWarehouse(":memory:") as fresh:
        landing(fresh, project, box2, roster2, schedule)
        for name in ORDER:
            run(fresh, project, name, selective=False)
        assert incremental == snapshot(fresh, project)
    assert {c["key"]: c["operation"] for c in stats["player_boxscores"]["changes"]} == {"a": "update", "d": "delete"}
    assert stats["player_boxscores"]["skipped"] == 2
    assert {c["key"] for c in stats["team_summary"]["changes"]} == {"LAL", "BOS"}
    assert {c["key"]: c["operation"] for c in stats["rosters"]["changes"]} == {"b": "update"}


def test_filter_statements_select_the_rows_a_selective_run_reads():
    from framework.backends.duckdb import split_statements

    project = load(PROJECT)
    with DuckDBWarehouse(":memory:") as wh:
        landing(wh, project, [("a", "LAL", 1), ("b", "LAL", 2), ("c", "BOS", 3)], [("a", "LAL"), ("b", "LAL"), ("c", "BOS")], [("LAL", "BOS")])
        for name in ORDER:
            run(wh, project, name, selective=False)
        r = render_statement(project, "team_summary", "filter", "duckdb")
        params = query_params(project, r.params, D, ["BOS"])
        boxscores, rosters = (wh.query(s, params) for s in split_statements(r.sql))
        assert [row["player_lookup"] for row in boxscores] == ["c"] and [row["player_lookup"] for row in rosters] == ["c"]
        r = render_statement(project, "player_summary", "filter", "duckdb")
        boxscores, schedule = (wh.query(s, query_params(project, r.params, D, ["a", "b"])) for s in split_statements(r.sql))
        assert sorted(row["player_lookup"] for row in boxscores) == ["a", "b"] and len(schedule) == 1  # keyless: whole partition
