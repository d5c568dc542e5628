-- stage_tally_trend (output): the averages of stage_tallies per calendar month (UTC) of
-- opportunity_at, so that a team sees whether journeys get longer or shorter (docs/weights.md).
-- One row per month with converted leads and per declared stage.
select
    cast(date_trunc('month', opportunity_at) as date) as month,
    stage,
    count(*) as converted_leads,
    avg(tally) as avg_tally
from converted_tallies
group by 1, stage_rank, stage
order by month, stage_rank
