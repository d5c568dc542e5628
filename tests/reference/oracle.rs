//! The scoring contract (docs/scoring.md) computed directly over in-memory rows: one pass
//! per step, no cleverness, so that each number can be checked by reading the code next to the
//! docs.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use leadscore::fold::DecayKind;
use leadscore::model::{Aggregate, FitTest, Model};

use super::data::{Cell, Event, Id, Lead, MICROS_PER_DAY, parse_time};

/// One `lead_scores` row.
#[derive(Clone, Debug)]
pub struct LeadScore {
    pub lead_id: Id,
    pub account_id: Option<Id>,
    pub engagement: f64,
    pub fit: f64,
    pub score: f64,
    pub is_mql: bool,
    pub mql_at: Option<i64>,
    pub stage: Option<String>,
    /// One per model stage, in `stages` order.
    pub tallies: Vec<i64>,
    pub last_activity: Option<i64>,
    pub is_cold: bool,
    pub nps: Option<f64>,
    pub nps_class: Option<&'static str>,
}

/// One `lead_product_scores` row.
#[derive(Clone, Debug)]
pub struct ProductScore {
    pub lead_id: Id,
    pub product: String,
    pub score: f64,
}

/// One `account_scores` row.
#[derive(Clone, Debug)]
pub struct AccountScore {
    pub account_id: Id,
    pub score: f64,
    pub leads: i64,
    pub engaged_leads: i64,
    pub mql_leads: i64,
    pub top_lead_id: Id,
    pub stage: Option<String>,
    pub is_sales_ready: bool,
    pub nps: Option<f64>,
}

/// One `stage_report` row.
#[derive(Clone, Debug)]
pub struct StageRow {
    pub stage: Option<String>,
    pub leads: i64,
    /// Null when there are no leads at all (a ratio with nothing to count).
    pub share: Option<f64>,
}

/// One `rejects` row.
#[derive(Clone, Debug)]
pub struct Reject {
    pub event: Event,
    pub reason: &'static str,
}

/// Everything `score` publishes, computed by the reference.
#[derive(Clone, Debug)]
pub struct Reference {
    pub as_of: NaiveDate,
    pub model_version: i64,
    pub stages: Vec<String>,
    pub lead_scores: Vec<LeadScore>,
    pub product_scores: Vec<ProductScore>,
    pub accounts: Vec<AccountScore>,
    pub stage_report: Vec<StageRow>,
    pub rejects: Vec<Reject>,
    pub duplicates_dropped: u64,
    /// Good events before the cutoff that no rule matches.
    pub unmatched: u64,
}

/// `*` matches any run of characters (also none); every other character matches itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let t: Vec<char> = text.chars().collect();
    // reach[j]: the pattern read so far can match exactly the first j characters of the text.
    let mut reach = vec![false; t.len() + 1];
    reach[0] = true;
    for pc in pattern.chars() {
        if pc == '*' {
            for j in 1..=t.len() {
                reach[j] = reach[j] || reach[j - 1];
            }
        } else {
            for j in (1..=t.len()).rev() {
                reach[j] = reach[j - 1] && t[j - 1] == pc;
            }
            reach[0] = false;
        }
    }
    reach[t.len()]
}

/// Index of the first rule matching `(action, asset)`.
pub fn match_rule(model: &Model, action: &str, asset: Option<&str>) -> Option<usize> {
    model.actions.iter().position(|r| {
        r.action == action
            && match (&r.assets, asset) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(globs), Some(a)) => globs.iter().any(|g| glob_match(g, a)),
            }
    })
}

/// docs/scoring.md, "Engagement: the fold": a score `s` after `days` idle days, never taken below `floor`.
pub fn decay(model: &Model, s: f64, days: f64, floor: f64) -> f64 {
    if s <= floor {
        return s;
    }
    let d = (days - model.decay.grace_days).max(0.0);
    match model.decay.kind {
        DecayKind::None => s,
        DecayKind::Exponential { half_life_days } => (s * (-d / half_life_days).exp2()).max(floor),
        DecayKind::Linear {
            points,
            period_days,
        } => (s - points * d / period_days).max(floor),
    }
}

fn days_between(t1: i64, t2: i64) -> f64 {
    (t2 - t1) as f64 / MICROS_PER_DAY as f64
}

