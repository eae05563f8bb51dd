"""`pipectl init`: write a small project (or a copy of a shipped example) that validates
clean, to edit from there; `pipectl schema`: the manifests' JSON Schemas."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from framework.commands import project_dir
from framework.scaffold.examples import EXAMPLES

_NEXT_SKELETON = ("  pipectl validate        # after every edit of the manifests\n"
                  "  pipectl graph           # the processor graph (Mermaid)\n"
                  "  pipectl render orders_raw --kind detect   # the SQL pipectl runs\n"
                  "  pipectl plan            # what apply would create (tables, topics, subscriptions)\n"
                  "  pipectl load orders_landing orders.csv    # your rows into the landing table (or `pipectl sample`)\n"
                  "  pipectl run --date 2025-01-01             # every phase for that day")
_NEXT_EXAMPLE = ("  pipectl sample          # deterministic sample rows in the landing tables\n"
                 "  pipectl run --date D    # D: the date `pipectl sample` printed\n"
                 "  pipectl graph --phases  # the phases and their transitions")


@click.command("init")
@click.argument("directory", default=".", type=click.Path(file_okay=False))
@click.option("--name", default=None, help="Project name (snake_case; default: the folder's name).")
@click.option("--example", type=click.Choice(sorted(EXAMPLES)), default=None,
              help="Copy a shipped example project instead of the two-phase skeleton.")
@click.option("--force", is_flag=True, help="Overwrite existing files.")
def init_cmd(directory: str, name: str | None, example: str | None, force: bool) -> None:
    """Create processors.yaml, topics.yaml, SQL transforms and schemas/ of a two-phase
    project, or with --example a complete copy of an example project.

    The project is validated right away; next steps are printed.
    """
    from framework import console
    from framework.scaffold import init_example, init_project
    from framework.validation import validate

    if example and name:
        raise click.UsageError("--name applies to the skeleton only: an example keeps its own project name")
    result = init_example(directory, example, force) if example else init_project(directory, name, force)
    for rel in result.files:
        click.echo(f"created {rel}")
    diags = validate(result.root)
    if diags.items:  # what pipectl writes must validate clean; anything else is a pipectl bug
        click.echo(console.diagnostics_text(diags.sorted()), err=True)
        sys.exit(1)
    copied = f"example '{example}' copied; " if example else ""
    click.echo(f"\n{copied}validated: ok. Next, in {result.root}:")
    click.echo(_NEXT_EXAMPLE if example else _NEXT_SKELETON)


@click.command("schema")
@click.argument("name", required=False, type=click.Choice(["processors", "topics", "config", "envelope"]))
@click.option("--write", "write", is_flag=True, help="(Re)write every manifest schema into <project>/schemas/.")
@click.pass_context
def schema_cmd(ctx: click.Context, name: str | None, write: bool) -> None:
    """Print a JSON Schema of this pipectl version, or --write them into the project.

    The manifests' first line (`# yaml-language-server: $schema=schemas/...`) points at the
    written copies; run `pipectl schema --write` after upgrading pipectl.
    """
    from framework.scaffold import SCHEMA_DIR, write_schemas

    if write == bool(name):
        raise click.UsageError("give a schema NAME to print, or --write (not both)")
    if write:
        for rel in write_schemas(project_dir(ctx)):
            click.echo(f"wrote {Path(project_dir(ctx)) / rel}")
        return
    click.echo(json.dumps(json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text(encoding="utf-8")), indent=2))
