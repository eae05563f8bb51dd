-- Adjustment factors for the day's game, each a fraction of expected scoring (+0.03 = +3%):
--   fatigue: back-to-backs cost, extra rest helps;
--   matchup: half the opponent's defensive rating gap to a league baseline of 116;
--   zone matchup: the accuracy the opponent allows in the zones this player shoots from,
--     against league baselines (rim 0.65, mid range 0.43, three 0.36), damped the same way;
--   pace: the game total against a baseline of 224; role: teammates ruled out free up shots;
--   home: a small home edge. composite_adjustment = 1 + their sum, clamped to 0.85..1.15.
WITH context AS (
  SELECT u.game_date, u.player_lookup, u.team_abbr, u.opponent_team_abbr, u.is_home, u.days_rest, u.back_to_back
  FROM {{ ref('upcoming_player_game_context') }} AS u
  WHERE u.game_date = {{ partition }}
    AND {{ entity_filter('u.player_lookup') }}
),
team_context AS (
  SELECT t.team_abbr, t.game_total, t.players_out
  FROM {{ ref('upcoming_team_game_context') }} AS t
  WHERE t.game_date = {{ partition }}
    AND t.team_abbr IN (SELECT c.team_abbr FROM context AS c)
),
zones AS (
  SELECT z.player_lookup, z.rim_rate, z.mid_rate, z.three_rate
  FROM {{ ref('player_shot_zone_analysis') }} AS z
  WHERE z.game_date = {{ partition }}
    AND {{ entity_filter('z.player_lookup') }}
),
opponent AS (
  -- reached through the opponent -> player mapping
  SELECT d.team_abbr, d.defensive_rating, d.rim_fg_pct_allowed, d.mid_fg_pct_allowed, d.three_fg_pct_allowed
  FROM {{ ref('team_defense_zone_analysis') }} AS d
  WHERE d.game_date = {{ partition }}
    AND d.team_abbr IN (SELECT c.opponent_team_abbr FROM context AS c)
),
factors AS (
  SELECT
    c.game_date,
    c.player_lookup,
    c.opponent_team_abbr,
    CASE WHEN c.back_to_back THEN -0.04 WHEN c.days_rest >= 2 THEN 0.015 ELSE 0.0 END AS fatigue_factor,
    ROUND(COALESCE(0.5 * (o.defensive_rating - 116.0) / 116.0, 0.0), 4) AS matchup_factor,
    ROUND(COALESCE(
      0.5 * (z.rim_rate * (o.rim_fg_pct_allowed - 0.65)
             + z.mid_rate * (o.mid_fg_pct_allowed - 0.43)
             + z.three_rate * (o.three_fg_pct_allowed - 0.36)) / 0.45, 0.0), 4) AS zone_matchup_factor,
    ROUND(COALESCE((t.game_total - 224.0) / 224.0, 0.0), 4) AS pace_factor,
    LEAST(0.06, 0.02 * COALESCE(t.players_out, 0)) AS role_factor,
    CASE WHEN c.is_home THEN 0.01 ELSE -0.01 END AS home_factor
  FROM context AS c
  LEFT JOIN team_context AS t ON t.team_abbr = c.team_abbr
  LEFT JOIN zones AS z ON z.player_lookup = c.player_lookup
  LEFT JOIN opponent AS o ON o.team_abbr = c.opponent_team_abbr
)
SELECT
  f.game_date,
  f.player_lookup,
  f.opponent_team_abbr,
  f.fatigue_factor,
  f.matchup_factor,
  f.zone_matchup_factor,
  f.pace_factor,
  f.role_factor,
  f.home_factor,
  ROUND(GREATEST(0.85, LEAST(1.15,
    1.0 + f.fatigue_factor + f.matchup_factor + f.zone_matchup_factor + f.pace_factor + f.role_factor + f.home_factor)), 4)
    AS composite_adjustment,
  CAST(CURRENT_TIMESTAMP AS TIMESTAMP) AS processed_at
FROM factors AS f
