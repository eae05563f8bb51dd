"""The NBA props example project (repository root) is a clean, realistic manifest."""
from __future__ import annotations

from pathlib import Path

import pytest

from framework.project import load
from framework.validation import validate

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def project():
    return load(REPO)


@pytest.mark.parametrize("check_sql", [False, True])
def test_validates_without_errors_or_warnings(check_sql):
    diags = validate(REPO, check_sql=check_sql)
    assert [str(d) for d in diags.sorted()] == []


def test_phases_and_datasets(project):
    assert [(p.name, p.order, p.dataset) for p in project.phases] == [
        ("raw", 2, "nba_raw"), ("analytics", 3, "nba_analytics"), ("precompute", 4, "nba_precompute"),
        ("predictions", 5, "nba_predictions"), ("export", 6, None)]
    assert project.partition_column == "game_date" and project.partition_type == "DATE"
    assert {k: v.key for k, v in project.entity_kinds.items()} == {"player": "player_lookup", "team": "team_abbr", "game": "game_id"}


def test_raw_phase_reads_landing_sources_and_keeps_legacy_aliases(project):
    raw = project.processors_in("raw", enabled_only=False)
    assert len(raw) == 13
    assert not project.processors["bdl_player_boxscores"].enabled
    assert project.resolve_processor("NbacGamebookProcessor").name == "nbac_gamebook_player_stats"
    for proc in raw:
        assert proc.aliases, proc.name
        assert [i.kind for i in proc.inputs] == ["source"], proc.name
        assert project.sources[proc.inputs[0].name].table.dataset == "nba_landing"


def test_phase_sizes_and_special_outputs(project):
    assert len(project.processors_in("analytics")) == 5
    assert len(project.processors_in("precompute")) == 5
    assert project.processors["ml_feature_store"].output_table == "nba_predictions.ml_feature_store_v2"
    export = project.processors["export_predictions"]
    assert export.output is None and export.transform.python == "pipelines.nba_props.export:export_predictions"
    assert project.processors["player_prop_predictions"].fanout.task_topic == "nba-prediction-requests"


def test_change_detection_is_declared_and_never_volatile(project):
    for proc in project.processors.values():
        if proc.output is None:
            continue
        cols = proc.change_detection.columns
        assert cols, f"{proc.name} must list its change-detection columns"
        assert "processed_at" not in cols and proc.output.column("processed_at") is not None, proc.name
        assert proc.output.column("game_date").mode == "REQUIRED", proc.name


def test_every_transition_is_wired(project):
    rules = {t.source_phase: t.rule.type for t in project.transitions()}
    assert rules == {"raw": "tiered", "analytics": "all", "precompute": "quorum", "predictions": "all", "export": "all"}
    for t in project.transitions():
        assert project.topics[t.completion_topic].contract == "completion"
        assert t.deadline_seconds
        if t.target_phase:
            assert project.topics[t.trigger_topic].consumers == (f"phase:{t.target_phase}",)
    gates = [g.processor for t in project.transitions() for g in t.quality_gates]
    assert "nbac_gamebook_player_stats" in gates


def test_every_subscription_dead_letters(project):
    for topic in project.topics.values():
        for sub in topic.subscriptions:
            assert sub.max_delivery_attempts >= 5
            if topic.contract != "dead_letter":
                assert project.topics[sub.dead_letter_topic].contract == "dead_letter", sub.name


def test_cross_kind_inputs_name_a_mapping(project):
    kinds = {}
    for proc in project.processors.values():
        kinds[proc.name] = proc.entity
    for proc in project.processors.values():
        for inp in proc.inputs:
            if inp.kind == "processor" and kinds[inp.name] != proc.entity:
                assert inp.mapping, f"{proc.name} reads {inp.name} ({kinds[inp.name]} -> {proc.entity}) without a mapping"


@pytest.mark.parametrize("root", [REPO, REPO / "pipelines" / "iot_sensors"])
def test_transforms_read_only_compared_columns(root):
    import transform_harness as h

    assert h.uncompared_reads(load(root)) == []
