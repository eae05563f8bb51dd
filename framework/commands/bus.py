"""`pipectl bus ...`: create the topology and look at the bus (pending, dead letters)."""
from __future__ import annotations

import json

import click

from framework.commands import project_dir, target_name
from framework.commands.types import SUBSCRIPTION, TOPIC


def _open(ctx: click.Context):
    from framework.backends.registry import open_bus

    return open_bus(project_dir(ctx), target_name(ctx))


@click.group("bus")
def bus_cmd() -> None:
    """Bus topology and status (topics.yaml on the target's bus)."""


@bus_cmd.command("setup")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def setup_cmd(ctx: click.Context, as_json: bool) -> None:
    """Create/update the topics and subscriptions of topics.yaml (idempotent, never deletes)."""
    from dataclasses import asdict

    from framework.backends.registry import target_project
    from framework.config import load_config
    from framework.drive.bus_setup import ensure_topology
    from framework.errors import ConfigError

    target = load_config(project_dir(ctx)).target(target_name(ctx))
    if target.remote:  # topics.yaml alone would turn the worker's push subscriptions back to pull
        raise ConfigError(f"target '{target.name}' executes remotely: its trigger and task subscriptions push to the "
                          "worker, which `bus setup` (topics.yaml only) would undo",
                          hint=f"use `pipectl --target {target.name} plan` / `apply`: they manage the push subscriptions")
    project = target_project(project_dir(ctx), target)
    bus = _open(ctx)
    try:
        report = ensure_topology(bus, project)
    finally:
        bus.close()
    if as_json:
        click.echo(json.dumps(asdict(report), indent=2))
        return
    for label, names in (("created topic", report.created_topics), ("created subscription", report.created_subscriptions),
                         ("updated subscription", report.updated_subscriptions)):
        for name in names:
            click.echo(f"{label}: {name}")
    for name in report.orphan_subscriptions:
        click.echo(f"warning: subscription {name} is not declared in topics.yaml (orphans deliver twice; remove it with `pipectl apply`)")
    if not report.changed:
        click.echo("ok: bus topology up to date")


@bus_cmd.command("status")
@click.argument("subscription", required=False, type=SUBSCRIPTION)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def status_cmd(ctx: click.Context, subscription: str | None, as_json: bool) -> None:
    """Pending messages per subscription, and why redelivered ones failed."""
    from framework.drive.bus_setup import bus_status

    bus = _open(ctx)
    try:
        rows = bus_status(bus, subscription)
    finally:
        bus.close()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        click.echo(f"{row['subscription']} ({row['topic']}): {row['pending']} pending")
        for m in row["retrying"]:
            click.echo(f"  message {m['message_id']}: {m['attempts']} attempt(s){' (leased)' if m['leased'] else ''}: {m['last_error'] or 'lease expired'}")


@bus_cmd.command("dead-letters")
@click.option("--topic", default=None, type=TOPIC, help="Only this dead-letter topic.")
@click.option("--purge", is_flag=True, help="Forget the listed dead letters after printing them (local bus).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def dead_letters_cmd(ctx: click.Context, topic: str | None, purge: bool, as_json: bool) -> None:
    """List dead letters with their attributes, delivery count and reason.

    Local bus: its dead_letters table (messages that used every delivery attempt, and
    messages a consumer rejected). Pub/Sub: the messages on each dead-letter topic's
    `<topic>-pipectl` subscription (managed by `pipectl apply`), left in place."""
    from framework.backends.registry import open_backends, target_project
    from framework.errors import ConfigError
    from framework.drive.dead_letters import list_dead_letters

    with open_backends(project_dir(ctx), target_name(ctx)) as backends:
        project = target_project(project_dir(ctx), backends.target)
        bus = backends.bus
        local = hasattr(bus, "dead_letters")
        if purge and not local:
            raise ConfigError("--purge works on the local bus only", hint="on Pub/Sub, replay them or seek the -pipectl subscription")
        unreadable: list[str] = []
        letters = list_dead_letters(bus, project, backends.state, topic, unreadable)
        if purge and letters:  # only what was listed: a letter arriving meanwhile is kept
            bus.purge_dead_letters(topic, up_to=max(int(d.id) for d in letters))
    _warn_unreadable(unreadable)
    if as_json:
        click.echo(json.dumps([d.to_dict() for d in letters], indent=2))
        return
    for d in letters:
        src = f"from {d.source_subscription}" if d.source_subscription else f"to {d.dead_letter_topic}"
        click.echo(f"{d.dead_letter_topic}: [{d.id}] message {d.message_id} {src}: {d.reason}")
        attrs = {k: v for k, v in d.attributes.items() if not k.startswith("CloudPubSub")}
        if attrs:
            click.echo("    attributes: " + ", ".join(f"{k}={v}" for k, v in sorted(attrs.items()))[:500])
    click.echo(f"{len(letters)} dead letter(s){' purged' if purge else ''}"
               + ("; replay them after the fix with `pipectl bus replay-dead-letters`" if letters and not purge else ""))


@bus_cmd.command("replay-dead-letters")
@click.option("--subscription", default=None, help="Only those this subscription gave up on (or of this -pipectl subscription).")
@click.option("--id", "letter_id", default=None, help="Only this dead letter (the id `pipectl bus dead-letters` shows).")
@click.option("--topic", default=None, help="Only this dead-letter topic.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def replay_dead_letters_cmd(ctx: click.Context, subscription: str | None, letter_id: str | None, topic: str | None, as_json: bool) -> None:
    """Republish dead letters to the topic they came from, each exactly once (after the fix)."""
    from framework.backends.registry import open_backends, target_project
    from framework.drive.dead_letters import replay_dead_letters

    with open_backends(project_dir(ctx), target_name(ctx)) as backends:
        project = target_project(project_dir(ctx), backends.target)
        bus = backends.bus
        state = None if hasattr(bus, "dead_letters") else backends.state
        unreadable: list[str] = []
        done = replay_dead_letters(bus, project, state, subscription=subscription, letter_id=letter_id, topic=topic,
                                   unreadable=unreadable)
    _warn_unreadable(unreadable)
    if as_json:
        click.echo(json.dumps([r.__dict__ for r in done], indent=2))
        return
    for r in done:
        click.echo(f"replayed [{r.id}] to {r.to_topic} as message {r.new_message_id}" if r.new_message_id
                   else f"[{r.id}] was replayed before; acknowledged")
    click.echo(f"{sum(1 for r in done if r.new_message_id)} dead letter(s) replayed")


def _warn_unreadable(topics: list[str]) -> None:
    for name in topics:  # stderr: --json output stays machine-readable
        click.echo(f"warning: dead-letter topic {name} has no subscription {name}-pipectl, so its dead letters cannot be read; "
                   "run `pipectl apply` (it manages one per dead-letter topic)", err=True)
