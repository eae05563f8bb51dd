-- Team offence per game. possessions = FGA - OREB + TOV + 0.44 FTA (the standard estimate);
-- possessions_used = FGA + 0.44 FTA + TOV is the denominator of each player's usage rate.
-- Play-by-play rows are player rows: they reach a team through the roster of the day (the
-- input's player_to_team mapping), never through the row's own team_abbr, so that change
-- detection and this SQL agree on which team a shot belongs to.
WITH roster AS (
  SELECT r.player_lookup, r.team_abbr
  FROM {{ ref('br_rosters_current') }} AS r
  WHERE r.game_date = {{ partition }}
    AND {{ entity_filter('r.team_abbr') }}
),
zones AS (
  SELECT
    r.team_abbr,
    CAST(SUM(CASE WHEN p.shot_zone = 'rim' THEN p.fg_attempted ELSE 0 END) AS BIGINT) AS rim_fg_attempted,
    CAST(SUM(CASE WHEN p.shot_zone = 'rim' THEN p.fg_made ELSE 0 END) AS BIGINT) AS rim_fg_made,
    CAST(SUM(CASE WHEN p.shot_zone = 'mid_range' THEN p.fg_attempted ELSE 0 END) AS BIGINT) AS mid_fg_attempted,
    CAST(SUM(CASE WHEN p.shot_zone = 'mid_range' THEN p.fg_made ELSE 0 END) AS BIGINT) AS mid_fg_made
  FROM {{ ref('nbac_play_by_play') }} AS p
  JOIN roster AS r ON r.player_lookup = p.player_lookup
  WHERE p.game_date = {{ partition }}
  GROUP BY r.team_abbr
)
SELECT
  b.game_date,
  b.game_id,
  b.team_abbr,
  b.opponent_team_abbr,
  b.is_home,
  b.points,
  b.fg_made,
  b.fg_attempted,
  b.three_made,
  b.three_attempted,
  b.ft_made,
  b.ft_attempted,
  b.offensive_rebounds,
  b.assists,
  b.turnovers,
  ROUND(b.fg_attempted - b.offensive_rebounds + b.turnovers + 0.44 * b.ft_attempted, 2) AS possessions,
  ROUND(b.fg_attempted + 0.44 * b.ft_attempted + b.turnovers, 2) AS possessions_used,
  ROUND(100.0 * b.points / NULLIF(b.fg_attempted - b.offensive_rebounds + b.turnovers + 0.44 * b.ft_attempted, 0), 2) AS offensive_rating,
  ROUND(b.points / NULLIF(2.0 * (b.fg_attempted + 0.44 * b.ft_attempted), 0), 4) AS true_shooting_pct,
  COALESCE(z.rim_fg_attempted, 0) AS rim_fg_attempted,
  COALESCE(z.rim_fg_made, 0) AS rim_fg_made,
  COALESCE(z.mid_fg_attempted, 0) AS mid_fg_attempted,
  COALESCE(z.mid_fg_made, 0) AS mid_fg_made,
  CAST(CURRENT_TIMESTAMP AS TIMESTAMP) AS processed_at
FROM {{ ref('nbac_team_boxscore') }} AS b
LEFT JOIN zones AS z ON z.team_abbr = b.team_abbr
WHERE b.game_date = {{ partition }}
  AND {{ entity_filter('b.team_abbr') }}
