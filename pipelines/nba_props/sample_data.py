"""Deterministic sample data for the NBA props example: the scraper landing zone.

``generate(target, start_date, days=1, seed=42, players_per_team=15, leagues=1)`` fills the
``nba_landing`` tables declared as ``sources`` in ``processors.yaml`` for ``days`` game dates:
30 teams x ``players_per_team`` players (450 by default) per league, 10-12 games a day per league, and for each game
the schedule, both team and player box scores, play-by-play shot-zone rows, quarter scores,
the injury report (with superseded morning snapshots), game lines and player points props from
two books per props source, plus a daily roster snapshot. ``target`` is a DuckDB connection
(or a warehouse wrapping one: fast columnar path) or any ``Warehouse``.

Why deterministic per date: the random stream of a date depends only on ``(seed, date)``, so
generating 1 day or 160 days gives the same rows for a given date, and tests can compare a
single-day run with a season. Scoring is simulated from player skill and opponent defence, so
the transforms downstream find real signal (opponent defence, form, usage) to compute.

Run as a script: ``python -m pipelines.nba_props.sample_data --db .pipectl/warehouse.duckdb
--start 2025-01-06 --days 160``. Edits for the "2 PM update" and the differential test live
in :mod:`pipelines.nba_props.sample_edits`.

``leagues > 1`` adds independent 30-team leagues (team ``LAL2``, player ``lebronjameslgb``),
each with its own random streams, to measure how the pipeline's cost grows with the number
of entities (bench/bench_scale.py); league 1 is always exactly the default world, so the
default output never changes.
"""
from __future__ import annotations

import argparse
import random
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from pipelines.nba_props import landing
from pipelines.nba_props.sample_edits import UPDATE_DEFAULTS, Edit, apply_random_edits, apply_update  # noqa: F401 - re-exported
from pipelines.nba_props.sim import Player, Team, build_league, simulate_game

DEFAULT_START = date(2025, 1, 6)
GAMES_PER_DAY = (10, 12)
__all__ = ["DEFAULT_START", "Edit", "League", "apply_random_edits", "apply_update", "day_rows_for", "generate", "league", "main"]

PROP_BOOKS = {"odds_api_player_points_props": ("draftkings", "fanduel"), "bettingpros_player_points_props": ("betmgm", "caesars")}
LINE_BOOKS = ("draftkings", "fanduel")
UNDER_PRICE = {-125: 105, -120: 100, -115: -105, -110: -110, -105: -115, 100: -120}
INJURY_REASONS = ("Left Ankle; Sprain", "Right Knee; Soreness", "Illness", "Rest", "Low Back; Spasms", "Right Hamstring; Strain")


@dataclass(frozen=True)
class League:
    """The fixed part of the sample world: teams and their players (seeded once)."""

    teams: tuple[Team, ...]
    leagues: int = 1

    @property
    def players(self) -> list[Player]:
        return [p for t in self.teams for p in t.players]

    def divisions(self) -> list[tuple[Team, ...]]:
        """The teams of each league (games are scheduled within a league)."""
        size = len(self.teams) // self.leagues
        return [self.teams[k * size:(k + 1) * size] for k in range(self.leagues)]


def _league_tag(k: int) -> str:
    """Letters only (player lookups keep only letters): league 2 -> 'Lgb', 27 -> 'Lgab'."""
    letters = ""
    while True:
        letters = chr(ord("a") + k % 26) + letters
        k = k // 26 - 1
        if k < 0:
            return "Lg" + letters


def league(seed: int = 42, players_per_team: int = 15, leagues: int = 1) -> League:
    """Teams and players for ``seed`` (the same for every date); ``leagues`` worlds of 30 teams."""
    if leagues < 1:
        raise ValueError(f"leagues must be at least 1, got {leagues}")
    teams = list(build_league(random.Random(f"league:{seed}"), players_per_team))
    for k in range(1, leagues):
        tag = _league_tag(k)
        for team in build_league(random.Random(f"league:{seed}:{k}"), players_per_team):
            players = tuple(replace(p, lookup=p.lookup + tag.lower(), name=f"{p.name} {tag}") for p in team.players)
            teams.append(replace(team, abbr=f"{team.abbr}{k + 1}", players=players))
    return League(tuple(teams), leagues)


