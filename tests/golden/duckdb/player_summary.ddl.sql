-- output table of processor player_summary
CREATE SCHEMA IF NOT EXISTS analytics;
CREATE TABLE IF NOT EXISTS analytics.player_summary (
  game_date DATE,
  player_lookup VARCHAR,
  points BIGINT,
  games_today BIGINT
);
-- parameters: 
