//! The scoring kernel: the decay function of docs/scoring.md, "Engagement: the fold" and the per-lead fold over time-ordered
//! events. Pure Rust on plain slices, so the user-defined functions, the benches and the tests
//! all run the very same arithmetic.
//!
//! Times are microseconds since the Unix epoch (UTC); durations in days are real numbers,
//! `(t2 - t1) / 86 400 s`.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// Microseconds in one day.
pub const MICROS_PER_DAY: f64 = 86_400_000_000.0;

/// Days between two instants given in microseconds, as a real number.
#[inline]
pub fn days_between(from_us: i64, to_us: i64) -> f64 {
    (to_us - from_us) as f64 / MICROS_PER_DAY
}

/// How a score loses value while a lead is idle.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum DecayKind {
    /// Scores never decay.
    None,
    /// The score halves every `half_life_days` idle days.
    Exponential { half_life_days: f64 },
    /// The score loses `points` every `period_days` idle days.
    Linear { points: f64, period_days: f64 },
}

/// A decay rule: its kind plus the idle days allowed before it starts.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decay {
    #[serde(flatten)]
    pub kind: DecayKind,
    #[serde(default)]
    pub grace_days: f64,
}

impl Decay {
    /// No decay at all.
    pub const NONE: Decay = Decay {
        kind: DecayKind::None,
        grace_days: 0.0,
    };

    /// The score `s` after `days` idle days, never taken below `floor` and never changed when it
    /// is already at or below `floor` (docs/scoring.md, "Engagement: the fold").
    #[inline]
    pub fn apply(&self, s: f64, days: f64, floor: f64) -> f64 {
        if s <= floor {
            return s;
        }
        let idle = (days - self.grace_days).max(0.0);
        match self.kind {
            DecayKind::None => s,
            // `exp2`, not `2f64.powf`: an optimised build turns `powf(2, x)` into `exp2(x)`
            // and an unoptimised one does not, and the two differ in the last bit for about one
            // value in a thousand, so tests (unoptimised) and releases would disagree.
            DecayKind::Exponential { half_life_days } => {
                (s * (-idle / half_life_days).exp2()).max(floor)
            }
            DecayKind::Linear {
                points,
                period_days,
            } => (s - points * idle / period_days).max(floor),
        }
    }

    /// Parses the JSON form used inside SQL (`'{"kind":"exponential","half_life_days":90}'`).
    pub fn from_json(text: &str) -> Result<Decay, String> {
        let decay: Decay =
            serde_json::from_str(text).map_err(|e| format!("bad decay spec {text:?}: {e}"))?;
        decay.validate()?;
        Ok(decay)
    }

    /// The JSON form used inside SQL.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a decay spec always serializes")
    }

    /// Checks the parameters are usable numbers.
    pub fn validate(&self) -> Result<(), String> {
        let positive = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(format!("{name} must be a positive number, not {v}"))
            }
        };
        if !(self.grace_days.is_finite() && self.grace_days >= 0.0) {
            return Err(format!(
                "grace_days must be zero or more, not {}",
                self.grace_days
            ));
        }
        match self.kind {
            DecayKind::None => Ok(()),
            DecayKind::Exponential { half_life_days } => positive("half_life_days", half_life_days),
            DecayKind::Linear {
                points,
                period_days,
            } => {
                positive("points", points)?;
                positive("period_days", period_days)
            }
        }
    }
}

/// The result of folding one lead's (or one lead-and-product's) events.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FoldOutcome {
    /// The decayed score at the cutoff; 0 without events.
    pub score: f64,
    /// The time of the first event right after which `fit + S >= threshold`, when asked for.
    pub crossed_at: Option<i64>,
}

/// When to report a crossing: right after an event, `fit + S >= threshold`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Crossing {
    pub fit: f64,
    pub threshold: f64,
}

/// A running fold (docs/scoring.md, "Engagement: the fold"): the score `S` and the time of the last event, fed instant by
/// instant in time order, readable at any later cutoff without being consumed.
#[derive(Clone, Copy, Debug)]
pub struct Folder {
    /// The score right after the last event.
    pub score: f64,
    /// The time of the last event, if any.
    pub last: Option<i64>,
}

