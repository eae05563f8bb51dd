"""Push subscriptions of an ``execution: remote`` target: desired wiring and the planner's diff."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from framework.config import load_config
from framework.errors import ConfigError
from framework.plan.applier import apply_plan
from framework.plan.planner import PlanOptions, make_plan
from framework.plan.push import push_routes
from framework.project import load
from plan_fakes import World, rewrite
from projects import copy_example

WORKER = "https://pipectl-worker-abc-uc.a.run.app"
SA = "worker@p.iam.gserviceaccount.com"


def remote(root: Path, worker: str = f"url: {WORKER}, service_account: {SA}", extra: str = "") -> object:
    (root / "pipectl.yaml").write_text(textwrap.dedent(f"""\
        targets:
          local: {{}}
          gcp:
            project: p
            execution: remote
            warehouse: {{type: bigquery}}
            bus: {{type: pubsub}}
            state: {{type: firestore}}
            worker: {{{worker}}}
        {extra}"""))
    return load_config(root).target("gcp")


def plan_for(root: Path, world: World, target=None):
    project = load(root)
    routes = push_routes(project, target)
    return make_plan(project, world.providers(), PlanOptions(), "gcp" if target else "local", routes=routes)


def sub_attrs(plan, name: str) -> dict:
    return dict(next(c for c in plan.changes if c.address == f"subscription.{name}").after.attributes)


def test_trigger_subscription_pushes_to_the_worker_with_oidc(shop_root: Path):
    target = remote(shop_root)
    routes = push_routes(load(shop_root), target)
    assert set(routes) == {"shop-analytics-trigger-sub"}  # no orchestrator url: completions stay pull
    attrs = sub_attrs(plan_for(shop_root, World(), target), "shop-analytics-trigger-sub")
    assert attrs["push_endpoint"] == f"{WORKER}/trigger"
    assert (attrs["push_service_account"], attrs["push_audience"]) == (SA, WORKER)
    # analytics: two 10-minute processors one after another in one trigger request -> 600 s
    # ack deadline (Pub/Sub's maximum) and two more attempts for the redeliveries at 600 s and
    # 1200 s while the 20-minute request may still run
    assert (attrs["ack_deadline_seconds"], attrs["max_delivery_attempts"]) == (600, 7)
    assert (attrs["retry_min_backoff_seconds"], attrs["retry_max_backoff_seconds"]) == (10, 600)
    assert attrs["dead_letter_topic"] == "shop-dead-letter"
    pull = sub_attrs(plan_for(shop_root, World(), target), "shop-raw-complete-orch")
    assert pull["push_endpoint"] is None and pull["push_service_account"] is None


def test_orchestrator_url_makes_completions_push(shop_root: Path):
    extra = "    orchestrator: {url: 'https://orch-abc-uc.a.run.app', service_account: orch@p.iam.gserviceaccount.com}\n"
    target = remote(shop_root, extra=extra)
    attrs = sub_attrs(plan_for(shop_root, World(), target), "shop-raw-complete-orch")
    assert attrs["push_endpoint"] == "https://orch-abc-uc.a.run.app/projects/p/topics/shop-raw-complete"
    assert (attrs["push_service_account"], attrs["push_audience"]) == ("orch@p.iam.gserviceaccount.com", "https://orch-abc-uc.a.run.app")
    assert attrs["ack_deadline_seconds"] == 90 and attrs["max_delivery_attempts"] == 5


def test_fanout_task_subscription_pushes_to_task(tmp_path: Path):
    root = copy_example(tmp_path / "nba")
    target = remote(root)
    project = load(root)
    routes = push_routes(project, target)
    task = routes["nba-prediction-requests-workers"]
    assert task.endpoint == f"{WORKER}/task"
    fan = project.processors["player_prop_predictions"]
    assert task.timing["ack_deadline_seconds"] == min(600, max(120, fan.timeout_seconds + 30))
    triggers = {name for name, r in routes.items() if r.endpoint.endswith("/trigger")}
    expected = {s.name for t in project.topics.values() if t.contract == "trigger"
                for s in t.subscriptions if s.consumer.startswith("phase:")}
    assert triggers == expected and len(expected) >= 5


def test_dead_lettered_tasks_are_pushed_to_the_worker_by_a_subscription_of_pipectl(tmp_path: Path):
    """The task subscription's dead-letter topic gets ``<dlq>-pipectl-worker`` pushing to
    ``/task-dead-letter`` (a task Pub/Sub gives up on reaches the worker, which fails it and
    finishes its run); it has no dead-letter policy of its own, and a re-plan is clean."""
    root = copy_example(tmp_path / "nba")
    target = remote(root)
    project = load(root)
    dlq = project.topics["nba-prediction-requests"].dead_letter_topic
    route = push_routes(project, target)[f"{dlq}-pipectl-worker"]
    assert (route.endpoint, route.topic, route.service_account, route.audience) == (f"{WORKER}/task-dead-letter", dlq, SA, WORKER)
    world = World()
    plan = plan_for(root, world, target)
    attrs = sub_attrs(plan, f"{dlq}-pipectl-worker")
    assert attrs["topic"] == dlq and attrs["dead_letter_topic"] is None and attrs["filter"] is None
    assert attrs["push_endpoint"] == f"{WORKER}/task-dead-letter"
    assert attrs["ack_deadline_seconds"] == push_routes(project, target)["nba-prediction-requests-workers"].timing["ack_deadline_seconds"]
    assert apply_plan(plan, world.providers()).converged
    assert not plan_for(root, world, target).has_changes
    assert f"subscription.{dlq}-pipectl-worker" not in {c.address for c in plan_for(root, World(), None).changes}


def test_apply_then_replan_is_clean_and_drift_is_shown(shop_root: Path):
    world = World()
    target = remote(shop_root)
    plan = plan_for(shop_root, world, target)
    assert apply_plan(plan, world.providers()).converged
    assert not plan_for(shop_root, world, target).has_changes

    # changed endpoint (a new service URL): an in-place update of the push config
    moved = remote(shop_root, worker=f"url: https://w2.run.app, service_account: {SA}")
    (change,) = plan_for(shop_root, world, moved).pending
    assert change.action == "update" and change.address == "subscription.shop-analytics-trigger-sub"
    paths = {a.path: (a.before, a.after) for a in change.attribute_changes}
    assert paths == {"push_endpoint": (f"{WORKER}/trigger", "https://w2.run.app/trigger"),
                     "push_audience": (WORKER, "https://w2.run.app")}
    assert not change.destructive

    # changed auth: a different service account
    other = remote(shop_root, worker=f"url: {WORKER}, service_account: other@p.iam.gserviceaccount.com")
    (change,) = plan_for(shop_root, world, other).pending
    assert [(a.path, a.after) for a in change.attribute_changes] == [("push_service_account", "other@p.iam.gserviceaccount.com")]

    # pull vs push: back on a local-execution plan the pushed subscription is drift to undo
    local = plan_for(shop_root, world, None)
    (change,) = local.pending
    assert change.address == "subscription.shop-analytics-trigger-sub"
    assert ("push_endpoint", f"{WORKER}/trigger", None) in {(a.path, a.before, a.after) for a in change.attribute_changes}


def test_a_pull_subscription_found_pushing_is_drift(shop_root: Path):
    world = World()
    target = remote(shop_root)
    apply_plan(plan_for(shop_root, world, target), world.providers())
    sub = world.resources["subscription.shop-raw-complete-orch"]
    world.put(type(sub)(sub.type, sub.name, {**sub.attributes, "push_endpoint": "https://someone-else.example/x"}))
    (change,) = plan_for(shop_root, world, target).pending
    assert change.address == "subscription.shop-raw-complete-orch"
    assert [(a.path, a.after) for a in change.attribute_changes] == [("push_endpoint", None)]


def test_declared_push_endpoint_wins(shop_root: Path):
    rewrite(shop_root, "topics.yaml", "{name: shop-analytics-trigger-sub, consumer: phase:analytics}",
            "{name: shop-analytics-trigger-sub, consumer: phase:analytics, push_endpoint: 'https://mine.example/t'}")
    target = remote(shop_root)
    assert push_routes(load(shop_root), target) == {}
    assert sub_attrs(plan_for(shop_root, World(), target), "shop-analytics-trigger-sub")["push_endpoint"] == "https://mine.example/t"


def test_remote_plan_without_url_or_with_a_too_long_processor_fails(shop_root: Path):
    target = remote(shop_root, worker=f"service_account: {SA}")
    with pytest.raises(ConfigError, match="worker.url is not set"):
        plan_for(shop_root, World(), target)
    rewrite(shop_root, "processors.yaml", "  - name: customer_totals\n", "  - name: customer_totals\n    timeout: 90m\n")
    with pytest.raises(ConfigError, match="customer_totals' declares timeout 90m"):
        plan_for(shop_root, World(), remote(shop_root))


def test_local_target_plan_has_no_push_attributes(shop_root: Path):
    plan = plan_for(shop_root, World(), None)
    assert "push_service_account" not in sub_attrs(plan, "shop-analytics-trigger-sub")
