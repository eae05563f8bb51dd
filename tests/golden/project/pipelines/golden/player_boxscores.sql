SELECT
  b.game_date,
  b.player_lookup,
  b.team_abbr,
  b.points,
  b.minutes,
  CURRENT_TIMESTAMP AS processed_at
FROM {{ source('boxscores_landing') }} AS b
WHERE b.game_date = {{ partition }}
  AND {{ entity_filter('b.player_lookup') }}
