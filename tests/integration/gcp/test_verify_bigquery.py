"""`pipectl verify` on BigQuery (the emulator): the `pipectl init` project with a BigQuery
warehouse runs full, then incrementally after landing edits; verify recomputes it in a
scratch dataset and reports equal, then differs (exit 1) once a transform is changed, and
drops its scratch dataset every time. Its own GCP project keeps the shared emulator clean."""
from __future__ import annotations

import datetime as dt
import json

from framework.backends.protocols import QueryParam
from framework.cli import main
from framework.drive.session import Session, run_partition
from framework.run.verify import SCRATCH_PREFIX, verify
from framework.scaffold import init_project

DAY = dt.date(2025, 1, 1)


def test_verify_on_bigquery(tmp_path, uid, capsys):
    root = tmp_path / "shop"
    init_project(root, name="shop")
    (root / "pipectl.yaml").write_text(f"targets:\n  gcp:\n    project: verify-{uid}\n    warehouse: {{type: bigquery, timeout: 60}}\n")
    with Session.open(root, "gcp") as sess:
        wh = sess.warehouse
        src = sess.project.sources["orders_landing"].table
        wh.create_dataset(src.dataset)
        wh.create_table(src)
        wh.insert_rows(src.fqn, [{"day": DAY, "customer_id": f"c{i}", "store_id": f"s{i % 3}", "amount": float(i) + 0.1}
                                 for i in range(12)])
        assert run_partition(sess, DAY.isoformat(), full=True, mode="full").status == "success"
        first = verify(sess.project, wh, DAY.isoformat())
        assert first.ok and [t.status for t in first.tables] == ["equal"] * 3, [t.to_dict() for t in first.tables]
        assert [t.diff.incremental_rows for t in first.tables] == [12, 12, 3]

        # landing edits: one amount changed, one order added, one removed; an incremental run
        wh.execute_script(f"UPDATE {src.fqn} SET amount = amount + 5 WHERE customer_id = @c AND day = @d",
                          [QueryParam("c", "c4"), QueryParam("d", DAY, "DATE")])
        wh.execute_script(f"DELETE FROM {src.fqn} WHERE customer_id = @c AND day = @d", [QueryParam("c", "c7"), QueryParam("d", DAY, "DATE")])
        wh.insert_rows(src.fqn, [{"day": DAY, "customer_id": "c99", "store_id": "s1", "amount": 2.5}])
        rep = run_partition(sess, DAY.isoformat(), mode="incremental")
        assert rep.status == "success" and rep.phase("raw").entities_processed == 3
        second = verify(sess.project, wh, DAY.isoformat())
        assert second.ok, [t.to_dict() for t in second.differing]
        assert [t.diff.incremental_rows for t in second.tables] == [12, 12, 3]
        assert not [d for d in wh.list_datasets() if d.startswith(SCRATCH_PREFIX)]

    sql = root / "sql" / "store_totals.sql"
    sql.write_text(sql.read_text().replace("SUM(o.amount) AS total", "ROUND(SUM(o.amount), 0) AS total"))
    code = main(["-p", str(root), "-t", "gcp", "verify", "--date", DAY.isoformat(), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 1 and out["differing"] == ["store_totals"], out
    [store] = [t for t in out["tables"] if t["processor"] == "store_totals"]
    assert store["keys"] == 3 and store["changed"] == store["keys_differing"] > 0
    assert all(s["columns"] == ["total"] for s in store["samples"])
    with Session.open(root, "gcp") as sess:
        assert not [d for d in sess.warehouse.list_datasets() if d.startswith(SCRATCH_PREFIX)]
