-- write processed rows of processor player_summary
DELETE FROM analytics.player_summary
WHERE game_date = $game_date
  AND TRUE;
INSERT INTO analytics.player_summary (game_date, player_lookup, points, games_today)
SELECT game_date, player_lookup, points, games_today
FROM (
SELECT
  b.game_date,
  b.player_lookup,
  b.points,
  (SELECT COUNT(*) FROM landing.schedule AS s WHERE s.game_date = $game_date) AS games_today
FROM raw.player_boxscores AS b
WHERE b.game_date = $game_date
  AND TRUE
) AS transformed;
-- parameters: game_date
