"""`pipectl test`: run the data tests of processors.yaml (``tests:``) on their own, as
``dbt test`` does: for one partition (``--date``) or every partition, for a selection,
printed as text, JSON or JUnit XML (one testcase per test, so CI shows them as results).

Exit codes: 0 when every test passed or only warned; 1 when an ``error`` test failed or a
test could not run; 2 for a usage error.
"""
from __future__ import annotations

import json
from typing import Any

import click

from framework.commands import project_dir, target_name
from framework.commands.types import EXCLUDE_HELP, PARTITION, SELECT_HELP, SELECTION, resolve_selection


@click.command("test")
@click.option("--select", "-s", "selectors", multiple=True, type=SELECTION, help=SELECT_HELP)
@click.option("--exclude", "excludes", multiple=True, type=SELECTION, help=EXCLUDE_HELP)
@click.option("--date", "date", default=None, type=PARTITION,
              help="Test this partition only (default: every row of each table).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "junit"]), default="text", show_default=True)
@click.pass_context
def test_cmd(ctx: click.Context, selectors: tuple[str, ...], excludes: tuple[str, ...], date: str | None, fmt: str) -> None:
    """Run the processors' data tests (not_null, unique, accepted_values, relationships, SQL)."""
    from framework.run.data_tests import run_tests
    from framework.drive.session import Session

    chosen = resolve_selection(ctx, selectors, excludes)
    results = []
    with Session.open(project_dir(ctx), target_name(ctx)) as sess:
        names = chosen if chosen is not None else list(sess.project.processors)
        for name in names:
            proc = sess.project.processors[name]
            if proc.enabled and proc.tests:
                results += run_tests(sess.warehouse, sess.project, proc, date)
    if fmt == "json":
        click.echo(json.dumps({"date": date, "results": [r.to_dict() for r in results], **_counts(results)}, indent=2))
    elif fmt == "junit":
        click.echo(junit(results, date))
    else:
        _text(results, date)
    if any(r.blocking for r in results):
        raise SystemExit(1)


def _counts(results: list[Any]) -> dict[str, int]:
    return {s: sum(1 for r in results if r.status == s) for s in ("pass", "warn", "fail", "error")}


def _text(results: list[Any], date: str | None) -> None:
    from framework.commands.output import echo_styled

    if not results:
        click.echo("no data tests in the selection (declare them under a processor's `tests:` in processors.yaml)")
        return
    width = max(len(f"{r.processor}.{r.name}") for r in results)
    lines = []
    for r in results:
        label = {"pass": "PASS", "warn": "WARN", "fail": "FAIL", "error": "ERROR"}[r.status]
        lines.append(f"{label:<6}{r.processor + '.' + r.name:<{width}}  {r.message}"
                     + (f"  ({r.location})" if r.status != "pass" and r.location else ""))
    c = _counts(results)
    scope = f"partition {date}" if date else "every partition"
    lines.append(("FAILED: " if c["fail"] or c["error"] else "ok: ")
                 + f"{c['pass']} passed, {c['warn']} warned, {c['fail']} failed, {c['error']} errors ({scope})")
    echo_styled("\n".join(lines), statuses=True)


def junit(results: list[Any], date: str | None) -> str:
    """JUnit XML: a testsuite per processor, a testcase per test; a blocking failure is a
    ``<failure>``, a test that could not run an ``<error>``, a warning passes with its text."""
    from xml.sax.saxutils import escape, quoteattr

    from framework.console import xml_text

    suites: dict[str, list[Any]] = {}
    for r in results:
        suites.setdefault(r.processor, []).append(r)
    out = ['<?xml version="1.0" encoding="UTF-8"?>', "<testsuites>"]
    for proc, rs in suites.items():
        fails = sum(1 for r in rs if r.status == "fail")
        errors = sum(1 for r in rs if r.status == "error")
        out.append(f'  <testsuite name={quoteattr("pipectl test " + proc)} tests="{len(rs)}" failures="{fails}" '
                   f'errors="{errors}" time="{sum(r.seconds for r in rs):.3f}">')
        for r in rs:
            head = (f'    <testcase classname={quoteattr(xml_text("pipectl.test." + proc))} name={quoteattr(xml_text(r.name))} '
                    f'time="{r.seconds:.3f}"')
            message = quoteattr(xml_text(r.message))
            if r.status == "fail":
                out.append(f'{head}>\n      <failure message={message} type="{r.kind}">'
                           f'{escape(xml_text(r.sql or r.message))}</failure>\n    </testcase>')
            elif r.status == "error":
                out.append(f'{head}>\n      <error message={message} type="{r.kind}"/>\n    </testcase>')
            elif r.status == "warn":
                out.append(f'{head}>\n      <system-out>{escape(xml_text("warning: " + r.message))}</system-out>\n    </testcase>')
            else:
                out.append(f"{head}/>")
        out.append("  </testsuite>")
    out.append("</testsuites>")
    return "\n".join(out)
