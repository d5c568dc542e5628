//! Publishing as Delta Lake tables (`--format delta`).
//!
//! A run stages every table as Parquet first, as for `--format parquet`; only when all succeeded
//! is each table written as Delta:
//! - a table already in `--out` as a Delta table gets one overwrite commit: its new contents
//!   replace the old in a new version (the old one stays readable by time travel);
//! - any other table is written as a new Delta table inside the staging area and moved into
//!   place like a Parquet table.
//!
//! Each table's commit is atomic. New tables are all written before the first commit to an
//! existing one, and are moved into place only after the commits, so a failure while writing
//! leaves `--out` as it was; a failure between two commits leaves the tables committed so far at
//! their new version (their previous versions stay readable).

use std::path::Path;

use datafusion::arrow::datatypes::DataType;
use datafusion::execution::options::ParquetReadOptions;
use datafusion::prelude::{SessionContext, col};
use deltalake::DeltaTable;
use deltalake::operations::write::SchemaMode;
use deltalake::protocol::SaveMode;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::error::{Error, Result};
use crate::input::dir_url;
use crate::output::{PARTITION_COLUMN, Staging};
use crate::tables::{is_delta, parquet_layout, url_of_dir};

/// The format of published tables.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// A directory of Parquet files per table (history tables: one directory per day).
    #[default]
    Parquet,
    /// A Delta Lake table per table (history tables partitioned by `as_of`).
    Delta,
}

impl std::str::FromStr for Format {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "parquet" => Ok(Format::Parquet),
            "delta" => Ok(Format::Delta),
            other => Err(Error::Usage(format!(
                "--format {other:?}: use parquet or delta"
            ))),
        }
    }
}

/// Refuses, before anything runs, to replace a Delta table in `out` by a Parquet directory
/// (which would throw away its history).
pub fn check_targets(out: &Path, tables: &[&str], format: Format) -> Result<()> {
    if crate::storage::is_remote(out) {
        // An object store's Delta tables are found when publishing (their log is listed then).
        return match format {
            Format::Parquet => Ok(()),
            Format::Delta => Err(Error::Usage(format!(
                "--format delta needs a local --out (or a mounted bucket); {} is an object-store \
                 URL, where leadscore writes Parquet tables",
                out.display()
            ))),
        };
    }
    if format == Format::Delta {
        return Ok(());
    }
    for t in tables {
        let target = out.join(t);
        if is_delta(&target) {
            return Err(Error::Config(format!(
                "{} is a Delta table: pass --format delta to write a new version of it, or \
                 remove it to write Parquet there",
                target.display()
            )));
        }
    }
    Ok(())
}

/// Publishes the staged `tables` (and `optional` files, see [`Staging::publish_with`]) in
/// `format`.
pub async fn publish(
    ctx: &SessionContext,
    staging: Staging,
    tables: &[&str],
    optional: &[&str],
    format: Format,
) -> Result<()> {
    if format == Format::Parquet {
        return staging.publish_anywhere(tables, optional).await;
    }
    if staging.is_remote() {
        // check_targets refuses this before the run; never write Delta tables to a local
        // directory named after the URL.
        return Err(Error::Usage(
            "--format delta needs a local --out (or a mounted bucket)".into(),
        ));
    }
    let mut fresh = Vec::new();
    let mut existing = Vec::new();
    for &name in tables {
        if is_delta(&staging.out().join(name)) {
            existing.push(name);
        } else {
            fresh.push(name);
        }
    }
    for &name in &fresh {
        let staged = staging.table_dir(name);
        let delta_dir = staging.table_dir(&format!("{name}.delta"));
        write_delta(ctx, name, &staged, &delta_dir).await?;
        std::fs::remove_dir_all(&staged)
            .map_err(|e| Error::io(format!("removing {}", staged.display()), e))?;
        std::fs::rename(&delta_dir, &staged)
            .map_err(|e| Error::io(format!("moving {}", delta_dir.display()), e))?;
    }
    for &name in &existing {
        let target = staging.out().join(name);
        write_delta(ctx, name, &staging.table_dir(name), &target).await?;
    }
    staging.publish_with(&fresh, optional)?;
    Ok(())
}

fn delta_error(table: &Path, e: impl std::fmt::Display) -> Error {
    Error::Config(format!("writing the Delta table {}: {e}", table.display()))
}

/// Writes the Parquet table staged in `staged` as the contents of the Delta table at `target`
/// (created if needed, overwritten in one commit otherwise). A table staged by day (`as_of=`
/// directories) is partitioned by `as_of`, which comes first.
async fn write_delta(ctx: &SessionContext, name: &str, staged: &Path, target: &Path) -> Result<()> {
    let by_day = parquet_layout(staged)?
        .is_some_and(|keys| keys.first().is_some_and(|k| k == PARTITION_COLUMN));
    let mut options = ParquetReadOptions::default();
    let partition_cols = [(PARTITION_COLUMN.to_string(), DataType::Date32)];
    if by_day {
        options = options.table_partition_cols(partition_cols.to_vec());
    }
    let mut df = ctx.read_parquet(dir_url(staged), options).await?;
    if by_day {
        // The day first, as in the one-day tables.
        let mut columns = vec![col(PARTITION_COLUMN)];
        columns.extend(
            df.schema()
                .fields()
                .iter()
                .filter(|f| f.name() != PARTITION_COLUMN)
                .map(|f| col(format!("\"{}\"", f.name()))),
        );
        df = df.select(columns)?;
    }
    std::fs::create_dir_all(target)
        .map_err(|e| Error::io(format!("creating {}", target.display()), e))?;
    let table = DeltaTable::try_from_url(url_of_dir(target)?)
        .await
        .map_err(|e| delta_error(target, e))?;
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let mut write = table
        .write(Vec::new())
        .with_input_plan(df.logical_plan().clone())
        .with_save_mode(SaveMode::Overwrite)
        .with_schema_mode(SchemaMode::Overwrite)
        .with_writer_properties(properties)
        .with_table_name(name);
    if by_day {
        write = write.with_partition_columns([PARTITION_COLUMN]);
    }
    write.await.map_err(|e| delta_error(target, e))?;
    Ok(())
}
