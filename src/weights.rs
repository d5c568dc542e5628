//! `leadscore weights`: derives the points of staged actions from the journeys of leads that
//! converted (docs/weights.md, the "equal split"), and publishes `stage_tallies`, `stage_tally_trend`,
//! `action_lift`, `rejects` and `proposed_model.toml`.
//!
//! The tables are query files (`converted_tallies`, `stage_tallies`, `stage_tally_trend`,
//! `action_lift`) over the same judged events as `score`. The proposed model is the input model
//! file edited in place (comments and layout kept): `version + 1`, `created` = the run's day,
//! new notes, and every staged rule with positive points set to the rounded equal split.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{Datelike, NaiveDate};
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::prelude::SessionContext;

use crate::context::EngineOptions;
use crate::error::{Error, Result};
use crate::fold::Snapshots;
use crate::input;
use crate::model::Model;
use crate::output::Staging;
use crate::pipeline::count;
use crate::queries::WEIGHTS_PIPELINE;
use crate::score::{Inputs, provisional_day, refuse_rejects, reject_reasons};

/// What `weights` needs.
#[derive(Clone, Debug)]
pub struct WeightsOptions {
    pub events: PathBuf,
    pub outcomes: PathBuf,
    pub model: PathBuf,
    /// Only opportunities at or after the start of this day count.
    pub from: Option<NaiveDate>,
    /// Only opportunities before the start of this day count.
    pub to: Option<NaiveDate>,
    /// The day of this revision: the proposed model's `created`.
    pub today: NaiveDate,
    pub out: PathBuf,
    pub queries: Option<PathBuf>,
    pub engine: EngineOptions,
    /// Fail (and publish nothing) when any row is rejected.
    pub strict: bool,
}

/// One row of `stage_tallies`.
#[derive(Clone, Debug, PartialEq)]
pub struct StageTally {
    pub stage: String,
    pub converted_leads: u64,
    pub avg_tally: Option<f64>,
    pub points_per_action: Option<f64>,
}

/// One row of `action_lift`.
#[derive(Clone, Debug, PartialEq)]
pub struct ActionLift {
    pub rule: i64,
    pub action: String,
    pub assets: Option<String>,
    pub leads: u64,
    pub converted: u64,
    pub conversion_rate: Option<f64>,
    pub lift: Option<f64>,
}

/// What a `weights` run found and wrote.
#[derive(Clone, Debug, Default)]
pub struct WeightsSummary {
    pub stages: Vec<StageTally>,
    pub lift: Vec<ActionLift>,
    /// The rounded equal split, when there were converted leads.
    pub points: Option<i64>,
    /// Where the proposed model was published, when it was.
    pub proposed_model: Option<PathBuf>,
    pub input_rows: u64,
    pub rejects: u64,
    pub reject_reasons: Vec<(String, u64)>,
    pub duplicates_dropped: u64,
    pub elapsed: Duration,
}

/// The tables `weights` publishes (plus [`PROPOSED_MODEL`] when there is one).
pub const WEIGHTS_TABLES: &[&str] = &[
    "stage_tallies",
    "stage_tally_trend",
    "action_lift",
    "rejects",
];

/// The file name of the proposed model, beside the tables.
pub const PROPOSED_MODEL: &str = "proposed_model.toml";

/// Checks that an optional `[from, to)` range of days is not backwards.
pub fn check_window(from: Option<NaiveDate>, to: Option<NaiveDate>) -> Result<()> {
    match (from, to) {
        (Some(f), Some(t)) if f >= t => Err(Error::Usage(format!(
            "--from {f} must be before --to {t} (the window is [from, to))"
        ))),
        _ => Ok(()),
    }
}

