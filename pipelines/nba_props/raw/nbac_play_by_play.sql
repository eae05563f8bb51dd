-- Shot attempts per player, game and zone; unknown zones are dropped, makes capped by attempts.
SELECT
  p.game_date,
  p.game_id,
  p.player_lookup,
  UPPER(TRIM(p.team_abbr)) AS team_abbr,
  UPPER(TRIM(p.opponent_team_abbr)) AS opponent_team_abbr,
  p.shot_zone,
  COALESCE(p.fg_attempted, 0) AS fg_attempted,
  LEAST(COALESCE(p.fg_made, 0), COALESCE(p.fg_attempted, 0)) AS fg_made,
  CAST(CURRENT_TIMESTAMP AS TIMESTAMP) AS processed_at
FROM {{ source('landing_play_by_play') }} AS p
WHERE p.game_date = {{ partition }}
  AND p.shot_zone IN ('rim', 'mid_range', 'three')
  AND {{ entity_filter('p.player_lookup') }}
