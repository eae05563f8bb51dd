-- record processed fingerprints for processor player_boxscores
DELETE FROM _pipectl.processed_fingerprints
WHERE processor = @processor
  AND partition_key = CAST(@game_date AS STRING)
;
INSERT INTO _pipectl.processed_fingerprints (processor, input_name, partition_key, entity_key, fingerprint, run_id, processed_at)
WITH
current_0 AS (
  -- input boxscores_landing (entity): landing.boxscores
  SELECT
    CAST(i.player_lookup AS STRING) AS entity_key,
    CAST(COUNT(*) AS STRING) || ':' || CAST(SUM(FARM_FINGERPRINT(TO_JSON_STRING(STRUCT(i.points, i.minutes))) >> 32) AS STRING) || ':' || CAST(SUM(FARM_FINGERPRINT(TO_JSON_STRING(STRUCT(i.points, i.minutes))) & 4294967295) AS STRING) AS fingerprint
  FROM landing.boxscores AS i
  WHERE i.game_date = @game_date
    AND i.player_lookup IS NOT NULL
  GROUP BY 1
),
current_fingerprints AS (
  SELECT 'boxscores_landing' AS input_name, entity_key, fingerprint FROM current_0
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
;
-- parameters: game_date, processor, run_id
