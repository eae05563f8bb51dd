"""The one graph wrapper: processors (and sources) as a networkx DiGraph, in domain words.

Edges point downstream: ``input -> processor``. Sources are nodes too (``source:NAME``) so
that the graph shows where data enters; processor nodes are their bare names. The phase
graph is derived from processor edges, so it can never disagree with the processors.
"""
from __future__ import annotations

from typing import Iterable

import networkx as nx

from framework.manifest.model import Processor, Project

SOURCE_PREFIX = "source:"


class SelectionError(ValueError):
    """A selector names nothing; carries a did-you-mean hint."""


class PipelineGraph:
    """Processor graph of a project with selection (`+name`, `name+`, `phase:x`)."""

    def __init__(self, project: Project):
        self.project = project
        g = nx.DiGraph()
        for name, proc in project.processors.items():
            g.add_node(name, kind="processor", phase=proc.phase, enabled=proc.enabled)
        for name in project.sources:
            g.add_node(SOURCE_PREFIX + name, kind="source", phase=None, enabled=True)
        for name, proc in project.processors.items():
            for inp in proc.inputs:
                upstream = inp.name if inp.kind == "processor" else SOURCE_PREFIX + inp.name
                if upstream in g:  # unknown inputs are diagnosed by rules, not graphed
                    g.add_edge(upstream, name, critical=inp.critical)
        self.nx = g

    # -- basic questions -------------------------------------------------------------
    def processors(self) -> list[str]:
        return [n for n, d in self.nx.nodes(data=True) if d["kind"] == "processor"]

    def upstream(self, name: str, processors_only: bool = True) -> set[str]:
        found = nx.ancestors(self.nx, name)
        return {n for n in found if not processors_only or not n.startswith(SOURCE_PREFIX)}

    def downstream(self, name: str) -> set[str]:
        return set(nx.descendants(self.nx, name))

    def find_cycles(self) -> list[list[str]]:
        """Each cycle once, as a path that starts and ends at the same node (``a -> b -> a``)."""
        cycles: list[list[str]] = []
        if nx.is_directed_acyclic_graph(self.nx):  # the common case, much cheaper than SCCs
            return cycles
        for component in nx.strongly_connected_components(self.nx):
            if len(component) > 1 or any(self.nx.has_edge(n, n) for n in component):
                sub = self.nx.subgraph(component)
                cycle = nx.find_cycle(sub)
                path = [edge[0] for edge in cycle] + [cycle[0][0]]
                # rotate so the path starts at its smallest name: stable output
                start = min(range(len(path) - 1), key=lambda k: path[k])
                path = path[start:-1] + path[:start] + [path[start]]
                cycles.append(path)
        return sorted(cycles)

    def topological_order(self, names: Iterable[str] | None = None) -> list[str]:
        """Processors in an order where every input comes first (phase order, then name)."""
        order = {p.name: p.order for p in self.project.phases}
        graph = self.nx if names is None else self.nx.subgraph(set(names))

        def key(node: str) -> tuple:
            phase = self.nx.nodes[node]["phase"]
            return (order.get(phase, -1) if phase else -1, node)

        return [n for n in nx.lexicographical_topological_sort(graph, key=key) if not n.startswith(SOURCE_PREFIX)]

    # -- phases ----------------------------------------------------------------------
    def phase_graph(self) -> nx.DiGraph:
        """Phases as nodes; an edge for each processor dependency crossing phases, plus the
        declared transitions (phase -> next phase)."""
        pg = nx.DiGraph()
        for phase in self.project.phases:
            pg.add_node(phase.name, order=phase.order, processors=len(self.project.processors_in(phase.name, enabled_only=False)))
        for u, v in self.nx.edges:
            pu, pv = self.nx.nodes[u]["phase"], self.nx.nodes[v]["phase"]
            if pu and pv and pu != pv and pu in pg and pv in pg:
                if pg.has_edge(pu, pv):
                    pg[pu][pv]["dependencies"] += 1
                else:
                    pg.add_edge(pu, pv, dependencies=1, transition=False)
        for t in self.project.transitions():
            if t.target_phase:
                if pg.has_edge(t.source_phase, t.target_phase):
                    pg[t.source_phase][t.target_phase]["transition"] = True
                else:
                    pg.add_edge(t.source_phase, t.target_phase, dependencies=0, transition=True)
        return pg

    # -- selection -------------------------------------------------------------------
    def select(self, selectors: Iterable[str]) -> list[str]:
        """Union of selectors, returned in topological order.

        ``name``, ``+name`` (with upstream), ``name+`` (with downstream), ``+name+``,
        ``phase:NAME``, ``entity:KIND``; aliases are accepted for names.
        """
        chosen: set[str] = set()
        for raw in selectors:
            for sel in raw.split(","):
                sel = sel.strip()
                if sel:
                    chosen |= self._select_one(sel)
        return self.topological_order(chosen)

    def _select_one(self, sel: str) -> set[str]:
        from framework.manifest.diagnostics import did_you_mean

        if sel.startswith("phase:"):
            phase = sel[len("phase:"):]
            names = self.project.phase_names()
            if phase not in names:
                raise SelectionError(f"no phase '{phase}'" + _hint(did_you_mean(phase, names)))
            return {p.name for p in self.project.processors_in(phase, enabled_only=False)}
        if sel.startswith("entity:"):
            kind = sel[len("entity:"):]
            if kind not in self.project.entity_kinds:
                raise SelectionError(f"no entity kind '{kind}'" + _hint(did_you_mean(kind, self.project.entity_kinds)))
            return {p.name for p in self.project.processors.values() if p.entity == kind}
        up = sel.startswith("+")
        down = sel.endswith("+")
        name = sel.strip("+")
        proc: Processor | None = self.project.resolve_processor(name)
        if proc is None:
            raise SelectionError(f"no processor '{name}'" + _hint(did_you_mean(name, self.project.processors)))
        result = {proc.name}
        if up:
            result |= self.upstream(proc.name)
        if down:
            result |= self.downstream(proc.name)
        return result


def _hint(text: str | None) -> str:
    return f"; {text}" if text else ""
