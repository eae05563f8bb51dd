"""`pipectl --target gcp validate --dry-run`: every rendered statement validated by BigQuery
(bqemulator) against the live tables, with the bytes it would scan."""
from __future__ import annotations

from pathlib import Path

import pytest

from framework.backends.bigquery import BigQueryWarehouse
from framework.cli import main
from framework.manifest.model import Column, Table
from framework.plan.planner import plan_and_apply
from projects import PROCESSORS, SQL, TOPICS, write_project


@pytest.fixture
def applied(tmp_path: Path, uid: str) -> tuple[Path, str]:
    gcp_project = f"dry-{uid}"
    root = write_project(tmp_path / "p", PROCESSORS.replace("shop", uid), TOPICS.replace("shop", uid), SQL)
    (root / "pipectl.yaml").write_text(
        f"targets:\n  gcp:\n    project: {gcp_project}\n    warehouse: {{type: bigquery, timeout: 60}}\n"
        f"    bus: {{type: pubsub}}\n    state: {{type: firestore, prefix: {uid}_}}\n")
    plan_and_apply(root, "gcp")  # datasets, tables, framework tables
    wh = BigQueryWarehouse(gcp_project)
    try:  # the external source the raw processor reads
        wh.create_dataset("landing")
        wh.create_table(Table("landing", "orders", (Column("day", "DATE", "REQUIRED"), Column("customer_id", "STRING", "REQUIRED"),
                                                    Column("store_id", "STRING"), Column("amount", "FLOAT64"))))
    finally:
        wh.close()
    return root, gcp_project


def test_dry_run_reports_bytes_for_every_statement(applied: tuple[Path, str], capsys: pytest.CaptureFixture) -> None:
    root, _ = applied
    assert main(["--project", str(root), "--target", "gcp", "validate", "--dry-run"]) == 0
    err = capsys.readouterr().err
    for line in ("dry-run: orders_raw transform:", "dry-run: customer_totals transform:", "dry-run: customer_totals detect:"):
        assert line in err


def test_dry_run_fails_on_a_table_missing_from_the_warehouse(applied: tuple[Path, str], uid: str,
                                                            capsys: pytest.CaptureFixture) -> None:
    root, gcp_project = applied
    wh = BigQueryWarehouse(gcp_project)
    try:
        wh.delete_table(f"{uid}_raw.orders_raw")  # dropped by hand: only a dry run can notice
    finally:
        wh.close()
    assert main(["--project", str(root), "--target", "gcp", "validate", "--dry-run"]) == 1
    out = capsys.readouterr().out
    assert "customer_totals" in out and f"{uid}_raw.orders_raw" in out and "rejected by the warehouse" in out


def test_dry_run_needs_a_warehouse_that_can(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = write_project(tmp_path / "local")
    assert main(["--project", str(root), "validate", "--dry-run"]) == 1
    assert "cannot dry-run" in capsys.readouterr().err
