"""A one-entity update (`pipectl simulate update`, what a scheduler or a webhook runs every
few minutes) pays its process start-up every time: in a fresh interpreter it imports only
what it runs. No graph library, no SQL parser, no terminal UI; and once a command has run
in the folder, not even the YAML parser or the graph rules (the loaded project is reused
from ``.pipectl/cache/``), and once an update has run, not Jinja either (its statements are
reused too)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from framework.cli import main

NOT_IMPORTED = ("networkx", "sqlglot", "rich", "yaml", "jsonschema", "framework.manifest.loader",
                "framework.manifest.resolver", "framework.graph.rules", "framework.validation",
                "google.cloud.bigquery", "openlineage.client")

CHILD = ("import json, sys\nfrom framework.cli import main\ncode = main(sys.argv[2:])\n"
         "print(json.dumps([code, [m for m in json.loads(sys.argv[1]) if m in sys.modules]]))")


def test_a_one_entity_update_imports_only_what_it_runs(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("PIPECTL_NO_CACHE", raising=False)
    root = tmp_path / "shop"
    assert main(["init", str(root)]) == 0
    assert main(["-p", str(root), "sample"]) == 0
    assert main(["-p", str(root), "run", "--date", "2025-01-01", "-q"]) == 0
    capsys.readouterr()
    args = ["-p", str(root), "simulate", "update", "--date", "2025-01-01", "--entity", "customer_id=c4", "--json"]
    env = {k: v for k, v in os.environ.items() if k != "PIPECTL_NO_CACHE"}
    for amount, expect_jinja in ((99, None), (98, False)):  # the first update may render what the full run did not
        proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps([*NOT_IMPORTED, "jinja2"]), *args,
                               "--set", f"amount={amount}"],
                              capture_output=True, text=True, cwd=os.getcwd(), env=env)
        lines = proc.stdout.strip().splitlines()
        assert proc.returncode == 0 and lines, proc.stderr
        update = json.loads("\n".join(lines[:-1]))
        assert {p["phase"]: p["entities"] for p in update["phases"]} == {"raw": 1, "analytics": 2}  # it did run
        code, imported = json.loads(lines[-1])
        assert code == 0
        assert [m for m in imported if m != "jinja2" or expect_jinja is False] == []


def test_loading_a_project_and_the_run_path_does_not_import_difflib(tmp_path, capsys, monkeypatch):
    """``difflib`` serves only "did you mean" hints of a wrong name (manifest diagnostics): a
    fresh interpreter that loads a valid project and imports the run path does not load it.
    (click may import it on its own while parsing options, which is not pipectl's to avoid.)"""
    monkeypatch.delenv("PIPECTL_NO_CACHE", raising=False)
    root = tmp_path / "shop"
    assert main(["init", str(root)]) == 0
    assert main(["-p", str(root), "validate", "--no-sql"]) == 0
    capsys.readouterr()
    code = ("import sys\nfrom framework.project import load\n"
            "import framework.drive.session, framework.drive.pipeline, framework.orchestrator.engine\n"
            "project = load(sys.argv[1])\nassert project.processors\n"
            "print('difflib' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k != "PIPECTL_NO_CACHE"}
    proc = subprocess.run([sys.executable, "-c", code, str(root)], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"
