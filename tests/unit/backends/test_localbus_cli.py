"""`pipectl bus setup/status/dead-letters` on the fixture project and the embedded target."""
from __future__ import annotations

import json

from click.testing import CliRunner
from projects import write_project

from framework.backends.localbus import LocalBus
from framework.cli import cli


def run(root, *args):
    result = CliRunner().invoke(cli, ["-p", str(root), *args], catch_exceptions=False)
    return result


def test_setup_creates_topology_then_is_up_to_date(tmp_path):
    root = write_project(tmp_path / "proj")
    first = run(root, "bus", "setup")
    assert first.exit_code == 0, first.output
    assert "created topic: shop-raw-complete" in first.output
    assert "created subscription: shop-raw-complete-orch" in first.output
    again = run(root, "bus", "setup", "--json")
    report = json.loads(again.output)
    assert report["created_topics"] == [] and report["updated_subscriptions"] == []
    assert (root / ".pipectl" / "bus.sqlite").exists()


def test_status_and_dead_letters_show_the_recorded_error(tmp_path):
    root = write_project(tmp_path / "proj")
    run(root, "bus", "setup")
    bus = LocalBus(root / ".pipectl" / "bus.sqlite")
    bus.publish("shop-raw-complete", b"{}", {"processor": "orders_raw"})
    [msg] = bus.pull("shop-raw-complete-orch")
    bus.nack("shop-raw-complete-orch", [msg.ack_id], error="EnvelopeError: missing game_date\nTraceback ...")
    status = run(root, "bus", "status", "shop-raw-complete-orch")
    assert status.exit_code == 0, status.output
    assert "shop-raw-complete-orch (shop-raw-complete): 1 pending" in status.output
    assert "1 attempt(s): EnvelopeError: missing game_date" in status.output
    for _ in range(4):
        [msg] = bus.pull("shop-raw-complete-orch")
        bus.nack("shop-raw-complete-orch", [msg.ack_id], error="EnvelopeError: missing game_date")
    bus.close()
    letters = run(root, "bus", "dead-letters", "--json")
    [letter] = json.loads(letters.output)
    assert (letter["topic"], letter["source_subscription"], letter["delivery_attempt"]) == ("shop-dead-letter", "shop-raw-complete-orch", 5)
    purged = run(root, "bus", "dead-letters", "--purge")
    assert "after 5 attempts: EnvelopeError: missing game_date" in purged.output and "1 dead letter(s) purged" in purged.output
    assert "0 dead letter(s)" in run(root, "bus", "dead-letters").output


def test_unknown_subscription_is_an_error(tmp_path):
    root = write_project(tmp_path / "proj")
    run(root, "bus", "setup")
    from framework.cli import main

    assert main(["-p", str(root), "bus", "status", "nope"]) == 1
