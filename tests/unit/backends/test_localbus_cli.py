"""`pipectl bus setup/status/dead-letters` on the fixture project and the embedded target."""
from __future__ import annotations

import json

from click.testing import CliRunner
from projects import write_project

from framework.backends.localbus import LocalBus
from framework.backends.protocols import SubscriptionConfig
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
    assert (letter["dead_letter_topic"], letter["source_subscription"], letter["delivery_attempt"]) == ("shop-dead-letter", "shop-raw-complete-orch", 5)
    assert letter["source_topic"] == "shop-raw-complete" and letter["attributes"]["processor"] == "orders_raw"
    purged = run(root, "bus", "dead-letters", "--purge")
    assert "5 delivery attempts failed; last error: EnvelopeError: missing game_date" in purged.output
    assert "1 dead letter(s) purged" in purged.output
    assert "0 dead letter(s)" in run(root, "bus", "dead-letters").output


def test_unknown_subscription_is_an_error(tmp_path):
    root = write_project(tmp_path / "proj")
    run(root, "bus", "setup")
    from framework.cli import main

    assert main(["-p", str(root), "bus", "status", "nope"]) == 2  # a subscription topics.yaml does not declare: a usage error (framework.commands.types)


def test_rejected_message_is_listed_with_its_reason_and_replayed_exactly_once(tmp_path):
    """A consumer that rejects a message (an invalid trigger: `pipectl run` publishes it
    straight to the dead-letter topic) makes it a dead letter with the reason; after the fix
    `replay-dead-letters --id` republishes it to its source topic once, without the
    dead-letter attributes."""
    root = write_project(tmp_path / "proj")
    run(root, "bus", "setup")
    bus = LocalBus(root / ".pipectl" / "bus.sqlite")
    bus.create_subscription(SubscriptionConfig("observer", "shop-raw-complete"))
    bus.publish("shop-dead-letter", b'{"bad": 1}', {"processor": "orders_raw", "rejected_by": "pipectl run",
                                                    "rejected_from": "shop-raw-complete-orch", "error": "missing field partition"})
    listed = run(root, "bus", "dead-letters")
    assert "rejected by pipectl run: missing field partition" in listed.output and "1 dead letter(s)" in listed.output
    [letter] = json.loads(run(root, "bus", "dead-letters", "--json").output)
    assert (letter["source_subscription"], letter["source_topic"]) == ("shop-raw-complete-orch", "shop-raw-complete")
    from framework.cli import main

    assert main(["-p", str(root), "bus", "replay-dead-letters", "--id", "999"]) == 1  # unknown id: refused
    replayed = run(root, "bus", "replay-dead-letters", "--id", letter["id"])
    assert replayed.exit_code == 0, replayed.output
    assert "replayed [1] to shop-raw-complete" in replayed.output and "1 dead letter(s) replayed" in replayed.output
    assert "0 dead letter(s) replayed" in run(root, "bus", "replay-dead-letters").output
    got = bus.pull("observer")
    assert [(m.data, m.attributes) for m in got] == [(b'{"bad": 1}', {"processor": "orders_raw", "pipectl_replay_of": f"shop-dead-letter/{letter['message_id']}"})]
    assert "0 dead letter(s)" in run(root, "bus", "dead-letters").output
    bus.close()


def test_replay_by_source_subscription_keeps_the_others(tmp_path):
    root = write_project(tmp_path / "proj")
    run(root, "bus", "setup")
    bus = LocalBus(root / ".pipectl" / "bus.sqlite")
    for sub in ("shop-raw-complete-orch", "elsewhere"):
        bus.publish("shop-dead-letter", sub.encode(), {"rejected_by": "test", "rejected_from": sub, "source_topic": "shop-raw-complete"})
    out = run(root, "bus", "replay-dead-letters", "--subscription", "shop-raw-complete-orch")
    assert "1 dead letter(s) replayed" in out.output, out.output
    assert [d.source_subscription for d in bus.dead_letters()] == ["elsewhere"]
    bus.close()
