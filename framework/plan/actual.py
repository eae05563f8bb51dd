"""Actual state: one small :class:`ResourceProvider` per resource type, over the backend protocols.

A provider reads what the backend has (``read_actual``) and changes it (create, update,
delete, replace). Every step is idempotent and nothing is cached: the planner and the
applier always re-read. The Google Cloud backend plugs in by giving providers for its own
Warehouse/Bus/StateStore (or by implementing the warehouse capabilities of
:mod:`framework.plan.ddl`); the diff and the applier do not change.

Scope (what counts as "ours" for drift): tables in datasets the manifests declare;
topics the manifests declare, topics labelled ``pipectl-project=<project>`` and topics whose
name starts with a managed prefix; subscriptions on any of those topics; documents of
pipectl's own StateStore collections tagged with the project name.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Protocol, Sequence, runtime_checkable

from framework.errors import BackendError
from framework.manifest.model import Column
from framework.plan import ddl
from framework.plan.model import AttributeChange, Resource, canonical
from framework.plan.resources import table_from_resource

LAYOUT_COLLECTION = "pipectl_table_layouts"
DOC_COLLECTIONS = {
    "ledger": "pipectl_ledger_meta",
    "orchestrator_config": "pipectl_orchestrator_configs",
    "deployment": "pipectl_deployments",
}
TOPIC_LABELS = ("managed-by", "pipectl-project")


@dataclass(frozen=True)
class Scope:
    """What the planner manages: the project, its desired resources and managed name prefixes."""

    project: str
    desired: tuple[Resource, ...] = ()
    managed_prefixes: tuple[str, ...] = ()

    def names(self, rtype: str) -> list[str]:
        return [r.name for r in self.desired if r.type == rtype]

    def datasets(self) -> list[str]:
        found = set(self.names("dataset")) | {n.split(".", 1)[0] for n in self.names("table")}
        return sorted(found)


@runtime_checkable
class ResourceProvider(Protocol):
    """Reads and changes one resource type on one backend."""

    type: str

    def read_actual(self, scope: Scope) -> list[Resource]: ...

    def create(self, resource: Resource) -> None: ...

    def update(self, before: Resource, after: Resource, changes: Sequence[AttributeChange]) -> None: ...

    def delete(self, resource: Resource) -> None: ...

    def replace(self, before: Resource, after: Resource) -> None: ...


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


# ----------------------------------------------------------------------------- warehouse
class DatasetProvider:
    type = "dataset"

    def __init__(self, warehouse: Any):
        self.warehouse = warehouse

    def read_actual(self, scope: Scope) -> list[Resource]:
        out = []
        for ds in scope.datasets():
            if ddl.dataset_exists(self.warehouse, ds):
                out.append(Resource("dataset", ds, {}, {"has_tables": bool(self.warehouse.list_tables(ds))}))
        return out

    def create(self, resource: Resource) -> None:
        self.warehouse.create_dataset(resource.name)

    def update(self, before: Resource, after: Resource, changes: Sequence[AttributeChange]) -> None:
        return None  # datasets carry no managed attributes yet

    def delete(self, resource: Resource) -> None:
        ddl.drop_dataset(self.warehouse, resource.name)

    def replace(self, before: Resource, after: Resource) -> None:
        self.delete(before)
        self.create(after)


class TableProvider:
    """Tables in managed datasets. Partitioning/clustering come from the warehouse when it can
    report them (capability ``table_layout(fqn) -> {"partition_by", "cluster_by"}``), else from
    a layout record apply writes in the StateStore (DuckDB has no physical partitioning)."""

    type = "table"

    def __init__(self, warehouse: Any, state: Any, project: str):
        self.warehouse = warehouse
        self.state = state
        self.project = project

    def read_actual(self, scope: Scope) -> list[Resource]:
        out = []
        for ds in scope.datasets():
            if not ddl.dataset_exists(self.warehouse, ds):
                continue
            names = sorted(self.warehouse.list_tables(ds))
            rows = ddl.tables_with_rows(self.warehouse, ds, names)
            for name in names:
                fqn = f"{ds}.{name}"
                columns = self.warehouse.table_schema(fqn)
                if columns is None:
                    continue
                attrs: dict[str, Any] = {"columns": [_column_dict(c) for c in self._as_declared(fqn, columns, scope)]}
                attrs.update(self._layout(fqn, scope))
                out.append(Resource("table", fqn, attrs, {"has_rows": rows.get(name)}))
        return out

    def _as_declared(self, fqn: str, columns: Sequence[Column], scope: Scope) -> list[Column]:
        """Report a column with its declared type when the warehouse stores both the same way
        (DuckDB keeps DATETIME and TIMESTAMP as one type): otherwise every plan would show a
        retype the warehouse cannot express."""
        from framework.sql.dialects import get_dialect

        declared = {c["name"]: c["type"] for r in scope.desired if r.type == "table" and r.name == fqn
                    for c in r.attributes.get("columns") or ()}
        if not declared:
            return list(columns)
        dialect = get_dialect(self.warehouse.dialect)
        out = []
        for col in columns:
            want = declared.get(col.name)
            if want and want != col.type and want in dialect.types and dialect.manifest_type(dialect.column_type(want)) == col.type:
                col = Column(col.name, want, col.mode)
            out.append(col)
        return out

    def _layout(self, fqn: str, scope: Scope) -> dict[str, Any]:
        """Partitioning and clustering as the warehouse reports them; else as apply recorded
        them. A table created outside apply (by a run) on a warehouse with no physical layout
        has nothing that could differ from the declaration: its layout is the declared one."""
        if ddl.can_report_layout(self.warehouse):
            return ddl.table_layout(self.warehouse, fqn)
        doc = self.state.get(LAYOUT_COLLECTION, fqn) if self.state is not None else None
        if doc:
            return {"partition_by": doc.get("partition_by"), "cluster_by": list(doc.get("cluster_by") or ())}
        declared = next((r for r in scope.desired if r.type == "table" and r.name == fqn), None)
        if declared is None:
            return {}
        return {"partition_by": declared.attributes.get("partition_by"), "cluster_by": list(declared.attributes.get("cluster_by") or ())}

    def _record_layout(self, resource: Resource) -> None:
        if ddl.can_report_layout(self.warehouse) or self.state is None:
            return
        attrs = resource.attributes
        doc = {"project": self.project, "partition_by": attrs.get("partition_by"),
               "cluster_by": list(attrs.get("cluster_by") or ()), "recorded_at": _now()}
        self.state.run_transaction(lambda txn: txn.set(LAYOUT_COLLECTION, resource.name, doc))

    def create(self, resource: Resource) -> None:
        dataset = resource.name.split(".", 1)[0]
        if not ddl.dataset_exists(self.warehouse, dataset):
            self.warehouse.create_dataset(dataset)
        if self.warehouse.table_schema(resource.name) is None:
            self.warehouse.create_table(table_from_resource(resource))
        self._record_layout(resource)

    def update(self, before: Resource, after: Resource, changes: Sequence[AttributeChange]) -> None:
        want = {c["name"]: c for c in after.attributes.get("columns") or ()}
        have = {c["name"]: c for c in _current_columns(self.warehouse, after.name)}
        for name in have:
            if name not in want:
                ddl.drop_column(self.warehouse, after.name, name)
        for name, col in want.items():
            column = Column(name, col["type"], col.get("mode", "NULLABLE"))
            old = have.get(name)
            if old is None:
                ddl.add_column(self.warehouse, after.name, column)
            elif old["type"] != column.type or old.get("mode", "NULLABLE") != column.mode:
                ddl.alter_column(self.warehouse, after.name, column, old["type"] != column.type, old.get("mode", "NULLABLE"))
        if ddl.can_report_layout(self.warehouse) and any(c.path == "cluster_by" for c in changes):
            if not hasattr(self.warehouse, "set_clustering"):
                raise BackendError(f"table {after.name}: this warehouse cannot change clustering in place",
                                   hint="implement set_clustering(fqn, columns) on the warehouse, or recreate the table")
            self.warehouse.set_clustering(after.name, list(after.attributes.get("cluster_by") or ()))
        self._record_layout(after)

    def delete(self, resource: Resource) -> None:
        ddl.drop_table(self.warehouse, resource.name)
        if self.state is not None and not ddl.can_report_layout(self.warehouse):
            self.state.run_transaction(lambda txn: txn.delete(LAYOUT_COLLECTION, resource.name))

    def replace(self, before: Resource, after: Resource) -> None:
        ddl.drop_table(self.warehouse, before.name)
        self.create(after)


def _column_dict(c: Column) -> dict[str, Any]:
    return {"name": c.name, "type": c.type, "mode": c.mode}


def _current_columns(warehouse: Any, fqn: str) -> list[dict[str, Any]]:
    cols = warehouse.table_schema(fqn)
    if cols is None:
        raise BackendError(f"table {fqn} disappeared while applying", hint="run `pipectl plan` again")
    return [_column_dict(c) for c in cols]


# ----------------------------------------------------------------------------- bus
class TopicProvider:
    type = "topic"

    def __init__(self, bus: Any, project: str):
        self.bus = bus
        self.project = project

    def managed(self, topic: Any, scope: Scope) -> tuple[bool, bool]:
        """(in scope, carries pipectl's label for this project)."""
        from framework.backends.gcp_common import sanitize_label_value  # light: no SDK import

        labels = dict(getattr(topic, "labels", None) or {})
        labelled = labels.get("pipectl-project") in (self.project, sanitize_label_value(self.project))
        in_scope = labelled or topic.name in scope.names("topic") or any(topic.name.startswith(p) for p in scope.managed_prefixes)
        return in_scope, labelled

    def read_actual(self, scope: Scope) -> list[Resource]:
        out = []
        for topic in self.bus.list_topics():
            in_scope, labelled = self.managed(topic, scope)
            if in_scope:  # the label only puts a topic in scope: an undeclared topic is drift (--prune)
                out.append(Resource("topic", topic.name, {}, {"labelled": True} if labelled else {}))
        return out

    def create(self, resource: Resource) -> None:
        from framework.backends.protocols import TopicConfig

        if any(t.name == resource.name for t in self.bus.list_topics()):
            return
        self.bus.create_topic(TopicConfig(resource.name, {"managed-by": "pipectl", "pipectl-project": self.project}))

    def update(self, before: Resource, after: Resource, changes: Sequence[AttributeChange]) -> None:
        return None

    def delete(self, resource: Resource) -> None:
        if any(t.name == resource.name for t in self.bus.list_topics()):
            self.bus.delete_topic(resource.name)

    def replace(self, before: Resource, after: Resource) -> None:
        self.delete(before)
        self.create(after)


SUBSCRIPTION_FIELDS = ("topic", "ack_deadline_seconds", "max_delivery_attempts", "dead_letter_topic", "filter", "push_endpoint",
                       "push_service_account", "push_audience", "retry_min_backoff_seconds", "retry_max_backoff_seconds")


class SubscriptionProvider:
    type = "subscription"

    def __init__(self, bus: Any, topics: TopicProvider):
        self.bus = bus
        self.topics = topics

    def read_actual(self, scope: Scope) -> list[Resource]:
        managed_topics = {t.name for t in self.bus.list_topics() if self.topics.managed(t, scope)[0]}
        managed_topics |= set(scope.names("topic"))
        wanted = set(scope.names("subscription"))
        out = []
        for sub in self.bus.list_subscriptions():
            if sub.topic in managed_topics or sub.name in wanted:
                # "" and None both mean "not set" (Pub/Sub reports empty strings)
                out.append(Resource("subscription", sub.name, {f: (getattr(sub, f, None) if getattr(sub, f, None) != "" else None)
                                                               for f in SUBSCRIPTION_FIELDS}))
        return out

    def _config(self, resource: Resource) -> Any:
        from framework.backends.protocols import SubscriptionConfig

        attrs = resource.attributes
        return SubscriptionConfig(resource.name, attrs["topic"], int(attrs.get("ack_deadline_seconds") or 60),
                                  int(attrs.get("max_delivery_attempts") or 5), attrs.get("dead_letter_topic"),
                                  attrs.get("filter"), attrs.get("push_endpoint"), attrs.get("push_service_account"),
                                  attrs.get("push_audience"), attrs.get("retry_min_backoff_seconds"),
                                  attrs.get("retry_max_backoff_seconds"))

    def _exists(self, name: str) -> bool:
        return any(s.name == name for s in self.bus.list_subscriptions())

    def create(self, resource: Resource) -> None:
        if self._exists(resource.name):
            self.bus.update_subscription(self._config(resource))
        else:
            self.bus.create_subscription(self._config(resource))

    def update(self, before: Resource, after: Resource, changes: Sequence[AttributeChange]) -> None:
        self.bus.update_subscription(self._config(after))

    def delete(self, resource: Resource) -> None:
        if self._exists(resource.name):
            self.bus.delete_subscription(resource.name)

    def replace(self, before: Resource, after: Resource) -> None:
        self.delete(before)
        self.bus.create_subscription(self._config(after))


# ----------------------------------------------------------------------------- state store
class DocumentProvider:
    """Resources recorded as documents in one StateStore collection (ledger marker,
    orchestrator configs, deployment records). Each document is the resource's attributes,
    tagged with the project, so ``read_actual`` returns exactly what was applied."""

    def __init__(self, rtype: str, state: Any, project: str, collection: str | None = None):
        self.type = rtype
        self.state = state
        self.project = project
        self.collection = collection or DOC_COLLECTIONS[rtype]

    def read_actual(self, scope: Scope) -> list[Resource]:
        out = []
        for key, doc in self.state.query(self.collection, where={"project": self.project}):
            out.append(Resource(self.type, doc.get("name", key), dict(doc.get("attributes") or {}), {"managed": True}))
        return out

    def create(self, resource: Resource) -> None:
        doc = {"project": self.project, "name": resource.name, "attributes": canonical(dict(resource.attributes)), "applied_at": _now()}
        self.state.run_transaction(lambda txn: txn.set(self.collection, resource.name, doc))

    def update(self, before: Resource, after: Resource, changes: Sequence[AttributeChange]) -> None:
        self.create(after)

    def delete(self, resource: Resource) -> None:
        self.state.run_transaction(lambda txn: txn.delete(self.collection, resource.name))

    def replace(self, before: Resource, after: Resource) -> None:
        self.create(after)


def embedded_providers(project: str, warehouse: Any, bus: Any, state: Any) -> list[ResourceProvider]:
    """Providers over the three protocols; works for any backend implementing them."""
    topics = TopicProvider(bus, project)
    return [
        DatasetProvider(warehouse),
        TableProvider(warehouse, state, project),
        topics,
        SubscriptionProvider(bus, topics),
        DocumentProvider("ledger", state, project),
        DocumentProvider("orchestrator_config", state, project),
        DocumentProvider("deployment", state, project),
    ]


def read_actual(providers: Sequence[ResourceProvider], scope: Scope) -> list[Resource]:
    """Read every provider's actual resources; a failing read names the resource type."""
    out: list[Resource] = []
    for provider in providers:
        try:
            out.extend(provider.read_actual(scope))
        except BackendError:
            raise
        except Exception as exc:  # translate driver errors at this edge, naming what failed
            raise BackendError(f"reading actual {provider.type} resources failed: {exc}",
                               hint="check the backend is reachable and configured (pipectl.yaml)") from exc
    return out


__all__ = ["ResourceProvider", "Scope", "embedded_providers", "read_actual", "DatasetProvider", "TableProvider",
           "TopicProvider", "SubscriptionProvider", "DocumentProvider"]
