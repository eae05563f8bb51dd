"""Edits of the landing data: the "2 PM update" of one player, and seeded random edits.

``apply_update`` is what a late stat correction or injury-report update looks like to the
pipeline: a few landing rows of one player change, nothing else. ``apply_random_edits``
produces a mix of inserts, updates and deletes across several entities and landing tables,
seeded, so the differential test (incremental run == full recompute) covers every kind of
change without hand-picking. Both return what they changed so callers can tell which
entities must be reprocessed. Column names are checked against the manifest; values always
travel as query parameters.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pipelines.nba_props import landing

GAMEBOOK = "nbac_gamebook"
# What `pipectl simulate update`, `pipectl run --changed` and `pipectl demo` change when not
# told otherwise (the framework's options are generic: --entity KEY=ID, --set COL=V). The
# demo's "2 PM update": a stat correction in the gamebook and the player's points line moving.
# Here rather than in sample_data.py, so an update never imports the league simulator.
UPDATE_DEFAULTS = {
    "entity": "player_lookup=lebronjames",
    "set": {"points": 41, "fg_made": 16},
    "demo_edits": [[None, {"points": 41, "fg_made": 16}], ["odds_api_player_points_props", {"points_line": 31.5}]],
}


@dataclass(frozen=True)
class Edit:
    """One change to the landing zone: ``operation`` insert|update|delete on ``table``."""

    operation: str
    table: str
    entity_kind: str  # player | team
    entity: str
    detail: str
    also: tuple[str, ...] = ()  # further landing tables the same edit changed

    @property
    def tables(self) -> tuple[str, ...]:
        """Every landing table this edit changed (what a scraper's trigger would name)."""
        return (self.table, *self.also)


def apply_update(target: Any, game_date: date | str, player_lookup: str, table: str = GAMEBOOK, **changes: Any) -> int:
    """Set ``changes`` (column=value) on ``player_lookup``'s rows of ``table`` for ``game_date``.

    Example: ``apply_update(con, "2025-01-06", "lebronjames", points=41, fg_made=16)``.
    Raises ValueError when a column is unknown or the player has no row that day.
    """
    game_date = _as_date(game_date)
    tables = landing.load_sources()
    if table not in tables:
        raise ValueError(f"unknown landing table '{table}'; one of: {', '.join(sorted(tables))}")
    spec = tables[table]
    if spec.column("player_lookup") is None:
        raise ValueError(f"{spec.fqn} is not keyed by player_lookup; edit it with apply_random_edits or SQL")
    if not changes:
        raise ValueError("apply_update needs at least one column=value change")
    bad = [c for c in changes if spec.column(c) is None or c in ("game_date", "player_lookup")]
    if bad:
        raise ValueError(f"{spec.fqn}: cannot set column(s) {bad}; settable: {[c for c in spec.column_names if c not in ('game_date', 'player_lookup')]}")
    params = {"game_date": game_date, "player_lookup": player_lookup}
    where = "WHERE game_date = $game_date AND player_lookup = $player_lookup"
    sets = ", ".join(f"{c} = $v_{c}" for c in changes)
    # DuckDB answers an UPDATE with the rows it changed (one statement instead of a count and
    # the update); BigQuery answers nothing: the rows are counted then (the key is not edited,
    # so the count after the update is the count before it, and no row means nothing changed)
    updated = landing.run(target, f"UPDATE {spec.fqn} SET {sets} {where}", {**params, **{f"v_{c}": v for c, v in changes.items()}})
    if updated and "Count" in updated[0]:
        n = int(updated[0]["Count"])
    else:
        found = landing.run(target, f"SELECT COUNT(*) AS n FROM {spec.fqn} {where}", params)
        n = int(found[0]["n"]) if found else 0
    if n == 0:
        raise ValueError(f"{spec.fqn} has no row for player '{player_lookup}' on {game_date}: did his team play that day?")
    return n


def apply_random_edits(target: Any, game_date: date | str, seed: int = 0, n_edits: int = 12,
                       pick: str = "cycle") -> list[Edit]:
    """Apply ``n_edits`` seeded edits (insert/update/delete) spread over players, teams and tables.

    ``pick="cycle"`` takes the kinds in a fixed order (every kind once per nine edits);
    ``pick="random"`` draws each edit's kind from the seed, including a player vanishing
    from every box score of the day, so short sequences of few edits still vary."""
    game_date = _as_date(game_date)
    rng = random.Random(f"edits:{seed}:{game_date.isoformat()}")
    tables = landing.load_sources()
    q = lambda sql: landing.run(target, sql, {"d": game_date})  # noqa: E731 - tiny local helper
    players = [r["player_lookup"] for r in q(f"SELECT player_lookup FROM {tables[GAMEBOOK].fqn} WHERE game_date = $d AND minutes > 0 ORDER BY player_lookup")]
    teams = [r["team_abbr"] for r in q(f"SELECT team_abbr FROM {tables['nbac_team_boxscore'].fqn} WHERE game_date = $d ORDER BY team_abbr")]
    if not players or not teams:
        raise ValueError(f"no games on {game_date} in {landing.LANDING_DATASET}: generate sample data for that date first")
    kinds = [_stat_correction, _injury_update, _prop_move, _prop_pulled, _team_turnovers, _pbp_zone_deleted,
             _injury_added, _prop_added, _line_move]
    if pick not in ("cycle", "random"):
        raise ValueError(f"pick must be 'cycle' or 'random', got {pick!r}")
    pool = kinds + [_player_vanished]
    edits: list[Edit] = []
    for k in range(n_edits):
        kind = kinds[k % len(kinds)] if pick == "cycle" else rng.choice(pool)
        edit = kind(target, tables, rng, game_date, players, teams)
        if edit is not None:
            edits.append(edit)
    return edits


def _as_date(value: date | str) -> date:
    return date.fromisoformat(value) if isinstance(value, str) else value


def _exec(target: Any, sql: str, **params: Any) -> list[dict[str, Any]]:
    return landing.run(target, sql, params)


def _stat_correction(target, tables, rng, d, players, teams) -> Edit:
    p = rng.choice(players)
    extra = rng.choice((1, 2, 3))
    t = tables[GAMEBOOK].fqn
    _exec(target, f"UPDATE {t} SET points = points + $x, ft_made = ft_made + $x, ft_attempted = ft_attempted + $x "
                  "WHERE game_date = $d AND player_lookup = $p", x=extra, d=d, p=p)
    return Edit("update", GAMEBOOK, "player", p, f"+{extra} free throws made")


def _injury_update(target, tables, rng, d, players, teams) -> Edit | None:
    t = tables["nbac_injury_report"].fqn
    rows = _exec(target, f"SELECT player_lookup FROM {t} WHERE game_date = $d ORDER BY player_lookup", d=d)
    if not rows:
        return None
    p = rng.choice(rows)["player_lookup"]
    status = rng.choice(("Out", "Questionable", "Probable", "Available"))
    _exec(target, f"UPDATE {t} SET injury_status = $s WHERE game_date = $d AND player_lookup = $p", s=status, d=d, p=p)
    return Edit("update", "nbac_injury_report", "player", p, f"status -> {status}")


def _prop_move(target, tables, rng, d, players, teams) -> Edit | None:
    t = tables["odds_api_player_points_props"].fqn
    rows = _exec(target, f"SELECT DISTINCT player_lookup FROM {t} WHERE game_date = $d ORDER BY player_lookup", d=d)
    if not rows:
        return None
    p = rng.choice(rows)["player_lookup"]
    step = rng.choice((-1.0, 1.0, 2.0))
    _exec(target, f"UPDATE {t} SET points_line = points_line + $s WHERE game_date = $d AND player_lookup = $p", s=step, d=d, p=p)
    return Edit("update", "odds_api_player_points_props", "player", p, f"line {step:+}")


def _prop_pulled(target, tables, rng, d, players, teams) -> Edit | None:
    t = tables["bettingpros_player_points_props"].fqn
    rows = _exec(target, f"SELECT DISTINCT player_lookup FROM {t} WHERE game_date = $d ORDER BY player_lookup", d=d)
    if not rows:
        return None
    p = rng.choice(rows)["player_lookup"]
    _exec(target, f"DELETE FROM {t} WHERE game_date = $d AND player_lookup = $p", d=d, p=p)
    return Edit("delete", "bettingpros_player_points_props", "player", p, "line pulled")


def _team_turnovers(target, tables, rng, d, players, teams) -> Edit:
    team = rng.choice(teams)
    t = tables["nbac_team_boxscore"].fqn
    _exec(target, f"UPDATE {t} SET turnovers = turnovers + 1 WHERE game_date = $d AND team_abbr = $t", d=d, t=team)
    return Edit("update", "nbac_team_boxscore", "team", team, "+1 turnover")


def _pbp_zone_deleted(target, tables, rng, d, players, teams) -> Edit | None:
    t = tables["nbac_play_by_play"].fqn
    rows = _exec(target, f"SELECT player_lookup, shot_zone FROM {t} WHERE game_date = $d ORDER BY player_lookup, shot_zone", d=d)
    if not rows:
        return None
    row = rng.choice(rows)
    _exec(target, f"DELETE FROM {t} WHERE game_date = $d AND player_lookup = $p AND shot_zone = $z", d=d, p=row["player_lookup"], z=row["shot_zone"])
    return Edit("delete", "nbac_play_by_play", "player", row["player_lookup"], f"{row['shot_zone']} row removed")


def _injury_added(target, tables, rng, d, players, teams) -> Edit | None:
    t = tables["nbac_injury_report"].fqn
    listed = {r["player_lookup"] for r in _exec(target, f"SELECT player_lookup FROM {t} WHERE game_date = $d", d=d)}
    candidates = [p for p in players if p not in listed]
    if not candidates:
        return None
    p = rng.choice(candidates)
    roster = _exec(target, f"SELECT player_name, team_abbr FROM {tables['br_rosters'].fqn} WHERE game_date = $d AND player_lookup = $p", d=d, p=p)
    name, team = (roster[0]["player_name"], roster[0]["team_abbr"]) if roster else (p, None)
    landing.insert(target, tables["nbac_injury_report"], [{
        "game_date": d, "player_lookup": p, "player_name": name, "team_abbr": team, "injury_status": "Questionable",
        "reason": "Illness", "report_time": datetime(d.year, d.month, d.day, 14, 0)}])
    return Edit("insert", "nbac_injury_report", "player", p, "added as Questionable")


def _prop_added(target, tables, rng, d, players, teams) -> Edit | None:
    t = tables["odds_api_player_points_props"]
    have = {r["player_lookup"] for r in _exec(target, f"SELECT DISTINCT player_lookup FROM {t.fqn} WHERE game_date = $d", d=d)}
    candidates = [p for p in players if p not in have]
    if not candidates:
        return None
    p = rng.choice(candidates)
    line = float(rng.randint(3, 12)) + 0.5
    landing.insert(target, t, [{"game_date": d, "game_id": None, "player_lookup": p, "bookmaker": "draftkings", "points_line": line,
                                "over_price": -110, "under_price": -110, "snapshot_time": datetime(d.year, d.month, d.day, 14, 0)}])
    return Edit("insert", "odds_api_player_points_props", "player", p, f"new line {line}")


def _line_move(target, tables, rng, d, players, teams) -> Edit | None:
    t = tables["odds_api_game_lines"].fqn
    rows = _exec(target, f"SELECT DISTINCT game_id, home_team_abbr FROM {t} WHERE game_date = $d ORDER BY game_id", d=d)
    if not rows:
        return None
    row = rng.choice(rows)
    _exec(target, f"UPDATE {t} SET home_spread = home_spread - 1.0, game_total = game_total + 1.5 WHERE game_date = $d AND game_id = $g", d=d, g=row["game_id"])
    return Edit("update", "odds_api_game_lines", "team", row["home_team_abbr"], "spread -1, total +1.5")


QUIRKS = ("pbp_off_roster", "injury_off_roster", "gamebook_team", "lowercase_team", "team_stats")


def apply_scraper_quirks(target: Any, game_date: date | str, seed: int = 0, n_edits: int = 3,
                         kinds: tuple[str, ...] | None = None) -> list[Edit]:
    """Seeded edits real scrapers make that disagree with the roster or the team code's
    spelling: a play-by-play row and an injury of a player the roster does not list, a
    gamebook crediting a player to another team than his roster team, a team code landed in
    lower case, and team stat corrections (whatever spelling the row landed with). Each is
    what turned a manifest-vs-SQL mismatch into a stale row (issue 13); with the example's
    transforms reaching other kinds through the declared mappings, incremental runs stay
    equal to a full recompute (bench/bench_differential.py, tests/integration/test_verify.py).
    ``kinds`` (names from ``QUIRKS``) replaces the random choice: one edit of each, in order."""
    game_date = _as_date(game_date)
    rng = random.Random(f"quirks:{seed}:{game_date.isoformat()}")
    tables = landing.load_sources()
    box, pbp, injuries = tables["nbac_team_boxscore"].fqn, tables["nbac_play_by_play"].fqn, tables["nbac_injury_report"].fqn
    gamebook = tables[GAMEBOOK].fqn
    q = lambda sql, **p: landing.run(target, sql, {"d": game_date, **p})  # noqa: E731 - tiny local helper
    teams = [r["team_abbr"] for r in q(f"SELECT DISTINCT team_abbr FROM {box} WHERE game_date = $d ORDER BY team_abbr")]
    if not teams:
        raise ValueError(f"no games on {game_date} in {landing.LANDING_DATASET}: generate sample data for that date first")
    edits: list[Edit] = []
    unknown = sorted(set(kinds or ()) - set(QUIRKS))
    if unknown:
        raise ValueError(f"unknown scraper quirk(s) {unknown}; one of: {', '.join(QUIRKS)}")
    for kind in kinds or [rng.choice(QUIRKS) for _ in range(n_edits)]:
        team = rng.choice(teams)
        ghost = f"ghost{rng.randrange(10 ** 6)}"
        if kind == "pbp_off_roster":  # a two-way player the roster does not list takes shots
            q(f"INSERT INTO {pbp} (game_date, game_id, player_lookup, team_abbr, opponent_team_abbr, shot_zone, fg_attempted, fg_made) "
              f"SELECT game_date, game_id, $g, team_abbr, opponent_team_abbr, 'rim', 6, 3 FROM {box} WHERE game_date = $d AND team_abbr = $t",
              g=ghost, t=team)
            edits.append(Edit("insert", "nbac_play_by_play", "player", ghost, f"off-roster shots for {team}"))
        elif kind == "injury_off_roster":
            q(f"INSERT INTO {injuries} (game_date, player_lookup, player_name, team_abbr, injury_status, reason) "
              "VALUES ($d, $g, 'Ghost Player', $t, 'Out', 'illness')", g=ghost, t=team)
            edits.append(Edit("insert", "nbac_injury_report", "player", ghost, f"off-roster injury for {team}"))
        elif kind == "gamebook_team":
            players = [r["player_lookup"] for r in q(f"SELECT player_lookup FROM {gamebook} WHERE game_date = $d AND minutes > 0 "
                                                      "AND team_abbr <> $t ORDER BY player_lookup", t=team)]
            if players:
                p = rng.choice(players)
                q(f"UPDATE {gamebook} SET team_abbr = $t WHERE game_date = $d AND player_lookup = $p", t=team, p=p)
                edits.append(Edit("update", GAMEBOOK, "player", p, f"gamebook team -> {team}"))
        elif kind == "lowercase_team":
            q(f"UPDATE {box} SET team_abbr = lower(team_abbr) WHERE game_date = $d AND team_abbr = $t", t=team)
            edits.append(Edit("update", "nbac_team_boxscore", "team", team, "team code landed in lower case"))
        else:
            q(f"UPDATE {box} SET turnovers = turnovers + 1, fg_attempted = fg_attempted + 1 "
              "WHERE game_date = $d AND upper(team_abbr) = upper($t)", t=team)
            edits.append(Edit("update", "nbac_team_boxscore", "team", team, "+1 turnover, +1 FGA"))
    return edits


def _player_vanished(target, tables, rng, d, players, teams) -> Edit | None:
    """A player removed from the day's box scores and play-by-play (a scraper mix-up fixed):
    every row of his downstream must disappear too."""
    p = rng.choice(players)
    names = [n for n in (GAMEBOOK, "nbac_player_boxscores", "bdl_player_boxscores", "bigdataball_play_by_play",
                         "nbac_play_by_play") if n in tables]
    for name in names:
        _exec(target, f"DELETE FROM {tables[name].fqn} WHERE game_date = $d AND player_lookup = $p", d=d, p=p)
    return Edit("delete", GAMEBOOK, "player", p, "removed from the box scores", also=tuple(names[1:]))
