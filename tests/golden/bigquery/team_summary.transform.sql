SELECT
  r.game_date,
  r.team_abbr,
  SUM(b.points) AS team_points
FROM raw.rosters AS r
JOIN raw.player_boxscores AS b
  ON b.player_lookup = r.player_lookup AND b.game_date = r.game_date
WHERE r.game_date = @game_date
  AND r.team_abbr IN (SELECT UNNEST(@entity_ids))
GROUP BY r.game_date, r.team_abbr
-- parameters: game_date, entity_ids
