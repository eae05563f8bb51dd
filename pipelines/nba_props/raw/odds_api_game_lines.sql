-- One row per game and book becomes one row per team and book, spread from the team's side.
-- implied_team_total = (total - spread) / 2: a 6-point favourite (spread -6) of a 230 game scores 118.
SELECT
  l.game_date,
  l.game_id,
  l.home_team_abbr AS team_abbr,
  l.away_team_abbr AS opponent_team_abbr,
  l.bookmaker,
  l.home_spread AS spread,
  l.game_total,
  (l.game_total - l.home_spread) / 2.0 AS implied_team_total,
  CAST(CURRENT_TIMESTAMP AS TIMESTAMP) AS processed_at
FROM {{ source('landing_game_lines') }} AS l
WHERE l.game_date = {{ partition }}
  AND {{ entity_filter('l.home_team_abbr') }}
UNION ALL
SELECT
  l.game_date,
  l.game_id,
  l.away_team_abbr AS team_abbr,
  l.home_team_abbr AS opponent_team_abbr,
  l.bookmaker,
  -l.home_spread AS spread,
  l.game_total,
  (l.game_total + l.home_spread) / 2.0 AS implied_team_total,
  CAST(CURRENT_TIMESTAMP AS TIMESTAMP) AS processed_at
FROM {{ source('landing_game_lines') }} AS l
WHERE l.game_date = {{ partition }}
  AND {{ entity_filter('l.away_team_abbr') }}
