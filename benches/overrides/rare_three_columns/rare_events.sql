-- Timing only, wrong rows: rare_events reading only event_id, ts and lead_id (the columns a step
-- finding each repeated event_id's winning copy would need). Run with `score --timings --queries`
-- on this directory; see README "Performance".
select
    e.lead_id,
    e.ts,
    cast(null as varchar) as action,
    cast(null as varchar) as asset,
    cast(null as varchar) as product,
    cast(null as double) as value,
    e.event_id
from events e
join repeated_keys r on r.k = event_key(e.event_id)
