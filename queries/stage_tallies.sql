-- stage_tallies (output): one row per declared stage (docs/weights.md, the "equal split").
--
-- converted_leads: how many converted leads there are (the same on every row).
-- avg_tally: the mean over converted leads of their tally of that stage.
-- points_per_action: threshold / (sum of every stage's avg_tally): what each staged action is
--   worth if a typical converted lead's journey should add up to exactly the threshold.
-- With no converted lead, the averages and points_per_action are null.
with per_stage as (
    select
        st.stage_rank,
        st.stage,
        count(c.lead_id) as converted_leads,
        avg(c.tally) as avg_tally
    from ${stage_table} st
    left join converted_tallies c on c.stage_rank = st.stage_rank
    group by st.stage_rank, st.stage
),

total as (
    -- stable_sum: the same bits whatever order the stages arrive in.
    select stable_sum(avg_tally) as tally from per_stage
)

select
    p.stage,
    p.converted_leads,
    p.avg_tally,
    ${threshold} / nullif(t.tally, 0) as points_per_action
from per_stage p
cross join total t
order by p.stage_rank
