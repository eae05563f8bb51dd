"""`pipectl completion bash|zsh|fish` prints a script, and completion (click's protocol:
``_PIPECTL_COMPLETE`` and ``COMP_WORDS``/``COMP_CWORD``, as the scripts call it) offers the
project's processors, aliases, phases, targets, entity keys and selection methods."""
from __future__ import annotations

import pytest

from framework.cli import main
from projects import copy_example


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    root = copy_example(tmp_path_factory.mktemp("complete") / "nba")
    (root / "pipectl.yaml").write_text("version: 1\ntargets:\n  local: {}\n  staging:\n    warehouse: {type: duckdb}\n")
    return root


def _complete(monkeypatch, capsys, words: str, shell: str = "bash") -> list[str]:
    """What the shell would offer for the last word of ``words`` (bash: type,value lines)."""
    parts = words.split(" ")
    monkeypatch.setenv("_PIPECTL_COMPLETE", f"{shell}_complete")
    monkeypatch.setenv("COMP_WORDS", words)
    monkeypatch.setenv("COMP_CWORD", str(len(parts) - 1))
    main(parts[1:])
    out = capsys.readouterr().out
    if shell == "bash":
        return [line.split(",", 1)[1] for line in out.splitlines() if line]
    return [line for line in out.splitlines() if line]


@pytest.mark.parametrize("shell,marker", [("bash", "complete -o nosort -F _pipectl_completion pipectl"),
                                          ("zsh", "#compdef pipectl"), ("fish", "complete --no-files --command pipectl")])
def test_completion_prints_the_shell_script(shell, marker, capsys):
    assert main(["completion", shell]) == 0
    script = capsys.readouterr().out
    assert marker in script and "_PIPECTL_COMPLETE" in script


def test_completion_of_an_unknown_shell_is_a_usage_error(capsys):
    assert main(["completion", "tcsh"]) == 2
    assert "tcsh" in capsys.readouterr().err


def test_commands_and_processors_and_aliases(example, monkeypatch, capsys):
    monkeypatch.chdir(example)
    assert {"completion", "run", "render", "validate"} <= set(_complete(monkeypatch, capsys, "pipectl "))
    assert _complete(monkeypatch, capsys, "pipectl render player_g") == ["player_game_summary"]
    aliases = _complete(monkeypatch, capsys, "pipectl render Player")
    assert aliases and all(a.startswith("Player") for a in aliases)  # the manifests' aliases (class names)


def test_phases_targets_entity_keys_and_selection_methods(example, monkeypatch, capsys):
    monkeypatch.chdir(example)
    assert _complete(monkeypatch, capsys, "pipectl run --date 2025-01-06 --from-phase an") == ["analytics"]
    assert _complete(monkeypatch, capsys, "pipectl -t ") == ["local", "staging"]
    assert _complete(monkeypatch, capsys, "pipectl simulate update --entity ") == ["game_id=", "player_lookup=", "team_abbr="]
    assert {"tag:", "phase:", "entity:", "path:", "source:"} <= set(_complete(monkeypatch, capsys, "pipectl ls --select "))
    assert "tag:ml" in _complete(monkeypatch, capsys, "pipectl ls --select tag:")
    assert _complete(monkeypatch, capsys, "pipectl ls --select phase:prec") == ["phase:precompute"]
    assert _complete(monkeypatch, capsys, "pipectl ls --select entity:t") == ["entity:team"]
    assert _complete(monkeypatch, capsys, "pipectl ls --select +player_game_s") == ["+player_game_summary"]
    assert _complete(monkeypatch, capsys, "pipectl ls --select phase:raw,player_game_s") == ["phase:raw,player_game_summary"]


def test_zsh_completion_carries_descriptions(example, monkeypatch, capsys):
    monkeypatch.chdir(example)
    out = _complete(monkeypatch, capsys, "pipectl render player_game_s", shell="zsh")
    assert out[:3] == ["plain", "player_game_summary", "analytics"]  # type, value, help (the phase)


def test_completion_outside_a_project_offers_commands_and_no_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert _complete(monkeypatch, capsys, "pipectl render ") == []
    assert "run" in _complete(monkeypatch, capsys, "pipectl r")
    assert "error" not in capsys.readouterr().err
