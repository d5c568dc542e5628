-- rare_events (step): the input rows that need a second look, found in one pass over the events:
-- every copy of an event_id whose key repeats (see repeated_keys), for duplicate_events, and
-- every row a check of SPEC §2.4 may reject, for rejects. A small share of the input.
--
-- A suspect row fails the rejects' prefilter: a null lead_id, ts or action, or a value outside
-- 0..1 for an action whose value is checked (`value_actions`: those of the fraction rules, and
-- nps_response, whose answers are checked against 0..10 later, so an answer above 1 is a rare
-- row too). rare_key() gives such a row the null key that repeated_keys ends with, and any
-- other row its own event_key (one pass over the columns, where the same test written as a
-- CASE costs about a third of this step). An inner join copies only the rows it finds, where
-- an outer one followed by a filter would copy every row of the input first. (A row with a null
-- event_id and nothing suspect also finds the null key: it is judged good and dropped again
-- later.)
select e.lead_id, e.ts, e.action, e.asset, e.product, e.value, e.event_id
from events e
join repeated_keys r
  on r.k is not distinct from
      rare_key(e.event_id, e.lead_id, e.ts, e.action, e.value, ${value_actions})
