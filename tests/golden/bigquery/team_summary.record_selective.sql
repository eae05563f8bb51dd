-- record processed fingerprints for processor team_summary
DELETE FROM _pipectl.processed_fingerprints
WHERE processor = @processor
  AND partition_key = CAST(@game_date AS STRING)
  AND entity_key IN (SELECT UNNEST(@entity_ids))
;
INSERT INTO _pipectl.processed_fingerprints (processor, input_name, partition_key, entity_key, fingerprint, run_id, processed_at)
WITH
current_0 AS (
  -- input player_boxscores (mapped): raw.player_boxscores
  SELECT
    CAST(m.target_key AS STRING) AS entity_key,
    CAST(COUNT(*) AS STRING) || ':' || CAST(SUM(FARM_FINGERPRINT(TO_JSON_STRING(STRUCT(i.player_lookup, i.points))) >> 32) AS STRING) || ':' || CAST(SUM(FARM_FINGERPRINT(TO_JSON_STRING(STRUCT(i.player_lookup, i.points))) & 4294967295) AS STRING) AS fingerprint
  FROM raw.player_boxscores AS i
  JOIN (
    SELECT DISTINCT m.player_lookup AS source_key, m.team_abbr AS target_key
    FROM raw.rosters AS m
    WHERE m.game_date = @game_date
  ) AS m
    ON m.source_key = i.player_lookup
  WHERE i.game_date = @game_date
    AND m.target_key IS NOT NULL
  GROUP BY 1
),
current_1 AS (
  -- input rosters (mapped): raw.rosters
  SELECT
    CAST(m.target_key AS STRING) AS entity_key,
    CAST(COUNT(*) AS STRING) || ':' || CAST(SUM(FARM_FINGERPRINT(TO_JSON_STRING(STRUCT(i.player_lookup, i.team_abbr))) >> 32) AS STRING) || ':' || CAST(SUM(FARM_FINGERPRINT(TO_JSON_STRING(STRUCT(i.player_lookup, i.team_abbr))) & 4294967295) AS STRING) AS fingerprint
  FROM raw.rosters AS i
  JOIN (
    SELECT DISTINCT m.player_lookup AS source_key, m.team_abbr AS target_key
    FROM raw.rosters AS m
    WHERE m.game_date = @game_date
  ) AS m
    ON m.source_key = i.player_lookup
  WHERE i.game_date = @game_date
    AND m.target_key IS NOT NULL
  GROUP BY 1
),
current_fingerprints AS (
  SELECT 'player_boxscores' AS input_name, entity_key, fingerprint FROM current_0
  UNION ALL
  SELECT 'rosters' AS input_name, entity_key, fingerprint FROM current_1
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
