-- lead_fit (view): every lead of the leads table at every snapshot day, with its account and its
-- fit score at that day's cutoff.
--
-- fit (SPEC §4.4): the sum of the points of the [[fit]] rules that match the lead's attributes;
-- a null attribute never matches. The `fit` template variable spells the rules out as one sum
-- of CASE expressions over the lead `l` and the snapshot `s`:
--   in = [...]       lower(trim(column)) is one of the listed values (lower-cased, trimmed)
--   min / max        the column read as a number lies within the bounds, inclusive
--   within_days = N  the column read as a time t has cutoff <= t <= cutoff + N days
--                    (a date counts as its midnight UTC)
select
    l.lead_id,
    l.account_id,
    s.as_of,
    ${fit} as fit
from leads l
cross join ${snapshots} s
