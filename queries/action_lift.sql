-- action_lift (output): one row per [[action]] rule, in file order (docs/weights.md).
--
-- leads: leads that matched the rule, counting a converted lead's events before its
--   opportunity_at and every event of the others (the leads that did not convert, or converted
--   outside the window, or converted before any staged action).
-- converted: how many of them are converted leads (converted_tallies).
-- conversion_rate = converted / leads; lift = conversion_rate / (converted leads / leads with a
--   good event): above 1, leads who do this convert more often than leads in general.
-- A rule no lead matched has leads = 0 and null rate and lift.
with converted as (
    select lead_id, min(opportunity_at) as opportunity_at
    from converted_tallies
    group by lead_id
),

rule_leads as (
    select e.rule_id, e.lead_id, bool_or(c.lead_id is not null) as converted
    from judged_events e
    left join converted c on c.lead_id = e.lead_id
    where e.good
      and e.rule_id is not null
      and (c.lead_id is null or e.ts < c.opportunity_at)
    group by e.rule_id, e.lead_id
),

per_rule as (
    select rule_id, count(*) as leads, count(*) filter (where converted) as converted
    from rule_leads
    group by rule_id
),

base as (
    select
        cast((select count(*) from converted) as double)
            / nullif((select count(distinct lead_id) from judged_events where good), 0) as rate
)

select
    r.rule_id as rule,
    r.action,
    r.assets,
    coalesce(p.leads, 0) as leads,
    coalesce(p.converted, 0) as converted,
    cast(p.converted as double) / p.leads as conversion_rate,
    cast(p.converted as double) / p.leads / nullif(b.rate, 0) as lift
from ${rule_table} r
left join per_rule p on p.rule_id = r.rule_id
cross join base b
order by r.rule_id
