-- rows of input boxscores_landing (entity) read by a selective run of player_boxscores
SELECT i.*
FROM landing.boxscores AS i
WHERE i.game_date = $game_date
  AND i.player_lookup IN (SELECT UNNEST($entity_ids))
;
-- parameters: game_date, entity_ids
