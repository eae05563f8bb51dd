"""What one completion message or one sweep step did: the value the engine and the sweeper
both return, in its own module so the sweeper does not import the engine that calls it."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Decision:
    """What one message (or one sweep step) did. ``published`` lists trigger ids sent."""

    action: str  # recorded|duplicate|late|triggered|monitored|blocked|expired|gates_needed|waiting|idle|rejected|ignored
    transition: str | None = None
    partition: str | None = None
    round: int | None = None
    trigger_id: str | None = None
    published: tuple[str, ...] = ()
    reason: str = ""
    processor: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


__all__ = ["Decision"]
