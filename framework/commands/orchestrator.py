"""`pipectl sweep` and `pipectl status`: the orchestrator's scheduler hook and its view.

Exit codes: 0 ok; 1 error (including a quality gate that blocks during the sweep, a sweep
that could not publish a pending trigger, and `status --check` when a started partition is stuck: blocked, expired, gate-failed, stalled, a pending or a lost trigger).
"""
from __future__ import annotations

import json

import click

from framework.commands import project_dir, target_name
from framework.commands.types import PARTITION


@click.command("sweep")
@click.option("--json", "as_json", is_flag=True, help="Print the decisions as JSON.")
@click.pass_context
def sweep_cmd(ctx: click.Context, as_json: bool) -> None:
    """Evaluate deadlines, tiered timeouts, debounce windows and pending triggers of every
    open partition, without waiting for a message. Run it from a scheduler (every minute)."""
    from framework.orchestrator.service import sweep

    decisions = sweep(project_dir(ctx), target_name(ctx))
    if as_json:
        click.echo(json.dumps({"decisions": decisions}, indent=2))
    else:
        if not decisions:
            click.echo("nothing open: no partition is waiting and no trigger is pending")
        for d in decisions:
            published = f" published {', '.join(d['published'])}" if d["published"] else ""
            click.echo(f"{d['partition']}  {d['transition']}  round {d['round']}  {d['action']}{published}: {d['reason']}")
    if any(d["action"] == "publish_failed" for d in decisions):
        # the trigger stays pending (alerted, retried by the next sweep); the scheduler must see it
        raise SystemExit(1)


@click.command("status")
@click.option("--date", "--partition", "partition", default=None, type=PARTITION, help="Only this partition (e.g. 2026-11-28).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--check", is_flag=True, help="Exit 1 when a started partition is stuck: a transition blocked, expired, "
                                            "gate-failed, stalled, with a pending or a lost trigger (each with its recovery command).")
@click.option("--grace", type=float, default=None, metavar="SECONDS",
              help="How long a published trigger may go unanswered, or a round wait with nothing ahead, before "
                   "--check calls it lost or stalled (default 900).")
@click.pass_context
def status_cmd(ctx: click.Context, partition: str | None, as_json: bool, check: bool, grace: float | None) -> None:
    """Per phase transition and partition: expected / completed / failed / missing
    processors, the trigger state and the reason; the problems of started partitions."""
    from framework.orchestrator.health import render_problems
    from framework.orchestrator.service import status_and_problems
    from framework.orchestrator.status import render_text

    rows, found = status_and_problems(project_dir(ctx), target_name(ctx), partition, grace)
    if as_json:
        click.echo(json.dumps({"transitions": [r.to_dict() for r in rows], "problems": [p.to_dict() for p in found]},
                              indent=2))
    else:
        click.echo(render_text(rows))
        if check or found:
            click.echo(render_problems(found))
    if check and found:
        raise SystemExit(1)
