-- A team's defence is its opponent's offence: read the opponent's rows (those whose
-- opponent_team_abbr is this team) and report them from the defending team's side. Each input
-- reaches the defending team the way its declared mapping says: box scores through the
-- schedule (team_to_opponent), play-by-play through the gamebook (player_to_opponent_team).
WITH schedule AS (
  SELECT s.team_abbr, s.opponent_team_abbr
  FROM {{ ref('nbac_schedule') }} AS s
  WHERE s.game_date = {{ partition }}
    AND {{ entity_filter('s.opponent_team_abbr') }}
),
matchups AS (
  SELECT m.player_lookup, m.opponent_team_abbr
  FROM {{ ref('nbac_gamebook_player_stats') }} AS m
  WHERE m.game_date = {{ partition }}
    AND {{ entity_filter('m.opponent_team_abbr') }}
),
opp_players AS (
  SELECT
    g.opponent_team_abbr AS team_abbr,
    MAX(g.points) AS opp_top_scorer_points,
    CAST(SUM(CASE WHEN g.minutes > 0 THEN 1 ELSE 0 END) AS BIGINT) AS opp_players_used
  FROM {{ ref('nbac_gamebook_player_stats') }} AS g
  WHERE g.game_date = {{ partition }}
    AND {{ entity_filter('g.opponent_team_abbr') }}
  GROUP BY g.opponent_team_abbr
),
-- bdl_player_boxscores is a declared (backup) input but disabled, so it is not read here.
opp_zones AS (
  SELECT
    m.opponent_team_abbr AS team_abbr,
    CAST(SUM(CASE WHEN p.shot_zone = 'rim' THEN p.fg_attempted ELSE 0 END) AS BIGINT) AS opp_rim_fg_attempted,
    CAST(SUM(CASE WHEN p.shot_zone = 'rim' THEN p.fg_made ELSE 0 END) AS BIGINT) AS opp_rim_fg_made,
    CAST(SUM(CASE WHEN p.shot_zone = 'mid_range' THEN p.fg_attempted ELSE 0 END) AS BIGINT) AS opp_mid_fg_attempted,
    CAST(SUM(CASE WHEN p.shot_zone = 'mid_range' THEN p.fg_made ELSE 0 END) AS BIGINT) AS opp_mid_fg_made
  FROM {{ ref('nbac_play_by_play') }} AS p
  JOIN matchups AS m ON m.player_lookup = p.player_lookup
  WHERE p.game_date = {{ partition }}
  GROUP BY m.opponent_team_abbr
)
SELECT
  o.game_date,
  o.game_id,
  s.opponent_team_abbr AS team_abbr,
  o.team_abbr AS opponent_team_abbr,
  o.points AS points_allowed,
  o.fg_made AS opp_fg_made,
  o.fg_attempted AS opp_fg_attempted,
  o.three_made AS opp_three_made,
  o.three_attempted AS opp_three_attempted,
  o.ft_attempted AS opp_ft_attempted,
  o.turnovers AS opp_turnovers,
  ROUND(o.fg_attempted - o.offensive_rebounds + o.turnovers + 0.44 * o.ft_attempted, 2) AS opp_possessions,
  ROUND(100.0 * o.points / NULLIF(o.fg_attempted - o.offensive_rebounds + o.turnovers + 0.44 * o.ft_attempted, 0), 2) AS defensive_rating,
  ROUND((o.fg_made + 0.5 * o.three_made) / NULLIF(1.0 * o.fg_attempted, 0), 4) AS opp_effective_fg_pct,
  COALESCE(z.opp_rim_fg_attempted, 0) AS opp_rim_fg_attempted,
  COALESCE(z.opp_rim_fg_made, 0) AS opp_rim_fg_made,
  COALESCE(z.opp_mid_fg_attempted, 0) AS opp_mid_fg_attempted,
  COALESCE(z.opp_mid_fg_made, 0) AS opp_mid_fg_made,
  pl.opp_top_scorer_points,
  pl.opp_players_used,
  CAST(CURRENT_TIMESTAMP AS TIMESTAMP) AS processed_at
FROM {{ ref('nbac_team_boxscore') }} AS o
JOIN schedule AS s ON s.team_abbr = o.team_abbr
LEFT JOIN opp_players AS pl ON pl.team_abbr = s.opponent_team_abbr
LEFT JOIN opp_zones AS z ON z.team_abbr = s.opponent_team_abbr
WHERE o.game_date = {{ partition }}
