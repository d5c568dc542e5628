-- account_scores (output): one row per snapshot day and account with at least one lead
-- (docs/scoring.md, "Accounts"). `backfill` writes this as account_score_history, one partition per day.
--
-- score: the model's [account] aggregate ("sum", "max" or "mean") of the members' scores.
--   stable_sum() adds in an order fixed by the values, so reruns agree bit for bit.
-- top_lead_id: the highest-scoring member; ties go to the smallest lead_id (top_lead()).
-- nps: 100 x (promoters - detractors) / respondents, null without respondents.
with members as (
    select
        *,
        ${rank_of_stage} as stage_rank
    from lead_scores
    where account_id is not null
),

accounts as (
    select
        as_of,
        account_id,
        case '${account_aggregate}'
            when 'max' then max(score)
            when 'mean' then stable_sum(score) / count(*)
            else stable_sum(score)
        end as score,
        count(*) as leads,
        count(*) filter (where engagement > 0) as engaged_leads,
        count(*) filter (where is_mql) as mql_leads,
        top_lead(score, lead_id) as top_lead_id,
        max(stage_rank) as stage_rank,
        count(*) filter (where nps_class = 'promoter') as promoters,
        count(*) filter (where nps_class = 'detractor') as detractors,
        count(nps_class) as respondents
    from members
    group by as_of, account_id
)

select
    a.as_of,
    a.account_id,
    a.score,
    a.leads,
    a.engaged_leads,
    a.mql_leads,
    a.top_lead_id,
    ${stage_of_rank} as stage,
    a.score >= ${account_threshold} as is_sales_ready,
    case
        when a.respondents > 0
            then 100.0 * (a.promoters - a.detractors) / a.respondents
    end as nps
from accounts a
-- Rows by account: one snapshot day (see lead_scores.sql).
order by a.account_id
