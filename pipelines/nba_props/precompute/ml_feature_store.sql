-- One feature vector per player playing on the day (schema v2): form from the daily cache,
-- shot mix, the opponent's defence and the composite adjustment. feature_quality_score is the
-- percentage of the 11 model features that are present (a rookie's first game scores low).
WITH cache AS (
  SELECT
    c.game_date, c.player_lookup, c.team_abbr, c.opponent_team_abbr, c.injury_status, c.points_line, c.games_played,
    c.points_avg_last5, c.points_avg_last10, c.points_avg_season, c.points_std_last10, c.minutes_avg_last10,
    c.usage_rate_last10
  FROM {{ ref('player_daily_cache') }} AS c
  WHERE c.game_date = {{ partition }}
    AND {{ entity_filter('c.player_lookup') }}
),
factors AS (
  SELECT f.player_lookup, f.composite_adjustment
  FROM {{ ref('player_composite_factors') }} AS f
  WHERE f.game_date = {{ partition }}
    AND {{ entity_filter('f.player_lookup') }}
),
zones AS (
  SELECT z.player_lookup, z.three_rate, z.rim_rate
  FROM {{ ref('player_shot_zone_analysis') }} AS z
  WHERE z.game_date = {{ partition }}
    AND {{ entity_filter('z.player_lookup') }}
),
opponent AS (
  -- reached through the opponent -> player mapping
  SELECT d.team_abbr, d.defensive_rating
  FROM {{ ref('team_defense_zone_analysis') }} AS d
  WHERE d.game_date = {{ partition }}
    AND d.team_abbr IN (SELECT c.opponent_team_abbr FROM cache AS c)
),
features AS (
  SELECT
    c.game_date,
    c.player_lookup,
    c.team_abbr,
    c.opponent_team_abbr,
    c.injury_status,
    c.points_line,
    c.games_played,
    c.points_avg_last5,
    c.points_avg_last10,
    c.points_avg_season,
    c.points_std_last10,
    c.minutes_avg_last10,
    c.usage_rate_last10,
    z.three_rate,
    z.rim_rate,
    o.defensive_rating AS opp_defensive_rating,
    COALESCE(f.composite_adjustment, 1.0) AS composite_adjustment
  FROM cache AS c
  LEFT JOIN factors AS f ON f.player_lookup = c.player_lookup
  LEFT JOIN zones AS z ON z.player_lookup = c.player_lookup
  LEFT JOIN opponent AS o ON o.team_abbr = c.opponent_team_abbr
),
counted AS (
  SELECT
    x.*,
    (CASE WHEN x.points_line IS NULL THEN 0 ELSE 1 END
     + CASE WHEN x.points_avg_last5 IS NULL THEN 0 ELSE 1 END
     + CASE WHEN x.points_avg_last10 IS NULL THEN 0 ELSE 1 END
     + CASE WHEN x.points_avg_season IS NULL THEN 0 ELSE 1 END
     + CASE WHEN x.points_std_last10 IS NULL THEN 0 ELSE 1 END
     + CASE WHEN x.minutes_avg_last10 IS NULL THEN 0 ELSE 1 END
     + CASE WHEN x.usage_rate_last10 IS NULL THEN 0 ELSE 1 END
     + CASE WHEN x.three_rate IS NULL THEN 0 ELSE 1 END
     + CASE WHEN x.rim_rate IS NULL THEN 0 ELSE 1 END
     + CASE WHEN x.opp_defensive_rating IS NULL THEN 0 ELSE 1 END
     + 1) AS feature_count
  FROM features AS x
)
SELECT
  k.game_date,
  k.player_lookup,
  k.team_abbr,
  k.opponent_team_abbr,
  k.injury_status,
  k.points_line,
  k.games_played,
  k.points_avg_last5,
  k.points_avg_last10,
  k.points_avg_season,
  k.points_std_last10,
  k.minutes_avg_last10,
  k.usage_rate_last10,
  k.three_rate,
  k.rim_rate,
  k.opp_defensive_rating,
  k.composite_adjustment,
  CAST(k.feature_count AS BIGINT) AS feature_count,
  ROUND(100.0 * k.feature_count / 11, 1) AS feature_quality_score,
  'v2' AS feature_version,
  CAST(CURRENT_TIMESTAMP AS TIMESTAMP) AS processed_at
FROM counted AS k