impl Default for Folder {
    fn default() -> Self {
        Self::new()
    }
}

impl Folder {
    /// A fold before any event: `S = 0`, no last event.
    pub const fn new() -> Self {
        Folder {
            score: 0.0,
            last: None,
        }
    }

    /// Decays the score up to instant `t` (no decay before the first event); events at `t` are
    /// then added with [`Folder::add`].
    #[inline]
    pub fn advance(&mut self, t: i64, decay: &Decay, floor: f64) {
        if let Some(prev) = self.last {
            self.score = decay.apply(self.score, days_between(prev, t), floor);
        }
        self.last = Some(t);
    }

    /// Adds an event's points at the current instant.
    #[inline]
    pub fn add(&mut self, points: f64) {
        self.score += points;
    }

    /// The score decayed up to `cutoff`; 0 without events.
    #[inline]
    pub fn at(&self, cutoff: i64, decay: &Decay, floor: f64) -> f64 {
        match self.last {
            Some(prev) => decay.apply(self.score, days_between(prev, cutoff), floor),
            None => self.score,
        }
    }
}

/// Folds events that are sorted by time (ties in any fixed order) into a score at `cutoff_us`.
///
/// Events that share a timestamp are applied together: zero idle days decay nothing, and a
/// crossing is looked for only once the whole instant has been applied, so the result does not
/// depend on how ties are ordered (except for the last bits of a float sum, which the caller
/// fixes by sorting ties by points).
pub fn fold_sorted(
    ts: &[i64],
    points: &[f64],
    decay: &Decay,
    floor: f64,
    cutoff_us: i64,
    crossing: Option<Crossing>,
) -> FoldOutcome {
    debug_assert_eq!(ts.len(), points.len());
    let mut fold = Folder::new();
    let mut crossed_at = None;
    let mut i = 0;
    while i < ts.len() {
        let t = ts[i];
        fold.advance(t, decay, floor);
        while i < ts.len() && ts[i] == t {
            fold.add(points[i]);
            i += 1;
        }
        if crossed_at.is_none()
            && let Some(c) = crossing
            && c.fit + fold.score >= c.threshold
        {
            crossed_at = Some(t);
        }
    }
    FoldOutcome {
        score: fold.at(cutoff_us, decay, floor),
        crossed_at,
    }
}

/// The days a run scores as of: `from`, `from + every_days`, … up to `to` (inclusive when it
/// falls on the step). `score` has one; `backfill` one per snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshots {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub every_days: u32,
}

impl Snapshots {
    /// The single day `day`.
    pub fn one(day: NaiveDate) -> Self {
        Snapshots {
            from: day,
            to: day,
            every_days: 1,
        }
    }

    /// Every snapshot day, in order.
    pub fn days(&self) -> Vec<NaiveDate> {
        let step = chrono::Days::new(u64::from(self.every_days.max(1)));
        let mut out = Vec::new();
        let mut d = self.from;
        while d <= self.to {
            out.push(d);
            match d.checked_add_days(step) {
                Some(next) => d = next,
                None => break,
            }
        }
        out
    }

    /// The cutoff of each snapshot (the start of the next day), in microseconds.
    pub fn cutoffs(&self) -> Vec<i64> {
        self.days().into_iter().map(cutoff_micros).collect()
    }
}

/// The cutoff `C` for as-of day `d`: the start of day `d + 1`, in microseconds (UTC).
pub fn cutoff_micros(as_of: NaiveDate) -> i64 {
    let next = as_of.succ_opt().unwrap_or(as_of);
    next.and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc()
        .timestamp_micros()
}

