"""TransformContext: the same ref/source/partition/entity_filter as SQL templates, bound params."""
from __future__ import annotations

import datetime as dt

import pytest

from framework.project import load
from framework.run.transform import TransformContext, TransformError, bind_params, run_python_transform
from tests.projects import write_project


class FakeWarehouse:
    dialect = "duckdb"

    def __init__(self) -> None:
        self.calls: list = []

    def query(self, sql, params=()):
        self.calls.append((sql, list(params)))
        return [{"day": dt.date(2026, 1, 15), "customer_id": "c1", "total": 3.0}]


@pytest.fixture
def project(tmp_path):
    root = write_project(tmp_path / "shop")
    (root / "shopx").mkdir()
    (root / "shopx" / "__init__.py").write_text("")
    (root / "shopx" / "totals.py").write_text(
        "def compute(ctx):\n"
        "    sql = f\"SELECT * FROM {ctx.ref('orders_raw')} o WHERE o.day = {ctx.partition_placeholder} AND {ctx.entity_filter('o.customer_id')}\"\n"
        "    return ctx.query(sql)\n"
        "def broken(ctx):\n"
        "    return [{'day': None}]\n")
    return load(root)


def test_context_renders_like_the_sql_contract(project) -> None:
    wh = FakeWarehouse()
    proc = project.processors["customer_totals"]
    full = TransformContext(wh, project, proc, "2026-01-15")
    assert full.entity_filter("o.customer_id") == "TRUE" and full.full_batch
    assert [p.name for p in full.params()] == ["day"] and full.params()[0].value == dt.date(2026, 1, 15)
    sel = TransformContext(wh, project, proc, "2026-01-15", ("c1", "c2"))
    assert sel.entity_filter("o.customer_id") == "o.customer_id IN (SELECT UNNEST($entity_ids))"
    assert sel.ref("orders_raw") == "shop_raw.orders_raw" and sel.source("orders_landing") == "landing.orders"
    with pytest.raises(TransformError, match="source\\('nope'\\)"):
        sel.source("nope")


def test_bind_params_keeps_only_referenced_parameters(project) -> None:
    ctx = TransformContext(FakeWarehouse(), project, project.processors["customer_totals"], "2026-01-15", ("c1",))
    assert [p.name for p in bind_params("SELECT $day", ctx.params(), "duckdb")] == ["day"]
    assert [p.name for p in bind_params("SELECT @day, @entity_ids", ctx.params(), "bigquery")] == ["day", "entity_ids"]


def test_python_transform_is_loaded_from_the_project_and_rows_are_checked(project) -> None:
    from dataclasses import replace

    from framework.manifest.model import Transform

    wh = FakeWarehouse()
    proc = replace(project.processors["customer_totals"], transform=Transform(python="shopx.totals:compute"))
    rows = run_python_transform(TransformContext(wh, project, proc, "2026-01-15", ("c1",)))
    assert rows == [{"day": dt.date(2026, 1, 15), "customer_id": "c1", "total": 3.0}]
    sql, params = wh.calls[0]
    assert "shop_raw.orders_raw" in sql and "$entity_ids" in sql and [p.name for p in params] == ["day", "entity_ids"]
    bad = replace(proc, transform=Transform(python="shopx.totals:broken"))
    with pytest.raises(TransformError, match="missing \\['customer_id', 'total'\\]"):
        run_python_transform(TransformContext(wh, project, bad, "2026-01-15"))
    missing = replace(proc, transform=Transform(python="shopx.nothere:f"))
    with pytest.raises(TransformError, match="cannot import"):
        run_python_transform(TransformContext(wh, project, missing, "2026-01-15"))
