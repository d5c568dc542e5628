-- lead_activity: one row per lead and snapshot day at which the lead has a good event before
-- the cutoff, matched or not.
--
-- lead_fold() reads each lead's good events once, in time order, and reports every snapshot:
--   engagement        the decay fold of SPEC §4.2 up to the cutoff
--   fits, crossings   the lead's fit scores and, for each, the time of the first event right
--                     after which fit + S >= threshold (mql_at; lead_scores picks the one of the
--                     snapshot's fit and keeps it if it is before that cutoff)
--   stage_rank, tallies   matched events per stage (SPEC §4.5)
--   matched_events, unmatched_events, last_activity
--   last_positive_at  the latest matched event with positive points, for is_cold (SPEC §4.4)
--   nps               the latest nps_response answer, ties broken by the larger (SPEC §4.6)
--   products, product_scores   the same fold per product, floor 0 (SPEC §4.3)
-- Unmatched events have null points: they score nothing but make the lead appear.
with folded as (
    select
        e.lead_id,
        lead_fold(
            e.ts,
            e.points,
            e.product,
            e.stage_rank,
            case when e.action = 'nps_response' then e.value end,
            coalesce(f.fits, make_array(cast(0 as double))),
            ${fold}
        ) as fold
    from judged_events e
    left join lead_fits f on f.lead_id = e.lead_id
    where e.reason is null
      and e.ts < ${last_cutoff}
    group by e.lead_id
),

snapshots as (
    select
        lead_id,
        fold['fits'] as fits,
        fold['crossings'] as crossings,
        unnest(fold['snapshots']) as s
    from folded
)

select
    lead_id,
    s['as_of'] as as_of,
    s['engagement'] as engagement,
    fits,
    crossings,
    s['stage_rank'] as stage_rank,
    s['tallies'] as tallies,
    s['matched'] as matched_events,
    s['unmatched'] as unmatched_events,
    s['last_activity'] as last_activity,
    s['last_positive_at'] as last_positive_at,
    s['nps'] as nps,
    s['products'] as products,
    s['product_scores'] as product_scores
from snapshots
