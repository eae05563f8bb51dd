"""A missing extra's hint names where this pipectl came from, never the PyPI name alone
(`pipectl` on PyPI is an unrelated project)."""
from __future__ import annotations

import json
from importlib import metadata

import pytest

from framework.errors import MissingDependencyError, install_hint


class _Dist:
    def __init__(self, direct):
        self.direct = direct

    def read_text(self, name):
        return None if self.direct is None else json.dumps(self.direct)


@pytest.mark.parametrize("direct,expected", [
    ({"url": "file:///src/pipectl", "dir_info": {"editable": True}}, "pip install -e '/src/pipectl[gcp]'"),
    ({"url": "file:///tmp/dist/pipectl-0.1.0-py3-none-any.whl", "archive_info": {}},
     "pip install 'pipectl[gcp] @ file:///tmp/dist/pipectl-0.1.0-py3-none-any.whl'"),
    ({"url": "https://git.example.com/data/pipectl.git", "vcs_info": {"vcs": "git", "requested_revision": "v0.1.0", "commit_id": "abc"}},
     "pip install 'pipectl[gcp] @ git+https://git.example.com/data/pipectl.git@v0.1.0'"),
])
def test_the_hint_reinstalls_from_the_same_place(monkeypatch, direct, expected):
    monkeypatch.setattr(metadata, "distribution", lambda name: _Dist(direct))
    assert install_hint("gcp") == expected


def test_without_install_metadata_the_hint_warns_about_the_pypi_name(monkeypatch):
    monkeypatch.setattr(metadata, "distribution", lambda name: _Dist(None))
    hint = MissingDependencyError("google.cloud.bigquery", "gcp").hint
    assert "the name pipectl on PyPI is another project" in hint and "[gcp]" in hint
