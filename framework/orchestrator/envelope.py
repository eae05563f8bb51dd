"""The envelope: the one message format of completions and triggers.

Every processor run publishes a *completion* envelope; the orchestrator publishes a
*trigger* envelope for the next phase. Both are checked against
``framework/schemas/envelope.schema.json`` when they are built (:func:`make_envelope`) and
when they are received (:func:`decode`), so a missing or renamed field fails loudly at the
edge (FAILURE-MODES 5, 6) instead of being skipped by a consumer. Values that JSON cannot
hold natively (dates, decimals) are converted once here, when the envelope is made, so a
run can never write its data and then die serializing its completion (FAILURE-MODES 17).
"""
from __future__ import annotations

import datetime as _dt
import decimal
import json
import uuid
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

from framework.errors import EnvelopeError

_SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "envelope.schema.json"
STATUSES = ("success", "partial", "no_data", "failed")
COMPLETE_STATUSES = ("success", "partial", "no_data")  # a run that finished (failed did not)
_DEFAULTS: dict[str, Any] = {
    "envelope_version": 1,
    "kind": "completion",
    "parent_correlation_id": None,
    "parent_execution_id": None,
    "root_correlation_id": None,
    "output_dataset": None,
    "output_table": None,
    "record_count": 0,
    "duration_seconds": 0.0,
    "entities_changed": None,
    "trigger_id": None,
    "round": None,
    "error_type": None,
    "error_message": None,
    "metadata": {},
}


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    """The envelope JSON Schema, loaded once from the package data."""
    return json.loads(_SCHEMA_PATH.read_text(encoding="utf-8"))


def _is_datetime(value: Any) -> bool:
    """RFC 3339 date-time (the one format the schema uses); same rule in both validators."""
    if not isinstance(value, str) or "T" not in value:
        return not isinstance(value, str)  # non-strings are the "type" keyword's business
    try:
        _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


@lru_cache(maxsize=1)
def _validator() -> Any:
    """Full validator: collects every error with its path (used to explain a rejection)."""
    import jsonschema

    checker = jsonschema.FormatChecker(formats=())
    checker.checks("date-time")(_is_datetime)
    return jsonschema.Draft202012Validator(schema(), format_checker=checker)


@lru_cache(maxsize=1)
def _fast_validator() -> Any:
    """Compiled validator for the happy path (jsonschema-rs, ~50x faster than jsonschema).
    Formats are not checked by it; ``timestamp`` is checked by :func:`_is_datetime`, the
    same rule the full validator uses. None if jsonschema-rs is missing (the full
    validator then gives the same answers, slower)."""
    try:
        import jsonschema_rs
    except ImportError:
        return None
    return jsonschema_rs.validator_for(schema(), validate_formats=False)


def _is_valid_fast(env: Mapping[str, Any]) -> bool:
    fast = _fast_validator()
    return fast is not None and fast.is_valid(env) and _is_datetime(env.get("timestamp"))


