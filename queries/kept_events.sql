-- kept_events (view): the events input with each repeated event_id reduced to its first copy
-- (see duplicate_events).
select e.*
from events e
where not exists (
    select 1 from duplicate_events d where d.event_id = e.event_id
)

union all

select lead_id, ts, action, asset, product, value, event_id
from duplicate_events
where copy = 1
