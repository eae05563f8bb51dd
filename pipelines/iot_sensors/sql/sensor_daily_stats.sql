-- Per sensor and day. A sensor reports every 15 minutes, so 96 readings is full coverage.
WITH stats AS (
  SELECT
    r.sensor_id,
    COUNT(*) AS readings,
    MIN(r.temperature_c) AS temp_min,
    MAX(r.temperature_c) AS temp_max,
    ROUND(AVG(r.temperature_c), 3) AS temp_avg,
    ROUND(AVG(r.humidity_pct), 2) AS humidity_avg,
    MIN(r.battery_v) AS battery_min
  FROM {{ ref('readings_clean') }} AS r
  WHERE r.day = {{ partition }}
    AND {{ entity_filter('r.sensor_id') }}
  GROUP BY r.sensor_id
)
SELECT
  g.day,
  g.sensor_id,
  g.site_id,
  COALESCE(s.readings, 0) AS readings,
  ROUND(100.0 * COALESCE(s.readings, 0) / 96, 1) AS coverage_pct,
  s.temp_min,
  s.temp_max,
  s.temp_avg,
  s.humidity_avg,
  s.battery_min
FROM {{ ref('sensor_registry') }} AS g
LEFT JOIN stats AS s ON s.sensor_id = g.sensor_id
WHERE g.day = {{ partition }}
  AND {{ entity_filter('g.sensor_id') }}
