"""The envelope contract: built valid, rejected loudly when a field is missing or renamed."""
from __future__ import annotations

import datetime as dt
import decimal
import json

import pytest

from framework.errors import EnvelopeError
from framework.orchestrator.envelope import decode, encode, make_envelope, serialize, validate_envelope


def base(**kw):
    return make_envelope(processor_name="r1", phase="raw", partition="2026-11-28", status="success", **kw)


def test_make_envelope_fills_ids_and_timestamps():
    env = base(partition_column="game_date")
    assert env["execution_id"] and env["correlation_id"] and env["timestamp"].endswith("Z")
    assert env["root_correlation_id"] == env["correlation_id"]
    assert env["game_date"] == "2026-11-28" and env["kind"] == "completion"


def test_game_date_alone_sets_the_partition():
    env = make_envelope(processor_name="r1", phase="raw", game_date="2026-11-28", status="success")
    assert env["partition"] == "2026-11-28"


def test_game_date_must_equal_the_partition():
    env = base()
    env["game_date"] = "2026-11-27"
    with pytest.raises(EnvelopeError, match="game_date"):
        validate_envelope(env)


def test_round_trip_through_bytes():
    env = base(entities_changed={"player": ["a", "b"], "team": {"ref": "set-1", "count": 900}})
    assert decode(encode(env)) == env


def test_serialize_gives_the_bytes_encode_gives_for_a_made_envelope(monkeypatch):
    """A completion or trigger is sent right after it is made (and checked): serialize gives
    encode's bytes without checking it again; the receiver still checks (decode)."""
    env = base(entities_changed={"player": ["a", "b"]}, game_date=dt.date(2026, 11, 28), record_count=decimal.Decimal(3))
    assert serialize(env) == encode(env)
    import framework.orchestrator.envelope as envelope

    calls = []
    monkeypatch.setattr(envelope, "validate_envelope", lambda e: calls.append(e) or e)
    serialize(env)
    assert calls == []
    data = serialize({**env, "status": "finished"})  # changed after it was made: not checked here...
    monkeypatch.undo()
    with pytest.raises(EnvelopeError, match="status"):  # ...but by whoever receives it
        decode(data)


def test_renamed_field_is_rejected_loudly():  # FAILURE-MODES 6
    env = base()
    env["completion_percentage"] = 100
    with pytest.raises(EnvelopeError, match="completion_percentage"):
        validate_envelope(env)


def test_missing_required_field_is_rejected():  # FAILURE-MODES 5
    env = base()
    del env["execution_id"]
    with pytest.raises(EnvelopeError, match="execution_id"):
        decode(json.dumps(env).encode())


def test_failed_status_requires_an_error_type():
    with pytest.raises(EnvelopeError, match="error_type"):
        make_envelope(processor_name="r1", phase="raw", partition="d", status="failed")
    env = make_envelope(processor_name="r1", phase="raw", partition="d", status="failed", error_type="ValueError")
    assert env["status"] == "failed"


def test_unknown_status_is_rejected():
    with pytest.raises(EnvelopeError, match="status"):
        make_envelope(processor_name="r1", phase="raw", partition="d", status="done")


def test_trigger_kind_requires_trigger_id_and_round():
    with pytest.raises(EnvelopeError, match="trigger_id|round"):
        make_envelope(kind="trigger", processor_name="orchestrator:raw", phase="analytics", partition="d", status="success")


def test_not_json_is_rejected_with_a_reason():
    with pytest.raises(EnvelopeError, match="not a JSON envelope"):
        decode(b"\xff not json")
    with pytest.raises(EnvelopeError, match="JSON object"):
        decode(b"[1, 2]")


def test_dates_and_decimals_are_converted_when_the_envelope_is_made():
    env = base(record_count=decimal.Decimal("12"), metadata={"at": dt.datetime(2026, 11, 28, 12, 0), "d": dt.date(2026, 11, 28),
                                                              "ratio": decimal.Decimal("0.5")})
    assert env["record_count"] == 12 and env["metadata"]["d"] == "2026-11-28" and env["metadata"]["ratio"] == 0.5
    assert decode(encode(env))["metadata"]["at"] == "2026-11-28T12:00:00"


def test_unserializable_values_fail_at_make_time_naming_the_field():
    with pytest.raises(EnvelopeError, match=r"metadata\.obj"):
        base(metadata={"obj": object()})
    with pytest.raises(EnvelopeError, match="nan"):
        base(duration_seconds=float("nan"))


def test_bad_entity_kind_names_and_values_are_rejected():
    with pytest.raises(EnvelopeError):
        base(entities_changed={"player": [1.5]})
    with pytest.raises(EnvelopeError):
        base(entities_changed={"bad kind": ["a"]})


def test_fast_and_full_validators_agree():
    from framework.orchestrator import envelope as mod

    good = base(entities_changed={"player": ["a", 2], "team": {"ref": "s", "count": 3}})
    variants = [good, {**good, "status": "failed"}, {**good, "kind": "trigger"}, {**good, "record_count": -1},
                {**good, "extra": 1}, {**good, "timestamp": "not a time"}, {**good, "entities_changed": {"p": [True]}},
                {**good, "round": 0}, {**good, "metadata": []}, {**good, "partition": ""}]
    for env in variants:
        full_ok = not list(mod._validator().iter_errors(env))
        assert mod._is_valid_fast(env) == full_ok, env


def test_publishing_an_invalid_envelope_is_an_error():
    env = base()
    env["status"] = "ok"
    with pytest.raises(EnvelopeError, match="status"):
        encode(env)
