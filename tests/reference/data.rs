//! Input rows for the reference: events and leads read straight from Parquet (or CSV) files with
//! the Arrow reader, normalized into plain Rust values.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use chrono::{NaiveDate, NaiveDateTime};
use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Float64Type, Int64Type, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};
use datafusion::arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

pub const MICROS_PER_DAY: i64 = 86_400_000_000;

/// A lead or event id: numbers compare as numbers, text in byte order.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Id {
    Int(i64),
    Text(String),
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Id::Int(i) => write!(f, "{i}"),
            Id::Text(s) => write!(f, "{s:?}"),
        }
    }
}

/// One events row, as read (`ts` in µs since the epoch, UTC).
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub lead_id: Option<Id>,
    pub ts: Option<i64>,
    pub action: Option<String>,
    pub asset: Option<String>,
    pub product: Option<String>,
    pub value: Option<f64>,
    pub event_id: Option<Id>,
}

/// One attribute value of a leads row.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Float(f64),
    Text(String),
    Bool(bool),
    /// Days since the epoch.
    Date(i32),
    /// µs since the epoch, UTC.
    Ts(i64),
}

/// One leads row.
#[derive(Clone, Debug, PartialEq)]
pub struct Lead {
    pub lead_id: Id,
    pub account_id: Option<Id>,
    pub attrs: HashMap<String, Cell>,
}

/// Whether ids are numbers or text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdKind {
    Int,
    Text,
}

fn id_kind(t: &DataType) -> Option<IdKind> {
    match t {
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => Some(IdKind::Int),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Some(IdKind::Text),
        DataType::Dictionary(_, v) => id_kind(v),
        _ => None,
    }
}

/// The `.parquet` files of an events input with their hive `key=value` pairs.
fn event_files(path: &Path) -> Vec<(PathBuf, Vec<(String, String)>)> {
    if path.is_file() {
        return vec![(path.to_path_buf(), Vec::new())];
    }
    let mut out = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read events dir") {
            let p = entry.expect("dir entry").path();
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            if name.starts_with('.') || name.starts_with('_') {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else if name.ends_with(".parquet") {
                let rel = p.strip_prefix(path).unwrap();
                let mut keys = Vec::new();
                if let Some(parent) = rel.parent() {
                    for c in parent.components() {
                        let c = c.as_os_str().to_string_lossy().to_string();
                        if let Some((k, v)) = c.split_once('=') {
                            keys.push((k.to_string(), v.to_string()));
                        }
                    }
                }
                out.push((p, keys));
            }
        }
    }
    out.sort();
    out
}

/// All record batches of one Parquet file.
pub fn read_parquet_file(path: &Path) -> Vec<RecordBatch> {
    let file = File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap_or_else(|e| panic!("parquet {}: {e}", path.display()))
        .build()
        .expect("parquet reader");
    reader.map(|b| b.expect("record batch")).collect()
}

fn texts(a: &ArrayRef) -> Vec<Option<String>> {
    let a = cast(a, &DataType::Utf8).expect("cast to text");
    let a = a.as_string::<i32>();
    (0..a.len())
        .map(|i| a.is_valid(i).then(|| a.value(i).to_string()))
        .collect()
}

fn ints(a: &ArrayRef) -> Vec<Option<i64>> {
    let a = cast(a, &DataType::Int64).expect("cast to int");
    let a = a.as_primitive::<Int64Type>();
    (0..a.len())
        .map(|i| a.is_valid(i).then(|| a.value(i)))
        .collect()
}

fn floats(a: &ArrayRef) -> Vec<Option<f64>> {
    let a = cast(a, &DataType::Float64).expect("cast to float");
    let a = a.as_primitive::<Float64Type>();
    (0..a.len())
        .map(|i| a.is_valid(i).then(|| a.value(i)))
        .collect()
}

