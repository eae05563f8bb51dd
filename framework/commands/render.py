"""`pipectl render`: print the SQL pipectl would run for a processor."""
from __future__ import annotations

import click

from framework.commands import project_dir, target_name
from framework.commands.types import PROCESSOR


@click.command("render")
@click.argument("processor", type=PROCESSOR)
@click.option("--dialect", type=click.Choice(["duckdb", "bigquery"]), default="duckdb", show_default=True)
@click.option("--kind", type=click.Choice(["detect", "filter", "ddl", "merge", "transform", "test"]), default="detect",
              show_default=True, help="Which statement: change detection, selective filter, output DDL, merge of processed "
                                      "rows, the transform, or the data tests (processors.yaml tests:).")
@click.option("--full-batch", is_flag=True, help="Render merge/transform without the entity filter.")
@click.pass_context
def render_cmd(ctx: click.Context, processor: str, dialect: str, kind: str, full_batch: bool) -> None:
    """Print the SQL of PROCESSOR (name, alias or table) and the query parameters it needs."""
    from framework.backends.registry import target_project
    from framework.sql.render import render_statement

    # as the target sees it: its dataset_prefix in every table name (pipectl.yaml)
    project = target_project(project_dir(ctx), target_name(ctx))
    if kind == "test":
        _render_tests(project, processor, dialect)
        return
    rendered = render_statement(project, processor, kind, dialect, full_batch=full_batch)
    click.echo(rendered.sql, nl=False)
    from framework.sql.dialects import get_dialect

    click.echo(f"-- parameters: {', '.join(get_dialect(dialect).param(p) for p in rendered.params) or '(none)'}")


def _render_tests(project, processor: str, dialect: str) -> None:
    """Each data test's query for one partition, with its parameters named."""
    from framework.sql.data_tests import render_test
    from framework.sql.dialects import get_dialect

    proc = project.processors[processor]
    if not proc.tests:
        click.echo(f"-- processor {proc.name} declares no data tests (processors.yaml `tests:`)")
        return
    d = get_dialect(dialect)
    for test in proc.tests:
        query = render_test(project, proc, test, dialect, partition="2000-01-01" if project.partition_type in (None, "DATE")
                            else "0")
        click.echo(query.sql, nl=False)
        names = ", ".join(d.param(p.name) + (f" ({p.type} array)" if p.array else f" ({p.type})") for p in query.params)
        click.echo(f"-- parameters: {names or '(none)'}\n")

