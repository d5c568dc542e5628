//! `leadscore query`: ad-hoc, read-only SQL over the published tables of a directory, with
//! leadscore's functions available. Results print as a table, or go to a Parquet or CSV file.

use std::path::{Path, PathBuf};

use datafusion::arrow::array::RecordBatch;
use datafusion::dataframe::{DataFrame, DataFrameWriteOptions};
use datafusion::execution::context::SQLOptions;
use datafusion::prelude::SessionContext;

use crate::context::{EngineOptions, session};
use crate::error::{Error, Result};
use crate::tables::{TableInfo, register_tables};

/// What `query` needs.
#[derive(Clone, Debug)]
pub struct QueryOptions {
    pub tables: PathBuf,
    pub sql: String,
    /// Write the result here (`.parquet` or `.csv`) instead of printing it.
    pub out: Option<PathBuf>,
    pub engine: EngineOptions,
}

/// What a query gave.
#[derive(Debug)]
pub enum QueryResult {
    /// The rows, to print (at least one batch, so that an empty result still has its columns).
    Rows(Vec<RecordBatch>),
    /// The rows were written to this file; the count.
    Written(PathBuf, u64),
}

/// SQL options that allow reading only: no DDL (CREATE, DROP, ...), no DML (INSERT, COPY, ...),
/// no statements (SET, ...).
pub fn read_only() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

/// A session with leadscore's functions and every table under `dir` registered.
pub async fn tables_session(
    dir: &Path,
    engine: &EngineOptions,
) -> Result<(SessionContext, Vec<TableInfo>)> {
    let ctx = session(engine)?;
    let tables = register_tables(&ctx, dir).await?;
    Ok((ctx, tables))
}

/// Plans `sql` read-only.
pub async fn plan_read_only(ctx: &SessionContext, sql: &str) -> Result<DataFrame> {
    ctx.sql_with_options(sql, read_only())
        .await
        .map_err(|e| Error::Config(sql_message(&e)))
}

/// What went wrong with a user's SQL, saying so plainly when it tried to change something.
pub fn sql_message(e: &datafusion::error::DataFusionError) -> String {
    let text = e.to_string();
    if [
        "DDL not supported",
        "DML not supported",
        "Statement not supported",
    ]
    .iter()
    .any(|s| text.contains(s))
    {
        format!(
            "SQL: refused, the tables are read-only: only queries run here (SELECT, WITH, \
             EXPLAIN, DESCRIBE, SHOW); CREATE, INSERT, COPY, SET and the like do not ({})",
            text.trim_start_matches("Error during planning: ")
        )
    } else {
        format!("SQL: {text}")
    }
}

/// Runs the query.
pub async fn query(opts: &QueryOptions) -> Result<QueryResult> {
    let out_kind = match &opts.out {
        None => None,
        Some(p) => Some(OutKind::of(p)?),
    };
    let (ctx, _) = tables_session(&opts.tables, &opts.engine).await?;
    let df = plan_read_only(&ctx, &opts.sql).await?;
    let run_error = |e: datafusion::error::DataFusionError| Error::Config(sql_message(&e));
    let (Some(out), Some(kind)) = (&opts.out, out_kind) else {
        let schema = std::sync::Arc::new(df.schema().as_arrow().clone());
        let mut batches = df.collect().await.map_err(run_error)?;
        if batches.is_empty() {
            batches.push(RecordBatch::new_empty(schema));
        }
        return Ok(QueryResult::Rows(batches));
    };
    // Written next to the target and renamed into place, so a failed query leaves no half file.
    let dir = out.parent().filter(|p| !p.as_os_str().is_empty());
    let dir = dir.unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".leadscore-query-")
        .tempdir_in(dir)
        .map_err(|e| Error::io(format!("creating a file in {}", dir.display()), e))?;
    let file = tmp.path().join(out.file_name().unwrap_or_default());
    let path = file.to_string_lossy().to_string();
    let options = DataFrameWriteOptions::new().with_single_file_output(true);
    let written = match kind {
        OutKind::Parquet => df.write_parquet(&path, options, None).await,
        OutKind::Csv => df.write_csv(&path, options, None).await,
    }
    .map_err(run_error)?;
    let rows = crate::pipeline::first_count(&written)?;
    std::fs::rename(&file, out).map_err(|e| Error::io(format!("writing {}", out.display()), e))?;
    Ok(QueryResult::Written(out.clone(), rows))
}

#[derive(Clone, Copy)]
enum OutKind {
    Parquet,
    Csv,
}

impl OutKind {
    fn of(path: &Path) -> Result<OutKind> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("parquet") => Ok(OutKind::Parquet),
            Some("csv") => Ok(OutKind::Csv),
            _ => Err(Error::Usage(format!(
                "--out {}: name a .parquet or .csv file",
                path.display()
            ))),
        }
    }
}
