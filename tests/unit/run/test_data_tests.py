"""Data tests (processors.yaml `tests:`) on DuckDB: pass, fail and warn, run by `pipectl test`
(text, JSON, JUnit) and after each processor run, where a failing `error` test fails the
run and blocks the next phase; bad declarations are located validate errors."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from framework.cli import main
from framework.project import load
from framework.scaffold import init_example

DAY = "2025-03-03"


@pytest.fixture(scope="module")
def iot(tmp_path_factory):
    root = tmp_path_factory.mktemp("iot-tests") / "iot"
    init_example(root, "iot_sensors")
    assert main(["-p", str(root), "sample", "--date", DAY]) == 0
    assert main(["-p", str(root), "run", "--date", DAY, "-q", "--json"]) == 0
    return root


def _sql(root, statement: str) -> None:
    from framework.backends.duckdb import DuckDBWarehouse

    with DuckDBWarehouse(root / ".pipectl" / "warehouse.duckdb") as wh:
        wh.query(statement)


def _test_json(root, capsys, *args: str) -> tuple[int, dict]:
    code = main(["-p", str(root), "test", "--date", DAY, "--format", "json", *args])
    return code, json.loads(capsys.readouterr().out)


def _by_name(doc: dict) -> dict[str, dict]:
    return {r["name"]: r for r in doc["results"]}


def test_clean_data_passes_every_test(iot, capsys):
    code, doc = _test_json(iot, capsys)
    assert code == 0 and doc["fail"] == doc["error"] == doc["warn"] == 0 and doc["pass"] == 6


def test_bad_rows_fail_error_tests_and_warn_warn_tests(iot, capsys):
    _sql(iot, "CREATE TABLE keep_stats AS SELECT * FROM iot_rollup.sensor_daily_stats")
    _sql(iot, "CREATE TABLE keep_flags AS SELECT * FROM iot_alerts.anomaly_flags")
    try:
        _sql(iot, f"INSERT INTO iot_rollup.sensor_daily_stats (day, sensor_id, site_id, readings, coverage_pct) "
                  f"SELECT day, sensor_id, 'BLD-99', NULL, 250.0 FROM iot_rollup.sensor_daily_stats "
                  f"WHERE sensor_id = 'S-0001' AND day = DATE '{DAY}'")
        _sql(iot, "UPDATE iot_alerts.anomaly_flags SET flag = 'weird' WHERE sensor_id = 'S-0002'")
        _sql(iot, "UPDATE iot_alerts.anomaly_flags SET deviation_c = 40 WHERE sensor_id IN ('S-0003', 'S-0004')")
        code, doc = _test_json(iot, capsys)
        got = _by_name(doc)
        assert code == 1
        assert got["not_null_sensor_id_readings"]["status"] == "fail" and got["not_null_sensor_id_readings"]["failures"] == 1
        assert got["unique_day_sensor_id"]["status"] == "fail" and "1 group" in got["unique_day_sensor_id"]["message"]
        assert got["coverage_is_a_percentage"]["failures"] == 1
        assert got["relationships_site_id"]["failures"] == 1 and "BLD" not in got["relationships_site_id"]["message"]
        assert got["accepted_values_flag"]["status"] == "fail" and got["accepted_values_flag"]["failures"] == 1
        assert got["plausible_deviation"]["status"] == "warn" and got["plausible_deviation"]["failures"] == 2
        assert "processors.yaml:" in got["accepted_values_flag"]["location"]
        # warnings alone do not fail: only the warn test's processor, with its error test excluded
        _sql(iot, "UPDATE iot_alerts.anomaly_flags SET flag = 'ok' WHERE sensor_id = 'S-0002'")
        code, doc = _test_json(iot, capsys, "--select", "anomaly_flags")
        assert code == 0 and doc["warn"] == 1 and doc["pass"] == 1
        # text and JUnit
        assert main(["-p", str(iot), "test", "--date", DAY]) == 1
        text = capsys.readouterr().out
        assert "FAIL  sensor_daily_stats.unique_day_sensor_id" in text and "WARN  anomaly_flags.plausible_deviation" in text
        assert text.splitlines()[-1] == f"FAILED: 1 passed, 1 warned, 4 failed, 0 errors (partition {DAY})"
        assert main(["-p", str(iot), "test", "--date", DAY, "--format", "junit"]) == 1
        suites = ET.fromstring(capsys.readouterr().out)
        stats = suites.find("testsuite[@name='pipectl test sensor_daily_stats']")
        assert stats.get("failures") == "4" and stats.get("tests") == "4"
        assert stats.find("testcase[@name='unique_day_sensor_id']/failure") is not None
        flags = suites.find("testsuite[@name='pipectl test anomaly_flags']")
        assert flags.find("testcase[@name='plausible_deviation']/system-out").text.startswith("warning: 2 rows")
    finally:
        _sql(iot, "DELETE FROM iot_rollup.sensor_daily_stats")
        _sql(iot, "INSERT INTO iot_rollup.sensor_daily_stats SELECT * FROM keep_stats")
        _sql(iot, "DELETE FROM iot_alerts.anomaly_flags")
        _sql(iot, "INSERT INTO iot_alerts.anomaly_flags SELECT * FROM keep_flags")
        _sql(iot, "DROP TABLE keep_stats")
        _sql(iot, "DROP TABLE keep_flags")


def test_a_test_whose_query_fails_is_an_error_not_a_pass(iot, capsys, tmp_path):
    yaml = iot / "processors.yaml"
    original = yaml.read_text()
    yaml.write_text(original.replace('sql: "coverage_pct BETWEEN 0 AND 100"', 'sql: "coverage_pcz BETWEEN 0 AND 100"'))
    try:
        code, doc = _test_json(iot, capsys, "--select", "sensor_daily_stats")
    finally:
        yaml.write_text(original)
    got = _by_name(doc)["coverage_is_a_percentage"]
    assert code == 1 and got["status"] == "error" and "coverage_pcz" in got["message"]


def test_a_failing_error_test_fails_the_run_and_blocks_the_next_phase(iot, capsys):
    sql = iot / "sql" / "sensor_daily_stats.sql"
    original = sql.read_text()
    assert "coverage_pct" in original
    yaml = iot / "processors.yaml"
    declared = yaml.read_text()
    # the test now demands what the transform does not produce: every reading counted twice
    yaml.write_text(declared.replace('sql: "coverage_pct BETWEEN 0 AND 100"', 'sql: "readings > 1000"'))
    try:
        assert main(["-p", str(iot), "run", "--date", "2025-03-03", "--full", "--json", "-q"]) == 1
        report = json.loads(capsys.readouterr().out)
    finally:
        yaml.write_text(declared)
    runs = {r["processor"]: r for p in report["phases"] for r in p["runs"]}
    stats = runs["sensor_daily_stats"]
    assert stats["status"] == "failed" and "data test coverage_is_a_percentage failed (40 rows" in stats["error"]
    assert "anomaly_flags" not in runs  # the alerting phase never triggered
    assert any("rollup->alerting" in w or "alerting" in w for w in report["waiting"])
    assert main(["-p", str(iot), "history", "--processor", "sensor_daily_stats", "--limit", "1", "--json"]) == 0
    last = json.loads(capsys.readouterr().out)[0]
    assert last["status"] == "failed"
    assert {t["name"]: t["status"] for t in last["metadata"]["tests"]}["coverage_is_a_percentage"] == "fail"


BAD = [
    ("      - unique: [day, sensor_id]\n", "      - unique: [day, sensor]\n", "test-column-missing", "did you mean 'sensor_id'?"),
    ("{column: site_id, to: sensor_registry, field: site_id}", "{column: site_id, to: sensor_registy, field: site_id}",
     "unknown-test-target", "did you mean 'sensor_registry'?"),
    ("{column: site_id, to: sensor_registry, field: site_id}", "{column: site_id, to: sensor_registry, field: site}",
     "test-column-missing", "has no column 'site'"),
    ("values: [ok, hot, cold, offline, low_battery]", "values: [ok, 1]", "test-value-type", "are not STRING"),
    ("      - not_null: [sensor_id, readings]\n", "      - not_null: [sensor_id, readings]\n      - not_null: [sensor_id, readings]\n",
     "duplicate-test", "two data tests named 'not_null_sensor_id_readings'"),
    ("      - not_null: [sensor_id, readings]\n", "      - not_null: [sensor_id]\n        unique: [day]\n", "schema", "tests"),
    ("severity: warn}", "severity: fatal}", "schema", "fatal"),
]


@pytest.mark.parametrize("old,new,code,fragment", BAD, ids=[b[2] + ":" + b[3][:20] for b in BAD])
def test_bad_declarations_are_located_validate_errors(tmp_path, capsys, old, new, code, fragment):
    root = tmp_path / "iot"
    init_example(root, "iot_sensors")
    yaml = root / "processors.yaml"
    text = yaml.read_text()
    assert old in text
    yaml.write_text(text.replace(old, new, 1))
    assert main(["-p", str(root), "validate", "--no-sql", "--format", "json"]) == 1
    diags = json.loads(capsys.readouterr().out)["diagnostics"]
    found = [d for d in diags if d["code"] == code or (code == "schema" and d["code"].startswith("schema"))]
    assert found and any(fragment in d["message"] + " " + (d.get("hint") or "") for d in found), diags
    line = text[:text.index(old)].count("\n") + 1
    assert any(d["file"].endswith("processors.yaml") and d["line"] >= line - 1 for d in found)


def test_the_examples_declare_tests_that_validate(repo_root):
    nba = load(repo_root)
    assert {t.kind for t in nba.processors["player_game_summary"].tests} == {"not_null", "unique"}
    iot = load(repo_root / "pipelines" / "iot_sensors")
    assert {t.kind for p in iot.processors.values() for t in p.tests} == {"not_null", "unique", "expression",
                                                                         "relationships", "accepted_values"}
