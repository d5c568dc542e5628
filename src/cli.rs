//! The command line: flags (documented where they are defined), defaults, and the short reports
//! each command prints. Each command's work lives in its own module; this one only wires them up.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand};

use crate::backfill::{BackfillOptions, BackfillSummary, Every, backfill};
use crate::cluster::{Cluster, ExecutorOptions, SchedulerOptions, run_executor, run_scheduler};
use crate::context::{EngineOptions, parse_size};
use crate::delta::Format;
use crate::error::{Error, Result};
use crate::generate::{GenerateOptions, IdType, LeadsFormat, generate};
use crate::query::{QueryOptions, QueryResult, query};
use crate::report::{ReportOptions, report};
use crate::review::{ReviewOptions, ReviewSummary, review};
use crate::score::{ScoreOptions, ScoreSummary, score};
use crate::serve::{ServeOptions, serve};
use crate::weights::{WeightsOptions, WeightsSummary, weights};

/// Exact, reproducible lead and account scoring over marketing activity logs.
#[derive(Debug, Parser)]
#[command(name = "leadscore", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Score every lead and account as of one day (with no arguments: the shipped fixtures).
    Score(ScoreArgs),
    /// Score every lead and account at every day (or week) of a range, in one pass: writes
    /// lead_score_history and account_score_history, partitioned by as_of.
    Backfill(BackfillArgs),
    /// Derive the points of staged actions from converted leads (the "equal split"): writes
    /// stage_tallies, stage_tally_trend, action_lift and proposed_model.toml.
    Weights(WeightsArgs),
    /// Compare model versions by what happened to their MQLs: writes model_review and prints it
    /// with one column per model.
    Review(ReviewArgs),
    /// Write deterministic, realistic synthetic events, leads and outcomes.
    Generate(GenerateArgs),
    /// Run read-only SQL over the tables of a directory (Parquet or Delta, as the other commands
    /// write them), with leadscore's functions; print the result or write it to a file.
    Query(QueryArgs),
    /// Write one self-contained HTML report (charts as inline SVG) from the tables of a
    /// directory.
    Report(ReportArgs),
    /// Serve the tables of a directory over Arrow Flight SQL (read-only), for BI tools.
    Serve(ServeArgs),
    /// Run a Ballista scheduler that knows leadscore's functions (for --cluster).
    Scheduler(SchedulerArgs),
    /// Run a Ballista executor with leadscore's functions, attached to a scheduler.
    Executor(ExecutorArgs),
}

/// `leadscore scheduler`.
#[derive(Debug, Args)]
pub struct SchedulerArgs {
    /// Address to listen on for clients and executors.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:50050")]
    pub bind: std::net::SocketAddr,
    /// An executor not heard from for this long is taken as lost: the jobs running then are
    /// cancelled (their commands fail, leaving --out as it was). Keep it a few times the
    /// executors' --heartbeat.
    #[arg(long, value_name = "SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(2..))]
    pub executor_timeout: u64,
}

/// `leadscore executor`.
#[derive(Debug, Args)]
pub struct ExecutorArgs {
    /// The scheduler to join, HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    pub scheduler: String,
    /// Tasks this executor runs at once (default: all cores).
    #[arg(long, value_name = "N")]
    pub slots: Option<usize>,
    /// Address to listen on for shuffle data (its gRPC port is the next one).
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:50051")]
    pub bind: std::net::SocketAddr,
    /// The host name the scheduler and other executors reach this one by (default: the bind
    /// address).
    #[arg(long, value_name = "HOST")]
    pub external_host: Option<String>,
    /// Where shuffle files go (default: a temporary directory).
    #[arg(long, value_name = "DIR", value_parser = local_path)]
    pub work_dir: Option<PathBuf>,
    /// Seconds between the heartbeats that tell the scheduler this executor is alive; keep it
    /// well under the scheduler's --executor-timeout.
    #[arg(long, value_name = "SECONDS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    pub heartbeat: u64,
}

