"""`pipectl package --worker`: the worker service's source bundle and its `gcloud run deploy` commands."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from framework.cli import main
from framework.config import load_config
from framework.deploy.worker_bundle import build_worker_bundle, worker_deploy_commands
from framework.errors import ConfigError
from projects import copy_example

GCP = """\
targets:
  gcp:
    project: nba-prod
    execution: remote
    warehouse: {type: bigquery}
    bus: {type: pubsub}
    state: {type: firestore}
    worker: {url: 'https://pipectl-worker-abc-uc.a.run.app', service_account: worker@nba-prod.iam.gserviceaccount.com,
             max_instances: 30, concurrency: 2, memory: 4Gi, cpu: 4, region: europe-west1}
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = copy_example(tmp_path_factory.mktemp("w") / "project", templates=True, pipectl_yaml=GCP)
    bundle = build_worker_bundle(root, load_config(root).target("gcp"), root / "dist")
    return root, bundle


def test_bundle_holds_source_project_pinned_requirements_and_dockerfile(built) -> None:
    root, bundle = built
    out = bundle.path
    assert out == root / "dist" / "pipectl-worker"
    for rel in ("framework/run/runner.py", "framework/drive/trace.py", "framework/orchestrator/engine.py", "framework/sql/templates/detect.sql.j2",
                "processors.yaml", "topics.yaml", "pipectl.yaml", "templates", "Dockerfile", "Procfile", "bundle.json",
                "pipelines/nba_props/export.py"):
        assert (out / rel).exists(), rel
    assert not list(out.rglob("__pycache__")) and not (out / "framework" / "examples").exists()
    # every transform's file is in the bundle
    from framework.project import load

    project = load(root)
    for proc in project.processors.values():
        if proc.transform.sql:
            assert (out / proc.transform.sql).is_file(), proc.transform.sql
    reqs = [line for line in (out / "requirements.txt").read_text().splitlines() if line and not line.startswith("#")]
    assert reqs and all("==" in r for r in reqs), [r for r in reqs if "==" not in r]
    names = {r.split("==")[0].split("[")[0].lower() for r in reqs}
    assert {"pyyaml", "jinja2", "google-cloud-pubsub", "google-cloud-firestore", "google-cloud-bigquery"} <= names
    assert "markupsafe" in names and "grpcio" in names  # the closure: jinja2's and the Google clients' dependencies
    assert "pytest" not in names and "playwright" not in names  # the dev extra stays out
    docker = (out / "Dockerfile").read_text()
    assert f"FROM python:{sys.version_info.major}.{sys.version_info.minor}-slim" in docker
    assert "pip install --no-deps -r requirements.txt" in docker
    assert "CMD exec python -m framework.worker --port ${PORT:-8080}" in docker and "PIPECTL_PROJECT_DIR=/app" in docker
    assert (out / "Procfile").read_text() == "web: python -m framework.worker --port $PORT\n"
    meta = json.loads((out / "bundle.json").read_text())
    assert meta["content_hash"] == bundle.content_hash and meta["project"] == "nba_props"
    assert meta["sizing"]["request_timeout"] == bundle.sizing["request_timeout"] <= 3600


