"""The diff rules: safe vs destructive vs replace, drift and prune, apply order."""
from __future__ import annotations

from framework.plan.diff import column_changes, diff
from framework.plan.model import Resource


def table(name: str, cols: list[tuple[str, str, str]], partition: str | None = "day", cluster=(), rows=None) -> Resource:
    attrs = {"columns": [{"name": n, "type": t, "mode": m} for n, t, m in cols], "partition_by": partition, "cluster_by": list(cluster)}
    return Resource("table", name, attrs, {"has_rows": rows} if rows is not None else {})


BASE = [("day", "DATE", "REQUIRED"), ("id", "STRING", "REQUIRED"), ("amount", "FLOAT64", "NULLABLE")]


def one(changes):
    assert len(changes) == 1, changes
    return changes[0]


def test_identical_is_noop():
    c = one(diff([table("d.t", BASE)], [table("d.t", BASE, rows=True)]))
    assert c.action == "no-op" and not c.pending


def test_missing_is_create_and_extra_unmanaged_is_drift_only():
    changes = diff([table("d.t", BASE)], [table("d.old", BASE, rows=False)])
    by = {c.address: c for c in changes}
    assert by["table.d.t"].action == "create"
    assert by["table.d.old"].action == "drift" and by["table.d.old"].drift and not by["table.d.old"].pending


def test_prune_deletes_drift_and_rows_make_it_destructive():
    empty = one(diff([], [table("d.old", BASE, rows=False)], prune=True))
    assert empty.action == "delete" and not empty.destructive and not empty.refused
    full = one(diff([], [table("d.old", BASE, rows=True)], prune=True))
    assert full.action == "delete" and full.destructive and full.refused
    assert "deleting a table that has rows" in full.reasons
    allowed = one(diff([], [table("d.old", BASE, rows=True)], prune=True, allow_destructive=True))
    assert allowed.destructive and not allowed.refused


def test_managed_orphan_is_deleted_without_prune():
    c = one(diff([], [Resource("deployment", "processor.gone", {"code_hash": "x"}, {"managed": True})]))
    assert c.action == "delete" and not c.drift


def test_add_nullable_column_is_safe_update():
    c = one(diff([table("d.t", BASE + [("note", "STRING", "NULLABLE")])], [table("d.t", BASE, rows=True)]))
    assert c.action == "update" and not c.destructive
    assert [(a.path, a.before, a.after) for a in c.attribute_changes] == [("columns.note", None, "STRING NULLABLE")]


def test_rename_column_is_destructive_with_reason():
    renamed = [("day", "DATE", "REQUIRED"), ("id", "STRING", "REQUIRED"), ("total", "FLOAT64", "NULLABLE")]
    c = one(diff([table("d.t", renamed)], [table("d.t", BASE)]))
    assert c.action == "update" and c.destructive and c.refused
    assert c.reasons == ("dropping column 'amount' loses its data",)
    assert {a.path for a in c.attribute_changes} == {"columns.amount", "columns.total"}


def test_retype_and_tighten_are_destructive_relax_is_safe():
    retyped = column_changes([{"name": "a", "type": "INT64", "mode": "NULLABLE"}], [{"name": "a", "type": "STRING", "mode": "NULLABLE"}])
    assert retyped[0].destructive and retyped[0].path == "columns.a.type"
    tighten = column_changes([{"name": "a", "type": "INT64", "mode": "REQUIRED"}], [{"name": "a", "type": "INT64", "mode": "NULLABLE"}])
    assert tighten[0].destructive
    relax = column_changes([{"name": "a", "type": "INT64", "mode": "NULLABLE"}], [{"name": "a", "type": "INT64", "mode": "REQUIRED"}])
    assert not relax[0].destructive
    required_add = column_changes([{"name": "a", "type": "INT64", "mode": "REQUIRED"}], [])
    assert required_add[0].destructive


def test_partitioning_change_is_destructive_replace_clustering_is_update():
    c = one(diff([table("d.t", BASE, partition=None)], [table("d.t", BASE, partition="day")]))
    assert c.action == "replace" and c.destructive and c.refused
    assert "partitioning" in c.reasons[0]
    c = one(diff([table("d.t", BASE, cluster=["id"])], [table("d.t", BASE)]))
    assert c.action == "update" and not c.destructive


def test_unknown_layout_is_recorded_safely():
    have = Resource("table", "d.t", {"columns": table("d.t", BASE).attributes["columns"]})
    c = one(diff([table("d.t", BASE)], [have]))
    assert c.action == "update" and not c.destructive
    assert {a.path for a in c.attribute_changes} == {"partition_by", "cluster_by"}


def sub(name: str, **attrs) -> Resource:
    base = {"topic": "t", "ack_deadline_seconds": 60, "max_delivery_attempts": 5, "dead_letter_topic": "dlq", "filter": None, "push_endpoint": None}
    base.update(attrs)
    return Resource("subscription", name, base)


def test_subscription_update_and_replace():
    c = one(diff([sub("s", ack_deadline_seconds=120)], [sub("s")]))
    assert c.action == "update" and not c.destructive
    assert [(a.path, a.before, a.after) for a in c.attribute_changes] == [("ack_deadline_seconds", 60, 120)]
    c = one(diff([sub("s", filter="attributes.x = \"1\"")], [sub("s")]))
    assert c.action == "replace" and c.destructive and "unacknowledged" in c.reasons[0]


def test_order_deletes_first_deepest_first_then_creates_by_kind():
    desired = [sub("s2", topic="t2"), Resource("topic", "t2"), Resource("dataset", "d"), table("d.t", BASE)]
    actual = [Resource("topic", "old", {}, {"managed": True}), sub("old-sub", topic="old")]
    order = [c.address for c in diff(desired, actual, prune=True)]
    assert order == ["subscription.old-sub", "topic.old", "dataset.d", "table.d.t", "topic.t2", "subscription.s2"]
