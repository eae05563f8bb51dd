-- output table of processor rosters
CREATE SCHEMA IF NOT EXISTS raw;
CREATE TABLE IF NOT EXISTS raw.rosters (
  game_date DATE,
  player_lookup STRING,
  team_abbr STRING
)
PARTITION BY game_date
;
-- parameters: 
