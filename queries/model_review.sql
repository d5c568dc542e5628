-- model_review: one row for the model being reviewed (docs/review.md); `review` runs it once per
-- model and writes the rows together.
--
-- The window is [${window_from}, ${window_to}). lead_activity folds every event up to the
-- window's end (so mql_at is the first crossing ever, and fit is evaluated at the window's end).
-- mqls: leads whose mql_at falls in the window.
-- mql_to_opportunity: the share of them whose (earliest) opportunity_at lies in
--   [mql_at, mql_at + ${window_days} days].
-- opportunity_coverage: the share of the opportunities in the window whose lead had become an
--   MQL at or before its opportunity_at.
-- median_days_to_opportunity: over the converted MQLs, the median of
--   (opportunity_at - mql_at) in real days; the mean of the two middle values for an even count.
-- A ratio or median with nothing to count is null.
with mqls as (
    select
        a.mql_at,
        o.opportunity_at,
        o.opportunity_at >= a.mql_at
            and o.opportunity_at <= a.mql_at + ${window_span} as converted
    from lead_activity a
    left join opportunities o on o.lead_id = a.lead_id
    where a.mql_at >= ${window_from}
      and a.mql_at < ${window_to}
),

mql_summary as (
    select
        count(*) as mqls,
        count(*) filter (where converted) as converted,
        median(
            cast(arrow_cast(opportunity_at, 'Int64') - arrow_cast(mql_at, 'Int64') as double)
                / ${micros_per_day}
        ) filter (where converted) as median_days
    from mqls
),

opportunity_summary as (
    select
        count(*) as opportunities,
        count(*) filter (where a.mql_at <= o.opportunity_at) as covered
    from opportunities o
    left join lead_activity a on a.lead_id = o.lead_id
    where o.opportunity_at >= ${window_from}
      and o.opportunity_at < ${window_to}
)

select
    ${model_name} as name,
    ${model_version} as version,
    ${model_created} as created,
    ${model_notes} as notes,
    m.mqls,
    cast(m.converted as double) / nullif(m.mqls, 0) as mql_to_opportunity,
    cast(o.covered as double) / nullif(o.opportunities, 0) as opportunity_coverage,
    m.median_days as median_days_to_opportunity,
    ${next_review} as next_review
from mql_summary m
cross join opportunity_summary o
