//! Writing tables: each result is written as Parquet into a private staging directory inside
//! `--out`, and the finished tables are moved into place only when the whole run succeeded, so a
//! failed or killed run leaves the previous output as it was (the README's "Output tables").

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{Array, Date32Array, RecordBatch, UInt32Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::execution::TaskContext;
use datafusion::physical_plan::{ExecutionPlan, execute_stream_partitioned};
use futures::StreamExt;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::{
    ArrowColumnChunk, ArrowColumnWriter, ArrowLeafColumn, ArrowRowGroupWriterFactory,
    compute_leaves,
};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::ColumnPath;

use crate::error::{Error, Result};
use crate::storage::{Remote, is_remote};

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
    /// Where tables and steps are written (for an object-store `--out`, a local temporary
    /// directory whose contents are uploaded as they are finished).
    dir: PathBuf,
    remote: Option<RemoteStaging>,
    created_out: bool,
    done: bool,
}

/// The object-store side of a run's staging area.
#[derive(Debug)]
struct RemoteStaging {
    out: Remote,
    /// `--out`'s key plus the staging directory's name.
    dir: Remote,
    /// Holds the local directory tables are written into before they are uploaded.
    _local: tempfile::TempDir,
}

impl Staging {
    /// Creates `out` if needed and a fresh staging directory inside it. For an object-store
    /// `--out` (`s3://…`), tables are written into a local temporary directory first (under
    /// `TMPDIR`) and uploaded into the staging prefix inside `out`.
    pub async fn new(out: &Path) -> Result<Staging> {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let name = format!(
            "{STAGING_PREFIX}{}-{}-{stamp}",
            host_name(),
            std::process::id()
        );
        if is_remote(out) {
            let remote_out = Remote::of(out)?;
            clear_abandoned_remote(&remote_out).await?;
            let local = tempfile::Builder::new()
                .prefix(STAGING_PREFIX)
                .tempdir()
                .map_err(|e| Error::io("creating a local staging directory", e))?;
            return Ok(Staging {
                out: out.to_path_buf(),
                dir: local.path().to_path_buf(),
                remote: Some(RemoteStaging {
                    dir: remote_out.child(&name),
                    out: remote_out,
                    _local: local,
                }),
                created_out: false,
                done: false,
            });
        }
        let created_out = !out.exists();
        std::fs::create_dir_all(out)
            .map_err(|e| Error::io(format!("creating {}", out.display()), e))?;
        clear_abandoned(out);
        let dir = out.join(name);
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        Ok(Staging {
            out: out.to_path_buf(),
            dir,
            remote: None,
            created_out,
            done: false,
        })
    }

    /// Whether `--out` is in an object store.
    pub fn is_remote(&self) -> bool {
        self.remote.is_some()
    }

    /// Makes the table or step just written into `dir` (a [`Staging::table_dir`] or
    /// [`Staging::step_dir`], or a file staged there) readable by the queries after it and ready
    /// to publish, wherever they run, and returns where they read it: `dir` itself, or for an
    /// object-store `--out` its uploaded copy.
    pub async fn ship(&self, dir: &Path) -> Result<PathBuf> {
        let Some(remote) = &self.remote else {
            return Ok(dir.to_path_buf());
        };
        let rel = dir.strip_prefix(&self.dir).unwrap_or(dir);
        let mut target = remote.dir.clone();
        for part in rel.components() {
            target = target.child(&part.as_os_str().to_string_lossy());
        }
        target.upload(dir).await?;
        Ok(target.path())
    }

