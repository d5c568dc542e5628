-- latest_event: the time of the latest good event; its date is the default --as-of day.
select max(ts) as latest
from judged_events
where good