/// `leadscore serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A directory of tables, as for `query`.
    #[arg(long, value_name = "DIR", value_parser = local_path)]
    pub tables: PathBuf,
    /// Address to listen on (loopback by default; 0.0.0.0:50051 to accept other machines).
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:50051")]
    pub addr: std::net::SocketAddr,
    /// The token clients must send (as a bearer token, or as the password of basic auth).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "LEADSCORE_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// Accept clients without any token (only on a trusted network).
    #[arg(long)]
    pub insecure: bool,
    /// Parallelism per query (default: all cores).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Bound the engine's memory, e.g. 2GB.
    #[arg(long, value_name = "SIZE", value_parser = parse_size_arg)]
    pub memory_limit: Option<usize>,
    /// Print nothing but errors.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `leadscore report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The directory the scoring commands wrote (lead_scores is required; account_scores,
    /// lead_product_scores, stage_report, lead_score_history and model_review are used when
    /// there).
    #[arg(long, value_name = "DIR", value_parser = local_path)]
    pub tables: PathBuf,
    /// The HTML file to write.
    #[arg(long, value_name = "FILE", value_parser = local_path)]
    pub out: PathBuf,
    /// The model file the tables were scored with: marks its exact MQL threshold and orders the
    /// stages (without it, the lowest MQL score and the tally columns' order are used).
    #[arg(long, value_name = "FILE", value_parser = local_path)]
    pub model: Option<PathBuf>,
    /// Print nothing but errors.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `leadscore query`.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// A directory of tables: each subdirectory (Parquet files, hive partitions allowed, or a
    /// Delta table) is a table of that name.
    #[arg(long, value_name = "DIR", value_parser = local_path)]
    pub tables: PathBuf,
    /// One SELECT (or WITH ... SELECT, EXPLAIN, DESCRIBE, SHOW TABLES).
    #[arg(value_name = "SQL")]
    pub sql: String,
    /// Write the result to FILE.parquet or FILE.csv instead of printing it.
    #[arg(long, value_name = "FILE", value_parser = local_path)]
    pub out: Option<PathBuf>,
    /// Parallelism (default: all cores).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Bound the engine's memory, e.g. 2GB; sorts and aggregations spill to disk past it.
    #[arg(long, value_name = "SIZE", value_parser = parse_size_arg)]
    pub memory_limit: Option<usize>,
    /// Print nothing but the result (no row count).
    #[arg(long, short)]
    pub quiet: bool,
}

/// `leadscore generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Number of leads.
    #[arg(long, value_name = "N")]
    pub leads: u64,
    /// Number of good events (a few broken and duplicate rows come on top, about 0.1%).
    #[arg(long, value_name = "N")]
    pub events: u64,
    /// Number of accounts (default: one per 12 leads).
    #[arg(long, value_name = "N")]
    pub accounts: Option<u64>,
    /// Random seed: the same seed gives the same bytes.
    #[arg(long, value_name = "S", default_value_t = 42)]
    pub seed: u64,
    /// Output directory (its events/ must not exist yet or be empty).
    #[arg(long, value_name = "DIR", value_parser = local_path)]
    pub out: PathBuf,
    /// Type of lead_id: int (Int64) or text ("L0000042").
    #[arg(long, value_name = "TYPE", default_value = "int", value_parser = parse_id_type)]
    pub id_type: IdType,
    /// Format of the leads table: parquet or csv.
    #[arg(long, value_name = "FORMAT", default_value = "parquet", value_parser = parse_leads_format)]
    pub leads_format: LeadsFormat,
    /// Write events in hive directories by month (events/month=2026-01/...).
    #[arg(long)]
    pub partition_by_month: bool,
    /// Start a new events file after this many rows.
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    pub rows_per_file: usize,
    /// Last day of activity.
    #[arg(long, value_name = "DATE", value_parser = parse_day, default_value = "2026-09-30")]
    pub end: NaiveDate,
    /// Days of history before --end.
    #[arg(long, value_name = "N", default_value_t = 730)]
    pub days: u32,
    /// Print nothing but errors.
    #[arg(long, short)]
    pub quiet: bool,
}

fn parse_id_type(s: &str) -> std::result::Result<IdType, String> {
    s.parse().map_err(|e: Error| e.to_string())
}

fn parse_leads_format(s: &str) -> std::result::Result<LeadsFormat, String> {
    s.parse().map_err(|e: Error| e.to_string())
}

impl GenerateArgs {
    fn options(&self) -> GenerateOptions {
        GenerateOptions {
            leads: self.leads,
            events: self.events,
            accounts: self.accounts,
            seed: self.seed,
            out: self.out.clone(),
            id_type: self.id_type,
            leads_format: self.leads_format,
            partition_by_month: self.partition_by_month,
            rows_per_file: self.rows_per_file,
            end: self.end,
            days: self.days,
            progress: !self.quiet,
        }
    }
}

