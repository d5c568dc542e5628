-- repeated_keys (step, under a tight --memory-limit): the same keys as repeated_keys.sql, found
-- by grouping, which spills to disk when the keys do not fit in memory.
select event_key(event_id) as k
from events
where event_id is not null
group by event_key(event_id)
having count(*) > 1
