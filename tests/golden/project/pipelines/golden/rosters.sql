SELECT r.game_date, r.player_lookup, r.team_abbr
FROM {{ source('rosters_landing') }} AS r
WHERE r.game_date = {{ partition }}
  AND {{ entity_filter('r.player_lookup') }}
