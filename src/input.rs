//! Reading the inputs of docs/scoring.md, "Reading the input": finding the events' Parquet files, checking every file's
//! columns before anything runs, and registering normalized tables for the queries.
//!
//! The queries always see the same shapes, whatever the files hold:
//! - `events`: `lead_id` (Int64 or Utf8View), `ts` (Timestamp(µs, "UTC")), `action`, `asset`,
//!   `product` (Utf8View), `value` (Float64), `event_id` (Int64 or Utf8View). Optional columns a
//!   file lacks read as nulls; other columns are left out.
//! - `leads`: `lead_id` (the events' type), `account_id`, then the file's other columns as read.
//! - `outcomes`: `lead_id` (the events' type), `opportunity_at` (Timestamp(µs, "UTC")).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::ListingOptions;
use datafusion::prelude::*;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::parquet_to_arrow_schema;

use crate::error::{Error, Result};
use crate::storage::{Remote, is_remote};
use crate::udf::lead_fold::utc_micros;

/// Whether ids are numbers or text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdKind {
    Int,
    Text,
}

impl IdKind {
    /// The Arrow type ids of this kind have inside the queries.
    pub fn data_type(&self) -> DataType {
        match self {
            IdKind::Int => DataType::Int64,
            IdKind::Text => DataType::Utf8View,
        }
    }

    /// The SQL type name used in casts.
    pub fn sql_type(&self) -> &'static str {
        match self {
            IdKind::Int => "bigint",
            IdKind::Text => "varchar",
        }
    }

    fn of(t: &DataType) -> Option<IdKind> {
        match t {
            t if t.is_integer() => Some(IdKind::Int),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Some(IdKind::Text),
            DataType::Dictionary(_, v) => IdKind::of(v).filter(|k| *k == IdKind::Text),
            _ => None,
        }
    }
}

/// One Parquet file of the events input.
#[derive(Clone, Debug)]
pub struct EventFile {
    pub path: PathBuf,
    pub rows: u64,
}

/// What we learned about the events input before running anything.
#[derive(Clone, Debug)]
pub struct EventsInput {
    /// The path the user gave (a file or a directory, local or an object-store URL).
    pub path: PathBuf,
    /// Whether `path` is a directory (a key prefix, in an object store).
    pub dir: bool,
    pub files: Vec<EventFile>,
    /// Hive partition keys, outermost first (`month=2026-01/...` gives `month`).
    pub partition_keys: Vec<String>,
    pub lead_id: IdKind,
    pub event_id: Option<IdKind>,
    /// The type of `ts` in the files, when they all have the same one (they are read with it);
    /// otherwise UTC microseconds, to which each file's own is cast.
    pub ts_type: DataType,
}

impl EventsInput {
    /// Total rows according to the files' footers.
    pub fn rows(&self) -> u64 {
        self.files.iter().map(|f| f.rows).sum()
    }
}

const REQUIRED: [&str; 3] = ["lead_id", "ts", "action"];

fn is_text(t: &DataType) -> bool {
    IdKind::of(t) == Some(IdKind::Text)
}

/// Lists the data files under `path` (a file, or a directory walked recursively; names starting
/// with `.` or `_` are skipped, like Spark's `_SUCCESS` and checksum files), and says whether
/// `path` is a directory. `path` may be an object-store URL (a key prefix is a directory).
async fn list_files(path: &Path) -> Result<(Vec<PathBuf>, bool)> {
    let cannot = |e: Error| Error::input(path, format!("cannot read the events input: {e}"));
    if is_remote(path) {
        let remote = Remote::of(path)?;
        if remote.object().await.map_err(cannot)?.is_some() {
            return Ok((vec![path.to_path_buf()], false));
        }
        let mut files = Vec::new();
        for meta in remote.children().await.map_err(cannot)? {
            let hidden = meta
                .location
                .prefix_match(&remote.key)
                .is_some_and(|mut parts| {
                    parts.any(|p| p.as_ref().starts_with('.') || p.as_ref().starts_with('_'))
                });
            if !hidden {
                files.push(remote.at(meta.location).path());
            }
        }
        if files.is_empty() {
            return Err(Error::input(
                path,
                "cannot read the events input: no such object, and no Parquet files under it",
            ));
        }
        return Ok((files, true));
    }
    let meta = std::fs::metadata(path)
        .map_err(|e| Error::input(path, format!("cannot read the events input: {e}")))?;
    if meta.is_file() {
        return Ok((vec![path.to_path_buf()], false));
    }
    let files =
        crate::storage::local_files(path, |name| name.starts_with('.') || name.starts_with('_'))
            .map_err(|(dir, e)| Error::input(dir, e.to_string()))?;
    if files.is_empty() {
        return Err(Error::input(path, "no Parquet files in this directory"));
    }
    Ok((files, true))
}

