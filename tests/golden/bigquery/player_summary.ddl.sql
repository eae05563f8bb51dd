-- output table of processor player_summary
CREATE SCHEMA IF NOT EXISTS analytics;
CREATE TABLE IF NOT EXISTS analytics.player_summary (
  game_date DATE,
  player_lookup STRING,
  points INT64,
  games_today INT64
)
PARTITION BY game_date
;
-- parameters: 
