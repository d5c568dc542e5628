-- lead_product_scores (output): one row per lead and product with a matched event before the
-- cutoff: the product-interest score of docs/scoring.md, "Product interest", computed by lead_fold() in lead_activity.
with exploded as (
    select
        as_of,
        lead_id,
        unnest(products) as product,
        unnest(product_scores) as score
    from lead_activity
)

select
    as_of,
    lead_id,
    product,
    score
from exploded
-- Rows by lead and product: one snapshot day (see lead_scores.sql).
order by lead_id, product