/// Whether the side input at `path` (a file or a directory, local or in an object store) is a
/// directory; an error when it does not exist.
async fn is_dir(path: &Path) -> Result<bool> {
    if is_remote(path) {
        let remote = Remote::of(path)?;
        let cannot = |e: Error| Error::input(path, format!("cannot read: {e}"));
        if remote.object().await.map_err(cannot)?.is_some() {
            return Ok(false);
        }
        if remote.has_children().await.map_err(cannot)? {
            return Ok(true);
        }
        return Err(Error::input(
            path,
            "cannot read: no such object, and nothing under it",
        ));
    }
    let meta =
        std::fs::metadata(path).map_err(|e| Error::input(path, format!("cannot read: {e}")))?;
    Ok(meta.is_dir())
}

/// The `key=value` directory names between `root` and `file`.
fn partition_keys_of(root: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(root).unwrap_or(file);
    let mut keys = Vec::new();
    if let Some(parent) = rel.parent() {
        for c in parent.components() {
            let c = c.as_os_str().to_string_lossy();
            if let Some((k, _)) = c.split_once('=') {
                keys.push(k.to_string());
            }
        }
    }
    keys
}

/// Reads one file's footer: its Arrow schema and row count.
async fn footer(path: &Path) -> Result<(SchemaRef, u64)> {
    let not_parquet =
        |e: parquet::errors::ParquetError| Error::input(path, format!("not a Parquet file ({e})"));
    if is_remote(path) {
        let metadata = Remote::of(path)?.parquet_metadata().await?;
        let meta = metadata.file_metadata();
        let schema = parquet_to_arrow_schema(meta.schema_descr(), meta.key_value_metadata())
            .map_err(not_parquet)?;
        return Ok((Arc::new(schema), meta.num_rows().max(0) as u64));
    }
    let file = File::open(path).map_err(|e| Error::input(path, format!("cannot open: {e}")))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(not_parquet)?;
    let rows = builder.metadata().file_metadata().num_rows().max(0) as u64;
    Ok((builder.schema().clone(), rows))
}

