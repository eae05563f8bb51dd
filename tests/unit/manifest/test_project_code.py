"""A project's own Python (transforms, sample hooks) imports from the project folder with
nothing on PYTHONPATH, and wins over a same-named package imported from elsewhere."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import pipelines  # the repository's example package: a "foreign" pipelines for the copies below
from framework.errors import ConfigError
from framework.project import load
from framework.manifest.code import import_project_module, module_file
from framework.drive.session import sample_module

REPO = Path(__file__).resolve().parents[3]


def _hook_project(root: Path, layout: str, marker: str) -> Path:
    """The small fixture project plus a sample hook returning ``marker``, in one of the two
    supported layouts (package of the pipeline, or beside processors.yaml)."""
    from projects import write_project

    write_project(root)
    name = load(root).name
    hook = f"def generate(warehouse, start, days=1, seed=42):\n    return {{'marker': {marker!r}}}\n"
    if layout == "package":
        (root / "pipelines" / name).mkdir(parents=True, exist_ok=True)
        (root / "pipelines" / "__init__.py").write_text("")
        (root / "pipelines" / name / "__init__.py").write_text("")
        (root / "pipelines" / name / "sample_data.py").write_text(hook)
    else:
        (root / "sample_data.py").write_text(hook)
    return root


@pytest.fixture(autouse=True)
def _restore_modules():
    saved_path, saved = list(sys.path), {k: v for k, v in sys.modules.items() if k.split(".")[0] in ("pipelines", "sample_data")}
    yield
    sys.path[:] = saved_path
    for name in [n for n in sys.modules if n.split(".")[0] in ("pipelines", "sample_data")]:
        del sys.modules[name]
    sys.modules.update(saved)


@pytest.mark.parametrize("layout", ["package", "root"])
def test_the_sample_hook_comes_from_the_project_folder(tmp_path, layout):
    root = _hook_project(tmp_path / "shop", layout, "shop")
    assert sample_module(load(root), "generate")(None, "2025-01-01") == {"marker": "shop"}


def test_the_project_copy_wins_over_a_pipelines_package_imported_elsewhere(tmp_path):
    assert Path(pipelines.__file__).resolve().parent == REPO / "pipelines"  # imported from the repository
    one = _hook_project(tmp_path / "one", "package", "one")
    two = _hook_project(tmp_path / "two", "package", "two")  # same project name, same module path
    assert sample_module(load(one), "generate")(None, "d") == {"marker": "one"}
    assert sample_module(load(two), "generate")(None, "d") == {"marker": "two"}
    assert Path(sys.modules["pipelines"].__file__).resolve().parent == (two / "pipelines").resolve()


def test_a_hook_is_taken_from_the_module_defining_it_without_importing_the_other(tmp_path):
    """sample_data.py re-exporting apply_update from sample_edits.py (the NBA example) is not
    imported to find it: the simulator it loads cost an update more than its pipeline."""
    root = _hook_project(tmp_path / "shop", "root", "x")
    (root / "sample_data.py").write_text("from sample_edits import apply_update  # noqa: F401\n"
                                         "raise RuntimeError('sample_data was imported')\n")
    (root / "sample_edits.py").write_text("def apply_update(warehouse, day, entity, **changes):\n    return 'edits'\n")
    assert sample_module(load(root), "apply_update")(None, "d", "e") == "edits"  # importing sample_data raises
    loaded = sys.modules.get("sample_data")  # (another test's root-level sample_data may be loaded)
    assert loaded is None or Path(loaded.__file__).resolve() != (root / "sample_data.py").resolve()
    (root / "sample_data.py").write_text("raise RuntimeError('sample_data was imported')\ndef generate(*a):\n    pass\n")
    with pytest.raises(RuntimeError, match="sample_data was imported"):  # a hook it alone defines: imported
        sample_module(load(root), "generate")


def test_a_missing_hook_names_where_it_looked(tmp_path):
    root = _hook_project(tmp_path / "shop", "root", "x")
    with pytest.raises(ConfigError, match=r"no sample-data hook 'apply_update' \(looked in sample_data.py\)"):
        sample_module(load(root), "apply_update")


def test_a_project_may_not_replace_pipectl_itself(tmp_path):
    (tmp_path / "framework").mkdir()
    (tmp_path / "framework" / "__init__.py").write_text("")
    with pytest.raises(ConfigError, match="may not hold a top-level 'framework' package"):
        import_project_module(tmp_path, "framework.evil")
    assert module_file(tmp_path, "framework") == tmp_path / "framework" / "__init__.py"


def test_the_iot_example_samples_without_pythonpath(tmp_path):
    """The IoT example keeps sample_data.py beside its processors.yaml: `pipectl sample` finds
    it from any working directory, with only pipectl itself importable."""
    copy = tmp_path / "iot"
    shutil.copytree(REPO / "pipelines" / "iot_sensors", copy, ignore=shutil.ignore_patterns("__pycache__"))
    only_pipectl = tmp_path / "site"  # an import path holding pipectl and nothing of the repository
    only_pipectl.mkdir()
    (only_pipectl / "framework").symlink_to(Path(__import__("framework").__file__).resolve().parent)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(only_pipectl)
    out = subprocess.run([sys.executable, "-m", "framework.cli", "-p", str(copy), "sample", "--date", "2025-03-01"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "readings" in out.stdout
    check = subprocess.run([sys.executable, "-c", "import pipelines"], cwd=tmp_path, env=env, capture_output=True, timeout=60)
    assert check.returncode != 0  # the repository's example package was not importable
