"""`pipectl package`: the bundle's contents and the deploy commands (no cloud, no emulator)."""
from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from framework.cli import main
from projects import copy_example
from framework.deploy.function import message_data
from framework.deploy.package import build_bundle, deploy_commands, function_name, requirements
from framework.errors import ConfigError


@pytest.fixture
def example(tmp_path: Path) -> Path:
    return copy_example(tmp_path / "project", templates=True,
                        pipectl_yaml="targets:\n  gcp:\n    project: nba-prod\n    bus: {type: pubsub}\n    state: {type: firestore}\n")


def test_bundle_holds_entry_point_source_manifests_and_requirements(example: Path, tmp_path: Path) -> None:
    bundle = build_bundle(example, tmp_path / "dist")
    root = bundle.path
    assert "def handle_completion" in (root / "main.py").read_text()
    for rel in ("framework/orchestrator/engine.py", "framework/deploy/function.py", "processors.yaml", "topics.yaml",
                "framework/sql/templates/detect.sql.j2", "framework/sql/templates/bigquery/_dialect.sql.j2",
                "pipectl.yaml", "requirements.txt", "bundle.json"):
        assert (root / rel).is_file(), rel
    assert not list(root.rglob("__pycache__"))
    reqs = (root / "requirements.txt").read_text().split()
    assert any(r.startswith("google-cloud-firestore") for r in reqs) and any(r.startswith("functions-framework") for r in reqs)
    assert not any(r.startswith("pytest") for r in reqs)  # dev extra stays out
    meta = json.loads((root / "bundle.json").read_text())
    assert meta["content_hash"] == bundle.content_hash and meta["extra"]["entry_point"] == "handle_completion"


def test_same_sources_give_the_same_content_hash(example: Path, tmp_path: Path) -> None:
    first = build_bundle(example, tmp_path / "a").content_hash
    assert build_bundle(example, tmp_path / "b").content_hash == first
    (example / "topics.yaml").write_text((example / "topics.yaml").read_text() + "\n# edited\n")
    assert build_bundle(example, tmp_path / "c").content_hash != first


def test_one_function_per_transition_with_topic_retry_and_service_account(example: Path, tmp_path: Path) -> None:
    bundle = build_bundle(example, tmp_path / "dist")
    commands = deploy_commands(bundle, "nba-prod", region="us-west2", service_account="orch@nba-prod.iam.gserviceaccount.com")
    raw = next(c for c in commands if "--trigger-topic=nba-phase2-raw-complete" in c)
    assert raw[:4] == ["gcloud", "functions", "deploy", "pipectl-orch-raw"]
    for flag in ("--retry", "--gen2", "--entry-point=handle_completion", "--region=us-west2", "--project=nba-prod",
                 "--service-account=orch@nba-prod.iam.gserviceaccount.com", f"--source={bundle.path}"):
        assert flag in raw
    env = next(a for a in raw if a.startswith("--set-env-vars="))
    assert "PIPECTL_REJECT_TOPIC=nba-phase2-raw-complete-dlq" in env and "PIPECTL_TARGET=gcp" in env
    assert len(commands) == len([t for t in bundle.functions])
    assert {fn.trigger_topic for fn in bundle.functions} >= {"nba-phase2-raw-complete", "nba-phase3-analytics-complete"}


def test_cli_prints_commands_with_project_from_pipectl_yaml(example: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["--project", str(example), "package", "--out", "dist"]) == 0
    out = capsys.readouterr().out
    assert "gcloud functions deploy pipectl-orch-raw" in out and "--project=nba-prod" in out
    assert "--service-account=pipectl-orchestrator@nba-prod.iam.gserviceaccount.com" in out
    assert (example / "dist" / "pipectl-function" / "main.py").is_file()


def test_broken_manifest_is_never_packaged(example: Path, tmp_path: Path) -> None:
    (example / "processors.yaml").write_text("version: 1\nprocessors: [\n")
    with pytest.raises(Exception):
        build_bundle(example, tmp_path / "dist")


def test_names_and_requirements() -> None:
    assert function_name("Raw_Phase") == "pipectl-orch-raw-phase"
    assert len(function_name("x" * 50)) == 63
    with pytest.raises(ConfigError, match="at most 63 characters"):  # never cut: a cut name may collide
        function_name("x" * 51)
    assert any(r.startswith("google-cloud-pubsub") for r in requirements())


def test_message_data_of_a_pubsub_cloud_event() -> None:
    event = {"id": "1", "data": {"message": {"data": base64.b64encode(b'{"a": 1}').decode(), "attributes": {"k": "v"}}}}
    assert message_data(event) == (b'{"a": 1}', {"k": "v"})
    with pytest.raises(ConfigError, match="messagePublished"):
        message_data({"id": "1", "data": {"nope": 1}})


def test_function_without_target_or_project_fails_with_the_fix(example: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from framework.deploy import function

    (example / "pipectl.yaml").unlink()
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    monkeypatch.delenv("GCP_PROJECT", raising=False)
    function.configure(example)
    try:
        with pytest.raises(ConfigError, match="GOOGLE_CLOUD_PROJECT"):
            function.orchestrator()
    finally:
        function.reset()


def test_every_deploy_reasserts_the_invoker_permission(example: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """FAILURE-MODES 19: a redeploy dropped the invoker permission; a silent 403 for days."""
    from framework.deploy.package import invoker_commands

    bundle = build_bundle(example, tmp_path / "dist")
    account = "orch@nba-prod.iam.gserviceaccount.com"
    deploys = deploy_commands(bundle, "nba-prod", region="us-west2", service_account=account)
    assert all(f"--trigger-service-account={account}" in c for c in deploys)
    grants = invoker_commands(bundle, "nba-prod", region="us-west2", service_account=account)
    assert [g[3] for g in grants] == [fn.name for fn in bundle.functions]
    assert all(g[:3] == ["gcloud", "functions", "add-invoker-policy-binding"] and f"--member=serviceAccount:{account}" in g for g in grants)
    assert main(["--project", str(example), "package", "--out", "dist"]) == 0
    assert "gcloud functions add-invoker-policy-binding pipectl-orch-raw" in capsys.readouterr().out


def test_bundle_holds_transform_files_outside_pipelines(tmp_path: Path) -> None:
    """A transform's SQL may live anywhere in the project (the shop fixture: sql/); the
    function loads the manifests, which checks that every transform file exists."""
    from projects import write_project

    root = write_project(tmp_path / "shop")
    bundle = build_bundle(root, tmp_path / "dist")
    for rel in ("sql/orders_raw.sql", "sql/customer_totals.sql", "sql/store_totals.sql", "processors.yaml", "topics.yaml"):
        assert (bundle.path / rel).is_file(), rel
    from framework.project import load

    assert set(load(bundle.path).processors) == {"orders_raw", "customer_totals", "store_totals"}
