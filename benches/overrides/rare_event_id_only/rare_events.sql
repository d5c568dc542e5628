-- Timing only, wrong rows: rare_events reading only event_id (the other columns null), to measure
-- what its read of every column costs. Run with `score --timings --queries` on this directory;
-- see README "Performance".
select
    cast(null as bigint) as lead_id,
    cast(null as timestamp) as ts,
    cast(null as varchar) as action,
    cast(null as varchar) as asset,
    cast(null as varchar) as product,
    cast(null as double) as value,
    e.event_id
from events e
join repeated_keys r on r.k = event_key(e.event_id)
