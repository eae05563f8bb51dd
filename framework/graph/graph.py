"""The one graph wrapper: processors (and sources) as a networkx DiGraph, in domain words.

Edges point downstream: ``input -> processor``. Sources are nodes too (``source:NAME``) so
that the graph shows where data enters; processor nodes are their bare names. The phase
graph is derived from processor edges, so it can never disagree with the processors.

What every run command asks (order, upstream, downstream, selection) is answered from plain
adjacency dicts; the networkx graph (``.nx``) is built, and networkx imported, only for what
needs its algorithms (cycles, the phase graph, rendering, the validate rules): importing
networkx costs a run command more than its one-entity update.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Iterable

from framework.graph.selector import SOURCE_PREFIX, SelectionError, Selector
from framework.manifest.model import Input, Project

if TYPE_CHECKING:
    import networkx as nx

__all__ = ["MappingUse", "PipelineGraph", "SelectionError", "SOURCE_PREFIX", "mapping_uses"]


@dataclass(frozen=True)
class MappingUse:
    """``processor``'s detection reads entity mapping ``mapping`` (for its input ``input``),
    whose table ``via`` (a processor's output or a source) must be written first."""

    processor: str
    input: Input
    mapping: str
    via: str
    writer_node: str  # graph node of ``via``: the processor name or ``source:NAME``


def mapping_uses(project: Project) -> list[MappingUse]:
    """Every (processor, input) read through an entity mapping, explicit (``mapping:``) or the
    unique one between the two kinds, in declaration order. An unknown or ambiguous mapping
    is skipped: the validate rules report it."""
    from framework.errors import ConfigError
    from framework.sql.context import input_mapping

    uses: list[MappingUse] = []
    for name, proc in project.processors.items():
        for inp in proc.inputs:
            try:
                mapping = input_mapping(project, proc, inp)
            except ConfigError:
                continue
            if mapping is None:
                continue
            node = mapping.via if mapping.via in project.processors else SOURCE_PREFIX + mapping.via
            uses.append(MappingUse(name, inp, mapping.name or f"{mapping.source} -> {mapping.target}", mapping.via, node))
    return uses


class PipelineGraph:
    """Processor graph of a project with dbt-style selection (`+name`, `tag:x,phase:y`, `@name`).

    Edges are the declared inputs and, for every input read through an entity mapping, the
    mapping's table: its writer -> the processor (``mapping_only`` when the table is not also
    an input). Detection reads the mapping at run time, so its writer must run first, be
    upstream for selection, and its changes reach the processor (docs/manifests.md).
    """

    def __init__(self, project: Project):
        self.project = project
        self.nodes: dict[str, dict[str, Any]] = {}
        for name, proc in project.processors.items():
            self.nodes[name] = {"kind": "processor", "phase": proc.phase, "enabled": proc.enabled}
        for name in project.sources:
            self.nodes.setdefault(SOURCE_PREFIX + name, {"kind": "source", "phase": None, "enabled": True})
        # successors / predecessors in insertion order, edge attributes by (u, v)
        self.succ: dict[str, dict[str, dict[str, Any]]] = {n: {} for n in self.nodes}
        self.pred: dict[str, dict[str, dict[str, Any]]] = {n: {} for n in self.nodes}
        self.edges: list[tuple[str, str, dict[str, Any]]] = []  # in declaration order
        for name, proc in project.processors.items():
            for inp in proc.inputs:
                upstream = inp.name if inp.kind == "processor" else SOURCE_PREFIX + inp.name
                if upstream in self.nodes:  # unknown inputs are diagnosed by rules, not graphed
                    attrs = {"critical": inp.critical}
                    self.succ[upstream][name] = attrs
                    self.pred[name][upstream] = attrs
                    self.edges.append((upstream, name, attrs))
        self.mapping_uses: list[MappingUse] = mapping_uses(project)
        for use in self.mapping_uses:
            upstream = use.writer_node
            if upstream not in self.nodes or upstream == use.processor:
                continue  # unknown tables and self-mappings are diagnosed by rules, not graphed
            if use.processor in self.succ[upstream]:  # the table is also an input: already ordered
                attrs = self.succ[upstream][use.processor]
                if use.mapping not in attrs.get("mappings", ()):
                    attrs["mappings"] = (*attrs.get("mappings", ()), use.mapping)
                continue
            attrs = {"critical": False, "mapping_only": True, "mappings": (use.mapping,)}
            self.succ[upstream][use.processor] = attrs
            self.pred[use.processor][upstream] = attrs
            self.edges.append((upstream, use.processor, attrs))

    @cached_property
    def nx(self) -> "nx.DiGraph":
        """The same graph as a networkx DiGraph (built, and networkx imported, on first use)."""
        import networkx

        g = networkx.DiGraph()
        for name, attrs in self.nodes.items():
            g.add_node(name, **attrs)
        for u, v, attrs in self.edges:
            g.add_edge(u, v, **attrs)
        return g

    def __contains__(self, name: object) -> bool:
        return name in self.nodes

    # -- basic questions -------------------------------------------------------------
    def processors(self) -> list[str]:
        return [n for n, d in self.nodes.items() if d["kind"] == "processor"]

    def upstream(self, name: str, processors_only: bool = True) -> set[str]:
        found = _reach(self.pred, name)
        return {n for n in found if not processors_only or not n.startswith(SOURCE_PREFIX)}

    def downstream(self, name: str) -> set[str]:
        return _reach(self.succ, name)

    def find_cycles(self) -> list[list[str]]:
        """Each cycle once, as a path that starts and ends at the same node (``a -> b -> a``)."""
        cycles: list[list[str]] = []
        if len(self._kahn(set(self.nodes), lambda n: n)) == len(self.nodes):  # acyclic: the common case
            return cycles
        import networkx as nx

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
        chosen = set(self.nodes) if names is None else set(names) & set(self.nodes)

        def key(node: str) -> tuple:
            phase = self.nodes[node]["phase"]
            return (order.get(phase, -1) if phase else -1, node)

        out = self._kahn(chosen, key)
        if len(out) < len(chosen):  # a cycle: let networkx raise its usual error
            import networkx as nx

            graph = self.nx.subgraph(chosen)
            list(nx.lexicographical_topological_sort(graph, key=key))
        return [n for n in out if not n.startswith(SOURCE_PREFIX)]

    def _kahn(self, chosen: set[str], key: Any) -> list[str]:
        """Kahn's algorithm over the nodes ``chosen``, ready nodes taken smallest ``key``
        first: with unique keys, exactly networkx's lexicographical_topological_sort. Nodes
        on a cycle (and after it) are left out."""
        indegree = {n: sum(1 for u in self.pred[n] if u in chosen) for n in chosen}
        ready = [(key(n), n) for n, d in indegree.items() if d == 0]
        heapq.heapify(ready)
        out: list[str] = []
        while ready:
            _, node = heapq.heappop(ready)
            out.append(node)
            for child in self.succ[node]:
                if child in chosen:
                    indegree[child] -= 1
                    if indegree[child] == 0:
                        heapq.heappush(ready, (key(child), child))
        return out

    # -- phases ----------------------------------------------------------------------
    def phase_graph(self) -> "nx.DiGraph":
        """Phases as nodes; an edge for each processor dependency crossing phases, plus the
        declared transitions (phase -> next phase)."""
        import networkx as nx

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
    def select(self, selectors: Iterable[str], exclude: Iterable[str] = ()) -> list[str]:
        """dbt's selection grammar (see :mod:`framework.graph.selector`), in topological order.

        Space or repeated values: union; comma: intersection; ``N+name+N`` depth, ``@name``,
        wildcards, ``tag:``/``path:``/``phase:``/``entity:``/``source:``; aliases work as
        names. No selector means every processor; ``exclude`` is removed afterwards.
        """
        return self.topological_order(Selector(self).resolve(selectors, exclude))


def _reach(adjacency: dict[str, dict[str, Any]], start: str) -> set[str]:
    """Every node reachable from ``start`` (not itself unless on a cycle), like nx.descendants."""
    if start not in adjacency:
        raise KeyError(f"unknown graph node '{start}'")
    seen: set[str] = set()
    todo = list(adjacency[start])
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(adjacency[node])
    seen.discard(start)
    return seen