/// Compares options with nulls last.
fn nulls_last<T>(a: &Option<T>, b: &Option<T>, cmp: impl Fn(&T, &T) -> Ordering) -> Ordering {
    match (a, b) {
        (Some(a), Some(b)) => cmp(a, b),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

/// The order that decides which copy of a duplicated event is kept.
fn copy_order(a: &Event, b: &Event) -> Ordering {
    nulls_last(&a.ts, &b.ts, Ord::cmp)
        .then_with(|| nulls_last(&a.lead_id, &b.lead_id, Ord::cmp))
        .then_with(|| nulls_last(&a.action, &b.action, Ord::cmp))
        .then_with(|| nulls_last(&a.asset, &b.asset, Ord::cmp))
        .then_with(|| nulls_last(&a.product, &b.product, Ord::cmp))
        .then_with(|| nulls_last(&a.value, &b.value, f64::total_cmp))
}

/// Why a kept row is rejected, if it is.
fn reject_reason(model: &Model, e: &Event) -> Option<&'static str> {
    if e.lead_id.is_none() {
        return Some("null lead_id");
    }
    if e.ts.is_none() {
        return Some("null ts");
    }
    let Some(action) = e.action.as_deref() else {
        return Some("null action");
    };
    if let Some(r) = match_rule(model, action, e.asset.as_deref())
        && model.actions[r].fraction
        && !e.value.is_some_and(|v| (0.0..=1.0).contains(&v))
    {
        return Some("fraction outside 0..1");
    }
    if action == "nps_response" && !e.value.is_some_and(|v| (0.0..=10.0).contains(&v)) {
        return Some("nps answer outside 0..10");
    }
    None
}

fn cell_text(c: &Cell) -> Option<String> {
    match c {
        Cell::Null => None,
        Cell::Int(i) => Some(i.to_string()),
        Cell::Float(f) => Some(format!("{f:?}")),
        Cell::Text(s) => Some(s.clone()),
        Cell::Bool(b) => Some(b.to_string()),
        Cell::Date(d) => Some(
            (NaiveDate::from_ymd_opt(1970, 1, 1).unwrap() + chrono::Duration::days(*d as i64))
                .to_string(),
        ),
        Cell::Ts(_) => None,
    }
}

fn cell_number(c: &Cell) -> Option<f64> {
    match c {
        Cell::Int(i) => Some(*i as f64),
        Cell::Float(f) => Some(*f),
        Cell::Text(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
}

fn cell_time(c: &Cell) -> Option<i64> {
    match c {
        Cell::Date(d) => Some(*d as i64 * MICROS_PER_DAY),
        Cell::Ts(t) => Some(*t),
        Cell::Text(s) => parse_time(s),
        _ => None,
    }
}

/// docs/scoring.md, "Fit, score, qualification, coldness": the sum of the points of the fit rules a lead's attributes match.
pub fn fit_of(model: &Model, lead: &Lead, cutoff: i64) -> f64 {
    let mut fit = 0.0;
    for rule in &model.fits {
        let c = lead.attrs.get(&rule.column).cloned().unwrap_or(Cell::Null);
        let hit = match &rule.test {
            FitTest::In(values) => cell_text(&c).is_some_and(|t| {
                let t = t.trim().to_lowercase();
                values.iter().any(|v| v.trim().to_lowercase() == t)
            }),
            FitTest::Range { min, max } => cell_number(&c)
                .is_some_and(|x| min.is_none_or(|m| x >= m) && max.is_none_or(|m| x <= m)),
            FitTest::WithinDays(n) => cell_time(&c)
                .is_some_and(|t| t >= cutoff && (t - cutoff) as f64 <= n * MICROS_PER_DAY as f64),
        };
        if hit {
            fit += rule.points;
        }
    }
    fit
}

/// A matched event of one lead: time, points and the rule's index.
#[derive(Clone, Copy, Debug)]
struct Scored {
    ts: i64,
    points: f64,
    rule: usize,
}

/// The fold of docs/scoring.md, "Engagement: the fold" over events sorted by `(ts, points)`; events of one instant are added
/// together before the crossing test. Returns the score at the cutoff and the first crossing.
fn fold(
    model: &Model,
    events: &[Scored],
    floor: f64,
    cutoff: i64,
    crossing: Option<(f64, f64)>,
) -> (f64, Option<i64>) {
    let mut s = 0.0;
    let mut last: Option<i64> = None;
    let mut crossed = None;
    let mut i = 0;
    while i < events.len() {
        let t = events[i].ts;
        if let Some(l) = last {
            s = decay(model, s, days_between(l, t), floor);
        }
        while i < events.len() && events[i].ts == t {
            s += events[i].points;
            i += 1;
        }
        last = Some(t);
        if let Some((fit, threshold)) = crossing
            && crossed.is_none()
            && fit + s >= threshold
        {
            crossed = Some(t);
        }
    }
    let s = match last {
        Some(l) => decay(model, s, days_between(l, cutoff), floor),
        None => 0.0,
    };
    (s, crossed)
}

fn by_ts_points(a: &Scored, b: &Scored) -> Ordering {
    a.ts.cmp(&b.ts).then(a.points.total_cmp(&b.points))
}

/// The kept rows of docs/scoring.md, "Reading the input", judged: the good ones, the rejected ones and how many copies of
/// duplicated events were dropped.
pub struct Judged<'a> {
    pub good: Vec<&'a Event>,
    pub rejects: Vec<Reject>,
    pub duplicates_dropped: u64,
}

/// §2.4: one copy per event_id (the first in copy order), then each kept row judged, whatever
/// the cutoff.
pub fn judge<'a>(events: &'a [Event], model: &Model) -> Judged<'a> {
    let mut best: HashMap<&Id, usize> = HashMap::new();
    let mut with_id = 0u64;
    for (i, e) in events.iter().enumerate() {
        if let Some(id) = &e.event_id {
            with_id += 1;
            match best.get(id) {
                Some(&j) if copy_order(&events[j], e) != Ordering::Greater => {}
                _ => {
                    best.insert(id, i);
                }
            }
        }
    }
    let kept: Vec<&Event> = events
        .iter()
        .enumerate()
        .filter(|(i, e)| e.event_id.as_ref().is_none_or(|id| best[id] == *i))
        .map(|(_, e)| e)
        .collect();
    let duplicates_dropped = with_id - best.len() as u64;

    let mut rejects = Vec::new();
    let mut good: Vec<&Event> = Vec::new();
    for e in kept {
        match reject_reason(model, e) {
            Some(reason) => rejects.push(Reject {
                event: e.clone(),
                reason,
            }),
            None => good.push(e),
        }
    }
    Judged {
        good,
        rejects,
        duplicates_dropped,
    }
}

