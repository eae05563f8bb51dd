"""Rendering: template lookup order, the transform contract, parameters, input semantics."""
from __future__ import annotations

import datetime as dt

import jinja2
import pytest

from framework.errors import ConfigError
from framework.project import load
from framework.sql.context import input_specs
from framework.sql.dialects import get_dialect
from framework.sql.environment import BUILTIN_TEMPLATES, search_path
from framework.sql.render import query_params, render_statement, render_transform


def test_search_path_most_specific_first(project_dir):
    paths = search_path(project_dir, "bigquery")
    root = project_dir.resolve() / "templates"
    assert paths == [root / "bigquery", root, BUILTIN_TEMPLATES / "bigquery", BUILTIN_TEMPLATES]
    assert (BUILTIN_TEMPLATES / "detect.sql.j2").is_file()


def test_project_dialect_override_beats_generic_and_builtin(project_dir):
    (project_dir / "templates" / "duckdb").mkdir(parents=True)
    (project_dir / "templates" / "ddl.sql.j2").write_text("-- generic override {{ table.fqn }}\n")
    (project_dir / "templates" / "duckdb" / "ddl.sql.j2").write_text("-- duckdb override {{ table.fqn }}\n")
    project = load(project_dir)
    assert render_statement(project, "rosters", "ddl", "duckdb").sql == "-- duckdb override raw.rosters\n"
    assert render_statement(project, "rosters", "ddl", "bigquery").sql == "-- generic override raw.rosters\n"


def test_project_can_override_a_dialect_macro(project_dir):
    (project_dir / "templates" / "duckdb").mkdir(parents=True)
    builtin = (BUILTIN_TEMPLATES / "duckdb" / "_dialect.sql.j2").read_text()
    macro = "{% macro row_hash(exprs) %}"
    assert macro + "hash(" in builtin
    (project_dir / "templates" / "duckdb" / "_dialect.sql.j2").write_text(builtin.replace(macro + "hash(", macro + "md5_number("))
    for grouped in (False, True):
        sql = render_statement(load(project_dir), "rosters", "detect", "duckdb", grouped=grouped).sql
        assert "md5_number(i.team_abbr)" in sql and "hash(i." not in sql


def test_strict_undefined_in_templates(project_dir):
    (project_dir / "templates").mkdir()
    (project_dir / "templates" / "ddl.sql.j2").write_text("CREATE TABLE {{ tabel.fqn }} (x INT)\n")
    with pytest.raises(jinja2.UndefinedError):
        render_statement(load(project_dir), "rosters", "ddl", "duckdb")


@pytest.mark.parametrize("dialect,ph", [("duckdb", "$"), ("bigquery", "@")])
def test_transform_contract(project_dir, dialect, ph):
    project = load(project_dir)
    sql = render_transform(project, "player_summary", dialect, full_batch=False)
    assert "FROM raw.player_boxscores AS b" in sql and "FROM landing.schedule AS s" in sql
    assert f"b.game_date = {ph}game_date" in sql
    assert f"b.player_lookup IN (SELECT UNNEST({ph}entity_ids))" in sql
    full = render_transform(project, "player_summary", dialect, full_batch=True)
    assert "AND TRUE" in full and "entity_ids" not in full


def test_jinja_transform_renders_like_the_fast_path(project_dir):
    path = project_dir / "pipelines" / "golden" / "player_summary.sql"
    plain = render_transform(load(project_dir), "player_summary", "duckdb", False)
    path.write_text(path.read_text() + "{% if dialect == 'duckdb' %}{% endif %}{# comment #}")
    assert render_transform(load(project_dir), "player_summary", "duckdb", False) == plain


def test_transform_trailing_semicolon_is_dropped(project_dir):
    path = project_dir / "pipelines" / "golden" / "rosters.sql"
    path.write_text(path.read_text().rstrip() + ";\n")
    assert not render_transform(load(project_dir), "rosters", "duckdb", True).endswith(";")


def test_unknown_ref_is_an_undefined_error_with_a_hint(project_dir):
    path = project_dir / "pipelines" / "golden" / "player_summary.sql"
    path.write_text(path.read_text().replace("ref('player_boxscores')", "ref('player_boxscore')"))
    with pytest.raises(jinja2.UndefinedError, match="did you mean 'player_boxscores'"):
        render_transform(load(project_dir), "player_summary", "bigquery", False)


def test_statement_parameters(project_dir):
    project = load(project_dir)
    assert render_statement(project, "team_summary", "detect", "duckdb").params == ("game_date", "processor")
    assert render_statement(project, "team_summary", "merge", "bigquery").params == ("game_date", "entity_ids")
    assert render_statement(project, "team_summary", "merge", "bigquery", full_batch=True).params == ("game_date",)
    assert render_statement(project, "team_summary", "ddl", "bigquery").params == ()


def test_no_value_is_pasted_into_sql(project_dir):
    project = load(project_dir)
    for dialect in ("duckdb", "bigquery"):
        for kind in ("detect", "filter", "merge", "transform"):
            sql = render_statement(project, "team_summary", kind, dialect).sql
            assert "2024" not in sql and "LAL" not in sql


