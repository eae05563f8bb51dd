"""Differential test: after random multi-round sequences of everyday work, every output
table equals, row for row, a from-scratch full recompute of the same inputs with the same code.

A sequence (seeded) has 2-4 rounds on two sample days that already ran in full; each round is
one of:

* ``edit``: random landing edits of the last day (inserts, updates, deletes, new entities,
  entities vanishing, team- and game-level changes), then an incremental run of that day;
* ``rerun``: an incremental run with nothing changed (must say so, and change nothing);
* ``code``: a transform's SQL changes, then both days run incrementally (the changed
  processor reprocesses every entity: code-change awareness);
* ``earlier``: edits of the first day, its incremental run, then ``--full`` of the next day
  (whose rolling history read the first day).

Reference world: the same sample, the same edits in the same order (seeded, so identical)
and the final code, then full runs of both days. When a sequence changes neither the code
nor the first day, the first day's inputs and code are those of the base's full run, so the
reference starts from that run and recomputes the last day in full (every processor, every
entity, from the edited inputs): the same tables, a third of the time. Run-metadata columns
(``processed_at``) are left out. CI runs ``--diff-sequences`` (default 3) sequences from ``--diff-seed`` (default
0); run hundreds locally with e.g. ``pytest tests/integration/test_differential.py
--diff-sequences 200 --diff-seed 1000``.
"""
from __future__ import annotations

import random
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from framework.drive.session import Session, edited_sources, generate_sample, run_partition, sample_module
from projects import copy_example, snapshot_tables, table_differences

pytestmark = [pytest.mark.timeout(1800), pytest.mark.slow]

START, DAYS = "2025-01-06", 2
DATES = ["2025-01-06", "2025-01-07"]
EDIT_DAY, EARLY_DAY = DATES[-1], DATES[0]
NOTHING = "nothing changed since the last run"

# (file, old text, new text): transforms whose output changes, outside the SQL files other
# work may be rewriting; each round of kind "code" applies the next one not yet applied
CODE_CHANGES = [
    ("pipelines/nba_props/precompute/player_daily_cache.sql",
     "ROUND(AVG(g.points), 2) AS points_avg_season", "ROUND(AVG(g.points), 1) AS points_avg_season"),
    ("pipelines/nba_props/precompute/player_shot_zone_analysis.sql",
     "ROUND(t.rim_att / NULLIF(1.0 * t.fga, 0), 4) AS rim_rate", "ROUND(t.rim_att / NULLIF(1.0 * t.fga, 0), 2) AS rim_rate"),
    ("pipelines/nba_props/precompute/team_defense_zone_analysis.sql",
     "ROUND(AVG(r.points_allowed), 2) AS points_allowed_avg", "ROUND(AVG(r.points_allowed), 0) AS points_allowed_avg"),
    ("pipelines/nba_props/analytics/upcoming_player_game_context.sql",
     "ROUND(AVG(CASE WHEN g.minutes > 0 THEN g.points END), 2) AS points_avg_season",
     "ROUND(AVG(CASE WHEN g.minutes > 0 THEN g.points END), 1) AS points_avg_season"),
]
CODE_PROCESSORS = ["player_daily_cache", "player_shot_zone_analysis", "team_defense_zone_analysis",
                   "upcoming_player_game_context"]


@dataclass(frozen=True)
class Round:
    kind: str  # edit | rerun | code | earlier
    seed: int = 0
    edits: int = 0
    code: int = -1  # index into CODE_CHANGES


def sequence(seed: int) -> list[Round]:
    rng = random.Random(f"sequence:{seed}")
    rounds: list[Round] = []
    codes = list(range(len(CODE_CHANGES)))
    rng.shuffle(codes)
    for k in range(rng.randint(2, 4)):
        kind = rng.choices(["edit", "rerun", "code", "earlier"], weights=[5, 1.5, 1.5, 2])[0]
        if kind == "code" and codes:
            rounds.append(Round("code", code=codes.pop()))
        elif kind == "rerun" and rounds:
            rounds.append(Round("rerun"))
        else:
            kind = kind if kind == "earlier" else "edit"
            rounds.append(Round(kind, seed=seed * 100 + k, edits=rng.randint(1, 8)))
    return rounds


def pytest_generate_tests(metafunc) -> None:
    if "seq_seed" in metafunc.fixturenames:
        first = metafunc.config.getoption("--diff-seed")
        count = metafunc.config.getoption("--diff-sequences")
        metafunc.parametrize("seq_seed", list(range(first, first + count)))


