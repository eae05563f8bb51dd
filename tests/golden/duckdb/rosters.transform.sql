SELECT r.game_date, r.player_lookup, r.team_abbr
FROM landing.rosters AS r
WHERE r.game_date = $game_date
  AND r.player_lookup IN (SELECT UNNEST($entity_ids))
-- parameters: game_date, entity_ids
