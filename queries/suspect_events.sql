-- rare_events (step) for events without an `event_id` column: no row is a copy of another, so
-- the rows that need a second look are only those a check of docs/scoring.md ("Reading the input", item 3) may
-- reject: a null lead_id, ts or action, or a value that a fraction rule or an nps_response
-- answer must have in range (`value_bounds`). rare_key() gives such a row the null key, and any
-- other row the key of its (here constant) id.
select e.lead_id, e.ts, e.action, e.asset, e.product, e.value, e.event_id
from events e
where rare_key(cast(0 as bigint), e.lead_id, e.ts, e.action, e.value, ${value_bounds}) is null
