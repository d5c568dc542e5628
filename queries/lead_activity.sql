-- lead_activity (step): one row per lead with a good event before the cutoff, matched or not.
--
-- fold: lead_fold() runs the decay fold of SPEC §4.2 over the lead's matched events in time order
--   (engagement, mql_at) and the same fold per product with floor 0 (SPEC §4.3).
-- tally_<stage>: matched events whose rule has that stage (SPEC §4.5).
-- last_positive_at: the latest matched event with positive points, for is_cold (SPEC §4.4).
-- nps: the value of the latest nps_response, ties broken by the larger value (SPEC §4.6).
select
    e.lead_id,
    lead_fold(
        e.ts, e.points, e.product, coalesce(f.fit, 0),
        ${threshold}, ${cutoff}, ${decay}, ${floor_points}
    ) filter (where e.rule_id is not null) as fold,
    ${tally_counts}
    max(e.stage_rank) as stage_rank,
    count(*) filter (where e.rule_id is not null) as matched_events,
    count(*) filter (where e.rule_id is null) as unmatched_events,
    max(e.ts) filter (where e.rule_id is not null) as last_activity,
    max(e.ts) filter (where e.rule_id is not null and e.points > 0) as last_positive_at,
    last_value(e.value order by e.ts, e.value)
        filter (where e.action = 'nps_response') as nps
from judged_events e
left join lead_fit f on f.lead_id = e.lead_id
where e.reason is null
  and e.ts < ${cutoff}
group by e.lead_id
