//! `leadscore review`: several model versions side by side over the same window, judged by what
//! happened to their MQLs (docs/review.md), published as `model_review` and printed transposed, one
//! column per model.
//!
//! Duplicates are found once; each model then judges the events with its own rules, folds them
//! (every event up to the window's end, fit at that end) and runs `model_review.sql`, which gives
//! one row. The rows are written together, in the order the models were given.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{Days, NaiveDate};
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Date32Type, Float64Type, Int64Type};

use crate::context::EngineOptions;
use crate::error::{Error, Result};
use crate::fold::{MICROS_PER_DAY, Snapshots};
use crate::input;
use crate::model::Model;
use crate::output::Staging;
use crate::queries::{Kind, REVIEW_MODEL_PIPELINE, Template, duration_literal, string};
use crate::score::{Inputs, latest_event_day, provisional_day};
use crate::weights::check_window;

/// What `review` needs.
#[derive(Clone, Debug)]
pub struct ReviewOptions {
    pub events: PathBuf,
    pub leads: Option<PathBuf>,
    pub outcomes: PathBuf,
    /// The models to compare, in the order of the columns.
    pub models: Vec<PathBuf>,
    /// The window's first day; none: from the start of the data.
    pub from: Option<NaiveDate>,
    /// The day after the window; none: the day after the latest good event.
    pub to: Option<NaiveDate>,
    /// How long after becoming an MQL an opportunity still counts for it.
    pub window_days: u32,
    /// The day the review is made: `next_review` is the first review day on or after it.
    pub today: NaiveDate,
    pub out: PathBuf,
    pub queries: Option<PathBuf>,
    pub engine: EngineOptions,
}

/// One row of `model_review`.
#[derive(Clone, Debug, PartialEq)]
pub struct ReviewRow {
    pub name: String,
    pub version: i64,
    pub created: Option<NaiveDate>,
    pub notes: String,
    pub mqls: u64,
    pub mql_to_opportunity: Option<f64>,
    pub opportunity_coverage: Option<f64>,
    pub median_days_to_opportunity: Option<f64>,
    pub next_review: Option<NaiveDate>,
}

/// What a `review` run found.
#[derive(Clone, Debug, Default)]
pub struct ReviewSummary {
    pub rows: Vec<ReviewRow>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub input_rows: u64,
    pub elapsed: Duration,
}

/// The table `review` publishes.
pub const REVIEW_TABLES: &[&str] = &["model_review"];

/// Days from `created` to the first review, then between reviews.
pub const FIRST_REVIEW_DAYS: u64 = 60;
pub const REVIEW_EVERY_DAYS: u64 = 90;

/// The first review day on or after `today`: `created + 60 days`, then every 90 days.
pub fn next_review(created: NaiveDate, today: NaiveDate) -> NaiveDate {
    let first = created + Days::new(FIRST_REVIEW_DAYS);
    if first >= today {
        return first;
    }
    let late = (today - first).num_days() as u64;
    first + Days::new(late.div_ceil(REVIEW_EVERY_DAYS) * REVIEW_EVERY_DAYS)
}

fn date_literal(d: Option<NaiveDate>) -> String {
    d.map_or("cast(null as date)".into(), |d| format!("date '{d}'"))
}

/// Compares the models and publishes `model_review` into `opts.out`.
pub async fn review(opts: &ReviewOptions) -> Result<ReviewSummary> {
    let started = Instant::now();
    check_window(opts.from, opts.to)?;
    let Some(first) = opts.models.first() else {
        return Err(Error::Usage("review needs at least one --model".into()));
    };
    // Every model loads (and fits the leads table) before anything runs.
    let inputs = Inputs::open(first, &opts.events, opts.leads.as_deref(), &opts.engine).await?;
    let mut models = vec![inputs.model.clone()];
    for path in &opts.models[1..] {
        let model = Model::load(path)?;
        if let Some(leads) = &inputs.leads.path {
            model.check_fit_columns(&inputs.leads.columns, leads)?;
        }
        models.push(model);
    }
    input::register_outcomes(&inputs.ctx, &opts.outcomes, inputs.events.lead_id).await?;
    crate::delta::check_targets(&opts.out, REVIEW_TABLES, opts.engine.format)?;
    let staging = Staging::new(&opts.out).await?;
    let mut pipeline = inputs.pipeline(
        &staging,
        opts.queries.as_deref(),
        &Snapshots::one(provisional_day()),
        false,
        &opts.engine,
        false,
    )?;
    inputs.judge(&mut pipeline).await?;
    pipeline.run("opportunities", Kind::View).await?;
    let to = match opts.to {
        Some(d) => d,
        None => latest_event_day(&pipeline, &inputs.events).await? + Days::new(1),
    };
    // The fold's one snapshot is the window's last day: its cutoff is the start of `to`.
    let last_day = to - Days::new(1);

    let mut batches: Vec<RecordBatch> = Vec::new();
    for model in &models {
        let mut t = Template::for_model(model, &Snapshots::one(last_day), false);
        t.set_fit(model, inputs.leads.path.is_some());
        t.set_window(opts.from, Some(to));
        t.set(
            "window_span",
            duration_literal(i64::from(opts.window_days) * MICROS_PER_DAY as i64),
        );
        t.set(
            "micros_per_day",
            format!("cast({MICROS_PER_DAY:?} as double)"),
        );
        t.set("model_created", date_literal(model.created));
        t.set("model_notes", string(&model.notes));
        t.set(
            "next_review",
            date_literal(model.created.map(|c| next_review(c, opts.today))),
        );
        pipeline.template = t;
        pipeline.run_all(REVIEW_MODEL_PIPELINE).await?;
        batches.extend(pipeline.collect("model_review").await?);
    }
    let batches = same_schema(batches)?;
    let rows = review_rows(&batches)?;
    pipeline.write_batches("model_review", batches).await?;
    pipeline.report_memory();
    crate::delta::publish(&inputs.ctx, staging, REVIEW_TABLES, &[], opts.engine.format).await?;
    Ok(ReviewSummary {
        rows,
        from: opts.from,
        to: Some(to),
        input_rows: inputs.events.rows(),
        elapsed: started.elapsed(),
    })
}

