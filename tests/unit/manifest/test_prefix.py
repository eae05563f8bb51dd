"""Per-target name prefixes (pipectl.yaml `dataset_prefix`, `topic_prefix`): the model, the
rendered SQL, the plan, and a run on the embedded backends, where dev and prod share one
warehouse, one bus and one state file yet never each other's tables, topics or ledger."""
from __future__ import annotations

import json

import pytest

from framework.cli import main
from framework.manifest.prefix import with_prefixes
from framework.project import load
from framework.scaffold import init_example
from framework.sql.context import changeset_table, state_table

DAY = "2025-03-03"
CONFIG = "version: 1\ntargets:\n  local: {}\n  dev:\n    dataset_prefix: dev_\n    topic_prefix: dev-\n"


@pytest.fixture(scope="module")
def iot(tmp_path_factory):
    root = tmp_path_factory.mktemp("prefix") / "iot"
    init_example(root, "iot_sensors")
    (root / "pipectl.yaml").write_text(CONFIG)
    return root


def test_the_model_renames_owned_datasets_and_every_topic(repo_root):
    nba = load(repo_root)
    dev = with_prefixes(nba, "dev_", "dev-")
    assert dev.processors["player_game_summary"].output.fqn == "dev_nba_analytics.player_game_summary"
    assert all(s.table.fqn == nba.sources[n].table.fqn for n, s in dev.sources.items())  # read, not owned
    assert set(dev.topics) == {"dev-" + t for t in nba.topics}
    for topic in dev.topics.values():
        assert all(s.name.startswith("dev-") and s.topic == topic.name for s in topic.subscriptions)
        assert topic.dead_letter_topic is None or topic.dead_letter_topic.startswith("dev-")
    for phase in dev.phases:
        assert phase.dataset is None or phase.dataset.startswith("dev_")
        t = phase.transition
        assert t is None or all(x is None or x.startswith("dev-") for x in (t.completion_topic, t.trigger_topic))
    fanned = [p for p in dev.processors.values() if p.fanout is not None]
    assert fanned and all(p.fanout.task_topic in dev.topics for p in fanned)
    assert dev.sweep.topic == "dev-" + nba.sweep.topic
    assert state_table(dev) == "dev__pipectl.entity_fingerprints" and changeset_table(dev) == "dev__pipectl.change_sets"
    assert dev.resolve_processor("dev_nba_analytics.player_game_summary").name == "player_game_summary"
    assert with_prefixes(dev, "dev_", "dev-") is dev
    with pytest.raises(ValueError, match="already carries prefixes"):
        with_prefixes(dev, "qa_", "qa-")


def test_plan_and_render_name_the_targets_resources(iot, capsys):
    assert main(["-p", str(iot), "-t", "dev", "plan", "--json"]) == 0
    names = {(c["type"], c["name"]) for c in json.loads(capsys.readouterr().out)["changes"]}
    assert ("dataset", "dev_iot_raw") in names and ("table", "dev_iot_rollup.sensor_daily_stats") in names
    assert ("table", "dev__pipectl.entity_fingerprints") in names and ("dataset", "iot_landing") in names
    assert ("topic", "dev-iot-ingest-complete") in names and ("topic", "iot-ingest-complete") not in names
    assert any(t == "subscription" and n.startswith("dev-") for t, n in names)
    assert main(["-p", str(iot), "-t", "dev", "render", "sensor_daily_stats", "--kind", "transform"]) == 0
    sql = capsys.readouterr().out
    assert "FROM dev_iot_raw.readings_clean" in sql and " iot_raw." not in sql
    assert main(["-p", str(iot), "render", "sensor_daily_stats", "--kind", "transform"]) == 0
    assert "FROM iot_raw.readings_clean" in capsys.readouterr().out


def test_dev_and_the_default_target_run_side_by_side(iot, capsys):
    from framework.backends.duckdb import DuckDBWarehouse

    assert main(["-p", str(iot), "sample", "--date", DAY]) == 0
    assert main(["-p", str(iot), "-t", "dev", "run", "--date", DAY, "--json", "-q"]) == 0
    capsys.readouterr()
    # the default target has its own ledger and state tables: it processes everything too
    assert main(["-p", str(iot), "run", "--date", DAY, "--json", "-q"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["status"] == "success" and [p["entities_processed"] for p in report["phases"]] == [80, 44, 40]
    with DuckDBWarehouse(iot / ".pipectl" / "warehouse.duckdb") as wh:
        dev_rows = wh.query("SELECT COUNT(*) AS n FROM dev_iot_alerts.anomaly_flags")[0]["n"]
        rows = wh.query("SELECT COUNT(*) AS n FROM iot_alerts.anomaly_flags")[0]["n"]
    assert dev_rows == rows == 40
    assert main(["-p", str(iot), "-t", "dev", "history", "--json", "--limit", "100"]) == 0
    dev_runs = json.loads(capsys.readouterr().out)
    assert main(["-p", str(iot), "history", "--json", "--limit", "100"]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert len(dev_runs) == len(runs) == 5 and not {r["run_id"] for r in dev_runs} & {r["run_id"] for r in runs}


def test_a_bad_prefix_is_a_located_config_error(tmp_path, capsys):
    root = tmp_path / "iot"
    init_example(root, "iot_sensors")
    (root / "pipectl.yaml").write_text("version: 1\ntargets:\n  dev:\n    dataset_prefix: dev-\n")
    assert main(["-p", str(root), "-t", "dev", "plan"]) == 1
    err = capsys.readouterr().err
    assert "pipectl.yaml:4" in err and "dataset_prefix" in err
