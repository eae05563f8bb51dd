"""Where `pipectl demo` runs: only in an example copy it made itself, in a user's project
only after a yes, and every check before anything is touched."""
from __future__ import annotations

import json

import pytest

from framework.cli import main
from framework.errors import ConfigError
from framework.drive import demo_place
from framework.scaffold import init_project
from projects import copy_example


def _demo(capsys, folder, *args) -> tuple[int, str]:
    code = main(["-p", str(folder), "demo", "-q", *args])
    return code, capsys.readouterr().err


def test_an_empty_folder_gets_a_marked_copy_then_reuses_it(tmp_path):
    place = demo_place.choose(tmp_path)
    assert (place.kind, place.root) == ("create", tmp_path / "pipectl-demo")
    assert not place.root.exists()  # choosing touches nothing
    said = demo_place.prepare(place, "9.9")
    marker = json.loads((place.root / demo_place.MARKER).read_text())
    assert marker["made_by"] == "pipectl demo" and marker["pipectl_version"] == "9.9"
    assert "processors.yaml" in marker["files"] and said[0].startswith("created ")

    again = demo_place.choose(tmp_path)
    assert again.kind == "reuse" and again.notes == ()
    (place.root / "pipelines" / "nba_props" / "sim.py").unlink()  # nobody edited it... but a file went missing
    assert demo_place.choose(tmp_path).notes  # a deletion is an edit: the copy is kept as it is


def test_an_unedited_copy_is_refreshed_and_an_edited_one_kept(tmp_path):
    root = tmp_path / "pipectl-demo"
    demo_place.prepare(demo_place.choose(tmp_path), "1")
    marker = json.loads((root / demo_place.MARKER).read_text())
    (root / "pipelines" / "old_file.py").write_text("x")  # a file an older pipectl shipped
    marker["files"]["pipelines/old_file.py"] = demo_place._digest(root / "pipelines" / "old_file.py")
    (root / demo_place.MARKER).write_text(json.dumps(marker))
    said = demo_place.prepare(demo_place.choose(tmp_path), "2")
    assert "refreshed" in said[0] and not (root / "pipelines" / "old_file.py").exists()
    assert json.loads((root / demo_place.MARKER).read_text())["pipectl_version"] == "2"

    (root / "processors.yaml").write_text((root / "processors.yaml").read_text() + "# my edit\n")
    place = demo_place.choose(tmp_path)
    said = demo_place.prepare(place, "3")
    assert "with your edits (processors.yaml)" in said[0]
    assert (root / "processors.yaml").read_text().endswith("# my edit\n")


def test_a_pipectl_demo_folder_pipectl_did_not_make_is_left_alone(tmp_path, capsys):
    (tmp_path / "pipectl-demo").mkdir()
    (tmp_path / "pipectl-demo" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="was not made by `pipectl demo`"):
        demo_place.choose(tmp_path)
    code, err = _demo(capsys, tmp_path)
    assert code == 1 and "not made by `pipectl demo`" in err and (tmp_path / "pipectl-demo" / "notes.txt").read_text() == "mine"


def test_the_repository_root_is_a_marked_example(repo_root):
    assert demo_place.choose(repo_root).kind == "example"


def _with_state(root):
    state = root / ".pipectl"
    state.mkdir()
    (state / "warehouse.duckdb").write_text("precious")
    return state / "warehouse.duckdb"


def test_a_users_project_needs_a_yes(tmp_path, capsys):
    root = copy_example(tmp_path / "mine")  # the NBA example's files, but not a copy the demo made
    precious = _with_state(root)
    assert demo_place.choose(root).kind == "project"
    code, err = _demo(capsys, root)  # no terminal to ask on, no --yes: refused
    assert code == 1 and "is a project pipectl demo did not make" in err and "pass --yes" in err
    assert precious.read_text() == "precious"


def test_another_project_is_refused_before_the_reset_even_with_a_yes(tmp_path, capsys):
    root = init_project(tmp_path / "shop").root  # has sample hooks, but is not the NBA example
    precious = _with_state(root)
    code, err = _demo(capsys, root, "--yes")
    assert code == 1 and "pipectl demo needs the project's UPDATE_DEFAULTS" in err
    assert precious.read_text() == "precious"


def test_a_copy_without_sample_hooks_is_refused_before_the_reset(tmp_path, capsys):
    root = copy_example(tmp_path / "mine")
    for name in ("sample_data.py", "sample_edits.py"):
        (root / "pipelines" / "nba_props" / name).unlink()
    precious = _with_state(root)
    code, err = _demo(capsys, root, "--yes")
    assert code == 1 and "no sample-data hook 'generate'" in err
    assert precious.read_text() == "precious"


def test_a_non_embedded_target_is_refused_before_anything_is_touched(tmp_path, capsys):
    root = copy_example(tmp_path / "mine")
    (root / "pipectl.yaml").write_text("version: 1\ndefault_target: cloud\ntargets:\n  cloud:\n    project: p\n"
                                       "    warehouse: {type: bigquery}\n")
    (root / ".pipectl").mkdir()
    (root / ".pipectl" / "keep").write_text("x")
    code, err = _demo(capsys, root, "--yes")
    assert code == 1 and "runs only on embedded backends" in err
    assert (root / ".pipectl" / "keep").exists()
