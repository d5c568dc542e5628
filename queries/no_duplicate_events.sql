-- duplicate_events (view) for events without an event_id column: no row is a copy of another.
select lead_id, ts, action, asset, product, value, event_id, cast(null as bigint) as copy
from events
where false
