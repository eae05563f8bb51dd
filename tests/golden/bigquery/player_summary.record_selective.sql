-- record processed fingerprints for processor player_summary
DELETE FROM _pipectl.processed_fingerprints
WHERE processor = @processor
  AND partition_key = CAST(@game_date AS STRING)
  AND entity_key IN (SELECT UNNEST(@entity_ids))
;
INSERT INTO _pipectl.processed_fingerprints (processor, input_name, partition_key, entity_key, fingerprint, run_id, processed_at)
WITH
current_0 AS (
  -- input player_boxscores (entity): raw.player_boxscores
  SELECT
    CAST(i.player_lookup AS STRING) AS entity_key,
    CAST(COUNT(*) AS STRING) || ':' || CAST(SUM(FARM_FINGERPRINT(TO_JSON_STRING(STRUCT(i.points, i.minutes))) >> 32) AS STRING) || ':' || CAST(SUM(FARM_FINGERPRINT(TO_JSON_STRING(STRUCT(i.points, i.minutes))) & 4294967295) AS STRING) AS fingerprint
  FROM raw.player_boxscores AS i
  WHERE i.game_date = @game_date
    AND i.player_lookup IS NOT NULL
  GROUP BY 1
),
current_1 AS (
  -- input schedule (partition): landing.schedule
  SELECT
    '__partition__' AS entity_key,
    CAST(COUNT(*) AS STRING) || ':' || CAST(SUM(FARM_FINGERPRINT(TO_JSON_STRING(STRUCT(i.home, i.away, i.`order`))) >> 32) AS STRING) || ':' || CAST(SUM(FARM_FINGERPRINT(TO_JSON_STRING(STRUCT(i.home, i.away, i.`order`))) & 4294967295) AS STRING) AS fingerprint
  FROM landing.schedule AS i
  WHERE i.game_date = @game_date
  HAVING COUNT(*) > 0
),
current_fingerprints AS (
  SELECT 'player_boxscores' AS input_name, entity_key, fingerprint FROM current_0
  UNION ALL
  SELECT 'schedule' AS input_name, entity_key, fingerprint FROM current_1
)
SELECT
  @processor,
  input_name,
  CAST(@game_date AS STRING),
  entity_key,
  fingerprint,
  @run_id,
  CURRENT_TIMESTAMP
FROM current_fingerprints
WHERE entity_key IN (SELECT UNNEST(@entity_ids))
;
-- parameters: game_date, entity_ids, processor, run_id
