//! `leadscore score`: scores every lead and account as of one day (SPEC §4) and publishes
//! `lead_scores`, `lead_product_scores`, `account_scores`, `stage_report` and `rejects`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::TimestampMicrosecondType;
use datafusion::prelude::SessionContext;

use crate::context::{EngineOptions, session};
use crate::error::{Error, Result};
use crate::fold::Snapshots;
use crate::input::{self, EventsInput, LeadsInput};
use crate::model::Model;
use crate::output::Staging;
use crate::pipeline::{Pipeline, count};
use crate::queries::{JUDGE_PIPELINE, QuerySource, SCORE_PIPELINE, Template};

/// What `score` needs.
#[derive(Clone, Debug)]
pub struct ScoreOptions {
    pub events: PathBuf,
    pub leads: Option<PathBuf>,
    pub model: PathBuf,
    pub as_of: Option<NaiveDate>,
    pub out: PathBuf,
    /// A directory whose `<name>.sql` files replace the shipped queries of the same name.
    pub queries: Option<PathBuf>,
    pub engine: EngineOptions,
    /// Fail (and publish nothing) when any row is rejected.
    pub strict: bool,
}

/// What a `score` run did, for the summary line and for tests.
#[derive(Clone, Debug, Default)]
pub struct ScoreSummary {
    pub as_of: Option<NaiveDate>,
    pub input_rows: u64,
    pub leads: u64,
    pub mqls: u64,
    pub accounts: u64,
    pub rejects: u64,
    /// Rejected rows per reason, sorted by reason.
    pub reject_reasons: Vec<(String, u64)>,
    pub unmatched: u64,
    pub duplicates_dropped: u64,
    pub elapsed: Duration,
}

/// The tables `score` publishes.
pub const SCORE_TABLES: &[&str] = &[
    "lead_scores",
    "lead_product_scores",
    "account_scores",
    "stage_report",
    "rejects",
];

/// A far-future day used to plan the queries that must run before the real cutoff is known.
pub fn provisional_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(9999, 12, 30).expect("valid date")
}

/// Loads and checks everything a scoring run reads, and registers it in a new session.
pub struct Inputs {
    pub ctx: SessionContext,
    pub model: Model,
    pub events: EventsInput,
    pub leads: LeadsInput,
    /// The fold's `lead_bits` for these inputs (see [`lead_bits`]).
    pub lead_bits: u32,
}

impl Inputs {
    /// Checks the model and the inputs (nothing runs yet) and registers `events` and `leads`.
    pub async fn open(
        model: &std::path::Path,
        events: &std::path::Path,
        leads: Option<&std::path::Path>,
        engine: &EngineOptions,
    ) -> Result<Inputs> {
        let model = Model::load(model)?;
        let events = input::inspect_events(events).await?;
        let mut ctx = session(engine)?;
        if let Some(cluster) = &engine.cluster {
            ctx = crate::cluster::client_session(cluster, &ctx).await?;
        }
        input::register_events(&ctx, &events).await?;
        let leads =
            input::register_leads(&ctx, leads, events.lead_id, engine.memory_limit.is_none())
                .await?;
        if let Some(path) = &leads.path {
            model.check_fit_columns(&leads.columns, path)?;
        }
        let lead_bits = lead_bits(&ctx, &events, engine).await?;
        Ok(Inputs {
            ctx,
            model,
            events,
            leads,
            lead_bits,
        })
    }

    /// A pipeline over these inputs writing into `staging`, with the queries of `queries` (if
    /// given) over the shipped ones, the template for `snapshots`, and progress bars.
    pub fn pipeline<'a>(
        &'a self,
        staging: &'a Staging,
        queries: Option<&std::path::Path>,
        snapshots: &Snapshots,
        products: bool,
        engine: &EngineOptions,
    ) -> Result<Pipeline<'a>> {
        let mut source = QuerySource::new(queries)?;
        if !repeated_keys_fit(self.events.rows(), engine.memory_limit) {
            source.run_from("repeated_keys", "repeated_keys_grouped");
        }
        Ok(Pipeline::new(
            &self.ctx,
            source,
            self.template(snapshots, products),
            staging,
            engine,
        )
        .with_progress(&self.events.path, self.events.rows()))
    }

    /// The scoring template for the snapshot days of `snapshots`; `products` asks for the
    /// per-product folds.
    pub fn template(&self, snapshots: &Snapshots, products: bool) -> Template {
        let mut t = Template::for_model(&self.model, snapshots, products);
        t.set_fit(&self.model, self.leads.path.is_some());
        t.set_lead_bits(self.lead_bits);
        t
    }
}

/// How many low bits of an integer lead id the fold's buckets span when the ids are dense.
pub const LEAD_BITS: u32 = 8;

/// The fold's `lead_bits` (`udf::lead_buckets`): [`LEAD_BITS`] for integer lead ids spanning
/// (lowest to highest, over events and leads) at most a quarter of the event rows, or 65,536, so
/// that the fold's room per possible lead stays a few bytes per row; 0 (a group per lead) for
/// text ids, wider spans, and under a memory limit, where a backfill's rows come sorted by lead
/// and each lead's group ends as its rows do. The bounds come from the files' statistics when
/// they have them (no scan).
async fn lead_bits(
    ctx: &SessionContext,
    events: &EventsInput,
    engine: &EngineOptions,
) -> Result<u32> {
    use datafusion::arrow::datatypes::Int64Type;
    if events.lead_id != input::IdKind::Int || engine.memory_limit.is_some() {
        return Ok(0);
    }
    let (mut lo, mut hi) = (i64::MAX, i64::MIN);
    for table in ["events", "leads"] {
        let sql = format!("select min(lead_id), max(lead_id) from {table}");
        for batch in ctx.sql(&sql).await?.collect().await? {
            let (min, max) = (
                batch.column(0).as_primitive::<Int64Type>(),
                batch.column(1).as_primitive::<Int64Type>(),
            );
            for i in 0..batch.num_rows() {
                if min.is_valid(i) && max.is_valid(i) {
                    lo = lo.min(min.value(i));
                    hi = hi.max(max.value(i));
                }
            }
        }
    }
    if lo > hi {
        return Ok(0);
    }
    let span = i128::from(hi) - i128::from(lo) + 1;
    let room = (i128::from(events.rows()) / 4).max(1 << 16);
    Ok(if span <= room { LEAD_BITS } else { 0 })
}

