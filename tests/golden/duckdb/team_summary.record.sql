-- record processed fingerprints for processor team_summary
DELETE FROM _pipectl.entity_fingerprints
WHERE processor = $processor
  AND partition_key = CAST($game_date AS STRING)
;
INSERT INTO _pipectl.entity_fingerprints (processor, partition_key, entity_key, fingerprint, state_format, run_id, processed_at)
WITH
current_rows AS (
  -- input player_boxscores (mapped): raw.player_boxscores
  SELECT
    CAST(m.target_key AS STRING) AS entity_key,
    hash('player_boxscores', i.player_lookup, i.points) AS row_hash
  FROM raw.player_boxscores AS i
  JOIN (
    SELECT DISTINCT m.player_lookup AS source_key, m.team_abbr AS target_key
    FROM raw.rosters AS m
    WHERE m.game_date = $game_date
  ) AS m
    ON m.source_key = i.player_lookup
  WHERE i.game_date = $game_date
    AND m.target_key IS NOT NULL
  UNION ALL
  -- input rosters (mapped): raw.rosters
  SELECT
    CAST(m.target_key AS STRING) AS entity_key,
    hash('rosters', i.player_lookup, i.team_abbr) AS row_hash
  FROM raw.rosters AS i
  JOIN (
    SELECT DISTINCT m.player_lookup AS source_key, m.team_abbr AS target_key
    FROM raw.rosters AS m
    WHERE m.game_date = $game_date
  ) AS m
    ON m.source_key = i.player_lookup
  WHERE i.game_date = $game_date
    AND m.target_key IS NOT NULL
),
current_fingerprints AS (
  SELECT entity_key, CAST(hash(COUNT(*), SUM(row_hash)) >> 1 AS BIGINT) AS fingerprint
  FROM current_rows
  GROUP BY entity_key
)
SELECT
  $processor,
  CAST($game_date AS STRING),
  entity_key,
  fingerprint,
  2,
  $run_id,
  CURRENT_TIMESTAMP
FROM current_fingerprints
;
-- parameters: game_date, processor, run_id
