-- duplicate_events (step): every copy of an event_id that occurs more than once, numbered.
--
-- SPEC §2.4: rows sharing an event_id count once. Copy 1 is the one kept: the earliest ts,
-- then lead_id, action, asset, product, value, with nulls last, so a complete copy wins over a
-- broken one and the choice never depends on file order. Rows without an event_id are never
-- duplicates.
--
-- Only the rows of repeated keys reach the window: rare_events has found them in its pass over
-- the events. `copies` drops the rare text ids that merely share a key with another id.
with candidates as (
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
        ) as copy,
        count(*) over (partition by e.event_id) as copies
    from rare_events e
    where e.repeated
)

select lead_id, ts, action, asset, product, value, event_id, copy
from candidates
where copies > 1
