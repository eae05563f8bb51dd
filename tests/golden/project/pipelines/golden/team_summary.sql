SELECT
  r.game_date,
  r.team_abbr,
  SUM(b.points) AS team_points
FROM {{ ref('rosters') }} AS r
JOIN {{ ref('player_boxscores') }} AS b
  ON b.player_lookup = r.player_lookup AND b.game_date = r.game_date
WHERE r.game_date = {{ partition }}
  AND {{ entity_filter('r.team_abbr') }}
GROUP BY r.game_date, r.team_abbr
