-- A sensor is compared with its own site: more than 4 degrees above or below the site's mean
-- is hot/cold (a radiator, an open window, or a broken sensor); under half coverage is
-- offline; a battery under 2.6 V will die within days.
WITH registry AS (
  SELECT g.sensor_id, g.site_id
  FROM {{ ref('sensor_registry') }} AS g
  WHERE g.day = {{ partition }}
    AND {{ entity_filter('g.sensor_id') }}
),
site AS (
  -- site rows reach a sensor through the registry (the site_to_sensor mapping): joined on
  -- the site the registry names for the sensor
  SELECT t.site_id, t.temp_avg
  FROM {{ ref('site_daily_summary') }} AS t
  WHERE t.day = {{ partition }}
)
SELECT
  s.day,
  s.sensor_id,
  s.site_id,
  s.temp_avg,
  t.temp_avg AS site_temp_avg,
  ROUND(s.temp_avg - t.temp_avg, 3) AS deviation_c,
  CASE
    WHEN s.coverage_pct < 50 THEN 'offline'
    WHEN s.temp_avg - t.temp_avg > 4 THEN 'hot'
    WHEN s.temp_avg - t.temp_avg < -4 THEN 'cold'
    WHEN s.battery_min < 2.6 THEN 'low_battery'
    ELSE 'ok'
  END AS flag
FROM {{ ref('sensor_daily_stats') }} AS s
LEFT JOIN registry AS g ON g.sensor_id = s.sensor_id
LEFT JOIN site AS t ON t.site_id = g.site_id
WHERE s.day = {{ partition }}
  AND {{ entity_filter('s.sensor_id') }}