/// Settings of the query engine, shared by the commands that run queries.
#[derive(Debug, Clone, Args)]
pub struct EngineArgs {
    /// Parallelism: how many partitions to run at once (default: all cores).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Bound the engine's memory, e.g. 2GB or 512MB; sorts and aggregations spill to disk past it.
    #[arg(long, value_name = "SIZE", value_parser = parse_size_arg)]
    pub memory_limit: Option<usize>,
    /// Directory for spill files (default: the system's temporary directory).
    #[arg(long, value_name = "DIR", value_parser = local_path)]
    pub spill_dir: Option<PathBuf>,
    /// Run the query files of DIR (`<name>.sql`) instead of the shipped ones of the same name.
    #[arg(long, value_name = "DIR", value_parser = local_path)]
    pub queries: Option<PathBuf>,
    /// Print nothing but errors.
    #[arg(long, short)]
    pub quiet: bool,
    /// Print each query's wall time to stderr as it finishes.
    #[arg(long)]
    pub timings: bool,
    /// Print the physical plan of query NAME (e.g. lead_activity) with each operator's rows and
    /// time; the query runs once more for it.
    #[arg(long, value_name = "NAME")]
    pub explain: Option<String>,
    /// Format of the published tables: parquet (a directory of files per table) or delta (a
    /// Delta Lake table per table; a rerun adds a version).
    #[arg(long, value_name = "FORMAT", default_value = "parquet", value_parser = parse_format)]
    pub format: Format,
    /// Run the queries on a Ballista cluster: df://HOST:PORT (its scheduler), or standalone (a
    /// scheduler and an executor inside this process). --out must be reachable by the executors
    /// at the same path (a shared filesystem), as must the inputs.
    #[arg(long, value_name = "URL", value_parser = parse_cluster)]
    pub cluster: Option<Cluster>,
}

fn parse_cluster(s: &str) -> std::result::Result<Cluster, String> {
    s.parse().map_err(|e: Error| e.to_string())
}

fn parse_format(s: &str) -> std::result::Result<Format, String> {
    s.parse().map_err(|e: Error| e.to_string())
}

fn parse_size_arg(s: &str) -> std::result::Result<usize, String> {
    parse_size(s).map_err(|e| e.to_string())
}

fn parse_day(s: &str) -> std::result::Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| format!("{s:?} is not a date like 2026-09-30"))
}

impl EngineArgs {
    fn engine(&self) -> EngineOptions {
        EngineOptions {
            threads: self.threads.unwrap_or(0),
            memory_limit: self.memory_limit,
            spill_dir: self.spill_dir.clone(),
            timings: self.timings,
            explain: self.explain.clone(),
            progress: !self.quiet,
            format: self.format,
            cluster: self.cluster.clone(),
            ..EngineOptions::default()
        }
    }
}

/// `leadscore score`.
#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// Events: a Parquet file or a directory of them (hive partitions allowed).
    #[arg(long, value_name = "PATH", value_parser = data_path)]
    pub events: Option<PathBuf>,
    /// Leads: a Parquet or CSV file with lead_id, account_id and attribute columns.
    #[arg(long, value_name = "PATH", value_parser = data_path)]
    pub leads: Option<PathBuf>,
    /// The model file (TOML).
    #[arg(long, value_name = "FILE", value_parser = local_path)]
    pub model: Option<PathBuf>,
    /// Score as of the end of this day (UTC); default: the day of the latest event.
    #[arg(long, value_name = "DATE", value_parser = parse_day)]
    pub as_of: Option<NaiveDate>,
    /// Output directory; its tables are replaced only when the whole run succeeds.
    #[arg(long, value_name = "DIR", value_parser = data_path)]
    pub out: Option<PathBuf>,
    /// Fail, publishing nothing, when any input row is rejected.
    #[arg(long)]
    pub strict: bool,
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// Where `score` with no arguments finds its inputs.
pub const FIXTURES: &str = "fixtures";

