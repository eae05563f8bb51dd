"""Partition values, parsed by the project's partition type (``partition.type``).

One parser for every door a partition comes in by: CLI options (``--date``, ``--from``,
``--to``: see :mod:`framework.commands.types`) and envelopes checked by the orchestrator.
Without it ``run --date tomorrow`` ran twelve processors against a partition named
"tomorrow" and recorded it in history, and ``backfill --from 2025-13-01`` printed a
traceback. The canonical text is what is stored and compared (``2025-01-05``, ``42``).
"""
from __future__ import annotations

import datetime as dt
import re

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_INT = re.compile(r"-?\d{1,18}\Z")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
MAX_STRING = 256

EXAMPLES = {"DATE": "2025-01-31", "INT64": "20250131", "TIMESTAMP": "2025-01-31T00:00:00Z", "STRING": "eu-west"}


def parse_partition(value: object, partition_type: str = "DATE") -> str:
    """The canonical text of ``value`` as a partition of ``partition_type``; ValueError
    with a message that says what was expected otherwise."""
    text = str(value).strip() if value is not None else ""
    expected = f"a {partition_type} partition like {EXAMPLES.get(partition_type, '...')}"
    if not text:
        raise ValueError(f"an empty partition; expected {expected}")
    if partition_type == "DATE":
        if not _DATE.match(text):
            raise ValueError(f"{text!r} is not a date; expected {expected} (YYYY-MM-DD)")
        try:
            return dt.date.fromisoformat(text).isoformat()
        except ValueError as exc:
            raise ValueError(f"{text!r} is not a date ({exc}); expected {expected}") from None
    if partition_type == "INT64":
        if not _INT.match(text):
            raise ValueError(f"{text!r} is not an integer; expected {expected}")
        return str(int(text))
    if partition_type == "TIMESTAMP":
        try:
            stamp = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{text!r} is not a timestamp; expected {expected} (ISO 8601)") from None
        return stamp.isoformat() if stamp.tzinfo else text
    if _CONTROL.search(text) or len(text) > MAX_STRING or "/" in text:
        raise ValueError(f"{text[:40]!r} is not a usable partition name: at most {MAX_STRING} characters, "
                         "no control characters or '/'")
    return text
