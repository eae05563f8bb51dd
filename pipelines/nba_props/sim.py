"""A small basketball simulator behind the sample data: players, teams, one game's box score.

Kept apart from the table-writing code so the model can be read on its own: a player's shot
volume follows his minutes and usage, his accuracy by zone follows his skill minus the
opponent's defence, and the team box score is exactly the sum of its players' lines (so the
transforms' usage rate, a share of team possessions, always lands in 0..1).
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

TEAMS = (
    ("ATL", "State Farm Arena"), ("BOS", "TD Garden"), ("BKN", "Barclays Center"), ("CHA", "Spectrum Center"),
    ("CHI", "United Center"), ("CLE", "Rocket Mortgage FieldHouse"), ("DAL", "American Airlines Center"),
    ("DEN", "Ball Arena"), ("DET", "Little Caesars Arena"), ("GSW", "Chase Center"), ("HOU", "Toyota Center"),
    ("IND", "Gainbridge Fieldhouse"), ("LAC", "Intuit Dome"), ("LAL", "Crypto.com Arena"), ("MEM", "FedExForum"),
    ("MIA", "Kaseya Center"), ("MIL", "Fiserv Forum"), ("MIN", "Target Center"), ("NOP", "Smoothie King Center"),
    ("NYK", "Madison Square Garden"), ("OKC", "Paycom Center"), ("ORL", "Kia Center"), ("PHI", "Wells Fargo Center"),
    ("PHX", "Footprint Center"), ("POR", "Moda Center"), ("SAC", "Golden 1 Center"), ("SAS", "Frost Bank Center"),
    ("TOR", "Scotiabank Arena"), ("UTA", "Delta Center"), ("WAS", "Capital One Arena"),
)
STARS = {"LAL": "LeBron James", "GSW": "Stephen Curry", "DEN": "Nikola Jokic", "BOS": "Jayson Tatum",
         "MIL": "Giannis Antetokounmpo", "DAL": "Luka Doncic", "PHX": "Kevin Durant", "OKC": "Shai Gilgeous-Alexander"}
FIRST = ("Aaron Andre Bennie Caleb Darius Elijah Felix Gabe Hunter Isaiah Jalen Keon Lamar Marcus Nolan Omar "
         "Parker Quentin Rashad Silas Tariq Ulysses Victor Wendell Xavier Yusuf Zion Brandon Cedric Dante Emmett "
         "Franklin Gideon Harlan Ivan Jerome Kendrick Luther Malik Nathaniel").split()
LAST = ("Adams Banks Carter Dawson Ellis Fleming Grant Hayes Irving Jenkins Keller Lawson Mitchell Norris Owens "
        "Porter Quinn Reyes Sutton Thornton Underwood Vaughn Walters Young Zimmerman Bishop Cole Drake Easton "
        "Foster Garrison Holloway Ingram Jordan Kemp Lyons Monroe Nash Osborne Pruitt").split()
EXPECTED_MINUTES = (34, 33, 32, 30, 28, 25, 22, 20, 18, 15, 12, 10, 8, 6, 4)
POSITIONS = ("PG", "SG", "SF", "PF", "C")
ZONES = ("rim", "mid_range", "three")


@dataclass(frozen=True)
class Player:
    lookup: str
    name: str
    position: str
    jersey: int
    rank: int  # 0 = best player of the team
    expected_minutes: float
    usage: float  # relative shot volume per minute
    three_rate: float  # share of attempts from three
    rim_share: float  # share of two-point attempts at the rim
    pct: tuple[float, float, float]  # make probability at rim, mid range, three
    ft_rate: float
    ft_pct: float
    reb_rate: float
    ast_rate: float
    assisted_share: float
    expected_points: float = 0.0


@dataclass(frozen=True)
class Team:
    abbr: str
    arena: str
    strength: float  # -1..1
    pace: float  # possessions per 48 minutes
    defense: float  # -1..1, good defence lowers opponents' accuracy
    players: tuple[Player, ...] = ()


@dataclass
class Line:
    """One player's line in one game."""

    player: Player
    status: str  # active | dnp | inactive
    starter: bool = False
    minutes: float = 0.0
    zones: dict[str, tuple[int, int]] = field(default_factory=dict)
    fta: int = 0
    ftm: int = 0
    oreb: int = 0
    dreb: int = 0
    ast: int = 0
    stl: int = 0
    blk: int = 0
    tov: int = 0
    pf: int = 0
    plus_minus: int = 0

    @property
    def fga(self) -> int:
        return sum(a for a, _ in self.zones.values())

    @property
    def fgm(self) -> int:
        return sum(m for _, m in self.zones.values())

    @property
    def points(self) -> int:
        return 2 * self.fgm + self.zones.get("three", (0, 0))[1] + self.ftm

    def gamebook(self) -> dict:
        three = self.zones.get("three", (0, 0))
        return {"starter": self.starter, "player_status": self.status, "minutes": self.minutes, "points": self.points,
                "fg_made": self.fgm, "fg_attempted": self.fga, "three_made": three[1], "three_attempted": three[0],
                "ft_made": self.ftm, "ft_attempted": self.fta, "offensive_rebounds": self.oreb, "defensive_rebounds": self.dreb,
                "assists": self.ast, "steals": self.stl, "blocks": self.blk, "turnovers": self.tov,
                "personal_fouls": self.pf, "plus_minus": self.plus_minus}