/// Days since 1970-01-01 (Arrow's Date32) of a date.
pub fn epoch_days(d: NaiveDate) -> i32 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date")).num_days() as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000_000;

    fn exp(h: f64, grace: f64) -> Decay {
        Decay {
            kind: DecayKind::Exponential { half_life_days: h },
            grace_days: grace,
        }
    }

    #[test]
    fn exponential_decay_is_the_same_number_in_every_build() {
        // 2^-0.6844149143363953: pow(2, x) gives 0.6222581325675564, exp2(x) 0.6222581325675562.
        // An optimised build computes exp2 either way; an unoptimised one (the tests) computed
        // pow when the code said `2f64.powf`.
        let days = 6.844149143363953;
        let decayed = exp(10.0, 0.0).apply(1.0, days, 0.0);
        assert_eq!(decayed.to_bits(), 0.6222581325675562f64.to_bits());
    }

    #[test]
    fn exponential_halves_per_half_life() {
        assert_eq!(exp(10.0, 0.0).apply(80.0, 10.0, 0.0), 40.0);
        assert_eq!(exp(10.0, 0.0).apply(80.0, 20.0, 0.0), 20.0);
    }

    #[test]
    fn grace_days_are_free() {
        assert_eq!(exp(10.0, 5.0).apply(80.0, 5.0, 0.0), 80.0);
        assert_eq!(exp(10.0, 5.0).apply(80.0, 15.0, 0.0), 40.0);
    }

    #[test]
    fn floor_stops_decay_and_never_raises() {
        // 80 would halve to 40 and then to 20, but the floor is 50.
        assert_eq!(exp(10.0, 0.0).apply(80.0, 20.0, 50.0), 50.0);
        // At or below the floor nothing changes, not even upwards.
        assert_eq!(exp(10.0, 0.0).apply(30.0, 20.0, 50.0), 30.0);
        assert_eq!(exp(10.0, 0.0).apply(-5.0, 20.0, 0.0), -5.0);
    }

    #[test]
    fn linear_subtracts_per_period() {
        let d = Decay {
            kind: DecayKind::Linear {
                points: 5.0,
                period_days: 7.0,
            },
            grace_days: 0.0,
        };
        assert_eq!(d.apply(50.0, 14.0, 0.0), 40.0);
        assert_eq!(d.apply(50.0, 140.0, 10.0), 10.0);
    }

    #[test]
    fn none_keeps_scores() {
        assert_eq!(Decay::NONE.apply(50.0, 1000.0, 0.0), 50.0);
    }

    #[test]
    fn fold_matches_hand_worked_example() {
        // Half-life 10 days. +10 at day 0, +10 at day 10 (10 -> 5, +10 = 15), cutoff day 20: 7.5.
        let out = fold_sorted(
            &[0, 10 * DAY],
            &[10.0, 10.0],
            &exp(10.0, 0.0),
            0.0,
            20 * DAY,
            Some(Crossing {
                fit: 0.0,
                threshold: 15.0,
            }),
        );
        assert_eq!(out.score, 7.5);
        assert_eq!(out.crossed_at, Some(10 * DAY));
    }

    #[test]
    fn ties_are_one_instant() {
        // -10 and +10 at the same instant after reaching 95: whatever the order, the crossing of 100
        // is judged after both, so it never happens.
        let out = fold_sorted(
            &[0, DAY, DAY],
            &[95.0, -10.0, 10.0],
            &Decay::NONE,
            0.0,
            2 * DAY,
            Some(Crossing {
                fit: 0.0,
                threshold: 100.0,
            }),
        );
        assert_eq!(out.score, 95.0);
        assert_eq!(out.crossed_at, None);
    }

    #[test]
    fn fit_counts_towards_crossing() {
        let out = fold_sorted(
            &[DAY],
            &[10.0],
            &Decay::NONE,
            0.0,
            2 * DAY,
            Some(Crossing {
                fit: 90.0,
                threshold: 100.0,
            }),
        );
        assert_eq!(out.crossed_at, Some(DAY));
    }

    #[test]
    fn no_events_score_zero() {
        let out = fold_sorted(&[], &[], &exp(1.0, 0.0), 0.0, DAY, None);
        assert_eq!(out.score, 0.0);
        assert_eq!(out.crossed_at, None);
    }

    #[test]
    fn decay_spec_round_trips_as_json() {
        let d = exp(90.0, 3.0);
        assert_eq!(Decay::from_json(&d.to_json()).unwrap(), d);
        assert!(Decay::from_json(r#"{"kind":"exponential","half_life_days":0}"#).is_err());
        assert!(Decay::from_json(r#"{"kind":"weird"}"#).is_err());
    }
}
