"""Text renderings of the graphs: Mermaid (for Markdown/GitHub) and Graphviz DOT."""
from __future__ import annotations

import re
from typing import Iterable

from framework.graph.graph import SOURCE_PREFIX, PipelineGraph


def _mermaid_id(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def processor_mermaid(graph: PipelineGraph, names: Iterable[str] | None = None) -> str:
    """Processors grouped in one subgraph per phase; dashed edges for disabled processors and,
    labelled with the mapping's name, for a table read only through an entity mapping."""
    selected = set(graph.processors() if names is None else names)
    p = graph.project
    lines = ["flowchart LR"]
    for phase in p.phases:
        members = [n for n in graph.topological_order(selected) if p.processors[n].phase == phase.name]
        if not members:
            continue
        lines.append(f"  subgraph {_mermaid_id('phase_' + phase.name)}[\"{phase.order}. {phase.name}\"]")
        for n in members:
            label = n + ("" if p.processors[n].enabled else " (disabled)")
            lines.append(f"    {_mermaid_id(n)}[\"{label}\"]")
        lines.append("  end")
    for u, v, data in sorted(graph.nx.edges(data=True)):
        if v not in selected or (u not in selected and not u.startswith(SOURCE_PREFIX)):
            continue
        if u.startswith(SOURCE_PREFIX):
            continue
        arrow = "==>" if data.get("critical") else "-->"
        if not p.processors[u].enabled:
            arrow = "-.->"
        if data.get("mapping_only"):  # read through an entity mapping, not as an input
            arrow = f"-.->|\"{', '.join(data['mappings'])}\"|"
        lines.append(f"  {_mermaid_id(u)} {arrow} {_mermaid_id(v)}")
    return "\n".join(lines)


def processor_dot(graph: PipelineGraph, names: Iterable[str] | None = None) -> str:
    selected = set(graph.processors() if names is None else names)
    p = graph.project
    lines = ["digraph processors {", "  rankdir=LR;", "  node [shape=box, fontname=Helvetica];"]
    for phase in p.phases:
        members = [n for n in graph.topological_order(selected) if p.processors[n].phase == phase.name]
        if not members:
            continue
        lines.append(f"  subgraph \"cluster_{phase.name}\" {{")
        lines.append(f"    label=\"{phase.order}. {phase.name}\";")
        for n in members:
            style = "" if p.processors[n].enabled else " [style=dashed]"
            lines.append(f"    \"{n}\"{style};")
        lines.append("  }")
    for u, v, data in sorted(graph.nx.edges(data=True)):
        if u.startswith(SOURCE_PREFIX) or u not in selected or v not in selected:
            continue
        attrs = " [penwidth=2]" if data.get("critical") else ""
        if data.get("mapping_only"):
            attrs = f" [style=dotted, label=\"{', '.join(data['mappings'])}\"]"
        lines.append(f"  \"{u}\" -> \"{v}\"{attrs};")
    lines.append("}")
    return "\n".join(lines)


def phase_mermaid(graph: PipelineGraph) -> str:
    pg = graph.phase_graph()
    lines = ["flowchart LR"]
    for name, data in sorted(pg.nodes(data=True), key=lambda item: item[1]["order"]):
        lines.append(f"  {_mermaid_id(name)}[\"{data['order']}. {name} ({data['processors']})\"]")
    for u, v, data in pg.edges(data=True):
        label = f"{data['dependencies']} deps" + (", trigger" if data["transition"] else "")
        lines.append(f"  {_mermaid_id(u)} -->|{label}| {_mermaid_id(v)}")
    return "\n".join(lines)


def phase_dot(graph: PipelineGraph) -> str:
    pg = graph.phase_graph()
    lines = ["digraph phases {", "  rankdir=LR;", "  node [shape=box, fontname=Helvetica];"]
    for name, data in sorted(pg.nodes(data=True), key=lambda item: item[1]["order"]):
        lines.append(f"  \"{name}\" [label=\"{data['order']}. {name}\\n{data['processors']} processors\"];")
    for u, v, data in pg.edges(data=True):
        style = "solid" if data["transition"] else "dashed"
        lines.append(f"  \"{u}\" -> \"{v}\" [label=\"{data['dependencies']}\", style={style}];")
    lines.append("}")
    return "\n".join(lines)
