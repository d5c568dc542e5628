//! Finding and registering published tables: every table directory under a `--tables DIR` (as
//! `score`, `backfill`, `weights` and `review` write them, in either format) becomes a table of
//! that name, for `query`, `serve` and `report`.
//!
//! A directory holding `_delta_log/` is a Delta table (its latest version). Any other directory
//! holding `.parquet` files, directly or in hive `key=value` directories, is a Parquet table: the
//! keys become columns (`as_of` as a date, any other key as text). Names starting with `.` or `_`
//! (staging areas, logs) and plain files (such as `proposed_model.toml`) are skipped.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::TableReference;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::prelude::SessionContext;

use crate::error::{Error, Result};
use crate::input::dir_url;
use crate::output::PARTITION_COLUMN;

/// How a table is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Storage {
    Parquet,
    Delta,
}

impl Storage {
    pub fn as_str(self) -> &'static str {
        match self {
            Storage::Parquet => "parquet",
            Storage::Delta => "delta",
        }
    }
}

/// One table found under a directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableInfo {
    pub name: String,
    pub path: PathBuf,
    pub storage: Storage,
    /// Hive partition keys (Parquet tables).
    pub partitions: Vec<String>,
}

/// Whether `dir` is a Delta table.
pub fn is_delta(dir: &Path) -> bool {
    dir.join("_delta_log").is_dir()
}

fn hidden(name: &str) -> bool {
    name.starts_with('.') || name.starts_with('_')
}

/// The hive keys of a Parquet directory, outermost first, following the first `key=value`
/// directory at each level; `None` when it holds no `.parquet` file at all.
pub(crate) fn parquet_layout(dir: &Path) -> Result<Option<Vec<String>>> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(format!("reading {}", dir.display()), e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| !hidden(n))
        })
        .collect();
    entries.sort();
    if entries
        .iter()
        .any(|p| p.is_file() && p.extension().is_some_and(|e| e == "parquet"))
    {
        return Ok(Some(Vec::new()));
    }
    for p in entries.iter().filter(|p| p.is_dir()) {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if let Some((key, _)) = name.split_once('=')
            && let Some(mut keys) = parquet_layout(p)?
        {
            keys.insert(0, key.to_string());
            return Ok(Some(keys));
        }
    }
    Ok(None)
}

/// The tables under `dir`, sorted by name.
pub fn find_tables(dir: &Path) -> Result<Vec<TableInfo>> {
    if !dir.is_dir() {
        return Err(Error::Config(format!(
            "--tables {}: not a directory",
            dir.display()
        )));
    }
    let mut found = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(format!("reading {}", dir.display()), e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    entries.sort();
    for path in entries {
        let Some(name) = path.file_name().and_then(|n| n.to_str()).map(String::from) else {
            continue;
        };
        if hidden(&name) {
            continue;
        }
        if is_delta(&path) {
            found.push(TableInfo {
                name,
                path,
                storage: Storage::Delta,
                partitions: Vec::new(),
            });
        } else if let Some(partitions) = parquet_layout(&path)? {
            found.push(TableInfo {
                name,
                path,
                storage: Storage::Parquet,
                partitions,
            });
        }
    }
    if found.is_empty() {
        return Err(Error::Config(format!(
            "--tables {}: no tables there (directories of Parquet files, or Delta tables)",
            dir.display()
        )));
    }
    Ok(found)
}

/// Registers every table under `dir` in `ctx` by its directory name; returns what it found.
pub async fn register_tables(ctx: &SessionContext, dir: &Path) -> Result<Vec<TableInfo>> {
    let tables = find_tables(dir)?;
    for t in &tables {
        register_table(ctx, t).await?;
    }
    Ok(tables)
}

fn cannot(t: &TableInfo, e: impl std::fmt::Display) -> Error {
    Error::input(
        &t.path,
        format!("cannot read as a {} table: {e}", t.storage.as_str()),
    )
}

/// Registers one table.
pub async fn register_table(ctx: &SessionContext, t: &TableInfo) -> Result<()> {
    let provider: Arc<dyn datafusion::catalog::TableProvider> = match t.storage {
        Storage::Delta => {
            let url = url_of_dir(&t.path)?;
            let table = deltalake::open_table(url).await.map_err(|e| cannot(t, e))?;
            table
                .update_datafusion_session(&ctx.state())
                .map_err(|e| cannot(t, e))?;
            table.table_provider().await.map_err(|e| cannot(t, e))?
        }
        Storage::Parquet => {
            let partition_cols = t
                .partitions
                .iter()
                .map(|k| {
                    let ty = if k == PARTITION_COLUMN {
                        DataType::Date32
                    } else {
                        DataType::Utf8
                    };
                    (k.clone(), ty)
                })
                .collect();
            let url = ListingTableUrl::parse(dir_url(&t.path)).map_err(|e| cannot(t, e))?;
            let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
                .with_file_extension(".parquet")
                .with_table_partition_cols(partition_cols);
            let schema = options
                .infer_schema(&ctx.state(), &url)
                .await
                .map_err(|e| cannot(t, e))?;
            let config = ListingTableConfig::new(url)
                .with_listing_options(options)
                .with_schema(schema);
            Arc::new(ListingTable::try_new(config).map_err(|e| cannot(t, e))?)
        }
    };
    let _ = ctx.deregister_table(TableReference::bare(t.name.as_str()))?;
    ctx.register_table(TableReference::bare(t.name.as_str()), provider)?;
    Ok(())
}

/// A `file://` URL for a directory.
pub fn url_of_dir(path: &Path) -> Result<url::Url> {
    let abs = std::path::absolute(path)
        .map_err(|e| Error::io(format!("resolving {}", path.display()), e))?;
    url::Url::from_directory_path(&abs)
        .map_err(|_| Error::Config(format!("{}: not a usable directory path", abs.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_parquet_hive_and_delta_tables_and_skips_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let touch = |p: &str| {
            let path = d.join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, b"").unwrap();
        };
        touch("lead_scores/part-00000.parquet");
        touch("lead_score_history/as_of=2026-01-04/part-00000.parquet");
        touch("by_two/a=1/b=x/part-00000.parquet");
        touch("deltas/_delta_log/00000000000000000000.json");
        touch(".leadscore-staging-1/x/part-00000.parquet");
        touch("_steps/x/part-00000.parquet");
        touch("empty/readme.txt");
        touch("proposed_model.toml");
        let found = find_tables(d).unwrap();
        let summary: Vec<(String, Storage, Vec<String>)> = found
            .into_iter()
            .map(|t| (t.name, t.storage, t.partitions))
            .collect();
        assert_eq!(
            summary,
            [
                (
                    "by_two".into(),
                    Storage::Parquet,
                    vec!["a".into(), "b".into()]
                ),
                ("deltas".into(), Storage::Delta, vec![]),
                (
                    "lead_score_history".into(),
                    Storage::Parquet,
                    vec!["as_of".into()]
                ),
                ("lead_scores".into(), Storage::Parquet, vec![]),
            ]
        );
        let empty = tempfile::tempdir().unwrap();
        assert!(find_tables(empty.path()).is_err());
        assert!(find_tables(&d.join("proposed_model.toml")).is_err());
    }
}
