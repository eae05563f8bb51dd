"""make_plan + apply_plan against in-memory providers: the plan/apply contract end to end."""
from __future__ import annotations

from pathlib import Path

import pytest

from framework.errors import PlanError
from framework.project import load
from framework.plan.applier import apply_plan
from framework.plan.model import Plan, Resource
from framework.plan.planner import PlanOptions, make_plan
from plan_fakes import World, add_processor, rewrite


def plan_for(root: Path, world: World, **opts) -> Plan:
    return make_plan(load(root), world.providers(), PlanOptions(**opts))


def applied(root: Path, world: World, **opts) -> Plan:
    plan = plan_for(root, world, **opts)
    result = apply_plan(plan, world.providers())
    assert result.converged, result.remaining
    return plan


def test_plan_on_empty_creates_everything_then_apply_converges(shop_root: Path):
    world = World()
    plan = plan_for(shop_root, world)
    assert plan.pending and all(c.action == "create" for c in plan.pending)
    types = {c.type for c in plan.pending}
    assert types == {"dataset", "table", "topic", "subscription", "ledger", "orchestrator_config", "deployment"}
    assert "table.shop_raw.orders_raw" in {c.address for c in plan.pending}
    result = apply_plan(plan, world.providers())
    assert result.applied == [c.address for c in plan.pending]
    again = plan_for(shop_root, world)
    assert not again.has_changes and not again.pending


def test_adding_a_processor_plans_exactly_its_resources(shop_root: Path):
    world = World()
    applied(shop_root, world)
    add_processor(shop_root)
    plan = plan_for(shop_root, world)
    got = {(c.action, c.address) for c in plan.pending}
    assert got == {
        ("create", "table.shop_analytics.order_counts"),
        ("create", "deployment.processor.order_counts"),
        ("update", "orchestrator_config.analytics"),
        ("update", "deployment.orchestrator.analytics"),  # its policy hash changed
    }
    policy = next(c for c in plan.pending if c.address == "orchestrator_config.analytics")
    paths = {a.path: (a.before, a.after) for a in policy.attribute_changes}
    assert paths["expected"] == (["customer_totals", "store_totals"], ["customer_totals", "order_counts", "store_totals"])
    assert "policy_hash" in paths


def test_subscription_attribute_diff_is_shown(shop_root: Path):
    world = World()
    applied(shop_root, world)
    rewrite(shop_root, "topics.yaml", "ack_deadline: 60s", "ack_deadline: 120s")
    plan = plan_for(shop_root, world)
    (change,) = plan.pending
    assert change.address == "subscription.shop-raw-complete-orch" and change.action == "update"
    assert [(a.path, a.before, a.after) for a in change.attribute_changes] == [("ack_deadline_seconds", 60, 120)]


def test_renamed_column_is_refused_then_allowed(shop_root: Path):
    world = World()
    applied(shop_root, world)
    world.rows.add("shop_analytics.customer_totals")
    rewrite(shop_root, "processors.yaml", "{name: total, type: FLOAT64}", "{name: grand_total, type: FLOAT64}")
    rewrite(shop_root, "processors.yaml", "change_detection: {columns: [total]}", "change_detection: {columns: [grand_total]}")
    plan = plan_for(shop_root, world)
    refused = {c.address: c for c in plan.refused}
    assert set(refused) == {"table.shop_analytics.customer_totals"}
    assert refused["table.shop_analytics.customer_totals"].reasons == ("dropping column 'total' loses its data",)
    with pytest.raises(PlanError, match="destructive change"):
        apply_plan(plan, world.providers())
    assert world.resources["table.shop_analytics.customer_totals"].attributes["columns"][-1]["name"] == "total"
    allowed = applied(shop_root, world, allow_destructive=True)
    assert allowed.pending and not allowed.refused
    assert world.resources["table.shop_analytics.customer_totals"].attributes["columns"][-1]["name"] == "grand_total"


def test_orphan_subscription_is_drift_until_pruned(shop_root: Path):
    world = World()
    applied(shop_root, world)
    orphan = Resource("subscription", "shop-raw-complete-old", {"topic": "shop-raw-complete", "ack_deadline_seconds": 60,
                                                                "max_delivery_attempts": 5, "dead_letter_topic": None,
                                                                "filter": None, "push_endpoint": None})
    world.put(orphan)
    plan = plan_for(shop_root, world)
    assert [(c.action, c.address) for c in plan.drift] == [("drift", "subscription.shop-raw-complete-old")]
    assert plan.has_changes and not plan.pending
    apply_plan(plan, world.providers())
    assert orphan.address in world.resources
    pruned = applied(shop_root, world, prune=True)
    assert [(c.action, c.address) for c in pruned.pending] == [("delete", "subscription.shop-raw-complete-old")]
    assert orphan.address not in world.resources
    assert not plan_for(shop_root, world).has_changes


def test_stale_plan_is_refused(shop_root: Path):
    world = World()
    plan = plan_for(shop_root, world)
    world.put(Resource("topic", "shop-raw-complete"))  # someone created it meanwhile
    with pytest.raises(PlanError, match="stale plan"):
        apply_plan(plan, world.providers())
    assert world.calls == []


def test_failed_apply_leaves_a_truthful_next_plan(shop_root: Path):
    world = World()
    world.fail_on.add("topic.shop-raw-complete")
    plan = plan_for(shop_root, world)
    with pytest.raises(PlanError, match=r"apply failed at topic.shop-raw-complete \(create\), step \d+ of \d+"):
        apply_plan(plan, world.providers())
    done = {address for _, address in world.calls}
    assert done and "topic.shop-raw-complete" not in done
    world.fail_on.clear()
    nxt = plan_for(shop_root, world)
    assert {c.address for c in nxt.pending} == {c.address for c in plan.pending} - done
    applied(shop_root, world)
    assert not plan_for(shop_root, world).has_changes


def test_removed_processor_deletes_its_records_but_table_is_drift(shop_root: Path):
    world = World()
    applied(shop_root, world)
    text = (shop_root / "processors.yaml").read_text()
    start = text.index("  - name: store_totals")
    (shop_root / "processors.yaml").write_text(text[:start])
    rewrite(shop_root, "processors.yaml", "  - {name: customer_store, from: customer, to: store, via: orders_raw}\n", "")
    rewrite(shop_root, "processors.yaml", "entity_mappings:\n", "")
    plan = plan_for(shop_root, world)
    got = {(c.action, c.address) for c in plan.changes if c.action != "no-op"}
    assert ("delete", "deployment.processor.store_totals") in got
    assert ("drift", "table.shop_analytics.store_totals") in got
    assert ("update", "orchestrator_config.analytics") in got
