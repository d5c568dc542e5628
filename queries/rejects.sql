-- rejects (output): every kept row that is not scored, with the reason (docs/scoring.md, "Reading the input"): a null
-- lead_id, ts or action; a fraction outside 0..1 for a `scale = "fraction"` rule; an
-- nps_response answer outside 0..10. A null value counts as outside.
--
-- judged_rare_events is judged_events over the kept rows of rare_events only: every row that
-- may be rejected is one of them, so the events are not read again here.
select
    lead_id,
    ts,
    action,
    asset,
    product,
    value,
    event_id,
    reason
from judged_rare_events
where reason is not null
  -- Implied by a reason (the test that chose the rare rows); stated so that the engine drops
  -- the good copies of repeated event_ids before matching rules.
  and (lead_id is null or ts is null or action is null
       or (action in (${value_actions}) and (value is null or value < 0 or value > 1)))
order by ts, lead_id, event_id, action, asset, value
