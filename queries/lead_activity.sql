-- lead_activity: one row per lead and snapshot day, for every lead of the leads table at every
-- snapshot and for every other lead with a good event (matched or not) before the cutoff.
--
-- fold_events() gets each lead's events, raw, and its row of the leads table (with a null ts) in
-- one group. The copies of repeated event_ids that docs/scoring.md, "Reading the input" drops (duplicate_events, copy > 1)
-- come a second time, marked `dropped`: each cancels the equal row it is a copy of, so the fold
-- sees the rows of kept_events without the events being joined with the duplicates (a join that
-- copied every row). It judges each event with the model's rules as judged_events.sql does
-- (${scored_rules}: the first matching rule's points, times value for a fraction rule, and stage;
-- rows that a check rejects and rows at or after the last cutoff are left out), orders the good
-- events once and walks them once, reporting every snapshot:
--   cutoff            the start of the day after as_of
--   engagement        the decay fold of docs/scoring.md, "Engagement: the fold" up to the cutoff
--   fit, mql_at       the fit at that cutoff (docs/scoring.md, "Fit, score, qualification, coldness") and the time of the first matched event
--                     right after which fit + S >= threshold, if before the cutoff
--   stage_rank, tallies   matched events per stage (docs/scoring.md, "Stages and tallies")
--   matched_events, unmatched_events, last_activity
--   last_positive_at  the latest matched event with positive points, for is_cold (docs/scoring.md, "Fit, score, qualification, coldness")
--   nps               the latest nps_response answer, ties broken by the larger (docs/scoring.md, "Net Promoter answers")
--   products, product_scores   the same fold per product, floor 0 (docs/scoring.md, "Product interest")
-- Unmatched events score nothing but make the lead appear. Rows with a null lead_id are
-- rejected: the FILTER leaves them out of the fold (their group reports no snapshot).
--
-- ${fit} is the list of the fit rules the lead's attributes match, each with the cutoffs at which
-- it holds (a `within_days` rule on a time t holds from t - N days to t); see lead_fold().
--
-- The lead's account comes with its row of the leads table: fold_events() is given every row's
-- lead_id and account_id, and each snapshot it reports carries them (the first non-null
-- account_id of the lead's rows). Its last argument, the row's event_id, changes no number: it
-- lets the engine list the rows the checks reject as it folds, with all their columns.
--
-- How it runs is the engine's choice (docs/architecture.md): on one machine a single operator
-- reads the rows and folds every lead in place of the grouping and the unnest below; on a
-- cluster, or under --memory-limit, the engine groups the rows by lead itself. ${fold_input} is
-- lead_rows made ready for grouping by lead: as they are, or, for a backfill under
-- --memory-limit, sorted by lead so that each lead's snapshots are emitted as soon as its events
-- end. ${fold_rows} is the FILTER's test of a row: a lead id, and, for the sorted input, its
-- number n above 0 (always true: naming n keeps the numbering, and so the sort, in the plan).
-- ${fold_text} is the text type the sort wants: the columns as read when there is no sort,
-- plain copies of the texts when there is one (see Template::set_fold_input).
with lead_rows as (
    select
        e.lead_id,
        e.ts,
        arrow_cast(e.action, ${fold_text}) as action,
        arrow_cast(e.asset, ${fold_text}) as asset,
        arrow_cast(e.product, ${fold_text}) as product,
        e.value,
        null as fit,
        null as account_id,
        false as dropped,
        e.event_id
    from events e

    union all

    select
        d.lead_id,
        d.ts,
        arrow_cast(d.action, ${fold_text}),
        arrow_cast(d.asset, ${fold_text}),
        arrow_cast(d.product, ${fold_text}),
        d.value,
        null,
        null,
        true,
        d.event_id
    from duplicate_events d
    where d.copy > 1

    union all

    select l.lead_id, null, null, null, null, null, ${fit}, l.account_id, false, null
    from leads l
),

folded as (
    select
        fold_events(
            r.ts, r.action, r.asset, r.product, r.value, r.fit, ${scored_rules}, ${fold}, r.dropped,
            r.lead_id, r.account_id, r.event_id
        )
            filter (where ${fold_rows}) as snapshots
    from ${fold_input} r
    group by r.lead_id
),

unnested as (
    select unnest(snapshots) as s
    from folded
)

select
    s['lead_id'] as lead_id,
    s['as_of'] as as_of,
    s['account_id'] as account_id,
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
