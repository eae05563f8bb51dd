"""`framework.runtime` was split into `framework.run` and `framework.drive`; old imports (the
`sample_data.py` hook of projects scaffolded before the split imports
`framework.runtime.landing`) keep working with a DeprecationWarning naming the new home."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

_PROBE = """
import json, sys, warnings
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as caught:
    from framework.runtime.landing import write_rows
    from framework.runtime import session
    import framework.runtime.transform as old_transform
import framework.drive.landing, framework.drive.session, framework.run.transform
print(json.dumps({
    "same": [write_rows is framework.drive.landing.write_rows, session is framework.drive.session,
             old_transform is framework.run.transform,
             sys.modules["framework.runtime.landing"] is framework.drive.landing],
    "warnings": [(w.category.__name__, str(w.message)) for w in caught],
}))
"""


def test_old_runtime_imports_resolve_to_the_moved_modules_with_a_warning() -> None:
    done = subprocess.run([sys.executable, "-c", _PROBE], cwd=REPO, capture_output=True, text=True, timeout=60,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["same"] == [True, True, True, True]
    messages = [m for category, m in result["warnings"] if category == "DeprecationWarning"]
    assert any("framework.runtime.landing moved to framework.drive.landing" in m for m in messages)
    assert any("framework.runtime.transform moved to framework.run.transform" in m for m in messages)


def test_an_unknown_runtime_module_is_still_an_import_error() -> None:
    with pytest.raises(ModuleNotFoundError):
        __import__("framework.runtime.no_such_module")


def test_every_moved_name_exists_in_its_new_package() -> None:
    from framework.runtime import MOVED
    for name, package in MOVED.items():
        assert (REPO / package.replace(".", "/") / f"{name}.py").is_file(), f"{package}.{name}"
