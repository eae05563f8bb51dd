"""`pipectl init`: write a small project that validates clean, to edit from there."""
from __future__ import annotations

import sys

import click


@click.command("init")
@click.argument("directory", default=".", type=click.Path(file_okay=False))
@click.option("--name", default=None, help="Project name (snake_case; default: the folder's name).")
@click.option("--force", is_flag=True, help="Overwrite an existing processors.yaml / topics.yaml.")
def init_cmd(directory: str, name: str | None, force: bool) -> None:
    """Create processors.yaml, topics.yaml and SQL transforms of a two-phase example.

    The project is validated right away; next steps are printed.
    """
    from framework import console
    from framework.scaffold import init_project
    from framework.validation import validate

    result = init_project(directory, name, force)
    for rel in result.files:
        click.echo(f"created {rel}")
    diags = validate(result.root)
    if diags.items:  # the skeleton must validate clean; anything else is a pipectl bug
        click.echo(console.diagnostics_text(diags.sorted()), err=True)
        sys.exit(1)
    click.echo(f"\nvalidated: ok. Next, in {result.root}:\n"
               "  pipectl validate        # after every edit of the manifests\n"
               "  pipectl graph           # the processor graph (Mermaid)\n"
               "  pipectl render orders_raw --kind detect   # the SQL pipectl runs\n"
               "  pipectl plan            # what apply would create (tables, topics, subscriptions)")