/// Finds and checks the events input: every file must be Parquet and carry `lead_id`, `ts` and
/// `action` (or get them from a hive partition key) with usable types.
pub async fn inspect_events(path: &Path) -> Result<EventsInput> {
    let (paths, dir) = list_files(path).await?;
    let root = if dir {
        path
    } else {
        path.parent().unwrap_or(path)
    };
    let partition_keys = if dir {
        partition_keys_of(root, &paths[0])
    } else {
        Vec::new()
    };
    let mut input = EventsInput {
        path: path.to_path_buf(),
        dir,
        files: Vec::new(),
        partition_keys: partition_keys.clone(),
        lead_id: IdKind::Text,
        event_id: None,
        ts_type: utc_micros(),
    };
    let mut ts_type: Option<DataType> = None;
    let mut ts_mixed = false;
    let mut lead_kind: Option<(IdKind, PathBuf)> = partition_keys
        .iter()
        .any(|k| k == "lead_id")
        .then(|| (IdKind::Text, path.to_path_buf()));
    let mut event_kind: Option<(IdKind, PathBuf)> = partition_keys
        .iter()
        .any(|k| k == "event_id")
        .then(|| (IdKind::Text, path.to_path_buf()));

    for p in paths {
        if dir && partition_keys_of(root, &p) != partition_keys {
            return Err(Error::input(
                &p,
                format!(
                    "hive partition directories differ from the other files' ({})",
                    if partition_keys.is_empty() {
                        "none".to_string()
                    } else {
                        partition_keys.join("/")
                    }
                ),
            ));
        }
        if dir && p.extension().is_none_or(|e| e != "parquet") {
            return Err(Error::input(
                &p,
                "not a Parquet file: files in an events directory must end in .parquet",
            ));
        }
        let (schema, rows) = footer(&p).await?;
        let column = |name: &str| {
            schema
                .field_with_name(name)
                .ok()
                .map(|f| f.data_type().clone())
        };
        for name in REQUIRED {
            if column(name).is_none() && !partition_keys.iter().any(|k| k == name) {
                return Err(Error::input(
                    &p,
                    format!(
                        "lacks the required column `{name}` (it has: {})",
                        names(&schema)
                    ),
                ));
            }
        }
        let wrong = |name: &str, t: &DataType, expected: &str| {
            Error::input(
                &p,
                format!("column `{name}` has type {t}; expected {expected}"),
            )
        };
        if let Some(t) = column("lead_id") {
            same_id_kind("lead_id", &t, &p, &mut lead_kind)?;
        }
        if let Some(t) = column("ts") {
            if !matches!(t, DataType::Timestamp(_, _)) {
                return Err(wrong("ts", &t, "a timestamp"));
            }
            // Files whose types differ are each cast to UTC microseconds instead.
            if *ts_type.get_or_insert_with(|| t.clone()) != t {
                ts_type = Some(utc_micros());
                ts_mixed = true;
            }
        }
        for name in ["action", "asset", "product"] {
            if let Some(t) = column(name)
                && !is_text(&t)
                && t != DataType::Null
            {
                return Err(wrong(name, &t, "Utf8 text"));
            }
        }
        if let Some(t) = column("value")
            && !(t.is_numeric() || t == DataType::Null)
        {
            return Err(wrong("value", &t, "Float64"));
        }
        if let Some(t) = column("event_id") {
            same_id_kind("event_id", &t, &p, &mut event_kind)?;
        }
        input.files.push(EventFile { path: p, rows });
    }
    input.lead_id = lead_kind.map_or(IdKind::Text, |(k, _)| k);
    input.event_id = event_kind.map(|(k, _)| k);
    input.ts_type = match ts_type {
        Some(t) if !ts_mixed => t,
        _ => utc_micros(),
    };
    Ok(input)
}

/// Checks that id column `name` of `file` is text or an integer, and of the same kind as in the
/// files seen before (`seen`: the kind and the first file that had it).
fn same_id_kind(
    name: &str,
    t: &DataType,
    file: &Path,
    seen: &mut Option<(IdKind, PathBuf)>,
) -> Result<()> {
    let kind = IdKind::of(t).ok_or_else(|| {
        Error::input(
            file,
            format!("column `{name}` has type {t}; expected Utf8 or Int64"),
        )
    })?;
    match seen {
        Some((k, other)) if *k != kind => Err(Error::input(
            file,
            format!(
                "column `{name}` has type {t}, but it is {} in {}",
                if *k == IdKind::Int {
                    "an integer"
                } else {
                    "text"
                },
                other.display()
            ),
        )),
        Some(_) => Ok(()),
        None => {
            *seen = Some((kind, file.to_path_buf()));
            Ok(())
        }
    }
}