fn ids(a: &ArrayRef) -> Vec<Option<Id>> {
    match id_kind(a.data_type()).expect("id column type") {
        IdKind::Int => ints(a).into_iter().map(|v| v.map(Id::Int)).collect(),
        IdKind::Text => texts(a).into_iter().map(|v| v.map(Id::Text)).collect(),
    }
}

/// Timestamps of any unit as µs since the epoch (the zone does not change the instant).
fn micros(a: &ArrayRef) -> Vec<Option<i64>> {
    let (unit, _) = match a.data_type() {
        DataType::Timestamp(u, tz) => (*u, tz.clone()),
        t => panic!("ts has type {t}"),
    };
    let n = a.len();
    let get = |i: usize| -> Option<i64> {
        if a.is_null(i) {
            return None;
        }
        Some(match unit {
            TimeUnit::Second => a.as_primitive::<TimestampSecondType>().value(i) * 1_000_000,
            TimeUnit::Millisecond => a.as_primitive::<TimestampMillisecondType>().value(i) * 1_000,
            TimeUnit::Microsecond => a.as_primitive::<TimestampMicrosecondType>().value(i),
            TimeUnit::Nanosecond => a
                .as_primitive::<TimestampNanosecondType>()
                .value(i)
                .div_euclid(1_000),
        })
    };
    (0..n).map(get).collect()
}

/// Reads an events input (a file, or a directory tree of `.parquet` files with hive keys).
pub fn read_events(path: &Path) -> (Vec<Event>, IdKind) {
    let mut events = Vec::new();
    let mut lead_kind = None;
    for (file, keys) in event_files(path) {
        for batch in read_parquet_file(&file) {
            let n = batch.num_rows();
            let schema = batch.schema();
            let col = |name: &str| -> Option<ArrayRef> {
                schema.index_of(name).ok().map(|i| batch.column(i).clone())
            };
            let key = |name: &str| -> Option<String> {
                keys.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
            };
            let text_col = |name: &str| -> Vec<Option<String>> {
                match (key(name), col(name)) {
                    (Some(v), _) => vec![Some(v); n],
                    (None, Some(a)) if a.data_type() != &DataType::Null => texts(&a),
                    _ => vec![None; n],
                }
            };
            let id_col = |name: &str| -> Vec<Option<Id>> {
                match (key(name), col(name)) {
                    (Some(v), _) => vec![Some(Id::Text(v)); n],
                    (None, Some(a)) if a.data_type() != &DataType::Null => ids(&a),
                    _ => vec![None; n],
                }
            };
            if key("lead_id").is_some() {
                lead_kind = Some(IdKind::Text);
            } else if let Some(a) = col("lead_id") {
                lead_kind = id_kind(a.data_type());
            }
            let lead_id = id_col("lead_id");
            let ts = match col("ts") {
                Some(a) => micros(&a),
                None => vec![None; n],
            };
            let action = text_col("action");
            let asset = text_col("asset");
            let product = text_col("product");
            let value = match col("value") {
                Some(a) if a.data_type() != &DataType::Null => floats(&a),
                _ => vec![None; n],
            };
            let event_id = id_col("event_id");
            for i in 0..n {
                events.push(Event {
                    lead_id: lead_id[i].clone(),
                    ts: ts[i],
                    action: action[i].clone(),
                    asset: asset[i].clone(),
                    product: product[i].clone(),
                    value: value[i],
                    event_id: event_id[i].clone(),
                });
            }
        }
    }
    (events, lead_kind.unwrap_or(IdKind::Text))
}

/// One value of an Arrow array as a [`Cell`].
pub fn cell(a: &ArrayRef, i: usize) -> Cell {
    if a.is_null(i) {
        return Cell::Null;
    }
    match a.data_type() {
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => Cell::Int(ints(&a.slice(i, 1))[0].unwrap()),
        DataType::Float16 | DataType::Float32 | DataType::Float64 => {
            Cell::Float(floats(&a.slice(i, 1))[0].unwrap())
        }
        DataType::Boolean => Cell::Bool(a.as_boolean().value(i)),
        DataType::Date32 => Cell::Date(a.as_primitive::<Date32Type>().value(i)),
        DataType::Timestamp(_, _) => Cell::Ts(micros(&a.slice(i, 1))[0].unwrap()),
        DataType::Null => Cell::Null,
        _ => Cell::Text(texts(&a.slice(i, 1))[0].clone().unwrap()),
    }
}

