-- Live box score lines of players who checked in.
SELECT
  b.game_date,
  b.game_id,
  b.player_lookup,
  UPPER(TRIM(b.team_abbr)) AS team_abbr,
  COALESCE(b.starter, FALSE) AS starter,
  COALESCE(b.minutes, 0.0) AS minutes,
  COALESCE(b.points, 0) AS points,
  COALESCE(b.rebounds, 0) AS rebounds,
  COALESCE(b.assists, 0) AS assists,
  COALESCE(b.fg_made, 0) AS fg_made,
  COALESCE(b.fg_attempted, 0) AS fg_attempted,
  CAST(CURRENT_TIMESTAMP AS TIMESTAMP) AS processed_at
FROM {{ source('landing_player_boxscores') }} AS b
WHERE b.game_date = {{ partition }}
  AND {{ entity_filter('b.player_lookup') }}
