"""`pipectl run` and `backfill`: run stored partitions through the phases, here or on a
remote deployment (``execution: remote``: publish the first trigger and follow).

Thin: parse options, call one function of :mod:`framework.drive.session`, print. Progress
lines go to stderr so ``--json`` output on stdout stays machine-readable. Also the helpers
the other run-time commands share (:mod:`framework.commands.data`, the `trace`/`history` of
:mod:`framework.commands.inspect`): opening the session, the entity-edit options, printing
a run's report.
"""
from __future__ import annotations

import json
from typing import Any

import click

from framework.commands import project_dir, target_name
from framework.commands.types import (ENTITY, EXCLUDE_HELP, PARTITION, PHASE, SELECT_HELP, SELECTION, project_of,
                                      resolve_selection)
from framework.commands.output import backfill_output, run_output

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


def edit_defaults(ctx: click.Context, entity: Any, sets: tuple[str, ...], what: str) -> tuple[Any, dict[str, Any]]:
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


def open_session(ctx: click.Context, aggregate_alerts: bool = False):
    from framework.drive.session import Session

    project_of(ctx)  # loaded once per command and shared (the session and sample hooks reuse it)
    return Session.open(project_dir(ctx), target_name(ctx), aggregate_alerts=aggregate_alerts)


def show_report(report: Any, baseline: dict[str, float] | None, as_json: bool, doc: Any = None) -> None:
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
        _, changes = edit_defaults(ctx, ref, sets, "--changed")
    selected = resolve_selection(ctx, selectors, excludes, required=True)
    _source_names(project_of(ctx), sources_changed)  # before anything is opened or run
    with open_session(ctx) as sess:
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
    show_report(report, baseline, as_json)
    if report.status == "failed":
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
    with open_session(ctx, aggregate_alerts=True) as sess, backfill_output(as_json) as progress:
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
