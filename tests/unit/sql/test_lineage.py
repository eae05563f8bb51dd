"""Lineage contracts in `pipectl validate`: one mutation of the example project per rule.

Each test breaks a copy of the repository's example exactly the way an incremental run would
silently diverge from a full recompute (the four classes of issue 13, the column and type
breaks) and asserts the located diagnostic: code, file:line, what it names, and the fix.
"""
from __future__ import annotations

import json

import pytest
from framework.cli import main
from framework.validation import validate
from projects import REPO, copy_example, line_of

NBA = "pipelines/nba_props"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """The example, validated once: its SQL parse cache (.pipectl/cache) comes with every
    copy, so a mutation re-analyses only the statement it changed."""
    root = copy_example(tmp_path_factory.mktemp("lineage") / "example")
    assert validate(root).errors == []
    return root


@pytest.fixture
def example(tmp_path, pristine, monkeypatch):
    import shutil

    monkeypatch.delenv("PIPECTL_NO_CACHE", raising=False)
    dest = tmp_path / "example"
    shutil.copytree(pristine, dest)
    return dest


def _edit(root, rel, old, new, count=1):
    path = root / rel
    text = path.read_text()
    assert text.count(old) >= 1, (rel, old)
    path.write_text(text.replace(old, new, count))
    return path.read_text()


def _errors(root, code=None):
    return [d for d in validate(root).errors if code is None or d.code == code]


def test_both_examples_are_clean():
    for root in (REPO, REPO / "pipelines" / "iot_sensors"):
        diags = validate(root)
        assert diags.errors == [] and diags.warnings == [], [str(d) for d in diags.items]


