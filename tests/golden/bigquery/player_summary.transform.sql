SELECT
  b.game_date,
  b.player_lookup,
  b.points,
  (SELECT COUNT(*) FROM landing.schedule AS s WHERE s.game_date = @game_date) AS games_today
FROM raw.player_boxscores AS b
WHERE b.game_date = @game_date
  AND b.player_lookup IN (SELECT UNNEST(@entity_ids))
-- parameters: game_date, entity_ids