/// Derives weights from the converted leads and publishes the tables into `opts.out`.
pub async fn weights(opts: &WeightsOptions) -> Result<WeightsSummary> {
    let started = Instant::now();
    check_window(opts.from, opts.to)?;
    let inputs = Inputs::open(&opts.model, &opts.events, None, &opts.engine).await?;
    if inputs.model.stages.is_empty() {
        return Err(Error::Model {
            file: opts.model.clone(),
            line: 0,
            message: "declares no `stages`: weights splits the threshold over staged actions"
                .into(),
        });
    }
    input::register_outcomes(&inputs.ctx, &opts.outcomes, inputs.events.lead_id).await?;
    crate::delta::check_targets(&opts.out, WEIGHTS_TABLES, opts.engine.format)?;
    let staging = Staging::new(&opts.out).await?;
    let mut pipeline = inputs.pipeline(
        &staging,
        opts.queries.as_deref(),
        &Snapshots::one(provisional_day()),
        false,
        &opts.engine,
        false,
    )?;
    pipeline.template.set_window(opts.from, opts.to);
    inputs.judge(&mut pipeline).await?;
    pipeline.run_all(WEIGHTS_PIPELINE).await?;
    pipeline.report_memory();

    let ctx = &inputs.ctx;
    let mut summary = WeightsSummary {
        stages: stage_tallies(ctx, &inputs.model).await?,
        lift: action_lift(ctx).await?,
        input_rows: inputs.events.rows(),
        rejects: pipeline.rows("rejects"),
        reject_reasons: reject_reasons(ctx).await?,
        duplicates_dropped: count(ctx, "select count(*) from duplicate_events where copy > 1")
            .await?,
        ..Default::default()
    };
    if opts.strict {
        refuse_rejects(summary.rejects, &summary.reject_reasons)?;
    }
    if let Some(per_action) = summary.stages.first().and_then(|s| s.points_per_action) {
        let text = std::fs::read_to_string(&opts.model)
            .map_err(|e| Error::io(format!("reading {}", opts.model.display()), e))?;
        let proposal = Proposal {
            per_action,
            stages: &summary.stages,
            today: opts.today,
            from: opts.from,
            to: opts.to,
            events: &opts.events,
            outcomes: &opts.outcomes,
        };
        let (toml, points) = propose_model(&text, &inputs.model, &proposal)?;
        let staged = staging.table_dir(PROPOSED_MODEL);
        std::fs::write(&staged, toml)
            .map_err(|e| Error::io(format!("writing {}", staged.display()), e))?;
        staging.ship(&staged).await?;
        summary.points = Some(points);
        summary.proposed_model = Some(opts.out.join(PROPOSED_MODEL));
    }
    crate::delta::publish(
        ctx,
        staging,
        WEIGHTS_TABLES,
        &[PROPOSED_MODEL],
        opts.engine.format,
    )
    .await?;
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// What the proposed model is derived from.
pub struct Proposal<'a> {
    /// threshold / sum of the average tallies (unrounded).
    pub per_action: f64,
    pub stages: &'a [StageTally],
    pub today: NaiveDate,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub events: &'a Path,
    pub outcomes: &'a Path,
}

/// `points_per_action` as the model file's points: rounded half away from zero, at least 1.
pub fn rounded_points(per_action: f64) -> i64 {
    (per_action.round() as i64).max(1)
}

