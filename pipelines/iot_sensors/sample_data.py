"""Deterministic sample readings for the IoT example (a DuckDB connection or a Warehouse).

``generate(target, start_day, days=1, seed=7, sites=4, sensors_per_site=10)`` writes the two
landing tables declared in this project's ``processors.yaml``: a reading every 15 minutes per
sensor, with the faults the transforms are there to catch: duplicate uploads, impossible
glitch values, a sensor next to a radiator (hot), one that went offline for the afternoon,
and a few flat batteries. Same seed -> same rows; a date's rows depend only on (seed, date).
"""
from __future__ import annotations

import math
import random
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent
# What `pipectl simulate update`, `pipectl run --changed` and `pipectl demo` change when not
# told otherwise: one sensor starts reading hot (the anomaly flags should catch it).
UPDATE_DEFAULTS = {
    "entity": "sensor_id=S-0003",
    "set": {"temperature_c": 35.5},
    "kinds": ["sensor"],
}
DEFAULT_START = date(2025, 3, 3)  # `pipectl sample` without --date
DUCK_TYPES = {"STRING": "VARCHAR", "INT64": "BIGINT", "FLOAT64": "DOUBLE", "BOOL": "BOOLEAN", "DATE": "DATE", "TIMESTAMP": "TIMESTAMP"}


def generate(target: Any, start_day: date | str, days: int = 1, seed: int = 7, sites: int = 4, sensors_per_site: int = 10) -> dict[str, int]:
    """(Re)write ``days`` days of registry rows and readings; returns rows written per table."""
    from framework.project import load

    start = date.fromisoformat(start_day) if isinstance(start_day, str) else start_day
    project = load(PROJECT_ROOT)
    tables = {s.table.name: s.table for s in project.sources.values()}
    last = start + timedelta(days=days - 1)
    for table in tables.values():
        _prepare(target, table, start, last)
    sensors = [(f"S-{s * sensors_per_site + k:04d}", f"BLD-{s + 1:02d}", f"room {100 * (s + 1) + k}") for s in range(sites) for k in range(sensors_per_site)]
    registry, readings = [], []
    for offset in range(days):
        day = start + timedelta(days=offset)
        rng = random.Random(f"iot:{seed}:{day.isoformat()}")
        hot, offline = rng.choice(sensors)[0], rng.choice(sensors)[0]
        for sensor_id, site_id, room in sensors:
            registry.append((day, sensor_id, site_id, room, "TH-200" if int(sensor_id[2:]) % 3 else "TH-300"))
            base = 21.0 + (int(site_id[4:]) - 2) * 0.8 + (6.0 if sensor_id == hot else 0.0)
            battery = 2.4 if int(sensor_id[2:]) % 17 == 0 else 3.0 - 0.001 * offset
            for q in range(96):
                if sensor_id == offline and q >= 40:
                    break
                ts = datetime(day.year, day.month, day.day) + timedelta(minutes=15 * q)
                temp = round(base + 2.0 * math.sin((q - 36) / 96 * 2 * math.pi) + rng.gauss(0, 0.3), 2)
                if rng.random() < 0.002:
                    temp = 200.0  # a glitch the cleaning step drops
                row = (day, sensor_id, ts, temp, round(45 + rng.gauss(0, 4), 1), round(battery + rng.gauss(0, 0.01), 3))
                readings.append(row)
                if rng.random() < 0.01:
                    readings.append(row)  # a duplicate upload
    _insert(target, tables["sensor_registry"], registry)
    _insert(target, tables["readings"], readings)
    return {"sensor_registry": len(registry), "readings": len(readings)}


def apply_update(warehouse: Any, day: date | str, sensor_id: str, table: str = "readings", **changes: Any) -> int:
    """Set ``changes`` (column=value) on one sensor's rows of ``table`` (a landing table of
    this project: ``readings`` or ``sensor_registry``) for ``day``, e.g. ``pipectl simulate
    update --date 2025-03-03 --entity sensor_id=S-0003 --set temperature_c=35.5``. Raises
    ValueError for an unknown table or column, or when the sensor has no row that day."""
    from framework.project import load
    from framework.drive.landing import update_entity

    tables = {s.table.name: s.table for s in load(PROJECT_ROOT).sources.values()}
    if table not in tables:
        raise ValueError(f"unknown landing table '{table}'; one of: {', '.join(sorted(tables))}")
    day = date.fromisoformat(day) if isinstance(day, str) else day
    return update_entity(warehouse, tables[table], {"day": day, "sensor_id": sensor_id}, changes)


def _is_warehouse(target: Any) -> bool:
    return hasattr(target, "insert_rows") and hasattr(target, "dialect")


def _prepare(target: Any, table: Any, first: date, last: date) -> None:
    """Create the landing table if needed and delete the rows of the dates about to be written."""
    if _is_warehouse(target):
        from framework.backends.protocols import QueryParam

        target.create_dataset(table.dataset)
        if target.table_schema(table.fqn) is None:
            target.create_table(table)
        from framework.sql.dialects import get_dialect

        ph = get_dialect(target.dialect).param
        target.query(f"DELETE FROM {table.fqn} WHERE day BETWEEN {ph('a')} AND {ph('b')}",
                     [QueryParam("a", first, "DATE"), QueryParam("b", last, "DATE")])
        return
    target.execute(f"CREATE SCHEMA IF NOT EXISTS {table.dataset}")
    cols = ", ".join(f"{c.name} {DUCK_TYPES[c.type]}" for c in table.columns)
    target.execute(f"CREATE TABLE IF NOT EXISTS {table.fqn} ({cols})")
    target.execute(f"DELETE FROM {table.fqn} WHERE day BETWEEN $a AND $b", {"a": first, "b": last})


def _insert(target: Any, table: Any, rows: list[tuple]) -> None:
    """Columnar insert (one UNNEST per column on DuckDB): far faster than executemany."""
    if not rows:
        return
    if _is_warehouse(target):
        target.insert_rows(table.fqn, [dict(zip(table.column_names, row)) for row in rows])
        return
    unnest = ", ".join(f"UNNEST(${i + 1}::{DUCK_TYPES[c.type]}[])" for i, c in enumerate(table.columns))
    target.execute(f"INSERT INTO {table.fqn} SELECT {unnest}", [list(col) for col in zip(*rows)])
