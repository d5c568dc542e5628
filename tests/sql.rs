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
//! ```
//!
//! After `LEADSCORE SCORE`, the published tables (`lead_scores`, `account_scores`, ...) can be
//! queried by name. Floats print with at most 9 decimals, nulls as `NULL`.
//!
//! Set `LEADSCORE_SLT_COMPLETE=1` to rewrite the expected results (then review the diff).

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::arrow::util::display::array_value_to_string;
use datafusion::prelude::*;
use leadscore::context::{EngineOptions, session};
use leadscore::score::{SCORE_TABLES, ScoreOptions, score};
use sqllogictest::{DBOutput, DefaultColumnType};

struct Db {
    ctx: SessionContext,
    dir: tempfile::TempDir,
    model: Option<PathBuf>,
    events: Option<PathBuf>,
    leads: Option<PathBuf>,
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
            model: None,
            events: None,
            leads: None,
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
            ["LEADSCORE", "MODEL"] => {
                let path = self.dir.path().join("model.toml");
                std::fs::write(&path, rest).map_err(err)?;
                self.model = Some(path);
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
                self.runs += 1;
                let out = self.dir.path().join(format!("out{}", self.runs));
                let opts = ScoreOptions {
                    events: self
                        .events
                        .clone()
                        .ok_or_else(|| err("no LEADSCORE EVENTS yet"))?,
                    leads: self.leads.clone(),
                    model: self
                        .model
                        .clone()
                        .ok_or_else(|| err("no LEADSCORE MODEL yet"))?,
                    as_of,
                    out: out.clone(),
                    queries: None,
                    engine: engine(),
                    strict: false,
                };
                score(&opts).await.map_err(err)?;
                for table in SCORE_TABLES {
                    let _ = self.ctx.deregister_table(*table);
                    let dir = format!("{}/", out.join(table).display());
                    self.ctx
                        .register_parquet(*table, &dir, ParquetReadOptions::default())
                        .await
                        .map_err(err)?;
                }
            }
            _ => return Err(err(format!("unknown command: {first}"))),
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
