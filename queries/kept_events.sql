-- kept_events (view): the events input with each repeated event_id reduced to its first copy
-- (see duplicate_events).
--
-- ${event_rows} is `events`, or `rare_events` for kept_rare_events, the kept rows among those
-- that rejects judges.
select e.lead_id, e.ts, e.action, e.asset, e.product, e.value, e.event_id
from ${event_rows} e
where not exists (
    select 1 from duplicate_events d where d.event_id = e.event_id
)

union all

select lead_id, ts, action, asset, product, value, event_id
from duplicate_events
where copy = 1
