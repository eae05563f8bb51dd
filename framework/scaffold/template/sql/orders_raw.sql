-- Clean the landed orders of one partition; entity_filter() restricts an incremental run
-- to the changed customers (it renders TRUE in a full batch).
SELECT o.day, o.customer_id, o.store_id, o.amount
FROM {{ source('orders_landing') }} o
WHERE o.day = {{ partition }}
  AND o.amount IS NOT NULL
  AND {{ entity_filter('o.customer_id') }}