    /// The output directory.
    pub fn out(&self) -> &Path {
        &self.out
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
    pub fn publish(self, tables: &[&str]) -> Result<()> {
        self.publish_with(tables, &[])
    }

    /// Like [`Staging::publish`], plus `optional` files or tables that this run may not have
    /// produced: a staged one replaces the earlier version, a missing one removes it (so `--out`
    /// never mixes a stale file with fresh tables).
    pub fn publish_with(mut self, tables: &[&str], optional: &[&str]) -> Result<()> {
        let previous = self.dir.join("_previous");
        std::fs::create_dir_all(&previous)
            .map_err(|e| Error::io(format!("creating {}", previous.display()), e))?;
        let mut moved: Vec<(&str, bool)> = Vec::new();
        let result = (|| -> Result<()> {
            for &name in tables.iter().chain(optional) {
                let target = self.out.join(name);
                let had = target.exists();
                if had {
                    std::fs::rename(&target, previous.join(name))
                        .map_err(|e| Error::io(format!("moving aside {}", target.display()), e))?;
                }
                moved.push((name, had));
                if optional.contains(&name) && !self.table_dir(name).exists() {
                    continue;
                }
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

impl Staging {
    /// [`Staging::publish_with`] for an object-store `--out`: every object of a previous table
    /// is moved aside into the staging prefix, then the new table's objects are moved in (each
    /// move a copy and a delete, as object stores have no rename). A failure puts the previous
    /// tables back. Unlike a rename on a filesystem this is not atomic: while a table is being
    /// replaced, a reader may find it missing or partly copied.
    async fn publish_remote(mut self, tables: &[&str], optional: &[&str]) -> Result<()> {
        let Some(remote) = self.remote.as_ref() else {
            return Err(Error::Config(
                "the staging area is not in an object store".into(),
            ));
        };
        for &name in tables.iter().chain(optional) {
            if remote.out.child(name).child("_delta_log").exists().await? {
                return Err(Error::Config(format!(
                    "{} is a Delta table: leadscore writes Delta tables only to a local --out, \
                     so it would be replaced by Parquet files; remove it or choose another --out",
                    remote.out.child(name).path().display()
                )));
            }
        }
        let previous = remote.dir.child("_previous");
        let mut moved: Vec<(&str, bool)> = Vec::new();
        let result: Result<()> = async {
            for &name in tables.iter().chain(optional) {
                let target = remote.out.child(name);
                let had = target.exists().await?;
                if had && let Err(e) = target.move_to(&previous.child(name)).await {
                    // A move that failed while copying copied nothing; one that failed while
                    // deleting left a whole copy aside: putting that back restores the table.
                    let _ = previous.child(name).move_to(&target).await;
                    return Err(e);
                }
                moved.push((name, had));
                if optional.contains(&name) && !self.table_dir(name).exists() {
                    continue;
                }
                remote.dir.child(name).move_to(&target).await?;
            }
            Ok(())
        }
        .await;
        if let Err(e) = result {
            // Put back what was there before, so the output stays as it was.
            for (name, had) in moved.into_iter().rev() {
                let target = remote.out.child(name);
                let _ = target.move_to(&remote.dir.child(name)).await;
                if had {
                    let _ = previous.child(name).move_to(&target).await;
                }
            }
            return Err(e);
        }
        let _ = remote.dir.delete_all().await;
        self.done = true;
        Ok(())
    }

    /// Publishes the staged `tables` and `optional` ones (see [`Staging::publish_with`]),
    /// wherever `--out` is.
    pub async fn publish_anywhere(self, tables: &[&str], optional: &[&str]) -> Result<()> {
        if self.is_remote() {
            self.publish_remote(tables, optional).await
        } else {
            self.publish_with(tables, optional)
        }
    }
}

/// Staging directories are named `.leadscore-staging-HOST-PID-STAMP`.
const STAGING_PREFIX: &str = ".leadscore-staging-";

/// This machine's name, for staging directories (`--out` may be shared by several machines).
fn host_name() -> String {
    #[cfg(unix)]
    {
        let mut buf = [0u8; 256];
        // SAFETY: the buffer is valid for its length; gethostname writes at most that much.
        let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
        if rc == 0 {
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            let name: String = String::from_utf8_lossy(&buf[..end])
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '.' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            if !name.is_empty() {
                return name;
            }
        }
    }
    "host".to_string()
}

/// Whether process `pid` of this machine is still running.
fn alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return false;
        };
        // SAFETY: signal 0 only checks that the process exists.
        let rc = unsafe { libc::kill(pid, 0) };
        rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

/// Whether the entry `name` of `--out` is the staging directory of a run of this machine that
/// is no longer running.
fn abandoned(name: &str) -> bool {
    let Some(rest) = name.strip_prefix(STAGING_PREFIX) else {
        return false;
    };
    let mut parts = rest.rsplitn(3, '-');
    let (Some(_stamp), Some(pid), Some(its_host)) = (parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    its_host == host_name() && !alive(pid)
}

/// Removes what killed runs of this machine left in `out`: their staging directories. A run
/// killed while publishing may have moved a previous table aside without putting the new one in
/// place; such a table is moved back first, so `--out` holds the previous output again. Runs of
/// other machines (a shared `--out`) and runs still going are left alone.
fn clear_abandoned(out: &Path) {
    let Ok(entries) = std::fs::read_dir(out) else {
        return;
    };
    for entry in entries.flatten() {
        if !abandoned(&entry.file_name().to_string_lossy()) {
            continue;
        }
        let dir = entry.path();
        if let Ok(previous) = std::fs::read_dir(dir.join("_previous")) {
            for table in previous.flatten() {
                let target = out.join(table.file_name());
                if !target.exists() {
                    let _ = std::fs::rename(table.path(), &target);
                }
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// [`clear_abandoned`] for an object-store `--out`. Failing to list `out` is an error (a missing
/// bucket, no credentials), found before anything runs.
async fn clear_abandoned_remote(out: &Remote) -> Result<()> {
    let names = out.subdirectories().await?;
    for name in names.iter().filter(|n| abandoned(n)) {
        let dir = out.child(name);
        let previous = dir.child("_previous");
        for table in previous.subdirectories().await.unwrap_or_default() {
            let target = out.child(&table);
            if !target.exists().await.unwrap_or(true) {
                let _ = previous.child(&table).move_to(&target).await;
            }
        }
        let _ = dir.delete_all().await;
    }
    Ok(())
}

impl Drop for Staging {
    fn drop(&mut self) {
        if let Some(remote) = self.remote.as_ref().filter(|_| !self.done) {
            // Deleting objects needs the runtime; without a multi-threaded one to block on, the
            // next run on this machine removes them (`clear_abandoned_remote`).
            if let Ok(handle) = tokio::runtime::Handle::try_current()
                && handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
            {
                let dir = remote.dir.clone();
                tokio::task::block_in_place(|| {
                    let _ = handle.block_on(dir.delete_all());
                });
            }
            return;
        }
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

/// Parquet settings: compression by packing, and dictionary encoding for text columns only. Scores,
/// times and counts are mostly distinct values: interning each into a dictionary that is then
/// abandoned cost more than encoding them, and zstd compresses them anyway.
fn properties(packing: Packing, schema: &Schema) -> WriterProperties {
    let compression = match packing {
        // Level 1: at 20M events `lead_scores` comes out 2.6 % larger than at level 3 (the
        // other tables about the same), for 1 % fewer instructions in a whole `score` run at
        // 1M events.
        Packing::Published => Compression::ZSTD(ZstdLevel::try_new(1).expect("valid level")),
        Packing::Scratch => Compression::LZ4_RAW,
    };
    let mut builder = WriterProperties::builder()
        .set_compression(compression)
        .set_dictionary_enabled(false);
    for f in schema.fields() {
        if matches!(f.data_type(), DataType::Utf8 | DataType::LargeUtf8) {
            builder =
                builder.set_column_dictionary_enabled(ColumnPath::from(f.name().as_str()), true);
        }
    }
    builder.build()
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
        Some(properties(packing, schema)),
    )?)
}

/// How many day files each of `partitions` writers keeps open (past that the least recently
/// written is closed and a later row of that day starts a new file): the process's open-file
/// limit, raised to its hard limit first, less a reserve for inputs and spill files, shared out.
/// A backfill's rows come lead by lead with all their days, so a writer that cannot keep every
/// day open closes and reopens files all the time (two years of daily snapshots under the old
/// fixed 128 made 140 files per day).
fn open_day_files(partitions: usize) -> usize {
    let limit = raise_open_file_limit().unwrap_or(1024);
    (limit.saturating_sub(256) / partitions.max(1)).clamp(16, 4096)
}

/// Raises this process's soft limit on open files to its hard limit (at most 65536) and returns
/// the limit now in force; `None` where it cannot be read.
#[cfg(unix)]
fn raise_open_file_limit() -> Option<usize> {
    let mut current = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit struct, which we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut current) } != 0 {
        return None;
    }
    let wanted = current.rlim_max.min(65536);
    if current.rlim_cur < wanted {
        let raised = libc::rlimit {
            rlim_cur: wanted,
            rlim_max: current.rlim_max,
        };
        // SAFETY: setrlimit reads one rlimit struct, which we own.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            return Some(wanted as usize);
        }
    }
    Some(current.rlim_cur as usize)
}

#[cfg(not(unix))]
fn raise_open_file_limit() -> Option<usize> {
    None
}

/// Runs `plan` and writes its rows, in any order, as a hive-partitioned table by the Date32
/// column `as_of`: `dir/as_of=YYYY-MM-DD/part-PPPPP[-NNN].parquet`, the files without the
/// `as_of` column. Each output partition's rows are split by day and handed to the writer that
/// owns the day (days are dealt to as many writers as there are partitions, in the order they
/// first come): a day has one file (or a few, see [`open_day_files`]) whatever the number of
/// partitions. Returns the files' schema and the row count.
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
    let streams = execute_stream_partitioned(plan, task)?;
    let writers = streams.len().max(1);
    let open_limit = open_day_files(writers);
    let mut senders = Vec::with_capacity(writers);
    let mut writing = Vec::with_capacity(writers);
    for writer in 0..writers {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<(i32, RecordBatch)>(DAY_SLICES_QUEUED);
        senders.push(tx);
        let mut files = DayFiles::new(dir, schema.clone(), packing, writer, open_limit);
        writing.push(tokio::spawn(async move {
            while let Some((day, rows)) = rx.recv().await {
                files.add(day, rows)?;
            }
            files.close()?;
            Ok::<u64, Error>(0)
        }));
    }
    let owners: Arc<Mutex<HashMap<i32, usize>>> = Arc::default();
    let mut splitting = Vec::with_capacity(writers);
    for mut stream in streams {
        let (full, senders, owners) = (full.clone(), senders.clone(), Arc::clone(&owners));
        splitting.push(tokio::spawn(async move {
            let mut rows = 0u64;
            while let Some(batch) = stream.next().await {
                let mut batch = convert(&batch?, &full)?;
                let days = batch.remove_column(day_index);
                let days = days
                    .as_any()
                    .downcast_ref::<Date32Array>()
                    .ok_or_else(|| Error::Config(format!("`{PARTITION_COLUMN}` must be a date")))?;
                if days.null_count() > 0 {
                    return Err(Error::Config(format!(
                        "a history row has no `{PARTITION_COLUMN}`"
                    )));
                }
                rows += batch.num_rows() as u64;
                let (order, runs) = by_day(days);
                if let Some(order) = order {
                    batch = datafusion::arrow::compute::take_record_batch(&batch, &order)?;
                }
                for (day, run) in runs {
                    let owner = {
                        let mut owners = owners
                            .lock()
                            .map_err(|_| Error::Config("a writer task failed".into()))?;
                        let next = owners.len() % senders.len();
                        *owners.entry(day).or_insert(next)
                    };
                    let slice = batch.slice(run.start, run.len());
                    if senders[owner].send((day, slice)).await.is_err() {
                        // The writer stopped on an error, which waiting for it reports.
                        return Ok(rows);
                    }
                }
            }
            Ok::<u64, Error>(rows)
        }));
    }
    drop(senders);
    let rows = rows_written(splitting).await;
    let written = rows_written(writing).await;
    // A writer's error explains a splitter that stopped sending.
    written?;
    Ok((schema, rows?))
}

/// Rows of one day, split from a partition's batches, waiting for the day's writer.
const DAY_SLICES_QUEUED: usize = 64;

/// Waits for every partition's writer task and adds up the rows they wrote.
async fn rows_written(tasks: Vec<tokio::task::JoinHandle<Result<u64>>>) -> Result<u64> {
    let mut rows = 0;
    for task in tasks {
        rows += task
            .await
            .map_err(|e| Error::Config(format!("a writer task failed: {e}")))??;
    }
    Ok(rows)
}

/// The rows of each day in `days`, as ranges of rows that hold one day each: of `days` as they
/// are when each day's rows lie together, else (`Some` order) of the rows taken in that order,
/// day by day. A fold's rows come lead by lead, each lead's days in turn: one reordering of the
/// batch then replaces a gathering per day.
fn by_day(days: &Date32Array) -> (Option<UInt32Array>, Vec<(i32, std::ops::Range<usize>)>) {
    let values = days.values();
    let mut runs: Vec<(i32, std::ops::Range<usize>)> = Vec::new();
    for (i, &day) in values.iter().enumerate() {
        match runs.last_mut() {
            Some((d, run)) if *d == day => run.end = i + 1,
            _ => runs.push((day, i..i + 1)),
        }
    }
    let mut distinct: Vec<i32> = runs.iter().map(|(d, _)| *d).collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() == runs.len() {
        return (None, runs);
    }
    // A counting sort by day, rows of a day in their order.
    let mut start = vec![0usize; distinct.len() + 1];
    let slot = |day: i32| distinct.binary_search(&day).unwrap_or_default();
    for (day, run) in &runs {
        start[slot(*day) + 1] += run.len();
    }
    for k in 0..distinct.len() {
        start[k + 1] += start[k];
    }
    let mut next = start.clone();
    let mut order = vec![0u32; values.len()];
    for (day, run) in &runs {
        let k = slot(*day);
        for i in run.clone() {
            order[next[k]] = i as u32;
            next[k] += 1;
        }
    }
    let runs = distinct
        .iter()
        .enumerate()
        .map(|(k, &day)| (day, start[k]..start[k + 1]))
        .collect();
    (Some(UInt32Array::from(order)), runs)
}

/// Rows of one day gathered before they are written, as one row group.
const DAY_BATCH_ROWS: usize = 16384;

/// Rows of all days gathered at most, before every day's gathered rows are written.
const PENDING_ROWS: usize = 1 << 19;

/// One writer's day files (of the days dealt to it): rows gathered per day into batches, open
/// writers, and the files each day has had.
struct DayFiles {
    dir: PathBuf,
    schema: SchemaRef,
    packing: Packing,
    partition: usize,
    pending: std::collections::HashMap<i32, (Vec<RecordBatch>, usize)>,
    pending_rows: usize,
    /// Open writers by day, with when each was last written to.
    open: std::collections::HashMap<i32, (ArrowWriter<std::fs::File>, u64)>,
    /// How many files each day has had in this partition.
    parts: std::collections::HashMap<i32, usize>,
    clock: u64,
    /// How many writers may be open at once.
    open_limit: usize,
}

impl DayFiles {
    fn new(
        dir: &Path,
        schema: SchemaRef,
        packing: Packing,
        partition: usize,
        open_limit: usize,
    ) -> Self {
        DayFiles {
            dir: dir.to_path_buf(),
            schema,
            packing,
            partition,
            pending: std::collections::HashMap::new(),
            pending_rows: 0,
            open: std::collections::HashMap::new(),
            parts: std::collections::HashMap::new(),
            clock: 0,
            open_limit,
        }
    }

    /// Gathers `batch`, rows of `day`; writes the day's rows once there are enough.
    fn add(&mut self, day: i32, batch: RecordBatch) -> Result<()> {
        let rows = batch.num_rows();
        let entry = self.pending.entry(day).or_default();
        entry.0.push(batch);
        entry.1 += rows;
        self.pending_rows += rows;
        if entry.1 >= DAY_BATCH_ROWS {
            self.write_pending(day)?;
        }
        if self.pending_rows >= PENDING_ROWS {
            let days: Vec<i32> = self.pending.keys().copied().collect();
            for day in days {
                self.write_pending(day)?;
            }
        }
        Ok(())
    }

    fn write_pending(&mut self, day: i32) -> Result<()> {
        let Some((batches, rows)) = self.pending.remove(&day) else {
            return Ok(());
        };
        self.pending_rows -= rows;
        let batch = datafusion::arrow::compute::concat_batches(&self.schema, &batches)?;
        self.clock += 1;
        if !self.open.contains_key(&day) {
            if self.open.len() >= self.open_limit {
                let oldest = self
                    .open
                    .iter()
                    .min_by_key(|(_, (_, used))| *used)
                    .map(|(d, _)| *d)
                    .expect("not empty");
                let (writer, _) = self.open.remove(&oldest).expect("present");
                writer.close()?;
            }
            let date = datafusion::arrow::temporal_conversions::date32_to_datetime(day)
                .map(|t| t.date().to_string())
                .unwrap_or_else(|| day.to_string());
            let part = self.dir.join(format!("{PARTITION_COLUMN}={date}"));
            std::fs::create_dir_all(&part)
                .map_err(|e| Error::io(format!("creating {}", part.display()), e))?;
            let n = self.parts.entry(day).or_insert(0);
            let name = match *n {
                0 => format!("part-{:05}.parquet", self.partition),
                k => format!("part-{:05}-{k:03}.parquet", self.partition),
            };
            *n += 1;
            let writer = create_file(&part.join(name), &self.schema, self.packing)?;
            self.open.insert(day, (writer, self.clock));
        }
        let (writer, used) = self.open.get_mut(&day).expect("opened above");
        *used = self.clock;
        // Each gathered batch is a row group of its own: a row group in progress holds a
        // compression context per column (hundreds of KiB each for zstd), and with rows coming
        // lead by lead every day's row group would stay in progress at once, so memory would
        // grow with the number of days.
        writer.write(&batch)?;
        writer.flush()?;
        Ok(())
    }

    fn close(mut self) -> Result<()> {
        let days: Vec<i32> = self.pending.keys().copied().collect();
        for day in days {
            self.write_pending(day)?;
        }
        for (_, (writer, _)) in self.open {
            writer.close()?;
        }
        Ok(())
    }
}

/// Runs `df` and writes its rows as Parquet files `part-NNNNN.parquet` in `dir`, one per output
/// partition that has rows (at least one file, so an empty table still has its schema).
/// Returns the written schema and the row count.
///
/// A plan with fewer output partitions than the session has (a sorted table is one partition)
/// encodes each file's columns on several threads: see [`ColumnWriters`].
pub async fn write_parquet(
    plan: Arc<dyn ExecutionPlan>,
    task: Arc<TaskContext>,
    dir: &Path,
    packing: Packing,
) -> Result<(SchemaRef, u64)> {
    let stored = store_rows(plan, task, dir, packing, None).await?;
    Ok((stored.schema, stored.rows))
}

/// The rows of a query as [`store_rows`] left them.
pub struct Stored {
    pub schema: SchemaRef,
    pub rows: u64,
    /// The batches of each output partition, when they stayed in memory; `None` when they were
    /// written to the directory.
    pub batches: Option<Vec<Vec<RecordBatch>>>,
}

/// Like [`write_parquet`], except that with `hold` the rows stay in memory as long as all the
/// partitions' batches together take at most `hold` bytes: a step that is read back by the next
/// queries and fits is then neither encoded nor decoded. Past `hold`, every partition writes
/// what it holds and the rest of its rows to its file.
pub async fn store_rows(
    plan: Arc<dyn ExecutionPlan>,
    task: Arc<TaskContext>,
    dir: &Path,
    packing: Packing,
    hold: Option<usize>,
) -> Result<Stored> {
    use std::sync::atomic::{AtomicUsize, Ordering};

    std::fs::create_dir_all(dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let schema = written_schema(&plan.schema());
    let cores = task.session_config().target_partitions();
    let streams = execute_stream_partitioned(plan, task)?;
    let threads = (cores / streams.len().max(1)).max(1);
    // Bytes held by all partitions; past `hold` it stays above it, so every partition writes.
    let held_bytes = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for (i, mut stream) in streams.into_iter().enumerate() {
        let schema = schema.clone();
        let path = dir.join(format!("part-{i:05}.parquet"));
        let held_bytes = held_bytes.clone();
        tasks.push(tokio::spawn(async move {
            let mut writer: Option<ColumnWriters> = None;
            let mut held: Vec<RecordBatch> = Vec::new();
            let mut rows = 0u64;
            while let Some(batch) = stream.next().await {
                let batch = convert(&batch?, &schema)?;
                if batch.num_rows() == 0 {
                    continue;
                }
                rows += batch.num_rows() as u64;
                if writer.is_none()
                    && let Some(hold) = hold
                {
                    let size = batch.get_array_memory_size();
                    if held_bytes.fetch_add(size, Ordering::Relaxed) + size <= hold {
                        held.push(batch);
                        continue;
                    }
                }
                let w = match &mut writer {
                    Some(w) => w,
                    None => writer.insert(ColumnWriters::create(&path, &schema, packing, threads)?),
                };
                for b in held.drain(..) {
                    w.write(b)?;
                }
                w.write(batch)?;
            }
            if let Some(w) = writer {
                w.close()?;
            }
            Ok::<_, Error>((rows, held, path))
        }));
    }
    let mut rows = 0;
    let mut partitions = Vec::with_capacity(tasks.len());
    for task in tasks {
        let (n, held, path) = task
            .await
            .map_err(|e| Error::Config(format!("a writer task failed: {e}")))??;
        rows += n;
        partitions.push((held, path));
    }
    if hold.is_some_and(|hold| held_bytes.load(Ordering::Relaxed) <= hold) {
        let batches = partitions.into_iter().map(|(held, _)| held).collect();
        return Ok(Stored {
            schema,
            rows,
            batches: Some(batches),
        });
    }
    // Partitions that finished before the others went past `hold` still hold their rows.
    for (held, path) in partitions {
        if !held.is_empty() {
            let mut w = ColumnWriters::create(&path, &schema, packing, threads)?;
            for b in held {
                w.write(b)?;
            }
            w.close()?;
        }
    }
    let any_file = std::fs::read_dir(dir)
        .map_err(|e| Error::io(format!("reading {}", dir.display()), e))?
        .next()
        .is_some();
    if !any_file {
        create_file(&dir.join("part-00000.parquet"), &schema, packing)?.close()?;
    }
    Ok(Stored {
        schema,
        rows,
        batches: None,
    })
}

/// Rows per row group of the files [`write_parquet`] writes: small enough that a reader (the
/// queries after, a BI tool) splits a one-file table across its cores, large enough to compress
/// well.
const ROW_GROUP_ROWS: usize = 128 * 1024;

/// A Parquet file whose row groups are encoded column by column on up to `threads` threads at
/// once. A sorted table arrives as one stream; encoded by one thread (as `ArrowWriter` does),
/// its compression and dictionaries kept one core busy while the others had nothing left to do.
struct ColumnWriters {
    file: SerializedFileWriter<std::fs::File>,
    factory: ArrowRowGroupWriterFactory,
    schema: SchemaRef,
    pending: Vec<RecordBatch>,
    pending_rows: usize,
    row_groups: usize,
    threads: usize,
}

impl ColumnWriters {
    fn create(path: &Path, schema: &SchemaRef, packing: Packing, threads: usize) -> Result<Self> {
        let (file, factory) = create_file(path, schema, packing)?.into_serialized_writer()?;
        Ok(ColumnWriters {
            file,
            factory,
            schema: schema.clone(),
            pending: Vec::new(),
            pending_rows: 0,
            row_groups: 0,
            threads,
        })
    }

    fn write(&mut self, mut batch: RecordBatch) -> Result<()> {
        while self.pending_rows + batch.num_rows() >= ROW_GROUP_ROWS {
            let head = ROW_GROUP_ROWS - self.pending_rows;
            self.pending.push(batch.slice(0, head));
            self.pending_rows += head;
            self.flush()?;
            batch = batch.slice(head, batch.num_rows() - head);
        }
        if batch.num_rows() > 0 {
            self.pending_rows += batch.num_rows();
            self.pending.push(batch);
        }
        Ok(())
    }

    /// Encodes the pending rows as one row group and appends it to the file.
    fn flush(&mut self) -> Result<()> {
        if self.pending_rows == 0 {
            return Ok(());
        }
        let writers = self.factory.create_column_writers(self.row_groups)?;
        // Each Parquet leaf column with its slices of the pending batches.
        let mut jobs: Vec<(ArrowColumnWriter, Vec<ArrowLeafColumn>)> =
            writers.into_iter().map(|w| (w, Vec::new())).collect();
        for batch in std::mem::take(&mut self.pending) {
            let mut leaf = 0;
            for (field, column) in self.schema.fields().iter().zip(batch.columns()) {
                for slice in compute_leaves(field, column)? {
                    jobs[leaf].1.push(slice);
                    leaf += 1;
                }
            }
        }
        self.pending_rows = 0;
        let chunks = encode_columns(jobs, self.threads)?;
        let mut row_group = self.file.next_row_group()?;
        for chunk in chunks {
            chunk.append_to_row_group(&mut row_group)?;
        }
        row_group.close()?;
        self.row_groups += 1;
        Ok(())
    }

    fn close(mut self) -> Result<()> {
        self.flush()?;
        self.file.close()?;
        Ok(())
    }
}

/// Encodes each column's slices with its writer, on up to `threads` threads (each takes the
/// next column nobody has taken); the chunks come back in column order.
fn encode_columns(
    jobs: Vec<(ArrowColumnWriter, Vec<ArrowLeafColumn>)>,
    threads: usize,
) -> Result<Vec<ArrowColumnChunk>> {
    let encode = |(mut writer, slices): (ArrowColumnWriter, Vec<ArrowLeafColumn>)| {
        for slice in &slices {
            writer.write(slice)?;
        }
        writer.close()
    };
    let threads = threads.min(jobs.len());
    if threads <= 1 {
        return Ok(jobs
            .into_iter()
            .map(encode)
            .collect::<std::result::Result<_, _>>()?);
    }
    let count = jobs.len();
    let queue = std::sync::Mutex::new(jobs.into_iter().enumerate());
    let done = std::sync::Mutex::new(Vec::with_capacity(count));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let next = queue.lock().expect("not poisoned").next();
                    let Some((i, job)) = next else { break };
                    let chunk = encode(job);
                    done.lock().expect("not poisoned").push((i, chunk));
                }
            });
        }
    });
    let mut done = done.into_inner().expect("not poisoned");
    done.sort_unstable_by_key(|(i, _)| *i);
    Ok(done
        .into_iter()
        .map(|(_, chunk)| chunk)
        .collect::<std::result::Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_step_stays_in_memory_within_its_budget_and_is_written_past_it() {
        use datafusion::arrow::array::Int64Array;
        use datafusion::prelude::SessionContext;

        // Two partitions of 3 batches of 1,000 rows each.
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
        let batch = |k: i64| {
            let values = Int64Array::from_iter_values(k * 1000..(k + 1) * 1000);
            RecordBatch::try_new(schema.clone(), vec![Arc::new(values)]).unwrap()
        };
        let plan = || async {
            let ctx = SessionContext::new();
            let parts = vec![(0..3).map(batch).collect(), (3..6).map(batch).collect()];
            let table = datafusion::datasource::MemTable::try_new(schema.clone(), parts).unwrap();
            let df = ctx.read_table(Arc::new(table)).unwrap();
            (
                Arc::new(df.clone().task_ctx()),
                df.create_physical_plan().await.unwrap(),
            )
        };
        let size = batch(0).get_array_memory_size();
        let files = |dir: &Path| std::fs::read_dir(dir).unwrap().count();

        let store = |hold: usize| async move {
            let dir = tempfile::tempdir().unwrap();
            let (task, p) = plan().await;
            let stored = store_rows(p, task, dir.path(), Packing::Scratch, Some(hold))
                .await
                .unwrap();
            (dir, stored)
        };

        // Within the budget: every batch held, no file written.
        let (dir, held) = store(6 * size).await;
        assert_eq!(held.rows, 6000);
        let batches = held.batches.expect("held in memory");
        assert_eq!(batches.iter().map(Vec::len).sum::<usize>(), 6);
        assert_eq!(files(dir.path()), 0);

        // One batch over: every row ends up in the files, none held.
        let (dir, written) = store(5 * size).await;
        assert_eq!(written.rows, 6000);
        assert!(written.batches.is_none());
        let mut rows = 0;
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let file = std::fs::File::open(entry.unwrap().path()).unwrap();
            let reader =
                parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(file, 1024)
                    .unwrap();
            rows += reader.map(|b| b.unwrap().num_rows()).sum::<usize>();
        }
        assert_eq!(rows, 6000);
    }

    #[tokio::test]
    async fn a_killed_runs_staging_is_cleared_and_a_table_it_moved_aside_put_back() {
        let out = tempfile::tempdir().unwrap();
        let out = out.path();
        // A process that has ended: its pid is free.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let host = host_name();
        let killed = out.join(format!("{STAGING_PREFIX}{host}-{dead}-1"));
        // Killed mid-publish: lead_scores moved aside (not yet replaced), rejects already
        // replaced by the new one.
        std::fs::create_dir_all(killed.join("_previous/lead_scores")).unwrap();
        std::fs::write(killed.join("_previous/lead_scores/part-0.parquet"), b"old").unwrap();
        std::fs::create_dir_all(killed.join("_previous/rejects")).unwrap();
        std::fs::write(killed.join("_previous/rejects/part-0.parquet"), b"old").unwrap();
        std::fs::create_dir_all(out.join("rejects")).unwrap();
        std::fs::write(out.join("rejects/part-0.parquet"), b"new").unwrap();
        // A run still going (this process), and one of another machine sharing --out.
        let running = out.join(format!("{STAGING_PREFIX}{host}-{}-2", std::process::id()));
        let other = out.join(format!("{STAGING_PREFIX}elsewhere-{dead}-3"));
        std::fs::create_dir_all(&running).unwrap();
        std::fs::create_dir_all(&other).unwrap();

        let staging = Staging::new(out).await.unwrap();
        assert!(!killed.exists());
        assert_eq!(
            std::fs::read(out.join("lead_scores/part-0.parquet")).unwrap(),
            b"old"
        );
        assert_eq!(
            std::fs::read(out.join("rejects/part-0.parquet")).unwrap(),
            b"new"
        );
        assert!(running.exists() && other.exists());
        drop(staging);
        assert!(running.exists() && other.exists());
    }

    /// The objects of bucket `bucket` (an in-memory store), key to contents.
    async fn objects(bucket: &str) -> Vec<(String, Vec<u8>)> {
        use object_store::ObjectStoreExt;
        let remote = Remote::of(Path::new(&format!("s3://{bucket}"))).unwrap();
        let mut all = Vec::new();
        for meta in remote.list().await.unwrap() {
            let bytes = remote.store.get(&meta.location).await;
            let bytes = bytes.unwrap().bytes().await.unwrap().to_vec();
            all.push((meta.location.to_string(), bytes));
        }
        all
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_object_store_out_is_staged_published_and_cleared_like_a_directory() {
        use datafusion::execution::object_store::ObjectStoreRegistry;
        use object_store::ObjectStoreExt;
        let bucket = "staging-unit-test";
        let url = url::Url::parse(&format!("s3://{bucket}")).unwrap();
        let store = Arc::new(object_store::memory::InMemory::new());
        crate::storage::registry().register_store(&url, store.clone());
        let put = |key: &str, bytes: &'static [u8]| {
            let store = store.clone();
            let key = object_store::path::Path::from(key);
            async move { store.put(&key, bytes.into()).await.unwrap() }
        };
        // Left by a run of this machine killed mid-publish, like the directory case above.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let killed = format!("out/{STAGING_PREFIX}{}-{dead}-1", host_name());
        put(
            &format!("{killed}/_previous/lead_scores/part-0.parquet"),
            b"old",
        )
        .await;
        put(&format!("{killed}/_steps/keys/part-0.parquet"), b"step").await;
        put("out/rejects/part-0.parquet", b"old rejects").await;
        put("out/notes.txt", b"kept").await;

        let out = PathBuf::from(format!("s3://{bucket}/out"));
        let staging = Staging::new(&out).await.unwrap();
        assert!(staging.is_remote());
        assert_eq!(
            objects(bucket).await,
            vec![
                ("out/lead_scores/part-0.parquet".into(), b"old".to_vec()),
                ("out/notes.txt".into(), b"kept".to_vec()),
                ("out/rejects/part-0.parquet".into(), b"old rejects".to_vec()),
            ]
        );

        // Tables are written locally, shipped (read back from the bucket), then published.
        for (name, bytes) in [("lead_scores", "new scores"), ("rejects", "new rejects")] {
            let dir = staging.table_dir(name).join("as_of=2026-01-01");
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("part-0.parquet"), bytes).unwrap();
            let shipped = staging.ship(&staging.table_dir(name)).await.unwrap();
            assert!(
                shipped
                    .to_string_lossy()
                    .starts_with("s3://staging-unit-test/out/.leadscore")
            );
        }
        std::fs::write(staging.table_dir("proposed.toml"), "x = 1").unwrap();
        staging
            .ship(&staging.table_dir("proposed.toml"))
            .await
            .unwrap();
        staging
            .publish_anywhere(&["lead_scores", "rejects"], &["proposed.toml", "absent"])
            .await
            .unwrap();
        assert_eq!(
            objects(bucket).await,
            vec![
                (
                    "out/lead_scores/as_of=2026-01-01/part-0.parquet".into(),
                    b"new scores".to_vec()
                ),
                ("out/notes.txt".into(), b"kept".to_vec()),
                ("out/proposed.toml".into(), b"x = 1".to_vec()),
                (
                    "out/rejects/as_of=2026-01-01/part-0.parquet".into(),
                    b"new rejects".to_vec()
                ),
            ]
        );

        // A run that ends without publishing removes what it uploaded.
        let before = objects(bucket).await;
        let staging = Staging::new(&out).await.unwrap();
        std::fs::create_dir_all(staging.step_dir("keys")).unwrap();
        std::fs::write(staging.step_dir("keys").join("part-0.parquet"), "s").unwrap();
        staging.ship(&staging.step_dir("keys")).await.unwrap();
        assert_ne!(objects(bucket).await, before);
        drop(staging);
        assert_eq!(objects(bucket).await, before);
    }