def test_python_transforms_are_named_as_not_analysed(example, capsys):
    diags = validate(example)
    assert [n.message for n in diags.notes if n.code == "lineage"] == [
        "processor 'export_predictions': column lineage not analysed: Python transform "
        "(pipelines.nba_props.export:export_predictions); its inputs are what it declares"]
    assert main(["-p", str(example), "validate", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["notes"][0]["code"] == "lineage"


# ------------------------------------------------------------------ class 1-3: keys through mappings
def test_class1_grouping_by_the_rows_own_team_instead_of_the_roster(example):
    rel = f"{NBA}/analytics/team_offense_game_summary.sql"
    text = _edit(example, rel, "GROUP BY r.team_abbr", "GROUP BY p.team_abbr")
    _edit(example, rel, "    r.team_abbr,\n    CAST(SUM(CASE WHEN p.shot_zone = 'rim' THEN p.fg_attempted",
          "    p.team_abbr,\n    CAST(SUM(CASE WHEN p.shot_zone = 'rim' THEN p.fg_attempted")
    [err] = _errors(example, "mapped-key")
    assert (err.location.file, err.location.line) == (rel, line_of(text, "GROUP BY p.team_abbr"))
    assert "input 'nbac_play_by_play' is declared mapped to team through 'player_to_team' (via br_rosters_current)" in err.message
    assert "groups rows by nbac_play_by_play's own team_abbr" in err.message
    assert "join br_rosters_current ON its player_lookup = nbac_play_by_play.player_lookup" in err.hint
    assert "use br_rosters_current.team_abbr as the team key" in err.hint


def test_class1_defence_grouped_by_the_rows_own_opponent(example):
    rel = f"{NBA}/analytics/team_defense_game_summary.sql"
    text = _edit(example, rel, "GROUP BY m.opponent_team_abbr", "GROUP BY p.opponent_team_abbr")
    _edit(example, rel, "    m.opponent_team_abbr AS team_abbr,", "    p.opponent_team_abbr AS team_abbr,")
    [err] = _errors(example, "mapped-key")
    assert err.location.line == line_of(text, "GROUP BY p.opponent_team_abbr")
    assert "'player_to_opponent_team' (via nbac_gamebook_player_stats)" in err.message and "own opponent_team_abbr" in err.message


def test_class2_injuries_counted_for_the_reports_own_team(example):
    rel = f"{NBA}/analytics/upcoming_team_game_context.sql"
    _edit(example, rel, "    r.team_abbr,\n    CAST(SUM(CASE WHEN i.injury_status", "    i.team_abbr,\n    CAST(SUM(CASE WHEN i.injury_status")
    text = _edit(example, rel, "GROUP BY r.team_abbr", "GROUP BY i.team_abbr")
    [err] = _errors(example, "mapped-key")
    assert (err.location.file, err.location.line) == (rel, line_of(text, "GROUP BY i.team_abbr"))
    assert "input 'nbac_injury_report'" in err.message and "'player_to_team'" in err.message and "own team_abbr" in err.message


def test_class3_team_rows_joined_on_the_gamebook_team(example):
    rel = f"{NBA}/analytics/player_game_summary.sql"
    text = _edit(example, rel, "LEFT JOIN team AS t ON t.team_abbr = r.team_abbr", "LEFT JOIN team AS t ON t.team_abbr = b.team_abbr")
    [err] = _errors(example, "mapped-key")
    assert (err.location.file, err.location.line) == (rel, line_of(text, "t.team_abbr = b.team_abbr"))
    assert ("joins team_offense_game_summary.team_abbr to nbac_gamebook_player_stats.team_abbr in `t.team_abbr = b.team_abbr`, "
            "not to br_rosters_current") in err.message
    assert "join br_rosters_current" in err.hint


# ------------------------------------------------------------------ class 4: key normalisation
def test_class4_undeclared_key_normalisation(example):
    _edit(example, "processors.yaml", '{source: landing_team_boxscore, critical: true, key: "UPPER(TRIM(team_abbr))"}',
          "{source: landing_team_boxscore, critical: true}")
    rel = f"{NBA}/raw/nbac_team_boxscore.sql"
    text = _edit(example, rel, "entity_filter('UPPER(TRIM(t.team_abbr))')", "entity_filter('t.team_abbr')")
    [err] = _errors(example, "key-normalisation")
    assert (err.location.file, err.location.line) == (rel, line_of(text, "UPPER(TRIM(t.team_abbr)) AS team_abbr"))
    assert "writes its entity key team_abbr as UPPER(TRIM(team_abbr)) of input 'landing_team_boxscore'" in err.message
    assert 'key: "UPPER(TRIM(team_abbr))"' in err.hint


def test_class4_declared_key_but_raw_entity_filter(example):
    rel = f"{NBA}/raw/nbac_scoreboard_v2.sql"
    _edit(example, rel, "entity_filter('UPPER(TRIM(s.team_abbr))')", "entity_filter('s.team_abbr')")
    [err] = _errors(example, "key-normalisation")
    assert err.location.file == rel and "filters it with entity_filter(team_abbr)" in err.message


def test_declared_key_with_a_typo(example):
    text = _edit(example, "processors.yaml", 'key: "UPPER(TRIM(team_abbr))"}', 'key: "UPPER(TRIM(team_abrr))"}', count=2)
    errors = _errors(example, "input-key")
    assert [e.hint for e in errors] == ["did you mean 'team_abbr'?"] * 2
    assert errors[0].location.line == line_of(text, 'key: "UPPER(TRIM(team_abrr))"')
    assert _errors(example, "key-normalisation")  # and the SQL no longer matches what is declared


def test_declared_key_is_rendered_by_detection():
    from framework.project import load
    from framework.sql.render import render_statement

    project = load(REPO)
    for dialect in ("duckdb", "bigquery"):
        detect = render_statement(project, "nbac_team_boxscore", "detect", dialect).sql
        assert "CAST(UPPER(TRIM(i.team_abbr)) AS STRING) AS entity_key" in detect
        flt = render_statement(project, "nbac_team_boxscore", "filter", dialect).sql
        assert "UPPER(TRIM(i.team_abbr)) IN" in flt


# ------------------------------------------------------------------ columns and types
def test_output_alias_misspelt(example):
    rel = f"{NBA}/analytics/team_offense_game_summary.sql"
    text = _edit(example, rel, "AS possessions_used", "AS possesions_used")
    [err] = _errors(example, "transform-columns")
    assert (err.location.file, err.location.line) == (rel, line_of(text, "AS possesions_used"))
    assert "returns 'possesions_used' where output.columns declares 'possessions_used'" in err.message
    assert "did you mean 'possessions_used'?" in err.hint


def test_extra_output_column(example):
    rel = f"{NBA}/raw/nbac_schedule.sql"
    _edit(example, rel, "  s.arena,\n", "  s.arena,\n  s.arena AS venue,\n", count=2)
    [err] = _errors(example, "transform-columns")
    assert "returns column 'venue', which output.columns does not declare" in err.message


def test_missing_upstream_column(example):
    rel = f"{NBA}/raw/nbac_scoreboard_v2.sql"
    text = _edit(example, rel, "COALESCE(s.q1_points, 0) AS q1_points", "COALESCE(s.pointz, 0) AS q1_points")
    [err] = _errors(example, "unknown-column")
    assert (err.location.file, err.location.line, err.location.column) == (rel, line_of(text, "s.pointz"), text.splitlines()[line_of(text, "s.pointz") - 1].index("s.pointz") + 1)
    assert "transform reads s.pointz, but input 'landing_scoreboard' (nba_landing.nbac_scoreboard_v2) declares no column 'pointz'" in err.message


def test_unknown_column_of_a_cte_has_did_you_mean(example):
    rel = f"{NBA}/analytics/player_game_summary.sql"
    _edit(example, rel, "COALESCE(z.rim_fg_made, 0) AS rim_fg_made", "COALESCE(z.rim_fg_mad, 0) AS rim_fg_made")
    [err] = _errors(example, "unknown-column")
    assert "'z' returns no column 'rim_fg_mad'" in err.message and err.hint == "did you mean 'rim_fg_made'?"


def test_join_type_mismatch_across_an_edge(example):
    # the producer's game_id becomes INT64; its consumers still declare and pass STRING
    text = _edit(example, "processors.yaml", "      table: nbac_schedule\n      columns:\n        - {name: game_date, type: DATE, mode: REQUIRED}\n"
                 "        - {name: game_id, type: STRING, mode: REQUIRED}",
                 "      table: nbac_schedule\n      columns:\n        - {name: game_date, type: DATE, mode: REQUIRED}\n"
                 "        - {name: game_id, type: INT64, mode: REQUIRED}")
    errors = _errors(example, "column-type")
    by_proc = {e.message.split("'")[1]: e for e in errors}
    assert {"nbac_schedule", "upcoming_team_game_context", "upcoming_player_game_context"} <= set(by_proc)
    err = by_proc["upcoming_team_game_context"]
    assert "output column 'game_id' is declared STRING but the transform passes nbac_schedule.game_id (INT64) through unchanged" in err.message
    start = text.index("  - name: upcoming_team_game_context")
    assert err.location.file.endswith("processors.yaml") and err.location.line == text[:start].count("\n") + line_of(text[start:], "{name: game_id")
    assert by_proc["nbac_schedule"].message.endswith("passes landing_schedule.game_id (STRING) through unchanged")


def test_join_key_types_must_agree(example):
    _edit(example, "processors.yaml", "      table: nbac_schedule\n      columns:\n        - {name: game_date, type: DATE, mode: REQUIRED}\n"
          "        - {name: game_id, type: STRING, mode: REQUIRED}\n        - {name: team_abbr, type: STRING, mode: REQUIRED}",
          "      table: nbac_schedule\n      columns:\n        - {name: game_date, type: DATE, mode: REQUIRED}\n"
          "        - {name: game_id, type: STRING, mode: REQUIRED}\n        - {name: team_abbr, type: BYTES, mode: REQUIRED}")
    compares = [e for e in _errors(example, "column-type") if "compares" in e.message]
    msgs = " | ".join(e.message for e in compares)
    assert "processor 'upcoming_player_game_context': transform compares nbac_schedule.team_abbr (BYTES) with br_rosters_current.team_abbr (STRING)" in msgs
    assert all(e.location.file.endswith(".sql") and e.location.line > 0 for e in compares)


def test_undeclared_read(example):
    _edit(example, "processors.yaml", "      - {processor: br_rosters_current, compare: [team_abbr]}\n", "")
    [err] = _errors(example, "undeclared-read")
    assert "processor 'player_game_summary': transform" in err.message and "reads br_rosters_current" in err.message
    assert err.hint == "add 'br_rosters_current' to the inputs of 'player_game_summary'"


def test_iot_mapping_bypassed_is_reported(tmp_path):
    import shutil

    root = tmp_path / "iot"
    shutil.copytree(REPO / "pipelines" / "iot_sensors", root, ignore=shutil.ignore_patterns(".pipectl", "__pycache__"))
    _edit(root, "sql/anomaly_flags.sql", "LEFT JOIN site AS t ON t.site_id = g.site_id", "LEFT JOIN site AS t ON t.site_id = s.site_id")
    [err] = _errors(root, "mapped-key")
    assert "joins site_daily_summary.site_id to sensor_daily_stats.site_id" in err.message and err.location.file == "sql/anomaly_flags.sql"
