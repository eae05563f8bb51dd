"""Property: for random tables and random edits, the detected change-set is exactly the set
of entities whose compared columns differ (as multisets of rows), with the right operation.
"""
from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framework.backends.duckdb import DuckDBWarehouse
from framework.project import load
from framework.run.changes import detect_changes, record_processed

D = dt.date(2024, 3, 1)
KEYS = [f"p{i}" for i in range(6)]

rows_strategy = st.lists(
    st.tuples(
        st.sampled_from(KEYS),
        st.one_of(st.none(), st.integers(-2, 2)),                 # a: compared
        st.one_of(st.none(), st.sampled_from(["", "x", "y"])),    # b: compared
        st.one_of(st.none(), st.integers(0, 3)),                  # c: NOT compared
    ),
    max_size=12,
)


def _project(root: Path, two_inputs: bool = False):
    doc = {
        "version": 1, "project": "prop", "partition": {"column": "game_date", "type": "DATE"},
        "entity_kinds": {"player": {"key": "player_lookup"}},
        "sources": [{"name": "src", "table": "landing.src", "entity": "player", "change_columns": ["a", "b"],
                     "columns": [{"name": "game_date", "type": "DATE"}, {"name": "player_lookup", "type": "STRING"},
                                 {"name": "a", "type": "INT64"}, {"name": "b", "type": "STRING"}, {"name": "c", "type": "INT64"}]}],
        "phases": [{"name": "raw", "order": 1, "dataset": "raw"}],
        "processors": [{"name": "proc", "phase": "raw", "entity": "player", "inputs": [{"source": "src"}],
                        "output": {"table": "out", "columns": [{"name": "game_date", "type": "DATE"}, {"name": "player_lookup", "type": "STRING"}]},
                        "transform": {"sql": "t.sql"}}],
    }
    if two_inputs:
        other = dict(doc["sources"][0], name="src2", table="landing.src2")
        doc["sources"].append(other)
        doc["processors"][0]["inputs"].append({"source": "src2"})
    root.mkdir(parents=True, exist_ok=True)
    (root / "processors.yaml").write_text(yaml.safe_dump(doc))
    (root / "topics.yaml").write_text("version: 1\ntopics: []\n")
    (root / "t.sql").write_text("SELECT 1 AS x")
    return load(root)


def _load(wh: DuckDBWarehouse, rows: list[tuple], table: str = "landing.src") -> None:
    wh.execute_script(f"DELETE FROM {table}")
    wh.insert_rows(table, [{"game_date": D, "player_lookup": k, "a": a, "b": b, "c": c} for k, a, b, c in rows])


def _expected(before: list[tuple], after: list[tuple]) -> dict[str, str]:
    out = {}
    for key in KEYS:
        old = Counter((a, b) for k, a, b, _ in before if k == key)
        new = Counter((a, b) for k, a, b, _ in after if k == key)
        if not old and new:
            out[key] = "insert"
        elif old and not new:
            out[key] = "delete"
        elif old != new:
            out[key] = "update"
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(before=rows_strategy, after=rows_strategy, edits=st.lists(st.tuples(st.integers(0, 11), st.integers(-2, 2)), max_size=4))
def test_detected_changes_equal_entities_whose_compared_columns_differ(tmp_path_factory, before, after, edits):
    project = _project(tmp_path_factory.mktemp("prop"))
    # "after" mixes small edits of "before" (mostly unchanged rows) with random new rows
    edited = list(before)
    for index, value in edits:
        if edited:
            k, a, b, c = edited[index % len(edited)]
            edited[index % len(edited)] = (k, a, b, value) if value % 2 else (k, value, b, c)
    edited += after[: len(after) // 3]
    with DuckDBWarehouse(":memory:") as wh:
        for src in project.sources.values():
            wh.create_table(src.table)
        _load(wh, before)
        record_processed(wh, project, "proc", D, "r1", None)
        _load(wh, edited)
        cs = detect_changes(wh, project, "proc", D)
        assert not cs.full_batch, cs.fallback_reason
        assert {c.key: c.operation for c in cs.changes} == _expected(before, edited)
        assert cs.total_entities == len({k for k, *_ in edited})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(a1=rows_strategy, a2=rows_strategy, b1=rows_strategy, b2=rows_strategy)
def test_two_inputs_changed_in_any_is_changed(tmp_path_factory, a1, a2, b1, b2):
    project = _project(tmp_path_factory.mktemp("prop2"), two_inputs=True)
    a2 = a1[: len(a1) // 2] + a2[: len(a2) // 3]  # keep many rows unchanged
    b2 = b1[len(b1) // 2:] + b2[: len(b2) // 3]
    with DuckDBWarehouse(":memory:") as wh:
        for src in project.sources.values():
            wh.create_table(src.table)
        _load(wh, a1), _load(wh, b1, "landing.src2")
        record_processed(wh, project, "proc", D, "r1", None)
        _load(wh, a2), _load(wh, b2, "landing.src2")
        cs = detect_changes(wh, project, "proc", D)
    ea, eb = _expected(a1, a2), _expected(b1, b2)
    before = {k for k, *_ in a1 + b1}
    after = {k for k, *_ in a2 + b2}
    expected = {}
    for key in set(ea) | set(eb):
        expected[key] = "insert" if key not in before else "delete" if key not in after else "update"
    assert {c.key: c.operation for c in cs.changes} == expected
    assert cs.total_entities == len(after)
