-- write processed rows of processor player_summary
MERGE analytics.player_summary AS target
USING (
SELECT
  b.game_date,
  b.player_lookup,
  b.points,
  (SELECT COUNT(*) FROM landing.schedule AS s WHERE s.game_date = @game_date) AS games_today
FROM raw.player_boxscores AS b
WHERE b.game_date = @game_date
  AND TRUE
) AS source
ON FALSE
WHEN NOT MATCHED BY TARGET THEN
  INSERT (game_date, player_lookup, points, games_today)
  VALUES (source.game_date, source.player_lookup, source.points, source.games_today)
WHEN NOT MATCHED BY SOURCE
  AND target.game_date = @game_date
  AND TRUE THEN
  DELETE;
-- parameters: game_date
