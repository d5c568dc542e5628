//! The model file (the README's "The model file"): loading, validating and describing a scoring model.
//!
//! Loading is strict: an unknown key, a value of the wrong type, an undeclared stage or a rule
//! that can never work stops with one message naming the file and the line. The checks that need
//! the leads table (a fit rule on a column it lacks) happen in [`Model::check_fit_columns`].

use std::ops::Range;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::Deserialize;
use toml::Spanned;

use crate::error::{Error, Result};
use crate::fold::{Decay, DecayKind};

/// How member scores add up to an account score.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aggregate {
    Sum,
    Max,
    Mean,
}

impl Aggregate {
    /// The word used in the model file and in SQL.
    pub fn as_str(&self) -> &'static str {
        match self {
            Aggregate::Sum => "sum",
            Aggregate::Max => "max",
            Aggregate::Mean => "mean",
        }
    }
}

/// One `[[action]]` rule: which events it matches and what they are worth.
#[derive(Clone, Debug, PartialEq)]
pub struct ActionRule {
    /// 1-based line of the rule in the model file.
    pub line: usize,
    pub action: String,
    /// Globs on `asset` (`*` = any run of characters); `None` matches any asset, even a null one.
    pub assets: Option<Vec<String>>,
    pub points: f64,
    pub stage: Option<String>,
    /// `scale = "fraction"`: points are multiplied by the event's value, which must lie in 0..1.
    pub fraction: bool,
}

/// What a `[[fit]]` rule tests on a lead attribute.
#[derive(Clone, Debug, PartialEq)]
pub enum FitTest {
    /// Trimmed, case-insensitive string equality with any of these (stored lower-cased, trimmed).
    In(Vec<String>),
    /// Numeric, inclusive bounds.
    Range { min: Option<f64>, max: Option<f64> },
    /// A date or time `t` with `C <= t <= C + days`.
    WithinDays(f64),
}

/// One `[[fit]]` rule.
#[derive(Clone, Debug, PartialEq)]
pub struct FitRule {
    /// 1-based line of the rule in the model file.
    pub line: usize,
    pub column: String,
    pub test: FitTest,
    pub points: f64,
}

