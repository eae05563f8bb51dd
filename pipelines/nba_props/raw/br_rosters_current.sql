-- Roster snapshot of the day: who plays for whom (the player <-> team mapping table).
SELECT
  r.game_date,
  r.player_lookup,
  r.player_name,
  UPPER(TRIM(r.team_abbr)) AS team_abbr,
  r.position,
  r.jersey_number,
  CAST(CURRENT_TIMESTAMP AS TIMESTAMP) AS processed_at
FROM {{ source('landing_rosters') }} AS r
WHERE r.game_date = {{ partition }}
  AND {{ entity_filter('r.player_lookup') }}