/// The UTC day of the latest good event: the default as-of day.
pub fn latest_good_day(good: &[&Event]) -> NaiveDate {
    let latest = good
        .iter()
        .filter_map(|e| e.ts)
        .max()
        .expect("a good event");
    chrono::DateTime::from_timestamp_micros(latest)
        .unwrap()
        .date_naive()
}

/// Computes every `score` table from the rows.
pub fn reference_score(
    events: &[Event],
    leads: Option<&[Lead]>,
    model: &Model,
    as_of: Option<NaiveDate>,
) -> Reference {
    let Judged {
        good,
        rejects,
        duplicates_dropped,
    } = judge(events, model);

    let as_of = as_of.unwrap_or_else(|| latest_good_day(&good));
    let cutoff = (as_of + chrono::Days::new(1))
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp_micros();
    let counted: Vec<&Event> = good
        .into_iter()
        .filter(|e| e.ts.unwrap() < cutoff)
        .collect();

    // Every lead with a counted event, and every lead of the leads table.
    let lead_rows: HashMap<&Id, &Lead> = leads
        .unwrap_or(&[])
        .iter()
        .map(|l| (&l.lead_id, l))
        .collect();
    let mut lead_ids: Vec<Id> = counted
        .iter()
        .map(|e| e.lead_id.clone().unwrap())
        .chain(lead_rows.keys().map(|id| (*id).clone()))
        .collect();
    lead_ids.sort();
    lead_ids.dedup();

    let mut matched: HashMap<&Id, Vec<Scored>> = HashMap::new();
    let mut by_product: BTreeMap<(Id, String), Vec<Scored>> = BTreeMap::new();
    let mut nps_answers: HashMap<&Id, Vec<(i64, f64)>> = HashMap::new();
    let mut unmatched = 0u64;
    for e in &counted {
        let lead = e.lead_id.as_ref().unwrap();
        let action = e.action.as_deref().unwrap();
        if action == "nps_response" {
            nps_answers
                .entry(lead)
                .or_default()
                .push((e.ts.unwrap(), e.value.unwrap()));
        }
        let Some(r) = match_rule(model, action, e.asset.as_deref()) else {
            unmatched += 1;
            continue;
        };
        let rule = &model.actions[r];
        let points = if rule.fraction {
            rule.points * e.value.unwrap()
        } else {
            rule.points
        };
        let s = Scored {
            ts: e.ts.unwrap(),
            points,
            rule: r,
        };
        matched.entry(lead).or_default().push(s);
        if let Some(p) = &e.product {
            by_product
                .entry((lead.clone(), p.clone()))
                .or_default()
                .push(s);
        }
    }

    let floor = model.floor * model.threshold;
    let cold_from = cutoff - (model.cold_days * MICROS_PER_DAY as f64).round() as i64;
    let mut lead_scores = Vec::new();
    for id in &lead_ids {
        let row = lead_rows.get(id);
        let fit = row.map_or(0.0, |l| fit_of(model, l, cutoff));
        let mut evs = matched.get(id).cloned().unwrap_or_default();
        evs.sort_by(by_ts_points);
        let (engagement, mql_at) = fold(model, &evs, floor, cutoff, Some((fit, model.threshold)));
        let score = engagement + fit;
        let mut tallies = vec![0i64; model.stages.len()];
        for e in &evs {
            if let Some(st) = &model.actions[e.rule].stage {
                let k = model.stages.iter().position(|s| s == st).unwrap();
                tallies[k] += 1;
            }
        }
        let stage = tallies
            .iter()
            .rposition(|n| *n > 0)
            .map(|k| model.stages[k].clone());
        let nps = nps_answers.get(id).and_then(|answers| {
            answers
                .iter()
                .max_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)))
                .map(|a| a.1)
        });
        let nps_class = nps.map(|v| {
            if v >= 9.0 {
                "promoter"
            } else if v >= 7.0 {
                "passive"
            } else {
                "detractor"
            }
        });
        lead_scores.push(LeadScore {
            lead_id: id.clone(),
            account_id: row.and_then(|l| l.account_id.clone()),
            engagement,
            fit,
            score,
            is_mql: score >= model.threshold,
            mql_at,
            stage,
            tallies,
            last_activity: evs.iter().map(|e| e.ts).max(),
            is_cold: !evs
                .iter()
                .any(|e| e.points > 0.0 && e.ts >= cold_from && e.ts < cutoff),
            nps,
            nps_class,
        });
    }

    let mut product_scores = Vec::new();
    for ((lead, product), mut evs) in by_product {
        evs.sort_by(by_ts_points);
        let (score, _) = fold(model, &evs, 0.0, cutoff, None);
        product_scores.push(ProductScore {
            lead_id: lead,
            product,
            score,
        });
    }

    let mut members: BTreeMap<Id, Vec<&LeadScore>> = BTreeMap::new();
    for l in &lead_scores {
        if let Some(a) = &l.account_id {
            members.entry(a.clone()).or_default().push(l);
        }
    }
    let mut accounts = Vec::new();
    for (account_id, ms) in members {
        let n = ms.len() as f64;
        let score = match model.account_aggregate {
            Aggregate::Sum => ms.iter().map(|l| l.score).sum(),
            Aggregate::Max => ms.iter().map(|l| l.score).fold(f64::NEG_INFINITY, f64::max),
            Aggregate::Mean => ms.iter().map(|l| l.score).sum::<f64>() / n,
        };
        let top = ms
            .iter()
            .max_by(|a, b| {
                a.score
                    .total_cmp(&b.score)
                    .then_with(|| b.lead_id.cmp(&a.lead_id))
            })
            .unwrap();
        let stage = ms
            .iter()
            .filter_map(|l| l.stage.as_ref())
            .filter_map(|s| model.stages.iter().position(|x| x == s))
            .max()
            .map(|k| model.stages[k].clone());
        let class = |c: &str| ms.iter().filter(|l| l.nps_class == Some(c)).count() as f64;
        let respondents = ms.iter().filter(|l| l.nps_class.is_some()).count() as f64;
        accounts.push(AccountScore {
            account_id,
            score,
            leads: ms.len() as i64,
            engaged_leads: ms.iter().filter(|l| l.engagement > 0.0).count() as i64,
            mql_leads: ms.iter().filter(|l| l.is_mql).count() as i64,
            top_lead_id: top.lead_id.clone(),
            stage,
            is_sales_ready: score >= model.account_threshold,
            nps: (respondents > 0.0)
                .then(|| 100.0 * (class("promoter") - class("detractor")) / respondents),
        });
    }

    let total = lead_scores.len() as f64;
    let mut stage_report: Vec<StageRow> = model
        .stages
        .iter()
        .map(|s| Some(s.clone()))
        .chain([None])
        .map(|stage| {
            let leads = lead_scores.iter().filter(|l| l.stage == stage).count() as i64;
            StageRow {
                stage,
                leads,
                share: (total > 0.0).then(|| leads as f64 / total),
            }
        })
        .collect();
    stage_report.sort_by(|a, b| a.stage.cmp(&b.stage));

    Reference {
        as_of,
        model_version: model.version,
        stages: model.stages.clone(),
        lead_scores,
        product_scores,
        accounts,
        stage_report,
        rejects,
        duplicates_dropped,
        unmatched,
    }
}
