-- lead_activity: one row per lead and snapshot day, for every lead of the leads table at every
-- snapshot and for every other lead with a good event (matched or not) before the cutoff.
--
-- lead_fold() gets each lead's good events and its row of the leads table (with a null ts) in one
-- group, orders the events once and walks them once, reporting every snapshot:
--   cutoff            the start of the day after as_of
--   engagement        the decay fold of SPEC §4.2 up to the cutoff
--   fit, mql_at       the fit at that cutoff (SPEC §4.4) and the time of the first matched event
--                     right after which fit + S >= threshold, if before the cutoff
--   stage_rank, tallies   matched events per stage (SPEC §4.5)
--   matched_events, unmatched_events, last_activity
--   last_positive_at  the latest matched event with positive points, for is_cold (SPEC §4.4)
--   nps               the latest nps_response answer, ties broken by the larger (SPEC §4.6)
--   products, product_scores   the same fold per product, floor 0 (SPEC §4.3)
-- Unmatched events have null points: they score nothing but make the lead appear.
--
-- ${fit} is the list of the fit rules the lead's attributes match, each with the cutoffs at which
-- it holds (a `within_days` rule on a time t holds from t - N days to t); see lead_fold().
--
-- The account comes with the lead's row of the leads table (max() of the one account a lead has).
-- ${fold_input} is lead_rows made ready for grouping by lead: as they are (the engine then
-- partitions the rows by lead and groups each partition in one phase, with no partial states of
-- every lead's events to build and merge), or, for a backfill under --memory-limit, sorted by
-- lead so that each lead's snapshots are emitted as soon as its events end; its column n exists
-- for the FILTER below, which keeps the numbering (and so the sort) in the plan.
with lead_rows as (
    select
        e.lead_id,
        e.ts,
        e.points,
        e.product,
        e.stage_rank,
        case when e.action = 'nps_response' then e.value end as nps,
        null as fit,
        null as account_id
    from judged_events e
    where e.good
      and e.ts < ${last_cutoff}

    union all

    select l.lead_id, null, null, null, null, null, ${fit}, l.account_id
    from leads l
),

folded as (
    select
        r.lead_id,
        max(r.account_id) as account_id,
        lead_fold(r.ts, r.points, r.product, r.stage_rank, r.nps, r.fit, ${fold})
            filter (where r.n > 0) as snapshots
    from ${fold_input} r
    group by r.lead_id
),

unnested as (
    select lead_id, account_id, unnest(snapshots) as s
    from folded
)

select
    lead_id,
    s['as_of'] as as_of,
    account_id,
    s['cutoff'] as cutoff,
    s['engagement'] as engagement,
    s['fit'] as fit,
    s['mql_at'] as mql_at,
    s['stage_rank'] as stage_rank,
    s['tallies'] as tallies,
    s['matched'] as matched_events,
    s['unmatched'] as unmatched_events,
    s['last_activity'] as last_activity,
    s['last_positive_at'] as last_positive_at,
    s['nps'] as nps,
    s['products'] as products,
    s['product_scores'] as product_scores
from unnested
