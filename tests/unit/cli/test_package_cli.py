"""`pipectl package --execute` never deploys to a placeholder project."""
from __future__ import annotations

from pathlib import Path

import pytest

from framework.cli import main
from projects import copy_example


@pytest.fixture
def example(tmp_path: Path) -> Path:
    return copy_example(tmp_path / "project", templates=True,
                        pipectl_yaml="targets:\n  gcp:\n    bus: {type: pubsub}\n    state: {type: firestore}\n")


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
