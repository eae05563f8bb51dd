-- write processed rows of processor rosters
DELETE FROM raw.rosters
WHERE game_date = $game_date
  AND player_lookup IN (SELECT UNNEST($entity_ids));
INSERT INTO raw.rosters (game_date, player_lookup, team_abbr)
SELECT game_date, player_lookup, team_abbr
FROM (
SELECT r.game_date, r.player_lookup, r.team_abbr
FROM landing.rosters AS r
WHERE r.game_date = $game_date
  AND r.player_lookup IN (SELECT UNNEST($entity_ids))
) AS transformed;
-- parameters: game_date, entity_ids