fn names(schema: &Schema) -> String {
    schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Registers `events_input` (the files as read, with our types) and the `events` view.
pub async fn register_events(ctx: &SessionContext, input: &EventsInput) -> Result<()> {
    let text = DataType::Utf8View;
    let event_id_type = input.event_id.map_or(DataType::Utf8View, |k| k.data_type());
    let spec: Vec<(&str, DataType)> = vec![
        ("lead_id", input.lead_id.data_type()),
        ("ts", input.ts_type.clone()),
        ("action", text.clone()),
        ("asset", text.clone()),
        ("product", text.clone()),
        ("value", DataType::Float64),
        ("event_id", event_id_type),
    ];
    // File columns: every column of docs/scoring.md's events table that is not a partition key; files lacking an optional one
    // read it as nulls.
    let file_fields: Vec<Field> = spec
        .iter()
        .filter(|(n, _)| !input.partition_keys.iter().any(|k| k == n))
        .map(|(n, t)| Field::new(*n, t.clone(), true))
        .collect();
    let file_schema = Arc::new(Schema::new(file_fields));
    let partition_cols: Vec<(String, DataType)> = input
        .partition_keys
        .iter()
        .map(|k| (k.clone(), DataType::Utf8))
        .collect();

    let (table_path, extension) = if input.dir {
        (dir_url(&input.path), ".parquet".to_string())
    } else {
        (file_url(&input.path), String::new())
    };
    let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
        .with_file_extension(extension)
        .with_table_partition_cols(partition_cols);
    ctx.register_listing_table("events_input", table_path, options, Some(file_schema), None)
        .await?;

    let df = ctx.table("events_input").await?;
    let exprs: Vec<Expr> = spec
        .iter()
        .map(|(n, t)| {
            let column = cast(col(format!("\"{n}\"")), t.clone());
            match t {
                DataType::Timestamp(..) => utc(column, t).alias(*n),
                _ => column.alias(*n),
            }
        })
        .collect();
    let view = df.select(exprs)?;
    ctx.register_table("events", view.into_view())?;
    Ok(())
}

/// `ts` (of type `t`) as UTC microseconds. A time zone only labels values that are UTC instants
/// already, and docs/scoring.md reads a time without one as UTC: the values are relabelled, not
/// converted (Arrow's cast from a time without a zone to UTC works value by value through the
/// calendar, a tenth of a run). Other units are converted to microseconds first.
fn utc(ts: Expr, t: &DataType) -> Expr {
    let DataType::Timestamp(_, zone) = t else {
        return cast(ts, utc_micros());
    };
    let micros = DataType::Timestamp(
        datafusion::arrow::datatypes::TimeUnit::Microsecond,
        zone.clone(),
    );
    cast(cast(cast(ts, micros), DataType::Int64), utc_micros())
}

/// The URL DataFusion reads directory `path` by (a trailing `/` marks it as a directory): an
/// object-store URL as given, a local path made absolute.
pub(crate) fn dir_url(path: &Path) -> String {
    let mut s = file_url(path);
    if !s.ends_with('/') {
        s.push('/');
    }
    s
}

/// The URL DataFusion reads file `path` by.
fn file_url(path: &Path) -> String {
    if is_remote(path) {
        return path.to_string_lossy().to_string();
    }
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .to_string_lossy()
        .to_string()
}

/// Registers a side table (leads or outcomes) as read, before normalization, and checks it has
/// the `required` columns. Returns its column names.
async fn register_side_table(
    ctx: &SessionContext,
    name: &str,
    path: &Path,
    required: &[&str],
) -> Result<Vec<String>> {
    let dir = is_dir(path).await?;
    let is_csv = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    if is_csv {
        // Every CSV column is read as text: inferring types would turn ids such as "00123" into
        // numbers. Fit rules read numbers and dates out of text themselves.
        let cannot = |e: datafusion::error::DataFusionError| {
            Error::input(path, format!("cannot read as CSV: {e}"))
        };
        let options = CsvReadOptions::new().has_header(true);
        let inferred = ctx
            .read_csv(file_url(path), options.clone())
            .await
            .map_err(cannot)?;
        let text = Schema::new(
            inferred
                .schema()
                .fields()
                .iter()
                .map(|f| Field::new(f.name(), DataType::Utf8, true))
                .collect::<Vec<_>>(),
        );
        ctx.register_csv(name, file_url(path), options.schema(&text))
            .await
            .map_err(cannot)?;
    } else {
        if !dir {
            footer(path).await?;
        }
        let (url, ext) = if dir {
            (dir_url(path), ".parquet")
        } else {
            (file_url(path), "")
        };
        ctx.register_parquet(name, url, ParquetReadOptions::default().file_extension(ext))
            .await
            .map_err(|e| Error::input(path, format!("cannot read as Parquet: {e}")))?;
    }
    let schema = ctx.table(name).await?.schema().as_arrow().clone();
    let columns: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    for needed in required {
        if !columns.iter().any(|c| c == needed) {
            return Err(Error::input(
                path,
                format!(
                    "lacks the required column `{needed}` (it has: {})",
                    columns.join(", ")
                ),
            ));
        }
    }
    Ok(columns)
}

/// What the leads table offers.
#[derive(Clone, Debug)]
pub struct LeadsInput {
    pub path: Option<PathBuf>,
    /// Column names as read (for checking fit rules).
    pub columns: Vec<String>,
}

/// Registers `leads` (from `path`, or an empty table when there is none): `lead_id` cast to the
/// events' type, `account_id` (null when the file has none), then every other column as read.
pub async fn register_leads(
    ctx: &SessionContext,
    path: Option<&Path>,
    lead_id: IdKind,
    quick_check: bool,
) -> Result<LeadsInput> {
    let Some(path) = path else {
        let sql = format!(
            "select cast(null as {}) as lead_id, cast(null as varchar) as account_id where false",
            lead_id.sql_type()
        );
        let df = ctx.sql(&sql).await?;
        ctx.register_table("leads", df.into_view())?;
        return Ok(LeadsInput {
            path: None,
            columns: vec!["lead_id".into(), "account_id".into()],
        });
    };
    let columns = register_side_table(ctx, "leads_input", path, &["lead_id"]).await?;
    check_id_column(ctx, "leads_input", path, lead_id).await?;
    let df = ctx.table("leads_input").await?;
    let mut exprs = vec![
        cast(col("\"lead_id\""), lead_id.data_type()).alias("lead_id"),
        if columns.iter().any(|c| c == "account_id") {
            col("\"account_id\"")
        } else {
            lit(datafusion::common::ScalarValue::Utf8(None)).alias("account_id")
        },
    ];
    for c in &columns {
        if c != "lead_id" && c != "account_id" {
            exprs.push(col(format!("\"{c}\"")));
        }
    }
    let view = df.select(exprs)?.filter(col("lead_id").is_not_null())?;
    ctx.register_table("leads", view.into_view())?;

    // One row per lead: a repeated lead_id would make its scores ambiguous. Without a memory
    // limit, repeated_keys() (which sorts 8-byte keys: a tenth of a second less than grouping a
    // million ids) first says whether any key repeats; only then does the grouping query, which
    // can spill, look for the id (a text id's key is a hash, so a repeated key may be two ids).
    if quick_check && !any_repeated_key(ctx).await? {
        return Ok(LeadsInput {
            path: Some(path.to_path_buf()),
            columns,
        });
    }
    let dup = ctx
        .sql("select cast(lead_id as varchar) as id, count(*) as n from leads group by lead_id having count(*) > 1 order by id limit 1")
        .await?
        .collect()
        .await?;
    if let Some(batch) = dup.first().filter(|b| b.num_rows() > 0) {
        let id = datafusion::arrow::util::display::array_value_to_string(batch.column(0), 0)?;
        return Err(Error::input(
            path,
            format!("lead_id {id} appears more than once"),
        ));
    }
    Ok(LeadsInput {
        path: Some(path.to_path_buf()),
        columns,
    })
}

/// Whether two rows of `leads` may share a `lead_id`: whether any `event_key` of the ids repeats.
async fn any_repeated_key(ctx: &SessionContext) -> Result<bool> {
    use datafusion::arrow::array::AsArray;
    let batches = ctx
        .sql("select cast(coalesce(cardinality(repeated_keys(lead_id)), 0) as bigint) as n from leads")
        .await?
        .collect()
        .await?;
    Ok(batches.iter().any(|b| {
        b.num_rows() > 0
            && b.column(0)
                .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                .value(0)
                > 0
    }))
}

/// Checks that a side table's `lead_id` converts to the events' id type.
async fn check_id_column(
    ctx: &SessionContext,
    table: &str,
    path: &Path,
    kind: IdKind,
) -> Result<()> {
    let schema = ctx.table(table).await?.schema().as_arrow().clone();
    let t = schema.field_with_name("lead_id")?.data_type().clone();
    match (IdKind::of(&t), kind) {
        (Some(IdKind::Int), IdKind::Int) | (Some(_), IdKind::Text) => Ok(()),
        (Some(IdKind::Text), IdKind::Int) => {
            let sql = format!(
                "select lead_id from {table} where lead_id is not null and try_cast(lead_id as bigint) is null limit 1"
            );
            let bad = ctx.sql(&sql).await?.collect().await?;
            match bad.first().filter(|b| b.num_rows() > 0) {
                None => Ok(()),
                Some(b) => {
                    let v =
                        datafusion::arrow::util::display::array_value_to_string(b.column(0), 0)?;
                    Err(Error::input(
                        path,
                        format!(
                            "lead_id {v:?} is not an integer, but the events' lead_id is Int64"
                        ),
                    ))
                }
            }
        }
        (None, _) => Err(Error::input(
            path,
            format!("column `lead_id` has type {t}; expected Utf8 or Int64"),
        )),
    }
}

/// Registers `outcomes`: `lead_id` (the events' type) and `opportunity_at` (UTC).
pub async fn register_outcomes(ctx: &SessionContext, path: &Path, lead_id: IdKind) -> Result<()> {
    register_side_table(ctx, "outcomes_input", path, &["lead_id", "opportunity_at"]).await?;
    check_id_column(ctx, "outcomes_input", path, lead_id).await?;
    let schema = ctx
        .table("outcomes_input")
        .await?
        .schema()
        .as_arrow()
        .clone();
    let t = schema
        .field_with_name("opportunity_at")?
        .data_type()
        .clone();
    if !matches!(
        t,
        DataType::Timestamp(_, _)
            | DataType::Date32
            | DataType::Date64
            | DataType::Utf8
            | DataType::Utf8View
            | DataType::LargeUtf8
            | DataType::Null
    ) {
        return Err(Error::input(
            path,
            format!("column `opportunity_at` has type {t}; expected a timestamp"),
        ));
    }
    let text = matches!(t, DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8);
    let opportunity_at = if text {
        // A CSV cell is text: blank means "no opportunity", anything else must be a time.
        let sql = "select opportunity_at from outcomes_input \
                   where trim(opportunity_at) <> '' \
                     and try_cast(trim(opportunity_at) as timestamp) is null limit 1";
        let bad = ctx.sql(sql).await?.collect().await?;
        if let Some(b) = bad.first().filter(|b| b.num_rows() > 0) {
            let v = datafusion::arrow::util::display::array_value_to_string(b.column(0), 0)?;
            return Err(Error::input(
                path,
                format!(
                    "opportunity_at {v:?} is not a time (use e.g. 2026-03-01T14:30:00Z or \
                     2026-03-01)"
                ),
            ));
        }
        nullif(trim(vec![col("\"opportunity_at\"")]), lit(""))
    } else {
        col("\"opportunity_at\"")
    };
    let df = ctx.table("outcomes_input").await?.select(vec![
        cast(col("\"lead_id\""), lead_id.data_type()).alias("lead_id"),
        cast(
            opportunity_at,
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        )
        .alias("opportunity_at"),
    ])?;
    ctx.register_table("outcomes", df.into_view())?;
    Ok(())
}
