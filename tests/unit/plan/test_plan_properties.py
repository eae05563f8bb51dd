"""Property: applying a plan makes the backend equal the manifests (Terraform's contract).

For random desired and actual sets of tables and subscriptions: apply(diff) with prune and
destructive changes allowed leaves exactly the desired resources; without prune, exactly
the desired ones plus the untouched drift; and a second diff has nothing pending.
"""
from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from framework.plan.applier import apply_plan
from framework.plan.diff import diff
from framework.plan.model import Plan, Resource, state_fingerprint
from plan_fakes import World

COLUMN = st.fixed_dictionaries({
    "name": st.sampled_from(["a", "b", "c", "d"]),
    "type": st.sampled_from(["STRING", "INT64", "DATE"]),
    "mode": st.sampled_from(["NULLABLE", "REQUIRED"]),
})


def _table(name: str, cols: list, part: str | None, cluster: list) -> Resource:
    unique = list({c["name"]: c for c in cols}.values())
    return Resource("table", f"d.{name}", {"columns": unique, "partition_by": part, "cluster_by": cluster})


TABLE = st.builds(_table, st.sampled_from(["t1", "t2", "t3"]), st.lists(COLUMN, min_size=1, max_size=4),
                  st.sampled_from([None, "a"]), st.lists(st.sampled_from(["a", "b"]), max_size=2, unique=True))
SUB = st.builds(lambda name, topic, ack, flt: Resource("subscription", name, {"topic": topic, "ack_deadline_seconds": ack,
                                                                           "max_delivery_attempts": 5, "dead_letter_topic": None,
                                                                           "filter": flt, "push_endpoint": None}),
                st.sampled_from(["s1", "s2", "s3"]), st.sampled_from(["x", "y"]), st.sampled_from([10, 60]),
                st.sampled_from([None, 'attributes.k = "v"']))
RESOURCES = st.lists(st.one_of(TABLE, SUB), max_size=6).map(lambda rs: list({r.address: r for r in rs}.values()))


def _world(actual: list[Resource], rows: set[str]) -> World:
    world = World()
    for r in actual:
        world.put(r)
    world.rows = {r.name for r in actual if r.name in rows}
    return world


def _attrs(attributes: dict) -> dict:
    """Column order is not part of a table's identity: diff treats a reorder as no change (a
    warehouse appends added columns at the end), so compare columns by name."""
    out = dict(attributes)
    if "columns" in out:
        out["columns"] = sorted(out["columns"], key=lambda c: c["name"])
    return out


def _state(world: World) -> dict:
    return {a: _attrs(r.attributes) for a, r in world.resources.items()}


_AB = [{"name": "a", "type": "STRING", "mode": "NULLABLE"}, {"name": "b", "type": "INT64", "mode": "NULLABLE"}]


@settings(max_examples=150, deadline=None)
@given(desired=RESOURCES, actual=RESOURCES, rows=st.sets(st.sampled_from(["d.t1", "d.t2"])), prune=st.booleans())
@example(desired=[_table("t1", _AB, None, [])], actual=[_table("t1", _AB[::-1], None, [])], rows=set(), prune=True)
def test_apply_converges_to_the_manifests(desired, actual, rows, prune):
    world = _world(actual, rows)
    providers = world.providers()
    observed = [r for p in providers for r in p.read_actual(None)]
    plan = Plan("p", "t", state_fingerprint(observed), tuple(diff(desired, observed, allow_destructive=True, prune=prune)),
                allow_destructive=True, prune=prune)
    result = apply_plan(plan, providers)
    assert result.converged
    want = {r.address: _attrs(r.attributes) for r in desired}
    if not prune:
        want.update({r.address: _attrs(r.attributes) for r in actual if r.address not in want})
    assert _state(world) == want


@settings(max_examples=150, deadline=None)
@given(desired=RESOURCES, actual=RESOURCES, rows=st.sets(st.sampled_from(["d.t1", "d.t2"])))
def test_refused_changes_are_exactly_the_destructive_ones(desired, actual, rows):
    world = _world(actual, rows)
    observed = [r for p in world.providers() for r in p.read_actual(None)]
    strict = diff(desired, observed, prune=True)
    allowed = diff(desired, observed, prune=True, allow_destructive=True)
    assert [c.address for c in strict] == [c.address for c in allowed]
    for s, a in zip(strict, allowed):
        assert s.refused == a.destructive and not a.refused
        if s.destructive:
            assert s.reasons, s
        if s.action == "replace":
            assert s.destructive  # every replace in these kinds loses rows or messages
