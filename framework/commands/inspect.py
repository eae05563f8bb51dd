"""`pipectl graph` and `pipectl ls`: look at the pipeline without running anything."""
from __future__ import annotations

import json

import click

from framework.commands import project_dir
from framework.commands.types import EXCLUDE_HELP, SELECT_HELP, SELECTION


def _load_graph(ctx: click.Context):
    from framework.graph.graph import PipelineGraph
    from framework.project import load

    return PipelineGraph(load(project_dir(ctx)))


def _select(graph, selectors: tuple[str, ...], excludes: tuple[str, ...]) -> list[str] | None:
    from framework.graph.graph import SelectionError

    if not selectors and not excludes:
        return None
    try:
        return graph.select(selectors, excludes)
    except SelectionError as exc:
        raise click.BadParameter(str(exc), param_hint="--select/--exclude") from exc


@click.command("graph")
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot"]), default="mermaid", show_default=True)
@click.option("--phases", is_flag=True, help="Render the phase graph instead of the processor graph.")
@click.option("--select", "-s", "selectors", multiple=True, type=SELECTION, help=SELECT_HELP)
@click.option("--exclude", "excludes", multiple=True, type=SELECTION, help=EXCLUDE_HELP)
@click.pass_context
def graph_cmd(ctx: click.Context, fmt: str, phases: bool, selectors: tuple[str, ...], excludes: tuple[str, ...]) -> None:
    """Print the processor graph (or --phases) as Mermaid or DOT text."""
    from framework.graph import render

    graph = _load_graph(ctx)
    if phases:
        click.echo(render.phase_mermaid(graph) if fmt == "mermaid" else render.phase_dot(graph))
        return
    names = _select(graph, selectors, excludes)
    click.echo(render.processor_mermaid(graph, names) if fmt == "mermaid" else render.processor_dot(graph, names))


@click.command("ls")
@click.option("--select", "-s", "selectors", multiple=True, type=SELECTION, help=SELECT_HELP)
@click.option("--exclude", "excludes", multiple=True, type=SELECTION, help=EXCLUDE_HELP)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def ls_cmd(ctx: click.Context, selectors: tuple[str, ...], excludes: tuple[str, ...], as_json: bool) -> None:
    """List processors in topological order with phase, entity, output and inputs."""
    graph = _load_graph(ctx)
    names = _select(graph, selectors, excludes)
    if names is None:  # no --select; an empty selection stays empty
        names = graph.topological_order()
    p = graph.project
    rows = []
    for n in names:
        proc = p.processors[n]
        rows.append({"name": n, "phase": proc.phase, "entity": proc.entity, "enabled": proc.enabled,
                     "output": proc.output_table, "inputs": [i.name for i in proc.inputs], "tags": list(proc.tags)})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    width = max([len(r["name"]) for r in rows] + [4])
    click.echo(f"{'NAME':<{width}}  {'PHASE':<12} {'ENTITY':<8} OUTPUT")
    for r in rows:
        flag = "" if r["enabled"] else "  (disabled)"
        tags = f"  [{', '.join(r['tags'])}]" if r["tags"] else ""
        click.echo(f"{r['name']:<{width}}  {r['phase']:<12} {(r['entity'] or '-'):<8} {r['output'] or '-'}{tags}{flag}")
