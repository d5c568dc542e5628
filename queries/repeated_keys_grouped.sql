-- repeated_keys (step, under a tight --memory-limit): the same keys as repeated_keys.sql, found
-- by grouping, which spills to disk when the keys do not fit in memory. The grand total of the
-- empty grouping set is the null key (the ids themselves are never null here).
select event_key(event_id) as k
from events
where event_id is not null
group by grouping sets ((event_key(event_id)), ())
having count(*) > 1 or grouping(event_key(event_id)) = 1
