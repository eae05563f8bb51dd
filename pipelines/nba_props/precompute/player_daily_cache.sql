-- Scoring form of every player playing on the day, from his games before the day: points over
-- the last 5 and 10 games and the season, their spread, minutes, usage and shooting, plus his
-- team's recent offence (reached through the team -> player mapping).
WITH context AS (
  SELECT u.game_date, u.player_lookup, u.team_abbr, u.opponent_team_abbr, u.injury_status, u.points_line
  FROM {{ ref('upcoming_player_game_context') }} AS u
  WHERE u.game_date = {{ partition }}
    AND {{ entity_filter('u.player_lookup') }}
),
games AS (
  SELECT
    s.player_lookup,
    s.points,
    s.minutes,
    s.usage_rate,
    s.true_shooting_pct,
    ROW_NUMBER() OVER (PARTITION BY s.player_lookup ORDER BY s.game_date DESC) AS game_rank
  FROM {{ ref('player_game_summary') }} AS s
  WHERE s.game_date < {{ partition }}
    AND {{ entity_filter('s.player_lookup') }}
),
form AS (
  SELECT
    g.player_lookup,
    COUNT(*) AS games_played,
    ROUND(AVG(CASE WHEN g.game_rank <= 5 THEN g.points END), 2) AS points_avg_last5,
    ROUND(AVG(CASE WHEN g.game_rank <= 10 THEN g.points END), 2) AS points_avg_last10,
    ROUND(AVG(g.points), 2) AS points_avg_season,
    ROUND(STDDEV_SAMP(CASE WHEN g.game_rank <= 10 THEN g.points END), 2) AS points_std_last10,
    ROUND(AVG(CASE WHEN g.game_rank <= 10 THEN g.minutes END), 2) AS minutes_avg_last10,
    ROUND(AVG(CASE WHEN g.game_rank <= 10 THEN g.usage_rate END), 4) AS usage_rate_last10,
    ROUND(AVG(CASE WHEN g.game_rank <= 10 THEN g.true_shooting_pct END), 4) AS ts_pct_last10
  FROM games AS g
  GROUP BY g.player_lookup
),
team_games AS (
  SELECT
    o.team_abbr,
    o.points,
    o.possessions,
    ROW_NUMBER() OVER (PARTITION BY o.team_abbr ORDER BY o.game_date DESC) AS game_rank
  FROM {{ ref('team_offense_game_summary') }} AS o
  WHERE o.game_date < {{ partition }}
    AND o.team_abbr IN (SELECT c.team_abbr FROM context AS c)
),
team_form AS (
  SELECT
    t.team_abbr,
    ROUND(100.0 * SUM(t.points) / NULLIF(SUM(t.possessions), 0), 2) AS team_offensive_rating_last10,
    ROUND(AVG(t.possessions), 2) AS team_possessions_avg_last10
  FROM team_games AS t
  WHERE t.game_rank <= 10
  GROUP BY t.team_abbr
),
zones AS (
  SELECT z.player_lookup, z.primary_zone
  FROM {{ ref('player_shot_zone_analysis') }} AS z
  WHERE z.game_date = {{ partition }}
    AND {{ entity_filter('z.player_lookup') }}
)
SELECT
  c.game_date,
  c.player_lookup,
  c.team_abbr,
  c.opponent_team_abbr,
  c.injury_status,
  c.points_line,
  COALESCE(f.games_played, 0) AS games_played,
  f.points_avg_last5,
  f.points_avg_last10,
  f.points_avg_season,
  f.points_std_last10,
  f.minutes_avg_last10,
  f.usage_rate_last10,
  f.ts_pct_last10,
  tf.team_offensive_rating_last10,
  tf.team_possessions_avg_last10,
  z.primary_zone,
  CAST(CURRENT_TIMESTAMP AS TIMESTAMP) AS processed_at
FROM context AS c
LEFT JOIN form AS f ON f.player_lookup = c.player_lookup
LEFT JOIN team_form AS tf ON tf.team_abbr = c.team_abbr
LEFT JOIN zones AS z ON z.player_lookup = c.player_lookup