impl ScoreArgs {
    fn options(&self) -> Result<ScoreOptions> {
        let bare = self.events.is_none()
            && self.leads.is_none()
            && self.model.is_none()
            && self.out.is_none();
        let (events, leads, model, out) = if bare {
            let dir = Path::new(FIXTURES);
            if !dir.join("model.toml").exists() {
                return Err(Error::Usage(format!(
                    "with no arguments, score reads ./{FIXTURES}/ (events/, leads.csv, model.toml), which is not here; \
                     pass --events, --model and --out"
                )));
            }
            (
                dir.join("events"),
                Some(dir.join("leads.csv")).filter(|p| p.exists()),
                dir.join("model.toml"),
                PathBuf::from("out"),
            )
        } else {
            match (&self.events, &self.model, &self.out) {
                (Some(events), Some(model), Some(out)) => (
                    events.clone(),
                    self.leads.clone(),
                    model.clone(),
                    out.clone(),
                ),
                _ => {
                    let missing: Vec<&str> = [
                        ("--events", self.events.is_none()),
                        ("--model", self.model.is_none()),
                        ("--out", self.out.is_none()),
                    ]
                    .iter()
                    .filter(|(_, m)| *m)
                    .map(|(n, _)| *n)
                    .collect();
                    return Err(Error::Usage(format!(
                        "score needs {} (or no arguments at all, to score ./{FIXTURES}/)",
                        missing.join(", ")
                    )));
                }
            }
        };
        Ok(ScoreOptions {
            events,
            leads,
            model,
            as_of: self.as_of,
            out,
            queries: self.engine.queries.clone(),
            engine: self.engine.engine(),
            strict: self.strict,
        })
    }
}

