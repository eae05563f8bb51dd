-- Team box score per game, rebounds derived. Scrapers send team codes in any case and with
-- stray spaces: the key is normalised here and declared on the input (key: UPPER(TRIM(team_abbr)))
-- so change detection groups and selects landing rows by the same normalised code.
SELECT
  t.game_date,
  t.game_id,
  UPPER(TRIM(t.team_abbr)) AS team_abbr,
  UPPER(TRIM(t.opponent_team_abbr)) AS opponent_team_abbr,
  t.is_home,
  COALESCE(t.points, 0) AS points,
  COALESCE(t.fg_made, 0) AS fg_made,
  COALESCE(t.fg_attempted, 0) AS fg_attempted,
  COALESCE(t.three_made, 0) AS three_made,
  COALESCE(t.three_attempted, 0) AS three_attempted,
  COALESCE(t.ft_made, 0) AS ft_made,
  COALESCE(t.ft_attempted, 0) AS ft_attempted,
  COALESCE(t.offensive_rebounds, 0) AS offensive_rebounds,
  COALESCE(t.defensive_rebounds, 0) AS defensive_rebounds,
  COALESCE(t.offensive_rebounds, 0) + COALESCE(t.defensive_rebounds, 0) AS rebounds,
  COALESCE(t.assists, 0) AS assists,
  COALESCE(t.steals, 0) AS steals,
  COALESCE(t.blocks, 0) AS blocks,
  COALESCE(t.turnovers, 0) AS turnovers,
  COALESCE(t.personal_fouls, 0) AS personal_fouls,
  CAST(CURRENT_TIMESTAMP AS TIMESTAMP) AS processed_at
FROM {{ source('landing_team_boxscore') }} AS t
WHERE t.game_date = {{ partition }}
  AND {{ entity_filter('UPPER(TRIM(t.team_abbr))') }}
