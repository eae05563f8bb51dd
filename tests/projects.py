"""A small, valid fixture project that tests copy and break in one place each.

Kept as YAML text so a test can apply a textual edit and assert the exact diagnostic
(line and column included) that ``pipectl validate`` reports for it.
"""
from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

PROCESSORS = """\
version: 1
project: shop
partition: {column: day, type: DATE}
entity_kinds:
  customer: {key: customer_id, type: STRING}
  store: {key: store_id, type: STRING}
entity_mappings:
  - {name: customer_store, from: customer, to: store, via: orders_raw}
sources:
  - name: orders_landing
    table: landing.orders
    entity: customer
    columns:
      - {name: day, type: DATE, mode: REQUIRED}
      - {name: customer_id, type: STRING, mode: REQUIRED}
      - {name: store_id, type: STRING}
      - {name: amount, type: FLOAT64}
phases:
  - name: raw
    order: 1
    dataset: shop_raw
    transition:
      completion_topic: shop-raw-complete
      trigger_topic: shop-analytics-trigger
      critical: [orders_raw]
      rule: all
      deadline: 2h
  - name: analytics
    order: 2
    dataset: shop_analytics
    transition:
      completion_topic: shop-analytics-complete
      mode: monitor
processors:
  - name: orders_raw
    phase: raw
    aliases: [OrdersRawProcessor]
    entity: customer
    inputs:
      - source: orders_landing
    output:
      table: orders_raw
      columns:
        - {name: day, type: DATE, mode: REQUIRED}
        - {name: customer_id, type: STRING, mode: REQUIRED}
        - {name: store_id, type: STRING}
        - {name: amount, type: FLOAT64}
    change_detection: {columns: [amount, store_id]}
    transform: {sql: sql/orders_raw.sql}
  - name: customer_totals
    phase: analytics
    entity: customer
    inputs: [orders_raw]
    output:
      table: customer_totals
      columns:
        - {name: day, type: DATE, mode: REQUIRED}
        - {name: customer_id, type: STRING, mode: REQUIRED}
        - {name: total, type: FLOAT64}
    change_detection: {columns: [total]}
    transform: {sql: sql/customer_totals.sql}
  - name: store_totals
    phase: analytics
    entity: store
    inputs:
      - {processor: orders_raw, mapping: customer_store}
    output:
      table: store_totals
      columns:
        - {name: day, type: DATE, mode: REQUIRED}
        - {name: store_id, type: STRING, mode: REQUIRED}
        - {name: total, type: FLOAT64}
    transform: {sql: sql/store_totals.sql}
"""

TOPICS = """\
version: 1
topics:
  - name: shop-raw-complete
    contract: completion
    producers: [phase:raw]
    consumers: [orchestrator:raw]
    dead_letter_topic: shop-dead-letter
    subscriptions:
      - {name: shop-raw-complete-orch, consumer: orchestrator:raw, ack_deadline: 60s, max_delivery_attempts: 5}
  - name: shop-analytics-trigger
    contract: trigger
    producers: [orchestrator:raw]
    consumers: [phase:analytics]
    dead_letter_topic: shop-dead-letter
    subscriptions:
      - {name: shop-analytics-trigger-sub, consumer: phase:analytics}
  - name: shop-analytics-complete
    contract: completion
    producers: [phase:analytics]
    consumers: [orchestrator:analytics]
    dead_letter_topic: shop-dead-letter
    subscriptions:
      - {name: shop-analytics-complete-orch, consumer: orchestrator:analytics}
  - name: shop-dead-letter
    contract: dead_letter
    consumers: [external:ops]
"""

SQL = {
    "sql/orders_raw.sql": "SELECT day, customer_id, store_id, amount FROM {{ source('orders_landing') }} o\n"
                          "WHERE o.day = {{ partition }} AND {{ entity_filter('o.customer_id') }}\n",
    "sql/customer_totals.sql": "SELECT day, customer_id, SUM(amount) AS total FROM {{ ref('orders_raw') }} o\n"
                               "WHERE o.day = {{ partition }} AND {{ entity_filter('o.customer_id') }}\nGROUP BY day, customer_id\n",
    "sql/store_totals.sql": "SELECT day, store_id, SUM(amount) AS total FROM {{ ref('orders_raw') }} o\n"
                            "WHERE o.day = {{ partition }} AND {{ entity_filter('o.store_id') }}\nGROUP BY day, store_id\n",
}


