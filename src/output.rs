//! Writing tables: each result is written as Parquet into a private staging directory inside
//! `--out`, and the finished tables are moved into place only when the whole run succeeded, so a
//! failed or killed run leaves the previous output as it was (SPEC §5).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::execution::TaskContext;
use datafusion::physical_plan::{ExecutionPlan, execute_stream, execute_stream_partitioned};
use futures::StreamExt;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::error::{Error, Result};

/// How hard to compress a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Packing {
    /// Published tables: zstd.
    Published,
    /// Intermediate steps read back once: fast LZ4.
    Scratch,
}

/// A run's private directory under `--out`, removed unless the run publishes.
#[derive(Debug)]
pub struct Staging {
    out: PathBuf,
    dir: PathBuf,
    created_out: bool,
    done: bool,
}

impl Staging {
    /// Creates `out` if needed and a fresh staging directory inside it.
    pub fn new(out: &Path) -> Result<Staging> {
        let created_out = !out.exists();
        std::fs::create_dir_all(out)
            .map_err(|e| Error::io(format!("creating {}", out.display()), e))?;
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = out.join(format!(".leadscore-staging-{}-{stamp}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        Ok(Staging {
            out: out.to_path_buf(),
            dir,
            created_out,
            done: false,
        })
    }

    /// Where a published table is staged.
    pub fn table_dir(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Where an intermediate step is kept (never published).
    pub fn step_dir(&self, name: &str) -> PathBuf {
        self.dir.join("_steps").join(name)
    }

    /// Moves the staged `tables` into `--out`,
    /// replacing earlier versions, then removes the staging directory.
    pub fn publish(mut self, tables: &[&str]) -> Result<()> {
        let previous = self.dir.join("_previous");
        std::fs::create_dir_all(&previous)
            .map_err(|e| Error::io(format!("creating {}", previous.display()), e))?;
        let mut moved: Vec<(&str, bool)> = Vec::new();
        let result = (|| -> Result<()> {
            for &name in tables {
                let target = self.out.join(name);
                let had = target.exists();
                if had {
                    std::fs::rename(&target, previous.join(name))
                        .map_err(|e| Error::io(format!("moving aside {}", target.display()), e))?;
                }
                moved.push((name, had));
                std::fs::rename(self.table_dir(name), &target)
                    .map_err(|e| Error::io(format!("publishing {}", target.display()), e))?;
            }
            Ok(())
        })();
        if let Err(e) = result {
            // Put back what was there before, so the output stays as it was.
            for (name, had) in moved.into_iter().rev() {
                let target = self.out.join(name);
                if target.exists() {
                    let _ = std::fs::rename(&target, self.table_dir(name));
                }
                if had {
                    let _ = std::fs::rename(previous.join(name), &target);
                }
            }
            return Err(e);
        }
        self.done = true;
        let _ = std::fs::remove_dir_all(&self.dir);
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_dir_all(&self.dir);
            if self.created_out {
                let _ = std::fs::remove_dir(&self.out);
            }
        }
    }
}

/// The schema a table is written with: Utf8View columns become plain Utf8, which every Parquet
/// reader maps to its ordinary string type.
fn written_schema(schema: &Schema) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Utf8View => f.as_ref().clone().with_data_type(DataType::Utf8),
            _ => f.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

