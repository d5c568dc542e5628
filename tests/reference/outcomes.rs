//! Weights from history (docs/weights.md) and the review of model versions (docs/review.md), computed
//! directly over in-memory rows, on top of the judging and the scoring of `oracle.rs`.
//!
//! The reading followed here, point by point:
//! - a lead's opportunity is its earliest non-null `opportunity_at`;
//! - weights: a converted lead has its opportunity in `[from, to)` (midnights, either bound
//!   optional) and at least one good event matched by a staged rule strictly before it; tallies
//!   count such events per stage; `action_lift` counts, per rule, the distinct leads with a good
//!   event the rule matched (first match), before the opportunity for a converted lead and at
//!   any time for the others, against the share of converted leads among all leads with a good
//!   event;
//! - review: `to` defaults to the day after the latest good event; each model is scored as of
//!   `to - 1` (cutoff: midnight of `to`), and its MQLs are the leads whose `mql_at` lies in
//!   `[from, to)`; an MQL converted when its opportunity (not limited to the window) lies in
//!   `[mql_at, mql_at + window_days]`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{Datelike, Days, NaiveDate};
use leadscore::model::Model;

use super::data::{Event, Id, Lead, MICROS_PER_DAY, Outcome};
use super::oracle::{Reject, judge, latest_good_day, match_rule, reference_score};

/// One `stage_tallies` row.
#[derive(Clone, Debug)]
pub struct StageTallyRow {
    pub stage: String,
    pub converted_leads: i64,
    pub avg_tally: Option<f64>,
    pub points_per_action: Option<f64>,
}

/// One `stage_tally_trend` row.
#[derive(Clone, Debug)]
pub struct TrendRow {
    pub month: NaiveDate,
    pub stage: String,
    pub converted_leads: i64,
    pub avg_tally: f64,
}

/// One `action_lift` row.
#[derive(Clone, Debug)]
pub struct LiftRow {
    pub rule: i64,
    pub action: String,
    pub assets: Option<String>,
    pub leads: i64,
    pub converted: i64,
    pub conversion_rate: Option<f64>,
    pub lift: Option<f64>,
}

/// Everything `weights` publishes, computed by the reference.
#[derive(Clone, Debug)]
pub struct WeightsRef {
    pub stage_tallies: Vec<StageTallyRow>,
    pub trend: Vec<TrendRow>,
    pub lift: Vec<LiftRow>,
    pub converted: usize,
    /// The points of every staged rule with positive points in the proposed model (none without
    /// converted leads, and then no proposed model).
    pub proposed_points: Option<i64>,
    pub rejects: Vec<Reject>,
    pub duplicates_dropped: u64,
}

/// One `model_review` row.
#[derive(Clone, Debug)]
pub struct ReviewRef {
    pub name: String,
    pub version: i64,
    pub created: Option<NaiveDate>,
    pub notes: String,
    pub mqls: i64,
    pub mql_to_opportunity: Option<f64>,
    pub opportunity_coverage: Option<f64>,
    pub median_days_to_opportunity: Option<f64>,
    pub next_review: Option<NaiveDate>,
}

pub fn midnight(d: NaiveDate) -> i64 {
    d.and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp_micros()
}

/// Each lead's earliest non-null `opportunity_at`.
pub fn opportunities(outcomes: &[Outcome]) -> HashMap<Id, i64> {
    let mut opp: HashMap<Id, i64> = HashMap::new();
    for o in outcomes {
        if let (Some(id), Some(t)) = (&o.lead_id, o.opportunity_at) {
            let e = opp.entry(id.clone()).or_insert(t);
            *e = (*e).min(t);
        }
    }
    opp
}

/// Whether `t` lies in `[from, to)` between midnights, either bound optional.
fn in_window(t: i64, from: Option<NaiveDate>, to: Option<NaiveDate>) -> bool {
    from.is_none_or(|f| t >= midnight(f)) && to.is_none_or(|d| t < midnight(d))
}

/// Rounds half away from zero, at least 1 (docs/weights.md).
pub fn proposed_points(per_action: f64) -> i64 {
    (per_action.round() as i64).max(1)
}

fn mean(xs: &[i64]) -> f64 {
    xs.iter().sum::<i64>() as f64 / xs.len() as f64
}

