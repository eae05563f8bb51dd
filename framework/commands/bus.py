"""`pipectl bus ...`: create the topology and look at the bus (pending, dead letters)."""
from __future__ import annotations

import json

import click

from framework.commands import project_dir, target_name


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

    from framework.manifest import load
    from framework.runtime.bus_setup import ensure_topology

    project = load(project_dir(ctx))
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
@click.argument("subscription", required=False)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def status_cmd(ctx: click.Context, subscription: str | None, as_json: bool) -> None:
    """Pending messages per subscription, and why redelivered ones failed."""
    from framework.runtime.bus_setup import bus_status

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
@click.option("--topic", default=None, help="Only this dead-letter topic.")
@click.option("--purge", is_flag=True, help="Forget the listed dead letters after printing them.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def dead_letters_cmd(ctx: click.Context, topic: str | None, purge: bool, as_json: bool) -> None:
    """List messages that used every delivery attempt (local bus)."""
    from framework.errors import BackendError

    bus = _open(ctx)
    try:
        if not hasattr(bus, "dead_letters"):
            raise BackendError(f"{type(bus).__name__} does not keep dead letters itself", hint="pull the dead-letter topic's subscription")
        letters = bus.dead_letters(topic)
        if purge and letters:  # only what was listed: a letter arriving meanwhile is kept
            bus.purge_dead_letters(topic, up_to=max(d.id for d in letters))
    finally:
        bus.close()
    if as_json:
        click.echo(json.dumps([{"id": d.id, "topic": d.topic, "source_subscription": d.source_subscription, "message_id": d.message_id,
                                "attributes": dict(d.attributes), "data": d.data.decode("utf-8", "replace"), "reason": d.reason,
                                "delivery_attempt": d.delivery_attempt, "last_error": d.last_error,
                                "dead_lettered_at": d.dead_lettered_at} for d in letters], indent=2))
        return
    for d in letters:
        first = (d.last_error or "no error recorded (lease expired)").splitlines()[0]
        click.echo(f"{d.topic}: message {d.message_id} from {d.source_subscription} after {d.delivery_attempt} attempts: {first}")
    click.echo(f"{len(letters)} dead letter(s){' purged' if purge else ''}")
