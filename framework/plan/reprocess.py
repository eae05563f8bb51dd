"""What the next runs will reprocess fully because the code changed (shown by `pipectl plan`).

Terraform's plan says what apply will change in the backend; a data pipeline's user also
needs to know what the next *runs* will recompute (dbt ``state:modified``, SQLMesh's
"models needing backfill"). The runtime stores, per processor and partition, the code
fingerprint (:mod:`framework.manifest.fingerprint`) of the run that made its rows, in the
StateStore collection ``pipectl_code_state``; here the plan compares them with the current
code. Read-only; not part of the plan's state fingerprint (runs, not apply, resolve it).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from framework.manifest.fingerprint import Fingerprint, describe_changes, processor_fingerprint
from framework.manifest.model import Project

CODE_STATE = "pipectl_code_state"


@dataclass(frozen=True)
class Reprocessing:
    """A processor whose next runs will reprocess partitions fully, and why."""

    processor: str
    partitions: list[str]
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"processor": self.processor, "partitions": list(self.partitions), "reason": self.reason}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Reprocessing":
        return cls(str(d["processor"]), [str(p) for p in d.get("partitions", [])], str(d.get("reason", "")))


def pending_reprocessing(project: Project, store: Any) -> list[Reprocessing]:
    """Every enabled processor whose stored fingerprint (of any partition) differs from the
    current code: its next run of each listed partition is a full batch."""
    current: dict[str, Fingerprint] = {}
    by_proc: dict[str, list[tuple[str, str]]] = {}
    for _key, doc in store.query(CODE_STATE):
        proc = project.processors.get(doc.get("processor", ""))
        if proc is None or not proc.enabled:
            continue
        now = current.setdefault(proc.name, processor_fingerprint(project, proc))
        if doc.get("digest") != now.digest:
            by_proc.setdefault(proc.name, []).append((str(doc.get("partition")),
                                                      describe_changes(project, proc, doc.get("parts"), now)))
    out = []
    for name in sorted(by_proc):
        items = sorted(by_proc[name])
        reasons = list(dict.fromkeys(r for _, r in items))
        out.append(Reprocessing(name, [p for p, _ in items], "; ".join(reasons)))
    return out



def reprocess_lines(items: list[Reprocessing], limit: int = 5) -> list[str]:
    """The plan's section: one line per processor, the first partitions named."""
    if not items:
        return []
    lines = [f"Reprocessing on the next run ({len(items)} processor(s) changed since their last run):"]
    for r in items:
        shown = ", ".join(r.partitions[:limit]) + (f" and {len(r.partitions) - limit} more" if len(r.partitions) > limit else "")
        lines.append(f"  * {r.processor}: every entity of {len(r.partitions)} partition(s) ({shown}): {r.reason}")
    return lines


__all__ = ["CODE_STATE", "Reprocessing", "pending_reprocessing", "reprocess_lines"]
