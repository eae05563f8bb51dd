"""Desired resources derived from the model: addresses, attributes, hashes."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from framework.project import load
from framework.plan.actual import DocumentProvider
from framework.plan.planner import backend_providers
from framework.plan.render import plan_text
from framework.plan.resources import desired_resources, framework_tables
from plan_fakes import rewrite


def by_address(root: Path) -> dict:
    return {r.address: r for r in desired_resources(load(root))}


def test_addresses_cover_every_kind(shop_root: Path):
    res = by_address(shop_root)
    for address in ("dataset.shop_raw", "dataset.landing", "table.landing.orders", "table.shop_raw.orders_raw",
                    "topic.shop-dead-letter", "subscription.shop-raw-complete-orch", "ledger.shop",
                    "orchestrator_config.raw", "orchestrator_config.analytics", "deployment.processor.orders_raw",
                    "deployment.orchestrator.raw"):
        assert address in res, address
    table = res["table.shop_raw.orders_raw"].attributes
    assert table["partition_by"] == "day" and table["columns"][0] == {"name": "day", "type": "DATE", "mode": "REQUIRED"}


def test_framework_tables_come_from_the_templates(shop_root: Path):
    tables = {t.fqn: t for t in framework_tables(load(shop_root))}
    assert {"_pipectl.entity_fingerprints", "_pipectl.change_sets"} <= set(tables)
    assert "fingerprint" in tables["_pipectl.entity_fingerprints"].column_names
    assert f"table.{next(iter(tables))}" in by_address(shop_root)


def test_policy_hash_follows_the_policy_only(shop_root: Path):
    before = by_address(shop_root)["orchestrator_config.raw"].attributes
    rewrite(shop_root, "processors.yaml", "deadline: 2h", "deadline: 3h")
    after = by_address(shop_root)["orchestrator_config.raw"].attributes
    assert after["deadline_seconds"] == 10800 and after["policy_hash"] != before["policy_hash"]
    assert by_address(shop_root)["orchestrator_config.analytics"].attributes == by_address(shop_root)["orchestrator_config.analytics"].attributes


def test_code_hash_follows_the_transform_file(shop_root: Path):
    before = by_address(shop_root)["deployment.processor.orders_raw"].attributes["code_hash"]
    (shop_root / "sql" / "orders_raw.sql").write_text("SELECT 1\n")
    assert by_address(shop_root)["deployment.processor.orders_raw"].attributes["code_hash"] != before


def test_disabled_processor_keeps_its_table_but_has_no_deployment(shop_root: Path):
    rewrite(shop_root, "processors.yaml", "  - name: store_totals\n", "  - name: store_totals\n    enabled: false\n")
    res = by_address(shop_root)
    assert "table.shop_analytics.store_totals" in res and "deployment.processor.store_totals" not in res


class _Offering:
    """A backend offering its own provider for one type (how Google Cloud plugs in)."""

    def __init__(self) -> None:
        self.provider = DocumentProvider("deployment", None, "shop", collection="cloud_functions")

    def plan_providers(self, project: str):
        return [self.provider]


def test_backends_can_replace_a_provider_by_type(shop_root: Path):
    bus = _Offering()
    backends = SimpleNamespace(warehouse=SimpleNamespace(dialect="duckdb"), bus=bus, state=None)
    providers = {p.type: p for p in backend_providers(backends, load(shop_root))}
    assert providers["deployment"] is bus.provider and "table" in providers


def test_no_changes_text(shop_root: Path):
    from plan_fakes import World
    from framework.plan.applier import apply_plan
    from framework.plan.planner import make_plan

    world = World()
    apply_plan(make_plan(load(shop_root), world.providers()), world.providers())
    assert "No changes." in plan_text(make_plan(load(shop_root), world.providers()))
