"""The CLI names entities in the project's own vocabulary (``--entity KEY=ID``), on both
examples; defaults come from the example's sample hooks (UPDATE_DEFAULTS), and the old
basketball spellings still work for one release with one warning line."""
from __future__ import annotations

import json

import pytest

from framework.cli import main
from framework.errors import ConfigError
from framework.project import load
from framework.drive.updates import EntityRef, _check, parse_entity, update_defaults
from framework.scaffold import init_example
from projects import copy_example


@pytest.fixture(scope="module")
def iot(tmp_path_factory):
    root = tmp_path_factory.mktemp("iot") / "iot"
    init_example(root, "iot_sensors")
    assert main(["-p", str(root), "sample", "--date", "2025-03-03"]) == 0
    assert main(["-p", str(root), "run", "--date", "2025-03-03", "--full", "-q", "--json"]) == 0
    return root


@pytest.fixture(scope="module")
def nba(tmp_path_factory):
    return copy_example(tmp_path_factory.mktemp("nba") / "nba")


def test_entity_parsing_uses_the_manifests_keys_and_kinds(nba):
    project = load(nba)
    assert parse_entity(project, "player_lookup=lebronjames") == EntityRef("player", "player_lookup", "lebronjames")
    assert parse_entity(project, "team=LAL") == EntityRef("team", "team_abbr", "LAL")
    assert parse_entity(project, "lebronjames", default_kind="player").kind == "player"
    with pytest.raises(ConfigError, match="several kinds"):
        parse_entity(project, "lebronjames")
    with pytest.raises(ConfigError, match="did you mean 'team_abbr'"):
        parse_entity(project, "team_abr=LAL")
    with pytest.raises(ConfigError, match="empty id"):
        parse_entity(project, "player_lookup=")


def test_update_defaults_come_from_each_examples_hooks(nba, iot):
    nba_defaults = update_defaults(load(nba))
    assert str(nba_defaults.entity) == "player_lookup=lebronjames" and nba_defaults.kinds == ("player",)
    assert [t for t, _ in nba_defaults.edits()] == [None, "odds_api_player_points_props"]
    iot_defaults = update_defaults(load(iot))
    assert str(iot_defaults.entity) == "sensor_id=S-0003" and iot_defaults.edits() == ((None, {"temperature_c": 35.5}),)


@pytest.mark.parametrize("raw,message", [
    ([1], "expected a dict"),
    ({"entity": "sensr=S-1"}, "did you mean 'sensor'"),
    ({"sets": {}}, "unknown key(s) sets"),
    ({"demo_edits": [["readings"]]}, "each demo edit is"),
    ({"kinds": ["building"]}, "'kinds' names 'building'"),
])
def test_a_bad_update_defaults_is_a_located_error(iot, raw, message):
    with pytest.raises(ConfigError) as err:
        _check(load(iot), raw, "sample_data.py: UPDATE_DEFAULTS")
    assert message in err.value.message and err.value.message.startswith("sample_data.py: UPDATE_DEFAULTS")


def test_simulate_update_on_the_iot_example_edits_one_sensor(iot, capsys):
    assert main(["-p", str(iot), "simulate", "update", "--date", "2025-03-03", "--entity", "sensor=S-0007",
                 "--set", "temperature_c=40", "--json", "-q"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["entity"] == "sensor_id=S-0007" and out["changes"] == {"temperature_c": 40}
    ingest = next(p for p in out["phases"] if p["phase"] == "ingest")
    assert ingest["entities"] == 1 and ingest["status"] == "success"
    # defaults from the hook: no --entity, no --set
    assert main(["-p", str(iot), "simulate", "update", "--date", "2025-03-03", "--json", "-q"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["entity"] == "sensor_id=S-0003" and out["changes"] == {"temperature_c": 35.5}


def test_run_changed_takes_key_id_and_set(iot, capsys):
    assert main(["-p", str(iot), "run", "--date", "2025-03-03", "--changed", "sensor_id=S-0001",
                 "--changed", "S-0002", "--set", "humidity_pct=99", "--json", "-q"]) == 0
    report = json.loads(capsys.readouterr().out)
    ingest = next(p for p in report["phases"] if p["phase"] == "ingest")
    assert sorted(ingest["distinct_entities"]) == ["sensor"] and ingest["distinct_entities"]["sensor"] == 2


def test_a_site_is_refused_by_the_sensor_hook_before_anything_runs(iot, capsys):
    assert main(["-p", str(iot), "simulate", "update", "--date", "2025-03-03", "--entity", "site_id=BLD-01"]) == 2
    assert "edits sensor entities, not site" in capsys.readouterr().err


def test_the_deprecated_player_option_still_works_with_one_warning(iot, nba, capsys):
    assert main(["-p", str(iot), "simulate", "update", "--date", "2025-03-03", "--player", "S-0004", "--json", "-q"]) == 0
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if line.startswith("warning:")]
    assert warnings == ["warning: --player ID is deprecated and will be removed in pipectl 0.2; use --entity KEY=ID "
                        "(e.g. --entity player_lookup=ID)"]
    assert json.loads(captured.out)["entity"] == "sensor_id=S-0004"
    assert "--player" not in _help(["simulate", "update"], capsys) and "--entity" in _help(["simulate", "update"], capsys)
    assert "--player" not in _help(["demo"], capsys)


def _help(argv, capsys) -> str:
    assert main([*argv, "--help"]) == 0
    return capsys.readouterr().out
