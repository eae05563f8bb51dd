"""`pipectl run`, `simulate update`, `backfill`, `trace`, `history`, `sample`, `demo`, `load`.

Thin: parse options, call one function of :mod:`framework.drive.session`, print. Progress
lines go to stderr so ``--json`` output on stdout stays machine-readable.
"""
from __future__ import annotations

import json
from typing import Any

import click

from framework.commands import project_dir, target_name
from framework.commands.types import (DATE, ENTITY, EXCLUDE_HELP, PARTITION, PHASE, PROCESSOR, SELECT_HELP, SELECTION,
                                      check_source_columns, project_of, resolve_selection)
from framework.commands.output import backfill_output, run_output
from framework.run.history import FINAL_STATUSES

ENTITY_HELP = ("Entity to edit, KEY=ID: KEY an entity kind's key column (player_lookup, sensor_id) or the kind's "
               "name; a bare ID is of the kind the project's sample hook edits. Default: the hook's UPDATE_DEFAULTS.")
SET_HELP = "COLUMN=VALUE on the entity's raw rows (repeatable). Default: the sample hook's UPDATE_DEFAULTS."


def deprecated(old: str, new: str):
    """Callback of a hidden option kept for one release: it still works, with one warning line."""
    def warn(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value not in (None, ()):
            click.echo(f"warning: {old} is deprecated and will be removed in pipectl 0.2; use {new}", err=True)
        return value

    return warn


def _edit_defaults(ctx: click.Context, entity: Any, sets: tuple[str, ...], what: str) -> tuple[Any, dict[str, Any]]:
    """The entity and columns to edit: as given, else the project's UPDATE_DEFAULTS; a
    missing default is a usage error naming the option."""
    from framework.errors import ConfigError
    from framework.drive.updates import check_kind, update_defaults

    defaults = update_defaults(project_of(ctx))
    entity = entity or defaults.entity
    if entity is None:
        raise click.UsageError(f"{what}: name the entity (--entity KEY=ID); the project's sample hook declares no "
                               "UPDATE_DEFAULTS entity")
    changes = _parse_pairs(sets, "--set") if sets else dict(defaults.changes)
    if not changes:
        raise click.UsageError(f"{what}: name the columns to change (--set COLUMN=VALUE); the project's sample hook "
                               "declares no UPDATE_DEFAULTS set")
    try:
        check_kind(defaults, entity)
    except ConfigError as exc:
        raise click.BadParameter(exc.render(), param_hint="--entity") from exc
    return entity, changes


def _session(ctx: click.Context, aggregate_alerts: bool = False):
    from framework.drive.session import Session

    project_of(ctx)  # loaded once per command and shared (the session and sample hooks reuse it)
    return Session.open(project_dir(ctx), target_name(ctx), aggregate_alerts=aggregate_alerts)


def _show(report: Any, baseline: dict[str, float] | None, as_json: bool, doc: Any = None) -> None:
    """The result: JSON on stdout, or the phase table (rich on a terminal, plain when piped)."""
    if as_json:
        click.echo(json.dumps(doc if doc is not None else report.to_dict(), indent=2, default=str))
        return
    from framework.commands.output import print_phase_table

    print_phase_table(report, baseline)


def _parse_pairs(values: tuple[str, ...], what: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint=what)
        out[key] = _number(value)
    return out


def _number(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def _flat(values: tuple[str, ...]) -> list[str]:
    """``--x a --x b`` and ``--x a,b`` alike."""
    return [part.strip() for v in values for part in v.split(",") if part.strip()]


def _entities(project: Any, values: tuple[str, ...]) -> dict[str, list[str]] | None:
    """``player_lookup=lebronjames`` -> ``{"player": ["lebronjames"]}``; an unknown key is a
    usage error (exit 2) naming the known keys."""
    from framework.errors import ConfigError
    from framework.drive.replay import parse_entity_args

    if not values:
        return None
    try:
        return parse_entity_args(project, _flat(values))
    except ConfigError as exc:
        raise click.BadParameter(exc.render(), param_hint="--entities") from exc


def _source_names(project: Any, named: tuple[str, ...]) -> list[str]:
    """``--sources-changed`` checked against the declared sources (a usage error names the closest)."""
    names = [n for n in _flat(named) if n != "-"]
    unknown = [n for n in names if n not in project.sources]
    if unknown:
        from framework.manifest.diagnostics import did_you_mean

        hint = did_you_mean(unknown[0], list(project.sources)) or f"declared: {', '.join(sorted(project.sources))}"
        raise click.BadParameter(f"no source {', '.join(unknown)} in processors.yaml ({hint})", param_hint="--sources-changed")
    return names


def _sources(project: Any, named: tuple[str, ...], changed: tuple[Any, ...]) -> list[str] | None:
    """``--sources-changed`` (checked against the declared sources: a usage error names the
    closest), plus the table ``--changed`` edits; None when neither says (any may have)."""
    from framework.drive import session as s

    names = _source_names(project, named)
    if changed:
        edited = s.edited_sources(project, [s.default_update_table(s.sample_module(project, "apply_update"))])
        if edited is None:  # the hook's table is not a declared source: compare every source
            return None
        names += edited
    return sorted(set(names)) if named or changed else None


@click.command("run")
@click.option("--date", "date", required=True, type=PARTITION, help="Partition (game date) to run, YYYY-MM-DD.")
@click.option("--select", "-s", "selectors", multiple=True, type=SELECTION, help=SELECT_HELP)
@click.option("--exclude", "excludes", multiple=True, type=SELECTION, help=EXCLUDE_HELP)
@click.option("--from-phase", default=None, type=PHASE, help="Start at this phase (replays need it).")
@click.option("--entities", "entities", multiple=True,
              help="Replay these entities, skipping detection: KEY=ID with KEY an entity kind's key column "
                   "(player_lookup=lebronjames); other kinds get the ids mapped by entity_mappings. Repeat or comma-separate.")
@click.option("--changed", "changed", multiple=True, type=ENTITY,
              help="Edit these entities' raw rows first with the sample hook (KEY=ID, as --entity; repeatable), "
                   "then run incrementally.")
@click.option("--set", "sets", multiple=True, help=SET_HELP + " With --changed.")
@click.option("--full", is_flag=True, help="Full batch: every entity, no change detection.")
@click.option("--timeout", type=click.FloatRange(min=1), default=3600.0, show_default=True,
              help="execution: remote: seconds to follow the run before giving up (exit 1; the deployment goes on).")
@click.option("--fast-forward", is_flag=True,
              help="execution: remote: move the ledger's clock past debounce windows and tiers instead of waiting "
                   "for them (test and development projects only: it moves every partition's clock).")
@click.option("--sources-changed", "sources_changed", multiple=True, metavar="SOURCE",
              help="Only these declared sources changed since the last run (what a scraper's trigger says; repeat or "
                   "comma-separate; '-' = none): processors reading other sources are not asked. Default: any may have.")
@click.option("--json", "as_json", is_flag=True)
@click.option("--quiet", "-q", is_flag=True, help="No progress lines.")
@click.pass_context
def run_cmd(ctx: click.Context, date: str, selectors: tuple[str, ...], excludes: tuple[str, ...], from_phase: str | None, entities: tuple[str, ...],
            changed: tuple[Any, ...], sets: tuple[str, ...], full: bool, sources_changed: tuple[str, ...], timeout: float,
            fast_forward: bool, as_json: bool, quiet: bool) -> None:
    """Run every phase for a date through the bus and the orchestrator. On a target with
    `execution: remote` the worker service runs the processors: this publishes the first
    trigger and follows the run (status, runs, ledger) until it ends."""
    if _remote(ctx):
        _refuse_local_only(selectors=selectors, excludes=excludes, entities=entities, changed=changed, sets=sets, full=full)
        reports = _follow(ctx, [date], from_phase=from_phase, timeout=timeout, fast_forward=fast_forward,
                          quiet=quiet or as_json)
        _print_remote(reports, as_json)
        return
    from framework.drive import session as s

    if sets and not changed:
        raise click.UsageError("--set applies to the entities of --changed KEY=ID")
    changes: dict[str, Any] = {}
    for ref in changed:
        _, changes = _edit_defaults(ctx, ref, sets, "--changed")
    selected = resolve_selection(ctx, selectors, excludes, required=True)
    _source_names(project_of(ctx), sources_changed)  # before anything is opened or run
    with _session(ctx) as sess:
        replay = _entities(sess.project, entities)
        by_kind: dict[str, list[str]] = {}
        for ref in changed:
            s.apply_edits(sess, date, ref, [(None, changes)])
            by_kind.setdefault(ref.kind, []).append(ref.id)
        baseline = s.full_batch_baseline(sess, date) if changed else None
        with run_output(quiet or as_json) as progress:
            report = s.run_partition(sess, date, select=selected, from_phase=from_phase, entities=replay,
                                full=full, progress=progress, changed=by_kind or None,
                                sources_changed=_sources(sess.project, sources_changed, changed))
    _show(report, baseline, as_json)
    if report.status == "failed":
        raise SystemExit(1)


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
    entity, changes = _edit_defaults(ctx, entity or player, sets, "simulate update")
    check_source_columns(ctx, table, changes, "--set")  # before anything is edited or run
    with _session(ctx) as sess, run_output(quiet or as_json) as progress:
        upd = simulate_update(sess, date, entity, changes, table=table, progress=progress)
    _show(upd.report, upd.baseline, as_json, upd.to_dict())
    if upd.report.status == "failed":
        raise SystemExit(1)


@click.command("backfill")
@click.option("--from", "start", required=True, type=PARTITION)
@click.option("--to", "end", required=True, type=PARTITION)
@click.option("--select", "-s", "selectors", multiple=True, type=SELECTION, help=SELECT_HELP)
@click.option("--exclude", "excludes", multiple=True, type=SELECTION, help=EXCLUDE_HELP)
@click.option("--trigger-downstream", is_flag=True, help="Go through the bus so downstream phases run too.")
@click.option("--incremental", is_flag=True, help="Detect changes instead of full batches.")
@click.option("--restart", is_flag=True, help="Ignore the checkpoint of an earlier attempt.")
@click.option("--concurrency", type=click.IntRange(min=1), default=None,
              help="execution: remote: partitions in flight at once (default: worker.partitions of the target, 4).")
@click.option("--timeout", type=click.FloatRange(min=1), default=3600.0, show_default=True,
              help="execution: remote: seconds to follow each date before giving up on it.")
@click.option("--fast-forward", is_flag=True, help="execution: remote: as `pipectl run --fast-forward`.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def backfill_cmd(ctx: click.Context, start: str, end: str, selectors: tuple[str, ...], excludes: tuple[str, ...],
                 trigger_downstream: bool, incremental: bool, restart: bool, concurrency: int | None, timeout: float,
                 fast_forward: bool, as_json: bool) -> None:
    """Process a date range in order, resumable; alerts are aggregated into one summary each.
    On a target with `execution: remote` every date goes through the deployment (triggers to
    the worker service), at most --concurrency dates at once."""
    if _remote(ctx):
        _refuse_local_only(selectors=selectors, excludes=excludes)
        _backfill_remote(ctx, start, end, restart=restart, concurrency=concurrency, timeout=timeout,
                         fast_forward=fast_forward, as_json=as_json)
        return
    from framework.drive.session import backfill

    selected = resolve_selection(ctx, selectors, excludes, required=True)
    with _session(ctx, aggregate_alerts=True) as sess, backfill_output(as_json) as progress:
        rep = backfill(sess, start, end, select=selected, trigger_downstream=trigger_downstream,
                       full=not incremental, restart=restart, progress=progress)
    if as_json:
        click.echo(json.dumps(rep.to_dict(), indent=2))
    else:
        click.echo(f"backfill {rep.backfill_id}: {len(rep.done)} done, {len(rep.skipped)} already done, "
                   f"{len(rep.failed)} failed, {rep.seconds:.1f}s")
        for date, err in rep.failed.items():
            click.echo(f"  failed {date}: {err}")
    if rep.failed:
        raise SystemExit(1)


def _remote(ctx: click.Context) -> bool:
    """The target executes processors remotely (``execution: remote`` in pipectl.yaml)."""
    from framework.config import load_config

    return load_config(project_dir(ctx)).target(target_name(ctx)).remote


def _refuse_local_only(**given: Any) -> None:
    """Options a remote run cannot honour: selection, replays and --full shape every phase's
    dispatch in the local driver, but remote phases are triggered by the orchestrator."""
    flags = {"selectors": "--select", "excludes": "--exclude", "entities": "--entities", "changed": "--changed",
             "sets": "--set", "full": "--full"}
    used = [flags[name] for name, value in given.items() if value]
    if used:
        raise click.UsageError(f"{', '.join(used)} cannot be used with `execution: remote` (the worker service runs "
                               "each phase as the orchestrator dispatches it); run them on a target with "
                               "`execution: local`, e.g. `pipectl --target <local gcp target> run ...`")


def _follow(ctx: click.Context, dates: list[str], quiet: bool, **options: Any) -> list[Any]:
    from framework.drive.remote_target import RemoteTarget

    with RemoteTarget(project_dir(ctx), target_name(ctx)) as remote, run_output(quiet) as progress:
        return remote.run(dates, progress=progress, **options)


def _print_remote(reports: list[Any], as_json: bool) -> None:
    if as_json:
        data = [r.to_dict() for r in reports]
        click.echo(json.dumps(data[0] if len(data) == 1 else data, indent=2))
    else:
        click.echo("\n".join(r.text() for r in reports))
    if any(not r.ok for r in reports):
        raise SystemExit(1)


def _backfill_remote(ctx: click.Context, start: str, end: str, *, restart: bool, as_json: bool, **options: Any) -> None:
    from framework.drive.remote_target import RemoteTarget, date_range

    dates = date_range(start, end)
    with RemoteTarget(project_dir(ctx), target_name(ctx)) as remote, run_output(as_json) as progress:
        reports, skipped = remote.backfill(dates, key_parts=[start, end], restart=restart, progress=progress, **options)
    failed = {r.partition: r.status for r in reports if not r.ok}
    if as_json:
        click.echo(json.dumps({"execution": "remote", "done": [r.partition for r in reports if r.ok],
                               "already_done": skipped, "failed": failed,
                               "runs": [r.to_dict() for r in reports]}, indent=2))
    else:
        click.echo(f"backfill (remote): {len(reports) - len(failed)} done, {len(skipped)} already done, "
                   f"{len(failed)} failed")
        for r in reports:
            if not r.ok:
                click.echo(f"  {r.partition} {r.status}: {'; '.join(r.waiting)[:500]}")
    if failed:
        raise SystemExit(1)


@click.command("trace")
@click.argument("correlation_id")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def trace_cmd(ctx: click.Context, correlation_id: str, as_json: bool) -> None:
    """Print the tree of triggers and runs of a correlation id, raw to prediction."""
    from framework.drive.trace import build_trace, render_tree

    with _session(ctx) as sess:
        tree = build_trace(sess.project, sess.backends.state, correlation_id)
    if not tree.children:
        raise click.ClickException(f"no runs or triggers recorded for correlation id {correlation_id} (see `pipectl history`)")
    click.echo(json.dumps(tree.to_dict(), indent=2, default=str) if as_json else render_tree(tree))


@click.command("history")
@click.option("--processor", default=None, shell_complete=lambda ctx, param, incomplete: PROCESSOR.shell_complete(ctx, param, incomplete),
              help="Only this processor's runs.")
@click.option("--date", "date", default=None, type=PARTITION)
@click.option("--status", default=None, type=click.Choice(["running", *FINAL_STATUSES]))
@click.option("--limit", default=30, show_default=True, type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def history_cmd(ctx: click.Context, processor: str | None, date: str | None, status: str | None, limit: int, as_json: bool) -> None:
    """List processor runs, newest first."""
    import datetime as dt

    from framework.run.history import RunHistory

    with _session(ctx) as sess:
        runs = RunHistory(sess.backends.state).list(processor=processor, partition=date, status=status, limit=limit)
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in runs], indent=2, default=str))
        return
    click.echo(f"{'STARTED':<19} {'PROCESSOR':<34} {'DATE':<10} {'STATUS':<8} {'MODE':<11} {'ENT':>5} {'ROWS':>6} {'TIME':>8}  CORRELATION")
    for r in runs:
        started = dt.datetime.fromtimestamp(r.started_at).strftime("%Y-%m-%d %H:%M:%S")
        took = f"{r.duration_seconds:.3f}s" if r.duration_seconds is not None else "-"
        click.echo(f"{started:<19} {r.processor:<34} {r.partition:<10} {r.status:<8} {r.mode:<11} {r.entities_processed:>5} "
                   f"{r.rows_written:>6} {took:>8}  {r.correlation_id}" + (f"\n    error: {r.error}" if r.error else "")
                   + (f"\n    reason: {r.fallback_reason}" if r.fallback_reason and r.status != "failed" else ""))


@click.command("sample")
@click.option("--date", "date", default=None, type=PARTITION, help="First date (default: the project's sample start).")
@click.option("--days", default=1, show_default=True, type=click.IntRange(1, 3660))
@click.option("--seed", default=42, show_default=True)
@click.pass_context
def sample_cmd(ctx: click.Context, date: str | None, days: int, seed: int) -> None:
    """Generate the project's deterministic sample landing data."""
    from framework.drive.session import default_sample_date, generate_sample

    with _session(ctx) as sess:
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

    with _session(ctx) as sess:
        result = load_source(sess, source, file, replace=replace)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    parts = ", ".join(f"{k}: {v}" for k, v in sorted(result.partitions.items()))
    click.echo(f"loaded {result.rows} rows into {result.table}" + (" (created)" if result.created else "")
               + (" replacing those partitions" if result.replaced else "") + (f" ({parts})" if parts else ""))
