{#- Days between two DATE expressions: the one spot where the dialects spell SQL differently. -#}
{% macro days_between(later, earlier) %}{% if dialect == 'bigquery' %}DATE_DIFF({{ later }}, {{ earlier }}, DAY){% else %}({{ later }} - {{ earlier }}){% endif %}{% endmacro %}
-- Every team playing on the day: opponent, rest since its previous game, the consensus
-- spread/total over the books, and how many of its players are out or questionable.
WITH games AS (
  SELECT s.game_date, s.game_id, s.team_abbr, s.opponent_team_abbr, s.is_home
  FROM {{ ref('nbac_schedule') }} AS s
  WHERE s.game_date = {{ partition }}
    AND {{ entity_filter('s.team_abbr') }}
),
previous AS (
  SELECT s.team_abbr, MAX(s.game_date) AS last_game_date
  FROM {{ ref('nbac_schedule') }} AS s
  WHERE s.game_date < {{ partition }}
    AND {{ entity_filter('s.team_abbr') }}
  GROUP BY s.team_abbr
),
lines AS (
  SELECT
    l.team_abbr,
    ROUND(AVG(l.spread), 2) AS spread,
    ROUND(AVG(l.game_total), 2) AS game_total,
    ROUND(AVG(l.implied_team_total), 2) AS implied_team_total
  FROM {{ ref('odds_api_game_lines') }} AS l
  WHERE l.game_date = {{ partition }}
    AND {{ entity_filter('l.team_abbr') }}
  GROUP BY l.team_abbr
),
-- injury rows are player rows: counted for the team the roster of the day names (the input's
-- player_to_team mapping), not the report's own team_abbr
roster AS (
  SELECT r.player_lookup, r.team_abbr
  FROM {{ ref('br_rosters_current') }} AS r
  WHERE r.game_date = {{ partition }}
    AND {{ entity_filter('r.team_abbr') }}
),
injuries AS (
  SELECT
    r.team_abbr,
    CAST(SUM(CASE WHEN i.injury_status = 'Out' THEN 1 ELSE 0 END) AS BIGINT) AS players_out,
    CAST(SUM(CASE WHEN i.injury_status IN ('Questionable', 'Doubtful') THEN 1 ELSE 0 END) AS BIGINT) AS players_questionable
  FROM {{ ref('nbac_injury_report') }} AS i
  JOIN roster AS r ON r.player_lookup = i.player_lookup
  WHERE i.game_date = {{ partition }}
  GROUP BY r.team_abbr
)
SELECT
  g.game_date,
  g.game_id,
  g.team_abbr,
  g.opponent_team_abbr,
  g.is_home,
  CAST({{ days_between('g.game_date', 'p.last_game_date') }} - 1 AS BIGINT) AS days_rest,
  COALESCE({{ days_between('g.game_date', 'p.last_game_date') }} = 1, FALSE) AS back_to_back,
  l.spread,
  l.game_total,
  l.implied_team_total,
  COALESCE(i.players_out, 0) AS players_out,
  COALESCE(i.players_questionable, 0) AS players_questionable,
  CAST(CURRENT_TIMESTAMP AS TIMESTAMP) AS processed_at
FROM games AS g
LEFT JOIN previous AS p ON p.team_abbr = g.team_abbr
LEFT JOIN lines AS l ON l.team_abbr = g.team_abbr
LEFT JOIN injuries AS i ON i.team_abbr = g.team_abbr
