-- record processed fingerprints for processor player_boxscores
DELETE FROM _pipectl.entity_fingerprints
WHERE processor = $processor
  AND partition_key = CAST($game_date AS STRING)
  AND entity_key IN (SELECT UNNEST($entity_ids))
;
INSERT INTO _pipectl.entity_fingerprints (processor, partition_key, entity_key, fingerprint, state_format, run_id, processed_at)
WITH
current_rows AS (
  -- input boxscores_landing (entity): landing.boxscores
  SELECT
    CAST(i.player_lookup AS STRING) AS entity_key,
    hash(i.points, i.minutes) AS row_hash
  FROM landing.boxscores AS i
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
WHERE entity_key IN (SELECT UNNEST($entity_ids))
;
-- parameters: game_date, entity_ids, processor, run_id