/// A validated scoring model.
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    pub path: PathBuf,
    pub name: String,
    pub version: i64,
    pub created: Option<NaiveDate>,
    pub notes: String,
    pub threshold: f64,
    pub stages: Vec<String>,
    pub decay: Decay,
    /// Fraction of `threshold` below which decay never takes a score.
    pub floor: f64,
    pub cold_days: f64,
    pub account_aggregate: Aggregate,
    pub account_threshold: f64,
    pub actions: Vec<ActionRule>,
    pub fits: Vec<FitRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    name: String,
    version: i64,
    created: Option<Spanned<toml::value::Datetime>>,
    #[serde(default)]
    notes: String,
    threshold: Spanned<f64>,
    #[serde(default)]
    stages: Vec<Spanned<String>>,
    decay: Option<RawDecay>,
    cold: Option<RawCold>,
    account: Option<RawAccount>,
    #[serde(default)]
    action: Vec<Spanned<RawAction>>,
    #[serde(default)]
    fit: Vec<Spanned<RawFit>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDecay {
    kind: Spanned<String>,
    half_life_days: Option<f64>,
    points: Option<f64>,
    period_days: Option<f64>,
    grace_days: Option<Spanned<f64>>,
    floor: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCold {
    days: Spanned<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccount {
    aggregate: Option<Spanned<String>>,
    threshold: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAction {
    action: String,
    assets: Option<Vec<String>>,
    points: f64,
    stage: Option<Spanned<String>>,
    scale: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFit {
    column: Spanned<String>,
    #[serde(rename = "in")]
    in_: Option<Vec<String>>,
    min: Option<f64>,
    max: Option<f64>,
    within_days: Option<f64>,
    points: f64,
}

/// Default `cold.days` when the model has no `[cold]` table.
pub const DEFAULT_COLD_DAYS: f64 = 30.0;

impl Model {
    /// Reads and validates a model file.
    pub fn load(path: &Path) -> Result<Model> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Model {
            file: path.to_path_buf(),
            line: 0,
            message: format!("cannot read the model file: {e}"),
        })?;
        Model::parse(&text, path)
    }

    /// Validates model text; `path` is only used in messages and kept for reference.
    pub fn parse(text: &str, path: &Path) -> Result<Model> {
        let err = |span: Option<Range<usize>>, message: String| Error::Model {
            file: path.to_path_buf(),
            line: span.map_or(0, |s| line_of(text, s.start)),
            message,
        };
        let raw: RawModel = toml::from_str(text).map_err(|e| {
            let key = e.span().and_then(|s| key_at(text, s.start));
            let message = friendly_toml_message(e.message());
            let message = match key {
                Some(k) if !message.contains(&format!("'{k}'")) => format!("'{k}': {message}"),
                _ => message,
            };
            err(e.span(), message)
        })?;

        if raw.name.trim().is_empty() {
            return Err(err(None, "`name` must not be empty".into()));
        }
        let created = match raw.created {
            None => None,
            Some(c) => {
                let span = c.span();
                let dt = c.into_inner();
                match (dt.date, dt.time) {
                    (Some(d), None) => Some(
                        NaiveDate::from_ymd_opt(d.year.into(), d.month.into(), d.day.into())
                            .ok_or_else(|| {
                                err(Some(span.clone()), "`created` is not a real date".into())
                            })?,
                    ),
                    _ => {
                        return Err(err(
                            Some(span),
                            "`created` must be a date like 2026-09-01".into(),
                        ));
                    }
                }
            }
        };
        let threshold = *raw.threshold.get_ref();
        if !threshold.is_finite() {
            return Err(err(
                Some(raw.threshold.span()),
                "`threshold` must be a number".into(),
            ));
        }

        let mut stages = Vec::new();
        for s in &raw.stages {
            let name = s.get_ref();
            if !valid_stage_name(name) {
                return Err(err(
                    Some(s.span()),
                    format!("stage name {name:?} must match [a-z][a-z0-9_]*"),
                ));
            }
            if stages.contains(name) {
                return Err(err(
                    Some(s.span()),
                    format!("stage {name:?} is declared twice"),
                ));
            }
            stages.push(name.clone());
        }

        let (decay, floor) = match raw.decay {
            None => (Decay::NONE, 0.0),
            Some(d) => {
                let kind_span = d.kind.span();
                let need = |v: Option<f64>, key: &str| {
                    v.ok_or_else(|| {
                        err(
                            Some(kind_span.clone()),
                            format!("decay kind {:?} needs `{key}`", d.kind.get_ref()),
                        )
                    })
                };
                let kind = match d.kind.get_ref().as_str() {
                    "none" => DecayKind::None,
                    "exponential" => DecayKind::Exponential {
                        half_life_days: need(d.half_life_days, "half_life_days")?,
                    },
                    "linear" => DecayKind::Linear {
                        points: need(d.points, "points")?,
                        period_days: need(d.period_days, "period_days")?,
                    },
                    other => {
                        return Err(err(
                            Some(kind_span),
                            format!(
                                "unknown decay kind {other:?} (expected \"exponential\", \"linear\" or \"none\")"
                            ),
                        ));
                    }
                };
                let decay = Decay {
                    kind,
                    grace_days: d.grace_days.as_ref().map_or(0.0, |g| *g.get_ref()),
                };
                decay
                    .validate()
                    .map_err(|m| err(Some(kind_span.clone()), format!("[decay]: {m}")))?;
                let floor = d.floor.as_ref().map_or(0.0, |f| *f.get_ref());
                if !(0.0..=1.0).contains(&floor) {
                    return Err(err(
                        d.floor.as_ref().map(|f| f.span()),
                        format!(
                            "`floor` is a fraction of the threshold and must lie in 0..1, not {floor}"
                        ),
                    ));
                }
                (decay, floor)
            }
        };

        let cold_days = match raw.cold {
            None => DEFAULT_COLD_DAYS,
            Some(c) => {
                let days = *c.days.get_ref();
                if !(days.is_finite() && days >= 0.0) {
                    return Err(err(
                        Some(c.days.span()),
                        "`cold.days` must be zero or more".into(),
                    ));
                }
                days
            }
        };

        let (account_aggregate, account_threshold) = match raw.account {
            None => (Aggregate::Sum, threshold),
            Some(a) => {
                let agg = match &a.aggregate {
                    None => Aggregate::Sum,
                    Some(s) => match s.get_ref().as_str() {
                        "sum" => Aggregate::Sum,
                        "max" => Aggregate::Max,
                        "mean" => Aggregate::Mean,
                        other => {
                            return Err(err(
                                Some(s.span()),
                                format!(
                                    "unknown account aggregate {other:?} (expected \"sum\", \"max\" or \"mean\")"
                                ),
                            ));
                        }
                    },
                };
                (agg, a.threshold.unwrap_or(threshold))
            }
        };

        let mut actions = Vec::new();
        for rule in raw.action {
            let span = rule.span();
            let line = line_of(text, span.start);
            let r = rule.into_inner();
            if r.action.is_empty() {
                return Err(err(Some(span), "`action` must not be empty".into()));
            }
            if let Some(assets) = &r.assets
                && assets.is_empty()
            {
                return Err(err(
                    Some(span),
                    "`assets` is empty, so the rule could never match: remove the key to match any asset".into(),
                ));
            }
            if !r.points.is_finite() {
                return Err(err(Some(span), "`points` must be a number".into()));
            }
            let stage = match r.stage {
                None => None,
                Some(s) => {
                    if !stages.contains(s.get_ref()) {
                        return Err(err(
                            Some(s.span()),
                            format!(
                                "stage {:?} is not declared in `stages` ({})",
                                s.get_ref(),
                                if stages.is_empty() {
                                    "none declared".to_string()
                                } else {
                                    stages.join(", ")
                                }
                            ),
                        ));
                    }
                    Some(s.into_inner())
                }
            };
            let fraction = match r.scale {
                None => false,
                Some(s) => match s.get_ref().as_str() {
                    "fraction" => true,
                    other => {
                        return Err(err(
                            Some(s.span()),
                            format!("unknown scale {other:?} (the only scale is \"fraction\")"),
                        ));
                    }
                },
            };
            actions.push(ActionRule {
                line,
                action: r.action,
                assets: r.assets,
                points: r.points,
                stage,
                fraction,
            });
        }

        let mut fits = Vec::new();
        for rule in raw.fit {
            let span = rule.span();
            let r = rule.into_inner();
            let kinds = [
                r.in_.is_some(),
                r.min.is_some() || r.max.is_some(),
                r.within_days.is_some(),
            ]
            .iter()
            .filter(|b| **b)
            .count();
            if kinds != 1 {
                return Err(err(
                    Some(span),
                    "a [[fit]] rule needs exactly one test: `in`, `min`/`max`, or `within_days`"
                        .into(),
                ));
            }
            let test = if let Some(values) = r.in_ {
                FitTest::In(values.iter().map(|v| v.trim().to_lowercase()).collect())
            } else if let Some(days) = r.within_days {
                if !(days.is_finite() && days >= 0.0) {
                    return Err(err(Some(span), "`within_days` must be zero or more".into()));
                }
                FitTest::WithinDays(days)
            } else {
                if let (Some(lo), Some(hi)) = (r.min, r.max)
                    && lo > hi
                {
                    return Err(err(
                        Some(span),
                        format!("`min` ({lo}) is above `max` ({hi})"),
                    ));
                }
                FitTest::Range {
                    min: r.min,
                    max: r.max,
                }
            };
            if r.column.get_ref().trim().is_empty() {
                return Err(err(
                    Some(r.column.span()),
                    "`column` must not be empty".into(),
                ));
            }
            fits.push(FitRule {
                line: line_of(text, r.column.span().start),
                column: r.column.into_inner(),
                test,
                points: r.points,
            });
        }

        Ok(Model {
            path: path.to_path_buf(),
            name: raw.name,
            version: raw.version,
            created,
            notes: raw.notes,
            threshold,
            stages,
            decay,
            floor,
            cold_days,
            account_aggregate,
            account_threshold,
            actions,
            fits,
        })
    }

    /// `F` of docs/scoring.md, "Engagement: the fold": the score below which decay never takes a lead.
    pub fn floor_points(&self) -> f64 {
        self.floor * self.threshold
    }

    /// Fails when a fit rule names a column that `columns` (the leads table's) lacks.
    pub fn check_fit_columns(&self, columns: &[String], leads_file: &Path) -> Result<()> {
        for rule in &self.fits {
            if !columns.iter().any(|c| c == &rule.column) {
                return Err(Error::Model {
                    file: self.path.clone(),
                    line: rule.line,
                    message: format!(
                        "fit rule on column {:?}, which the leads table {} lacks (it has: {})",
                        rule.column,
                        leads_file.display(),
                        columns.join(", ")
                    ),
                });
            }
        }
        Ok(())
    }

    /// The 1-based rank of a stage in `stages`.
    pub fn stage_rank(&self, stage: &str) -> Option<usize> {
        self.stages.iter().position(|s| s == stage).map(|i| i + 1)
    }

    /// The rank of `rule`'s stage; `None` for a rule without one.
    pub fn rule_stage_rank(&self, rule: &ActionRule) -> Option<usize> {
        rule.stage.as_deref().and_then(|s| self.stage_rank(s))
    }
}

fn valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z'))
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// 1-based line number of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The key assigned on the line holding byte `offset` (`key = value`), if any.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let start = text[..offset.min(text.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let line = text[start..].lines().next()?;
    let (key, _) = line.split_once('=')?;
    let key = key.trim();
    (!key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
    .then(|| key.to_string())
}

/// toml's messages speak of Rust types and "fields"; the model reference speaks of keys,
/// numbers and lists.
fn friendly_toml_message(message: &str) -> String {
    message
        .trim()
        .replace("unknown field", "unknown key")
        .replace("missing field", "missing key")
        .replace("expected f64", "expected a number")
        .replace("expected i64", "expected an integer")
        .replace("expected a sequence", "expected a list")
        .replace('`', "'")
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "b2b"
version = 3
created = 2026-09-01
notes = "webinar 10 -> 15"
threshold = 100
stages = ["awareness", "consideration", "decision"]

[decay]
kind = "exponential"
half_life_days = 90
grace_days = 2
floor = 0.5

[cold]
days = 30

[account]
aggregate = "max"

[[action]]
action = "page_view"
assets = ["/pricing*"]
points = 2
stage = "decision"

[[action]]
action = "video_play"
points = 10
scale = "fraction"

[[fit]]
column = "role"
in = [" VP ", "Director"]
points = 15

[[fit]]
column = "company_size"
min = 200
points = 15
"#;

    fn parse(text: &str) -> Result<Model> {
        Model::parse(text, Path::new("m.toml"))
    }

    #[test]
    fn parses_every_section() {
        let m = parse(GOOD).unwrap();
        assert_eq!(m.version, 3);
        assert_eq!(m.created, NaiveDate::from_ymd_opt(2026, 9, 1));
        assert_eq!(m.floor_points(), 50.0);
        assert_eq!(m.account_aggregate, Aggregate::Max);
        assert_eq!(m.account_threshold, 100.0);
        assert_eq!(m.actions.len(), 2);
        assert_eq!(m.actions[0].line, 21);
        assert!(m.actions[1].fraction);
        assert_eq!(
            m.fits[0].test,
            FitTest::In(vec!["vp".into(), "director".into()])
        );
        assert_eq!(m.stage_rank("decision"), Some(3));
        assert_eq!(m.rule_stage_rank(&m.actions[0]), Some(3));
        assert_eq!(m.rule_stage_rank(&m.actions[1]), None);
    }

    fn message_of(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn typo_names_the_line() {
        let bad = GOOD.replace("points = 10\n", "poinst = 10\n");
        let msg = message_of(&bad);
        assert!(msg.starts_with("m.toml:29:"), "{msg}");
        assert!(msg.contains("unknown key 'poinst'"), "{msg}");
    }

    #[test]
    fn wrong_type_names_the_line() {
        let bad = GOOD.replace("threshold = 100", "threshold = \"high\"");
        let msg = message_of(&bad);
        assert!(msg.starts_with("m.toml:6:"), "{msg}");
    }

    #[test]
    fn undeclared_stage_names_the_line() {
        let bad = GOOD.replace("stage = \"decision\"", "stage = \"purchase\"");
        let msg = message_of(&bad);
        assert!(msg.starts_with("m.toml:25:"), "{msg}");
        assert!(msg.contains("not declared"), "{msg}");
    }

    #[test]
    fn decay_needs_its_parameters() {
        let bad = GOOD.replace("half_life_days = 90\n", "");
        assert!(message_of(&bad).contains("half_life_days"));
        let bad = GOOD.replace("floor = 0.5", "floor = 50");
        assert!(message_of(&bad).starts_with("m.toml:13:"));
    }

    #[test]
    fn fit_rule_needs_one_test() {
        let bad = GOOD.replace("min = 200", "min = 200\nin = [\"x\"]");
        assert!(message_of(&bad).contains("exactly one test"));
    }

    #[test]
    fn fit_column_must_exist() {
        let m = parse(GOOD).unwrap();
        let err = m
            .check_fit_columns(&["lead_id".into(), "role".into()], Path::new("leads.csv"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("m.toml:38:"), "{err}");
        assert!(err.contains("company_size"), "{err}");
    }

    #[test]
    fn defaults_apply() {
        let m = parse("name = \"x\"\nversion = 1\nthreshold = 10\n").unwrap();
        assert_eq!(m.decay, Decay::NONE);
        assert_eq!(m.cold_days, DEFAULT_COLD_DAYS);
        assert_eq!(m.account_aggregate, Aggregate::Sum);
        assert_eq!(m.account_threshold, 10.0);
        assert!(m.stages.is_empty());
    }
}
