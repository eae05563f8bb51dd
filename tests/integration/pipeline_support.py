"""Helpers for the end-to-end tests: a throwaway copy of the example project."""
from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def copy_example(dest: Path) -> Path:
    """processors.yaml, topics.yaml and pipelines/ of the repository root in ``dest``, so
    runs write their .pipectl/ (and the export's JSON file) there, not in the repository."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("processors.yaml", "topics.yaml"):
        shutil.copy(REPO / name, dest / name)
    shutil.copytree(REPO / "pipelines", dest / "pipelines", ignore=shutil.ignore_patterns("__pycache__"))
    return dest
