"""``pipectl trace CORRELATION_ID``: the tree of messages and runs of one correlation id.

Every run records its correlation id (the root one, carried from the first trigger to the
last prediction), its parent (the execution id of the trigger it ran for) and its trigger
id in the run history. Phase workers record every trigger they accept in the StateStore
collection ``pipectl_messages``. Together they give the tree::

    trigger pipectl:run -> raw (trigger_id ...)
    ├── run nbac_gamebook_player_stats success  1 player   3 rows 0.021s
    └── trigger orchestrator:raw -> analytics (player: 1)
        ├── run player_game_summary success ...
        └── trigger orchestrator:analytics -> precompute ...

Triggers hang under the trigger of the previous phase: the orchestrator fired them because
that phase's runs completed.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Mapping

from framework.manifest.model import Project
from framework.run.history import RunHistory, RunRecord

MESSAGES = "pipectl_messages"


def record_trigger(store: Any, envelope: Mapping[str, Any], subscription: str, phase: str,
                   clock: Any = time.time) -> None:
    """Remember an accepted trigger for ``pipectl trace`` (key: the trigger id)."""
    trigger_id = envelope.get("trigger_id") or envelope.get("execution_id")
    entities = envelope.get("entities_changed")
    doc = {"kind": "trigger", "trigger_id": trigger_id, "execution_id": envelope.get("execution_id"),
           "correlation_id": envelope.get("root_correlation_id") or envelope.get("correlation_id"),
           "producer": envelope.get("processor_name"), "phase": phase, "partition": envelope.get("partition"),
           "round": envelope.get("round"), "subscription": subscription, "received_at": clock(),
           # the round's dispatch list ([] = nothing to run), so a remote `pipectl run` knows
           # which runs to wait for (framework.drive.remote)
           "dispatched": _dispatched(envelope),
           "entities": None if entities is None else {k: (v["count"] if isinstance(v, Mapping) else len(v))
                                                      for k, v in entities.items()}}

    def txn(t: Any) -> None:
        t.set(MESSAGES, str(trigger_id), doc)

    store.run_transaction(txn)


def _dispatched(envelope: Mapping[str, Any]) -> list[str] | None:
    expected = (envelope.get("metadata") or {}).get("expected")
    return sorted(str(x) for x in expected) if isinstance(expected, list) else None


@dataclass
class TraceNode:
    """One node of a correlation id's tree (the id, a trigger, a run), for `pipectl trace`."""

    label: str
    kind: str  # correlation | trigger | run
    children: list["TraceNode"] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "kind": self.kind, "data": self.data, "children": [c.to_dict() for c in self.children]}


def build_trace(project: Project, store: Any, correlation_id: str) -> TraceNode:
    """The tree of triggers and runs of ``correlation_id`` (empty root if unknown)."""
    runs = RunHistory(store).list(correlation_id=correlation_id, limit=None)
    triggers = [doc for _, doc in store.query(MESSAGES, {"correlation_id": correlation_id})]
    order = {p.name: p.order for p in project.phases}
    root = TraceNode(f"correlation {correlation_id}", "correlation",
                     data={"runs": len(runs), "triggers": len(triggers)})
    triggers.sort(key=lambda d: (order.get(d.get("phase"), 0), d.get("received_at") or 0))
    runs.sort(key=lambda r: (order.get(r.phase, 0), r.started_at))
    by_trigger: dict[str, TraceNode] = {}
    parent = root
    for doc in triggers:
        ents = doc.get("entities")
        ent_text = "all entities" if ents is None else (", ".join(f"{k}: {v}" for k, v in sorted(ents.items())) or "no entities")
        rnd = f", round {doc['round']}" if doc.get("round") else ""
        node = TraceNode(f"trigger {doc.get('producer')} -> {doc.get('phase')} ({ent_text}{rnd}) [{doc.get('trigger_id')}]",
                         "trigger", data=dict(doc))
        by_trigger[str(doc.get("trigger_id"))] = node
        by_trigger.setdefault(str(doc.get("execution_id")), node)
        parent.children.append(node)
        parent = node
    for run in runs:
        node = TraceNode(_run_label(run), "run", data=run.to_dict())
        holder = by_trigger.get(str(run.trigger_id)) or by_trigger.get(str(run.parent_id)) or root
        # runs go before the next phase's trigger under the same holder
        idx = next((i for i, c in enumerate(holder.children) if c.kind == "trigger"), len(holder.children))
        holder.children.insert(idx, node)
    return root


def _run_label(run: RunRecord) -> str:
    ents = f"{run.entities_processed} {run.entity_kind or 'entity'}" + ("" if run.entities_processed == 1 else "s")
    eff = f" eff {run.efficiency_pct:.1f}%" if run.efficiency_pct is not None else ""
    dur = f" {run.duration_seconds:.3f}s" if run.duration_seconds is not None else ""
    err = f" error: {run.error}" if run.error else ""
    return f"run {run.processor} [{run.phase}] {run.status} {ents} {run.rows_written} rows{eff}{dur} ({run.run_id}){err}"


def render_tree(node: TraceNode) -> str:
    lines = [node.label]

    def walk(n: TraceNode, prefix: str) -> None:
        for i, child in enumerate(n.children):
            last = i == len(n.children) - 1
            lines.append(prefix + ("└── " if last else "├── ") + child.label)
            walk(child, prefix + ("    " if last else "│   "))

    walk(node, "")
    return "\n".join(lines)
