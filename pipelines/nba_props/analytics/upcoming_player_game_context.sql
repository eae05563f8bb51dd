{#- Days between two DATE expressions: the one spot where the dialects spell SQL differently. -#}
{% macro days_between(later, earlier) %}{% if dialect == 'bigquery' %}DATE_DIFF({{ later }}, {{ earlier }}, DAY){% else %}({{ later }} - {{ earlier }}){% endif %}{% endmacro %}
-- Every rostered player of a team that plays on the day: opponent, home/away, injury status,
-- rest since his last game, season scoring so far, the consensus points line over every book
-- of both prop sources, and his team's spread and implied total.
WITH roster AS (
  SELECT r.player_lookup, r.player_name, r.team_abbr
  FROM {{ ref('br_rosters_current') }} AS r
  WHERE r.game_date = {{ partition }}
    AND {{ entity_filter('r.player_lookup') }}
),
games AS (
  -- schedule rows are team rows, reached through the team -> player mapping (the roster)
  SELECT s.game_date, s.game_id, s.team_abbr, s.opponent_team_abbr, s.is_home
  FROM {{ ref('nbac_schedule') }} AS s
  WHERE s.game_date = {{ partition }}
),
history AS (
  SELECT
    g.player_lookup,
    MAX(CASE WHEN g.minutes > 0 THEN g.game_date END) AS last_game_date,
    CAST(SUM(CASE WHEN g.minutes > 0 THEN 1 ELSE 0 END) AS BIGINT) AS games_played_season,
    ROUND(AVG(CASE WHEN g.minutes > 0 THEN g.points END), 2) AS points_avg_season
  FROM {{ ref('nbac_gamebook_player_stats') }} AS g
  WHERE g.game_date < {{ partition }}
    AND {{ entity_filter('g.player_lookup') }}
  GROUP BY g.player_lookup
),
props AS (
  SELECT
    x.player_lookup,
    ROUND(AVG(x.points_line), 2) AS points_line,
    COUNT(*) AS line_count,
    MIN(x.points_line) AS min_line,
    MAX(x.points_line) AS max_line
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
injuries AS (
  SELECT i.player_lookup, i.injury_status
  FROM {{ ref('nbac_injury_report') }} AS i
  WHERE i.game_date = {{ partition }}
    AND {{ entity_filter('i.player_lookup') }}
),
team_lines AS (
  SELECT
    l.team_abbr,
    ROUND(AVG(l.spread), 2) AS team_spread,
    ROUND(AVG(l.game_total), 2) AS game_total,
    ROUND(AVG(l.implied_team_total), 2) AS implied_team_total
  FROM {{ ref('odds_api_game_lines') }} AS l
  WHERE l.game_date = {{ partition }}
  GROUP BY l.team_abbr
)
SELECT
  s.game_date,
  s.game_id,
  r.player_lookup,
  r.player_name,
  r.team_abbr,
  s.opponent_team_abbr,
  s.is_home,
  COALESCE(i.injury_status, 'Available') AS injury_status,
  CAST({{ days_between('s.game_date', 'h.last_game_date') }} - 1 AS BIGINT) AS days_rest,
  COALESCE({{ days_between('s.game_date', 'h.last_game_date') }} = 1, FALSE) AS back_to_back,
  COALESCE(h.games_played_season, 0) AS games_played_season,
  h.points_avg_season,
  p.points_line,
  COALESCE(p.line_count, 0) AS line_count,
  p.min_line,
  p.max_line,
  tl.team_spread,
  tl.game_total,
  tl.implied_team_total,
  CAST(CURRENT_TIMESTAMP AS TIMESTAMP) AS processed_at
FROM roster AS r
JOIN games AS s ON s.team_abbr = r.team_abbr
LEFT JOIN history AS h ON h.player_lookup = r.player_lookup
LEFT JOIN props AS p ON p.player_lookup = r.player_lookup
LEFT JOIN injuries AS i ON i.player_lookup = r.player_lookup
LEFT JOIN team_lines AS tl ON tl.team_abbr = r.team_abbr
