-- rows of input rosters_landing (entity) read by a selective run of rosters
SELECT i.*
FROM landing.rosters AS i
WHERE i.game_date = @game_date
  AND i.player_lookup IN (SELECT UNNEST(@entity_ids))
;
-- parameters: game_date, entity_ids
