"""`pipectl ui` and `pipectl docs generate` from the command line: the extra, the token
rule, start-up cost, and a static site whose links all resolve on the file system."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from framework.cli import main
from tests.unit.ui.ui_support import cli


def test_missing_extra_is_a_clear_error_naming_it(monkeypatch: pytest.MonkeyPatch, capsys, project: Path) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn -> ImportError
    assert cli(project, "ui") == 1
    err = capsys.readouterr().err
    assert "pipectl ui needs uvicorn" in err and "[ui]'" in err and "pip install" in err


def test_non_loopback_host_needs_a_token(capsys, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PIPECTL_UI_TOKEN", raising=False)
    assert cli(project, "ui", "--host", "0.0.0.0") == 1
    assert "needs a token" in capsys.readouterr().err


@pytest.mark.parametrize("args", [["--help"], ["validate", "--no-sql"]])
def test_help_and_validate_never_import_the_ui_stack(args: list[str], project: Path) -> None:
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "framework.cli", "-p", str(project), *args],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "click" in imported  # the probe works
    assert not {m for m in imported if m.split(".")[0] in ("starlette", "uvicorn", "jinja2") or m.startswith("framework.ui")}


def test_docs_generate_writes_a_site_that_opens_from_the_file_system(tmp_path: Path, project: Path) -> None:
    from framework.project import load

    out = tmp_path / "site"
    assert cli(project, "docs", "generate", "--out", str(out)) == 0
    names = set(load(project).processors)
    assert {p.stem for p in (out / "processors").glob("*.html")} == names
    pages = list(out.rglob("*.html"))
    assert len(pages) == len(names) + 2  # index, lineage, one per processor
    for page in pages:
        html = page.read_text()
        assert "hx-get" not in html and "htmx" not in html  # no live parts, nothing to serve
        for ref in re.findall(r'(?:href|src)="([^"#]+)', html):
            assert not ref.startswith(("/", "http:", "https:")), f"{page}: {ref} is not relative"
            assert (page.parent / ref).resolve().is_file(), f"{page}: {ref} does not resolve"
    index = (out / "index.html").read_text()
    assert len(re.findall(r'data-name="(\w+)"', index)) == len(names)
    assert "SUM(o.amount) AS total" in (out / "processors" / "store_totals.html").read_text()
    assert "shop_raw.orders_raw" in (out / "lineage.html").read_text()


def test_docs_generate_reports_a_broken_manifest(tmp_path: Path, capsys) -> None:
    (tmp_path / "processors.yaml").write_text("version: 1\nprocessors: [\n")
    (tmp_path / "topics.yaml").write_text("version: 1\ntopics: []\n")
    assert main(["-p", str(tmp_path), "docs", "generate", "--out", str(tmp_path / "site")]) == 1
    assert "processors.yaml:" in capsys.readouterr().err
