"""Plans serialize to JSON and back unchanged; fingerprints track the actual state."""
from __future__ import annotations

import pytest

from framework.errors import PlanError
from framework.plan.diff import diff
from framework.plan.model import Plan, Resource, content_hash, state_fingerprint


def test_plan_json_round_trip():
    desired = [Resource("topic", "a"), Resource("subscription", "s", {"topic": "a", "ack_deadline_seconds": 120})]
    actual = [Resource("subscription", "s", {"topic": "a", "ack_deadline_seconds": 60}), Resource("topic", "zz", {}, {"managed": True})]
    plan = Plan("p", "local", state_fingerprint(actual), tuple(diff(desired, actual)), managed_prefixes=("x-",), created_at="now")
    again = Plan.from_json(plan.to_json())
    assert again == plan
    assert again.to_dict()["summary"]["update"] == 1


def test_format_version_checked():
    with pytest.raises(PlanError, match="format version"):
        Plan.from_dict({"format_version": 99})


def test_fingerprint_ignores_order_but_not_attributes_or_rows():
    a = Resource("topic", "a")
    t = Resource("table", "d.t", {"columns": []}, {"has_rows": False})
    assert state_fingerprint([a, t]) == state_fingerprint([t, a])
    assert state_fingerprint([a, t]) != state_fingerprint([a, Resource("table", "d.t", {"columns": []}, {"has_rows": True})])
    assert state_fingerprint([a]) != state_fingerprint([Resource("topic", "a", {"x": 1})])


def test_content_hash_is_key_order_independent():
    assert content_hash({"a": 1, "b": [1, 2]}) == content_hash({"b": [1, 2], "a": 1})
