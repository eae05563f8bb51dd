"""`pipectl plan` / `apply` on the embedded backends (DuckDB, local bus, SQLite ledger).

Each test writes the shared 'shop' fixture project to tmp_path, drives the real CLI entry
point (``framework.cli.main``: exit codes included) and inspects the backends directly.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from framework.backends.protocols import SubscriptionConfig
from framework.backends.registry import open_backends
from framework.cli import main
from framework.manifest.model import Column
from projects import write_project


@pytest.fixture(autouse=True)
def _pinned_orchestrator_hash(monkeypatch):
    """Other work may edit framework/orchestrator/ while these tests run; the orchestrator
    unit's code hash is pinned so 'no changes after apply' tests only what they mean to."""
    monkeypatch.setattr("framework.plan.resources.orchestrator_code_hash", lambda: "pinned-orchestrator-code")


NEW_PROCESSOR = """\
  - name: order_counts
    phase: analytics
    entity: customer
    inputs: [orders_raw]
    output:
      table: order_counts
      columns:
        - {name: day, type: DATE, mode: REQUIRED}
        - {name: customer_id, type: STRING, mode: REQUIRED}
        - {name: orders, type: INT64}
    transform: {sql: sql/order_counts.sql}
"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return write_project(tmp_path / "shop")


def cli(capsys, root: Path, *args: str) -> tuple[int, str, str]:
    code = main(["-p", str(root), *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def plan_json(capsys, root: Path, *args: str) -> dict:
    code, out, err = cli(capsys, root, "plan", "--json", *args)
    assert code == 0, err
    return json.loads(out)


def pending(doc: dict) -> set[tuple[str, str]]:
    return {(c["action"], c["address"]) for c in doc["changes"] if c["action"] in ("create", "update", "replace", "delete")}


def rewrite(root: Path, file: str, old: str, new: str) -> None:
    path = root / file
    text = path.read_text()
    assert old in text, f"{old!r} not in {file}"
    path.write_text(text.replace(old, new, 1))


def test_plan_on_empty_apply_then_no_changes(capsys, root: Path):
    code, out, _ = cli(capsys, root, "plan", "--detailed-exitcode")
    assert code == 2
    assert "+ table.shop_raw.orders_raw" in out and "+ subscription.shop-raw-complete-orch" in out
    doc = plan_json(capsys, root)
    assert doc["summary"]["create"] == len(doc["changes"]) > 20
    code, out, err = cli(capsys, root, "apply", "--auto-approve")
    assert code == 0, err
    assert "Apply complete" in out
    code, out, _ = cli(capsys, root, "plan", "--detailed-exitcode")
    assert code == 0 and "No changes" in out
    with open_backends(root) as b:
        assert b.warehouse.table_schema("shop_raw.orders_raw")[0] == Column("day", "DATE", "REQUIRED")
        assert {t.name for t in b.bus.list_topics()} == {"shop-raw-complete", "shop-analytics-trigger", "shop-analytics-complete", "shop-dead-letter"}
        assert b.state.get("pipectl_orchestrator_configs", "raw")["attributes"]["expected"] == ["orders_raw"]


def test_adding_a_processor_plans_exactly_its_resources(capsys, root: Path):
    assert cli(capsys, root, "apply", "--auto-approve")[0] == 0
    (root / "processors.yaml").write_text((root / "processors.yaml").read_text() + NEW_PROCESSOR)
    (root / "sql" / "order_counts.sql").write_text("SELECT day, customer_id, COUNT(*) AS orders FROM {{ ref('orders_raw') }} o\n"
                                                   "WHERE o.day = {{ partition }} AND {{ entity_filter('o.customer_id') }}\nGROUP BY 1, 2\n")
    doc = plan_json(capsys, root)
    assert pending(doc) == {
        ("create", "table.shop_analytics.order_counts"),
        ("create", "deployment.processor.order_counts"),
        ("update", "orchestrator_config.analytics"),
        ("update", "deployment.orchestrator.analytics"),
    }
    assert cli(capsys, root, "apply", "--auto-approve")[0] == 0
    assert pending(plan_json(capsys, root)) == set()


def test_subscription_update_shows_attribute_diff_and_applies(capsys, root: Path):
    assert cli(capsys, root, "apply", "--auto-approve")[0] == 0
    rewrite(root, "topics.yaml", "ack_deadline: 60s", "ack_deadline: 120s")
    code, out, _ = cli(capsys, root, "plan")
    assert code == 0
    assert "~ subscription.shop-raw-complete-orch" in out and "~ ack_deadline_seconds: 60 -> 120" in out
    assert cli(capsys, root, "apply", "--auto-approve")[0] == 0
    with open_backends(root) as b:
        (sub,) = [s for s in b.bus.list_subscriptions() if s.name == "shop-raw-complete-orch"]
        assert sub.ack_deadline_seconds == 120


def test_renamed_column_is_refused_unless_allowed(capsys, root: Path):
    assert cli(capsys, root, "apply", "--auto-approve")[0] == 0
    with open_backends(root) as b:
        b.warehouse.insert_rows("shop_analytics.customer_totals", [{"day": "2026-01-02", "customer_id": "c1", "total": 3.5}])
    rewrite(root, "processors.yaml", "{name: total, type: FLOAT64}", "{name: grand_total, type: FLOAT64}")
    rewrite(root, "processors.yaml", "change_detection: {columns: [total]}", "change_detection: {columns: [grand_total]}")
    code, out, err = cli(capsys, root, "plan", "--out", str(root / "plan.json"))
    assert code == 1
    assert "~ table.shop_analytics.customer_totals  (destructive, REFUSED without --allow-destructive)" in out
    assert "! dropping column 'total' loses its data" in out
    assert "refused" in err and not (root / "plan.json").exists()
    code, _, err = cli(capsys, root, "apply", "--auto-approve")
    assert code == 1 and "--allow-destructive" in err
    with open_backends(root) as b:
        assert "total" in [c.name for c in b.warehouse.table_schema("shop_analytics.customer_totals")]
    code, _, err = cli(capsys, root, "apply", "--auto-approve", "--allow-destructive")
    assert code == 0, err
    with open_backends(root) as b:
        cols = [c.name for c in b.warehouse.table_schema("shop_analytics.customer_totals")]
        assert "grand_total" in cols and "total" not in cols
        assert b.warehouse.query("SELECT customer_id FROM shop_analytics.customer_totals") == [{"customer_id": "c1"}]
    assert pending(plan_json(capsys, root)) == set()


def test_partitioning_change_is_a_destructive_replace(capsys, root: Path):
    assert cli(capsys, root, "apply", "--auto-approve")[0] == 0
    rewrite(root, "processors.yaml", "      table: store_totals\n", "      table: store_totals\n      partition_by: store_id\n")
    code, out, _ = cli(capsys, root, "plan")
    assert code == 1
    assert "-/+ table.shop_analytics.store_totals" in out and "~ partition_by: day -> store_id  # forces replacement" in out
    assert cli(capsys, root, "apply", "--auto-approve", "--allow-destructive")[0] == 0
    assert pending(plan_json(capsys, root)) == set()


def test_orphan_subscription_is_drift_and_deleted_only_with_prune(capsys, root: Path):
    assert cli(capsys, root, "apply", "--auto-approve")[0] == 0
    with open_backends(root) as b:
        b.bus.create_subscription(SubscriptionConfig("shop-raw-complete-legacy", "shop-raw-complete"))
    code, out, _ = cli(capsys, root, "plan", "--detailed-exitcode")
    assert code == 2
    assert "! subscription.shop-raw-complete-legacy  (drift: in the backend, not in the manifests; --prune deletes it)" in out
    assert cli(capsys, root, "apply", "--auto-approve")[0] == 0
    with open_backends(root) as b:
        assert "shop-raw-complete-legacy" in {s.name for s in b.bus.list_subscriptions()}
    doc = plan_json(capsys, root, "--prune")
    assert pending(doc) == {("delete", "subscription.shop-raw-complete-legacy")}
    assert cli(capsys, root, "apply", "--auto-approve", "--prune")[0] == 0
    with open_backends(root) as b:
        assert "shop-raw-complete-legacy" not in {s.name for s in b.bus.list_subscriptions()}
    assert cli(capsys, root, "plan", "--detailed-exitcode")[0] == 0


def test_table_with_rows_is_not_pruned_without_allow_destructive(capsys, root: Path):
    assert cli(capsys, root, "apply", "--auto-approve")[0] == 0
    with open_backends(root) as b:
        b.warehouse.execute_script("CREATE TABLE shop_raw.scratch AS SELECT 1 AS x")
    code, out, _ = cli(capsys, root, "plan", "--prune")
    assert code == 1 and "! deleting a table that has rows" in out
    assert cli(capsys, root, "apply", "--auto-approve", "--prune", "--allow-destructive")[0] == 0
    with open_backends(root) as b:
        assert "scratch" not in b.warehouse.list_tables("shop_raw")


def test_saved_plan_applies_exactly_and_stale_plan_is_refused(capsys, root: Path):
    plan_file = root / "plan.json"
    code, out, _ = cli(capsys, root, "plan", "--out", str(plan_file))
    assert code == 0 and plan_file.exists()
    assert cli(capsys, root, "apply", str(plan_file))[0] == 0
    assert cli(capsys, root, "plan", "--detailed-exitcode")[0] == 0
    # a second saved plan, then someone changes the backend behind its back
    rewrite(root, "topics.yaml", "ack_deadline: 60s", "ack_deadline: 90s")
    assert cli(capsys, root, "plan", "--out", str(plan_file))[0] == 0
    with open_backends(root) as b:
        b.bus.update_subscription(SubscriptionConfig("shop-raw-complete-orch", "shop-raw-complete", 30, 5, "shop-dead-letter"))
    code, _, err = cli(capsys, root, "apply", str(plan_file))
    assert code == 1 and "stale plan" in err
    with open_backends(root) as b:
        (sub,) = [s for s in b.bus.list_subscriptions() if s.name == "shop-raw-complete-orch"]
        assert sub.ack_deadline_seconds == 30


def test_apply_needs_auto_approve_when_not_interactive(capsys, root: Path):
    code, _, err = cli(capsys, root, "apply")
    assert code == 1 and "--auto-approve" in err
    with open_backends(root) as b:
        assert b.bus.list_topics() == []


def test_plan_json_is_machine_readable(capsys, root: Path):
    doc = plan_json(capsys, root)
    sub = next(c for c in doc["changes"] if c["address"] == "subscription.shop-raw-complete-orch")
    assert sub["action"] == "create"
    assert sub["after"]["attributes"] == {"topic": "shop-raw-complete", "ack_deadline_seconds": 60, "max_delivery_attempts": 5,
                                          "dead_letter_topic": "shop-dead-letter", "filter": None, "push_endpoint": None}
    assert doc["format_version"] == 1 and len(doc["state_fingerprint"]) == 64


def test_topics_in_scope_by_label_or_managed_prefix(capsys, root: Path):
    from framework.backends.protocols import TopicConfig

    assert cli(capsys, root, "apply", "--auto-approve")[0] == 0
    with open_backends(root) as b:
        b.bus.create_topic(TopicConfig("shop-old-events"))  # unlabelled: out of scope unless prefixed
        b.bus.create_topic(TopicConfig("other-team-topic"))
    assert cli(capsys, root, "plan", "--detailed-exitcode")[0] == 0
    code, out, _ = cli(capsys, root, "plan", "--detailed-exitcode", "--managed-prefix", "shop-")
    assert code == 2 and "! topic.shop-old-events" in out and "other-team-topic" not in out
    # a topic pipectl created for this project (labelled) and since removed from topics.yaml: drift, not auto-deleted
    with open_backends(root) as b:
        b.bus.create_topic(TopicConfig("retired-topic", {"managed-by": "pipectl", "pipectl-project": "shop"}))
    code, out, _ = cli(capsys, root, "plan", "--detailed-exitcode")
    assert code == 2 and "! topic.retired-topic" in out and "shop-old-events" not in out
    assert pending(plan_json(capsys, root, "--prune", "--managed-prefix", "shop-")) == {
        ("delete", "topic.shop-old-events"), ("delete", "topic.retired-topic")}
    assert cli(capsys, root, "apply", "--auto-approve", "--prune", "--managed-prefix", "shop-")[0] == 0
    with open_backends(root) as b:
        names = {t.name for t in b.bus.list_topics()}
    assert "shop-old-events" not in names and "retired-topic" not in names and "other-team-topic" in names


def test_every_column_type_and_mode_round_trips_without_changes(capsys, root: Path):
    types = ["STRING", "INT64", "FLOAT64", "NUMERIC", "BOOL", "DATE", "TIMESTAMP", "DATETIME", "JSON", "BYTES"]
    cols = "".join(f"        - {{name: c_{t.lower()}_{m.lower()}, type: {t}, mode: {m}}}\n" for t in types for m in ("NULLABLE", "REQUIRED", "REPEATED"))
    rewrite(root, "processors.yaml", "        - {name: total, type: FLOAT64}\n", "        - {name: total, type: FLOAT64}\n" + cols)
    assert cli(capsys, root, "apply", "--auto-approve")[0] == 0
    code, out, _ = cli(capsys, root, "plan", "--detailed-exitcode")
    assert code == 0, out


def test_retype_relax_tighten_and_required_add_converge_on_duckdb(capsys, root: Path):
    assert cli(capsys, root, "apply", "--auto-approve")[0] == 0
    with open_backends(root) as b:
        b.warehouse.insert_rows("shop_analytics.customer_totals", [{"day": "2026-01-02", "customer_id": "c1", "total": 3.5}])
    rewrite(root, "processors.yaml", "{name: total, type: FLOAT64}", "{name: total, type: STRING, mode: REQUIRED}")
    rewrite(root, "processors.yaml", "        - {name: customer_id, type: STRING, mode: REQUIRED}\n        - {name: total",
            "        - {name: customer_id, type: STRING}\n        - {name: total")
    rewrite(root, "processors.yaml", "        - {name: store_id, type: STRING, mode: REQUIRED}\n",
            "        - {name: store_id, type: STRING, mode: REQUIRED}\n        - {name: region, type: STRING, mode: REQUIRED}\n")
    doc = plan_json(capsys, root, "--allow-destructive")
    changes = {c["address"]: c for c in doc["changes"]}
    totals = changes["table.shop_analytics.customer_totals"]
    assert {(a["path"], a["destructive"]) for a in totals["attribute_changes"]} == {
        ("columns.total.type", True), ("columns.total.mode", True), ("columns.customer_id.mode", False)}
    assert changes["table.shop_analytics.store_totals"]["attribute_changes"][0]["path"] == "columns.region"
    code, _, err = cli(capsys, root, "apply", "--auto-approve", "--allow-destructive")
    assert code == 0, err
    assert cli(capsys, root, "plan", "--detailed-exitcode")[0] == 0
    with open_backends(root) as b:
        assert b.warehouse.query("SELECT total FROM shop_analytics.customer_totals") == [{"total": "3.5"}]


def test_after_a_demo_run_plan_only_adds_pipectl_records_then_converges(capsys, tmp_path: Path):
    """The runtime creates tables, topics and subscriptions on first use; plan must agree
    with what it created (no diff on them) and apply must converge on top of it."""
    from projects import copy_example

    root = copy_example(tmp_path / "nba")
    code, _, err = cli(capsys, root, "demo", "--yes", "-q")
    assert code == 0, err
    doc = plan_json(capsys, root)
    assert {c["type"] for c in doc["changes"] if c["action"] != "no-op"} <= {"ledger", "orchestrator_config", "deployment"}
    assert all(c["action"] in ("create", "no-op") for c in doc["changes"])
    assert cli(capsys, root, "apply", "--auto-approve")[0] == 0
    assert cli(capsys, root, "plan", "--detailed-exitcode")[0] == 0


def test_row_presence_is_read_per_table_in_one_batch(capsys, root: Path):
    from framework.plan import ddl

    assert cli(capsys, root, "apply", "--auto-approve")[0] == 0
    with open_backends(root) as b:
        b.warehouse.insert_rows("shop_analytics.store_totals", [{"day": "2026-01-02", "store_id": "s1", "total": 1.0}])
        got = ddl.tables_with_rows(b.warehouse, "shop_analytics", ["customer_totals", "store_totals"], chunk=1)
        assert got == {"customer_totals": False, "store_totals": True}
        assert ddl.tables_with_rows(b.warehouse, "shop_analytics", ["customer_totals", "store_totals"]) == got
    doc = plan_json(capsys, root)
    meta = {c["address"]: c["before"]["meta"]["has_rows"] for c in doc["changes"] if c["type"] == "table"}
    assert meta["table.shop_analytics.store_totals"] is True and meta["table.shop_analytics.customer_totals"] is False
