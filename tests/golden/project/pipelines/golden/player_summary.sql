SELECT
  b.game_date,
  b.player_lookup,
  b.points,
  (SELECT COUNT(*) FROM {{ source('schedule') }} AS s WHERE s.game_date = {{ partition }}) AS games_today
FROM {{ ref('player_boxscores') }} AS b
WHERE b.game_date = {{ partition }}
  AND {{ entity_filter('b.player_lookup') }}
