"""`pipectl verify`: recompute a partition from scratch and compare it with what incremental
runs left. Exit 0 when every table is equal, 1 when any differs or fails to recompute."""
from __future__ import annotations

import json
import sys
from typing import Any

import click

from framework.commands import project_dir, target_name
from framework.commands.types import EXCLUDE_HELP, PARTITION, SELECT_HELP, SELECTION, resolve_selection


@click.command("verify")
@click.option("--date", "date", required=True, type=PARTITION, help="Partition to verify (e.g. yesterday's, from a nightly job).")
@click.option("--select", "-s", "select", multiple=True, type=SELECTION, help="Processors to recompute (default: all). " + SELECT_HELP)
@click.option("--exclude", "excludes", multiple=True, type=SELECTION, help=EXCLUDE_HELP)
@click.option("--tolerance", type=click.FloatRange(min=0), default=1e-9, show_default=True,
              help="Floats within this absolute or relative difference are equal.")
@click.option("--ignore-column", "ignore", multiple=True,
              help="A column never compared (clock-derived columns such as processed_at are skipped already).")
@click.option("--rows", "sample", type=click.IntRange(min=0), default=3, show_default=True, help="Differing rows shown per table.")
@click.option("--keep-scratch", is_flag=True, help="Keep the scratch dataset for inspection (default: dropped).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def verify_cmd(ctx: click.Context, date: str, select: tuple[str, ...], excludes: tuple[str, ...], tolerance: float, ignore: tuple[str, ...],
               sample: int, keep_scratch: bool, as_json: bool) -> None:
    """Prove incremental == full for one partition: recompute the selected processors from
    scratch into a scratch dataset of the same warehouse and compare every output table."""
    from framework.drive.session import Session
    from framework.run.verify import verify

    selectors = resolve_selection(ctx, select, excludes, required=True)
    from framework.commands.output import echo_styled, working

    with Session.open(project_dir(ctx), target_name(ctx)) as session, \
            working(f"verify {date}: recomputing from scratch in a scratch dataset", quiet=as_json):
        report = verify(session.project, session.warehouse, date, select=selectors, tolerance=tolerance,
                        ignore=ignore, sample=sample, keep_scratch=keep_scratch)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        echo_styled(render(report), statuses=True)
    sys.exit(0 if report.ok else 1)


def render(report: Any) -> str:
    """Per table: equal / differs (counts, then a few differing rows side by side) / skipped."""
    lines = [f"verify {report.partition}: recomputed from scratch in {report.scratch}"
             f"{' (kept)' if report.kept else ' (dropped)'}, {report.seconds:.1f} s"]
    width = max([len(t.processor) for t in report.tables] + [10])
    for t in report.tables:
        head = f"  {t.processor:<{width}}  {t.status:<8}"
        d = t.diff
        if d is None:
            lines.append(f"{head} {t.reason or ''}".rstrip())
            continue
        counts = f"{d.incremental_rows} rows" if t.status == "equal" else (
            f"{d.incremental_rows} rows incremental vs {d.full_rows} full; {d.keys_differing} of {d.keys} keys differ "
            f"({d.changed} changed, {d.only_incremental} only incremental, {d.only_full} only full)")
        lines.append(f"{head} {counts}")
        for s in d.samples:
            key = ", ".join(f"{k}={v}" for k, v in s.key.items()) or "(no key)"
            if s.incremental is None or s.full is None:
                side = "only in the incremental table" if s.full is None else "missing from the incremental table"
                row = s.incremental or s.full or {}
                lines.append(f"      {key}: {side}: " + ", ".join(f"{c}={_fmt(row[c])}" for c in row))
                continue
            lines.append(f"      {key}:")
            cw = max(len(c) for c in s.columns) if s.columns else 6
            lines.append(f"        {'column':<{cw}}  {'incremental':>18}  {'full recompute':>18}")
            for c in s.columns:
                lines.append(f"        {c:<{cw}}  {_fmt(s.incremental[c]):>18}  {_fmt(s.full[c]):>18}")
    bad = report.differing
    compared = sum(1 for t in report.tables if t.status in ("equal", "differs"))
    lines.append(f"ok: {compared} table(s) equal to a full recompute" if not bad else
                 f"FAILED: {len(bad)} of {len(report.tables)} table(s) differ or failed: {', '.join(t.processor for t in bad)}")
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    return value.isoformat() if hasattr(value, "isoformat") else str(value)
