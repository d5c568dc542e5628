//! The scoring kernel: the decay function of SPEC §4.2 and the per-lead fold over time-ordered
//! events. Pure Rust on plain slices, so the user-defined functions, the benches and the tests
//! all run the very same arithmetic.
//!
//! Times are microseconds since the Unix epoch (UTC); durations in days are real numbers,
//! `(t2 - t1) / 86 400 s`.

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
    /// is already at or below `floor` (SPEC §4.2).
    #[inline]
    pub fn apply(&self, s: f64, days: f64, floor: f64) -> f64 {
        if s <= floor {
            return s;
        }
        let idle = (days - self.grace_days).max(0.0);
        match self.kind {
            DecayKind::None => s,
            DecayKind::Exponential { half_life_days } => {
                (s * 2f64.powf(-idle / half_life_days)).max(floor)
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
    let mut s = 0.0f64;
    let mut last: Option<i64> = None;
    let mut crossed_at = None;
    let mut i = 0;
    while i < ts.len() {
        let t = ts[i];
        if let Some(prev) = last {
            s = decay.apply(s, days_between(prev, t), floor);
        }
        while i < ts.len() && ts[i] == t {
            s += points[i];
            i += 1;
        }
        last = Some(t);
        if crossed_at.is_none()
            && let Some(c) = crossing
            && c.fit + s >= c.threshold
        {
            crossed_at = Some(t);
        }
    }
    if let Some(prev) = last {
        s = decay.apply(s, days_between(prev, cutoff_us), floor);
    }
    FoldOutcome {
        score: s,
        crossed_at,
    }
}

/// Sorts `(ts, points)` pairs by time, then points, so that both the fold and its float sums are
/// fixed by the set of events alone. Returns quickly when they already are in order.
pub fn sort_events(events: &mut [(i64, f64)]) {
    if !events.windows(2).all(|w| key_le(w[0], w[1])) {
        events.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
    }
}

#[inline]
fn key_le(a: (i64, f64), b: (i64, f64)) -> bool {
    a.0 < b.0 || (a.0 == b.0 && a.1.total_cmp(&b.1).is_le())
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
    fn sort_orders_ties_by_points() {
        let mut ev = vec![(2, 1.0), (1, 5.0), (1, -3.0)];
        sort_events(&mut ev);
        assert_eq!(ev, vec![(1, -3.0), (1, 5.0), (2, 1.0)]);
    }

    #[test]
    fn decay_spec_round_trips_as_json() {
        let d = exp(90.0, 3.0);
        assert_eq!(Decay::from_json(&d.to_json()).unwrap(), d);
        assert!(Decay::from_json(r#"{"kind":"exponential","half_life_days":0}"#).is_err());
        assert!(Decay::from_json(r#"{"kind":"weird"}"#).is_err());
    }
}
