"""Desired resources derived from the resolved model: the manifests as the single source of truth.

Every resource is ``(type, name, attributes)`` with JSON-shaped attributes, so the diff and
the plan file never see model objects. Kinds and addresses:

- ``dataset.<dataset>``                     every dataset a declared table lives in
- ``table.<dataset>.<table>``               sources, processor outputs, framework tables
- ``topic.<name>`` / ``subscription.<name>`` from topics.yaml
- ``ledger.<project>``                      the orchestrator's ledger store (a marker record)
- ``orchestrator_config.<phase>``           one per phase transition: its policy + content hash
- ``deployment.processor.<name>``           one per enabled processor: code hash of its transform
- ``deployment.orchestrator.<phase>``       one per transition: hash of policy + orchestrator code

Cloud targets only (:func:`cloud_resources`):

- ``subscription.<dead-letter topic>-pipectl`` one per dead-letter topic, read by ``pipectl bus dead-letters``
- ``topic.<sweep topic>`` / ``schedule.pipectl-sweep-<project>`` the Cloud Scheduler job of ``sweep:``

The framework's own tables (processed fingerprints, change sets) come from the SQL templates
that create them, so plan and runtime can never disagree about their shape.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from framework.manifest.fingerprint import file_hash, transform_code_hash  # noqa: F401 - re-exported
from framework.manifest.model import Column, Processor, Project, Table, Transition
from framework.plan.model import Resource, content_hash

LEDGER_SCHEMA_VERSION = 1
INSPECT_SUFFIX = "-pipectl"

# The framework's own tables are defined once, by the SQL templates that create them
# (templates/state_ddl.sql.j2, templates/changeset_ddl.sql.j2). Rendering them with a
# ``create_table`` macro that captures its arguments gives the exact same definition here.
FRAMEWORK_TABLE_TEMPLATES = ("state_ddl.sql.j2", "changeset_ddl.sql.j2")
_CAPTURE = (
    "{% macro create_table(fqn, columns, partition_by=none, cluster_by=()) %}\n"
    "@@TABLE@@{{ {'fqn': fqn, 'partition_by': partition_by, 'cluster_by': cluster_by | list, "
    "'columns': columns | list} | tojson }}\n"
    "{% endmacro %}"
)


def framework_tables(project: Project) -> tuple[Table, ...]:
    """pipectl's bookkeeping tables (processed fingerprints, change sets) as the templates
    define them. (Run history lives in the StateStore, see framework.run.history.)"""
    import json

    import jinja2

    from framework.sql.context import PARTITION_SENTINEL, changeset_table, state_table
    from framework.sql.environment import environment

    base = environment(project.root, "bigquery")
    env = base.overlay(loader=jinja2.ChoiceLoader([jinja2.DictLoader({"_table.sql.j2": _CAPTURE}), base.loader]))
    context = {"partition_column": project.partition_column, "state_table": state_table(project),
               "changeset_table": changeset_table(project), "sentinel": PARTITION_SENTINEL}
    tables = []
    for name in FRAMEWORK_TABLE_TEMPLATES:
        text = env.get_template(name).render(**context)
        for line in text.splitlines():
            if not line.startswith("@@TABLE@@"):
                continue
            spec = json.loads(line[len("@@TABLE@@"):])
            dataset, table = spec["fqn"].split(".", 1)
            cols = tuple(Column(c["name"], c["type"], c.get("mode", "NULLABLE")) for c in spec["columns"])
            tables.append(Table(dataset, table, cols, spec.get("partition_by"), tuple(spec.get("cluster_by") or ())))
    return tuple(tables)


def table_attributes(table: Table) -> dict[str, Any]:
    return {
        "columns": [{"name": c.name, "type": c.type, "mode": c.mode} for c in table.columns],
        "partition_by": table.partition_by,
        "cluster_by": list(table.cluster_by),
    }


def table_resource(table: Table) -> Resource:
    return Resource("table", table.fqn, table_attributes(table))


def table_from_resource(resource: Resource) -> Table:
    """Back from attributes to a model Table (what Warehouse.create_table takes)."""
    dataset, name = resource.name.split(".", 1)
    attrs = resource.attributes
    cols = tuple(Column(c["name"], c["type"], c.get("mode", "NULLABLE")) for c in attrs.get("columns") or ())
    return Table(dataset, name, cols, attrs.get("partition_by"), tuple(attrs.get("cluster_by") or ()))


def policy(transition: Transition) -> dict[str, Any]:
    """The orchestrator policy of one transition, as the orchestrator needs it."""
    rule = transition.rule
    return {
        "transition": transition.name,
        "source_phase": transition.source_phase,
        "target_phase": transition.target_phase,
        "mode": transition.mode,
        "expected": sorted(transition.expected),
        "critical": sorted(transition.critical),
        "rule": {"type": rule.type, "quorum": rule.quorum,
                 "tiers": [{"after_seconds": t.after_seconds, "min_complete": t.min_complete} for t in rule.tiers]},
        "deadline_seconds": transition.deadline_seconds,
        "debounce_seconds": transition.debounce_seconds,
        "completion_topic": transition.completion_topic,
        "trigger_topic": transition.trigger_topic,
        "quality_gates": [{"name": g.name, "processor": g.processor, "min_rows": g.min_rows} for g in transition.quality_gates],
    }


def orchestrator_config_resource(transition: Transition) -> Resource:
    body = policy(transition)
    return Resource("orchestrator_config", transition.source_phase, {"policy_hash": content_hash(body), **body})


def orchestrator_code_hash() -> str:
    """Hash of the generic orchestrator's source: a new framework version redeploys it."""
    import framework

    folder = Path(framework.__file__).parent / "orchestrator"  # read, never imported: plan must not run it
    return content_hash([[p.name, file_hash(p)] for p in sorted(folder.glob("*.py"))])


