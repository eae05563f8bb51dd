"""`pipectl init` writes a project that validates clean and runs: full, then incremental."""
from __future__ import annotations

import json

from framework.cli import main


def _warehouse(root):
    from framework.backends.duckdb import DuckDBWarehouse

    return DuckDBWarehouse(root / ".pipectl" / "warehouse.duckdb")


def test_init_validate_run_and_one_change_reprocesses_one_entity(tmp_path, capsys):
    root = tmp_path / "my_shop"
    assert main(["init", str(root)]) == 0
    out = capsys.readouterr().out
    assert "created processors.yaml" in out and "validated: ok" in out
    assert main(["-p", str(root), "validate", "--strict"]) == 0  # with the SQL checks
    capsys.readouterr()

    wh = _warehouse(root)
    wh.query("CREATE SCHEMA IF NOT EXISTS landing")
    wh.query("CREATE TABLE landing.orders (day DATE, customer_id VARCHAR, store_id VARCHAR, amount DOUBLE)")
    wh.insert_rows("landing.orders", [{"day": "2025-01-01", "customer_id": f"c{i}", "store_id": f"s{i % 3}", "amount": 10.0 + i}
                                      for i in range(20)])
    assert main(["-p", str(root), "run", "--date", "2025-01-01", "--json", "-q"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["status"] == "success"
    totals = {r["store_id"]: r["total"] for r in wh.query("SELECT store_id, total FROM my_shop_analytics.store_totals")}
    assert totals == {"s0": sum(10.0 + i for i in range(20) if i % 3 == 0),
                      "s1": sum(10.0 + i for i in range(20) if i % 3 == 1),
                      "s2": sum(10.0 + i for i in range(20) if i % 3 == 2)}

    wh.query("UPDATE landing.orders SET amount = 1000 WHERE customer_id = 'c4'")  # c4 buys at store s1
    assert main(["-p", str(root), "run", "--date", "2025-01-01", "--json", "-q"]) == 0
    second = json.loads(capsys.readouterr().out)
    runs = {r["processor"]: r for p in second["phases"] for r in p["runs"]}
    assert (runs["orders_raw"]["entities"], runs["customer_totals"]["entities"], runs["store_totals"]["entities"]) == (1, 1, 1)
    after = {r["store_id"]: r["total"] for r in wh.query("SELECT store_id, total FROM my_shop_analytics.store_totals")}
    assert after == {**totals, "s1": totals["s1"] - 14.0 + 1000}


def test_init_never_overwrites_manifests_without_force(tmp_path, capsys):
    assert main(["init", str(tmp_path)]) == 0
    (tmp_path / "processors.yaml").write_text("# mine\n")
    assert main(["init", str(tmp_path)]) == 1
    assert "already has processors.yaml, topics.yaml" in capsys.readouterr().err
    assert (tmp_path / "processors.yaml").read_text() == "# mine\n"
    assert main(["init", str(tmp_path), "--force", "--name", "shop"]) == 0
    assert "project: shop" in (tmp_path / "processors.yaml").read_text()


def test_init_rejects_a_name_that_is_not_snake_case(tmp_path, capsys):
    assert main(["init", str(tmp_path), "--name", "My-Shop"]) == 1
    assert "not snake_case" in capsys.readouterr().err
    assert not (tmp_path / "processors.yaml").exists()


def test_the_skeleton_samples_and_simulates_an_update_with_its_own_hook(tmp_path, capsys):
    """`init` ships sample_data.py (beside processors.yaml): `pipectl sample` and
    `pipectl simulate update` work on a new project; a refused edit is a clean error."""
    root = tmp_path / "shop"
    assert main(["init", str(root)]) == 0
    assert main(["-p", str(root), "sample"]) == 0
    assert "sample rows for 2025-01-01: orders: 20" in capsys.readouterr().out
    assert main(["-p", str(root), "run", "--date", "2025-01-01", "-q"]) == 0
    capsys.readouterr()
    assert main(["-p", str(root), "simulate", "update", "--date", "2025-01-01", "--entity", "customer_id=c4", "--set", "amount=99",
                 "--json", "-q"]) == 0
    upd = json.loads(capsys.readouterr().out)
    assert upd["changes"] == {"amount": 99}
    assert {p["phase"]: p["entities"] for p in upd["phases"]} == {"raw": 1, "analytics": 2}  # c4, and c4's store
    assert _warehouse(root).query("SELECT amount FROM landing.orders WHERE customer_id = 'c4'") == [{"amount": 99.0}]
    assert main(["-p", str(root), "simulate", "update", "--date", "2025-01-01", "--entity", "nobody", "--set", "amount=1"]) == 1
    assert "apply_update refused the edit of customer_id=nobody: landing.orders has no row where day = 2025-01-01, customer_id = nobody" in capsys.readouterr().err