    /// An in-memory store one of whose copies fails: the one after `copies_left` more.
    #[derive(Debug)]
    struct FailingCopies {
        inner: object_store::memory::InMemory,
        copies_left: std::sync::atomic::AtomicUsize,
    }

    impl std::fmt::Display for FailingCopies {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "FailingCopies")
        }
    }

    #[async_trait::async_trait]
    impl object_store::ObjectStore for FailingCopies {
        async fn put_opts(
            &self,
            location: &object_store::path::Path,
            payload: object_store::PutPayload,
            opts: object_store::PutOptions,
        ) -> object_store::Result<object_store::PutResult> {
            self.inner.put_opts(location, payload, opts).await
        }
        async fn put_multipart_opts(
            &self,
            location: &object_store::path::Path,
            opts: object_store::PutMultipartOptions,
        ) -> object_store::Result<Box<dyn object_store::MultipartUpload>> {
            self.inner.put_multipart_opts(location, opts).await
        }
        async fn get_opts(
            &self,
            location: &object_store::path::Path,
            options: object_store::GetOptions,
        ) -> object_store::Result<object_store::GetResult> {
            self.inner.get_opts(location, options).await
        }
        fn delete_stream(
            &self,
            locations: futures::stream::BoxStream<
                'static,
                object_store::Result<object_store::path::Path>,
            >,
        ) -> futures::stream::BoxStream<'static, object_store::Result<object_store::path::Path>>
        {
            self.inner.delete_stream(locations)
        }
        fn list(
            &self,
            prefix: Option<&object_store::path::Path>,
        ) -> futures::stream::BoxStream<'static, object_store::Result<object_store::ObjectMeta>>
        {
            self.inner.list(prefix)
        }
        async fn list_with_delimiter(
            &self,
            prefix: Option<&object_store::path::Path>,
        ) -> object_store::Result<object_store::ListResult> {
            self.inner.list_with_delimiter(prefix).await
        }
        async fn copy_opts(
            &self,
            from: &object_store::path::Path,
            to: &object_store::path::Path,
            options: object_store::CopyOptions,
        ) -> object_store::Result<()> {
            use std::sync::atomic::Ordering;
            let left = self.copies_left.load(Ordering::SeqCst);
            if left == 0 {
                // One failure, as a dropped connection would give; the next copies work.
                self.copies_left.store(usize::MAX, Ordering::SeqCst);
                return Err(object_store::Error::Generic {
                    store: "FailingCopies",
                    source: "no more copies".into(),
                });
            }
            self.copies_left.store(left - 1, Ordering::SeqCst);
            self.inner.copy_opts(from, to, options).await
        }
    }

    // Publishing into an object store that fails part-way (while moving the previous table
    // aside, or while moving the new one in) leaves the previous table exactly as it was.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_publish_that_fails_midway_leaves_the_previous_table() {
        use datafusion::execution::object_store::ObjectStoreRegistry;
        use object_store::ObjectStoreExt;
        // The previous table has 3 objects, the new one 2: fail on the 2nd copy (moving
        // aside), then on the 5th (moving in, after the 3 of moving aside).
        for (bucket, copies) in [("failing-aside", 1), ("failing-in", 4)] {
            let url = url::Url::parse(&format!("s3://{bucket}")).unwrap();
            let store = Arc::new(FailingCopies {
                inner: object_store::memory::InMemory::new(),
                copies_left: usize::MAX.into(),
            });
            crate::storage::registry().register_store(&url, store.clone());
            for part in ["a", "b", "c"] {
                let key = object_store::path::Path::from(format!("out/t/{part}.parquet"));
                store.put(&key, b"old".as_slice().into()).await.unwrap();
            }
            let before = objects(bucket).await;
            let out = PathBuf::from(format!("s3://{bucket}/out"));
            let staging = Staging::new(&out).await.unwrap();
            std::fs::create_dir_all(staging.table_dir("t")).unwrap();
            for part in ["a", "z"] {
                let file = staging.table_dir("t").join(format!("{part}.parquet"));
                std::fs::write(file, "new").unwrap();
            }
            staging.ship(&staging.table_dir("t")).await.unwrap();
            store
                .copies_left
                .store(copies, std::sync::atomic::Ordering::SeqCst);
            let failed = staging.publish_anywhere(&["t"], &[]).await;
            assert!(failed.is_err(), "{bucket}");
            assert_eq!(objects(bucket).await, before, "{bucket}");
        }
    }

    use datafusion::arrow::array::Int64Array;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    fn rows_in(dir: &Path) -> usize {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|f| {
                let file = std::fs::File::open(f.unwrap().path()).unwrap();
                let reader = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
                reader.metadata().file_metadata().num_rows() as usize
            })
            .sum()
    }

    #[test]
    fn columns_encoded_on_several_threads_come_back_in_order_and_in_row_groups() {
        use datafusion::arrow::array::{ListArray, StringArray};
        use datafusion::arrow::datatypes::Int64Type;
        let dir = tempfile::tempdir().unwrap();
        let list = Field::new_list_field(DataType::Int64, true);
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
            Field::new("tallies", DataType::List(Arc::new(list)), true),
        ]));
        let rows = 2 * ROW_GROUP_ROWS + 1000;
        let batch_of = |from: usize, len: usize| {
            let ids = from..from + len;
            let n = Int64Array::from_iter_values(ids.clone().map(|i| i as i64));
            let name: StringArray = ids
                .clone()
                .map(|i| (i % 7 != 0).then(|| format!("lead-{}", i % 1000)))
                .collect();
            let tallies = ListArray::from_iter_primitive::<Int64Type, _, _>(
                ids.map(|i| (i % 5 != 0).then(|| vec![Some(i as i64), None])),
            );
            RecordBatch::try_new(
                schema.clone(),
                vec![Arc::new(n), Arc::new(name), Arc::new(tallies)],
            )
            .unwrap()
        };
        let path = dir.path().join("part-00000.parquet");
        let mut writer = ColumnWriters::create(&path, &schema, Packing::Published, 2).unwrap();
        // Batches that straddle the row-group boundaries.
        let mut expected = Vec::new();
        let mut from = 0;
        for len in std::iter::repeat([70_001, 3, 50_000]).flatten() {
            let len = len.min(rows - from);
            if len == 0 {
                break;
            }
            let batch = batch_of(from, len);
            expected.push(batch.clone());
            writer.write(batch).unwrap();
            from += len;
        }
        writer.close().unwrap();
        let reader =
            ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&path).unwrap()).unwrap();
        let groups: Vec<i64> = reader
            .metadata()
            .row_groups()
            .iter()
            .map(|g| g.num_rows())
            .collect();
        let full = ROW_GROUP_ROWS as i64;
        assert_eq!(groups, [full, full, 1000]);
        let read: Vec<RecordBatch> = reader.build().unwrap().map(|b| b.unwrap()).collect();
        let concat =
            |b: &[RecordBatch]| datafusion::arrow::compute::concat_batches(&schema, b).unwrap();
        assert_eq!(concat(&read), concat(&expected));
    }

    #[test]
    fn partitions_share_the_open_file_limit() {
        let (one, two) = (open_day_files(1), open_day_files(2));
        assert!((16..=4096).contains(&one) && (16..=4096).contains(&two));
        assert!(two <= one);
        // The limit was raised as far as allowed, and a second call sees it raised.
        let limit = raise_open_file_limit();
        assert_eq!(limit, raise_open_file_limit());
    }

    #[test]
    fn rows_are_grouped_by_day_keeping_their_order_within_a_day() {
        // Lead by lead, each lead's days in turn: reordered day by day.
        let (order, runs) = by_day(&Date32Array::from(vec![7, 14, 21, 7, 14, 7]));
        assert_eq!(order.unwrap().values().to_vec(), [0, 3, 5, 1, 4, 2]);
        assert_eq!(runs, [(7, 0..3), (14, 3..5), (21, 5..6)]);
        // Each day's rows already together: kept as they are, days in their order.
        let (order, runs) = by_day(&Date32Array::from(vec![14, 14, 7, 21, 21]));
        assert!(order.is_none());
        assert_eq!(runs, [(14, 0..2), (7, 2..3), (21, 3..5)]);
        let (order, runs) = by_day(&Date32Array::from(Vec::<i32>::new()));
        assert!(order.is_none() && runs.is_empty());
    }

    #[test]
    fn day_files_take_rows_in_any_order_with_few_files_open() {
        let dir = tempfile::tempdir().unwrap();
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
        let mut files = DayFiles::new(dir.path(), schema.clone(), Packing::Scratch, 3, 128);
        let days = 128 + 20;
        // Two rounds over every day: the second finds the first days' files closed.
        for round in 0..2 {
            for day in 0..days {
                let batch = RecordBatch::try_new(
                    schema.clone(),
                    vec![Arc::new(Int64Array::from(vec![i64::from(day); 3]))],
                )
                .unwrap();
                files.add(20_000 + day, batch).unwrap();
                if round == 0 || day % 2 == 0 {
                    files.write_pending(20_000 + day).unwrap();
                }
            }
        }
        assert!(files.open.len() <= 128);
        files.close().unwrap();
        let first = dir.path().join("as_of=2024-10-04");
        assert_eq!(rows_in(&first), 6);
        let mut names: Vec<String> = std::fs::read_dir(&first)
            .unwrap()
            .map(|f| f.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        // Day 0's first file was closed to open day 128's; its second round went to a new one.
        names.sort();
        assert_eq!(names, ["part-00003-001.parquet", "part-00003.parquet"]);
        let all: usize = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|d| rows_in(&d.unwrap().path()))
            .sum();
        assert_eq!(all, 6 * days as usize);
    }
}
