//! `leadscore score`: scores every lead and account as of one day (docs/scoring.md) and publishes
//! `lead_scores`, `lead_product_scores`, `account_scores`, `stage_report` and `rejects`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::TimestampMicrosecondType;
use datafusion::prelude::SessionContext;

use crate::context::{EngineOptions, session};
use crate::error::{Error, Result};
use crate::fold::Snapshots;
use crate::input::{self, EventsInput, LeadsInput};
use crate::lead_fold_exec::{FoldOptions, LeadIdRange, Rejected};
use crate::model::Model;
use crate::output::Staging;
use crate::pipeline::{Pipeline, count};
use crate::queries::{Kind, QuerySource, SCORE_OUTPUTS, SCORE_PIPELINE, Template, judge_pipeline};

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
        let range = lead_id_range(&ctx, &events).await?;
        let inputs = Inputs {
            ctx,
            model,
            events,
            leads,
        };
        inputs.set_fold_options(|o| o.range = range);
        Ok(inputs)
    }

    /// A pipeline over these inputs writing into `staging`, with the queries of `queries` (if
    /// given) over the shipped ones, the template for `snapshots`, and progress bars.
    /// `fold_rejects`: the command's rejected rows may come from its fold (`score` and
    /// `backfill`, whose `lead_activity` sees every row; see [`Inputs::fold_then`]).
    pub fn pipeline<'a>(
        &'a self,
        staging: &'a Staging,
        queries: Option<&std::path::Path>,
        snapshots: &Snapshots,
        products: bool,
        engine: &EngineOptions,
        fold_rejects: bool,
    ) -> Result<Pipeline<'a>> {
        let mut source = QuerySource::new(queries)?;
        let local_fold = fold_rejects
            && engine.cluster.is_none()
            && engine.memory_limit.is_none()
            && !["lead_activity", "rejects"]
                .iter()
                .any(|q| source.overrides(q));
        match (self.events.event_id, local_fold) {
            (None, true) => source.run_from("duplicate_events", "no_duplicate_events"),
            (None, false) => source.run_from("rare_events", "suspect_events"),
            (Some(_), true) => source.run_from("rare_events", "copy_events"),
            (Some(_), false) => {}
        }
        if !repeated_keys_fit(self.events.rows(), engine.memory_limit) {
            source.run_from("repeated_keys", "repeated_keys_grouped");
        }
        let mut pipeline = Pipeline::new(
            &self.ctx,
            source,
            self.template(snapshots, products),
            staging,
            engine,
        )
        .with_progress(&self.events.path, self.events.rows());
        pipeline.local_fold = local_fold;
        Ok(pipeline)
    }

    /// Finds copies (and, unless the fold lists them, suspect rows) in these events: without
    /// an `event_id` column there are no copies, so no repeated keys to find; when the fold
    /// lists the rejects and no key repeats, nothing reads the events for copies after the keys.
    pub async fn judge(&self, pipeline: &mut Pipeline<'_>) -> Result<()> {
        let copies = self.events.event_id.is_some();
        let suspects = !pipeline.local_fold;
        let shipped = !["rare_events", "duplicate_events"]
            .iter()
            .any(|q| pipeline.source.overrides(q));
        if !copies || suspects || !shipped {
            return pipeline.run_all(&judge_pipeline(copies, suspects)).await;
        }
        let queries = judge_pipeline(true, false);
        let (first, rest) = queries.split_at(1);
        pipeline.run_all(first).await?;
        // The keys end with one null key (repeated_keys.sql): only that one, and no row is a
        // copy of another.
        let keys = pipeline.written.last().map_or(0, |(_, rows)| *rows);
        if keys > 1 {
            return pipeline.run_all(rest).await;
        }
        pipeline
            .source
            .run_from("duplicate_events", "no_duplicate_events");
        pipeline.run_all(&judge_pipeline(false, false)).await
    }

    /// Runs `before` (whose queries fold the leads, `lead_activity` among them) with a place for
    /// the rows the fold rejects, registers those rows as `judged_rare_events` (what
    /// `rejects.sql` reads), and runs `after`. Without a local fold, the pipeline judged the
    /// suspect rows beforehand: `before` and `after` simply run in turn.
    pub async fn fold_then(
        &self,
        pipeline: &mut Pipeline<'_>,
        before: &[(&str, Kind)],
        after: &[(&str, Kind)],
    ) -> Result<()> {
        if !pipeline.local_fold {
            pipeline.run_all(before).await?;
            return pipeline.run_all(after).await;
        }
        let rejected: Rejected = Default::default();
        self.set_fold_options(|o| o.rejected = Some(Arc::clone(&rejected)));
        let ran = pipeline.run_all(before).await;
        self.set_fold_options(|o| o.rejected = None);
        ran?;
        let rows = rejected
            .lock()
            .map_err(|_| Error::Internal("the fold's rejected rows were lost".into()))?
            .take()
            .ok_or_else(|| {
                Error::Internal(
                    "lead_activity was not folded by the local fold, which lists the rejected \
                     rows"
                        .into(),
                )
            })?;
        let table = datafusion::datasource::MemTable::try_new(rows.schema(), vec![vec![rows]])?;
        let _ = self.ctx.deregister_table("judged_rare_events")?;
        self.ctx
            .register_table("judged_rare_events", Arc::new(table))?;
        pipeline.run_all(after).await
    }

    /// Changes the session's options for the local fold.
    fn set_fold_options(&self, change: impl FnOnce(&mut FoldOptions)) {
        let state = self.ctx.state_ref();
        let mut state = state.write();
        let extensions = &mut state.config_mut().options_mut().extensions;
        let mut options = extensions.get::<FoldOptions>().cloned().unwrap_or_default();
        change(&mut options);
        extensions.insert(options);
    }

    /// The scoring template for the snapshot days of `snapshots`; `products` asks for the
    /// per-product folds.
    pub fn template(&self, snapshots: &Snapshots, products: bool) -> Template {
        let mut t = Template::for_model(&self.model, snapshots, products);
        t.set_fit(&self.model, self.leads.path.is_some());
        t
    }
}