/// The text of the proposed model: `text` (the file `model` was loaded from) with `version + 1`,
/// `created` = `today`, notes saying what changed and from which data, and every staged rule
/// with positive points set to the rounded equal split. Comments and layout are kept. Returns
/// the text and the new points; the text is checked to load as a model.
pub fn propose_model(text: &str, model: &Model, p: &Proposal<'_>) -> Result<(String, i64)> {
    let points = rounded_points(p.per_action);
    let broken = |message: String| Error::Model {
        file: model.path.clone(),
        line: 0,
        message,
    };
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e| broken(format!("cannot edit the model file: {e}")))?;

    let mut changes = Vec::new();
    let mut edit = |i: usize, table: &mut dyn toml_edit::TableLike| {
        let Some(rule) = model.actions.get(i) else {
            return;
        };
        if rule.stage.is_none() || rule.points <= 0.0 {
            return;
        }
        if let Some(value) = table.get_mut("points").and_then(|v| v.as_value_mut()) {
            let decor = value.decor().clone();
            *value = toml_edit::Value::from(points);
            *value.decor_mut() = decor;
        }
        if rule.points != points as f64 {
            let assets = rule
                .assets
                .as_ref()
                .map_or(String::new(), |a| format!(" {}", a.join(",")));
            changes.push(format!(
                "rule {} {}{assets} {} -> {points}",
                i + 1,
                rule.action,
                number(rule.points)
            ));
        }
    };
    match doc.get_mut("action") {
        Some(toml_edit::Item::ArrayOfTables(rules)) => {
            for (i, t) in rules.iter_mut().enumerate() {
                edit(i, t);
            }
        }
        Some(toml_edit::Item::Value(toml_edit::Value::Array(rules))) => {
            for (i, v) in rules.iter_mut().enumerate() {
                if let Some(t) = v.as_inline_table_mut() {
                    edit(i, t);
                }
            }
        }
        _ => {}
    }

    let window = match (p.from, p.to) {
        (None, None) => "at any time".to_string(),
        (from, to) => format!(
            "in [{}, {})",
            from.map_or("the start".into(), |d| d.to_string()),
            to.map_or("the end".into(), |d| d.to_string())
        ),
    };
    let averages = p
        .stages
        .iter()
        .map(|s| format!("{} {:.2}", s.stage, s.avg_tally.unwrap_or(0.0)))
        .collect::<Vec<_>>()
        .join(", ");
    let total: f64 = model.threshold / p.per_action;
    let converted = p.stages.first().map_or(0, |s| s.converted_leads);
    let mut notes = format!(
        "Equal split by leadscore weights on {}: {converted} converted leads (opportunity {window}; \
         events {}, outcomes {}). Average matched events per stage before the opportunity: \
         {averages} (sum {total:.2}); threshold {} / {total:.2} = {:.2} -> {points} points for \
         every staged rule with positive points. ",
        p.today,
        p.events.display(),
        p.outcomes.display(),
        number(model.threshold),
        p.per_action,
    );
    if changes.is_empty() {
        notes.push_str("No rule changed.");
    } else {
        notes.push_str(&format!("Changed: {}.", changes.join("; ")));
    }
    if !model.notes.is_empty() {
        notes.push_str(&format!(
            " Version {} notes: {}",
            model.version, model.notes
        ));
    }

    set_keeping_decor(
        &mut doc,
        "version",
        toml_edit::Value::from(model.version + 1),
    );
    let date = toml_edit::Date {
        year: p.today.year() as u16,
        month: p.today.month() as u8,
        day: p.today.day() as u8,
    };
    let created = toml_edit::Datetime {
        date: Some(date),
        time: None,
        offset: None,
    };
    set_keeping_decor(&mut doc, "created", toml_edit::Value::from(created));
    set_keeping_decor(&mut doc, "notes", toml_edit::Value::from(notes));

    let out = doc.to_string();
    Model::parse(&out, &model.path)
        .map_err(|e| broken(format!("the proposed model does not load: {e}")))?;
    Ok((out, points))
}

/// Sets a top-level key, keeping the comment after an existing value; a new key goes after the
/// ones already there.
fn set_keeping_decor(doc: &mut toml_edit::DocumentMut, key: &str, value: toml_edit::Value) {
    match doc.get_mut(key).and_then(|v| v.as_value_mut()) {
        Some(old) => {
            let decor = old.decor().clone();
            *old = value;
            *old.decor_mut() = decor;
        }
        None => {
            doc.insert(key, toml_edit::Item::Value(value));
        }
    }
}

/// A number as the model file would write it: `15`, `2.5`.
fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn strings(b: &RecordBatch, name: &str) -> Result<Vec<Option<String>>> {
    let c = cast(b.column_by_name(name).expect("column"), &DataType::Utf8)?;
    let c = c.as_string::<i32>();
    Ok((0..c.len())
        .map(|i| c.is_valid(i).then(|| c.value(i).to_string()))
        .collect())
}

fn ints(b: &RecordBatch, name: &str) -> Result<Vec<Option<i64>>> {
    let c = cast(b.column_by_name(name).expect("column"), &DataType::Int64)?;
    let c = c.as_primitive::<Int64Type>();
    Ok((0..c.len())
        .map(|i| c.is_valid(i).then(|| c.value(i)))
        .collect())
}

fn floats(b: &RecordBatch, name: &str) -> Result<Vec<Option<f64>>> {
    let c = cast(b.column_by_name(name).expect("column"), &DataType::Float64)?;
    let c = c.as_primitive::<Float64Type>();
    Ok((0..c.len())
        .map(|i| c.is_valid(i).then(|| c.value(i)))
        .collect())
}