# The shop with a same-phase mapping table that is not an input of its reader (the shape of the
# example's odds_api_game_lines, which maps game -> team through the schedule): ``home_store_visits``
# (raw) reads visits that carry their store, and maps customer -> store through ``store_roster``
# (raw, sorting after it by name) to find the stores a changed visit belongs to.
# ``START_TOPIC``: the raw phase's trigger topic (the first phase is triggered from outside).
START_TOPIC = """\
  - name: shop-raw-trigger
    contract: trigger
    producers: [external:scrapers]
    consumers: [phase:raw]
    dead_letter_topic: shop-dead-letter
    subscriptions:
      - {name: shop-raw-trigger-sub, consumer: phase:raw}
"""
_ROSTER_SOURCES = """  - name: roster_landing
    table: landing.roster
    entity: customer
    columns:
      - {name: day, type: DATE, mode: REQUIRED}
      - {name: customer_id, type: STRING, mode: REQUIRED}
      - {name: store_id, type: STRING}
  - name: visits_landing
    table: landing.visits
    entity: customer
    columns:
      - {name: day, type: DATE, mode: REQUIRED}
      - {name: customer_id, type: STRING, mode: REQUIRED}
      - {name: home_store, type: STRING}
      - {name: minutes, type: FLOAT64}
phases:"""
_ROSTER_RAW = """processors:
  - name: home_store_visits
    phase: raw
    entity: store
    inputs:
      - {source: visits_landing, mapping: customer_home_store}
    output:
      table: home_store_visits
      columns:
        - {name: day, type: DATE, mode: REQUIRED}
        - {name: store_id, type: STRING, mode: REQUIRED}
        - {name: visits, type: INT64}
        - {name: minutes, type: FLOAT64}
    transform: {sql: sql/home_store_visits.sql}
  - name: store_roster
    phase: raw
    entity: customer
    inputs:
      - source: roster_landing
    output:
      table: store_roster
      columns:
        - {name: day, type: DATE, mode: REQUIRED}
        - {name: customer_id, type: STRING, mode: REQUIRED}
        - {name: store_id, type: STRING}
    transform: {sql: sql/store_roster.sql}"""
ROSTER_PROCESSORS = (PROCESSORS.replace("phases:", _ROSTER_SOURCES, 1).replace("processors:", _ROSTER_RAW, 1)
                     .replace("  - {name: customer_store, from: customer, to: store, via: orders_raw}\n",
                              "  - {name: customer_store, from: customer, to: store, via: orders_raw}\n"
                              "  - {name: customer_home_store, from: customer, to: store, via: store_roster}\n"))
ROSTER_FILES = {**SQL,
                "sql/store_roster.sql": "SELECT day, customer_id, store_id FROM {{ source('roster_landing') }} r\n"
                                        "WHERE r.day = {{ partition }} AND {{ entity_filter('r.customer_id') }}\n",
                "sql/home_store_visits.sql": "SELECT day, home_store AS store_id, COUNT(*) AS visits, SUM(minutes) AS minutes\n"
                                             "FROM {{ source('visits_landing') }} v\n"
                                             "WHERE v.day = {{ partition }} AND {{ entity_filter('v.home_store') }}\n"
                                             "GROUP BY day, home_store\n"}

def write_project(root: Path, processors: str = PROCESSORS, topics: str = TOPICS, sql: dict | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "processors.yaml").write_text(processors)
    (root / "topics.yaml").write_text(topics)
    for rel, text in (SQL if sql is None else sql).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """1-based line number of the n-th line containing ``needle`` (for exact assertions)."""
    count = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            count += 1
            if count == occurrence:
                return number
    raise AssertionError(f"{needle!r} not found")


def copy_example(dest: Path, templates: bool = False, pipectl_yaml: str | None = None) -> Path:
    """The repository's example project (manifests and pipelines/, optionally templates/ and
    a pipectl.yaml) in ``dest``, so runs write their .pipectl/ there, not in the repository."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("processors.yaml", "topics.yaml"):
        shutil.copy2(REPO / name, dest / name)
    for name in ("pipelines", "templates") if templates else ("pipelines",):
        shutil.copytree(REPO / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    if pipectl_yaml is not None:
        (dest / "pipectl.yaml").write_text(pipectl_yaml)
    return dest


RUN_METADATA = {"processed_at"}


def snapshot_tables(session) -> dict[str, list[tuple]]:
    """Every enabled processor's output table as sorted rows (run metadata columns left out,
    floats rounded), to compare an incremental world with a from-scratch full recompute."""
    import math

    def norm(value):
        if isinstance(value, float):
            return None if math.isnan(value) else round(value, 6)
        return value

    out = {}
    for proc in session.project.processors.values():
        if proc.output is None or not proc.enabled:
            continue
        cols = [c for c in proc.output.column_names if c not in RUN_METADATA]
        rows = session.warehouse.query(f"SELECT {', '.join(cols)} FROM {proc.output.fqn}")
        out[proc.name] = sorted((tuple(norm(r[c]) for c in cols) for r in rows), key=repr)
    return out


def table_differences(inc: dict, ref: dict) -> list[str]:
    """Tables whose rows differ, with a few missing/extra rows each (empty when equal)."""
    out = []
    for table in sorted(set(inc) | set(ref)):
        a, b = inc.get(table, []), ref.get(table, [])
        if a != b:
            missing = [r for r in b if r not in a][:2]
            extra = [r for r in a if r not in b][:2]
            out.append(f"{table}: {len(b)} rows in the full recompute vs {len(a)}; missing {missing}; extra {extra}")
    return out
