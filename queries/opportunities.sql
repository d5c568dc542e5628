-- opportunities (view): one row per lead that became an opportunity, at its earliest non-null
-- opportunity_at (docs/weights.md: a lead with several outcome rows counts by the earliest; rows with
-- a null lead_id or a null opportunity_at say nothing and are skipped).
select lead_id, min(opportunity_at) as opportunity_at
from outcomes
where lead_id is not null
  and opportunity_at is not null
group by lead_id
