"""Loading keeps exact locations, reports YAML problems located, resolves a frozen model."""
from __future__ import annotations

import dataclasses

import pytest

from framework.manifest import load_project
from framework.manifest.diagnostics import Diagnostics
from framework.manifest.loader import load_yaml
from framework.manifest.resolver import parse_duration
from projects import PROCESSORS, line_of, write_project


def test_every_node_keeps_file_line_and_column(tmp_path, monkeypatch):
    write_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    project, diags = load_project(tmp_path)
    assert not diags.items
    proc = project.processors["store_totals"]
    assert str(proc.location) == f"processors.yaml:{line_of(PROCESSORS, '- name: store_totals')}:5"
    assert proc.inputs[0].location.line == line_of(PROCESSORS, "{processor: orders_raw, mapping: customer_store}")
    total = proc.output.column("total")
    assert (total.location.line, total.location.column) == (line_of(PROCESSORS, "{name: total", 2), 11)


def test_model_is_frozen_and_resolved(tmp_path):
    write_project(tmp_path)
    project, _ = load_project(tmp_path)
    raw = project.processors["orders_raw"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        raw.name = "x"  # type: ignore[misc]
    assert raw.output.fqn == "shop_raw.orders_raw"  # dataset from the phase
    assert raw.output.partition_by == "day"  # partition column found among the columns
    assert raw.change_detection.columns == ("amount", "store_id")
    assert project.processors["store_totals"].change_detection.columns is None  # "all"
    t = project.phase("raw").transition
    assert t.expected == ("orders_raw",) and t.critical == ("orders_raw",)
    assert t.target_phase == "analytics" and t.deadline_seconds == 7200
    assert project.phase("analytics").transition.mode == "monitor"


@pytest.mark.parametrize("identity", ["orders_raw", "OrdersRawProcessor", "shop_raw.orders_raw"])
def test_processor_identity_resolves_name_alias_and_table(tmp_path, identity):
    write_project(tmp_path)
    project, _ = load_project(tmp_path)
    assert project.resolve_processor(identity).name == "orders_raw"


def test_unknown_identity_is_none_not_a_guess(tmp_path):
    write_project(tmp_path)
    project, _ = load_project(tmp_path)
    assert project.resolve_processor("OrdersRawProcesor") is None


def test_bare_table_name_shared_by_two_datasets_resolves_to_neither(tmp_path):
    """Two processors writing `totals` in different datasets: a completion published as
    bare `totals` is ambiguous and must be reported unknown, not credited to the first."""
    text = (PROCESSORS.replace("      table: customer_totals\n", "      table: shop_x.totals\n")
            .replace("      table: store_totals\n", "      table: shop_y.totals\n"))
    write_project(tmp_path, text)
    project, _ = load_project(tmp_path)
    assert project.resolve_processor("totals") is None
    assert project.resolve_processor("shop_x.totals").name == "customer_totals"
    assert project.resolve_processor("shop_y.totals").name == "store_totals"


def test_duplicate_yaml_key_is_an_error_not_last_wins(tmp_path, monkeypatch):
    text = PROCESSORS.replace("    phase: analytics\n    entity: customer\n", "    phase: analytics\n    phase: raw\n    entity: customer\n", 1)
    write_project(tmp_path, text)
    monkeypatch.chdir(tmp_path)
    diags = Diagnostics()
    load_yaml(tmp_path / "processors.yaml", "processors.yaml", diags)
    (d,) = diags.items
    assert str(d) == (f"processors.yaml:{line_of(text, 'phase: raw', 2)}:5: error: duplicate key 'phase' in mapping "
                      "(remove one of them; YAML would silently keep the last)")


def test_missing_manifest_names_the_file(tmp_path):
    (tmp_path / "topics.yaml").write_text("version: 1\ntopics: []\n")
    project, diags = load_project(tmp_path)
    assert project is None
    assert [d.code for d in diags.items] == ["missing-file"]
    assert "processors.yaml not found" in diags.items[0].message


def test_schema_error_points_at_the_value(tmp_path, monkeypatch):
    write_project(tmp_path, PROCESSORS.replace("{name: amount, type: FLOAT64}\n    change", "{name: amount, type: FLOAT}\n    change"))
    monkeypatch.chdir(tmp_path)
    project, diags = load_project(tmp_path)
    assert project is None
    (d,) = diags.items
    assert d.location.line == line_of(PROCESSORS, "{name: amount, type: FLOAT64}", 2)
    assert "'FLOAT' is not one of" in d.message
    assert d.hint.startswith("use one of: STRING, INT64, FLOAT64")


@pytest.mark.parametrize("text,seconds", [(90, 90), ("90s", 90), ("5m", 300), ("1h", 3600), ("1.5h", 5400), ("1d", 86400)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


def test_bad_duration_is_rejected():
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("soon")


def test_yaml_is_read_as_yaml_1_2_everywhere(tmp_path, monkeypatch):
    """`enabled: yes` is the string "yes" (YAML 1.2), so the schema rejects it instead of one
    install reading a boolean and another a string."""
    write_project(tmp_path, PROCESSORS.replace("    aliases: [OrdersRawProcessor]\n", "    aliases: [OrdersRawProcessor]\n    enabled: yes\n"))
    monkeypatch.chdir(tmp_path)
    project, diags = load_project(tmp_path)
    assert project is None
    (d,) = diags.items
    assert d.code == "schema" and "'yes' is not of type 'boolean'" in d.message


def test_an_unknown_anchor_is_a_located_error(tmp_path, monkeypatch):
    write_project(tmp_path, PROCESSORS.replace("inputs: [orders_raw]", "inputs: [*orders]"))
    monkeypatch.chdir(tmp_path)
    project, diags = load_project(tmp_path)
    assert project is None
    (d,) = diags.items
    assert d.code == "yaml-alias" and d.location.line == line_of(PROCESSORS, "inputs: [orders_raw]")
