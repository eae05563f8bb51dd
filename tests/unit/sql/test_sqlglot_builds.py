"""pipectl on both builds of sqlglot: compiled (the ``c`` extra, sqlglotc) and pure Python.

pyproject.toml installs sqlglotc only where it has wheels (CPython 3.11+ on glibc Linux
x86_64/aarch64, macOS, Windows x64); everywhere else pipectl runs on sqlglot's pure-Python
modules. Both must give the same diagnostics byte for byte: sqlglotc is the same source
compiled with mypyc, but its classes are native (no ``__dict__``, no ``__code__`` on
functions), so anything that leans on Python internals could differ. This runs
``validate --format json`` in a child process with a copy of sqlglot minus its compiled
modules first on ``PYTHONPATH`` and compares it with the compiled build's output, on the
example project and on a project with errors of every SQL rule class.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]

# faults of every SQL rule class, written into the golden project's transforms
FAULTS = {
    "player_summary.sql": ("b.points,", "b.pointz,"),  # unknown-column
    "team_summary.sql": ("SUM(b.points) AS team_points", "ARRAY_AGG(b.points LIMIT 2) AS team_points"),  # DuckDB cannot derive it
    "rosters.sql": ("SELECT", "SELECT )"),  # sql-parse
}


def _compiled() -> bool:
    from sqlglot import tokens

    return bool(tokens.SQLGLOTC_INSTALLED)


def _pure_copy(into: Path) -> Path:
    import sqlglot

    src = Path(sqlglot.__file__).resolve().parent
    shutil.copytree(src, into / "sqlglot", ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__"))
    return into


def _validate(project: Path, pythonpath: list[str]) -> bytes:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(pythonpath), "PIPECTL_NO_CACHE": "1", "PIPECTL_NO_POOL": "1"}
    proc = subprocess.run([sys.executable, "-m", "framework.cli", "-p", str(project), "validate", "--format", "json"],
                          capture_output=True, env=env, cwd=project, timeout=300)
    assert proc.returncode in (0, 1), proc.stderr.decode()[-2000:]
    return proc.stdout


def test_sqlglotc_matches_sqlglot_release():
    """sqlglotc's modules lay over sqlglot's own files: another release would mix the two."""
    try:
        compiled = version("sqlglotc")
    except PackageNotFoundError:
        pytest.skip("sqlglotc is not installed here: pipectl runs on pure-Python sqlglot")
    import sqlglot

    assert compiled == version("sqlglot") == sqlglot.__version__
    assert _compiled(), "sqlglotc is installed but sqlglot imports its pure-Python modules"


def test_pure_python_sqlglot_gives_the_same_diagnostics(tmp_path):
    if not _compiled():
        pytest.skip("sqlglot is pure Python here already: every other test covers that path")
    pure = _pure_copy(tmp_path / "pure")
    probe = subprocess.run([sys.executable, "-c", "from sqlglot import tokens; print(tokens.SQLGLOTC_INSTALLED)"],
                           capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(pure)}, check=True)
    assert probe.stdout.strip() == "False"  # the copy really is the pure build

    broken = tmp_path / "broken"
    shutil.copytree(REPO / "tests" / "golden" / "project", broken)
    for name, (old, new) in FAULTS.items():
        path = broken / "pipelines" / "golden" / name
        text = path.read_text()
        assert old in text
        path.write_text(text.replace(old, new, 1))

    for project in (REPO, broken):
        compiled = _validate(project, [str(REPO)])
        assert _validate(project, [str(pure), str(REPO)]) == compiled
    codes = compiled.decode()
    for code in ("unknown-column", "sql-parse", "not valid duckdb SQL"):
        assert code in codes  # the broken project reached every reporting path


# (python_version, implementation, sys_platform, machine) -> whether sqlglotc has a wheel there
PLATFORMS = {
    ("3.11", "CPython", "linux", "x86_64"): True,
    ("3.13", "CPython", "linux", "aarch64"): True,
    ("3.12", "CPython", "darwin", "arm64"): True,
    ("3.14", "CPython", "darwin", "x86_64"): True,
    ("3.12", "CPython", "win32", "AMD64"): True,
    ("3.12", "CPython", "win32", "ARM64"): False,
    ("3.10", "CPython", "linux", "x86_64"): False,  # sqlglotc has no cp310 wheel
    ("3.11", "PyPy", "linux", "x86_64"): False,
    ("3.11", "CPython", "linux", "ppc64le"): False,
}


def test_compiled_extra_only_where_wheels_exist():
    """pyproject's markers ask for ``sqlglot[c]`` only where sqlglotc publishes wheels (elsewhere
    pip would try to build it from source with mypyc), and sqlglot itself everywhere."""
    tomllib = pytest.importorskip("tomllib")
    from packaging.requirements import Requirement

    deps = [Requirement(d) for d in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]]
    sqlglot = [r for r in deps if r.name == "sqlglot"]
    for (py, impl, plat, machine), wheel in PLATFORMS.items():
        env = {"python_version": py, "python_full_version": py + ".0", "platform_python_implementation": impl,
               "implementation_name": impl.lower(), "sys_platform": plat, "platform_machine": machine}
        active = [r for r in sqlglot if r.marker is None or r.marker.evaluate(env)]
        assert any(not r.extras for r in active), (py, impl, plat, machine)
        assert any("c" in r.extras for r in active) == wheel, (py, impl, plat, machine)
        assert all(r.specifier == active[0].specifier for r in active)  # one range: sqlglot pins sqlglotc to itself