async fn rows_of(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>> {
    Ok(ctx.sql(sql).await?.collect().await?)
}

/// The published `stage_tallies`, in the model's stage order.
async fn stage_tallies(ctx: &SessionContext, model: &Model) -> Result<Vec<StageTally>> {
    let mut out = Vec::new();
    for b in rows_of(ctx, "select * from stage_tallies").await? {
        let stage = strings(&b, "stage")?;
        let converted = ints(&b, "converted_leads")?;
        let avg = floats(&b, "avg_tally")?;
        let ppa = floats(&b, "points_per_action")?;
        for i in 0..b.num_rows() {
            out.push(StageTally {
                stage: stage[i].clone().unwrap_or_default(),
                converted_leads: converted[i].unwrap_or(0) as u64,
                avg_tally: avg[i],
                points_per_action: ppa[i],
            });
        }
    }
    out.sort_by_key(|s| model.stage_rank(&s.stage));
    Ok(out)
}

/// The published `action_lift`, in rule order.
async fn action_lift(ctx: &SessionContext) -> Result<Vec<ActionLift>> {
    let mut out = Vec::new();
    for b in rows_of(ctx, "select * from action_lift order by rule").await? {
        let rule = ints(&b, "rule")?;
        let action = strings(&b, "action")?;
        let assets = strings(&b, "assets")?;
        let leads = ints(&b, "leads")?;
        let converted = ints(&b, "converted")?;
        let rate = floats(&b, "conversion_rate")?;
        let lift = floats(&b, "lift")?;
        for i in 0..b.num_rows() {
            out.push(ActionLift {
                rule: rule[i].unwrap_or(0),
                action: action[i].clone().unwrap_or_default(),
                assets: assets[i].clone(),
                leads: leads[i].unwrap_or(0) as u64,
                converted: converted[i].unwrap_or(0) as u64,
                conversion_rate: rate[i],
                lift: lift[i],
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODEL: &str = r#"# my model
name = "m"
version = 3
created = 2026-01-01  # first
notes = "old"
threshold = 100
stages = ["a", "b", "c"]

[[action]]
action = "x"
points = 15  # keep me
stage = "a"

[[action]]
action = "y"
assets = ["/p*"]
points = -10
stage = "b"

[[action]]
action = "z"
points = 3

[[action]]
action = "w"
points = 8
stage = "c"
"#;

    fn stages() -> Vec<StageTally> {
        [("a", 5.0), ("b", 3.0), ("c", 4.0)]
            .iter()
            .map(|(s, avg)| StageTally {
                stage: s.to_string(),
                converted_leads: 2,
                avg_tally: Some(*avg),
                points_per_action: Some(100.0 / 12.0),
            })
            .collect()
    }

    #[test]
    fn rounding_is_half_away_from_zero_and_at_least_one() {
        assert_eq!(rounded_points(100.0 / 12.0), 8);
        assert_eq!(rounded_points(8.5), 9);
        assert_eq!(rounded_points(8.49), 8);
        assert_eq!(rounded_points(0.4), 1);
        assert_eq!(rounded_points(0.0), 1);
    }

    #[test]
    fn the_proposal_edits_staged_positive_rules_and_keeps_the_rest() {
        let path = Path::new("m.toml");
        let model = Model::parse(MODEL, path).unwrap();
        let stages = stages();
        let p = Proposal {
            per_action: 100.0 / 12.0,
            stages: &stages,
            today: NaiveDate::from_ymd_opt(2026, 11, 22).unwrap(),
            from: Some(NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()),
            to: None,
            events: Path::new("ev"),
            outcomes: Path::new("out.parquet"),
        };
        let (text, points) = propose_model(MODEL, &model, &p).unwrap();
        assert_eq!(points, 8);
        let new = Model::parse(&text, path).unwrap();
        assert_eq!(new.version, 4);
        assert_eq!(new.created, Some(p.today));
        let pts: Vec<f64> = new.actions.iter().map(|r| r.points).collect();
        // staged positive -> 8; negative kept; unstaged kept.
        assert_eq!(pts, [8.0, -10.0, 3.0, 8.0]);
        assert!(text.contains("points = 8  # keep me"), "{text}");
        assert!(text.starts_with("# my model\n"), "{text}");
        assert!(text.contains("# first"), "{text}");
        for needle in [
            "2 converted leads",
            "in [2026-01-01, the end)",
            "a 5.00, b 3.00, c 4.00 (sum 12.00)",
            "100 / 12.00 = 8.33 -> 8 points",
            "rule 1 x 15 -> 8",
            "Version 3 notes: old",
        ] {
            assert!(new.notes.contains(needle), "{needle}: {}", new.notes);
        }
        assert!(!new.notes.contains("rule 4"), "{}", new.notes);
    }

    #[test]
    fn windows_must_not_be_backwards() {
        let d = |s| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert!(check_window(Some(d("2026-01-01")), Some(d("2026-02-01"))).is_ok());
        assert!(check_window(Some(d("2026-01-01")), Some(d("2026-01-01"))).is_err());
        assert!(check_window(None, Some(d("2026-01-01"))).is_ok());
    }
}
