"""The published pre-commit hooks run on what `pipectl init` writes (sql/*.sql, manifests
in any folder, template overrides, Python transforms), not on unrelated files."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from framework.scaffold import init_project

MATCH = ["processors.yaml", "topics.yaml", "pipectl.yaml", "sql/orders_raw.sql", "warehouse/processors.yaml",
         "pipelines/nba_props/raw/nbac_schedule.sql", "templates/duckdb/_dialect.sql.j2", "pipelines/nba_props/export.py"]
SKIP = ["README.md", "src/app.py", "my_processors.yaml", "schemas/processors.schema.json", ".github/workflows/ci.yml"]


REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def hooks():
    return yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())


def test_hooks_run_pipectl_validate_without_filenames(hooks):
    assert {h["id"]: h["entry"] for h in hooks} == {"pipectl-validate": "pipectl validate",
                                                  "pipectl-validate-strict": "pipectl validate --strict"}
    assert all(h["language"] == "python" and h["pass_filenames"] is False for h in hooks)


@pytest.mark.parametrize("path", MATCH + SKIP)
def test_files_pattern(hooks, path):
    for hook in hooks:
        assert bool(re.search(hook["files"], path)) == (path in MATCH), (hook["id"], path)


def test_every_file_init_writes_that_validate_reads_triggers_the_hook(hooks, tmp_path):
    result = init_project(tmp_path / "p")
    checked = [f for f in result.files if f.endswith((".yaml", ".sql"))]
    assert "sql/orders_raw.sql" in checked
    assert all(re.search(hooks[0]["files"], f) for f in checked)
