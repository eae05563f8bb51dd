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
-- parameters: game_date, entity_ids
