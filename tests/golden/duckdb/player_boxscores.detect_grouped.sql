-- change detection for processor player_boxscores (state format 2, grouped)
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
),
previous_fingerprints AS (
  SELECT entity_key, fingerprint, state_format
  FROM _pipectl.entity_fingerprints
  WHERE processor = $processor
    AND partition_key = CAST($game_date AS STRING)
)
SELECT
  CASE WHEN c.fingerprint IS DISTINCT FROM p.fingerprint OR p.fingerprint IS NULL THEN COALESCE(c.entity_key, p.entity_key) END AS entity_key,
  CASE WHEN p.entity_key IS NULL THEN 'insert' WHEN c.entity_key IS NULL THEN 'delete' ELSE 'update' END AS operation,
  MAX(c.fingerprint) AS fingerprint,
  COUNT(c.entity_key) AS entities,
  COUNT(p.entity_key) AS previous_rows,
  MIN(p.state_format) AS state_format
FROM current_fingerprints AS c
FULL OUTER JOIN previous_fingerprints AS p
  ON c.entity_key = p.entity_key
GROUP BY 1, 2
-- parameters: game_date, processor
