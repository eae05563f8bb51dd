-- Gateways retry uploads, so a reading can arrive twice: keep one per sensor and timestamp.
-- Values outside what the hardware can measure are glitches and are dropped.
SELECT
  r.day,
  r.sensor_id,
  r.reading_ts,
  r.temperature_c,
  r.humidity_pct,
  r.battery_v
FROM (
  SELECT
    x.*,
    ROW_NUMBER() OVER (PARTITION BY x.sensor_id, x.reading_ts ORDER BY x.temperature_c, x.humidity_pct, x.battery_v) AS copy_number
  FROM {{ source('raw_readings') }} AS x
  WHERE x.day = {{ partition }}
    AND {{ entity_filter('x.sensor_id') }}
) AS r
WHERE r.copy_number = 1
  AND r.temperature_c BETWEEN -40 AND 85
  AND (r.humidity_pct IS NULL OR r.humidity_pct BETWEEN 0 AND 100)
