-- rare_events (step): the input rows that need a second look, found in one pass over the events:
-- every copy of an event_id whose key repeats (see repeated_keys), for duplicate_events, and
-- every row a check of SPEC §2.4 may reject, for rejects. A small share of the input.
--
-- A suspect row fails the rejects' prefilter: a null lead_id, ts or action, or a value outside
-- 0..1 for an action whose value is checked (`value_actions`: those of the fraction rules, and
-- nps_response, whose answers are checked against 0..10 later, so an answer above 1 is a rare
-- row too). It looks up the null key that repeated_keys ends with; any other row looks up its
-- own key. An inner join copies only the rows it finds, where an outer one followed by a filter
-- would copy every row of the input first. (A row with a null event_id and nothing suspect also
-- finds the null key: it is judged good and dropped again later.)
select e.lead_id, e.ts, e.action, e.asset, e.product, e.value, e.event_id
from events e
join repeated_keys r
  on r.k is not distinct from (
      case
          when e.lead_id is null or e.ts is null or e.action is null
              or (e.action in (${value_actions}) and (e.value is null or e.value < 0 or e.value > 1))
              then null
          else event_key(e.event_id)
      end
  )
