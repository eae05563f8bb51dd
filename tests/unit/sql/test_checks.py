"""`pipectl validate` SQL checks: located diagnostics for render and parse errors."""
from __future__ import annotations

from click.testing import CliRunner

from framework.validation import validate


def _codes(project_dir):
    diags = validate(project_dir)
    return [(d.code, d.message, str(d.location)) for d in diags.errors]


def _edit(project_dir, name, old, new):
    path = project_dir / "pipelines" / "golden" / f"{name}.sql"
    path.write_text(path.read_text().replace(old, new))


def test_clean_project_has_no_sql_diagnostics(project_dir):
    assert validate(project_dir).items == []


def test_unknown_ref_is_located_at_the_transform(project_dir):
    _edit(project_dir, "player_summary", "ref('player_boxscores')", "ref('player_boxscore')")
    errors = _codes(project_dir)
    assert len(errors) == 1, errors
    code, message, location = errors[0]
    assert code == "sql-render" and "player_boxscore" in message and "did you mean 'player_boxscores'" in message
    assert location.startswith(str(project_dir / "processors.yaml")) or "processors.yaml:" in location


def test_jinja_syntax_error_names_the_sql_file_line(project_dir):
    _edit(project_dir, "rosters", "{{ partition }}", "{{ partition }")
    [(code, message, _)] = _codes(project_dir)
    assert code == "sql-render" and "pipelines/golden/rosters.sql:" in message


def test_sql_syntax_error_is_reported_per_processor(project_dir):
    _edit(project_dir, "rosters", "FROM", "FROM (")
    errors = _codes(project_dir)
    assert [c for c, *_ in errors] == ["sql-parse"] and "rosters" in errors[0][1]


def test_missing_output_column(project_dir):
    _edit(project_dir, "team_summary", "SUM(b.points) AS team_points", "SUM(b.points) AS points")
    [(code, message, _)] = _codes(project_dir)
    assert code == "transform-columns" and "team_points" in message


def test_broken_template_override_is_caught(project_dir):
    (project_dir / "templates").mkdir()
    (project_dir / "templates" / "filter.sql.j2").write_text("SELECT FROM WHERE;\n")
    errors = _codes(project_dir)
    assert errors and all(c == "sql-parse" for c, *_ in errors) and "filter.sql.j2" in errors[0][1]


def test_no_sql_skips_the_checks(project_dir):
    _edit(project_dir, "rosters", "FROM", "FROM (")
    assert validate(project_dir, check_sql=False).errors == []


def test_render_command(project_dir):
    from framework.cli import cli

    runner = CliRunner()
    res = runner.invoke(cli, ["-p", str(project_dir), "render", "team_summary", "--dialect", "bigquery", "--kind", "merge"])
    assert res.exit_code == 0, res.output
    assert res.output.startswith("-- write processed rows of processor team_summary\nMERGE analytics.team_summary")
    assert res.output.rstrip().endswith("-- parameters: @game_date, @entity_ids")
    res = runner.invoke(cli, ["-p", str(project_dir), "render", "team_summary"])
    assert "change detection for processor team_summary" in res.output and "$processor" in res.output
