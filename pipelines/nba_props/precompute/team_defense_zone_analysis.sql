-- Each team's defence over its last 10 games before the day: points allowed, defensive rating
-- (points allowed per 100 opponent possessions) and the accuracy it allows by shot zone.
-- Only earlier dates are read, so a prediction never sees the result it predicts.
WITH recent AS (
  SELECT
    d.team_abbr,
    d.points_allowed,
    d.opp_possessions,
    d.opp_rim_fg_attempted,
    d.opp_rim_fg_made,
    d.opp_mid_fg_attempted,
    d.opp_mid_fg_made,
    d.opp_three_attempted,
    d.opp_three_made,
    ROW_NUMBER() OVER (PARTITION BY d.team_abbr ORDER BY d.game_date DESC) AS game_rank
  FROM {{ ref('team_defense_game_summary') }} AS d
  WHERE d.game_date < {{ partition }}
    AND {{ entity_filter('d.team_abbr') }}
),
totals AS (
  SELECT
    r.team_abbr,
    COUNT(*) AS games_in_sample,
    ROUND(AVG(r.points_allowed), 2) AS points_allowed_avg,
    ROUND(100.0 * SUM(r.points_allowed) / NULLIF(SUM(r.opp_possessions), 0), 2) AS defensive_rating,
    ROUND(SUM(r.opp_rim_fg_made) / NULLIF(1.0 * SUM(r.opp_rim_fg_attempted), 0), 4) AS rim_fg_pct_allowed,
    ROUND(SUM(r.opp_mid_fg_made) / NULLIF(1.0 * SUM(r.opp_mid_fg_attempted), 0), 4) AS mid_fg_pct_allowed,
    ROUND(SUM(r.opp_three_made) / NULLIF(1.0 * SUM(r.opp_three_attempted), 0), 4) AS three_fg_pct_allowed
  FROM recent AS r
  WHERE r.game_rank <= 10
  GROUP BY r.team_abbr
)
SELECT
  CAST({{ partition }} AS DATE) AS game_date,
  t.team_abbr,
  t.games_in_sample,
  t.points_allowed_avg,
  t.defensive_rating,
  t.rim_fg_pct_allowed,
  t.mid_fg_pct_allowed,
  t.three_fg_pct_allowed,
  CASE
    WHEN t.defensive_rating IS NULL THEN NULL
    WHEN t.defensive_rating < 108 THEN 'elite'
    WHEN t.defensive_rating < 116 THEN 'average'
    ELSE 'weak'
  END AS defense_tier,
  CAST(CURRENT_TIMESTAMP AS TIMESTAMP) AS processed_at
FROM totals AS t
