"""BigQuery specifics beyond the Warehouse conformance suite: layout, labels, MERGE, dry run."""
from __future__ import annotations

import datetime as dt
import sys
from typing import Iterator

import pytest

from framework.backends.bigquery import BigQueryWarehouse
from framework.backends.gcp_emulators import EMULATOR_PROJECT
from framework.backends.protocols import QueryParam
from framework.errors import BackendError, MissingDependencyError
from framework.manifest.model import Column, Table

COLUMNS = (Column("game_date", "DATE", "REQUIRED"), Column("player_lookup", "STRING", "REQUIRED"), Column("points", "INT64"))


@pytest.fixture
def wh() -> Iterator[BigQueryWarehouse]:
    w = BigQueryWarehouse(EMULATOR_PROJECT, timeout=60)
    yield w
    w.close()


@pytest.fixture
def table(wh: BigQueryWarehouse, uid: str) -> Table:
    wh.create_dataset(f"{uid}_analytics")
    t = Table(f"{uid}_analytics", "player_game_summary", COLUMNS, partition_by="game_date", cluster_by=("player_lookup",))
    wh.create_table(t)
    return t


def test_emulator_endpoint_comes_from_the_environment(wh: BigQueryWarehouse) -> None:
    assert wh.emulated and wh.dialect == "bigquery"


def test_tables_are_day_partitioned_and_clustered(wh: BigQueryWarehouse, table: Table) -> None:
    bq_table = wh.get_table(table.fqn)
    assert bq_table.time_partitioning.field == "game_date" and bq_table.time_partitioning.type_ == "DAY"
    assert bq_table.clustering_fields == ["player_lookup"]
    assert table.dataset in wh.list_datasets()


def test_partition_column_must_be_a_date(wh: BigQueryWarehouse, uid: str) -> None:
    wh.create_dataset(f"{uid}_x")
    with pytest.raises(BackendError, match="partition column player_lookup"):
        wh.create_table(Table(f"{uid}_x", "t", COLUMNS, partition_by="player_lookup"))


def test_job_labels_carry_processor_and_correlation_id(wh: BigQueryWarehouse, table: Table) -> None:
    labels = {"pipectl_processor": "NbacGamebookProcessor", "pipectl_correlation_id": "2026-01-15T14:00:00Z/abc"}
    job, _ = wh._run(f"SELECT COUNT(*) AS n FROM {table.fqn}", (), labels)
    assert job.labels == {"pipectl": "true", "pipectl_processor": "nbacgamebookprocessor",
                          "pipectl_correlation_id": "2026-01-15t14_00_00z_abc"}


def test_merge_rows_upserts_by_key(wh: BigQueryWarehouse, table: Table) -> None:
    d = dt.date(2026, 1, 15)
    wh.insert_rows(table.fqn, [{"game_date": d, "player_lookup": "a", "points": 1}, {"game_date": d, "player_lookup": "b", "points": 2}])
    merged = wh.merge_rows(table.fqn, [{"game_date": d, "player_lookup": "b", "points": 20}, {"game_date": d, "player_lookup": "c", "points": 3}],
                           keys=["game_date", "player_lookup"], labels={"pipectl_processor": "pgs"})
    assert merged == 2
    rows = wh.query(f"SELECT player_lookup, points FROM {table.fqn} ORDER BY player_lookup")
    assert rows == [{"player_lookup": "a", "points": 1}, {"player_lookup": "b", "points": 20}, {"player_lookup": "c", "points": 3}]
    assert [t for t in wh.list_tables(table.dataset) if t.startswith("_pipectl_stage_")] == []  # staging dropped
    with pytest.raises(BackendError, match="key column"):
        wh.merge_rows(table.fqn, [{"game_date": d}], keys=["nope"])


def test_dry_run_validates_without_running(wh: BigQueryWarehouse, table: Table) -> None:
    assert wh.dry_run(f"SELECT * FROM {table.fqn} WHERE game_date = @game_date", [QueryParam("game_date", "2026-01-15", "DATE")]) >= 0
    with pytest.raises(BackendError, match="missing_table"):
        wh.dry_run(f"SELECT * FROM {table.dataset}.missing_table")


def test_load_errors_name_the_table(wh: BigQueryWarehouse, table: Table) -> None:
    with pytest.raises(BackendError, match=table.dataset):
        wh.insert_rows(f"{table.dataset}.not_there", [{"game_date": "2026-01-15", "player_lookup": "a"}])


def test_bad_table_name_is_refused(wh: BigQueryWarehouse) -> None:
    with pytest.raises(BackendError, match="dataset.table"):
        wh.table_schema("no_dataset_here")


def test_missing_sdk_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "google.cloud.bigquery", None)
    with pytest.raises(MissingDependencyError, match=r"pipectl\[gcp\]"):
        BigQueryWarehouse(EMULATOR_PROJECT)


def test_an_unreachable_endpoint_fails_within_the_timeout_naming_the_table() -> None:
    """The client's default retry kept retrying connection errors for 600 s whatever the
    per-call timeout: a dead endpoint hung every call for ten minutes. The retries now end
    with the warehouse timeout (the thread join bound is generous, not a timing assertion)."""
    import threading

    dead = BigQueryWarehouse(EMULATOR_PROJECT, api_endpoint="http://127.0.0.1:9", timeout=2)
    outcome: list[BaseException] = []

    def call() -> None:
        try:
            dead.table_schema("nba_raw.gamebook")
        except BaseException as exc:  # noqa: BLE001 - inspected below
            outcome.append(exc)

    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    worker.join(120)
    assert not worker.is_alive(), "table_schema still retrying after 120 s with a 2 s timeout"
    assert isinstance(outcome[0], BackendError) and "did not answer within 2" in str(outcome[0])
    assert "nba_raw.gamebook" in str(outcome[0])
