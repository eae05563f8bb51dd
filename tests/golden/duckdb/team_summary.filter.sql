-- rows of input player_boxscores (mapped) read by a selective run of team_summary
SELECT i.*
FROM raw.player_boxscores AS i
WHERE i.game_date = $game_date
  AND i.player_lookup IN (
    SELECT m.player_lookup
    FROM raw.rosters AS m
    WHERE m.game_date = $game_date AND m.team_abbr IN (SELECT UNNEST($entity_ids))
  )
;
-- rows of input rosters (mapped) read by a selective run of team_summary
SELECT i.*
FROM raw.rosters AS i
WHERE i.game_date = $game_date
  AND i.player_lookup IN (
    SELECT m.player_lookup
    FROM raw.rosters AS m
    WHERE m.game_date = $game_date AND m.team_abbr IN (SELECT UNNEST($entity_ids))
  )
;
-- parameters: game_date, entity_ids
