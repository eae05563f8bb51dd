-- rows of input player_boxscores (entity) read by a selective run of player_summary
SELECT i.*
FROM raw.player_boxscores AS i
WHERE i.game_date = @game_date
  AND i.player_lookup IN (SELECT UNNEST(@entity_ids))
;
-- rows of input schedule (partition) read by a selective run of player_summary
SELECT i.*
FROM landing.schedule AS i
WHERE i.game_date = @game_date
;
-- parameters: game_date, entity_ids
