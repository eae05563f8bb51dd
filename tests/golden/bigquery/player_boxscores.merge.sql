-- write processed rows of processor player_boxscores
MERGE raw.player_boxscores AS target
USING (
SELECT
  b.game_date,
  b.player_lookup,
  b.team_abbr,
  b.points,
  b.minutes,
  CURRENT_TIMESTAMP AS processed_at
FROM landing.boxscores AS b
WHERE b.game_date = @game_date
  AND b.player_lookup IN (SELECT UNNEST(@entity_ids))
) AS source
ON FALSE
WHEN NOT MATCHED BY TARGET THEN
  INSERT (game_date, player_lookup, team_abbr, points, minutes, processed_at)
  VALUES (source.game_date, source.player_lookup, source.team_abbr, source.points, source.minutes, source.processed_at)
WHEN NOT MATCHED BY SOURCE
  AND target.game_date = @game_date
  AND target.player_lookup IN UNNEST(@entity_ids) THEN
  DELETE;
-- parameters: game_date, entity_ids
