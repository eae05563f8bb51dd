-- write processed rows of processor rosters
DELETE FROM raw.rosters
WHERE game_date = $game_date
  AND TRUE;
INSERT INTO raw.rosters (game_date, player_lookup, team_abbr)
SELECT game_date, player_lookup, team_abbr
FROM (
SELECT r.game_date, r.player_lookup, r.team_abbr
FROM landing.rosters AS r
WHERE r.game_date = $game_date
  AND TRUE
) AS transformed;
-- parameters: game_date