/// Computes every `weights` table from the rows.
pub fn reference_weights(
    events: &[Event],
    outcomes: &[Outcome],
    model: &Model,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> WeightsRef {
    let judged = judge(events, model);
    let opp = opportunities(outcomes);
    let stage_of = |rule: usize| {
        model.actions[rule]
            .stage
            .as_ref()
            .map(|s| model.stages.iter().position(|x| x == s).unwrap())
    };

    // Each lead's good events, with the rule that matched (if one did).
    let mut by_lead: BTreeMap<&Id, Vec<(i64, Option<usize>)>> = BTreeMap::new();
    for e in &judged.good {
        let rule = match_rule(model, e.action.as_deref().unwrap(), e.asset.as_deref());
        by_lead
            .entry(e.lead_id.as_ref().unwrap())
            .or_default()
            .push((e.ts.unwrap(), rule));
    }

    // Converted leads, with their tally per stage.
    let mut converted: BTreeMap<&Id, (i64, Vec<i64>)> = BTreeMap::new();
    for (id, evs) in &by_lead {
        let Some(&t) = opp.get(*id) else { continue };
        if !in_window(t, from, to) {
            continue;
        }
        let mut tallies = vec![0i64; model.stages.len()];
        for (ts, rule) in evs {
            if let Some(k) = rule.and_then(stage_of)
                && *ts < t
            {
                tallies[k] += 1;
            }
        }
        if tallies.iter().any(|n| *n > 0) {
            converted.insert(*id, (t, tallies));
        }
    }

    let n = converted.len();
    let avg: Vec<Option<f64>> = (0..model.stages.len())
        .map(|k| {
            let xs: Vec<i64> = converted.values().map(|(_, t)| t[k]).collect();
            (n > 0).then(|| mean(&xs))
        })
        .collect();
    let per_action = (n > 0).then(|| model.threshold / avg.iter().map(|a| a.unwrap()).sum::<f64>());
    let stage_tallies = model
        .stages
        .iter()
        .zip(&avg)
        .map(|(stage, avg_tally)| StageTallyRow {
            stage: stage.clone(),
            converted_leads: n as i64,
            avg_tally: *avg_tally,
            points_per_action: per_action,
        })
        .collect();

    let mut months: BTreeMap<NaiveDate, Vec<&Vec<i64>>> = BTreeMap::new();
    for (t, tallies) in converted.values() {
        let d = chrono::DateTime::from_timestamp_micros(*t)
            .unwrap()
            .date_naive();
        let month = NaiveDate::from_ymd_opt(d.year(), d.month(), 1).unwrap();
        months.entry(month).or_default().push(tallies);
    }
    let mut trend = Vec::new();
    for (month, ts) in &months {
        for (k, stage) in model.stages.iter().enumerate() {
            let xs: Vec<i64> = ts.iter().map(|t| t[k]).collect();
            trend.push(TrendRow {
                month: *month,
                stage: stage.clone(),
                converted_leads: ts.len() as i64,
                avg_tally: mean(&xs),
            });
        }
    }

    let base = n as f64 / by_lead.len() as f64;
    let mut lift = Vec::new();
    for (r, rule) in model.actions.iter().enumerate() {
        let mut leads: BTreeSet<&Id> = BTreeSet::new();
        for (id, evs) in &by_lead {
            let before = converted.get(*id).map(|(t, _)| *t);
            if evs
                .iter()
                .any(|(ts, m)| *m == Some(r) && before.is_none_or(|t| *ts < t))
            {
                leads.insert(*id);
            }
        }
        let won = leads
            .iter()
            .filter(|id| converted.contains_key(*id))
            .count() as i64;
        let rate = (!leads.is_empty()).then(|| won as f64 / leads.len() as f64);
        lift.push(LiftRow {
            rule: r as i64 + 1,
            action: rule.action.clone(),
            assets: rule.assets.as_ref().map(|a| a.join(", ")),
            leads: leads.len() as i64,
            converted: won,
            conversion_rate: rate,
            lift: rate.filter(|_| base > 0.0).map(|r| r / base),
        });
    }

    WeightsRef {
        stage_tallies,
        trend,
        lift,
        converted: n,
        proposed_points: per_action.map(proposed_points),
        rejects: judged.rejects,
        duplicates_dropped: judged.duplicates_dropped,
    }
}

/// `created + 60 days`, then every 90 days: the first such day on or after `today`.
pub fn next_review(created: NaiveDate, today: NaiveDate) -> NaiveDate {
    let mut d = created + Days::new(60);
    while d < today {
        d = d + Days::new(90);
    }
    d
}

/// The `to` of a review: the one given, or the day after the latest good event (judged by the
/// first model's rules).
pub fn review_to(events: &[Event], first: &Model, to: Option<NaiveDate>) -> NaiveDate {
    to.unwrap_or_else(|| latest_good_day(&judge(events, first).good) + Days::new(1))
}

/// One `model_review` row per model, in order.
#[allow(clippy::too_many_arguments)]
pub fn reference_review(
    events: &[Event],
    leads: Option<&[Lead]>,
    outcomes: &[Outcome],
    models: &[Model],
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    window_days: u32,
    today: NaiveDate,
) -> Vec<ReviewRef> {
    let to = review_to(events, &models[0], to);
    let opp = opportunities(outcomes);
    let span = window_days as i64 * MICROS_PER_DAY;
    let mut rows = Vec::new();
    for model in models {
        let scored = reference_score(events, leads, model, Some(to - Days::new(1)));
        let mql_at: HashMap<&Id, i64> = scored
            .lead_scores
            .iter()
            .filter_map(|l| l.mql_at.map(|m| (&l.lead_id, m)))
            .collect();
        let mut mqls = 0i64;
        let mut days: Vec<f64> = Vec::new();
        for (id, m) in &mql_at {
            if !in_window(*m, from, Some(to)) {
                continue;
            }
            mqls += 1;
            if let Some(&o) = opp.get(*id)
                && *m <= o
                && o <= *m + span
            {
                days.push((o - *m) as f64 / MICROS_PER_DAY as f64);
            }
        }
        days.sort_by(f64::total_cmp);
        let median = match days.len() {
            0 => None,
            k if k % 2 == 1 => Some(days[k / 2]),
            k => Some((days[k / 2 - 1] + days[k / 2]) / 2.0),
        };
        let (mut opps, mut covered) = (0usize, 0usize);
        for (id, o) in &opp {
            if in_window(*o, from, Some(to)) {
                opps += 1;
                if mql_at.get(id).is_some_and(|m| *m <= *o) {
                    covered += 1;
                }
            }
        }
        rows.push(ReviewRef {
            name: model.name.clone(),
            version: model.version,
            created: model.created,
            notes: model.notes.clone(),
            mqls,
            mql_to_opportunity: (mqls > 0).then(|| days.len() as f64 / mqls as f64),
            opportunity_coverage: (opps > 0).then(|| covered as f64 / opps as f64),
            median_days_to_opportunity: median,
            next_review: model.created.map(|c| next_review(c, today)),
        });
    }
    rows
}
