"""`pipectl render`: print the SQL pipectl would run for a processor."""
from __future__ import annotations

import click

from framework.commands import project_dir
from framework.commands.types import PROCESSOR


@click.command("render")
@click.argument("processor", type=PROCESSOR)
@click.option("--dialect", type=click.Choice(["duckdb", "bigquery"]), default="duckdb", show_default=True)
@click.option("--kind", type=click.Choice(["detect", "filter", "ddl", "merge", "transform"]), default="detect", show_default=True,
              help="Which statement: change detection, selective filter, output DDL, merge of processed rows, or the transform.")
@click.option("--full-batch", is_flag=True, help="Render merge/transform without the entity filter.")
@click.pass_context
def render_cmd(ctx: click.Context, processor: str, dialect: str, kind: str, full_batch: bool) -> None:
    """Print the SQL of PROCESSOR (name, alias or table) and the query parameters it needs."""
    from framework.project import load
    from framework.sql.render import render_statement

    rendered = render_statement(load(project_dir(ctx)), processor, kind, dialect, full_batch=full_batch)
    click.echo(rendered.sql, nl=False)
    from framework.sql.dialects import get_dialect

    click.echo(f"-- parameters: {', '.join(get_dialect(dialect).param(p) for p in rendered.params) or '(none)'}")
