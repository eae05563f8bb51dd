"""`pipectl graph`, `ls`, `trace` and `history`: look at the pipeline and at what it ran,
without running anything."""
from __future__ import annotations

import json

import click

from framework.commands import project_dir
from framework.commands.run import open_session
from framework.commands.types import EXCLUDE_HELP, PARTITION, PROCESSOR, SELECT_HELP, SELECTION
from framework.run.history import FINAL_STATUSES


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


@click.command("trace")
@click.argument("correlation_id")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def trace_cmd(ctx: click.Context, correlation_id: str, as_json: bool) -> None:
    """Print the tree of triggers and runs of a correlation id, raw to prediction."""
    from framework.drive.trace import build_trace, render_tree

    with open_session(ctx) as sess:
        tree = build_trace(sess.project, sess.backends.state, correlation_id)
    if not tree.children:
        raise click.ClickException(f"no runs or triggers recorded for correlation id {correlation_id} (see `pipectl history`)")
    click.echo(json.dumps(tree.to_dict(), indent=2, default=str) if as_json else render_tree(tree))


@click.command("history")
@click.option("--processor", default=None, shell_complete=lambda ctx, param, incomplete: PROCESSOR.shell_complete(ctx, param, incomplete),
              help="Only this processor's runs.")
@click.option("--date", "date", default=None, type=PARTITION)
@click.option("--status", default=None, type=click.Choice(["running", *FINAL_STATUSES]))
@click.option("--limit", default=30, show_default=True, type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def history_cmd(ctx: click.Context, processor: str | None, date: str | None, status: str | None, limit: int, as_json: bool) -> None:
    """List processor runs, newest first."""
    import datetime as dt

    from framework.run.history import RunHistory

    with open_session(ctx) as sess:
        runs = RunHistory(sess.backends.state).list(processor=processor, partition=date, status=status, limit=limit)
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in runs], indent=2, default=str))
        return
    click.echo(f"{'STARTED':<19} {'PROCESSOR':<34} {'DATE':<10} {'STATUS':<8} {'MODE':<11} {'ENT':>5} {'ROWS':>6} {'TIME':>8}  CORRELATION")
    for r in runs:
        started = dt.datetime.fromtimestamp(r.started_at).strftime("%Y-%m-%d %H:%M:%S")
        took = f"{r.duration_seconds:.3f}s" if r.duration_seconds is not None else "-"
        click.echo(f"{started:<19} {r.processor:<34} {r.partition:<10} {r.status:<8} {r.mode:<11} {r.entities_processed:>5} "
                   f"{r.rows_written:>6} {took:>8}  {r.correlation_id}" + (f"\n    error: {r.error}" if r.error else "")
                   + (f"\n    reason: {r.fallback_reason}" if r.fallback_reason and r.status != "failed" else ""))
