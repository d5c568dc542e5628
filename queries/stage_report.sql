-- stage_report (output): per snapshot day, one row per declared stage, in the model's order, plus
-- a last row with a null stage for leads without one. share = leads / all leads of lead_scores
-- that day (null when there are none).
with stages as (
    select stage_rank, stage from ${stage_table_and_none}
),

counts as (
    select as_of, stage, count(*) as leads
    from lead_scores
    group by as_of, stage
),

total as (
    select as_of, count(*) as all_leads
    from lead_scores
    group by as_of
)

select
    d.as_of,
    s.stage,
    coalesce(c.leads, 0) as leads,
    cast(coalesce(c.leads, 0) as double) / nullif(t.all_leads, 0) as share
from ${snapshots} d
cross join stages s
left join counts c on c.as_of = d.as_of and c.stage is not distinct from s.stage
left join total t on t.as_of = d.as_of
order by d.as_of, s.stage_rank nulls last