fn convert(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| {
            if c.data_type() == f.data_type() {
                Ok(c.clone())
            } else {
                cast(c, f.data_type())
            }
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

fn properties(packing: Packing) -> WriterProperties {
    let compression = match packing {
        Packing::Published => Compression::ZSTD(ZstdLevel::try_new(3).expect("valid level")),
        Packing::Scratch => Compression::LZ4_RAW,
    };
    WriterProperties::builder()
        .set_compression(compression)
        .build()
}

/// The column a history table is partitioned by.
pub const PARTITION_COLUMN: &str = "as_of";

fn create_file(
    path: &Path,
    schema: &SchemaRef,
    packing: Packing,
) -> Result<ArrowWriter<std::fs::File>> {
    let file = std::fs::File::create(path)
        .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
    Ok(ArrowWriter::try_new(
        file,
        schema.clone(),
        Some(properties(packing)),
    )?)
}

/// Runs `df`, whose rows must come ordered by the Date32 column `as_of`, and writes them as a
/// hive-partitioned table: `dir/as_of=YYYY-MM-DD/part-00000.parquet`, the files without the
/// `as_of` column. Returns the files' schema and the row count.
pub async fn write_parquet_by_day(
    plan: Arc<dyn ExecutionPlan>,
    task: Arc<TaskContext>,
    dir: &Path,
    packing: Packing,
) -> Result<(SchemaRef, u64)> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let full = written_schema(&plan.schema());
    let day_index = full.index_of(PARTITION_COLUMN).map_err(|_| {
        Error::Config(format!(
            "a history table needs an `{PARTITION_COLUMN}` column"
        ))
    })?;
    let mut fields: Vec<Field> = full.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.remove(day_index);
    let schema: SchemaRef = Arc::new(Schema::new_with_metadata(fields, full.metadata().clone()));
    let mut stream = execute_stream(plan, task)?;
    let mut current: Option<(i32, ArrowWriter<std::fs::File>)> = None;
    let mut rows = 0u64;
    while let Some(batch) = stream.next().await {
        let mut batch = convert(&batch?, &full)?;
        let days = batch.remove_column(day_index);
        let days = days
            .as_any()
            .downcast_ref::<datafusion::arrow::array::Date32Array>()
            .ok_or_else(|| Error::Config(format!("`{PARTITION_COLUMN}` must be a date")))?;
        let mut start = 0;
        while start < batch.num_rows() {
            if days.is_null(start) {
                return Err(Error::Config(format!(
                    "a history row has no `{PARTITION_COLUMN}`"
                )));
            }
            let day = days.value(start);
            let mut end = start + 1;
            while end < batch.num_rows() && days.is_valid(end) && days.value(end) == day {
                end += 1;
            }
            if current.as_ref().is_none_or(|(d, _)| *d != day) {
                if let Some((seen, writer)) = current.take() {
                    if day < seen {
                        return Err(Error::Config(format!(
                            "history rows must come ordered by `{PARTITION_COLUMN}`"
                        )));
                    }
                    writer.close()?;
                }
                let date = datafusion::arrow::temporal_conversions::date32_to_datetime(day)
                    .map(|t| t.date().to_string())
                    .unwrap_or_else(|| day.to_string());
                let part = dir.join(format!("{PARTITION_COLUMN}={date}"));
                std::fs::create_dir_all(&part)
                    .map_err(|e| Error::io(format!("creating {}", part.display()), e))?;
                let writer = create_file(&part.join("part-00000.parquet"), &schema, packing)?;
                current = Some((day, writer));
            }
            let (_, writer) = current.as_mut().expect("opened above");
            writer.write(&batch.slice(start, end - start))?;
            rows += (end - start) as u64;
            start = end;
        }
    }
    if let Some((_, writer)) = current {
        writer.close()?;
    }
    Ok((schema, rows))
}

/// Runs `df` and writes its rows as Parquet files `part-NNNNN.parquet` in `dir`, one per output
/// partition that has rows (at least one file, so an empty table still has its schema).
/// Returns the written schema and the row count.
pub async fn write_parquet(
    plan: Arc<dyn ExecutionPlan>,
    task: Arc<TaskContext>,
    dir: &Path,
    packing: Packing,
) -> Result<(SchemaRef, u64)> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let schema = written_schema(&plan.schema());
    let streams = execute_stream_partitioned(plan, task)?;
    let mut tasks = Vec::new();
    for (i, mut stream) in streams.into_iter().enumerate() {
        let schema = schema.clone();
        let path = dir.join(format!("part-{i:05}.parquet"));
        tasks.push(tokio::spawn(async move {
            let mut writer: Option<ArrowWriter<std::fs::File>> = None;
            let mut rows = 0u64;
            while let Some(batch) = stream.next().await {
                let batch = convert(&batch?, &schema)?;
                if batch.num_rows() == 0 {
                    continue;
                }
                if writer.is_none() {
                    writer = Some(create_file(&path, &schema, packing)?);
                }
                rows += batch.num_rows() as u64;
                writer.as_mut().expect("opened above").write(&batch)?;
            }
            if let Some(w) = writer {
                w.close()?;
            }
            Ok::<u64, Error>(rows)
        }));
    }
    let mut rows = 0;
    for task in tasks {
        rows += task
            .await
            .map_err(|e| Error::Config(format!("a writer task failed: {e}")))??;
    }
    let any_file = std::fs::read_dir(dir)
        .map_err(|e| Error::io(format!("reading {}", dir.display()), e))?
        .next()
        .is_some();
    if !any_file {
        create_file(&dir.join("part-00000.parquet"), &schema, packing)?.close()?;
    }
    Ok((schema, rows))
}
