-- lead_fits (view): per lead of the leads table, the distinct fit scores it has over the
-- snapshot days, as a list: lead_fold() finds when each of them first reaches the threshold.
--
-- Without a `within_days` fit rule (or with one snapshot) the fit is the same every day: the
-- first snapshot's is the only one. `dated_fit` is a constant, so one branch plans to nothing.
select lead_id, make_array(fit) as fits
from lead_fit
where not ${dated_fit} and as_of = ${first_as_of}

union all

select lead_id, array_distinct(array_agg(fit)) as fits
from lead_fit
where ${dated_fit}
group by lead_id