def generate(target: Any, start_date: date | str = DEFAULT_START, days: int = 1, seed: int = 42,
             players_per_team: int = 15, project: Any = None, leagues: int = 1) -> dict[str, int]:
    """Create the landing tables if needed and (re)write ``days`` dates from ``start_date``.

    Existing rows of those dates are replaced, so running it twice leaves the same data.
    Returns the number of rows written per landing table.
    """
    if isinstance(start_date, str):
        start_date = date.fromisoformat(start_date)
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    tables = landing.load_sources(project)
    landing.ensure_tables(target, tables.values())
    world = league(seed, players_per_team, leagues)
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in tables}
    for offset in range(days):
        day = start_date + timedelta(days=offset)
        for name, day_rows in day_rows_for(world, day, seed).items():
            rows[name].extend(day_rows)
    last = start_date + timedelta(days=days - 1)
    return {name: landing.replace_dates(target, tables[name], rows.get(name, []), start_date, last) for name in tables}


def day_rows_for(world: League, day: date, seed: int) -> dict[str, list[dict[str, Any]]]:
    """Every landing row of one game date, by table name (pure: no I/O)."""
    rng = random.Random(f"day:{seed}:{day.isoformat()}")
    out: dict[str, list[dict[str, Any]]] = {
        "nbac_gamebook": [], "nbac_player_boxscores": [], "nbac_team_boxscore": [], "nbac_schedule": [],
        "nbac_injury_report": [], "nbac_scoreboard_v2": [], "nbac_play_by_play": [], "odds_api_game_lines": [],
        "odds_api_player_points_props": [], "bettingpros_player_points_props": [], "bigdataball_play_by_play": [],
        "br_rosters": [], "bdl_player_boxscores": [],
    }
    for team in world.teams:
        for p in team.players:
            out["br_rosters"].append({"game_date": day, "player_lookup": p.lookup, "player_name": p.name,
                                      "team_abbr": team.abbr, "position": p.position, "jersey_number": str(p.jersey)})
    for k, division in enumerate(world.divisions()):
        _schedule(random.Random(f"day:{seed}:{day.isoformat()}:{k}") if k else rng, day, division, out)
    return out


def _schedule(rng: random.Random, day: date, division: tuple[Team, ...], out: dict) -> None:
    """One league's games of the day and every row they produce."""
    # Every team rests one day in three (a rotation by date), so rest days and back-to-backs
    # both occur while each date still depends only on (seed, date).
    resting = [t for i, t in enumerate(division) if (i + day.toordinal()) % 3 == 0]
    playing = [t for t in division if t not in resting]
    rng.shuffle(playing)
    rng.shuffle(resting)
    teams = playing + resting
    n_games = rng.randint(*GAMES_PER_DAY)
    for g in range(n_games):
        away, home = teams[2 * g], teams[2 * g + 1]
        game_id = f"{day:%Y%m%d}_{away.abbr}_{home.abbr}"
        out["nbac_schedule"].append({"game_date": day, "game_id": game_id, "home_team_abbr": home.abbr, "away_team_abbr": away.abbr,
                                     "game_status": "Final", "start_time_et": f"{19 + g % 4}:{'00' if g % 2 == 0 else '30'}",
                                     "arena": home.arena})
        status = {**_injuries(rng, day, home, out), **_injuries(rng, day, away, out)}
        _game_lines(rng, day, game_id, home, away, out)
        for team in (home, away):
            _props(rng, day, game_id, team, status, out)
        _play(rng, day, game_id, home, away, status, out)


