"""Property: for random edits of the landing rows (inserts, updates, deletes across customers
and stores), incremental runs of every processor equal a full recompute, row for row.
The small shop fixture keeps each example fast; the NBA pipeline has its own seeded
differential test in tests/integration/test_differential.py."""
from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framework.project import load
from framework.run.runner import ProcessorRunner, RunRequest
from tests.projects import write_project

DAY = dt.date(2026, 1, 15)
ORDER = ("orders_raw", "customer_totals", "store_totals")
TABLES = ("shop_raw.orders_raw", "shop_analytics.customer_totals", "shop_analytics.store_totals")

row = st.tuples(st.sampled_from(["c1", "c2", "c3", "c4", "c5"]), st.sampled_from(["s1", "s2", "s3"]),
                st.integers(min_value=0, max_value=50).map(float))
edit = st.one_of(
    st.tuples(st.just("insert"), row),
    st.tuples(st.just("delete"), st.sampled_from(["c1", "c2", "c3", "c4", "c5"])),
    st.tuples(st.just("update"), row),
)


def _world(project, initial, edits, incremental: bool) -> dict[str, list]:
    from framework.backends.duckdb import DuckDBWarehouse
    from framework.backends.protocols import QueryParam as P

    with DuckDBWarehouse(":memory:") as wh:
        wh.create_dataset("landing")
        wh.create_table(project.sources["orders_landing"].table)
        runner = ProcessorRunner(project, wh)

        def insert(rows):
            if rows:
                wh.insert_rows("landing.orders", [dict(day=DAY, customer_id=c, store_id=s, amount=a) for c, s, a in rows])

        def apply(batch):
            for op, arg in batch:
                if op == "insert":
                    insert([arg])
                elif op == "delete":
                    wh.query("DELETE FROM landing.orders WHERE customer_id = $c", [P("c", arg)])
                else:
                    c, s, a = arg
                    wh.query("UPDATE landing.orders SET store_id = $s, amount = $a WHERE customer_id = $c",
                             [P("s", s), P("a", a, "FLOAT64"), P("c", c)])

        insert(initial)
        if incremental:
            for name in ORDER:
                runner.run(RunRequest(name, DAY.isoformat()))
            for batch in edits:
                apply(batch)
                for name in ORDER:
                    assert runner.run(RunRequest(name, DAY.isoformat())).status in ("success", "no_data")
        else:
            for batch in edits:
                apply(batch)
            for name in ORDER:
                runner.run(RunRequest(name, DAY.isoformat(), full=True))
        return {t: sorted(tuple(r.values()) for r in wh.query(f"SELECT * FROM {t}")) for t in TABLES}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(initial=st.lists(row, min_size=1, max_size=8), edits=st.lists(st.lists(edit, min_size=1, max_size=4), min_size=1, max_size=3))
def test_incremental_runs_equal_full_recompute(tmp_path_factory, initial, edits) -> None:
    project = load(write_project(tmp_path_factory.mktemp("shop")))
    assert _world(project, initial, edits, True) == _world(project, initial, edits, False)
