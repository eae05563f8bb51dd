"""Warehouse conformance: DuckDB (embedded) and BigQuery (bqemulator) behave the same.

SQL differs per dialect only where the dialects do (parameter sigil, UNNEST form); each test
spells its statement through ``W.sql()``. The BigQuery variant needs the emulator
(``bash .ci/emulators.sh start``) and fails with that instruction when it is down, unless
``PIPECTL_SKIP_GCP=1`` (never set in CI).
"""
from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

from framework.backends.protocols import QueryParam, Warehouse
from framework.errors import BackendError
from framework.manifest.model import Column, Table
from gcp_support import require_emulators


@dataclass
class W:
    wh: Any
    dataset: str

    def sql(self, text: str) -> str:
        """``:name`` -> the dialect's parameter; ``IN_IDS(:x)`` -> membership in an array param."""
        sigil = "@" if self.wh.dialect == "bigquery" else "$"
        if self.wh.dialect == "bigquery":
            text = text.replace("IN_IDS(:", "IN UNNEST(:")
        else:
            text = text.replace("IN_IDS(:", "IN (SELECT UNNEST(:")
            text = text.replace("UNNEST(:ids)", "UNNEST(:ids))")
        return text.replace(":", sigil).replace("DS.", f"{self.dataset}.")


def _duckdb(tmp_path: Path) -> Any:
    from framework.backends.duckdb import DuckDBWarehouse

    return DuckDBWarehouse(tmp_path / "wh.duckdb")


def _bigquery(tmp_path: Path) -> Any:
    require_emulators("bigquery")
    from framework.backends.bigquery import BigQueryWarehouse

    return BigQueryWarehouse("test-project", timeout=60)


FACTORIES = {"duckdb": _duckdb, "bigquery": _bigquery}


@pytest.fixture(params=[pytest.param("duckdb"), pytest.param("bigquery", marks=pytest.mark.gcp)])
def w(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[W]:
    wh = FACTORIES[request.param](tmp_path)
    dataset = f"conf_{uuid.uuid4().hex[:8]}"
    wh.create_dataset(dataset)
    yield W(wh, dataset)
    wh.close()


COLUMNS = (
    Column("game_date", "DATE", "REQUIRED"),
    Column("player_lookup", "STRING", "REQUIRED"),
    Column("points", "INT64"),
    Column("minutes", "FLOAT64"),
    Column("starter", "BOOL"),
    Column("tags", "STRING", "REPEATED"),
)
ROWS = [
    {"game_date": dt.date(2026, 1, 15), "player_lookup": "lebronjames", "points": 31, "minutes": 35.5, "starter": True, "tags": ["a", "b"]},
    {"game_date": dt.date(2026, 1, 15), "player_lookup": "stephencurry", "points": 28, "minutes": 33.0, "starter": True, "tags": []},
    {"game_date": dt.date(2026, 1, 16), "player_lookup": "lebronjames", "points": None, "minutes": None, "starter": False, "tags": ["c"]},
]


def _stats(w: W) -> Table:
    table = Table(w.dataset, "player_stats", COLUMNS, partition_by="game_date", cluster_by=("player_lookup",))
    w.wh.create_table(table)
    return table


def test_implements_the_protocol(w: W) -> None:
    assert isinstance(w.wh, Warehouse)
    assert w.wh.dialect in ("duckdb", "bigquery")


def test_create_table_is_idempotent_and_schema_reads_back(w: W) -> None:
    table = _stats(w)
    w.wh.create_table(table)
    w.wh.create_dataset(w.dataset)
    assert w.wh.table_schema(table.fqn) == tuple(Column(c.name, c.type, c.mode) for c in COLUMNS)
    assert w.wh.list_tables(w.dataset) == ["player_stats"]
    assert w.wh.table_schema(f"{w.dataset}.missing") is None
    assert w.wh.list_tables(f"{w.dataset}_none") == []


def test_insert_rows_and_typed_parameters(w: W) -> None:
    table = _stats(w)
    assert w.wh.insert_rows(table.fqn, ROWS) == 3
    rows = w.wh.query(w.sql("SELECT player_lookup, points, minutes, starter, tags FROM DS.player_stats "
                            "WHERE game_date = :game_date AND player_lookup IN_IDS(:ids) ORDER BY player_lookup"),
                      [QueryParam("game_date", "2026-01-15", "DATE"), QueryParam("ids", ["lebronjames", "nobody"], "STRING", array=True),
                       QueryParam("unused", "x")],
                      labels={"pipectl_processor": "PlayerGameSummary", "pipectl_correlation_id": "Corr:1"})
    assert rows == [{"player_lookup": "lebronjames", "points": 31, "minutes": 35.5, "starter": True, "tags": ["a", "b"]}]


def test_values_round_trip_including_nulls_and_dates(w: W) -> None:
    table = _stats(w)
    w.wh.insert_rows(table.fqn, ROWS)
    rows = w.wh.query(w.sql("SELECT game_date, points, minutes FROM DS.player_stats WHERE points IS NULL"))
    assert rows == [{"game_date": dt.date(2026, 1, 16), "points": None, "minutes": None}]
    [count] = w.wh.query(w.sql("SELECT COUNT(*) AS n FROM DS.player_stats WHERE game_date = :d"), [QueryParam("d", dt.date(2026, 1, 15), "DATE")])
    assert count == {"n": 2}


def test_execute_script_runs_every_statement(w: W) -> None:
    table = _stats(w)
    w.wh.insert_rows(table.fqn, ROWS)
    w.wh.execute_script(w.sql("DELETE FROM DS.player_stats WHERE game_date = :d;\n"
                              "INSERT INTO DS.player_stats (game_date, player_lookup, points) VALUES (:d, 'newplayer', 7);"),
                        [QueryParam("d", "2026-01-15", "DATE")])
    rows = w.wh.query(w.sql("SELECT player_lookup FROM DS.player_stats ORDER BY player_lookup"))
    assert [r["player_lookup"] for r in rows] == ["lebronjames", "newplayer"]


def test_failed_script_changes_nothing(w: W) -> None:
    # No parameters here: bqemulator cannot bind them inside scripts (see bigquery.py).
    table = _stats(w)
    w.wh.insert_rows(table.fqn, ROWS)
    with pytest.raises(BackendError):
        w.wh.execute_script(w.sql("DELETE FROM DS.player_stats WHERE TRUE;\n"
                                  "INSERT INTO DS.player_stats (game_date, player_lookup, no_such_column) VALUES (DATE '2026-01-15', 'x', 1);"))
    [count] = w.wh.query(w.sql("SELECT COUNT(*) AS n FROM DS.player_stats"))
    assert count == {"n": 3}


def test_missing_table_is_a_backend_error_naming_it(w: W) -> None:
    with pytest.raises(BackendError, match=r"player_stats_missing.*does not exist|does not exist.*player_stats_missing") as err:
        w.wh.query(w.sql("SELECT * FROM DS.player_stats_missing"))
    assert err.value.hint


def test_unknown_column_is_a_backend_error_with_a_hint(w: W) -> None:
    _stats(w)
    with pytest.raises(BackendError) as err:
        w.wh.query(w.sql("SELECT no_such_column FROM DS.player_stats"))
    assert "no_such_column" in str(err.value) and "processors.yaml" in (err.value.hint or "")
