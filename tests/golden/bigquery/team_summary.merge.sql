-- write processed rows of processor team_summary
MERGE analytics.team_summary AS target
USING (
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
) AS source
ON FALSE
WHEN NOT MATCHED BY TARGET THEN
  INSERT (game_date, team_abbr, team_points)
  VALUES (source.game_date, source.team_abbr, source.team_points)
WHEN NOT MATCHED BY SOURCE
  AND target.game_date = @game_date
  AND target.team_abbr IN UNNEST(@entity_ids) THEN
  DELETE;
-- parameters: game_date, entity_ids