/// `leadscore backfill`.
#[derive(Debug, Args)]
pub struct BackfillArgs {
    /// Events: a Parquet file or a directory of them (hive partitions allowed).
    #[arg(long, value_name = "PATH", value_parser = data_path)]
    pub events: PathBuf,
    /// Leads: a Parquet or CSV file with lead_id, account_id and attribute columns.
    #[arg(long, value_name = "PATH", value_parser = data_path)]
    pub leads: Option<PathBuf>,
    /// The model file (TOML).
    #[arg(long, value_name = "FILE", value_parser = local_path)]
    pub model: PathBuf,
    /// The first snapshot day.
    #[arg(long, value_name = "DATE", value_parser = parse_day)]
    pub from: NaiveDate,
    /// The last snapshot day (included when it falls on the step).
    #[arg(long, value_name = "DATE", value_parser = parse_day)]
    pub to: NaiveDate,
    /// The step between snapshot days: day or week.
    #[arg(long, value_name = "STEP", default_value = "day", value_parser = parse_every)]
    pub every: Every,
    /// Output directory; its tables are replaced only when the whole run succeeds.
    #[arg(long, value_name = "DIR", value_parser = data_path)]
    pub out: PathBuf,
    /// Fail, publishing nothing, when any input row is rejected.
    #[arg(long)]
    pub strict: bool,
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// `leadscore weights`.
#[derive(Debug, Args)]
pub struct WeightsArgs {
    /// Events: a Parquet file or a directory of them (hive partitions allowed).
    #[arg(long, value_name = "PATH", value_parser = data_path)]
    pub events: PathBuf,
    /// Outcomes: a Parquet or CSV file with lead_id and opportunity_at.
    #[arg(long, value_name = "PATH", value_parser = data_path)]
    pub outcomes: PathBuf,
    /// The model file (TOML) whose rules judge the events and whose points are revised.
    #[arg(long, value_name = "FILE", value_parser = local_path)]
    pub model: PathBuf,
    /// Only leads whose opportunity_at is on or after this day count as converted.
    #[arg(long, value_name = "DATE", value_parser = parse_day)]
    pub from: Option<NaiveDate>,
    /// Only leads whose opportunity_at is before this day count as converted.
    #[arg(long, value_name = "DATE", value_parser = parse_day)]
    pub to: Option<NaiveDate>,
    /// The date of this revision, written as the proposed model's `created` (default: today, UTC).
    #[arg(long, value_name = "DATE", value_parser = parse_day)]
    pub today: Option<NaiveDate>,
    /// Output directory; its tables are replaced only when the whole run succeeds.
    #[arg(long, value_name = "DIR", value_parser = data_path)]
    pub out: PathBuf,
    /// Fail, publishing nothing, when any input row is rejected.
    #[arg(long)]
    pub strict: bool,
    #[command(flatten)]
    pub engine: EngineArgs,
}

fn today_utc() -> NaiveDate {
    chrono::Utc::now().date_naive()
}

impl WeightsArgs {
    fn options(&self) -> WeightsOptions {
        WeightsOptions {
            events: self.events.clone(),
            outcomes: self.outcomes.clone(),
            model: self.model.clone(),
            from: self.from,
            to: self.to,
            today: self.today.unwrap_or_else(today_utc),
            out: self.out.clone(),
            queries: self.engine.queries.clone(),
            engine: self.engine.engine(),
            strict: self.strict,
        }
    }
}

/// `leadscore review`.
#[derive(Debug, Args)]
pub struct ReviewArgs {
    /// Events: a Parquet file or a directory of them (hive partitions allowed).
    #[arg(long, value_name = "PATH", value_parser = data_path)]
    pub events: PathBuf,
    /// Leads: a Parquet or CSV file with lead_id, account_id and attribute columns.
    #[arg(long, value_name = "PATH", value_parser = data_path)]
    pub leads: Option<PathBuf>,
    /// Outcomes: a Parquet or CSV file with lead_id and opportunity_at.
    #[arg(long, value_name = "PATH", value_parser = data_path)]
    pub outcomes: PathBuf,
    /// A model file (TOML); repeat to compare versions side by side, in this order.
    #[arg(long, value_name = "FILE", required = true, value_parser = local_path)]
    pub model: Vec<PathBuf>,
    /// The window's first day (default: the start of the data).
    #[arg(long, value_name = "DATE", value_parser = parse_day)]
    pub from: Option<NaiveDate>,
    /// The day after the window (default: the day after the latest good event).
    #[arg(long, value_name = "DATE", value_parser = parse_day)]
    pub to: Option<NaiveDate>,
    /// Days after becoming an MQL within which an opportunity counts for it.
    #[arg(long, value_name = "N", default_value_t = 90)]
    pub window_days: u32,
    /// The day of the review: next_review is the first review day on or after it (default:
    /// today, UTC).
    #[arg(long, value_name = "DATE", value_parser = parse_day)]
    pub today: Option<NaiveDate>,
    /// Output directory; its tables are replaced only when the whole run succeeds.
    #[arg(long, value_name = "DIR", value_parser = data_path)]
    pub out: PathBuf,
    #[command(flatten)]
    pub engine: EngineArgs,
}

impl ReviewArgs {
    fn options(&self) -> ReviewOptions {
        ReviewOptions {
            events: self.events.clone(),
            leads: self.leads.clone(),
            outcomes: self.outcomes.clone(),
            models: self.model.clone(),
            from: self.from,
            to: self.to,
            window_days: self.window_days,
            today: self.today.unwrap_or_else(today_utc),
            out: self.out.clone(),
            queries: self.engine.queries.clone(),
            engine: self.engine.engine(),
        }
    }
}

fn parse_every(s: &str) -> std::result::Result<Every, String> {
    s.parse().map_err(|e: Error| e.to_string())
}

impl BackfillArgs {
    fn options(&self) -> BackfillOptions {
        BackfillOptions {
            events: self.events.clone(),
            leads: self.leads.clone(),
            model: self.model.clone(),
            from: self.from,
            to: self.to,
            every: self.every,
            out: self.out.clone(),
            queries: self.engine.queries.clone(),
            engine: self.engine.engine(),
            strict: self.strict,
        }
    }
}

/// `1234567` as `1,234,567`.
pub(crate) fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn reasons_text(reasons: &[(String, u64)]) -> String {
    if reasons.is_empty() {
        return String::new();
    }
    format!(
        " ({})",
        reasons
            .iter()
            .map(|(r, n)| format!("{} {r}", thousands(*n)))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn print_backfill_summary(s: &BackfillSummary, every: Every, out: &Path) {
    let day = |d: Option<NaiveDate>| d.map_or("?".to_string(), |d| d.to_string());
    eprintln!(
        "backfilled {} {} snapshots ({} to {}): {} lead rows, {} account rows from {} input rows",
        s.snapshots,
        match every {
            Every::Day => "daily",
            Every::Week => "weekly",
        },
        day(s.first),
        day(s.last),
        thousands(s.lead_rows),
        thousands(s.account_rows),
        thousands(s.input_rows)
    );
    eprintln!(
        "{} rows rejected{}, {} duplicate rows dropped",
        thousands(s.rejects),
        reasons_text(&s.reject_reasons),
        thousands(s.duplicates_dropped)
    );
    eprintln!(
        "wrote {} in {:.2} s",
        out.display(),
        s.elapsed.as_secs_f64()
    );
}

fn print_score_summary(s: &ScoreSummary, out: &Path) {
    let as_of = s.as_of.map_or("?".to_string(), |d| d.to_string());
    eprintln!(
        "scored as of {as_of}: {} leads, {} MQLs, {} accounts from {} input rows",
        thousands(s.leads),
        thousands(s.mqls),
        thousands(s.accounts),
        thousands(s.input_rows)
    );
    let reasons = reasons_text(&s.reject_reasons);
    eprintln!(
        "{} rows rejected{reasons}, {} unmatched events, {} duplicate rows dropped",
        thousands(s.rejects),
        thousands(s.unmatched),
        thousands(s.duplicates_dropped)
    );
    eprintln!(
        "wrote {} in {:.2} s",
        out.display(),
        s.elapsed.as_secs_f64()
    );
}

/// A table of text cells with a header row, columns padded to their widest cell; numeric
/// columns (`right[i]`) are aligned right.
fn text_table(header: &[String], rows: &[Vec<String>], right: &[bool]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let parts: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let pad = " ".repeat(widths[i] - c.chars().count());
                if right.get(i).copied().unwrap_or(false) {
                    format!("{pad}{c}")
                } else {
                    format!("{c}{pad}")
                }
            })
            .collect();
        parts.join("  ").trim_end().to_string()
    };
    let mut out = line(header) + "\n";
    for row in rows {
        out.push_str(&line(row));
        out.push('\n');
    }
    out
}