/// The models' rows under one schema: the first row's types, every column nullable (a literal
/// such as a model's name is not null in one row's plan, `created` may be in another's).
fn same_schema(batches: Vec<RecordBatch>) -> Result<Vec<RecordBatch>> {
    let Some(first) = batches.first() else {
        return Ok(batches);
    };
    let schema = std::sync::Arc::new(datafusion::arrow::datatypes::Schema::new(
        first
            .schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect::<Vec<_>>(),
    ));
    batches
        .iter()
        .map(|b| {
            let columns = b
                .columns()
                .iter()
                .zip(schema.fields())
                .map(|(c, f)| cast(c, f.data_type()))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            Ok(RecordBatch::try_new(schema.clone(), columns)?)
        })
        .collect()
}

fn column<'a>(b: &'a RecordBatch, name: &str) -> Result<&'a datafusion::arrow::array::ArrayRef> {
    b.column_by_name(name).ok_or_else(|| Error::Query {
        name: "model_review".into(),
        message: format!("the query gives no column `{name}`"),
    })
}

/// The rows of `model_review` as collected.
fn review_rows(batches: &[RecordBatch]) -> Result<Vec<ReviewRow>> {
    let mut out = Vec::new();
    for b in batches {
        let text = |name| -> Result<_> { Ok(cast(column(b, name)?, &DataType::Utf8)?) };
        let int = |name| -> Result<_> { Ok(cast(column(b, name)?, &DataType::Int64)?) };
        let float = |name| -> Result<_> { Ok(cast(column(b, name)?, &DataType::Float64)?) };
        let date = |name| -> Result<_> { Ok(cast(column(b, name)?, &DataType::Date32)?) };
        let (name, notes) = (text("name")?, text("notes")?);
        let (version, mqls) = (int("version")?, int("mqls")?);
        let (ratio, coverage, median) = (
            float("mql_to_opportunity")?,
            float("opportunity_coverage")?,
            float("median_days_to_opportunity")?,
        );
        let (created, next) = (date("created")?, date("next_review")?);
        let f = |a: &datafusion::arrow::array::ArrayRef, i: usize| {
            a.is_valid(i)
                .then(|| a.as_primitive::<Float64Type>().value(i))
        };
        let d = |a: &datafusion::arrow::array::ArrayRef, i: usize| {
            a.is_valid(i)
                .then(|| a.as_primitive::<Date32Type>().value_as_date(i))
                .flatten()
        };
        for i in 0..b.num_rows() {
            out.push(ReviewRow {
                name: name.as_string::<i32>().value(i).to_string(),
                version: version.as_primitive::<Int64Type>().value(i),
                created: d(&created, i),
                notes: notes.as_string::<i32>().value(i).to_string(),
                mqls: mqls.as_primitive::<Int64Type>().value(i) as u64,
                mql_to_opportunity: f(&ratio, i),
                opportunity_coverage: f(&coverage, i),
                median_days_to_opportunity: f(&median, i),
                next_review: d(&next, i),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn reviews_come_60_days_after_creation_then_every_90() {
        let created = d("2026-09-01");
        assert_eq!(next_review(created, d("2026-09-01")), d("2026-10-31"));
        assert_eq!(next_review(created, d("2026-10-31")), d("2026-10-31"));
        assert_eq!(next_review(created, d("2026-11-01")), d("2027-01-29"));
        assert_eq!(next_review(created, d("2027-01-29")), d("2027-01-29"));
        assert_eq!(next_review(created, d("2027-01-30")), d("2027-04-29"));
        // A review day never lies before `today`, nor 90 days or more after it.
        for offset in 0..400 {
            let today = created + Days::new(offset);
            let next = next_review(created, today);
            assert!(next >= today && (next - today).num_days() < 90 || offset < 60);
        }
    }
}
