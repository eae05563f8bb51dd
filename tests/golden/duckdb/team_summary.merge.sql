-- write processed rows of processor team_summary
DELETE FROM analytics.team_summary
WHERE game_date = $game_date
  AND team_abbr IN (SELECT UNNEST($entity_ids));
INSERT INTO analytics.team_summary (game_date, team_abbr, team_points)
SELECT game_date, team_abbr, team_points
FROM (
SELECT
  r.game_date,
  r.team_abbr,
  SUM(b.points) AS team_points
FROM raw.rosters AS r
JOIN raw.player_boxscores AS b
  ON b.player_lookup = r.player_lookup AND b.game_date = r.game_date
WHERE r.game_date = $game_date
  AND r.team_abbr IN (SELECT UNNEST($entity_ids))
GROUP BY r.game_date, r.team_abbr
) AS transformed;
-- parameters: game_date, entity_ids