fn opt_float(v: Option<f64>, decimals: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.decimals$}"))
}

fn print_weights(s: &WeightsSummary, out: &Path) {
    let header = ["stage", "converted leads", "avg tally", "points per action"].map(String::from);
    let rows: Vec<Vec<String>> = s
        .stages
        .iter()
        .map(|t| {
            vec![
                t.stage.clone(),
                thousands(t.converted_leads),
                opt_float(t.avg_tally, 2),
                match (t.points_per_action, s.points) {
                    (Some(p), Some(r)) => format!("{p:.2} -> {r}"),
                    (p, _) => opt_float(p, 2),
                },
            ]
        })
        .collect();
    print!("{}", text_table(&header, &rows, &[false, true, true, true]));

    let mut ranked: Vec<_> = s.lift.iter().filter(|r| r.lift.is_some()).collect();
    ranked.sort_by(|a, b| {
        b.lift
            .partial_cmp(&a.lift)
            .expect("no NaN")
            .then(a.rule.cmp(&b.rule))
    });
    let shown = 3.min(ranked.len() / 2).max(ranked.len().min(1));
    let lift_rows = |rules: &[&crate::weights::ActionLift]| -> Vec<Vec<String>> {
        rules
            .iter()
            .map(|r| {
                vec![
                    r.rule.to_string(),
                    match &r.assets {
                        Some(a) => format!("{} [{a}]", r.action),
                        None => r.action.clone(),
                    },
                    thousands(r.leads),
                    opt_float(r.conversion_rate.map(|x| x * 100.0), 1) + " %",
                    opt_float(r.lift, 2),
                ]
            })
            .collect()
    };
    let header = ["rule", "action", "leads", "conversion", "lift"].map(String::from);
    let align = [true, false, true, true, true];
    if !ranked.is_empty() {
        println!("\ntop rules by lift:");
        print!(
            "{}",
            text_table(&header, &lift_rows(&ranked[..shown]), &align)
        );
        let bottom: Vec<_> = ranked[ranked.len() - shown..]
            .iter()
            .rev()
            .copied()
            .collect();
        if ranked.len() > shown {
            println!("\nbottom rules by lift:");
            print!("{}", text_table(&header, &lift_rows(&bottom), &align));
        }
    }
    eprintln!(
        "{} rows rejected{}, {} duplicate rows dropped",
        thousands(s.rejects),
        reasons_text(&s.reject_reasons),
        thousands(s.duplicates_dropped)
    );
    match &s.proposed_model {
        Some(p) => eprintln!(
            "wrote {} and {} in {:.2} s",
            out.display(),
            p.display(),
            s.elapsed.as_secs_f64()
        ),
        None => eprintln!(
            "no converted leads (an opportunity after a staged action) in the window: no \
             proposed model; wrote {} in {:.2} s",
            out.display(),
            s.elapsed.as_secs_f64()
        ),
    }
}

