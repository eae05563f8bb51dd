"""plan/apply against the Google Cloud emulators: Pub/Sub topics and subscriptions, Firestore
documents and the Firestore apply lease (the warehouse stays DuckDB: the point is that the
same planner, diff and applier work through other implementations of the protocols).

Needs the emulators of ``.ci/emulators.sh`` (fails with how to start them; skipped only
under ``PIPECTL_SKIP_GCP=1``). Every test uses its own emulator project id, so tests and
runs never see each other's topics or documents.
"""
from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from framework.backends.protocols import SubscriptionConfig
from framework.backends.registry import open_backends
from framework.cli import main
from framework.errors import PlanError
from framework.manifest import load
from framework.plan.lock import LeaseLock
from gcp_support import require_emulators
from projects import write_project


@pytest.fixture(autouse=True)
def _pinned_orchestrator_hash(monkeypatch):
    """Other work may edit framework/orchestrator/ while these tests run; the orchestrator
    unit's code hash is pinned so 'no changes after apply' tests only what they mean to."""
    monkeypatch.setattr("framework.plan.resources.orchestrator_code_hash", lambda: "pinned-orchestrator-code")


pytestmark = pytest.mark.gcp


@pytest.fixture
def root(tmp_path: Path) -> Path:
    require_emulators("pubsub", "firestore")
    root = write_project(tmp_path / "shop")
    project = f"plan-{uuid.uuid4().hex[:10]}"
    (root / "pipectl.yaml").write_text(
        "version: 1\ndefault_target: gcpemu\ntargets:\n  gcpemu:\n"
        f"    project: {project}\n"
        "    warehouse: {type: duckdb, path: .pipectl/warehouse.duckdb}\n"
        "    bus: {type: pubsub}\n"
        "    state: {type: firestore}\n")
    return root


def cli(capsys, root: Path, *args: str) -> tuple[int, str, str]:
    code = main(["-p", str(root), *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def pending(capsys, root: Path, *args: str) -> set[tuple[str, str]]:
    code, out, err = cli(capsys, root, "plan", "--json", *args)
    assert code == 0, err
    return {(c["action"], c["address"]) for c in json.loads(out)["changes"] if c["action"] in ("create", "update", "replace", "delete")}


def test_apply_on_pubsub_and_firestore_converges(capsys, root: Path):
    first = pending(capsys, root)
    assert ("create", "subscription.shop-raw-complete-orch") in first and ("create", "orchestrator_config.raw") in first
    code, out, err = cli(capsys, root, "apply", "--auto-approve")
    assert code == 0, err + out
    assert pending(capsys, root) == set()
    with open_backends(root) as b:
        (sub,) = [s for s in b.bus.list_subscriptions() if s.name == "shop-raw-complete-orch"]
        assert sub.topic == "shop-raw-complete" and sub.dead_letter_topic == "shop-dead-letter"
        assert b.state.get("pipectl_orchestrator_configs", "raw")["attributes"]["expected"] == ["orders_raw"]

    text = (root / "topics.yaml").read_text().replace("ack_deadline: 60s", "ack_deadline: 120s", 1)
    (root / "topics.yaml").write_text(text)
    assert pending(capsys, root) == {("update", "subscription.shop-raw-complete-orch")}
    assert cli(capsys, root, "apply", "--auto-approve")[0] == 0
    assert pending(capsys, root) == set()

    with open_backends(root) as b:
        b.bus.create_subscription(SubscriptionConfig("shop-raw-complete-legacy", "shop-raw-complete"))
    code, out, _ = cli(capsys, root, "plan", "--detailed-exitcode")
    assert code == 2 and "! subscription.shop-raw-complete-legacy" in out
    assert pending(capsys, root, "--prune") == {("delete", "subscription.shop-raw-complete-legacy")}
    assert cli(capsys, root, "apply", "--auto-approve", "--prune")[0] == 0
    assert cli(capsys, root, "plan", "--detailed-exitcode")[0] == 0


def test_firestore_lease_blocks_a_second_apply(capsys, root: Path):
    with open_backends(root) as b:
        with LeaseLock(b.state, load(root).name):
            code, _, err = cli(capsys, root, "apply", "--auto-approve")
            assert code == 1 and "holds the lease pipectl_locks/shop.apply" in err
        with LeaseLock(b.state, load(root).name):  # released: free again
            pass
    with pytest.raises(PlanError):  # and a held lease is exclusive across store handles
        with open_backends(root) as b1, open_backends(root) as b2:
            with LeaseLock(b1.state, "shop"):
                LeaseLock(b2.state, "shop").acquire()
