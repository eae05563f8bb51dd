"""Run commands answer graph questions without importing networkx (it cost a one-entity
update more than the update itself), with the same answers networkx gives."""
from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import networkx as nx

from framework.graph.graph import PipelineGraph
from framework.manifest import load_project

REPO = Path(__file__).resolve().parents[3]


def _bench_project(tmp_path: Path, n: int, seed: int) -> Path:
    sys.path.insert(0, str(REPO / "bench"))
    try:
        from gen_manifest import generate
    finally:
        sys.path.remove(str(REPO / "bench"))
    return generate(tmp_path / f"p{seed}", n, seed=seed)


def test_order_and_reach_agree_with_networkx(tmp_path):
    for seed in (1, 2, 3):
        project, diags = load_project(_bench_project(tmp_path, 60, seed))
        assert project is not None and not diags.errors
        graph = PipelineGraph(project)
        order = {p.name: p.order for p in project.phases}

        def key(node: str) -> tuple:
            phase = graph.nx.nodes[node]["phase"]
            return (order.get(phase, -1) if phase else -1, node)

        expected = [n for n in nx.lexicographical_topological_sort(graph.nx, key=key) if not n.startswith("source:")]
        assert graph.topological_order() == expected
        rng = random.Random(seed)
        names = rng.sample(graph.processors(), 25)
        sub = [n for n in nx.lexicographical_topological_sort(graph.nx.subgraph(names), key=key)]
        assert graph.topological_order(names) == sub
        for name in rng.sample(graph.processors(), 10):
            assert graph.upstream(name, processors_only=False) == nx.ancestors(graph.nx, name)
            assert graph.downstream(name) == nx.descendants(graph.nx, name)


def test_example_run_path_does_not_import_networkx():
    code = (
        "import sys\n"
        "from framework.project import load\n"
        "from framework.graph.graph import PipelineGraph\n"
        "from framework.drive.pipeline import PipelineDriver\n"
        f"g = PipelineGraph(load({str(REPO)!r}))\n"
        "assert g.topological_order() and g.select(['+player_game_summary+'])\n"
        "assert 'player_game_summary' in g\n"
        "print('networkx' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
