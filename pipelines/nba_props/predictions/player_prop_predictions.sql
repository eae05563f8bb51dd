-- A simple, explainable model for every player with a points line:
--   baseline  = 0.5 x last-5 average + 0.3 x last-10 average + 0.2 x season average
--   predicted = baseline x composite_adjustment (fatigue, opponent defence, zones, pace, role, home)
--   edge      = predicted - line; OVER when edge >= 1.5, UNDER when edge <= -1.5, else PASS.
-- Players with fewer than 3 games of history or ruled out/doubtful are always PASS.
-- confidence grows with the edge measured in standard deviations of recent scoring, scaled
-- by feature quality, and is capped at 0.95.
WITH features AS (
  SELECT
    m.game_date, m.player_lookup, m.team_abbr, m.opponent_team_abbr, m.injury_status, m.points_line, m.games_played,
    m.points_avg_last5, m.points_avg_last10, m.points_avg_season, m.points_std_last10, m.composite_adjustment,
    m.feature_quality_score
  FROM {{ ref('ml_feature_store') }} AS m
  WHERE m.game_date = {{ partition }}
    AND m.points_line IS NOT NULL
    AND {{ entity_filter('m.player_lookup') }}
),
scored AS (
  SELECT
    f.*,
    ROUND(
      (0.5 * COALESCE(f.points_avg_last5, f.points_line)
       + 0.3 * COALESCE(f.points_avg_last10, f.points_avg_last5, f.points_line)
       + 0.2 * COALESCE(f.points_avg_season, f.points_avg_last10, f.points_avg_last5, f.points_line))
      * f.composite_adjustment, 2) AS predicted_points
  FROM features AS f
),
edged AS (
  SELECT s.*, ROUND(s.predicted_points - s.points_line, 2) AS edge
  FROM scored AS s
)
SELECT
  e.game_date,
  e.player_lookup,
  e.team_abbr,
  e.opponent_team_abbr,
  'weighted_form_v1' AS model_version,
  e.predicted_points,
  e.points_line,
  e.edge,
  CASE
    WHEN e.games_played < 3 OR e.injury_status IN ('Out', 'Doubtful') THEN 'PASS'
    WHEN e.edge >= 1.5 THEN 'OVER'
    WHEN e.edge <= -1.5 THEN 'UNDER'
    ELSE 'PASS'
  END AS recommendation,
  CASE
    WHEN e.games_played < 3 OR e.injury_status IN ('Out', 'Doubtful') THEN 0.5
    ELSE ROUND(LEAST(0.95, 0.5 + ABS(e.edge) / (4.0 * GREATEST(COALESCE(e.points_std_last10, 6.0), 3.0))
                             * e.feature_quality_score / 100.0), 3)
  END AS confidence,
  CAST(CURRENT_TIMESTAMP AS TIMESTAMP) AS processed_at
FROM edged AS e
