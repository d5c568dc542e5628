-- rejects (output): every kept row that is not scored, with the reason (SPEC §2.4): a null
-- lead_id, ts or action; a fraction outside 0..1 for a `scale = "fraction"` rule; an
-- nps_response answer outside 0..10. A null value counts as outside.
select
    lead_id,
    ts,
    action,
    asset,
    product,
    value,
    event_id,
    reason
from judged_events
where reason is not null
  -- Implied by a reason; stated so the engine can drop good rows right at the scan, before
  -- matching rules: `value_actions` lists the actions whose value is checked (those of the
  -- fraction rules, and nps_response).
  and (lead_id is null or ts is null or action is null
       or (action in (${value_actions}) and (value is null or value < 0 or value > 1)))
order by ts, lead_id, event_id, action, asset, value