/// The range of integer lead ids over the events and the leads table, from the files'
/// statistics when they have them (no scan): the local fold's parts are ranges of it (see
/// `lead_fold_exec`). `None` for text ids.
async fn lead_id_range(ctx: &SessionContext, events: &EventsInput) -> Result<Option<LeadIdRange>> {
    use datafusion::arrow::datatypes::Int64Type;
    if events.lead_id != input::IdKind::Int {
        return Ok(None);
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
    Ok((lo <= hi).then_some(LeadIdRange {
        lo,
        hi,
        rows: events.rows(),
    }))
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
    if opts.engine.timings {
        eprintln!("inputs: {:.3} s", started.elapsed().as_secs_f64());
    }
    crate::delta::check_targets(&opts.out, SCORE_TABLES, opts.engine.format)?;
    let staging = Staging::new(&opts.out).await?;
    let mut pipeline = inputs.pipeline(
        &staging,
        opts.queries.as_deref(),
        &Snapshots::one(provisional_day()),
        true,
        &opts.engine,
        true,
    )?;

    // Duplicates and judging do not depend on the cutoff: run them once, find the day if needed.
    inputs.judge(&mut pipeline).await?;
    let as_of = match opts.as_of {
        Some(d) => d,
        None => latest_event_day(&pipeline, &inputs.events).await?,
    };
    pipeline.template = inputs.template(&Snapshots::one(as_of), true);
    if pipeline.local_fold {
        inputs
            .fold_then(
                &mut pipeline,
                &[("lead_activity", Kind::Step)],
                SCORE_OUTPUTS,
            )
            .await?;
    } else {
        pipeline.run_all(SCORE_PIPELINE).await?;
    }

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
