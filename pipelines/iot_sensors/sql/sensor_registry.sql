-- The registry export of the day: which site and room each sensor is installed in.
SELECT
  g.day,
  g.sensor_id,
  UPPER(g.site_id) AS site_id,
  g.room,
  g.model
FROM {{ source('registry_export') }} AS g
WHERE g.day = {{ partition }}
  AND {{ entity_filter('g.sensor_id') }}
