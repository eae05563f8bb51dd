-- Gamebook player lines: typed, team codes normalized, rebounds derived, missing counts as 0.
SELECT
  g.game_date,
  g.game_id,
  g.player_lookup,
  g.player_name,
  UPPER(TRIM(g.team_abbr)) AS team_abbr,
  UPPER(TRIM(g.opponent_team_abbr)) AS opponent_team_abbr,
  COALESCE(g.starter, FALSE) AS starter,
  LOWER(COALESCE(g.player_status, 'active')) AS player_status,
  COALESCE(g.minutes, 0.0) AS minutes,
  COALESCE(g.points, 0) AS points,
  COALESCE(g.fg_made, 0) AS fg_made,
  COALESCE(g.fg_attempted, 0) AS fg_attempted,
  COALESCE(g.three_made, 0) AS three_made,
  COALESCE(g.three_attempted, 0) AS three_attempted,
  COALESCE(g.ft_made, 0) AS ft_made,
  COALESCE(g.ft_attempted, 0) AS ft_attempted,
  COALESCE(g.offensive_rebounds, 0) AS offensive_rebounds,
  COALESCE(g.defensive_rebounds, 0) AS defensive_rebounds,
  COALESCE(g.offensive_rebounds, 0) + COALESCE(g.defensive_rebounds, 0) AS rebounds,
  COALESCE(g.assists, 0) AS assists,
  COALESCE(g.steals, 0) AS steals,
  COALESCE(g.blocks, 0) AS blocks,
  COALESCE(g.turnovers, 0) AS turnovers,
  COALESCE(g.personal_fouls, 0) AS personal_fouls,
  COALESCE(g.plus_minus, 0) AS plus_minus,
  CAST(CURRENT_TIMESTAMP AS TIMESTAMP) AS processed_at
FROM {{ source('landing_gamebook') }} AS g
WHERE g.game_date = {{ partition }}
  AND {{ entity_filter('g.player_lookup') }}