fn lead_id_of(text: &str, kind: IdKind) -> Id {
    match kind {
        IdKind::Int => Id::Int(text.trim().parse().expect("integer lead_id")),
        IdKind::Text => Id::Text(text.to_string()),
    }
}

/// Reads a leads table (CSV by extension, else Parquet); `kind` is the events' lead_id kind.
pub fn read_leads(path: &Path, kind: IdKind) -> Vec<Lead> {
    let is_csv = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let mut leads = Vec::new();
    if is_csv {
        let text = std::fs::read_to_string(path).expect("read leads csv");
        let mut rows = parse_csv(&text).into_iter();
        let header: Vec<String> = rows
            .next()
            .expect("csv header")
            .into_iter()
            .map(|h| h.unwrap_or_default())
            .collect();
        for row in rows {
            let mut lead_id = None;
            let mut account_id = None;
            let mut attrs = HashMap::new();
            for (name, v) in header.iter().zip(row) {
                match name.as_str() {
                    "lead_id" => lead_id = v.map(|v| lead_id_of(&v, kind)),
                    "account_id" => account_id = v.map(Id::Text),
                    _ => {
                        attrs.insert(name.clone(), v.map_or(Cell::Null, Cell::Text));
                    }
                }
            }
            if let Some(lead_id) = lead_id {
                leads.push(Lead {
                    lead_id,
                    account_id,
                    attrs,
                });
            }
        }
        return leads;
    }
    let files: Vec<PathBuf> = if path.is_dir() {
        event_files(path).into_iter().map(|(p, _)| p).collect()
    } else {
        vec![path.to_path_buf()]
    };
    for file in files {
        for batch in read_parquet_file(&file) {
            let schema = batch.schema();
            for i in 0..batch.num_rows() {
                let mut lead_id = None;
                let mut account_id = None;
                let mut attrs = HashMap::new();
                for (f, a) in schema.fields().iter().zip(batch.columns()) {
                    match f.name().as_str() {
                        "lead_id" => {
                            lead_id = match cell(a, i) {
                                Cell::Null => None,
                                Cell::Int(v) => Some(match kind {
                                    IdKind::Int => Id::Int(v),
                                    IdKind::Text => Id::Text(v.to_string()),
                                }),
                                Cell::Text(s) => Some(lead_id_of(&s, kind)),
                                c => panic!("lead_id {c:?}"),
                            }
                        }
                        "account_id" => {
                            account_id = match cell(a, i) {
                                Cell::Null => None,
                                Cell::Int(v) => Some(Id::Int(v)),
                                Cell::Text(s) => Some(Id::Text(s)),
                                c => panic!("account_id {c:?}"),
                            }
                        }
                        name => {
                            attrs.insert(name.to_string(), cell(a, i));
                        }
                    }
                }
                if let Some(lead_id) = lead_id {
                    leads.push(Lead {
                        lead_id,
                        account_id,
                        attrs,
                    });
                }
            }
        }
    }
    leads
}

/// One outcomes row (docs/weights.md): `opportunity_at` in µs since the epoch, UTC.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub lead_id: Option<Id>,
    pub opportunity_at: Option<i64>,
}

