//! SQL behaviour, tested with sqllogictest files in `tests/slt/`.
//!
//! Plain statements and queries run in a session with leadscore's functions registered. A few
//! `LEADSCORE ...` statements drive the real scoring pipeline on tables built in the file itself:
//!
//! ```text
//! statement ok
//! LEADSCORE MODEL
//! name = "t"
//! version = 1
//! threshold = 100            (the model file, up to the blank line that ends the statement)
//!
//! statement ok
//! LEADSCORE EVENTS <table>   (written to Parquet and read back as the events input)
//!
//! statement ok
//! LEADSCORE LEADS <table>    (written to CSV and read back as the leads input)
//!
//! statement ok
//! LEADSCORE SCORE [AS OF 2026-01-31]
//!
//! statement ok
//! LEADSCORE OUTCOMES <table> (written to CSV and read back as the outcomes input)
//!
//! statement ok
//! LEADSCORE WEIGHTS [FROM 2026-01-01] [TO 2026-07-01]
//!
//! statement ok
//! LEADSCORE MODEL ALSO       (another model, for REVIEW; `LEADSCORE MODEL` starts the list anew)
//!
//! statement ok
//! LEADSCORE REVIEW [FROM d] [TO d] TODAY d
//! ```
//!
//! After `LEADSCORE SCORE`, `WEIGHTS` or `REVIEW`, the published tables (`lead_scores`,
//! `stage_tallies`, `model_review`, ...) can be queried by name; after `WEIGHTS`, the rules of
//! `proposed_model.toml` are the table `proposed_rules` (rule, action, points, stage, version),
//! absent when no model was proposed. Floats print with at most 9 decimals, nulls as `NULL`.
//!
//! Set `LEADSCORE_SLT_COMPLETE=1` to rewrite the expected results (then review the diff).

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::arrow::util::display::array_value_to_string;
use datafusion::prelude::*;
use leadscore::context::{EngineOptions, session};
use leadscore::review::{REVIEW_TABLES, ReviewOptions, review};
use leadscore::score::{SCORE_TABLES, ScoreOptions, score};
use leadscore::weights::{PROPOSED_MODEL, WEIGHTS_TABLES, WeightsOptions, weights};
use sqllogictest::{DBOutput, DefaultColumnType};

struct Db {
    ctx: SessionContext,
    dir: tempfile::TempDir,
    models: Vec<PathBuf>,
    events: Option<PathBuf>,
    leads: Option<PathBuf>,
    outcomes: Option<PathBuf>,
    runs: usize,
}

#[derive(Debug)]
struct DbError(String);

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DbError {}

fn err(e: impl std::fmt::Display) -> DbError {
    DbError(e.to_string())
}

fn engine() -> EngineOptions {
    EngineOptions {
        threads: 2,
        batch_size: 4,
        ..EngineOptions::default()
    }
}

impl Db {
    fn new() -> Self {
        Self {
            ctx: session(&engine()).expect("session"),
            dir: tempfile::tempdir().expect("tempdir"),
            models: Vec::new(),
            events: None,
            leads: None,
            outcomes: None,
            runs: 0,
        }
    }

