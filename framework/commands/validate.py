"""`pipectl validate`: every problem in the manifests, before anything is deployed."""
from __future__ import annotations

import sys

import click

from framework.commands import project_dir, target_name


@click.command("validate")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "junit", "sarif"]), default="text", show_default=True,
              help="Output format; junit and sarif let CI annotate pull requests.")
@click.option("--strict", is_flag=True, help="Treat warnings as errors (exit 1).")
@click.option("--no-sql", is_flag=True, help="Skip rendering and parsing the SQL of every processor (faster).")
@click.option("--dry-run", is_flag=True, help="Also dry-run every rendered statement on the target's warehouse (BigQuery: --target gcp) and report bytes scanned.")
@click.pass_context
def validate_cmd(ctx: click.Context, fmt: str, strict: bool, no_sql: bool, dry_run: bool) -> None:
    """Check processors.yaml and topics.yaml: shape, names, graph, topics, SQL.

    Exit 0 when clean (warnings allowed unless --strict), 1 on errors, 2 on usage errors.
    """
    from framework import __version__, console
    from framework.validation import validate, validate_or_report

    diags = validate_or_report(validate, project_dir(ctx), check_sql=not no_sql, replay=True)
    if dry_run and not diags.errors:
        from framework.backends.dry_run import dry_run_target

        for r in dry_run_target(project_dir(ctx), target_name(ctx)):
            if r.ok:  # bytes go to stderr so --format json/junit/sarif stay machine-readable
                click.echo(f"dry-run: {r.processor} {r.kind}: {r.bytes_processed} bytes", err=True)
            else:
                diags.error("dry-run", f"processor '{r.processor}' {r.kind} rejected by the warehouse: {r.error}", r.location)
    items = diags.sorted()
    if fmt == "json":
        out = console.diagnostics_json(items, {"notes": [n.to_dict() for n in diags.notes]})
    elif fmt == "junit":
        out = console.diagnostics_junit(items)
    elif fmt == "sarif":
        out = console.diagnostics_sarif(items, __version__)
    else:
        out = console.diagnostics_text(items, notes=diags.notes)
    click.echo(out)
    failed = bool(diags.errors) or (strict and bool(diags.warnings))
    sys.exit(1 if failed else 0)
