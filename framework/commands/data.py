"""`pipectl simulate update`, `sample`, `demo`, `load`: put data into the landing tables.

Apart from `run`/`backfill` (:mod:`framework.commands.run`) because these do not run a
stored partition as it is: they make or edit the raw rows first (the project's sample hook,
a user's file, the demo's example) and, for `simulate update` and `demo`, then run over
them. Thin like every command: parse options, call :mod:`framework.drive`, print.
"""
from __future__ import annotations

import json
from typing import Any

import click

from framework.commands import project_dir, target_name
from framework.commands.output import run_output
from framework.commands.run import ENTITY_HELP, SET_HELP, deprecated, edit_defaults, open_session, show_report
from framework.commands.types import DATE, ENTITY, PARTITION, check_source_columns


@click.group("simulate")
def simulate_cmd() -> None:
    """Simulate events on the local pipeline (late stat corrections, injury updates)."""


@simulate_cmd.command("update")
@click.option("--date", "date", required=True, type=PARTITION)
@click.option("--entity", "-e", "entity", default=None, type=ENTITY, help=ENTITY_HELP)
@click.option("--player", "player", default=None, type=ENTITY, hidden=True,
              callback=deprecated("--player ID", "--entity KEY=ID (e.g. --entity player_lookup=ID)"))
@click.option("--set", "sets", multiple=True, help=SET_HELP)
@click.option("--table", default=None, help="Landing table to edit (default: the sample hook's).")
@click.option("--json", "as_json", is_flag=True)
@click.option("--quiet", "-q", is_flag=True)
@click.pass_context
def simulate_update_cmd(ctx: click.Context, date: str, entity: Any, player: Any, sets: tuple[str, ...], table: str | None,
                        as_json: bool, quiet: bool) -> None:
    """Edit one entity's raw rows and run incrementally; compare with the full batch."""
    from framework.drive.session import simulate_update

    if entity is not None and player is not None:
        raise click.UsageError("--player is the deprecated spelling of --entity: give only --entity")
    entity, changes = edit_defaults(ctx, entity or player, sets, "simulate update")
    check_source_columns(ctx, table, changes, "--set")  # before anything is edited or run
    with open_session(ctx) as sess, run_output(quiet or as_json) as progress:
        upd = simulate_update(sess, date, entity, changes, table=table, progress=progress)
    show_report(upd.report, upd.baseline, as_json, upd.to_dict())
    if upd.report.status == "failed":
        raise SystemExit(1)


@click.command("sample")
@click.option("--date", "date", default=None, type=PARTITION, help="First date (default: the project's sample start).")
@click.option("--days", default=1, show_default=True, type=click.IntRange(1, 3660))
@click.option("--seed", default=42, show_default=True)
@click.pass_context
def sample_cmd(ctx: click.Context, date: str | None, days: int, seed: int) -> None:
    """Generate the project's deterministic sample landing data."""
    from framework.drive.session import default_sample_date, generate_sample

    with open_session(ctx) as sess:
        start = date or default_sample_date(sess.project)
        counts = generate_sample(sess, start, days=days, seed=seed)
    dates = start if days == 1 else f"{start} and the {days - 1} days after it"
    click.echo(f"sample rows for {dates}: " + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())))


@click.command("demo")
@click.option("--date", "date", default=None, type=DATE, help="Game date (default: the sample's first date).")
@click.option("--entity", "-e", "entity", default=None, metavar="KEY=ID",
              help="Entity of the 2 PM update, KEY=ID (default: the example's UPDATE_DEFAULTS, player_lookup=lebronjames).")
@click.option("--player", "player", default=None, hidden=True,
              callback=deprecated("--player ID", "--entity KEY=ID (e.g. --entity player_lookup=ID)"))
@click.option("--yes", "-y", is_flag=True, help="Run in a project pipectl did not make for the demo (resets its .pipectl/).")
@click.option("--json", "as_json", is_flag=True)
@click.option("--quiet", "-q", is_flag=True)
@click.pass_context
def demo_cmd(ctx: click.Context, date: str | None, entity: Any, player: str | None, yes: bool, as_json: bool,
             quiet: bool) -> None:
    """Run the NBA example end to end: sample days, a full game day, a 2 PM update of one entity.

    In a folder without manifests the demo uses ./pipectl-demo/ (a copy of the example it
    makes, or reuses); in its own example copies it just runs; in any other project it resets
    that project's .pipectl/ only after a yes (a prompt, or --yes).
    """
    import sys

    from framework import __version__
    from framework.errors import ConfigError
    from framework.drive import demo_place
    from framework.drive.demo import check_demo, run_demo

    place = demo_place.choose(project_dir(ctx))
    if place.kind in ("example", "project"):
        check_demo(place.root, target_name(ctx))  # before asking, and before touching anything
    if place.needs_consent and not yes:
        question = (f"{place.root} is a project pipectl demo did not make; the demo deletes its .pipectl/ "
                    "(local warehouse, bus, ledger) and fills it with sample data. Continue?")
        if not sys.stdin.isatty():
            raise ConfigError(question.replace(" Continue?", ""), hint="pass --yes to run it there, or run "
                              "`pipectl demo` in an empty folder (it makes ./pipectl-demo/)")
        click.confirm(question, abort=True, err=True)
    for line in demo_place.prepare(place, __version__):
        click.echo(line, err=as_json)
    if entity is not None and player is not None:
        raise click.UsageError("--player is the deprecated spelling of --entity: give only --entity")
    if entity is not None or player is not None:  # checked against the demo's project, known only now
        from framework.project import load
        from framework.drive.updates import parse_entity, update_defaults

        project = load(place.root)  # the demo's project may be a copy made just now
        try:
            entity = parse_entity(project, str(entity or player), update_defaults(project).kind)
        except ConfigError as exc:
            raise click.BadParameter(exc.render(), param_hint="--entity") from exc
    from framework.commands.output import RunProgress

    history = None if (quiet or as_json) else RunProgress(compact=True, label="history ")
    try:
        with run_output(quiet or as_json) as progress:
            out = run_demo(place.root, target_name(ctx), date=date, entity=entity, progress=progress,
                           history_progress=history, say=None if as_json else _say)
    finally:
        if history is not None:
            history.close()
    if as_json:
        click.echo(json.dumps(out.to_dict(), indent=2, default=str))
    if out.failed:
        raise SystemExit(1)


def _say(text: Any) -> None:
    """The demo's narration: plain text, or a phase table (rich on a terminal)."""
    if isinstance(text, str):
        click.echo(text)
    else:
        from framework.commands.output import print_phase_table

        print_phase_table(*text)


@click.command("load")
@click.argument("source")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--replace", is_flag=True, help="First delete the rows of the partitions the file holds.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def load_cmd(ctx: click.Context, source: str, file: str, replace: bool, as_json: bool) -> None:
    """Load rows from FILE (.csv with a header, .jsonl, .json) into SOURCE's landing table.

    Every row is checked against the source's declared columns before anything is written.
    """
    from framework.drive.landing import load_source

    with open_session(ctx) as sess:
        result = load_source(sess, source, file, replace=replace)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    parts = ", ".join(f"{k}: {v}" for k, v in sorted(result.partitions.items()))
    click.echo(f"loaded {result.rows} rows into {result.table}" + (" (created)" if result.created else "")
               + (" replacing those partitions" if result.replaced else "") + (f" ({parts})" if parts else ""))
