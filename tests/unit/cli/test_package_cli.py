"""`pipectl package --execute` never deploys to a placeholder project."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from framework.cli import main

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def example(tmp_path: Path) -> Path:
    dest = tmp_path / "project"
    dest.mkdir()
    for name in ("processors.yaml", "topics.yaml"):
        shutil.copy2(REPO / name, dest / name)
    for name in ("pipelines", "templates"):
        shutil.copytree(REPO / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    (dest / "pipectl.yaml").write_text("targets:\n  gcp:\n    bus: {type: pubsub}\n    state: {type: firestore}\n")
    return dest


def test_execute_without_a_project_is_refused_before_running_gcloud(example, monkeypatch, capsys):
    import framework.deploy.package as package

    ran: list = []
    monkeypatch.setattr(package, "execute", lambda commands: ran.append(commands))
    assert main(["--project", str(example), "package", "--out", "dist", "--execute"]) == 1
    assert ran == []
    err = capsys.readouterr().err
    assert "--gcp-project" in err and "pipectl.yaml" in err


def test_printing_without_a_project_shows_the_placeholder(example, capsys):
    assert main(["--project", str(example), "package", "--out", "dist"]) == 0
    assert "--project=YOUR_PROJECT" in capsys.readouterr().out
