"""The graph wrapper: selection syntax, topological order, phase graph, rendering."""
from __future__ import annotations

import pytest

from framework.graph.graph import PipelineGraph, SelectionError
from framework.graph import render
from framework.manifest import load_project
from projects import write_project


@pytest.fixture
def graph(tmp_path):
    write_project(tmp_path)
    project, _ = load_project(tmp_path)
    return PipelineGraph(project)


def test_topological_order_puts_inputs_first(graph):
    assert graph.topological_order() == ["orders_raw", "customer_totals", "store_totals"]


@pytest.mark.parametrize("selector,expected", [
    ("customer_totals", ["customer_totals"]),
    ("+customer_totals", ["orders_raw", "customer_totals"]),
    ("orders_raw+", ["orders_raw", "customer_totals", "store_totals"]),
    ("OrdersRawProcessor", ["orders_raw"]),
    ("phase:analytics", ["customer_totals", "store_totals"]),
    ("entity:store", ["store_totals"]),
    ("store_totals customer_totals", ["customer_totals", "store_totals"]),  # space: union
    ("store_totals,customer_totals", []),  # comma: intersection, as in dbt
    ("orders_raw+,phase:analytics", ["customer_totals", "store_totals"]),
])
def test_selection(graph, selector, expected):
    assert graph.select([selector]) == expected


def test_unknown_selection_suggests(graph):
    with pytest.raises(SelectionError, match="no processor 'customer_total'; did you mean 'customer_totals'"):
        graph.select(["customer_total+"])
    with pytest.raises(SelectionError, match="no phase 'analytic'; did you mean 'analytics'"):
        graph.select(["phase:analytic"])


def test_phase_graph_counts_dependencies_and_transitions(graph):
    pg = graph.phase_graph()
    assert list(pg.edges(data=True)) == [("raw", "analytics", {"dependencies": 2, "transition": True})]


def test_upstream_downstream(graph):
    assert graph.upstream("store_totals") == {"orders_raw"}
    assert graph.downstream("orders_raw") == {"customer_totals", "store_totals"}


def test_renderings(graph):
    mermaid = render.processor_mermaid(graph)
    assert "orders_raw --> customer_totals" in mermaid and 'subgraph phase_raw["1. raw"]' in mermaid
    dot = render.processor_dot(graph, graph.select(["+customer_totals"]))
    assert '"orders_raw" -> "customer_totals";' in dot and "store_totals" not in dot
    assert '"raw" -> "analytics" [label="2", style=solid];' in render.phase_dot(graph)
    assert "raw -->|2 deps, trigger| analytics" in render.phase_mermaid(graph)