def test_bundle_imports_in_a_fresh_interpreter_with_only_the_bundle(built) -> None:
    """A new Python process whose path starts with the bundle: pipectl comes from the bundle,
    the project's Python transforms import, and every third-party distribution that got
    imported is pinned in requirements.txt."""
    _, bundle = built
    script = r"""
import sys
startup = set(sys.modules)  # what the interpreter's site hooks loaded, before the bundle's code
import importlib, importlib.util, json
from importlib import metadata
import framework
from framework.project import load
from framework.manifest.code import import_project_module
project = load('.')
for proc in project.processors.values():
    if proc.transform.python:
        module, _, attr = proc.transform.python.partition(':')
        assert callable(getattr(import_project_module(project.root, module), attr)), proc.name
import framework.run.runner, framework.drive.session, framework.orchestrator.engine, framework.backends.pubsub, framework.backends.firestore
import framework.backends.bigquery
import types
import framework.worker.app  # the service's app factory, as `python -m framework.worker` loads it
import uvicorn  # the server `python -m framework.worker` runs it with
nothing = lambda *args: None  # noqa: E731 - handlers are not called: the app is only built
service = types.SimpleNamespace(instance="probe", project=types.SimpleNamespace(name="probe"), close=nothing,
                                handle_trigger=nothing, handle_task=nothing, handle_task_dead_letter=nothing, health=nothing,
                                reject=nothing)
app = framework.worker.app.create_app(service, types.SimpleNamespace(check=lambda header: None))  # builds the routes
assert {r.path for r in app.routes} >= {"/trigger", "/task", "/task-dead-letter", "/healthz"}, [r.path for r in app.routes]
worker = framework.worker.app.__file__
dists = metadata.packages_distributions()
used = sorted({d for name in set(sys.modules) - startup for d in dists.get(name.split('.')[0], [])})
print(json.dumps({"framework": framework.__file__, "worker": worker, "dists": used}))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIPECTL", "PYTHON"))}
    env["PYTHONPATH"] = str(bundle.path)
    done = subprocess.run([sys.executable, "-c", script], cwd=bundle.path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["framework"].startswith(str(bundle.path)), got["framework"]
    assert got["worker"].startswith(str(bundle.path)), got["worker"]
    assert {"starlette", "uvicorn"} <= {d.lower() for d in got["dists"]}  # the server, pinned below
    pinned = {line.split("==")[0].split("[")[0].lower().replace("_", "-")
              for line in (bundle.path / "requirements.txt").read_text().splitlines() if "==" in line}
    # imported only because it happens to be installed here: anyio does `try: import sniffio`
    optional = {"sniffio"}
    missing = [d for d in got["dists"] if d.lower().replace("_", "-") not in pinned | optional and d.lower() != "pipectl"]
    assert not missing, f"imported but not in requirements.txt: {missing}"


def test_deploy_commands_carry_the_worker_settings(built) -> None:
    root, bundle = built
    worker = load_config(root).target("gcp").worker
    deploy, grant, url = worker_deploy_commands(bundle, worker, "nba-prod")
    assert deploy[:4] == ["gcloud", "run", "deploy", "pipectl-worker"]
    for flag in ("--project=nba-prod", "--region=europe-west1", f"--source={bundle.path}",
                 "--service-account=worker@nba-prod.iam.gserviceaccount.com", "--no-allow-unauthenticated",
                 "--concurrency=2", f"--timeout={bundle.sizing['request_timeout']}", "--max-instances=30",
                 "--memory=4Gi", "--cpu=4", "--min-instances=0"):
        assert flag in deploy, flag
    env = next(a for a in deploy if a.startswith("--set-env-vars="))
    assert "PIPECTL_TARGET=gcp" in env and "GOOGLE_CLOUD_PROJECT=nba-prod" in env
    assert grant[:5] == ["gcloud", "run", "services", "add-iam-policy-binding", "pipectl-worker"]
    assert "--member=serviceAccount:worker@nba-prod.iam.gserviceaccount.com" in grant and "--role=roles/run.invoker" in grant
    assert "--format=value(status.url)" in url


def test_cli_prints_the_commands_and_sizing(built, capsys) -> None:
    root, _ = built
    assert main(["-p", str(root), "-t", "gcp", "package", "--worker", "--out", "dist2"]) == 0
    out = capsys.readouterr().out
    assert "gcloud run deploy pipectl-worker" in out and "--concurrency=2" in out
    assert "request timeout: " in out and "set it as worker.url" in out
    assert main(["-p", str(root), "-t", "gcp", "package", "--worker", "--out", "dist2", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["commands"][0][:3] == ["gcloud", "run", "deploy"] and data["bundle"]["path"].endswith("dist2/pipectl-worker")


def test_a_processor_beyond_the_request_limit_is_not_packaged(tmp_path: Path) -> None:
    root = copy_example(tmp_path / "p", pipectl_yaml=GCP)
    text = (root / "processors.yaml").read_text()
    (root / "processors.yaml").write_text(text.replace("  - name: player_game_summary\n", "  - name: player_game_summary\n    timeout: 3h\n", 1))
    with pytest.raises(ConfigError, match="player_game_summary' declares timeout 3h"):
        build_worker_bundle(root, load_config(root).target("gcp"), tmp_path / "dist")
    assert not (tmp_path / "dist").exists()
