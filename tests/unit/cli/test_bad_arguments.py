"""Every command answers bad arguments with an `error:` line and exit 1 or 2: no traceback,
nothing run, nothing recorded. Arguments are parsed by type against the project."""
from __future__ import annotations

import pytest

from framework.cli import COMMANDS, main
from projects import copy_example

D = "2025-01-05"

# command line -> a fragment the error line must contain (the field named, the fix offered)
BAD: list[tuple[list[str], str]] = [
    (["run", "--date", "tomorrow"], "'tomorrow' is not a date"),
    (["run", "--date", "2025-13-01"], "month must be in 1..12"),
    (["run", "--date", D, "--from-phase", "analytic"], "did you mean 'analytics'?"),
    (["run", "--date", D, "--select", "player_game_sumary"], "did you mean 'player_game_summary'?"),
    (["run", "--date", D, "--select", "phase:raws"], "no phase 'raws'"),
    (["run", "--date", D, "--entities", "players=lebronjames"], "--entities"),
    (["run", "--date", D, "--sources-changed", "landing_gamebok"], "did you mean 'landing_gamebook'?"),
    (["run"], "Missing option '--date'"),
    (["simulate", "update", "--date", "2025-02-30", "--entity", "player_lookup=lebronjames"], "not a date"),
    (["simulate", "update", "--date", D, "--entity", "lebronjames", "--set", "points"], "expected KEY=VALUE"),
    (["simulate", "update", "--date", D, "--entity", "lebronjames", "--table", "nbac_gameboo", "--set", "points=3"],
     "did you mean"),
    (["simulate", "update", "--date", D, "--entity", "lebronjames", "--table", "nbac_gamebook", "--set", "pointz=3"],
     "has no column 'pointz' (did you mean 'points'?)"),
    (["simulate", "update", "--date", D, "--entity", "player_lookup=nobody_at_all"], "nbac_gamebook"),
    (["simulate", "update", "--date", D, "--entity", "player_lookp=lebronjames"], "did you mean 'player_lookup'?"),
    (["simulate", "update", "--date", D, "--entity", "team_abbr=LAL"], "edits player entities, not team"),
    (["simulate", "update", "--date", D, "--entity", "lebronjames", "--player", "lebronjames"], "give only --entity"),
    (["run", "--date", D, "--changed", "playr=lebronjames"], "did you mean 'player'?"),
    (["run", "--date", D, "--set", "points=3"], "--set applies to the entities of --changed"),
    (["demo", "--entity", "players=x", "--yes"], "did you mean"),
    (["backfill", "--from", "2025-13-01", "--to", "2025-01-02"], "month must be in 1..12"),
    (["backfill", "--from", "2025-01-05", "--to", "2025-01-01"], "before --from"),
    (["history", "--date", "yesterday"], "not a date"),
    (["history", "--limit", "0"], "--limit"),
    (["history", "--status", "exploded"], "--status"),
    (["sample", "--date", "31/01/2025"], "not a date"),
    (["sample", "--days", "0"], "--days"),
    (["sample", "--days", "many"], "many"),
    (["demo", "--date", "soon"], "not a date"),
    (["status", "--date", "2025-1-5"], "not a date"),
    (["trace", "no-such-correlation-id"], "no runs or triggers recorded"),
    (["render", "player_game_sumary"], "did you mean 'player_game_summary'?"),
    (["render", "player_game_summary", "--kind", "explode"], "--kind"),
    (["graph", "--select", "entity:players"], "did you mean 'player'?"),
    (["ls", "--select", "+nope+"], "no processor 'nope'"),
    (["validate", "--format", "xml"], "--format"),
    (["plan", "--out", "."], "--out"),
    (["apply", "missing-plan.json", "--auto-approve"], "missing-plan.json"),
    (["bus", "status", "no-such-subscription"], "no-such-subscription"),
    (["bus", "dead-letters", "--topic", "no-such-topic"], "no-such-topic"),
    (["bus", "explode"], "No such command"),
    (["package", "--out", "processors.yaml"], "--out"),
    (["init", "processors.yaml"], "processors.yaml"),
    (["init", "newproj", "--name", "bad name!"], "name"),
    (["sweep", "--bogus"], "No such option"),
    (["verify", "--date", "tomorrow"], "not a date"),
    (["verify", "--date", D, "--select", "phase:predictionz"], "did you mean 'predictions'?"),
    (["verify", "--date", D, "--tolerance", "-1"], "--tolerance"),
    (["load", "orders_landin", "rows.csv"], "orders_landin"),
    (["load", "landing_gamebook", "no-such-file.csv"], "no-such-file.csv"),
    (["schema", "bogus"], "bogus"),
    (["completion", "tcsh"], "tcsh"),
    (["test", "--select", "player_game_sumary"], "did you mean 'player_game_summary'?"),
    (["test", "--format", "xml"], "--format"),
    (["ui", "--port", "http"], "--port"),
    (["ui", "--refresh", "0"], "--refresh"),
    (["docs", "generate", "--out", "processors.yaml"], "processors.yaml"),
    (["docs", "explode"], "No such command"),
    (["schema"], "NAME"),
    (["nosuchcommand"], "No such command"),
    (["-t", "no_such_target", "status"], "no_such_target"),
    (["-p", "/nonexistent/dir", "ls"], "processors.yaml not found"),
]


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    return copy_example(tmp_path_factory.mktemp("bad-args") / "proj")


def test_the_walk_covers_every_command():
    walked = {argv[0] if not argv[0].startswith("-") else argv[2] for argv, _ in BAD}
    assert set(COMMANDS) <= walked


@pytest.mark.parametrize("argv,fragment", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_arguments_get_an_error_line_not_a_traceback(example, monkeypatch, capsys, argv, fragment):
    monkeypatch.chdir(example)
    code = main(argv)
    captured = capsys.readouterr()
    err = captured.err
    assert code in (1, 2), (code, captured.out, err)
    assert "Traceback" not in err + captured.out
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert errors, err
    assert fragment in "\n".join(errors), err
    assert not (example / ".pipectl" / "history").exists()


def test_a_bad_date_records_nothing(example, monkeypatch, capsys):
    monkeypatch.chdir(example)
    assert main(["run", "--date", "tomorrow"]) == 2
    assert main(["history", "--json"]) == 0
    assert "tomorrow" not in capsys.readouterr().out