/// The review, transposed: one row per metric, one column per model.
fn print_review(s: &ReviewSummary, out: &Path) {
    let mut header = vec![String::from("metric")];
    header.extend(s.rows.iter().map(|r| format!("{} v{}", r.name, r.version)));
    let metric = |name: &str, f: &dyn Fn(&crate::review::ReviewRow) -> String| {
        let mut row = vec![name.to_string()];
        row.extend(s.rows.iter().map(f));
        row
    };
    let day = |d: Option<NaiveDate>| d.map_or("-".to_string(), |d| d.to_string());
    let short = |t: &str| {
        if t.chars().count() > 40 {
            t.chars().take(39).collect::<String>() + "…"
        } else {
            t.to_string()
        }
    };
    let rows = vec![
        metric("created", &|r| day(r.created)),
        metric("MQLs", &|r| thousands(r.mqls)),
        metric("MQL -> opportunity", &|r| {
            opt_float(r.mql_to_opportunity.map(|x| x * 100.0), 1) + " %"
        }),
        metric("opportunity coverage", &|r| {
            opt_float(r.opportunity_coverage.map(|x| x * 100.0), 1) + " %"
        }),
        metric("median days to opportunity", &|r| {
            opt_float(r.median_days_to_opportunity, 1)
        }),
        metric("next review", &|r| day(r.next_review)),
        metric("notes", &|r| short(&r.notes)),
    ];
    let mut right = vec![false];
    right.extend(s.rows.iter().map(|_| true));
    println!(
        "window: [{}, {})",
        s.from.map_or("start".to_string(), |d| d.to_string()),
        day(s.to)
    );
    print!("{}", text_table(&header, &rows, &right));
    eprintln!(
        "reviewed {} model(s) over {} input rows; wrote {} in {:.2} s",
        s.rows.len(),
        thousands(s.input_rows),
        out.display(),
        s.elapsed.as_secs_f64()
    );
}

/// Logging for the cluster processes: Ballista's own messages at `info` (jobs, stages, executors
/// coming and going), or what `RUST_LOG` says.
fn init_cluster_log() {
    let env = env_logger::Env::default().default_filter_or("info,datafusion=warn");
    let _ = env_logger::Builder::from_env(env).try_init();
}

