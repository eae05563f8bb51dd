-- Line scores by quarter; points derived from the quarters. The team code is normalised, and
-- the input declares the same key expression so detection agrees (see nbac_team_boxscore.sql).
SELECT
  s.game_date,
  s.game_id,
  UPPER(TRIM(s.team_abbr)) AS team_abbr,
  UPPER(TRIM(s.opponent_team_abbr)) AS opponent_team_abbr,
  s.is_home,
  COALESCE(s.q1_points, 0) AS q1_points,
  COALESCE(s.q2_points, 0) AS q2_points,
  COALESCE(s.q3_points, 0) AS q3_points,
  COALESCE(s.q4_points, 0) AS q4_points,
  COALESCE(s.ot_points, 0) AS ot_points,
  COALESCE(s.q1_points, 0) + COALESCE(s.q2_points, 0) + COALESCE(s.q3_points, 0)
    + COALESCE(s.q4_points, 0) + COALESCE(s.ot_points, 0) AS points,
  s.game_status,
  CAST(CURRENT_TIMESTAMP AS TIMESTAMP) AS processed_at
FROM {{ source('landing_scoreboard') }} AS s
WHERE s.game_date = {{ partition }}
  AND {{ entity_filter('UPPER(TRIM(s.team_abbr))') }}
