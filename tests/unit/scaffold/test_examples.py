"""`pipectl init --example`: complete, runnable, portable copies of the shipped examples;
`init` and `schema --write` write nothing machine-specific."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import framework
from framework.cli import main
from framework.errors import ConfigError
from framework.project import load
from framework.scaffold import SCHEMAS, example_source, init_example, init_project
from framework.scaffold.examples import EXAMPLES, example_files
from framework.validation import validate

REPO = Path(__file__).resolve().parents[3]


def _machine_specific(root: Path) -> list[str]:
    """Files under ``root`` that mention an absolute path of this machine (``.pipectl/`` is
    local state that ignores itself for git: its caches may name this machine's paths)."""
    needles = (str(REPO), str(Path(framework.__file__).resolve().parent), str(root))
    return [str(p.relative_to(root)) for p in root.rglob("*")
            if p.is_file() and ".pipectl" not in p.relative_to(root).parts
            and any(n in p.read_text(encoding="utf-8", errors="replace") for n in needles)]


def test_the_examples_are_found_in_this_checkout():
    assert example_source("nba_props") == REPO
    assert example_source("iot_sensors") == REPO / "pipelines" / "iot_sensors"
    with pytest.raises(ConfigError, match="unknown example 'nba'.*iot_sensors, nba_props"):
        example_source("nba")


def test_example_files_skip_caches_and_local_state(tmp_path):
    (tmp_path / "processors.yaml").write_text("x")
    for rel in ("sql/a.sql", "__pycache__/m.pyc", ".pipectl/warehouse.duckdb", "sql/__pycache__/x.pyc", "b.duckdb"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    files = [rel for _, rel in example_files(tmp_path, EXAMPLES["iot_sensors"])]
    assert files == ["processors.yaml", "sql/a.sql"]


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_init_example_writes_a_complete_portable_copy(tmp_path, capsys, name):
    dest = tmp_path / "copy"
    assert main(["init", str(dest), "--example", name]) == 0
    out = capsys.readouterr().out
    assert f"example '{name}' copied; validated: ok" in out
    source = example_source(name)
    for _, rel in example_files(source, EXAMPLES[name]):
        assert (dest / rel).is_file(), rel
    for manifest, schema in SCHEMAS.items():
        if (dest / manifest).exists():
            assert (dest / manifest).read_text().splitlines()[0] == f"# yaml-language-server: $schema=schemas/{schema}"
            assert (dest / "schemas" / schema).is_file()
    assert _machine_specific(dest) == []
    assert [str(d) for d in validate(dest).sorted()] == []
    project = load(dest)
    assert set(project.processors) == set(load(source).processors)


def test_init_example_never_overwrites_without_force(tmp_path):
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "pipelines" / "__init__.py").write_text("# mine\n")
    with pytest.raises(ConfigError, match="already has pipelines/__init__.py"):
        init_example(tmp_path, "nba_props")
    assert (tmp_path / "pipelines" / "__init__.py").read_text() == "# mine\n"
    assert not (tmp_path / "processors.yaml").exists()  # nothing written when refused
    init_example(tmp_path, "nba_props", force=True)
    assert (tmp_path / "processors.yaml").is_file()


def test_init_example_and_name_are_exclusive(tmp_path, capsys):
    assert main(["init", str(tmp_path), "--example", "nba_props", "--name", "x"]) == 2
    assert "--name applies to the skeleton only" in capsys.readouterr().err


def test_the_skeleton_points_its_editor_line_at_schemas_in_the_project(tmp_path):
    result = init_project(tmp_path / "shop")
    root = result.root
    assert "schemas/processors.schema.json" in result.files
    assert (root / "processors.yaml").read_text().startswith("# yaml-language-server: $schema=schemas/processors.schema.json\n")
    assert (root / "topics.yaml").read_text().startswith("# yaml-language-server: $schema=schemas/topics.schema.json\n")
    assert json.loads((root / "schemas" / "processors.schema.json").read_text())["$schema"]
    assert _machine_specific(root) == []


def test_schema_command_prints_and_rewrites(tmp_path, capsys):
    init_project(tmp_path)
    (tmp_path / "schemas" / "topics.schema.json").write_text("{}")  # stale, e.g. from an older pipectl
    assert main(["-p", str(tmp_path), "schema", "--write"]) == 0
    installed = (Path(framework.__file__).resolve().parent / "schemas" / "topics.schema.json").read_text()
    assert (tmp_path / "schemas" / "topics.schema.json").read_text() == installed
    capsys.readouterr()
    assert main(["schema", "topics"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(installed)
    assert main(["schema"]) == 2


def test_the_skeleton_never_copies_byte_code(tmp_path, monkeypatch):
    """An installed wheel byte-compiles the template's sample_data.py into __pycache__/ beside it."""
    import shutil

    import framework.scaffold as scaffold

    template = tmp_path / "template"
    shutil.copytree(scaffold.TEMPLATE_DIR, template, ignore=shutil.ignore_patterns("__pycache__"))
    (template / "__pycache__").mkdir()
    (template / "__pycache__" / "sample_data.cpython-311.pyc").write_bytes(b"\xa7\r\r\n\x00")
    monkeypatch.setattr(scaffold, "TEMPLATE_DIR", template)
    result = init_project(tmp_path / "shop")
    assert "sample_data.py" in result.files and not any("__pycache__" in f for f in result.files)