/// Whether `repeated_keys` (which holds 8 bytes per row and sorts them with as many again, and
/// cannot spill) fits comfortably in the memory limit, if any; when not, the grouping query that
/// spills runs instead.
fn repeated_keys_fit(rows: u64, memory_limit: Option<usize>) -> bool {
    memory_limit.is_none_or(|limit| rows.saturating_mul(24) <= limit as u64 / 2)
}

/// The day of the latest good event (the default `--as-of`).
pub async fn latest_event_day(pipeline: &Pipeline<'_>, events: &EventsInput) -> Result<NaiveDate> {
    let batches = pipeline.collect("latest_event").await?;
    let latest = batches
        .iter()
        .find(|b| b.num_rows() > 0)
        .map(|b| b.column(0).clone())
        .filter(|c| c.is_valid(0))
        .map(|c| c.as_primitive::<TimestampMicrosecondType>().value(0));
    match latest.and_then(DateTime::from_timestamp_micros) {
        Some(t) => Ok(t.date_naive()),
        None => Err(Error::input(
            &events.path,
            "has no good events, so there is no default --as-of day: pass --as-of",
        )),
    }
}

/// Scores as of one day and publishes the tables into `opts.out`.
pub async fn score(opts: &ScoreOptions) -> Result<ScoreSummary> {
    let started = Instant::now();
    let inputs = Inputs::open(
        &opts.model,
        &opts.events,
        opts.leads.as_deref(),
        &opts.engine,
    )
    .await?;
    crate::delta::check_targets(&opts.out, SCORE_TABLES, opts.engine.format)?;
    let staging = Staging::new(&opts.out).await?;
    let mut pipeline = inputs.pipeline(
        &staging,
        opts.queries.as_deref(),
        &Snapshots::one(provisional_day()),
        true,
        &opts.engine,
    )?;

    // Duplicates and judging do not depend on the cutoff: run them once, find the day if needed.
    pipeline.run_all(JUDGE_PIPELINE).await?;
    let as_of = match opts.as_of {
        Some(d) => d,
        None => latest_event_day(&pipeline, &inputs.events).await?,
    };
    pipeline.template = inputs.template(&Snapshots::one(as_of), true);
    pipeline.run_all(SCORE_PIPELINE).await?;

    pipeline.report_memory();
    let ctx = &inputs.ctx;
    let mut summary = ScoreSummary {
        as_of: Some(as_of),
        input_rows: inputs.events.rows(),
        leads: pipeline.rows("lead_scores"),
        accounts: pipeline.rows("account_scores"),
        rejects: pipeline.rows("rejects"),
        mqls: count(ctx, "select count(*) from lead_scores where is_mql").await?,
        unmatched: count(ctx, "select sum(unmatched_events) from lead_activity").await?,
        duplicates_dropped: count(ctx, "select count(*) from duplicate_events where copy > 1")
            .await?,
        ..Default::default()
    };
    summary.reject_reasons = reject_reasons(ctx).await?;
    if opts.strict {
        refuse_rejects(summary.rejects, &summary.reject_reasons)?;
    }
    crate::delta::publish(ctx, staging, SCORE_TABLES, &[], opts.engine.format).await?;
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// The `--strict` check: an error naming the count per reason when any row was rejected.
pub fn refuse_rejects(rejects: u64, reasons: &[(String, u64)]) -> Result<()> {
    if rejects == 0 {
        return Ok(());
    }
    Err(Error::Strict {
        count: rejects,
        summary: reasons
            .iter()
            .map(|(r, n)| format!("{n} {r}"))
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// Rejected rows per reason.
pub async fn reject_reasons(ctx: &SessionContext) -> Result<Vec<(String, u64)>> {
    let batches = ctx
        .sql("select reason, count(*) as n from rejects group by reason order by reason")
        .await?
        .collect()
        .await?;
    let mut out = Vec::new();
    for b in batches {
        let reasons = datafusion::arrow::compute::cast(
            b.column(0),
            &datafusion::arrow::datatypes::DataType::Utf8,
        )?;
        let reasons = reasons.as_string::<i32>();
        let n = b
            .column(1)
            .as_primitive::<datafusion::arrow::datatypes::Int64Type>();
        for i in 0..b.num_rows() {
            out.push((reasons.value(i).to_string(), n.value(i) as u64));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_keys_need_48_bytes_a_row_of_the_limit() {
        assert!(repeated_keys_fit(u64::MAX, None));
        assert!(repeated_keys_fit(1_000_000, Some(48_000_000)));
        assert!(!repeated_keys_fit(1_000_001, Some(48_000_000)));
        // The CI memory test: 1M rows under 32 MB takes the grouping query.
        assert!(!repeated_keys_fit(1_000_000, Some(32 << 20)));
    }
}
