-- duplicate_events (step): every copy of an event_id that occurs more than once, numbered.
--
-- docs/scoring.md, "Reading the input": rows sharing an event_id count once. Copy 1 is the one kept: the earliest ts,
-- then lead_id, action, asset, product, value, with nulls last, so a complete copy wins over a
-- broken one and the choice never depends on file order. Rows without an event_id are never
-- duplicates.
--
-- Only rare rows reach the window: rare_events has found every copy of a repeated key in its pass
-- over the events, along with the suspect rows. `repeated` keeps the ids that more than one of
-- them has, which leaves out the suspect rows of ids that occur once and the rare text ids that
-- merely share a key with another id (a window over every rare row would number them all, one
-- partition each).
with repeated as (
    select event_id
    from rare_events
    where event_id is not null
    group by event_id
    having count(*) > 1
)

select
    e.lead_id,
    e.ts,
    e.action,
    e.asset,
    e.product,
    e.value,
    e.event_id,
    row_number() over (
        partition by e.event_id
        order by e.ts nulls last, e.lead_id nulls last, e.action nulls last,
                 e.asset nulls last, e.product nulls last, e.value nulls last
    ) as copy
from rare_events e
where e.event_id in (select event_id from repeated)