def deployment_resources(project: Project, runtime: str = "local") -> list[Resource]:
    out = []
    for proc in sorted(project.processors.values(), key=lambda p: p.name):
        if not proc.enabled:
            continue
        out.append(Resource("deployment", f"processor.{proc.name}", {
            "kind": "processor", "unit": proc.name, "runtime": runtime, "phase": proc.phase,
            "transform": proc.transform.sql or proc.transform.python, "code_hash": transform_code_hash(project, proc),
        }))
    orch_hash = orchestrator_code_hash()
    for t in project.transitions():
        out.append(Resource("deployment", f"orchestrator.{t.source_phase}", {
            "kind": "orchestrator", "unit": t.source_phase, "runtime": runtime,
            "code_hash": orch_hash, "policy_hash": content_hash(policy(t)),
        }))
    return out


def dead_letter_topics(project: Project) -> dict[str, list[str]]:
    """Dead-letter topic -> the topics that dead-letter into it (topics.yaml)."""
    out: dict[str, list[str]] = {}
    for topic in project.topics.values():
        for dlq in ({topic.dead_letter_topic} | {s.dead_letter_topic for s in topic.subscriptions}) - {None, ""}:
            out.setdefault(str(dlq), []).append(topic.name)
        if topic.contract == "dead_letter":
            out.setdefault(topic.name, [])
    return out


def inspect_subscription(dead_letter_topic: str) -> str:
    """pipectl's own subscription on a dead-letter topic (read by `pipectl bus dead-letters`)."""
    return f"{dead_letter_topic}{INSPECT_SUFFIX}"


def sweep_job_name(project: Project) -> str:
    return "pipectl-sweep-" + re.sub(r"[^A-Za-z0-9_-]", "-", project.name)


def sweep_message(project: Project) -> dict[str, Any]:
    """What the scheduler job publishes (data, attributes): the function needs nothing from
    it but a tick; the attributes say where it came from in logs and traces."""
    from framework.manifest.prefix import owner_label

    return {"data": '{"kind": "sweep"}', "attributes": {"kind": "sweep", "pipectl-project": owner_label(project)}}


def cloud_resources(project: Project) -> list[Resource]:
    """What a cloud target needs beyond topics.yaml: a subscription of pipectl's own on every
    dead-letter topic (Pub/Sub keeps dead letters only as messages; without a subscription
    they are dropped), and the sweep's topic and scheduler job."""
    out: list[Resource] = []
    for dlq in sorted(dead_letter_topics(project)):
        out.append(Resource("subscription", inspect_subscription(dlq), {
            "topic": dlq, "ack_deadline_seconds": 60, "max_delivery_attempts": 5, "dead_letter_topic": None,
            "filter": None, "push_endpoint": None,
        }))
    sweep = project.sweep
    if sweep.enabled:
        if sweep.topic not in project.topics:
            out.append(Resource("topic", sweep.topic, {}))
        out.append(Resource("schedule", sweep_job_name(project), {
            "schedule": sweep.schedule, "time_zone": sweep.time_zone, "topic": sweep.topic, **sweep_message(project),
        }))
    return out


def desired_resources(project: Project, runtime: str = "local", include_framework_tables: bool = True) -> list[Resource]:
    """Everything the manifests say the backend must have, in no particular order."""
    tables: dict[str, Table] = {}
    for src in project.sources.values():
        tables[src.table.fqn] = src.table
    for proc in project.processors.values():
        if proc.output is not None:
            tables[proc.output.fqn] = proc.output
    if include_framework_tables:
        for table in framework_tables(project):
            tables[table.fqn] = table
    resources = [Resource("dataset", ds, {}) for ds in sorted({t.dataset for t in tables.values()})]
    resources += [table_resource(t) for _, t in sorted(tables.items())]
    for topic in sorted(project.topics.values(), key=lambda t: t.name):
        resources.append(Resource("topic", topic.name, {}))
        for sub in topic.subscriptions:
            resources.append(Resource("subscription", sub.name, {
                "topic": sub.topic, "ack_deadline_seconds": sub.ack_deadline_seconds,
                "max_delivery_attempts": sub.max_delivery_attempts, "dead_letter_topic": sub.dead_letter_topic or None,
                "filter": sub.filter or None, "push_endpoint": sub.push_endpoint or None,
            }))
    if runtime != "local":
        resources += cloud_resources(project)
    resources.append(Resource("ledger", project.name, {"schema_version": LEDGER_SCHEMA_VERSION}))
    resources += [orchestrator_config_resource(t) for t in project.transitions()]
    resources += deployment_resources(project, runtime)
    return resources


__all__ = ["desired_resources", "framework_tables", "table_resource", "table_from_resource", "policy",
           "orchestrator_config_resource", "deployment_resources", "FRAMEWORK_TABLE_TEMPLATES"]
