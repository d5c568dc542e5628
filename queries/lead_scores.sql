-- lead_scores (output): one row per snapshot day and lead with an event before the cutoff,
-- matched or not, and per lead of the leads table (SPEC §4.4-4.6, §5). `score` has one snapshot
-- day; `backfill` writes this as lead_score_history, one partition per day.
--
-- score = engagement + fit; is_mql = score >= threshold.
-- mql_at: the first crossing of the lead's fit at that day, if it happened before the cutoff.
-- stage: the furthest stage (in the model's order) with a non-zero tally.
-- is_cold: no matched event with positive points in [cutoff - cold.days, cutoff).
-- nps_class: promoter (9-10), passive (7-8), detractor (0-6).
with scored as (
    select
        coalesce(a.lead_id, f.lead_id) as lead_id,
        coalesce(a.as_of, f.as_of) as as_of,
        f.account_id,
        coalesce(a.engagement, 0.0) as engagement,
        coalesce(f.fit, 0.0) as fit,
        array_element(
            a.crossings, cast(array_position(a.fits, coalesce(f.fit, 0.0)) as bigint)
        ) as crossed_at,
        a.stage_rank,
        ${tally_values}
        a.last_activity,
        a.last_positive_at,
        a.nps
    from lead_activity a
    full outer join lead_fit f on f.lead_id = a.lead_id and f.as_of = a.as_of
)

select
    s.as_of,
    s.lead_id,
    s.account_id,
    s.engagement,
    s.fit,
    s.engagement + s.fit as score,
    s.engagement + s.fit >= ${threshold} as is_mql,
    case when s.crossed_at < d.cutoff then s.crossed_at end as mql_at,
    st.stage,
    ${tally_columns}
    s.last_activity,
    coalesce(s.last_positive_at < d.cold_since, true) as is_cold,
    s.nps,
    case
        when s.nps >= 9 then 'promoter'
        when s.nps >= 7 then 'passive'
        when s.nps >= 0 then 'detractor'
    end as nps_class,
    ${model_version} as model_version
from scored s
join ${snapshots} d on d.as_of = s.as_of
left join ${stage_table} st on st.stage_rank = s.stage_rank
order by s.as_of, s.lead_id
