"""Phase 6 export (work in progress)."""
from __future__ import annotations


def export_predictions(ctx):  # pragma: no cover - replaced in the next commit
    return []
