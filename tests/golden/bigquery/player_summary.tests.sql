-- data test not_null_player_lookup (not_null, severity error) of player_summary
SELECT COUNT(*) AS failures
FROM analytics.player_summary AS t
WHERE t.game_date = @game_date
  AND (t.player_lookup IS NULL);
-- parameters: game_date DATE=datetime.date(2025, 1, 6)
-- data test unique_game_date_player_lookup (unique, severity error) of player_summary
SELECT COUNT(*) AS failures
FROM (
  SELECT t.game_date, t.player_lookup
  FROM analytics.player_summary AS t
  WHERE t.game_date = @game_date
  GROUP BY t.game_date, t.player_lookup
  HAVING COUNT(*) > 1
) AS duplicated;
-- parameters: game_date DATE=datetime.date(2025, 1, 6)
-- data test accepted_values_games_today (accepted_values, severity warn) of player_summary
SELECT COUNT(*) AS failures
FROM analytics.player_summary AS t
WHERE t.game_date = @game_date
  AND t.games_today IS NOT NULL
  AND NOT (t.games_today IN (SELECT UNNEST(@accepted_values)));
-- parameters: game_date DATE=datetime.date(2025, 1, 6), accepted_values INT64[]=[0, 1]
-- data test relationships_player_lookup (relationships, severity error) of player_summary
SELECT COUNT(*) AS failures
FROM analytics.player_summary AS t
WHERE t.game_date = @game_date
  AND t.player_lookup IS NOT NULL
  AND NOT EXISTS (
    SELECT 1
    FROM raw.player_boxscores AS p
    WHERE p.player_lookup = t.player_lookup
      AND p.game_date = @game_date
  );
-- parameters: game_date DATE=datetime.date(2025, 1, 6)
-- data test expression_5 (expression, severity error) of player_summary
SELECT COUNT(*) AS failures
FROM analytics.player_summary AS t
WHERE t.game_date = @game_date AND (games_today > 0)
  AND NOT (points >= 0);
-- parameters: game_date DATE=datetime.date(2025, 1, 6)
-- data test no_points_without_a_game (sql, severity error) of player_summary
SELECT COUNT(*) AS failures
FROM (
SELECT * FROM analytics.player_summary WHERE game_date = @game_date AND games_today = 0 AND points > 0
) AS failing;
-- parameters: game_date DATE=datetime.date(2025, 1, 6)
