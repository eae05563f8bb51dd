-- output table of processor player_boxscores
CREATE SCHEMA IF NOT EXISTS raw;
CREATE TABLE IF NOT EXISTS raw.player_boxscores (
  game_date DATE NOT NULL,
  player_lookup STRING NOT NULL,
  team_abbr STRING,
  points INT64,
  minutes FLOAT64,
  processed_at TIMESTAMP
)
PARTITION BY game_date
CLUSTER BY player_lookup
;
-- parameters: 
