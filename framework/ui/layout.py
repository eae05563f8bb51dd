"""The processor graph laid out in phase lanes, as plain numbers for a server-side SVG.

A graph library for the browser would be ten times the size of everything else the UI
ships; a pipeline's graph already has its layers (the phases), so a lane per phase, nodes
ordered inside a lane by the mean position of their upstream nodes (one barycentre pass,
as layered layouts do), and cubic edges are enough to read dozens of processors at a glance.
The same layout feeds the live page and the static site (:mod:`framework.ui.static_site`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

LANE_WIDTH = 250
LANE_GAP = 40
NODE_WIDTH = 220
NODE_HEIGHT = 26
NODE_GAP = 10
TOP = 44  # room for the lane titles
PAD = 16


@dataclass(frozen=True)
class Node:
    name: str
    phase: str
    x: float
    y: float
    enabled: bool
    status: str = "none"  # the last run's status for the selected partition, or "none"
    title: str = ""

    @property
    def label(self) -> str:
        return self.name if len(self.name) <= 30 else self.name[:28] + "…"


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    path: str
    critical: bool
    mapping: str = ""  # the entity mapping(s) the target reads the source's table through (not an input)


@dataclass(frozen=True)
class Lane:
    phase: str
    x: float
    count: int


@dataclass
class Layout:
    width: float
    height: float
    lanes: list[Lane] = field(default_factory=list)
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)


def lay_out(graph: Any, names: Iterable[str] | None = None, statuses: dict[str, dict[str, Any]] | None = None) -> Layout:
    """Lanes (phases, in order) of the processors ``names`` (default all) of a PipelineGraph.

    ``statuses`` maps a processor to its last run (``status``, ``error``...) to colour it."""
    project = graph.project
    statuses = statuses or {}
    chosen = graph.topological_order(names) if names is not None else graph.topological_order()
    chosen_set = set(chosen)
    phases = [p.name for p in project.phases if any(project.processors[n].phase == p.name for n in chosen)]
    rows: dict[str, list[str]] = {p: [] for p in phases}
    for name in chosen:
        rows[project.processors[name].phase].append(name)
    position: dict[str, float] = {}
    for phase in phases:  # barycentre: a node sits near the mean row of its upstream nodes
        here = rows[phase]
        order = {n: i for i, n in enumerate(here)}

        def weight(n: str) -> tuple[float, int]:
            ups = [position[u] for u in graph.pred[n] if u in position]
            return (sum(ups) / len(ups) if ups else order[n], order[n])

        here.sort(key=weight)
        for i, n in enumerate(here):
            position[n] = float(i)
    nodes: list[Node] = []
    coords: dict[str, tuple[float, float]] = {}
    lanes: list[Lane] = []
    for li, phase in enumerate(phases):
        x = PAD + li * (LANE_WIDTH + LANE_GAP)
        lanes.append(Lane(phase, x, len(rows[phase])))
        for i, n in enumerate(rows[phase]):
            y = TOP + i * (NODE_HEIGHT + NODE_GAP)
            coords[n] = (x + (LANE_WIDTH - NODE_WIDTH) / 2, y)
            run = statuses.get(n) or {}
            status = run.get("status") or "none"
            title = f"{n} ({phase}): " + (f"last run {status}" if run else "no run for this partition")
            if run.get("error"):
                title += f": {run['error']}"
            nodes.append(Node(n, phase, coords[n][0], y, project.processors[n].enabled, status, title))
    edges: list[Edge] = []
    for u, v, data in graph.edges:
        if u in chosen_set and v in chosen_set:
            edges.append(Edge(u, v, _path(coords[u], coords[v]), bool(data.get("critical")),
                              ", ".join(data.get("mappings", ())) if data.get("mapping_only") else ""))
    tallest = max((lane.count for lane in lanes), default=0)
    width = PAD * 2 + max(len(lanes), 1) * (LANE_WIDTH + LANE_GAP) - LANE_GAP
    height = TOP + tallest * (NODE_HEIGHT + NODE_GAP) + PAD
    return Layout(width, height, lanes, nodes, edges)


def _path(src: tuple[float, float], dst: tuple[float, float]) -> str:
    """A cubic curve from the right edge of ``src`` to the left edge of ``dst``; within one
    lane (an input in the same phase) it bows out to the right of the lane."""
    x1, y1 = src[0] + NODE_WIDTH, src[1] + NODE_HEIGHT / 2
    if abs(src[0] - dst[0]) < 1:  # same lane: right side to right side
        x2, y2 = dst[0] + NODE_WIDTH, dst[1] + NODE_HEIGHT / 2
        bow = 18 + min(abs(y2 - y1) / 6, 14)
        return f"M{x1:.0f},{y1:.0f} C{x1 + bow:.0f},{y1:.0f} {x2 + bow:.0f},{y2:.0f} {x2:.0f},{y2:.0f}"
    x2, y2 = dst[0], dst[1] + NODE_HEIGHT / 2
    mid = (x2 - x1) / 2
    return f"M{x1:.0f},{y1:.0f} C{x1 + mid:.0f},{y1:.0f} {x2 - mid:.0f},{y2:.0f} {x2:.0f},{y2:.0f}"