def test_query_params_are_typed(project_dir):
    project = load(project_dir)
    params = query_params(project, ("game_date", "entity_ids", "processor"), "2024-01-15", ["a", "b"], processor="x")
    by_name = {p.name: p for p in params}
    assert by_name["game_date"].value == dt.date(2024, 1, 15) and by_name["game_date"].type == "DATE"
    assert by_name["entity_ids"].array and by_name["entity_ids"].value == ["a", "b"]
    assert query_params(project, ("entity_ids",), None, ["7"], "INT64")[0].value == [7]
    with pytest.raises(ConfigError, match="entity_ids"):
        query_params(project, ("entity_ids",), None, None)


def test_unknown_kind_and_processor(project_dir):
    project = load(project_dir)
    with pytest.raises(ConfigError, match="unknown statement kind"):
        render_statement(project, "rosters", "bogus", "duckdb")
    with pytest.raises(ConfigError, match="did you mean 'rosters'"):
        render_statement(project, "roster", "ddl", "duckdb")
    with pytest.raises(ConfigError, match="unknown SQL dialect"):
        render_statement(project, "rosters", "ddl", "postgres")


def test_input_scopes_and_compared_columns(project_dir):
    project = load(project_dir)
    summary = {s.name: s for s in input_specs(project, project.processors["player_summary"])}
    assert summary["player_boxscores"].scope == "entity"
    assert summary["player_boxscores"].columns == ("points", "minutes")  # upstream change_detection.columns
    assert summary["schedule"].scope == "partition"  # no player key, no mapping
    team = {s.name: s for s in input_specs(project, project.processors["team_summary"])}
    assert team["player_boxscores"].scope == "mapped" and team["player_boxscores"].columns == ("points",)  # compare override
    assert team["player_boxscores"].row_columns == ("player_lookup", "points")
    assert team["rosters"].columns == ("team_abbr",)  # all non-key columns
    assert team["rosters"].mapping_table == "raw.rosters" and team["rosters"].mapping_partitioned


def test_ambiguous_mapping_must_be_named(project_dir):
    text = (project_dir / "processors.yaml").read_text()
    text = text.replace("  - {name: roster, from: player, to: team, via: rosters}",
                        "  - {name: roster, from: player, to: team, via: rosters}\n"
                        "  - {name: roster2, from: player, to: team, via: rosters_landing}")
    (project_dir / "processors.yaml").write_text(text)
    project = load(project_dir)
    with pytest.raises(ConfigError, match="several entity mappings"):
        input_specs(project, project.processors["team_summary"])


def test_dialect_type_table():
    duck = get_dialect("duckdb")
    assert duck.column_type("STRING") == "VARCHAR" and duck.column_type("INT64", "REPEATED") == "BIGINT[]"
    assert get_dialect("bigquery").column_type("FLOAT64", "REPEATED") == "ARRAY<FLOAT64>"
    assert duck.manifest_type("DECIMAL(38,9)") == "NUMERIC" and duck.manifest_type("VARCHAR[]") == "STRING"
    assert duck.ident("order") == '"order"' and get_dialect("bigquery").ident("order") == "`order`" and duck.ident("pts") == "pts"


def test_literal_filter_refuses_values():
    from framework.sql.environment import environment

    env = environment(None, "duckdb")
    assert env.from_string("{{ 'player_boxscores' | literal }}").render() == "'player_boxscores'"
    with pytest.raises(ValueError, match="query parameters"):
        env.from_string("{{ x | literal }}").render(x="a' OR '1'='1")


def test_ident_quotes_and_escapes_names_that_are_not_plain_identifiers():
    """A name that is not a plain identifier (a row key from a Python transform, a name read
    back from the backend) is quoted with the dialect's escaping, never pasted bare."""
    duck, bq = get_dialect("duckdb"), get_dialect("bigquery")
    assert duck.ident("odd name") == '"odd name"'
    assert duck.ident('a"b') == '"a""b"'
    assert bq.ident("a`b") == "`a\\`b`" and bq.ident("a\\b") == "`a\\\\b`"
    assert duck.ident("x) VALUES (1); DROP TABLE t; --") == '"x) VALUES (1); DROP TABLE t; --"'


def test_input_errors_name_the_fix(project_dir):
    """Called outside validate (the runner renders directly), a broken reference still says
    what to change: the closest name, or where to declare it."""
    import dataclasses

    project = load(project_dir)
    team = project.processors["team_summary"]
    (mapping,) = [m for m in project.entity_mappings if m.name == "roster"]
    broken = dataclasses.replace(project, entity_mappings=tuple(
        dataclasses.replace(m, via="roster") if m is mapping else m for m in project.entity_mappings))
    with pytest.raises(ConfigError) as err:
        input_specs(broken, team)
    assert "roster -> team" not in err.value.message and "entity mapping roster" in err.value.message
    assert err.value.hint == "did you mean 'rosters'?"
    bad_input = dataclasses.replace(team, inputs=tuple(dataclasses.replace(i, mapping="rooster") if i.name == "rosters" else i
                                                       for i in team.inputs))
    with pytest.raises(ConfigError) as err:
        input_specs(project, bad_input)
    assert err.value.hint == "did you mean 'roster'?"


def test_missing_query_parameter_names_it_and_the_fix(project_dir):
    from framework.sql.render import query_params

    project = load(project_dir)
    with pytest.raises(ConfigError) as err:
        query_params(project, ["processor", "run_id"], processor="x")
    assert "'run_id'" in err.value.message and err.value.hint and "run_id=..." in err.value.hint