def _injuries(rng: random.Random, day: date, team: Team, out: dict) -> dict[str, str]:
    """0-3 players of ``team`` on the report; returns their final status by player."""
    status: dict[str, str] = {}
    for p in rng.sample(team.players, rng.choice((0, 1, 1, 2, 2, 3))):
        final = rng.choices(("Out", "Questionable", "Probable"), weights=(0.4, 0.35, 0.25))[0]
        reason = rng.choice(INJURY_REASONS)
        base = {"game_date": day, "player_lookup": p.lookup, "player_name": p.name, "team_abbr": team.abbr, "reason": reason}
        if rng.random() < 0.3:  # a morning report superseded in the afternoon
            out["nbac_injury_report"].append({**base, "injury_status": "Questionable" if final != "Questionable" else "Doubtful",
                                              "report_time": datetime(day.year, day.month, day.day, 8, 30)})
        out["nbac_injury_report"].append({**base, "injury_status": final, "report_time": datetime(day.year, day.month, day.day, 13, 30)})
        status[p.lookup] = final
    return status


def _game_lines(rng: random.Random, day: date, game_id: str, home: Team, away: Team, out: dict) -> None:
    fair_spread = -(home.strength - away.strength) * 6.0 - 2.5  # home favourites get a negative spread
    fair_total = 2 * 113.0 + (home.pace + away.pace - 200.0) * 2.2
    for book in LINE_BOOKS:
        out["odds_api_game_lines"].append({
            "game_date": day, "game_id": game_id, "home_team_abbr": home.abbr, "away_team_abbr": away.abbr, "bookmaker": book,
            "home_spread": round((fair_spread + rng.gauss(0, 1.0)) * 2) / 2,
            "game_total": round((fair_total + rng.gauss(0, 2.0)) * 2) / 2,
        })


def _props(rng: random.Random, day: date, game_id: str, team: Team, status: dict[str, str], out: dict) -> None:
    """Points lines for the rotation players who are not ruled out."""
    for p in team.players:
        if p.expected_minutes < 20 or status.get(p.lookup) == "Out":
            continue
        fair = p.expected_points * 1.05 + rng.gauss(0, 1.2)  # books shade towards the over
        for table, books in PROP_BOOKS.items():
            for book in books:
                line = max(0.5, _half_point(fair + rng.gauss(0, 0.4)))
                snapshots = (10, 16) if table.startswith("odds_api") else (15,)
                for k, hour in enumerate(snapshots):
                    moved = line + (rng.choice((-0.5, 0.0, 0.0, 0.5)) if k else 0.0)
                    price = rng.choice((-125, -120, -115, -110, -110, -105, 100))
                    row = {"game_date": day, "player_lookup": p.lookup, "bookmaker": book, "points_line": moved,
                           "over_price": price, "under_price": UNDER_PRICE[price],
                           "snapshot_time": datetime(day.year, day.month, day.day, hour, 0)}
                    if table.startswith("odds_api"):
                        row["game_id"] = game_id
                    out[table].append(row)


def _half_point(x: float) -> float:
    """Props lines sit on half points (no pushes): 21.2 -> 21.5, 20.9 -> 20.5."""
    return float(int(x)) + 0.5


