-- Possessions on court and assisted/unassisted makes per player and game.
SELECT
  b.game_date,
  b.game_id,
  b.player_lookup,
  UPPER(TRIM(b.team_abbr)) AS team_abbr,
  COALESCE(b.seconds_played, 0) AS seconds_played,
  COALESCE(b.on_court_possessions, 0) AS on_court_possessions,
  COALESCE(b.assisted_fg_made, 0) AS assisted_fg_made,
  COALESCE(b.unassisted_fg_made, 0) AS unassisted_fg_made,
  CAST(CURRENT_TIMESTAMP AS TIMESTAMP) AS processed_at
FROM {{ source('landing_bigdataball_pbp') }} AS b
WHERE b.game_date = {{ partition }}
  AND {{ entity_filter('b.player_lookup') }}
