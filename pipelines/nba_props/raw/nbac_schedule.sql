-- The schedule has one row per game; teams are the entity, so unpivot to one row per team.
SELECT
  s.game_date,
  s.game_id,
  s.home_team_abbr AS team_abbr,
  s.away_team_abbr AS opponent_team_abbr,
  TRUE AS is_home,
  s.game_status,
  s.start_time_et,
  s.arena,
  CAST(CURRENT_TIMESTAMP AS TIMESTAMP) AS processed_at
FROM {{ source('landing_schedule') }} AS s
WHERE s.game_date = {{ partition }}
  AND {{ entity_filter('s.home_team_abbr') }}
UNION ALL
SELECT
  s.game_date,
  s.game_id,
  s.away_team_abbr AS team_abbr,
  s.home_team_abbr AS opponent_team_abbr,
  FALSE AS is_home,
  s.game_status,
  s.start_time_et,
  s.arena,
  CAST(CURRENT_TIMESTAMP AS TIMESTAMP) AS processed_at
FROM {{ source('landing_schedule') }} AS s
WHERE s.game_date = {{ partition }}
  AND {{ entity_filter('s.away_team_abbr') }}
