"""The dbt selection grammar, as a table of cases (selector -> expected set) on both examples
and the small fixture project, plus the errors a typo must produce."""
from __future__ import annotations

from pathlib import Path

import pytest

from framework.cli import main
from framework.graph.graph import PipelineGraph, SelectionError
from framework.graph.selector import parse_atom
from framework.manifest import load_project
from projects import PROCESSORS, write_project

REPO = Path(__file__).resolve().parents[3]
IOT = REPO / "pipelines" / "iot_sensors"


@pytest.fixture(scope="module")
def iot():
    project, _ = load_project(IOT)
    return PipelineGraph(project)


@pytest.fixture(scope="module")
def nba():
    project, _ = load_project(REPO)
    return PipelineGraph(project)


@pytest.fixture
def small(tmp_path):
    tagged = PROCESSORS.replace("    aliases: [OrdersRawProcessor]\n", "    aliases: [OrdersRawProcessor]\n    tags: [landing, daily]\n")
    tagged = tagged.replace("  - name: store_totals\n    phase: analytics\n", "  - name: store_totals\n    phase: analytics\n    tags: [daily]\n")
    write_project(tmp_path, processors=tagged)
    project, _ = load_project(tmp_path)
    return PipelineGraph(project)


RC, SR, SDS, SITE, AF = "readings_clean", "sensor_registry", "sensor_daily_stats", "site_daily_summary", "anomaly_flags"

# IoT graph: readings_clean -> sensor_daily_stats -> site_daily_summary -> anomaly_flags, and
# sensor_registry feeds the last three. A chain of four gives depth something to cut.
IOT_CASES = [
    (["readings_clean"], [], {RC}),
    (["readings_clean+1"], [], {RC, SDS}),
    (["readings_clean+"], [], {RC, SDS, SITE, AF}),
    (["1+site_daily_summary"], [], {SITE, SDS, SR}),
    (["2+site_daily_summary"], [], {SITE, SDS, SR, RC}),
    (["+anomaly_flags"], [], {AF, SITE, SDS, SR, RC}),
    (["1+sensor_daily_stats+1"], [], {SDS, RC, SR, SITE, AF}),
    (["+readings_clean+"], [], {RC, SDS, SITE, AF}),
    (["@readings_clean"], [], {RC, SDS, SITE, AF, SR}),  # @ adds sensor_registry, a parent of a child
    (["tag:rollup"], [], {SDS, SITE}),
    (["tag:rollup,tag:site"], [], {SITE}),  # comma: intersection
    (["tag:rollup tag:alerts"], [], {SDS, SITE, AF}),  # space: union
    (["readings_clean", "anomaly_flags"], [], {RC, AF}),  # repeated --select: union
    (["readings_clean,anomaly_flags"], [], set()),  # intersection of two names is empty
    (["phase:ingest"], [], {RC, SR}),
    (["phase:roll*"], [], {SDS, SITE}),
    (["entity:site"], [], {SITE}),
    (["entity:sensor,phase:rollup"], [], {SDS}),
    (["*_daily_*"], [], {SDS, SITE}),
    (["s?te_daily_summary"], [], {SITE}),
    (["path:sql/site_*.sql"], [], {SITE}),
    (["path:sql"], [], {RC, SR, SDS, SITE, AF}),  # a directory selects what is under it
    (["sql/anomaly_flags.sql"], [], {AF}),  # a bare path is a path: selector, as in dbt
    (["source:raw_readings+"], [], {RC, SDS, SITE, AF}),
    (["source:raw_readings"], [], set()),  # a source alone is no processor
    (["sensor_registry+1,phase:rollup"], [], {SDS, SITE}),
    (["phase:rollup phase:alerting"], ["tag:site"], {SDS, AF}),
    ([], ["phase:ingest"], {SDS, SITE, AF}),  # --exclude alone: everything but
    (["+anomaly_flags"], ["sensor_registry+"], {RC}),
]


@pytest.mark.parametrize("select,exclude,expected", IOT_CASES)
def test_iot_selection(iot, select, exclude, expected):
    assert set(iot.select(select, exclude)) == expected


PGS = "player_game_summary"
NBA_CASES = [
    (["PlayerGameSummaryProcessor"], {PGS}),  # an alias is a name
    (["PlayerGameSummaryProcessor+1"], {PGS, "player_shot_zone_analysis", "player_daily_cache"}),
    (["ml_feature_store_v2"], {"ml_feature_store"}),
    (["odds_api_*"], {"odds_api_game_lines", "odds_api_player_points_props"}),
    (["Prediction*"], {"player_prop_predictions"}),  # wildcards match aliases too
    (["tag:ml"], {"ml_feature_store", "player_prop_predictions"}),
    (["tag:ml,phase:predictions"], {"player_prop_predictions"}),
    (["team_*,entity:team,phase:analytics"], {"team_defense_game_summary", "team_offense_game_summary"}),
    (["ml_feature_store+1 tag:core"], {"ml_feature_store", "player_prop_predictions", PGS}),
]


@pytest.mark.parametrize("select,expected", NBA_CASES)
def test_nba_selection(nba, select, expected):
    assert set(nba.select(select)) == expected