@dataclass
class TeamBox:
    lines: list[Line]

    @property
    def points(self) -> int:
        return sum(line.points for line in self.lines)

    @property
    def possessions(self) -> float:
        t = self.totals()
        return t["fg_attempted"] - t["offensive_rebounds"] + t["turnovers"] + 0.44 * t["ft_attempted"]

    def totals(self) -> dict:
        keys = ("points", "fg_made", "fg_attempted", "three_made", "three_attempted", "ft_made", "ft_attempted",
                "offensive_rebounds", "defensive_rebounds", "assists", "steals", "blocks", "turnovers", "personal_fouls")
        books = [line.gamebook() for line in self.lines]
        return {k: sum(b[k] for b in books) for k in keys}

    def quarters(self, rng: random.Random) -> list[int]:
        """Split the final score into four quarters that add up to it."""
        weights = [rng.uniform(0.8, 1.2) for _ in range(4)]
        parts = [int(self.points * w / sum(weights)) for w in weights]
        parts[-1] += self.points - sum(parts)
        return parts


@dataclass
class GameResult:
    teams: dict[str, TeamBox]


def lookup_of(name: str) -> str:
    """``LeBron James`` -> ``lebronjames`` (letters only, lower case), as the scrapers do."""
    return "".join(ch for ch in name.lower() if "a" <= ch <= "z")


def build_league(rng: random.Random, players_per_team: int = 15) -> list[Team]:
    names = [f"{f} {last}" for f in FIRST for last in LAST]
    rng.shuffle(names)
    used = {lookup_of(n) for n in STARS.values()}
    pool = iter(n for n in names if lookup_of(n) not in used)
    teams = []
    for abbr, arena in TEAMS:
        strength = rng.uniform(-1, 1)
        players = []
        for rank in range(players_per_team):
            name = STARS[abbr] if rank == 0 and abbr in STARS else next(pool)
            players.append(_player(rng, name, rank, strength))
        team = Team(abbr, arena, strength, rng.uniform(96, 103), rng.uniform(-1, 1), tuple(players))
        teams.append(_with_expected_points(team))
    return teams


def _player(rng: random.Random, name: str, rank: int, strength: float) -> Player:
    position = POSITIONS[rank % 5]
    big = position in ("PF", "C")
    minutes = EXPECTED_MINUTES[rank] if rank < len(EXPECTED_MINUTES) else 3.0
    skill = 0.03 * strength + (0.02 if rank < 3 else 0.0)
    return Player(
        lookup=lookup_of(name), name=name, position=position, jersey=(rank * 7 + len(name)) % 100, rank=rank,
        expected_minutes=float(minutes), usage=(rng.uniform(2.3, 2.9) if rank == 0 else rng.uniform(1.4, 2.0) if rank < 3 else rng.uniform(0.7, 1.2)),
        three_rate=rng.uniform(0.05, 0.25) if big else rng.uniform(0.3, 0.55),
        rim_share=rng.uniform(0.6, 0.85) if big else rng.uniform(0.35, 0.6),
        pct=(0.62 + skill + rng.uniform(-0.04, 0.04), 0.40 + skill + rng.uniform(-0.04, 0.04), 0.35 + skill + rng.uniform(-0.04, 0.03)),
        ft_rate=rng.uniform(0.15, 0.4), ft_pct=rng.uniform(0.65, 0.9) if big else rng.uniform(0.75, 0.92),
        reb_rate=rng.uniform(0.22, 0.35) if big else rng.uniform(0.1, 0.18), ast_rate=rng.uniform(0.03, 0.08) if big else rng.uniform(0.06, 0.2),
        assisted_share=rng.uniform(0.4, 0.8),
    )