def _plain(value: Any, path: str) -> Any:
    """Convert a value into plain JSON types, or raise naming the offending field."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise EnvelopeError(f"envelope field {path} is {value!r}, which JSON cannot carry", hint="send null or a finite number")
        return value
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, _dt.datetime):
        return value.isoformat()
    if isinstance(value, _dt.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [_plain(v, f"{path}[{i}]") for i, v in enumerate(items)]
    raise EnvelopeError(
        f"envelope field {path} has a value of type {type(value).__name__} that cannot be serialized",
        hint="convert it to str/int/float/list/dict before building the envelope",
    )


def now_iso(ts: float | None = None) -> str:
    """An RFC 3339 UTC timestamp (what the schema's ``timestamp`` expects)."""
    moment = _dt.datetime.fromtimestamp(ts, _dt.timezone.utc) if ts is not None else _dt.datetime.now(_dt.timezone.utc)
    return moment.isoformat().replace("+00:00", "Z")


def make_envelope(**fields: Any) -> dict[str, Any]:
    """Build a valid envelope: fills defaults, ``execution_id``, ``correlation_id``,
    ``root_correlation_id`` and ``timestamp``; copies ``game_date`` to ``partition`` (and
    back when ``partition_column`` is ``game_date``); validates. Raises EnvelopeError."""
    env: dict[str, Any] = {**_DEFAULTS, "metadata": {}}
    env.update(fields)
    if env.get("partition") is None and env.get("game_date") is not None:
        env["partition"] = env["game_date"]
    if env.get("partition_column") == "game_date" and env.get("game_date") is None:
        env["game_date"] = env.get("partition")
    env.setdefault("execution_id", None)
    env["execution_id"] = env["execution_id"] or uuid.uuid4().hex
    env.setdefault("correlation_id", None)
    env["correlation_id"] = env["correlation_id"] or uuid.uuid4().hex
    env["root_correlation_id"] = env.get("root_correlation_id") or env["correlation_id"]
    if not env.get("timestamp"):
        env["timestamp"] = now_iso()
    return validate_envelope(_plain(env, "envelope"))


def validate_envelope(envelope: Any) -> dict[str, Any]:
    """Check an envelope against the schema and its cross-field rules; return it.

    Raises EnvelopeError with every reason found (field path + message)."""
    if not isinstance(envelope, Mapping):
        raise EnvelopeError(f"an envelope must be a JSON object, got {type(envelope).__name__}")
    env = dict(envelope)
    probe, reasons = _entity_probe(env)
    if not reasons and _is_valid_fast(probe):
        errors = []
    else:
        errors = sorted(_validator().iter_errors(probe), key=lambda e: list(e.absolute_path))
    reasons = [f"{'/'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}" for e in errors] + reasons
    game_date = env.get("game_date")
    if game_date is not None and env.get("partition") is not None and game_date != env["partition"]:
        reasons.append(f"game_date: {game_date!r} differs from partition {env['partition']!r}")
    if reasons:
        raise EnvelopeError(
            "invalid envelope: " + "; ".join(reasons[:8]) + (f"; and {len(reasons) - 8} more" if len(reasons) > 8 else ""),
            hint="see framework/schemas/envelope.schema.json for the field names and types",
        )
    return env


def _entity_probe(env: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Entity id lists can hold thousands of ids; jsonschema checking each one costs
    milliseconds per message. The schema checks the shape on the first id of each list
    and this loop checks the type of every other id, with the same rule (string or
    integer, never bool or float)."""
    entities = env.get("entities_changed")
    if not isinstance(entities, Mapping):
        return env, []
    reasons: list[str] = []
    sample: dict[str, Any] = {}
    for kind, ids in entities.items():
        if isinstance(ids, list) and len(ids) > 1:
            sample[kind] = ids[:1]
            for i, value in enumerate(ids[1:], start=1):
                if not (isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))):
                    reasons.append(f"entities_changed/{kind}/{i}: {value!r} is not of type 'string', 'integer'")
                    break
        else:
            sample[kind] = ids
    return {**env, "entities_changed": sample}, reasons


def encode(envelope: Mapping[str, Any]) -> bytes:
    """Validate and serialize (publishing an invalid envelope is an error)."""
    return serialize(validate_envelope(_plain(dict(envelope), "envelope")))


def serialize(envelope: dict[str, Any]) -> bytes:
    """The bytes of an envelope just returned by :func:`make_envelope` (plain JSON values,
    checked there), without converting and checking it a second time as :func:`encode`
    does: a run's completion and a trigger are built and sent at once, and each of the 26
    messages of a one-entity update was checked three times (built, encoded, received).
    Anything else, or an envelope changed after it was made, goes through :func:`encode`;
    the receiver checks every message again (:func:`decode`)."""
    return json.dumps(envelope, sort_keys=True, separators=(",", ":")).encode("utf-8")


def decode(data: bytes | str | Mapping[str, Any]) -> dict[str, Any]:
    """Parse and validate a received envelope; raises EnvelopeError with the reason."""
    if isinstance(data, Mapping):
        return validate_envelope(data)
    try:
        text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
        parsed = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EnvelopeError(f"message is not a JSON envelope: {exc}", hint="publish with framework.orchestrator.envelope.encode") from exc
    return validate_envelope(parsed)


def entity_counts(entities: Mapping[str, Any] | None) -> dict[str, int] | None:
    """How many ids per kind an ``entities_changed`` value names (None = everything)."""
    if entities is None:
        return None
    return {kind: (v["count"] if isinstance(v, Mapping) else len(v)) for kind, v in entities.items()}
