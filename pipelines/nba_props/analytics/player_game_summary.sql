-- One row per player who played on the day: the gamebook line, shooting efficiency, usage
-- (the share of his team's possessions he used: FGA + 0.44 FTA + TOV over the team's), shot
-- zones from play-by-play, possessions on court, and how he did against the consensus line.
WITH box AS (
  SELECT
    g.game_date, g.game_id, g.player_lookup, g.player_name, g.team_abbr, g.opponent_team_abbr, g.starter,
    g.minutes, g.points, g.fg_made, g.fg_attempted, g.three_made, g.three_attempted, g.ft_made, g.ft_attempted,
    g.rebounds, g.assists, g.steals, g.blocks, g.turnovers, g.plus_minus
  FROM {{ ref('nbac_gamebook_player_stats') }} AS g
  WHERE g.game_date = {{ partition }}
    AND g.minutes > 0
    AND {{ entity_filter('g.player_lookup') }}
),
zones AS (
  SELECT
    p.player_lookup,
    CAST(SUM(CASE WHEN p.shot_zone = 'rim' THEN p.fg_attempted ELSE 0 END) AS BIGINT) AS rim_fg_attempted,
    CAST(SUM(CASE WHEN p.shot_zone = 'rim' THEN p.fg_made ELSE 0 END) AS BIGINT) AS rim_fg_made,
    CAST(SUM(CASE WHEN p.shot_zone = 'mid_range' THEN p.fg_attempted ELSE 0 END) AS BIGINT) AS mid_fg_attempted,
    CAST(SUM(CASE WHEN p.shot_zone = 'mid_range' THEN p.fg_made ELSE 0 END) AS BIGINT) AS mid_fg_made
  FROM {{ ref('nbac_play_by_play') }} AS p
  WHERE p.game_date = {{ partition }}
    AND {{ entity_filter('p.player_lookup') }}
  GROUP BY p.player_lookup
),
tracking AS (
  SELECT
    b.player_lookup,
    CAST(SUM(b.on_court_possessions) AS BIGINT) AS on_court_possessions,
    CAST(SUM(b.assisted_fg_made) AS BIGINT) AS assisted_fg_made
  FROM {{ ref('bigdataball_play_by_play') }} AS b
  WHERE b.game_date = {{ partition }}
    AND {{ entity_filter('b.player_lookup') }}
  GROUP BY b.player_lookup
),
-- bdl_player_boxscores is a declared (backup) input but disabled, so it is not read here.
lines AS (
  SELECT
    x.player_lookup,
    ROUND(AVG(x.points_line), 2) AS points_line
  FROM (
    SELECT o.player_lookup, o.points_line
    FROM {{ ref('odds_api_player_points_props') }} AS o
    WHERE o.game_date = {{ partition }}
      AND {{ entity_filter('o.player_lookup') }}
    UNION ALL
    SELECT bp.player_lookup, bp.points_line
    FROM {{ ref('bettingpros_player_points_props') }} AS bp
    WHERE bp.game_date = {{ partition }}
      AND {{ entity_filter('bp.player_lookup') }}
  ) AS x
  GROUP BY x.player_lookup
),
roster AS (
  SELECT r.player_lookup, r.team_abbr
  FROM {{ ref('br_rosters_current') }} AS r
  WHERE r.game_date = {{ partition }}
    AND {{ entity_filter('r.player_lookup') }}
),
team AS (
  -- team rows reach a player through the roster of the day (the input's team_to_player
  -- mapping): joined on his roster team, not the gamebook's team_abbr
  SELECT t.team_abbr, t.possessions_used
  FROM {{ ref('team_offense_game_summary') }} AS t
  WHERE t.game_date = {{ partition }}
)
SELECT
  b.game_date,
  b.game_id,
  b.player_lookup,
  b.player_name,
  b.team_abbr,
  b.opponent_team_abbr,
  b.starter,
  b.minutes,
  b.points,
  b.fg_made,
  b.fg_attempted,
  b.three_made,
  b.three_attempted,
  b.ft_made,
  b.ft_attempted,
  b.rebounds,
  b.assists,
  b.steals,
  b.blocks,
  b.turnovers,
  b.plus_minus,
  ROUND(b.points / NULLIF(2.0 * (b.fg_attempted + 0.44 * b.ft_attempted), 0), 4) AS true_shooting_pct,
  ROUND((b.fg_made + 0.5 * b.three_made) / NULLIF(1.0 * b.fg_attempted, 0), 4) AS effective_fg_pct,
  ROUND((b.fg_attempted + 0.44 * b.ft_attempted + b.turnovers) / NULLIF(t.possessions_used, 0), 4) AS usage_rate,
  ROUND(b.points / NULLIF(b.minutes, 0), 4) AS points_per_minute,
  COALESCE(z.rim_fg_attempted, 0) AS rim_fg_attempted,
  COALESCE(z.rim_fg_made, 0) AS rim_fg_made,
  COALESCE(z.mid_fg_attempted, 0) AS mid_fg_attempted,
  COALESCE(z.mid_fg_made, 0) AS mid_fg_made,
  tr.on_court_possessions,
  tr.assisted_fg_made,
  l.points_line,
  b.points - l.points_line AS line_margin,
  CASE
    WHEN l.points_line IS NULL THEN NULL
    WHEN b.points > l.points_line THEN 'OVER'
    WHEN b.points < l.points_line THEN 'UNDER'
    ELSE 'PUSH'
  END AS over_under_result,
  CASE
    WHEN z.player_lookup IS NOT NULL AND tr.player_lookup IS NOT NULL THEN 'gold'
    WHEN z.player_lookup IS NOT NULL OR tr.player_lookup IS NOT NULL THEN 'silver'
    ELSE 'bronze'
  END AS data_quality_tier,
  CAST(CURRENT_TIMESTAMP AS TIMESTAMP) AS processed_at
FROM box AS b
LEFT JOIN roster AS r ON r.player_lookup = b.player_lookup
LEFT JOIN team AS t ON t.team_abbr = r.team_abbr
LEFT JOIN zones AS z ON z.player_lookup = b.player_lookup
LEFT JOIN tracking AS tr ON tr.player_lookup = b.player_lookup
LEFT JOIN lines AS l ON l.player_lookup = b.player_lookup
