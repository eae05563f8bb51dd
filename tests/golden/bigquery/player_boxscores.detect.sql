-- change detection for processor player_boxscores
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
),
previous_fingerprints AS (
  SELECT input_name, entity_key, fingerprint
  FROM _pipectl.processed_fingerprints
  WHERE processor = @processor
    AND partition_key = CAST(@game_date AS STRING)
    AND input_name IN ('boxscores_landing')
),
compared AS (
  SELECT
    COALESCE(c.entity_key, p.entity_key) AS entity_key,
    COALESCE(c.input_name, p.input_name) AS input_name,
    c.fingerprint AS current_fingerprint,
    p.fingerprint AS previous_fingerprint,
    c.entity_key IS NOT NULL AS is_current,
    p.entity_key IS NOT NULL AS is_previous
  FROM current_fingerprints AS c
  FULL OUTER JOIN previous_fingerprints AS p
    ON c.entity_key = p.entity_key AND c.input_name = p.input_name
),
changed AS (
  -- only entities with a difference in some input are grouped (cheap when little changed)
  SELECT
    entity_key,
    CASE
      WHEN MAX(CASE WHEN is_previous THEN 1 ELSE 0 END) = 0 THEN 'insert'
      WHEN MAX(CASE WHEN is_current THEN 1 ELSE 0 END) = 0 THEN 'delete'
      ELSE 'update'
    END AS operation,
    STRING_AGG(input_name || '=' || current_fingerprint, ';' ORDER BY input_name) AS fingerprint
  FROM compared
  WHERE entity_key IN (
    SELECT entity_key FROM compared WHERE current_fingerprint IS DISTINCT FROM previous_fingerprint
  )
  GROUP BY entity_key
)
SELECT entity_key, operation, fingerprint, CAST(NULL AS INT64) AS total_entities
FROM changed
UNION ALL
SELECT CAST(NULL AS STRING), 'total', CAST(NULL AS STRING), COUNT(*)
FROM current_0
WHERE entity_key <> '__partition__'
-- parameters: game_date, processor
