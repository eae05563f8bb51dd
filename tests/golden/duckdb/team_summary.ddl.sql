-- output table of processor team_summary
CREATE SCHEMA IF NOT EXISTS analytics;
CREATE TABLE IF NOT EXISTS analytics.team_summary (
  game_date DATE,
  team_abbr VARCHAR,
  team_points BIGINT
);
-- parameters: 
