"""`pipectl validate`: every problem in the manifests, before anything is deployed."""
from __future__ import annotations

import sys

import click

from framework.commands import project_dir


@click.command("validate")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "junit", "sarif"]), default="text", show_default=True,
              help="Output format; junit and sarif let CI annotate pull requests.")
@click.option("--strict", is_flag=True, help="Treat warnings as errors (exit 1).")
@click.option("--no-sql", is_flag=True, help="Skip rendering and parsing the SQL of every processor (faster).")
@click.pass_context
def validate_cmd(ctx: click.Context, fmt: str, strict: bool, no_sql: bool) -> None:
    """Check processors.yaml and topics.yaml: shape, names, graph, topics, SQL.

    Exit 0 when clean (warnings allowed unless --strict), 1 on errors, 2 on usage errors.
    """
    from framework import __version__, console
    from framework.validation import validate

    diags = validate(project_dir(ctx), check_sql=not no_sql)
    items = diags.sorted()
    if fmt == "json":
        out = console.diagnostics_json(items)
    elif fmt == "junit":
        out = console.diagnostics_junit(items)
    elif fmt == "sarif":
        out = console.diagnostics_sarif(items, __version__)
    else:
        out = console.diagnostics_text(items)
    click.echo(out)
    failed = bool(diags.errors) or (strict and bool(diags.warnings))
    sys.exit(1 if failed else 0)
