"""Sample rows for this project's landing table: the hooks behind `pipectl sample` and
`pipectl simulate update`. Real rows come from your ingestion job, or from a file with
`pipectl load orders_landing orders.csv`; change or delete this file as you like.

pipectl imports it from the project folder (no PYTHONPATH needed).
"""
from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from typing import Any

from framework.drive.landing import update_entity, write_rows

PROJECT = Path(__file__).resolve().parent
SOURCE = "orders_landing"
DEFAULT_START = dt.date(2025, 1, 1)  # `pipectl sample` without --date
CUSTOMERS, STORES = 20, 3
# `pipectl simulate update` / `run --changed` without --set change this; apply_update edits
# customers only (an entity of another kind is refused before anything runs). Add
# "entity": "customer_id=c4" to make --entity optional (and `pipectl demo --yes` possible).
UPDATE_DEFAULTS = {"set": {"amount": 99}, "kinds": ["customer"]}


def _table() -> Any:
    from framework.project import load

    return load(PROJECT).sources[SOURCE].table


def generate(warehouse: Any, start_date: dt.date | str, days: int = 1, seed: int = 42) -> dict[str, int]:
    """(Re)write ``days`` days of orders from ``start_date``: one order per customer and day,
    each customer always at the same store. Same seed and date, same rows."""
    start = dt.date.fromisoformat(str(start_date))
    rows = []
    for k in range(days):
        day = start + dt.timedelta(days=k)
        rng = random.Random(f"{seed}:{day.isoformat()}")
        rows += [{"day": day, "customer_id": f"c{i}", "store_id": f"s{i % STORES}", "amount": round(rng.uniform(5, 100), 2)}
                 for i in range(CUSTOMERS)]
    write_rows(warehouse, _table(), rows, replace_partitions_of="day")
    return {"orders": len(rows)}


def apply_update(warehouse: Any, day: dt.date | str, entity_id: str, table: str | None = None, **changes: Any) -> int:
    """Change one customer's orders of one day, e.g. ``pipectl simulate update --date
    2025-01-01 --entity customer_id=c4 --set amount=99``. Raises ValueError when nothing matches."""
    if table not in (None, SOURCE, "orders"):
        raise ValueError(f"this project's sample hook edits only {SOURCE}, not {table}")
    return update_entity(warehouse, _table(), {"day": day, "customer_id": entity_id}, changes)
