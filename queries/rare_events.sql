-- rare_events (step): the input rows that need a second look, found in one pass over the events:
-- every copy of an event_id whose key repeats (see repeated_keys), for duplicate_events, and
-- every row a check of SPEC §2.4 may reject, for rejects. A small share of the input.
--
-- repeated: the row's key repeats. The other rows fail the rejects' prefilter: a null lead_id,
-- ts or action, or a value outside 0..1 for an action whose value is checked (`value_actions`:
-- those of the fraction rules, and nps_response, whose answers are checked against 0..10 later,
-- so an answer above 1 is a rare row too).
with marked as (
    select e.*, r.k is not null as repeated
    from events e
    left join repeated_keys r on r.k = event_key(e.event_id)
)

select lead_id, ts, action, asset, product, value, event_id, repeated
from marked
where repeated
   or lead_id is null or ts is null or action is null
   or (action in (${value_actions}) and (value is null or value < 0 or value > 1))
