-- record processed fingerprints for processor rosters
DELETE FROM _pipectl.entity_fingerprints
WHERE processor = $processor
  AND partition_key = CAST($game_date AS STRING)
;
INSERT INTO _pipectl.entity_fingerprints (processor, partition_key, entity_key, fingerprint, state_format, run_id, processed_at)
WITH
current_rows AS (
  -- input rosters_landing (entity): landing.rosters
  SELECT
    CAST(i.player_lookup AS STRING) AS entity_key,
    hash(i.team_abbr) AS row_hash
  FROM landing.rosters AS i
  WHERE i.game_date = $game_date
    AND i.player_lookup IS NOT NULL
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
