-- lead_scores (output): one row per lead with an event before the cutoff, matched or not, and
-- per lead of the leads table (SPEC §4.4-4.6, §5).
--
-- score = engagement + fit; is_mql = score >= threshold.
-- stage: the furthest stage (in the model's order) with a non-zero tally.
-- is_cold: no matched event with positive points in [cutoff - cold.days, cutoff).
-- nps_class: promoter (9-10), passive (7-8), detractor (0-6).
with scored as (
    select
        coalesce(a.lead_id, f.lead_id) as lead_id,
        f.account_id,
        coalesce(a.fold['engagement'], 0.0) as engagement,
        coalesce(f.fit, 0.0) as fit,
        a.fold['mql_at'] as mql_at,
        a.stage_rank,
        ${tally_values}
        a.last_activity,
        a.last_positive_at,
        a.nps
    from lead_activity a
    full outer join lead_fit f on f.lead_id = a.lead_id
)

select
    ${as_of} as as_of,
    s.lead_id,
    s.account_id,
    s.engagement,
    s.fit,
    s.engagement + s.fit as score,
    s.engagement + s.fit >= ${threshold} as is_mql,
    s.mql_at,
    st.stage,
    ${tally_columns}
    s.last_activity,
    coalesce(s.last_positive_at < ${cold_since}, true) as is_cold,
    s.nps,
    case
        when s.nps >= 9 then 'promoter'
        when s.nps >= 7 then 'passive'
        when s.nps >= 0 then 'detractor'
    end as nps_class,
    ${model_version} as model_version
from scored s
left join ${stage_table} st on st.stage_rank = s.stage_rank
order by s.lead_id
