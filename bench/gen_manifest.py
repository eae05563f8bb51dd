"""Generate a large, valid synthetic project (N processors over 5 phases) for benchmarks.

Shaped like a real warehouse DAG so that validate's costs are the real ones:

* every processor reads 2-6 inputs (raw processors: landing sources; later phases:
  processors of earlier phases) and its SQL joins *all* of them on the partition column
  and the entity key, reading their compared columns;
* every transform is distinct by default (its own expressions, join types, constants,
  sometimes a GROUP BY), so a cache keyed by SQL text cannot make the checks look free;
  ``distinct < 1`` makes that fraction distinct and the rest share a few shapes per input
  count, as copy-pasted processors would;
* 8 output columns, change detection on 3 of them, an alias per processor.

    python bench/gen_manifest.py DIR N [--distinct 1.0] [--seed 7]
"""
from __future__ import annotations

import argparse
import random
from pathlib import Path

PHASES = ["raw", "analytics", "precompute", "predictions", "export"]
SOURCES = 8
COMPARED = ("m0", "m1", "m2")  # processors' change-detection columns: what downstream SQL reads
SOURCE_COLUMNS = ("v0", "v1", "v2", "v3")


def _header() -> list[str]:
    lines = ["version: 1", "project: synthetic", "partition: {column: day, type: DATE}",
             "entity_kinds:", "  item: {key: item_id, type: STRING}", "sources:"]
    for s in range(SOURCES):
        lines += [f"  - name: landing_{s}", f"    table: landing.items_{s}", "    entity: item", "    columns:",
                  "      - {name: day, type: DATE, mode: REQUIRED}", "      - {name: item_id, type: STRING, mode: REQUIRED}"]
        lines += [f"      - {{name: {c}, type: FLOAT64}}" for c in SOURCE_COLUMNS]
    return lines + ["phases:"]


def _phases_and_topics(lines: list[str]) -> list[str]:
    topics = ["version: 1", "topics:"]
    for k, phase in enumerate(PHASES):
        lines += [f"  - name: {phase}", f"    order: {k + 1}", f"    dataset: ds_{phase}"]
        if k + 1 < len(PHASES):
            nxt = PHASES[k + 1]
            lines += ["    transition:", f"      completion_topic: {phase}-complete", f"      trigger_topic: {nxt}-trigger",
                      "      rule: {type: quorum, quorum: 0.9}", "      deadline: 4h"]
            topics += [f"  - name: {phase}-complete", "    contract: completion", f"    producers: [phase:{phase}]",
                       f"    consumers: [orchestrator:{phase}]", "    dead_letter_topic: dead-letter", "    subscriptions:",
                       f"      - {{name: {phase}-complete-orch, consumer: 'orchestrator:{phase}'}}",
                       f"  - name: {nxt}-trigger", "    contract: trigger", f"    producers: [orchestrator:{phase}]",
                       f"    consumers: [phase:{nxt}]", "    dead_letter_topic: dead-letter", "    subscriptions:",
                       f"      - {{name: {nxt}-trigger-sub, consumer: 'phase:{nxt}'}}"]
    return topics + ["  - name: dead-letter", "    contract: dead_letter", "    consumers: [external:ops]"]


def _expression(rng: random.Random, aliases: list[str], cols: tuple[str, ...], const: str) -> str:
    """One output expression over the joined inputs; ``const`` makes it distinct."""
    a, b = rng.choice(aliases), rng.choice(aliases)
    x, y = f"{a}.{rng.choice(cols)}", f"{b}.{rng.choice(cols)}"
    return rng.choice([
        f"{x} * {const}",
        f"COALESCE({x}, 0) + {y} * {const}",
        f"CASE WHEN {x} > {const} THEN {y} ELSE {x} - {const} END",
        f"GREATEST({x}, {y}) / {const}",
        f"{x} / NULLIF({y}, 0) + {const}",
        f"ROUND({x} * {const} + {y}, 3)",
        f"LEAST(COALESCE({x}, {const}), {y})",
    ])