SMALL_CASES = [
    (["tag:daily"], [], ["orders_raw", "store_totals"]),
    (["tag:daily,tag:landing"], [], ["orders_raw"]),
    (["OrdersRawProcessor+"], ["tag:daily"], ["customer_totals"]),
    (["orders_raw+1 phase:analytics"], ["customer_*"], ["orders_raw", "store_totals"]),
    (["@customer_totals"], [], ["orders_raw", "customer_totals"]),
]


@pytest.mark.parametrize("select,exclude,expected", SMALL_CASES)
def test_small_project_selection_in_topological_order(small, select, exclude, expected):
    assert small.select(select, exclude) == expected


ERRORS = [
    ("player_game_sumary", "no processor 'player_game_sumary'; did you mean 'player_game_summary'?"),
    ("2+player_game_sumary+1", "did you mean 'player_game_summary'?"),
    ("phaze:raw", "unknown selection method 'phaze:' in 'phaze:raw'; did you mean 'phase'?"),
    ("tag:mll", "no tag 'mll'; did you mean 'ml'?"),
    ("phase:predictionz", "no phase 'predictionz'; did you mean 'predictions'?"),
    ("entity:players", "no entity kind 'players'; did you mean 'player'?"),
    ("zzz_*", r"no processor matches 'zzz_\*'"),
    ("path:sql/nope.sql", "no processor transform matches path 'sql/nope.sql'"),
    ("source:nbac_gambook", "no source 'nbac_gambook'"),
    ("@+player_game_summary", r"combines '@' with a leading '\+'"),
    ("tag:", "has no value after 'tag:'"),
    ("player_game_summary+x", "malformed selector"),
]


@pytest.mark.parametrize("selector,message", ERRORS)
def test_errors_name_the_problem(nba, selector, message):
    with pytest.raises(SelectionError, match=message):
        nba.select([selector])


def test_errors_in_exclude_too(nba):
    with pytest.raises(SelectionError, match="did you mean 'ml'"):
        nba.select([], ["tag:mll"])


def test_parse_atom_depths():
    a = parse_atom("2+tag:daily+3")
    assert (a.method, a.value, a.parents, a.parents_depth, a.children, a.children_depth) == ("tag", "daily", True, 2, True, 3)
    b = parse_atom("+name")
    assert (b.method, b.parents, b.parents_depth, b.children) == ("name", True, None, False)


def _cli(args, capsys):
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_ls_select_exclude(capsys):
    import json

    code, out, _ = _cli(["-p", str(IOT), "ls", "--select", "tag:rollup tag:alerts", "--exclude", "tag:site", "--json"], capsys)
    assert code == 0
    assert [r["name"] for r in json.loads(out)] == [SDS, AF]
    code, out, _ = _cli(["-p", str(IOT), "ls", "-s", "2+site_daily_summary"], capsys)
    assert code == 0 and "[rollup, site]" in out and AF not in out


@pytest.mark.parametrize("args,message", [
    (["ls", "--exclude", "tag:rolup"], "did you mean 'rollup'?"),
    (["graph", "--select", "phaze:rollup"], "did you mean 'phase'?"),
    (["run", "--date", "2024-01-15", "--select", "readings_clean,anomaly_flags"], "matches no processors"),
    (["run", "--date", "2024-01-15", "--exclude", "rollup_*"], "no processor matches 'rollup_*'"),
    (["verify", "--date", "2024-01-15", "--select", "tag:alerts", "--exclude", "anomaly_flags"], "matches no processors"),
    (["backfill", "--from", "2024-01-15", "--to", "2024-01-16", "-s", "entity:sites"], "did you mean 'site'?"),
])
def test_cli_selection_errors_are_usage_errors(capsys, args, message):
    code, _, err = _cli(["-p", str(IOT), *args], capsys)
    assert code == 2 and message in err


def test_tags_are_validated_as_strings_the_grammar_can_read(tmp_path):
    bad = PROCESSORS.replace("    aliases: [OrdersRawProcessor]\n", "    aliases: [OrdersRawProcessor]\n    tags: [daily, 7, \"a,b\"]\n")
    write_project(tmp_path, processors=bad)
    _, diags = load_project(tmp_path)
    messages = [str(e) for e in diags.errors]
    assert any("processors.yaml:38:" in m and "tags.1: 7 is not of type 'string'" in m for m in messages)
    assert any("tags.2: 'a,b' does not match" in m for m in messages)


@pytest.mark.parametrize("depth", [1, 2, 3, None])
def test_depth_agrees_with_networkx(nba, depth):
    """Selection walks plain adjacency dicts (no networkx on the run path); cross-check the
    depth-limited walks against networkx's shortest path lengths on the NBA graph."""
    import networkx as nx

    g = nba.nx
    for name in nba.processors():
        d = "" if depth is None else str(depth)
        down = {n for n in nx.single_source_shortest_path_length(g, name, cutoff=depth) if n in nba.processors()}
        up = {n for n in nx.single_source_shortest_path_length(g.reverse(), name, cutoff=depth) if n in nba.processors()}
        assert set(nba.select([f"{name}+{d}"])) == down
        assert set(nba.select([f"{d}+{name}"])) == up
