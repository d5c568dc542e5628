-- rare_events (step) when the fold lists the rejected rows itself (see lead_activity.sql): only
-- the copies of a repeated event_id, for duplicate_events to number. repeated_keys lists the
-- keys that more than one row has (and a null key, which an equality never finds).
select e.lead_id, e.ts, e.action, e.asset, e.product, e.value, e.event_id
from events e
join repeated_keys r on r.k = event_key(e.event_id)