/// Reads an outcomes table (CSV by extension, else Parquet); `kind` is the events' lead_id kind.
/// In CSV every cell is text: a blank `opportunity_at` is null, anything else a time.
pub fn read_outcomes(path: &Path, kind: IdKind) -> Vec<Outcome> {
    let is_csv = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let mut out = Vec::new();
    if is_csv {
        let text = std::fs::read_to_string(path).expect("read outcomes csv");
        let mut rows = parse_csv(&text).into_iter();
        let header: Vec<String> = rows
            .next()
            .expect("csv header")
            .into_iter()
            .map(|h| h.unwrap_or_default())
            .collect();
        let at = |name: &str| header.iter().position(|h| h == name).expect(name);
        let (id_at, opp_at) = (at("lead_id"), at("opportunity_at"));
        for row in rows {
            let cell = |i: usize| row.get(i).cloned().flatten();
            let opportunity_at = cell(opp_at)
                .filter(|t| !t.trim().is_empty())
                .map(|t| parse_time(&t).unwrap_or_else(|| panic!("not a time: {t:?}")));
            out.push(Outcome {
                lead_id: cell(id_at).map(|v| lead_id_of(&v, kind)),
                opportunity_at,
            });
        }
        return out;
    }
    for batch in read_parquet_file(path) {
        let schema = batch.schema();
        let col = |name: &str| batch.column(schema.index_of(name).expect(name)).clone();
        let (ids_col, opp_col) = (col("lead_id"), col("opportunity_at"));
        let lead_ids: Vec<Option<Id>> = ids(&ids_col)
            .into_iter()
            .map(|id| match (id, kind) {
                (Some(Id::Int(v)), IdKind::Text) => Some(Id::Text(v.to_string())),
                (Some(Id::Text(s)), IdKind::Int) => Some(lead_id_of(&s, kind)),
                (id, _) => id,
            })
            .collect();
        for (i, lead_id) in lead_ids.into_iter().enumerate() {
            let opportunity_at = match cell(&opp_col, i) {
                Cell::Null => None,
                Cell::Ts(t) => Some(t),
                Cell::Date(d) => Some(d as i64 * MICROS_PER_DAY),
                Cell::Text(s) if s.trim().is_empty() => None,
                Cell::Text(s) => Some(parse_time(&s).expect("a time")),
                c => panic!("opportunity_at {c:?}"),
            };
            out.push(Outcome {
                lead_id,
                opportunity_at,
            });
        }
    }
    out
}

/// A small CSV parser: comma-separated fields, optional double quotes (`""` inside quotes is a
/// quote), `\n` or `\r\n` line ends. An empty field is null.
pub fn parse_csv(text: &str) -> Vec<Vec<Option<String>>> {
    let mut rows = Vec::new();
    let mut row: Vec<Option<String>> = Vec::new();
    let mut field = String::new();
    let mut in_quotes = false;
    let mut chars = text.chars().peekable();
    let mut row_has_content = false;
    let finish = |field: &mut String, row: &mut Vec<Option<String>>| {
        let f = std::mem::take(field);
        row.push(if f.is_empty() { None } else { Some(f) });
    };
    while let Some(c) = chars.next() {
        if in_quotes {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    field.push('"');
                } else {
                    in_quotes = false;
                }
            } else {
                field.push(c);
            }
            continue;
        }
        match c {
            '"' => {
                in_quotes = true;
                row_has_content = true;
            }
            ',' => {
                finish(&mut field, &mut row);
                row_has_content = true;
            }
            '\r' => {}
            '\n' => {
                if row_has_content || !field.is_empty() {
                    finish(&mut field, &mut row);
                    rows.push(std::mem::take(&mut row));
                }
                row_has_content = false;
            }
            c => {
                field.push(c);
                row_has_content = true;
            }
        }
    }
    if row_has_content || !field.is_empty() {
        finish(&mut field, &mut row);
        rows.push(row);
    }
    rows
}

/// Parses text as a time: a date (its midnight) or a date-time, `T` or space separated, with
/// optional fractional seconds and an optional `Z`.
pub fn parse_time(text: &str) -> Option<i64> {
    let t = text.trim();
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Some(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_micros());
    }
    let t = t.strip_suffix('Z').unwrap_or(t);
    for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(t, f) {
            return Some(dt.and_utc().timestamp_micros());
        }
    }
    None
}