def _expected_fga(players: tuple[Player, ...], minutes: dict[str, float], pace: float) -> dict[str, float]:
    weight = {p.lookup: p.usage * minutes.get(p.lookup, 0.0) for p in players}
    total = sum(weight.values()) or 1.0
    team_fga = 88.0 * pace / 100.0
    return {k: team_fga * w / total for k, w in weight.items()}


def _with_expected_points(team: Team) -> Team:
    fga = _expected_fga(team.players, {p.lookup: p.expected_minutes for p in team.players}, team.pace)
    players = []
    for p in team.players:
        a = fga[p.lookup]
        twos = a * (1 - p.three_rate)
        pts = 2 * twos * (p.rim_share * p.pct[0] + (1 - p.rim_share) * p.pct[1]) + 3 * a * p.three_rate * p.pct[2] + a * p.ft_rate * p.ft_pct
        players.append(Player(**{**p.__dict__, "expected_points": round(pts, 2)}))
    return Team(team.abbr, team.arena, team.strength, team.pace, team.defense, tuple(players))


def _count(rng: random.Random, mean: float) -> int:
    """A Poisson-like count (normal approximation, never negative)."""
    if mean <= 0:
        return 0
    return max(0, int(round(rng.gauss(mean, math.sqrt(mean)))))


def _binomial(rng: random.Random, n: int, p: float) -> int:
    p = min(max(p, 0.0), 1.0)
    return sum(1 for _ in range(n) if rng.random() < p)


def simulate_game(rng: random.Random, home: Team, away: Team, status: dict[str, str]) -> GameResult:
    """Box scores of both teams; ``status`` is the injury report's final status by player."""
    boxes = {home.abbr: _team_box(rng, home, away, status, home=True), away.abbr: _team_box(rng, away, home, status, home=False)}
    margin = boxes[home.abbr].points - boxes[away.abbr].points
    for abbr, sign in ((home.abbr, 1), (away.abbr, -1)):
        for line in boxes[abbr].lines:
            if line.minutes > 0:
                line.plus_minus = int(round(sign * margin * line.minutes / 48.0 + rng.gauss(0, 4)))
    return GameResult(boxes)


def _team_box(rng: random.Random, team: Team, opp: Team, status: dict[str, str], home: bool) -> TeamBox:
    plays = {"Out": 0.0, "Doubtful": 0.1, "Questionable": 0.5, "Probable": 0.9}
    lines: list[Line] = []
    for p in team.players:
        if rng.random() >= plays.get(status.get(p.lookup, ""), 1.0):
            lines.append(Line(p, "inactive"))
        elif p.rank >= 12 and rng.random() < 0.5:
            lines.append(Line(p, "dnp"))
        else:
            lines.append(Line(p, "active", minutes=max(2.0, min(44.0, rng.gauss(p.expected_minutes, 3.5)))))
    active = [line for line in lines if line.status == "active"]
    scale = 240.0 / sum(line.minutes for line in active)
    for k, line in enumerate(sorted(active, key=lambda x: x.player.rank)):
        line.minutes = round(line.minutes * scale, 1)
        line.starter = k < 5
    pace = (team.pace + opp.pace) / 2.0
    fga = _expected_fga(tuple(line.player for line in active), {line.player.lookup: line.minutes for line in active}, pace)
    defense = 0.03 * opp.defense - (0.01 if home else 0.0)
    for line in active:
        p, m = line.player, line.minutes
        attempts = _count(rng, fga[p.lookup])
        threes = _binomial(rng, attempts, p.three_rate)
        rim = _binomial(rng, attempts - threes, p.rim_share)
        mid = attempts - threes - rim
        line.zones = {z: (a, _binomial(rng, a, pct - defense)) for z, a, pct in zip(ZONES, (rim, mid, threes), p.pct)}
        line.fta = _count(rng, p.ft_rate * attempts)
        line.ftm = _binomial(rng, line.fta, p.ft_pct)
        line.oreb = _count(rng, p.reb_rate * m * 0.25)
        line.dreb = _count(rng, p.reb_rate * m * 0.75)
        line.ast = _count(rng, p.ast_rate * m)
        line.stl = _count(rng, 0.03 * m)
        line.blk = _count(rng, (0.04 if p.position in ("PF", "C") else 0.01) * m)
        line.tov = _count(rng, 0.05 * m * p.usage / 1.2)
        line.pf = min(6, _count(rng, 0.07 * m))
    return TeamBox(lines)
