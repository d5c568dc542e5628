//! `leadscore backfill`: scores every lead and account at many snapshot days in one pass over the
//! events, and publishes `lead_score_history` and `account_score_history` (hive-partitioned by
//! `as_of`) plus `rejects`.
//!
//! The queries are those of `score`, run over a table of snapshot days instead of one: each
//! lead's events are read and ordered once and `lead_fold` reports every snapshot from that walk,
//! so the cost grows with events + leads × snapshots. Each snapshot holds exactly the rows that
//! `score --as-of` that day gives.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::NaiveDate;

use crate::context::EngineOptions;
use crate::error::{Error, Result};
use crate::fold::Snapshots;
use crate::output::Staging;
use crate::pipeline::count;
use crate::queries::{BACKFILL_FOLD, BACKFILL_OUTPUTS, BACKFILL_PIPELINE};
use crate::score::{Inputs, refuse_rejects, reject_reasons};

/// The step between snapshot days.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Every {
    Day,
    Week,
}

impl Every {
    /// The step in days.
    pub fn days(self) -> u32 {
        match self {
            Every::Day => 1,
            Every::Week => 7,
        }
    }
}

impl std::str::FromStr for Every {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "day" => Ok(Every::Day),
            "week" => Ok(Every::Week),
            other => Err(Error::Usage(format!("--every {other:?}: use day or week"))),
        }
    }
}

/// What `backfill` needs.
#[derive(Clone, Debug)]
pub struct BackfillOptions {
    pub events: PathBuf,
    pub leads: Option<PathBuf>,
    pub model: PathBuf,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub every: Every,
    pub out: PathBuf,
    /// A directory whose `<name>.sql` files replace the shipped queries of the same name.
    pub queries: Option<PathBuf>,
    pub engine: EngineOptions,
    /// Fail (and publish nothing) when any row is rejected.
    pub strict: bool,
}

impl BackfillOptions {
    /// The snapshot days; an error when there are none.
    pub fn snapshots(&self) -> Result<Snapshots> {
        if self.from > self.to {
            return Err(Error::Usage(format!(
                "--from {} is after --to {}",
                self.from, self.to
            )));
        }
        Ok(Snapshots {
            from: self.from,
            to: self.to,
            every_days: self.every.days(),
        })
    }
}

/// What a `backfill` run did.
#[derive(Clone, Debug, Default)]
pub struct BackfillSummary {
    pub snapshots: usize,
    pub first: Option<NaiveDate>,
    pub last: Option<NaiveDate>,
    pub input_rows: u64,
    pub lead_rows: u64,
    pub account_rows: u64,
    pub rejects: u64,
    /// Rejected rows per reason, sorted by reason.
    pub reject_reasons: Vec<(String, u64)>,
    pub duplicates_dropped: u64,
    pub elapsed: Duration,
}

/// The tables `backfill` publishes.
pub const BACKFILL_TABLES: &[&str] = &["lead_score_history", "account_score_history", "rejects"];

/// Scores at every snapshot day and publishes the history tables into `opts.out`.
pub async fn backfill(opts: &BackfillOptions) -> Result<BackfillSummary> {
    let started = Instant::now();
    let snapshots = opts.snapshots()?;
    let inputs = Inputs::open(
        &opts.model,
        &opts.events,
        opts.leads.as_deref(),
        &opts.engine,
    )
    .await?;
    crate::delta::check_targets(&opts.out, BACKFILL_TABLES, opts.engine.format)?;
    let staging = Staging::new(&opts.out).await?;
    let mut pipeline = inputs.pipeline(
        &staging,
        opts.queries.as_deref(),
        &snapshots,
        false,
        &opts.engine,
        true,
    )?;
    // Under a memory bound, each lead's snapshot rows are emitted as its events end rather than
    // a partition's at once (see Template::set_fold_input).
    pipeline
        .template
        .set_fold_input(opts.engine.memory_limit.is_some());
    inputs.judge(&mut pipeline).await?;
    if pipeline.local_fold {
        inputs
            .fold_then(&mut pipeline, BACKFILL_FOLD, BACKFILL_OUTPUTS)
            .await?;
    } else {
        pipeline.run_all(BACKFILL_PIPELINE).await?;
    }

    let days = snapshots.days();
    pipeline.report_memory();
    let ctx = &inputs.ctx;
    let mut summary = BackfillSummary {
        snapshots: days.len(),
        first: days.first().copied(),
        last: days.last().copied(),
        input_rows: inputs.events.rows(),
        lead_rows: pipeline.rows("lead_scores"),
        account_rows: pipeline.rows("account_scores"),
        rejects: pipeline.rows("rejects"),
        duplicates_dropped: count(ctx, "select count(*) from duplicate_events where copy > 1")
            .await?,
        ..Default::default()
    };
    summary.reject_reasons = reject_reasons(ctx).await?;
    if opts.strict {
        refuse_rejects(summary.rejects, &summary.reject_reasons)?;
    }
    crate::delta::publish(ctx, staging, BACKFILL_TABLES, &[], opts.engine.format).await?;
    summary.elapsed = started.elapsed();
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_parses() {
        assert_eq!("week".parse::<Every>().unwrap().days(), 7);
        assert_eq!("day".parse::<Every>().unwrap().days(), 1);
        assert!("month".parse::<Every>().is_err());
    }
}
