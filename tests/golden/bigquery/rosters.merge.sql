-- write processed rows of processor rosters
MERGE raw.rosters AS target
USING (
SELECT r.game_date, r.player_lookup, r.team_abbr
FROM landing.rosters AS r
WHERE r.game_date = @game_date
  AND r.player_lookup IN (SELECT UNNEST(@entity_ids))
) AS source
ON FALSE
WHEN NOT MATCHED BY TARGET THEN
  INSERT (game_date, player_lookup, team_abbr)
  VALUES (source.game_date, source.player_lookup, source.team_abbr)
WHEN NOT MATCHED BY SOURCE
  AND target.game_date = @game_date
  AND target.player_lookup IN UNNEST(@entity_ids) THEN
  DELETE;
-- parameters: game_date, entity_ids
