"""A run's write as one script (framework.run.script_write) without BigQuery: what the runner
sends to a warehouse whose statements are jobs (one script, values only as parameters, the
fingerprints and the change-set inside the write's transaction) and what it reads back.
The same path runs on the BigQuery emulator in tests/integration/gcp/test_jobs_bigquery.py."""
from __future__ import annotations

from typing import Any

from framework.backends.duckdb import DuckDBWarehouse
from framework.project import load
from framework.run import script_write
from framework.run.changes import ChangeSet, EntityChange
from framework.run.decisions import EntityDecision
from framework.run.runner_io import record_processed_and_changes
from framework.sql.context import changeset_table, state_table
from tests.projects import TOPICS, write_project
from tests.unit.run.test_candidates import DAY, FILES, MANIFEST


class ScriptWarehouse:
    """Answers ``run_script`` with canned rows of the script's last SELECT; keeps each call."""

    dialect = "bigquery"

    def __init__(self, project: Any, rows: list[dict[str, Any]]) -> None:
        self.calls: list[tuple[str, list]] = []
        self.rows = rows
        self.state = {state_table(project).split(".")[1], changeset_table(project).split(".")[1]}

    def list_tables(self, dataset: str) -> list[str]:
        return sorted(self.state)

    def run_script(self, sql: str, params: Any = (), labels: Any = None) -> list[dict[str, Any]]:
        self.calls.append((sql, list(params)))
        return self.rows


def _row(key: str | None, before: int | None, after: int | None, total: int | None = None) -> dict[str, Any]:
    return {"entity_key": key, "before_rows": before, "before_fingerprint": None if before is None else "11",
            "after_rows": after, "after_fingerprint": None if after is None else ("11" if key == "c2" else "22"),
            "partition_rows": total}


def test_a_selective_run_from_change_sets_is_one_script(tmp_path) -> None:
    project = load(write_project(tmp_path / "shop", MANIFEST, TOPICS, FILES))
    proc = project.processors["orders_raw"]  # read by two processors: its write is measured
    wh = ScriptWarehouse(project, [_row("c1", 1, 1), _row("c2", 1, 1), _row("c9", None, 1), _row("c8", 1, None),
                                   _row(None, None, None, 7)])
    ids = ["c1", "c2", "c8", "c9"]
    cs = ChangeSet(proc.name, DAY, proc.entity, [EntityChange(k, "update", None) for k in ids], 4)
    decision = EntityDecision(False, ids, total=4, change_set=cs, source="change-sets")
    assert script_write.applies(wh, project, proc, ids)
    rows = script_write.write_run(wh, project, proc, DAY, ids, "run1", decision, "corr1")
    [(sql, params)] = wh.calls
    assert sql.count("BEGIN TRANSACTION;") == 1 and sql.count("COMMIT TRANSACTION;") == 1
    assert sql.index("MERGE") < sql.index(f"DELETE FROM {state_table(project)}") < sql.index(f"INSERT INTO {changeset_table(project)}") \
        < sql.index("COMMIT TRANSACTION")
    assert "'c1'" not in sql and DAY not in sql  # values travel as parameters only
    # entities from upstream change-sets are recorded with an unknown fingerprint, no input read
    assert "CAST(NULL AS INT64)" in sql and "UNNEST(@pipectl_keys)" in sql and "current_fingerprints" not in sql
    by_name = {p.name: p for p in params}
    assert by_name["entity_ids"].value == ids and by_name["pipectl_keys"].value == ids
    assert by_name["pipectl_correlation_id"].value == "corr1" and by_name["run_id"].value == "run1"
    # what the script's last SELECT said: c1 changed, c2 did not, c9 is new, c8 gone
    assert rows == 3 and decision.rows_total == 7 and decision.recorded
    assert decision.written == ["c1", "c8", "c9"]
    assert {c.key: c.operation for c in decision.change_set.changes} == {"c1": "update", "c2": "update",
                                                                         "c8": "delete", "c9": "insert"}
    # the runner's own record step then sends nothing
    record_processed_and_changes(wh, project, proc, DAY, "run1", ids, decision, "corr1")
    assert len(wh.calls) == 1


def test_a_full_batch_lists_the_partition_entities_and_rows(tmp_path) -> None:
    project = load(write_project(tmp_path / "shop", MANIFEST, TOPICS, FILES))
    proc = project.processors["customer_totals"]
    wh = ScriptWarehouse(project, [_row("c2", None, 2), _row("c1", None, 1), _row(None, None, None, 3)])
    decision = EntityDecision(True, [], fallback_reason="full batch requested")
    assert script_write.write_run(wh, project, proc, DAY, None, "run2", decision, None) == 3
    assert decision.entities_after == ["c1", "c2"] and decision.rows_total == 3
    [(sql, params)] = wh.calls
    assert "entity_ids" not in {p.name for p in params} and "change_sets" not in sql  # no change-set: none given


def test_warehouses_with_returning_or_without_scripts_write_as_before(tmp_path) -> None:
    project = load(write_project(tmp_path / "shop", MANIFEST, TOPICS, FILES))
    proc = project.processors["customer_totals"]
    assert not script_write.applies(DuckDBWarehouse(":memory:"), project, proc, ["c1"])
    big = ScriptWarehouse(project, [])
    assert not script_write.applies(big, project, proc, [f"c{i}" for i in range(script_write.MAX_SCRIPT_ENTITIES + 1)])
