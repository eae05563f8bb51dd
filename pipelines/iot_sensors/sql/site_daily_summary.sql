-- Per site and day, from its sensors' daily stats. A sensor's row counts for the site the
-- registry of the day names (the input's sensor_to_site mapping), exactly as change detection
-- attributes it, never for the site_id the row itself carries.
SELECT
  s.day,
  g.site_id,
  CAST(SUM(CASE WHEN s.readings > 0 THEN 1 ELSE 0 END) AS BIGINT) AS sensors_reporting,
  ROUND(AVG(s.temp_avg), 3) AS temp_avg,
  MAX(s.temp_max) AS temp_max,
  CAST(SUM(CASE WHEN s.battery_min < 2.6 THEN 1 ELSE 0 END) AS BIGINT) AS low_battery_sensors
FROM {{ ref('sensor_daily_stats') }} AS s
JOIN {{ ref('sensor_registry') }} AS g ON g.sensor_id = s.sensor_id AND g.day = s.day
WHERE s.day = {{ partition }}
  AND {{ entity_filter('g.site_id') }}
GROUP BY s.day, g.site_id
