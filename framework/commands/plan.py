"""`pipectl plan` and `pipectl apply`: reconcile the backend with the manifests (Terraform style).

Exit codes: plan 0 (with --detailed-exitcode: 0 no changes, 2 changes or drift pending);
1 on any error, including destructive changes refused without --allow-destructive, a stale
plan, a held lock or an apply that failed or did not converge.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from framework.commands import project_dir, target_name

_prefix_help = "Treat backend topics whose name starts with PREFIX as managed (drift detection). Repeatable."


def _options(allow_destructive: bool, prune: bool, prefixes: tuple[str, ...]):
    from framework.plan.planner import PlanOptions

    return PlanOptions(allow_destructive=allow_destructive, prune=prune, managed_prefixes=tuple(prefixes))


@click.command("plan")
@click.option("--out", "out", type=click.Path(dir_okay=False), help="Save the plan to this JSON file for `pipectl apply FILE`.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.option("--prune", is_flag=True, help="Plan the deletion of drift (backend objects the manifests do not declare).")
@click.option("--allow-destructive", is_flag=True, help="Allow changes that lose data or messages (drop/retype column, replace table or subscription).")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 0 when nothing changes, 2 when changes or drift are pending, 1 on error.")
@click.option("--managed-prefix", "prefixes", multiple=True, metavar="PREFIX", help=_prefix_help)
@click.option("--show-unchanged", is_flag=True, help="List unchanged resources too.")
@click.pass_context
def plan_cmd(ctx: click.Context, out: str | None, as_json: bool, prune: bool, allow_destructive: bool,
             detailed_exitcode: bool, prefixes: tuple[str, ...], show_unchanged: bool) -> None:
    """Show what `apply` would create, update, replace or delete, attribute by attribute."""
    from framework.plan.planner import plan_project
    from framework.plan.render import plan_text

    plan = plan_project(project_dir(ctx), target_name(ctx), _options(allow_destructive, prune, prefixes))
    if as_json:
        click.echo(plan.to_json())
    else:
        from framework.commands.output import echo_styled

        echo_styled(plan_text(plan, show_noop=show_unchanged))
    if plan.refused:
        click.echo(f"error: {len(plan.refused)} destructive change(s) refused; the plan cannot be applied"
                   + (" and was not saved" if out else ""), err=True)
        sys.exit(1)
    if out:
        Path(out).write_text(plan.to_json())
        if not as_json:
            click.echo(f"Saved the plan to {out}; apply it with `pipectl apply {out}`.")
    sys.exit(2 if detailed_exitcode and plan.has_changes else 0)


@click.command("apply")
@click.argument("plan_file", required=False, type=click.Path(dir_okay=False))
@click.option("--auto-approve", is_flag=True, help="Apply without asking (required when not interactive).")
@click.option("--json", "as_json", is_flag=True, help="Print the plan and the result as JSON.")
@click.option("--prune", is_flag=True, help="Also delete drift (ignored with PLAN_FILE: the file decides).")
@click.option("--allow-destructive", is_flag=True, help="Allow destructive changes (ignored with PLAN_FILE).")
@click.option("--managed-prefix", "prefixes", multiple=True, metavar="PREFIX", help=_prefix_help)
@click.pass_context
def apply_cmd(ctx: click.Context, plan_file: str | None, auto_approve: bool, as_json: bool, prune: bool,
              allow_destructive: bool, prefixes: tuple[str, ...]) -> None:
    """Apply PLAN_FILE exactly (refused if stale), or plan and apply after confirmation."""
    from framework.errors import PlanError
    from framework.plan.planner import apply_saved_plan, load_plan_file, plan_and_apply
    from framework.commands.output import echo_styled, working
    from framework.plan.render import apply_text, plan_text

    root = project_dir(ctx)
    if plan_file:
        plan = load_plan_file(plan_file)
        if (prune or allow_destructive or prefixes) and not as_json:
            click.echo("note: --prune/--allow-destructive/--managed-prefix are ignored with a plan file: it was made with "
                       f"prune={plan.prune}, allow_destructive={plan.allow_destructive}", err=True)
        if not as_json:
            echo_styled(plan_text(plan))
        with working(f"applying {len(plan.pending)} change(s)", quiet=as_json):
            result = apply_saved_plan(root, plan, target_name(ctx))
    else:
        def confirm(plan) -> bool:
            if not as_json:
                echo_styled(plan_text(plan))
            if auto_approve:
                return True
            if not sys.stdin.isatty():
                raise PlanError("`pipectl apply` needs confirmation but the input is not interactive",
                                hint="review `pipectl plan` and pass --auto-approve, or apply a saved plan file")
            return click.confirm("Apply these changes?", default=False)

        plan, result = plan_and_apply(root, target_name(ctx), _options(allow_destructive, prune, prefixes), confirm)
        if result is None:
            if as_json:
                click.echo(json.dumps({"plan": plan.to_dict(), "result": None}, indent=2))
            elif not plan.pending:
                click.echo(plan_text(plan))
            else:
                click.echo("Apply cancelled; nothing changed.")
            sys.exit(0)
    if as_json:
        click.echo(json.dumps({"plan": plan.to_dict(), "result": result.to_dict()}, indent=2))
    else:
        echo_styled(apply_text(result))
    sys.exit(0 if result.converged else 1)
