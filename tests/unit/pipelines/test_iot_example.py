"""The non-sports example (pipelines/iot_sensors) validates clean and its transforms work:
nothing in pipectl is NBA-specific."""
from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest

import transform_harness as h
from framework.project import load
from framework.validation import validate
from pipelines.iot_sensors import sample_data

ROOT = Path(__file__).resolve().parents[3] / "pipelines" / "iot_sensors"
DAY = date(2025, 3, 1)


@pytest.fixture(scope="module")
def run():
    project = load(ROOT)
    con = duckdb.connect()
    sample_data.generate(con, DAY, days=1)
    h.create_tables(con, project)
    counts = h.run_day(con, project, DAY)
    yield project, con, counts
    con.close()


@pytest.mark.parametrize("check_sql", [False, True])
def test_validates_clean(check_sql):
    assert [str(d) for d in validate(ROOT, check_sql=check_sql).sorted()] == []


def test_shape(run):
    project, _, counts = run
    assert [p.name for p in project.phases] == ["ingest", "rollup", "alerting"]
    assert set(project.entity_kinds) == {"sensor", "site"}
    assert len(project.processors) == 5 and all(n > 0 for n in counts.values())
    assert counts == {"readings_clean": counts["readings_clean"], "sensor_registry": 40, "sensor_daily_stats": 40,
                      "site_daily_summary": 4, "anomaly_flags": 40}


def test_cleaning_and_flags(run):
    _, con, _ = run
    raw = con.execute("SELECT COUNT(*), COUNT(DISTINCT (sensor_id, reading_ts)) FROM iot_landing.readings").fetchone()
    clean = con.execute("SELECT COUNT(*), MAX(temperature_c) FROM iot_raw.readings_clean").fetchone()
    assert raw[0] > raw[1] >= clean[0] and clean[1] < 85  # duplicates and glitches are gone
    flags = dict(con.execute("SELECT flag, COUNT(*) FROM iot_alerts.anomaly_flags GROUP BY 1").fetchall())
    assert flags.get("hot") == 1 and flags.get("offline") == 1 and flags.get("low_battery", 0) >= 1
    assert con.execute("SELECT SUM(sensors_reporting) FROM iot_rollup.site_daily_summary").fetchone()[0] == 40


def test_entity_local(run):
    project, con, _ = run
    for proc in h.sql_processors(project):
        ids = ["S-0003", "S-0017"] if proc.entity == "sensor" else ["BLD-02"]
        key = project.entity_kinds[proc.entity].key
        selective = h.select(con, project, proc, DAY, entity_ids=ids)
        full = h.rows_of(con, project, proc, DAY, where=f"{key} IN (SELECT UNNEST($ids))", params={"ids": ids})
        assert selective and h.strip(selective) == h.strip(full), proc.name


def test_generator_writes_the_same_rows_through_a_warehouse(run):
    from framework.backends.duckdb import DuckDBWarehouse

    _, con, _ = run
    wh = DuckDBWarehouse(":memory:")
    assert sample_data.generate(wh, DAY.isoformat(), days=1) == {"sensor_registry": 40, "readings": con.execute(
        "SELECT COUNT(*) FROM iot_landing.readings").fetchone()[0]}
    q = "SELECT * FROM iot_landing.readings ORDER BY ALL LIMIT 50"
    assert [tuple(r.values()) for r in wh.query(q)] == con.execute(q).fetchall()
    wh.close()
