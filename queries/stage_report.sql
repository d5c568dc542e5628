-- stage_report (output): one row per declared stage, in the model's order, plus a last row with
-- a null stage for leads without one. share = leads / all leads of lead_scores.
with stages as (
    select stage_rank, stage from ${stage_table}
    union all
    select cast(null as int) as stage_rank, cast(null as varchar) as stage
),

counts as (
    select stage, count(*) as leads
    from lead_scores
    group by stage
),

total as (
    select count(*) as all_leads from lead_scores
)

select
    ${as_of} as as_of,
    s.stage,
    coalesce(c.leads, 0) as leads,
    cast(coalesce(c.leads, 0) as double) / nullif(t.all_leads, 0) as share
from stages s
left join counts c on c.stage is not distinct from s.stage
cross join total t
order by s.stage_rank nulls last
