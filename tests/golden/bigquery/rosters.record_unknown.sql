-- record processed fingerprints for processor rosters
DELETE FROM _pipectl.entity_fingerprints
WHERE processor = @processor
  AND partition_key = CAST(@game_date AS STRING)
  AND entity_key IN (SELECT UNNEST(@entity_ids))
;
INSERT INTO _pipectl.entity_fingerprints (processor, partition_key, entity_key, fingerprint, state_format, run_id, processed_at)
SELECT DISTINCT
  @processor,
  CAST(@game_date AS STRING),
  entity_key,
  CAST(NULL AS INT64),
  2,
  @run_id,
  CURRENT_TIMESTAMP
FROM UNNEST(@entity_ids) AS entity_key
;
-- parameters: game_date, entity_ids, processor, run_id