/// Runs one parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Score(args) => {
            let opts = args.options()?;
            let summary = score(&opts).await?;
            if !args.engine.quiet {
                print_score_summary(&summary, &opts.out);
            }
            Ok(())
        }
        Command::Backfill(args) => {
            let opts = args.options();
            let summary = backfill(&opts).await?;
            if !args.engine.quiet {
                print_backfill_summary(&summary, args.every, &opts.out);
            }
            Ok(())
        }
        Command::Weights(args) => {
            let opts = args.options();
            let summary = weights(&opts).await?;
            if !args.engine.quiet {
                print_weights(&summary, &opts.out);
            }
            Ok(())
        }
        Command::Review(args) => {
            let opts = args.options();
            let summary = review(&opts).await?;
            if !args.engine.quiet {
                print_review(&summary, &opts.out);
            }
            Ok(())
        }
        Command::Query(args) => {
            let opts = QueryOptions {
                tables: args.tables.clone(),
                sql: args.sql.clone(),
                out: args.out.clone(),
                engine: EngineOptions {
                    threads: args.threads.unwrap_or(0),
                    memory_limit: args.memory_limit,
                    ..EngineOptions::default()
                },
            };
            match query(&opts).await? {
                QueryResult::Rows(batches) => {
                    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
                    println!(
                        "{}",
                        datafusion::arrow::util::pretty::pretty_format_batches(&batches)?
                    );
                    if !args.quiet {
                        eprintln!("{} row(s)", thousands(rows as u64));
                    }
                }
                QueryResult::Written(path, rows) => {
                    if !args.quiet {
                        eprintln!("wrote {} row(s) to {}", thousands(rows), path.display());
                    }
                }
            }
            Ok(())
        }
        Command::Scheduler(args) => {
            init_cluster_log();
            eprintln!(
                "leadscore scheduler listening on {} (clients: --cluster df://{}); Ctrl-C stops",
                args.bind, args.bind
            );
            run_scheduler(&SchedulerOptions {
                bind: args.bind,
                executor_timeout: args.executor_timeout,
            })
            .await
        }
        Command::Executor(args) => {
            init_cluster_log();
            let slots = args
                .slots
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            eprintln!(
                "leadscore executor on {} with {slots} slot(s), joining the scheduler at {}; \
                 Ctrl-C stops",
                args.bind, args.scheduler
            );
            run_executor(&ExecutorOptions {
                scheduler: args.scheduler.clone(),
                slots,
                bind: args.bind,
                external_host: args.external_host.clone(),
                work_dir: args.work_dir.as_ref().map(|p| p.display().to_string()),
                heartbeat: args.heartbeat,
            })
            .await
        }
        Command::Serve(args) => {
            let token = match (&args.token, args.insecure) {
                (Some(t), _) if t.is_empty() => {
                    return Err(Error::Usage("--token must not be empty".into()));
                }
                (Some(t), _) => Some(t.clone()),
                (None, true) => None,
                (None, false) => {
                    return Err(Error::Usage(
                        "serve needs --token TOKEN (or LEADSCORE_TOKEN) that clients must send; \
                         --insecure serves without one"
                            .into(),
                    ));
                }
            };
            let opts = ServeOptions {
                tables: args.tables.clone(),
                addr: args.addr,
                token,
                engine: EngineOptions {
                    threads: args.threads.unwrap_or(0),
                    memory_limit: args.memory_limit,
                    ..EngineOptions::default()
                },
            };
            let quiet = args.quiet;
            let secured = opts.token.is_some();
            serve(&opts, |addr, tables| {
                if !quiet {
                    let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
                    eprintln!(
                        "serving {} table(s) ({}) over Flight SQL at grpc://{addr}, read-only, {}; \
                         Ctrl-C stops",
                        names.len(),
                        names.join(", "),
                        if secured {
                            "token required"
                        } else {
                            "NO TOKEN (--insecure)"
                        }
                    );
                }
            })
            .await
        }
        Command::Report(args) => {
            let opts = ReportOptions {
                tables: args.tables.clone(),
                out: args.out.clone(),
                model: args.model.clone(),
                engine: EngineOptions::default(),
            };
            let s = report(&opts).await?;
            if !args.quiet {
                eprintln!(
                    "wrote {} ({} KB): {} leads; {}",
                    args.out.display(),
                    s.bytes.div_ceil(1024),
                    thousands(s.leads),
                    s.sections.join(", ")
                );
            }
            Ok(())
        }
        Command::Generate(args) => {
            let started = std::time::Instant::now();
            let opts = args.options();
            let s = tokio::task::spawn_blocking(move || generate(&opts))
                .await
                .map_err(|e| Error::Config(format!("the generator stopped: {e}")))??;
            if !args.quiet {
                eprintln!(
                    "generated {} events ({} broken and {} duplicate rows on top) for {} leads in {} accounts; {} converted",
                    thousands(s.events),
                    thousands(s.bad_rows),
                    thousands(s.duplicate_rows),
                    thousands(s.leads),
                    thousands(s.accounts),
                    thousands(s.converted_leads)
                );
                eprintln!(
                    "wrote {} events file(s), leads and outcomes to {} in {:.2} s",
                    s.files,
                    args.out.display(),
                    started.elapsed().as_secs_f64()
                );
            }
            Ok(())
        }
    }
}

/// An input or `--out` of the scoring commands: a local (or mounted) path, or an `s3://` URL
/// (see `storage`); other schemes are refused.
fn data_path(value: &str) -> std::result::Result<PathBuf, String> {
    match crate::storage::scheme_of(value) {
        Some(scheme) if crate::storage::SCHEMES.contains(&scheme) => {
            crate::storage::url_of(std::path::Path::new(value))
                .filter(|u| u.host_str().is_some_and(|h| !h.is_empty()))
                .map(|_| PathBuf::from(value))
                .ok_or_else(|| format!("{value:?} is not a valid URL: use {scheme}://BUCKET/KEY"))
        }
        Some(scheme) => Err(format!(
            "{scheme}:// URLs are not supported: use s3://BUCKET/KEY or a local path"
        )),
        None => Ok(PathBuf::from(value)),
    }
}

/// A path flag's value: a local (or mounted) path. Object-store URLs such as `s3://bucket/key`
/// are refused with a pointer to what works, rather than taken as a directory named `s3:`.
fn local_path(value: &str) -> std::result::Result<PathBuf, String> {
    match crate::storage::scheme_of(value) {
        Some(scheme) => Err(format!(
            "{scheme}:// URLs are not supported here: give a local path (the scoring \
             commands' inputs and --out take s3:// URLs; see docs/cluster.md)"
        )),
        None => Ok(PathBuf::from(value)),
    }
}
