-- output table of processor player_boxscores
CREATE SCHEMA IF NOT EXISTS raw;
CREATE TABLE IF NOT EXISTS raw.player_boxscores (
  game_date DATE NOT NULL,
  player_lookup VARCHAR NOT NULL,
  team_abbr VARCHAR,
  points BIGINT,
  minutes DOUBLE,
  processed_at TIMESTAMP
);
-- parameters: 
