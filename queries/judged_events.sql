-- judged_events (view): every kept row with the rule it matches, its points and its verdict.
--
-- rule_id: the first [[action]] rule whose action equals the row's and whose asset globs (if any)
--   match (the README's "The model file"); null when no rule matches: such rows are "unmatched" and score nothing.
-- points: the rule's points, times `value` for a `scale = "fraction"` rule (docs/scoring.md, "The points of an event").
-- reason: why the row is rejected (docs/scoring.md, "Reading the input"), or null for a good row. Rows are judged whatever
--   the cutoff.
-- good: reason is null.
--
-- ${kept_rows} is `kept_events`, or `kept_rare_events` for judged_rare_events, the rows rejects
-- reads.
with matched as (
    select
        k.*,
        match_rule(k.action, k.asset, ${rules}) as rule_id
    from ${kept_rows} k
)

select
    m.lead_id,
    m.ts,
    m.action,
    m.asset,
    m.product,
    m.value,
    m.event_id,
    m.rule_id,
    case when r.is_fraction then r.points * m.value else r.points end as points,
    r.stage,
    r.stage_rank,
    case
        when m.lead_id is null then 'null lead_id'
        when m.ts is null then 'null ts'
        when m.action is null then 'null action'
        when r.is_fraction and (m.value is null or m.value < 0 or m.value > 1)
            then 'fraction outside 0..1'
        when m.action = 'nps_response' and (m.value is null or m.value < 0 or m.value > 10)
            then 'nps answer outside 0..10'
    end as reason,
    -- reason is null, stated as one condition: the scoring queries filter on it, and a chain of
    -- tests costs less per row than evaluating the CASE above.
    m.lead_id is not null and m.ts is not null and m.action is not null
        and not coalesce(r.is_fraction and (m.value is null or m.value < 0 or m.value > 1), false)
        and not (m.action = 'nps_response' and (m.value is null or m.value < 0 or m.value > 10))
        as good
from matched m
left join ${rule_table} r on r.rule_id = m.rule_id