    async fn copy_table(&self, table: &str, file: &Path, format: &str) -> Result<(), DbError> {
        let sql = format!(
            "COPY (select * from {table}) TO '{}' STORED AS {format}{}",
            file.display(),
            if format == "CSV" {
                " OPTIONS ('format.has_header' 'true')"
            } else {
                ""
            }
        );
        self.ctx
            .sql(&sql)
            .await
            .map_err(err)?
            .collect()
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn leadscore(&mut self, command: &str) -> Result<(), DbError> {
        let (first, rest) = command.split_once('\n').unwrap_or((command, ""));
        let words: Vec<&str> = first.split_whitespace().collect();
        match words.as_slice() {
            ["LEADSCORE", "MODEL", tail @ ..] => {
                if tail != ["ALSO"] {
                    self.models.clear();
                }
                let path = self
                    .dir
                    .path()
                    .join(format!("model{}.toml", self.models.len() + 1));
                std::fs::write(&path, rest).map_err(err)?;
                self.models.push(path);
            }
            ["LEADSCORE", "OUTCOMES", table] => {
                let path = self.dir.path().join(format!("{table}.csv"));
                self.copy_table(table, &path, "CSV").await?;
                self.outcomes = Some(path);
            }
            ["LEADSCORE", "WEIGHTS", tail @ ..] => {
                let days = Days::parse(tail)?;
                let out = self.next_out();
                let opts = WeightsOptions {
                    events: self.events()?,
                    outcomes: self.outcomes()?,
                    model: self.model()?,
                    from: days.from,
                    to: days.to,
                    today: days
                        .today
                        .unwrap_or_else(|| day("2026-11-22").expect("date")),
                    out: out.clone(),
                    queries: None,
                    engine: engine(),
                    strict: false,
                };
                weights(&opts).await.map_err(err)?;
                self.register_tables(&out, WEIGHTS_TABLES).await?;
                let _ = self.ctx.deregister_table("proposed_rules");
                let proposed = out.join(PROPOSED_MODEL);
                if proposed.exists() {
                    let m = leadscore::model::Model::load(&proposed).map_err(err)?;
                    let rows: Vec<String> = m
                        .actions
                        .iter()
                        .enumerate()
                        .map(|(i, r)| {
                            format!(
                                "({}, '{}', {:?}, {}, {})",
                                i + 1,
                                r.action,
                                r.points,
                                r.stage
                                    .as_deref()
                                    .map_or("null".into(), |s| format!("'{s}'")),
                                m.version
                            )
                        })
                        .collect();
                    let sql = format!(
                        "create view proposed_rules as select column1 as rule, column2 as action, \
                         column3 as points, column4 as stage, column5 as version from (values {})",
                        rows.join(", ")
                    );
                    self.ctx
                        .sql(&sql)
                        .await
                        .map_err(err)?
                        .collect()
                        .await
                        .map_err(err)?;
                }
            }
            ["LEADSCORE", "REVIEW", tail @ ..] => {
                let days = Days::parse(tail)?;
                let out = self.next_out();
                let opts = ReviewOptions {
                    events: self.events()?,
                    leads: self.leads.clone(),
                    outcomes: self.outcomes()?,
                    models: self.models.clone(),
                    from: days.from,
                    to: days.to,
                    window_days: 90,
                    today: days.today.ok_or_else(|| err("REVIEW needs TODAY"))?,
                    out: out.clone(),
                    queries: None,
                    engine: engine(),
                };
                review(&opts).await.map_err(err)?;
                self.register_tables(&out, REVIEW_TABLES).await?;
            }
            ["LEADSCORE", "EVENTS", table] => {
                let path = self.dir.path().join(format!("{table}.parquet"));
                self.copy_table(table, &path, "PARQUET").await?;
                self.events = Some(path);
            }
            ["LEADSCORE", "LEADS", table] => {
                let path = self.dir.path().join(format!("{table}.csv"));
                self.copy_table(table, &path, "CSV").await?;
                self.leads = Some(path);
            }
            ["LEADSCORE", "SCORE", tail @ ..] => {
                let as_of = match tail {
                    [] => None,
                    ["AS", "OF", day] => {
                        Some(chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").map_err(err)?)
                    }
                    _ => return Err(err(format!("bad LEADSCORE SCORE: {first}"))),
                };
                let out = self.next_out();
                let opts = ScoreOptions {
                    events: self.events()?,
                    leads: self.leads.clone(),
                    model: self.model()?,
                    as_of,
                    out: out.clone(),
                    queries: None,
                    engine: engine(),
                    strict: false,
                };
                score(&opts).await.map_err(err)?;
                self.register_tables(&out, SCORE_TABLES).await?;
            }
            _ => return Err(err(format!("unknown command: {first}"))),
        }
        Ok(())
    }
}

/// The `FROM d`, `TO d` and `TODAY d` words of a LEADSCORE command.
#[derive(Default)]
struct Days {
    from: Option<chrono::NaiveDate>,
    to: Option<chrono::NaiveDate>,
    today: Option<chrono::NaiveDate>,
}

fn day(s: &str) -> Result<chrono::NaiveDate, DbError> {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(err)
}

impl Days {
    fn parse(words: &[&str]) -> Result<Days, DbError> {
        let mut days = Days::default();
        for pair in words.chunks(2) {
            match pair {
                ["FROM", d] => days.from = Some(day(d)?),
                ["TO", d] => days.to = Some(day(d)?),
                ["TODAY", d] => days.today = Some(day(d)?),
                _ => return Err(err(format!("expected FROM/TO/TODAY <day>, got {pair:?}"))),
            }
        }
        Ok(days)
    }
}

impl Db {
    fn next_out(&mut self) -> PathBuf {
        self.runs += 1;
        self.dir.path().join(format!("out{}", self.runs))
    }

    fn events(&self) -> Result<PathBuf, DbError> {
        self.events
            .clone()
            .ok_or_else(|| err("no LEADSCORE EVENTS yet"))
    }

    fn outcomes(&self) -> Result<PathBuf, DbError> {
        self.outcomes
            .clone()
            .ok_or_else(|| err("no LEADSCORE OUTCOMES yet"))
    }

    fn model(&self) -> Result<PathBuf, DbError> {
        self.models
            .first()
            .cloned()
            .ok_or_else(|| err("no LEADSCORE MODEL yet"))
    }

    /// Registers the published `tables` of `out` by name, replacing earlier ones.
    async fn register_tables(&self, out: &Path, tables: &[&str]) -> Result<(), DbError> {
        for table in tables {
            let _ = self.ctx.deregister_table(*table);
            let dir = format!("{}/", out.join(table).display());
            self.ctx
                .register_parquet(*table, &dir, ParquetReadOptions::default())
                .await
                .map_err(err)?;
        }
        Ok(())
    }
}

fn cell(array: &ArrayRef, row: usize) -> Result<String, DbError> {
    if array.is_null(row) {
        return Ok("NULL".into());
    }
    Ok(match array.data_type() {
        DataType::Float64 => {
            let v = array.as_primitive::<Float64Type>().value(row);
            let s = format!("{v:.9}");
            let s = s.trim_end_matches('0').trim_end_matches('.');
            if s == "-0" { "0".into() } else { s.to_string() }
        }
        _ => {
            let s = array_value_to_string(array, row).map_err(err)?;
            if s.is_empty() { "(empty)".into() } else { s }
        }
    })
}

#[async_trait]
impl sqllogictest::AsyncDB for Db {
    type Error = DbError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<Self::ColumnType>, Self::Error> {
        let sql = sql.trim();
        if sql.starts_with("LEADSCORE") {
            self.leadscore(sql).await?;
            return Ok(DBOutput::StatementComplete(0));
        }
        let df = self.ctx.sql(sql).await.map_err(err)?;
        let is_query = sql.to_ascii_lowercase().starts_with("select")
            || sql.to_ascii_lowercase().starts_with("with")
            || sql.to_ascii_lowercase().starts_with("values");
        let batches = df.collect().await.map_err(err)?;
        if !is_query {
            return Ok(DBOutput::StatementComplete(0));
        }
        let mut rows = Vec::new();
        let mut width = 0;
        for b in &batches {
            width = b.num_columns();
            for r in 0..b.num_rows() {
                rows.push(
                    b.columns()
                        .iter()
                        .map(|c| cell(c, r))
                        .collect::<Result<Vec<_>, _>>()?,
                );
            }
        }
        Ok(DBOutput::Rows {
            types: vec![DefaultColumnType::Any; width],
            rows,
        })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "leadscore"
    }
}

fn slt_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slt");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/slt exists")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqllogictest_files() {
    let complete = std::env::var_os("LEADSCORE_SLT_COMPLETE").is_some();
    let mut failures = Vec::new();
    let files = slt_files();
    assert!(!files.is_empty());
    for file in &files {
        let mut runner = sqllogictest::Runner::new(|| async { Ok(Db::new()) });
        let result = if complete {
            runner
                .update_test_file(
                    file,
                    " ",
                    sqllogictest::default_validator,
                    sqllogictest::default_normalizer,
                    sqllogictest::default_column_validator,
                )
                .await
                .map_err(|e| e.to_string())
        } else {
            runner
                .run_file_async(file)
                .await
                .map_err(|e| e.display(true).to_string())
        };
        if let Err(e) = result {
            failures.push(format!("{}:\n{e}", file.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} files failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n\n")
    );
}
