-- rare_events (step): the input rows that need a second look, found in one pass over the events:
-- every copy of an event_id whose key repeats (see repeated_keys), for duplicate_events, and
-- every row a check of docs/scoring.md, "Reading the input" may reject, for rejects. A small share of the input.
--
-- A suspect row is one a check may reject: a null lead_id, ts or action, a value null or
-- outside 0..1 for an action of a fraction rule, or an nps_response answer null or outside
-- 0..10 (`value_bounds`: each fraction rule's action, then `'nps_response', 10`; most answers
-- are in range and not rare rows). rare_key() gives such a row the null key that repeated_keys ends with, and any
-- other row its own event_key (one pass over the columns, where the same test written as a
-- CASE costs about a third of this step). An inner join copies only the rows it finds, where
-- an outer one followed by a filter would copy every row of the input first. (A row with a null
-- event_id and nothing suspect also finds the null key: it is judged good and dropped again
-- later.)
select e.lead_id, e.ts, e.action, e.asset, e.product, e.value, e.event_id
from events e
join repeated_keys r
  on r.k is not distinct from
      rare_key(e.event_id, e.lead_id, e.ts, e.action, e.value, ${value_bounds})