def transform_sql(rng: random.Random, inputs: list[tuple[str, str]], const_base: str) -> str:
    """A SELECT joining every input on (day, item_id); ``inputs`` are (jinja call, 'source'|'ref')."""
    aliases = [f"t{i}" for i in range(len(inputs))]
    cols = SOURCE_COLUMNS if inputs[0][1] == "source" else COMPARED
    grouped = rng.random() < 0.3
    exprs = []
    for c in range(6):
        e = _expression(rng, aliases, cols, f"{const_base}{c}")
        exprs.append(f"{rng.choice(['SUM', 'MAX', 'AVG'])}({e}) AS m{c}" if grouped else f"{e} AS m{c}")
    lines = ["SELECT t0.day, t0.item_id,", "  " + ",\n  ".join(exprs), f"FROM {inputs[0][0]} t0"]
    for i, (call, _) in enumerate(inputs[1:], start=1):
        join = rng.choice(["JOIN", "LEFT JOIN"])
        lines.append(f"{join} {call} t{i} ON t{i}.day = t0.day AND t{i}.item_id = t0.item_id")
    lines.append("WHERE t0.day = {{ partition }} AND {{ entity_filter('t0.item_id') }}")
    if rng.random() < 0.5:
        lines.append(f"  AND t0.{cols[0]} IS NOT NULL")
    if grouped:
        lines.append("GROUP BY t0.day, t0.item_id")
    return "\n".join(lines) + "\n"


def generate(root: Path, n: int, seed: int = 7, distinct: float = 1.0) -> Path:
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    (root / "sql").mkdir(exist_ok=True)
    per_phase = max(1, n // len(PHASES))
    lines = _header()
    topics = _phases_and_topics(lines)
    lines.append("processors:")
    names_by_phase: list[list[str]] = []
    count = 0
    for k, phase in enumerate(PHASES):
        names: list[str] = []
        size = per_phase if k + 1 < len(PHASES) else n - count
        for i in range(size):
            name = f"{phase}_p{i:05d}"
            names.append(name)
            if k == 0:
                picked = [f"landing_{s}" for s in sorted(rng.sample(range(SOURCES), rng.randint(2, 6)))]
                inputs = [("{{ source('" + s + "') }}", "source") for s in picked]
                yaml_inputs = "[" + ", ".join(f"{{source: {s}}}" for s in picked) + "]"
            else:
                pool = [x for ph in names_by_phase for x in ph]
                picked = sorted(rng.sample(pool, min(len(pool), rng.randint(2, 6))))
                inputs = [("{{ ref('" + u + "') }}", "ref") for u in picked]
                yaml_inputs = "[" + ", ".join(picked) + "]"
            lines += [f"  - name: {name}", f"    phase: {phase}", "    entity: item",
                      f"    aliases: [{phase.title()}P{i:05d}Processor]", f"    inputs: {yaml_inputs}",
                      "    output:", f"      table: {name}", "      columns:",
                      "        - {name: day, type: DATE, mode: REQUIRED}",
                      "        - {name: item_id, type: STRING, mode: REQUIRED}"]
            lines += [f"        - {{name: m{c}, type: FLOAT64}}" for c in range(6)]
            lines += [f"    change_detection: {{columns: [{', '.join(COMPARED)}]}}", f"    transform: {{sql: sql/{name}.sql}}"]
            if rng.random() < distinct:
                sql = transform_sql(rng, inputs, f"{count + 1}.{k}")
            else:  # a shared shape: same text (up to table names) as others with as many inputs
                slot = rng.randrange(3)
                sql = transform_sql(random.Random(f"{k}-{len(inputs)}-{slot}"), inputs, "0.5")
            (root / "sql" / f"{name}.sql").write_text(sql)
            count += 1
        names_by_phase.append(names)
    (root / "processors.yaml").write_text("\n".join(lines) + "\n")
    (root / "topics.yaml").write_text("\n".join(topics) + "\n")
    return root


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("n", type=int)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--distinct", type=float, default=1.0, help="fraction of transforms with their own SQL text")
    args = ap.parse_args()
    generate(args.root, args.n, args.seed, args.distinct)
