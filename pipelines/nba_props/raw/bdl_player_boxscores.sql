-- balldontlie box scores (processor disabled; kept so it can be re-enabled as a backup).
SELECT
  b.game_date,
  b.game_id,
  b.player_lookup,
  UPPER(TRIM(b.team_abbr)) AS team_abbr,
  COALESCE(b.minutes, 0.0) AS minutes,
  COALESCE(b.points, 0) AS points,
  COALESCE(b.rebounds, 0) AS rebounds,
  COALESCE(b.assists, 0) AS assists,
  CAST(CURRENT_TIMESTAMP AS TIMESTAMP) AS processed_at
FROM {{ source('landing_bdl_boxscores') }} AS b
WHERE b.game_date = {{ partition }}
  AND {{ entity_filter('b.player_lookup') }}