@pytest.fixture(scope="module")
def bases(tmp_path_factory) -> tuple[Path, Path]:
    """(landing only, landing + both days run in full): copied by every sequence."""
    root = tmp_path_factory.mktemp("differential")
    landing = copy_example(root / "landing")
    with Session.open(landing) as sess:
        generate_sample(sess, START, days=DAYS)
    ran = root / "ran"
    shutil.copytree(landing, ran)
    with Session.open(ran) as sess:
        for day in DATES:
            assert run_partition(sess, day, full=True, mode="full").status == "success"
    return landing, ran


def _edit(sess: Session, day: str, r: Round) -> list[str]:
    """Apply the round's edits; the landing sources they changed (what a scraper's trigger names)."""
    edits = sample_module(sess.project, "apply_random_edits")(sess.warehouse, day, seed=r.seed, n_edits=r.edits, pick="random")
    sources = edited_sources(sess.project, [t for e in edits for t in e.tables])
    assert sources is not None, edits
    return sources


def _change_code(root: Path, index: int) -> None:
    rel, old, new = CODE_CHANGES[index]
    path = root / rel
    text = path.read_text()
    assert text.count(old) == 1, f"{rel} no longer contains {old!r}: pick another code change"
    path.write_text(text.replace(old, new))


def _check(rep, what: str) -> None:
    assert rep.status == "success", (what, rep.to_dict())


def incremental_world(ran: Path, root: Path, rounds: list[Round]) -> dict:
    shutil.copytree(ran, root)
    sess = Session.open(root)
    try:
        for r in rounds:
            if r.kind == "edit":
                # the trigger names the sources edited, so processors reading others are
                # skipped without a query (an "earlier" round names none: all detect)
                sources = _edit(sess, EDIT_DAY, r)
                rep = run_partition(sess, EDIT_DAY, sources_changed=sources)
                _check(rep, r)
                raw = rep.phase("raw")
                assert raw is not None and raw.entities_processed < raw.entities_total / 4, rep.to_dict()  # selective
            elif r.kind == "rerun":
                rep = run_partition(sess, EDIT_DAY)
                _check(rep, r)
                assert rep.summary == NOTHING, rep.to_dict()
            elif r.kind == "earlier":
                _edit(sess, EARLY_DAY, r)
                _check(run_partition(sess, EARLY_DAY), r)
                _check(run_partition(sess, EDIT_DAY, full=True), r)
            else:
                sess.close()
                _change_code(root, r.code)
                sess = Session.open(root)
                for day in DATES:
                    rep = run_partition(sess, day)
                    _check(rep, r)
                    runs = {x.processor: x for ph in rep.phases for x in ph.runs}
                    changed = runs[CODE_PROCESSORS[r.code]]
                    assert changed.full_batch and (changed.fallback_reason or "").startswith("transform changed"), rep.to_dict()
        return snapshot_tables(sess)
    finally:
        sess.close()


def reference_world(landing: Path, ran: Path, root: Path, rounds: list[Round]) -> dict:
    first_day_as_base = all(r.kind in ("edit", "rerun") for r in rounds)
    shutil.copytree(ran if first_day_as_base else landing, root)
    for r in rounds:
        if r.kind == "code":
            _change_code(root, r.code)
    with Session.open(root) as sess:
        for r in rounds:
            if r.kind in ("edit", "earlier"):
                _edit(sess, EDIT_DAY if r.kind == "edit" else EARLY_DAY, r)
        for day in DATES[1:] if first_day_as_base else DATES:
            _check(run_partition(sess, day, full=True, mode="full"), "reference")
        return snapshot_tables(sess)


def test_random_sequences_equal_a_full_recompute(bases, tmp_path, seq_seed: int) -> None:
    landing, ran = bases
    rounds = sequence(seq_seed)
    inc = incremental_world(ran, tmp_path / "inc", rounds)
    ref = reference_world(landing, ran, tmp_path / "ref", rounds)
    assert sorted(inc) == sorted(ref)
    assert sum(len(v) for v in ref.values()) > 5000
    assert table_differences(inc, ref) == [], f"sequence {seq_seed}: {rounds}"


def test_the_fixed_subset_covers_every_round_kind(request) -> None:
    """The CI subset must exercise edits, no-change re-runs, code changes and earlier-day edits."""
    first = request.config.getoption("--diff-seed")
    count = request.config.getoption("--diff-sequences")
    kinds = {r.kind for s in range(first, first + count) for r in sequence(s)}
    if first == 0 and count == 3:
        assert kinds == {"edit", "rerun", "code", "earlier"}, kinds
