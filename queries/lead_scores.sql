-- lead_scores (output): one row per snapshot day and lead, for every lead of the leads table and
-- every lead with an event (matched or not) before the cutoff (docs/scoring.md, "Fit, score, qualification, coldness" to "Net Promoter answers"; the README's "Output tables"). `score` has one
-- snapshot day; `backfill` writes this as lead_score_history, one partition per day.
--
-- score = engagement + fit; is_mql = score >= threshold.
-- stage: the furthest stage (in the model's order) with a non-zero tally.
-- is_cold: no matched event with positive points in [cutoff - cold.days, cutoff).
-- nps_class: promoter (9-10), passive (7-8), detractor (0-6).
select
    a.as_of,
    a.lead_id,
    a.account_id,
    a.engagement,
    a.fit,
    a.engagement + a.fit as score,
    a.engagement + a.fit >= ${threshold} as is_mql,
    a.mql_at,
    ${stage_of_rank} as stage,
    ${tally_columns}
    a.last_activity,
    coalesce(a.last_positive_at < a.cutoff - ${cold_span}, true) as is_cold,
    a.nps,
    case
        when a.nps >= 9 then 'promoter'
        when a.nps >= 7 then 'passive'
        when a.nps >= 0 then 'detractor'
    end as nps_class,
    ${model_version} as model_version
from lead_activity a
-- Rows by lead: `score` has one snapshot day, and `backfill` writes a file per day and drops this
-- ORDER BY; sorting by the day as well compared two columns for nothing.
order by a.lead_id
