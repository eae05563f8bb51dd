-- write processed rows of processor player_boxscores
DELETE FROM raw.player_boxscores
WHERE game_date = $game_date
  AND player_lookup IN (SELECT UNNEST($entity_ids));
INSERT INTO raw.player_boxscores (game_date, player_lookup, team_abbr, points, minutes, processed_at)
SELECT game_date, player_lookup, team_abbr, points, minutes, processed_at
FROM (
SELECT
  b.game_date,
  b.player_lookup,
  b.team_abbr,
  b.points,
  b.minutes,
  CURRENT_TIMESTAMP AS processed_at
FROM landing.boxscores AS b
WHERE b.game_date = $game_date
  AND b.player_lookup IN (SELECT UNNEST($entity_ids))
) AS transformed;
-- parameters: game_date, entity_ids
