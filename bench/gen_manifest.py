"""Generate a large, valid synthetic project (N processors over 5 phases) for benchmarks.

Each processor reads 1-3 processors of earlier phases, has 8 output columns and its own SQL
file, so validation exercises every rule at realistic fan-in.
"""
from __future__ import annotations

import random
import sys
from pathlib import Path

PHASES = ["raw", "analytics", "precompute", "predictions", "export"]


def generate(root: Path, n: int, seed: int = 7) -> Path:
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    (root / "sql").mkdir(exist_ok=True)
    per_phase = max(1, n // len(PHASES))
    names_by_phase: list[list[str]] = []
    lines = ["version: 1", "project: synthetic", "partition: {column: day, type: DATE}",
             "entity_kinds:", "  item: {key: item_id, type: STRING}",
             "sources:", "  - name: landing", "    table: landing.items", "    entity: item", "    columns:",
             "      - {name: day, type: DATE, mode: REQUIRED}", "      - {name: item_id, type: STRING, mode: REQUIRED}",
             "      - {name: value, type: FLOAT64}", "phases:"]
    topics = ["version: 1", "topics:"]
    for k, phase in enumerate(PHASES):
        lines += [f"  - name: {phase}", f"    order: {k + 1}", f"    dataset: ds_{phase}"]
        if k + 1 < len(PHASES):
            lines += ["    transition:", f"      completion_topic: {phase}-complete", f"      trigger_topic: {PHASES[k + 1]}-trigger",
                      "      rule: {type: quorum, quorum: 0.9}", "      deadline: 4h"]
            topics += [f"  - name: {phase}-complete", "    contract: completion", f"    producers: [phase:{phase}]",
                       f"    consumers: [orchestrator:{phase}]", "    dead_letter_topic: dead-letter", "    subscriptions:",
                       f"      - {{name: {phase}-complete-orch, consumer: 'orchestrator:{phase}'}}",
                       f"  - name: {PHASES[k + 1]}-trigger", "    contract: trigger", f"    producers: [orchestrator:{phase}]",
                       f"    consumers: [phase:{PHASES[k + 1]}]", "    dead_letter_topic: dead-letter", "    subscriptions:",
                       f"      - {{name: {PHASES[k + 1]}-trigger-sub, consumer: 'phase:{PHASES[k + 1]}'}}"]
    topics += ["  - name: dead-letter", "    contract: dead_letter", "    consumers: [external:ops]"]
    lines.append("processors:")
    count = 0
    for k, phase in enumerate(PHASES):
        names = []
        size = per_phase if k + 1 < len(PHASES) else n - count
        for i in range(size):
            name = f"{phase}_p{i:05d}"
            names.append(name)
            lines += [f"  - name: {name}", f"    phase: {phase}", "    entity: item", f"    aliases: [{phase.title()}P{i:05d}Processor]"]
            if k == 0:
                lines += ["    inputs: [{source: landing}]"]
            else:
                ups = sorted(set(rng.choice(names_by_phase[rng.randrange(k)]) for _ in range(rng.randint(1, 3))))
                lines += ["    inputs: [" + ", ".join(ups) + "]"]
            lines += ["    output:", f"      table: {name}", "      columns:",
                      "        - {name: day, type: DATE, mode: REQUIRED}",
                      "        - {name: item_id, type: STRING, mode: REQUIRED}"]
            lines += [f"        - {{name: m{c}, type: FLOAT64}}" for c in range(6)]
            lines += ["    change_detection: {columns: [m0, m1, m2]}", f"    transform: {{sql: sql/{name}.sql}}"]
            src = "{{ source('landing') }}" if k == 0 else "{{ ref('" + ups[0] + "') }}"
            val = "value" if k == 0 else "m0"
            cols = ", ".join(f"{val} * {c} AS m{c}" for c in range(6))
            (root / "sql" / f"{name}.sql").write_text(
                f"SELECT day, item_id, {cols}\nFROM {src} t\nWHERE t.day = {{{{ partition }}}} AND {{{{ entity_filter('t.item_id') }}}}\n")
            count += 1
        names_by_phase.append(names)
    (root / "processors.yaml").write_text("\n".join(lines) + "\n")
    (root / "topics.yaml").write_text("\n".join(topics) + "\n")
    return root


if __name__ == "__main__":
    generate(Path(sys.argv[1]), int(sys.argv[2]))