def _play(rng: random.Random, day: date, game_id: str, home: Team, away: Team, status: dict[str, str], out: dict) -> None:
    result = simulate_game(rng, home, away, status)
    for team, opp in ((home, away), (away, home)):
        box = result.teams[team.abbr]
        out["nbac_team_boxscore"].append({"game_date": day, "game_id": game_id, "team_abbr": team.abbr, "opponent_team_abbr": opp.abbr,
                                          "is_home": team is home, **box.totals()})
        quarters = box.quarters(rng)
        possessions = box.possessions  # computed once: it sums every line
        out["nbac_scoreboard_v2"].append({"game_date": day, "game_id": game_id, "team_abbr": team.abbr, "opponent_team_abbr": opp.abbr,
                                          "is_home": team is home, "q1_points": quarters[0], "q2_points": quarters[1],
                                          "q3_points": quarters[2], "q4_points": quarters[3], "ot_points": 0, "game_status": "Final"})
        for line in box.lines:
            p = line.player
            common = {"game_date": day, "game_id": game_id, "player_lookup": p.lookup, "team_abbr": team.abbr}
            out["nbac_gamebook"].append({**common, "player_name": p.name, "opponent_team_abbr": opp.abbr, **line.gamebook()})
            if line.minutes <= 0:
                continue
            out["nbac_player_boxscores"].append({**common, "starter": line.starter, "minutes": line.minutes, "points": line.points,
                                                 "rebounds": line.oreb + line.dreb, "assists": line.ast,
                                                 "fg_made": line.fgm, "fg_attempted": line.fga})
            out["bdl_player_boxscores"].append({**common, "minutes": line.minutes, "points": line.points,
                                                "rebounds": line.oreb + line.dreb, "assists": line.ast})
            assisted = round(line.fgm * p.assisted_share)
            out["bigdataball_play_by_play"].append({**common, "seconds_played": int(round(line.minutes * 60)),
                                                    "on_court_possessions": int(round(line.minutes / 48.0 * possessions)),
                                                    "assisted_fg_made": assisted, "unassisted_fg_made": line.fgm - assisted})
            for zone, (att, made) in line.zones.items():
                if att:
                    out["nbac_play_by_play"].append({**common, "opponent_team_abbr": opp.abbr, "shot_zone": zone,
                                                     "fg_attempted": att, "fg_made": made})


def demo_summary(warehouse: Any, game_date: date | str, player_lookup: str) -> str:
    """``pipectl demo``'s closing lines: the day's picks and the updated player's prediction."""
    from framework.backends.protocols import QueryParam

    day = QueryParam("game_date", str(game_date), "DATE")
    from framework.sql.dialects import get_dialect

    ph = get_dialect(warehouse.dialect).param
    picks = warehouse.query(
        "SELECT recommendation, COUNT(*) AS n FROM nba_predictions.player_prop_predictions "
        f"WHERE game_date = {ph('game_date')} GROUP BY recommendation ORDER BY recommendation", [day])
    mine = warehouse.query(
        "SELECT predicted_points, points_line, edge, recommendation, confidence FROM nba_predictions.player_prop_predictions "
        f"WHERE game_date = {ph('game_date')} AND player_lookup = {ph('player')}", [day, QueryParam("player", player_lookup)])
    lines = ["", f"predictions for {game_date}: " + ", ".join(f"{r['recommendation']} {r['n']}" for r in picks)]
    for r in mine:
        lines.append(f"{player_lookup}: predicted {r['predicted_points']:.1f} points vs line {r['points_line']} "
                     f"(edge {r['edge']:+.1f}) -> {r['recommendation']} (confidence {r['confidence']:.2f})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m pipelines.nba_props.sample_data --db FILE --start DATE --days N``."""
    import duckdb

    parser = argparse.ArgumentParser(description="Fill the nba_landing tables with deterministic sample data.")
    parser.add_argument("--db", default=".pipectl/warehouse.duckdb", help="DuckDB file (created if missing)")
    parser.add_argument("--start", default=DEFAULT_START.isoformat(), help="first game date (YYYY-MM-DD)")
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--players-per-team", type=int, default=15)
    parser.add_argument("--leagues", type=int, default=1, help="independent 30-team leagues (scale tests)")
    args = parser.parse_args(argv)
    from pathlib import Path

    Path(args.db).parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(args.db)
    try:
        counts = generate(con, args.start, args.days, args.seed, args.players_per_team, leagues=args.leagues)
    finally:
        con.close()
    for name, n in sorted(counts.items()):
        print(f"{landing.LANDING_DATASET}.{name}: {n} rows")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
