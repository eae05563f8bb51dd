"""In-memory providers: the test double for every backend (one dict of resources)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from framework.plan.actual import Scope
from framework.plan.model import RESOURCE_TYPES, AttributeChange, Resource


class World:
    """What a fake backend holds: address -> Resource, plus tables that hold rows."""

    def __init__(self) -> None:
        self.resources: dict[str, Resource] = {}
        self.rows: set[str] = set()
        self.fail_on: set[str] = set()
        self.calls: list[tuple[str, str]] = []

    def providers(self) -> list["FakeProvider"]:
        return [FakeProvider(t, self) for t in RESOURCE_TYPES]

    def put(self, resource: Resource) -> None:
        self.resources[resource.address] = Resource(resource.type, resource.name, dict(resource.attributes))


class FakeProvider:
    def __init__(self, rtype: str, world: World):
        self.type = rtype
        self.world = world

    def read_actual(self, scope: Scope) -> list[Resource]:
        out = []
        for r in self.world.resources.values():
            if r.type != self.type:
                continue
            meta = {"has_rows": r.name in self.world.rows} if r.type == "table" else {}
            if r.type in ("orchestrator_config", "deployment", "ledger"):
                meta["managed"] = True
            out.append(Resource(r.type, r.name, dict(r.attributes), meta))
        return out

    def _step(self, action: str, resource: Resource) -> None:
        if resource.address in self.world.fail_on:
            raise RuntimeError(f"injected failure at {resource.address}")
        self.world.calls.append((action, resource.address))

    def create(self, resource: Resource) -> None:
        self._step("create", resource)
        self.world.put(resource)

    def update(self, before: Resource, after: Resource, changes: Sequence[AttributeChange]) -> None:
        self._step("update", after)
        self.world.put(after)

    def delete(self, resource: Resource) -> None:
        self._step("delete", resource)
        self.world.resources.pop(resource.address, None)
        self.world.rows.discard(resource.name)

    def replace(self, before: Resource, after: Resource) -> None:
        self._step("replace", after)
        self.world.rows.discard(before.name)
        self.world.put(after)


NEW_PROCESSOR = """\
  - name: order_counts
    phase: analytics
    entity: customer
    inputs: [orders_raw]
    output:
      table: order_counts
      columns:
        - {name: day, type: DATE, mode: REQUIRED}
        - {name: customer_id, type: STRING, mode: REQUIRED}
        - {name: orders, type: INT64}
    transform: {sql: sql/order_counts.sql}
"""


def rewrite(root: Path, file: str, old: str, new: str) -> None:
    """Apply one textual edit to a manifest, failing loudly if the anchor is gone."""
    path = root / file
    text = path.read_text()
    assert old in text, f"{old!r} not in {file}"
    path.write_text(text.replace(old, new, 1))


def add_processor(root: Path) -> None:
    """Add 'order_counts' to the analytics phase (its table, deployment, policy change)."""
    (root / "processors.yaml").write_text((root / "processors.yaml").read_text() + NEW_PROCESSOR)
    (root / "sql" / "order_counts.sql").write_text(
        "SELECT day, customer_id, COUNT(*) AS orders FROM {{ ref('orders_raw') }} o\n"
        "WHERE o.day = {{ partition }} AND {{ entity_filter('o.customer_id') }}\nGROUP BY day, customer_id\n")
