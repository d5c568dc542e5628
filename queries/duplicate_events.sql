-- duplicate_events (step): every copy of an event_id that occurs more than once, numbered.
--
-- SPEC §2.4: rows sharing an event_id count once. Copy 1 is the one kept: the earliest ts,
-- then lead_id, action, asset, product, value, with nulls last, so a complete copy wins over a
-- broken one and the choice never depends on file order. Rows without an event_id are never
-- duplicates.
--
-- Finding them without a table of every id: repeated_keys() returns the 32-bit keys
-- (event_key()) seen more than once, from two compressed bitmaps; the rows behind those keys are
-- few, and counting their actual ids keeps exactly the repeated ones (two ids may share a key).
-- The repeated keys come first in the join so that they, not the events, are its build side.
with repeated as (
    select unnest(repeated_keys(event_key(event_id))) as key
    from events
    where event_id is not null
),

candidates as (
    select
        e.lead_id,
        e.ts,
        e.action,
        e.asset,
        e.product,
        e.value,
        e.event_id,
        count(*) over (partition by e.event_id) as copies,
        row_number() over (
            partition by e.event_id
            order by e.ts nulls last, e.lead_id nulls last, e.action nulls last,
                     e.asset nulls last, e.product nulls last, e.value nulls last
        ) as copy
    from repeated r
    join events e on event_key(e.event_id) = r.key
)

select lead_id, ts, action, asset, product, value, event_id, copy
from candidates
where copies > 1
