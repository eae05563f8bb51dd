"""Phase 6: export the day's predictions as a JSON file (a Python transform, no table).

The file is a per-date artifact, so an incremental run (a few players changed) still reads
every prediction of the date and rewrites the whole file: the export after an incremental run
is the same as after a full batch. It is written to a temporary file and renamed, so a reader
never sees half a file. Output: ``<project>/.pipectl/exports/predictions_<date>.json``.
"""
from __future__ import annotations

import json
import os
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

EXPORT_COLUMNS = ("player_lookup", "team_abbr", "opponent_team_abbr", "model_version", "predicted_points",
                  "points_line", "edge", "recommendation", "confidence")


def export_path(project_root: str | Path, partition: Any) -> Path:
    """Where the export of ``partition`` lives (the folder is created by the export)."""
    value = partition.isoformat() if isinstance(partition, date) else str(partition)
    return Path(project_root) / ".pipectl" / "exports" / f"predictions_{value}.json"


def export_predictions(ctx: Any) -> list[dict[str, Any]]:
    """Write every prediction of ``ctx.partition`` to JSON; return no rows (no output table)."""
    from framework.config.paths import ensure_state_dir

    table = ctx.ref("player_prop_predictions")
    cols = ", ".join(f"p.{c}" for c in EXPORT_COLUMNS)
    sql = (f"SELECT {cols} FROM {table} AS p WHERE p.{ctx.partition_column} = {ctx.partition_placeholder} "
           "ORDER BY p.confidence DESC, p.player_lookup")
    rows = ctx.warehouse.query(sql, [_partition_param(ctx)])
    picks = [{k: _plain(v) for k, v in row.items()} for row in rows]
    ensure_state_dir(ctx.project.root)
    path = export_path(ctx.project.root, ctx.partition)
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "game_date": _plain(ctx.partition),
        "generated_at": datetime.now().astimezone().isoformat(timespec="seconds"),
        "predictions": len(picks),
        "recommendations": {r: sum(1 for p in picks if p["recommendation"] == r) for r in ("OVER", "UNDER", "PASS")},
        "picks": picks,
    }
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return []


def _partition_param(ctx: Any) -> Any:
    from framework.run.transform import partition_param

    return partition_param(ctx.project, ctx.partition)


def _plain(value: Any) -> Any:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value
