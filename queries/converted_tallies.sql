-- converted_tallies (step): one row per converted lead and declared stage (docs/weights.md).
--
-- A converted lead has an opportunity_at in the window [${window_from}, ${window_to}) and at
-- least one matched event of a staged rule before it. tally = the number of its matched events
-- of that stage with ts < opportunity_at (0 when none: the averages count every converted lead).
-- Rejected rows never count (judged_events.good), and neither do events at or after the
-- opportunity, nor unmatched events.
with in_window as (
    select lead_id, opportunity_at
    from opportunities
    where opportunity_at >= ${window_from}
      and opportunity_at < ${window_to}
),

staged as (
    select e.lead_id, e.stage_rank, count(*) as tally
    from judged_events e
    join in_window o on o.lead_id = e.lead_id
    where e.good
      and e.stage_rank is not null
      and e.ts < o.opportunity_at
    group by e.lead_id, e.stage_rank
),

converted as (
    select o.lead_id, o.opportunity_at
    from in_window o
    where o.lead_id in (select lead_id from staged)
)

select
    c.lead_id,
    c.opportunity_at,
    st.stage_rank,
    st.stage,
    coalesce(s.tally, 0) as tally
from converted c
cross join ${stage_table} st
left join staged s on s.lead_id = c.lead_id and s.stage_rank = st.stage_rank
