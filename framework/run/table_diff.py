"""Compare two sets of rows of one table: order-insensitive, key-aware, float-tolerant.

Used by ``pipectl verify`` to compare what incremental runs left in an output table with a
from-scratch recompute. Rows are grouped by the entity key (when the table has one), each
group compared as a multiset; floats match within a tolerance (absolute or relative), NaN
equals NaN. A group that differs yields side-by-side samples naming the differing columns.
Pure functions over row dicts: no warehouse here, so it is tested without one.
"""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Iterable, Mapping, Sequence


@dataclass
class RowPair:
    """One differing row: its key, the incremental and full versions (None if absent)."""

    key: dict[str, Any]
    incremental: dict[str, Any] | None
    full: dict[str, Any] | None
    columns: list[str] = field(default_factory=list)  # differing columns of a changed row

    def to_dict(self) -> dict[str, Any]:
        return {"key": _jsonable(self.key), "incremental": _jsonable(self.incremental), "full": _jsonable(self.full),
                "columns": self.columns}


@dataclass
class RowDiff:
    """Counts of a comparison: ``changed`` rows exist on both sides under one key with other
    values; ``only_incremental`` / ``only_full`` rows have no counterpart at all."""

    incremental_rows: int = 0
    full_rows: int = 0
    keys: int = 0
    keys_differing: int = 0
    changed: int = 0
    only_incremental: int = 0
    only_full: int = 0
    samples: list[RowPair] = field(default_factory=list)

    @property
    def equal(self) -> bool:
        return self.keys_differing == 0 and self.incremental_rows == self.full_rows


def close(a: Any, b: Any, tolerance: float) -> bool:
    """Equal, or both numbers within ``tolerance`` (absolute, or relative for big values)."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, (float, Decimal)) or isinstance(b, (float, Decimal)):
        try:
            x, y = float(a), float(b)
        except (TypeError, ValueError):
            return a == b
        if math.isnan(x) or math.isnan(y):
            return math.isnan(x) and math.isnan(y)
        return math.isclose(x, y, rel_tol=tolerance, abs_tol=tolerance)
    return a == b


def _canonical(value: Any, digits: int) -> Any:
    if isinstance(value, (float, Decimal)):
        x = float(value)
        return "nan" if math.isnan(x) else round(x, digits)
    return value


def diff_rows(incremental: Iterable[Mapping[str, Any]], full: Iterable[Mapping[str, Any]], columns: Sequence[str],
              key_columns: Sequence[str] = (), tolerance: float = 1e-9, sample: int = 3) -> RowDiff:
    """Compare two row sets over ``columns``, grouped by ``key_columns``."""
    digits = max(0, int(-math.floor(math.log10(tolerance)))) if tolerance > 0 else 12
    groups: dict[tuple, tuple[list, list]] = defaultdict(lambda: ([], []))
    out = RowDiff()
    for side, rows in ((0, incremental), (1, full)):
        for row in rows:
            values = tuple(row.get(c) for c in columns)
            key = tuple(_canonical(row.get(k), digits) for k in key_columns)
            groups[key][side].append(values)
            if side == 0:
                out.incremental_rows += 1
            else:
                out.full_rows += 1
    out.keys = len(groups)
    for key in sorted(groups, key=repr):
        inc, ref = groups[key]
        left, right = _unmatched(inc, ref, digits, tolerance)
        if not left and not right:
            continue
        out.keys_differing += 1
        left.sort(key=repr)
        right.sort(key=repr)
        pairs = min(len(left), len(right))
        out.changed += pairs
        out.only_incremental += len(left) - pairs
        out.only_full += len(right) - pairs
        first = (inc or ref)[0]
        key_dict = {k: first[columns.index(k)] for k in key_columns if k in columns}
        for i in range(max(len(left), len(right))):
            if len(out.samples) >= sample:
                break
            a = dict(zip(columns, left[i])) if i < len(left) else None
            b = dict(zip(columns, right[i])) if i < len(right) else None
            cols = [c for c in columns if a is not None and b is not None and not close(a[c], b[c], tolerance)]
            out.samples.append(RowPair(key_dict, a, b, cols))
    return out


def _unmatched(inc: list[tuple], ref: list[tuple], digits: int, tolerance: float) -> tuple[list[tuple], list[tuple]]:
    """Rows of each side without a counterpart: exact (canonical) matches first, then pairs
    within tolerance (values that round differently at the tolerance's last digit)."""
    canon = lambda row: tuple(_canonical(v, digits) for v in row)  # noqa: E731
    counts = Counter(canon(r) for r in ref)
    left: list[tuple] = []
    for row in inc:
        c = canon(row)
        if counts[c] > 0:
            counts[c] -= 1
        else:
            left.append(row)
    if not left and not any(counts.values()):
        return [], []
    right: list[tuple] = []
    for row in ref:  # as many rows of each canonical form as were left unmatched
        c = canon(row)
        if counts[c] > 0:
            counts[c] -= 1
            right.append(row)
    still: list[tuple] = []
    for row in left:
        match = next((i for i, r in enumerate(right) if all(close(a, b, tolerance) for a, b in zip(row, r))), None)
        if match is None:
            still.append(row)
        else:
            right.pop(match)
    return still, right


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, Decimal):
        return float(value)
    return value.isoformat() if hasattr(value, "isoformat") else str(value)
