-- An earlier form of rare_events.sql: the rare key chosen by a CASE instead of rare_key(), and
-- every nps_response answer above 1 kept as a rare row (the shipped query keeps only those
-- outside 0..10; the published tables are the same). For timing against the shipped one:
-- `score --timings --queries` on this directory; see README "Performance".
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
