//! Reading the published tables back and comparing them with the reference, row by row and
//! column by column.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type, TimeUnit};

use super::data::{Cell, Event, Id, IdKind, cell, read_parquet_file};
use super::oracle::{Reference, Reject};
use super::outcomes::{ReviewRef, WeightsRef};

/// One value of a published table.
#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    Null,
    I(i64),
    F(f64),
    S(String),
    B(bool),
    /// µs since the epoch.
    Ts(i64),
    /// Days since the epoch.
    D(i32),
}

impl std::fmt::Display for Val {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Val::Null => write!(f, "NULL"),
            Val::I(i) => write!(f, "{i}"),
            Val::F(x) => write!(f, "{x:?}"),
            Val::S(s) => write!(f, "{s:?}"),
            Val::B(b) => write!(f, "{b}"),
            Val::Ts(t) => match chrono::DateTime::from_timestamp_micros(*t) {
                Some(d) => write!(f, "{}", d.format("%Y-%m-%dT%H:%M:%S%.6fZ")),
                None => write!(f, "ts({t})"),
            },
            Val::D(d) => write!(f, "{}", day(*d)),
        }
    }
}

fn day(d: i32) -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).unwrap() + chrono::Duration::days(d as i64)
}

pub fn days_of(d: NaiveDate) -> i32 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()).num_days() as i32
}

impl From<&Id> for Val {
    fn from(id: &Id) -> Val {
        match id {
            Id::Int(i) => Val::I(*i),
            Id::Text(s) => Val::S(s.clone()),
        }
    }
}

pub fn opt<T>(v: Option<T>, f: impl FnOnce(T) -> Val) -> Val {
    v.map_or(Val::Null, f)
}

fn val_of(a: &ArrayRef, i: usize) -> Val {
    if a.is_null(i) {
        return Val::Null;
    }
    match a.data_type() {
        DataType::Float16 | DataType::Float32 | DataType::Float64 => {
            let c = cast(&a.slice(i, 1), &DataType::Float64).unwrap();
            Val::F(c.as_primitive::<Float64Type>().value(0))
        }
        DataType::UInt64 => {
            let c = cast(&a.slice(i, 1), &DataType::Int64).unwrap();
            Val::I(c.as_primitive::<Int64Type>().value(0))
        }
        _ => match cell(a, i) {
            Cell::Null => Val::Null,
            Cell::Int(v) => Val::I(v),
            Cell::Float(v) => Val::F(v),
            Cell::Text(s) => Val::S(s),
            Cell::Bool(b) => Val::B(b),
            Cell::Date(d) => Val::D(d),
            Cell::Ts(t) => Val::Ts(t),
        },
    }
}

/// A published table: its column types and its rows.
pub struct Table {
    pub columns: Vec<(String, DataType)>,
    pub rows: Vec<HashMap<String, Val>>,
}

fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Reads `out/<name>/*.parquet`.
pub fn read_table(out: &Path, name: &str) -> Table {
    let mut columns = Vec::new();
    let mut rows = Vec::new();
    for file in parquet_files(&out.join(name)) {
        for batch in read_parquet_file(&file) {
            let schema = batch.schema();
            if columns.is_empty() {
                columns = schema
                    .fields()
                    .iter()
                    .map(|f| (f.name().clone(), f.data_type().clone()))
                    .collect();
            }
            for i in 0..batch.num_rows() {
                let mut row = HashMap::new();
                for (f, a) in schema.fields().iter().zip(batch.columns()) {
                    row.insert(f.name().clone(), val_of(a, i));
                }
                rows.push(row);
            }
        }
    }
    Table { columns, rows }
}

pub type Row = HashMap<String, Val>;

/// Equal up to 1e-9 relative (absolute near zero) for floats; exact otherwise. A text and an
/// integer are equal when they read the same (account ids from an inferred CSV column).
pub fn same(expected: &Val, actual: &Val) -> bool {
    match (expected, actual) {
        (Val::F(a), Val::F(b)) => a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0),
        (Val::S(s), Val::I(i)) | (Val::I(i), Val::S(s)) => *s == i.to_string(),
        (a, b) => a == b,
    }
}

fn key_of(row: &Row, keys: &[&str]) -> String {
    keys.iter()
        .map(|k| {
            row.get(*k)
                .map_or("<absent>".to_string(), |v| v.to_string())
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

/// What one comparison found.
#[derive(Default)]
pub struct Report {
    /// What the reference computed, in a line (for messages).
    pub context: String,
    pub diffs: Vec<String>,
}

impl Report {
    pub fn push(&mut self, s: String) {
        self.diffs.push(s);
    }

    /// The first 20 differences, for a failure message.
    pub fn summary(&self, case: &str) -> String {
        let mut s = format!("{case}: {} difference(s)\n", self.diffs.len());
        for d in self.diffs.iter().take(20) {
            s.push_str("  ");
            s.push_str(d);
            s.push('\n');
        }
        s
    }
}

/// Compares rows keyed by `keys`, on `columns`.
pub fn compare_rows(
    report: &mut Report,
    table: &str,
    keys: &[&str],
    columns: &[String],
    expected: Vec<Row>,
    actual: &Table,
) {
    for c in columns
        .iter()
        .map(String::as_str)
        .chain(keys.iter().copied())
    {
        if !actual.columns.iter().any(|(n, _)| n == c) && !actual.rows.is_empty() {
            report.push(format!("{table}: column `{c}` is missing"));
        }
    }
    let mut got: BTreeMap<String, &Row> = BTreeMap::new();
    for r in &actual.rows {
        let k = key_of(r, keys);
        if got.insert(k.clone(), r).is_some() {
            report.push(format!("{table}: key [{k}] appears more than once"));
        }
    }
    let mut want: BTreeMap<String, Row> = BTreeMap::new();
    for r in expected {
        want.insert(key_of(&r, keys), r);
    }
    for (k, e) in &want {
        let Some(a) = got.get(k) else {
            report.push(format!("{table}: row [{k}] is missing"));
            continue;
        };
        for c in columns {
            let ev = &e[c];
            let Some(av) = a.get(c) else { continue };
            if !same(ev, av) {
                report.push(format!("{table} [{k}] {c}: expected {ev}, actual {av}"));
            }
        }
    }
    for k in got.keys() {
        if !want.contains_key(k) {
            report.push(format!("{table}: unexpected row [{k}]"));
        }
    }
}

fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
        || matches!(t, DataType::Dictionary(_, v) if is_text(v))
}

/// Checks column types that the docs fix (docs/bi.md, the README's "Output tables").
pub fn check_types(
    report: &mut Report,
    table: &str,
    actual: &Table,
    want: &[(&str, &str)],
    ids: IdKind,
) {
    for (name, kind) in want {
        let Some((_, t)) = actual.columns.iter().find(|(n, _)| n == name) else {
            continue;
        };
        let ok = match *kind {
            "date" => *t == DataType::Date32,
            "float" => *t == DataType::Float64,
            "int" => *t == DataType::Int64,
            "bool" => *t == DataType::Boolean,
            "text" => is_text(t),
            "ts" => {
                matches!(t, DataType::Timestamp(TimeUnit::Microsecond, Some(z)) if z.as_ref() == "UTC")
            }
            "id" => match ids {
                IdKind::Int => *t == DataType::Int64,
                IdKind::Text => is_text(t),
            },
            _ => true,
        };
        if !ok {
            report.push(format!(
                "{table}: column `{name}` has type {t}, expected {kind}"
            ));
        }
    }
}

fn event_row(e: &Event, reason: &str) -> Row {
    let mut r = Row::new();
    r.insert("lead_id".into(), opt(e.lead_id.as_ref(), Val::from));
    r.insert("ts".into(), opt(e.ts, Val::Ts));
    r.insert("action".into(), opt(e.action.clone(), Val::S));
    r.insert("asset".into(), opt(e.asset.clone(), Val::S));
    r.insert("product".into(), opt(e.product.clone(), Val::S));
    r.insert("value".into(), opt(e.value, Val::F));
    r.insert("event_id".into(), opt(e.event_id.as_ref(), Val::from));
    r.insert("reason".into(), Val::S(reason.to_string()));
    r
}

/// Compares the five published tables in `out` with the reference.
pub fn compare_outputs(reference: &Reference, out: &Path, ids: IdKind) -> Report {
    let mut report = Report::default();
    let as_of = Val::D(days_of(reference.as_of));

    // lead_scores
    let actual = read_table(out, "lead_scores");
    let tally_cols: Vec<String> = reference
        .stages
        .iter()
        .map(|s| format!("tally_{s}"))
        .collect();
    let mut types = vec![
        ("as_of", "date"),
        ("lead_id", "id"),
        ("engagement", "float"),
        ("fit", "float"),
        ("score", "float"),
        ("is_mql", "bool"),
        ("mql_at", "ts"),
        ("stage", "text"),
        ("last_activity", "ts"),
        ("is_cold", "bool"),
        ("nps", "float"),
        ("nps_class", "text"),
    ];
    for t in &tally_cols {
        types.push((t.as_str(), "int"));
    }
    check_types(&mut report, "lead_scores", &actual, &types, ids);
    let expected: Vec<Row> = reference
        .lead_scores
        .iter()
        .map(|l| {
            let mut r = Row::new();
            r.insert("as_of".into(), as_of.clone());
            r.insert("lead_id".into(), Val::from(&l.lead_id));
            r.insert("account_id".into(), opt(l.account_id.as_ref(), Val::from));
            r.insert("engagement".into(), Val::F(l.engagement));
            r.insert("fit".into(), Val::F(l.fit));
            r.insert("score".into(), Val::F(l.score));
            r.insert("is_mql".into(), Val::B(l.is_mql));
            r.insert("mql_at".into(), opt(l.mql_at, Val::Ts));
            r.insert("stage".into(), opt(l.stage.clone(), Val::S));
            for (c, n) in tally_cols.iter().zip(&l.tallies) {
                r.insert(c.clone(), Val::I(*n));
            }
            r.insert("last_activity".into(), opt(l.last_activity, Val::Ts));
            r.insert("is_cold".into(), Val::B(l.is_cold));
            r.insert("nps".into(), opt(l.nps, Val::F));
            r.insert("nps_class".into(), opt(l.nps_class, |s| Val::S(s.into())));
            r.insert("model_version".into(), Val::I(reference.model_version));
            r
        })
        .collect();
    let mut columns: Vec<String> = [
        "as_of",
        "account_id",
        "engagement",
        "fit",
        "score",
        "is_mql",
        "mql_at",
        "stage",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    columns.extend(tally_cols.iter().cloned());
    columns.extend(
        [
            "last_activity",
            "is_cold",
            "nps",
            "nps_class",
            "model_version",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    compare_rows(
        &mut report,
        "lead_scores",
        &["lead_id"],
        &columns,
        expected,
        &actual,
    );

    // lead_product_scores
    let actual = read_table(out, "lead_product_scores");
    check_types(
        &mut report,
        "lead_product_scores",
        &actual,
        &[
            ("as_of", "date"),
            ("lead_id", "id"),
            ("product", "text"),
            ("score", "float"),
        ],
        ids,
    );
    let expected = reference
        .product_scores
        .iter()
        .map(|p| {
            let mut r = Row::new();
            r.insert("as_of".into(), as_of.clone());
            r.insert("lead_id".into(), Val::from(&p.lead_id));
            r.insert("product".into(), Val::S(p.product.clone()));
            r.insert("score".into(), Val::F(p.score));
            r
        })
        .collect();
    let columns: Vec<String> = vec!["as_of".into(), "score".into()];
    compare_rows(
        &mut report,
        "lead_product_scores",
        &["lead_id", "product"],
        &columns,
        expected,
        &actual,
    );

    // account_scores
    let actual = read_table(out, "account_scores");
    check_types(
        &mut report,
        "account_scores",
        &actual,
        &[
            ("as_of", "date"),
            ("score", "float"),
            ("leads", "int"),
            ("engaged_leads", "int"),
            ("mql_leads", "int"),
            ("top_lead_id", "id"),
            ("stage", "text"),
            ("is_sales_ready", "bool"),
            ("nps", "float"),
        ],
        ids,
    );
    let expected = reference
        .accounts
        .iter()
        .map(|a| {
            let mut r = Row::new();
            r.insert("as_of".into(), as_of.clone());
            let account = match &a.account_id {
                Id::Int(i) => i.to_string(),
                Id::Text(s) => s.clone(),
            };
            r.insert("account_id".into(), Val::S(account));
            r.insert("score".into(), Val::F(a.score));
            r.insert("leads".into(), Val::I(a.leads));
            r.insert("engaged_leads".into(), Val::I(a.engaged_leads));
            r.insert("mql_leads".into(), Val::I(a.mql_leads));
            r.insert("top_lead_id".into(), Val::from(&a.top_lead_id));
            r.insert("stage".into(), opt(a.stage.clone(), Val::S));
            r.insert("is_sales_ready".into(), Val::B(a.is_sales_ready));
            r.insert("nps".into(), opt(a.nps, Val::F));
            r
        })
        .collect();
    let columns: Vec<String> = [
        "as_of",
        "score",
        "leads",
        "engaged_leads",
        "mql_leads",
        "top_lead_id",
        "stage",
        "is_sales_ready",
        "nps",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // Keys compare as text so that an account id read as a number still finds its row.
    let mut actual = actual;
    for r in &mut actual.rows {
        if let Some(Val::I(i)) = r.get("account_id").cloned() {
            r.insert("account_id".into(), Val::S(i.to_string()));
        }
    }
    compare_rows(
        &mut report,
        "account_scores",
        &["account_id"],
        &columns,
        expected,
        &actual,
    );

    // stage_report
    let actual = read_table(out, "stage_report");
    check_types(
        &mut report,
        "stage_report",
        &actual,
        &[
            ("as_of", "date"),
            ("stage", "text"),
            ("leads", "int"),
            ("share", "float"),
        ],
        ids,
    );
    let expected = reference
        .stage_report
        .iter()
        .map(|s| {
            let mut r = Row::new();
            r.insert("as_of".into(), as_of.clone());
            r.insert("stage".into(), opt(s.stage.clone(), Val::S));
            r.insert("leads".into(), Val::I(s.leads));
            r.insert("share".into(), opt(s.share, Val::F));
            r
        })
        .collect();
    let columns: Vec<String> = vec!["as_of".into(), "leads".into(), "share".into()];
    compare_rows(
        &mut report,
        "stage_report",
        &["stage"],
        &columns,
        expected,
        &actual,
    );

    compare_rejects(&mut report, &reference.rejects, out);
    report
}

/// Compares the published `rejects` table in `out` with the reference's, as a multiset of rows.
pub fn compare_rejects(report: &mut Report, rejects: &[Reject], out: &Path) {
    let actual = read_table(out, "rejects");
    let spec_cols = [
        "lead_id", "ts", "action", "asset", "product", "value", "event_id", "reason",
    ];
    let present: Vec<&str> = spec_cols
        .iter()
        .copied()
        .filter(|c| actual.columns.iter().any(|(n, _)| n == c))
        .collect();
    if !actual.rows.is_empty() || !rejects.is_empty() {
        for c in spec_cols {
            if !present.contains(&c) {
                report.push(format!("rejects: column `{c}` is missing"));
            }
        }
    }
    let line = |r: &Row| {
        present
            .iter()
            .map(|c| format!("{c}={}", r.get(*c).unwrap_or(&Val::Null)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut want: BTreeMap<String, i64> = BTreeMap::new();
    for r in rejects {
        *want
            .entry(line(&event_row(&r.event, r.reason)))
            .or_default() += 1;
    }
    for r in &actual.rows {
        *want.entry(line(r)).or_default() -= 1;
    }
    for (l, n) in want {
        if n > 0 {
            report.push(format!("rejects: missing {n}x [{l}]"));
        } else if n < 0 {
            report.push(format!("rejects: unexpected {}x [{l}]", -n));
        }
    }
}

fn rows_of<T>(items: &[T], row: impl Fn(&T) -> Vec<(&'static str, Val)>) -> Vec<Row> {
    items
        .iter()
        .map(|x| {
            row(x)
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect()
        })
        .collect()
}

fn names(cols: &[&str]) -> Vec<String> {
    cols.iter().map(|s| s.to_string()).collect()
}

/// Compares the four tables `weights` published in `out` with the reference.
pub fn compare_weights(reference: &WeightsRef, out: &Path) -> Report {
    let mut report = Report::default();

    let actual = read_table(out, "stage_tallies");
    check_types(
        &mut report,
        "stage_tallies",
        &actual,
        &[
            ("stage", "text"),
            ("converted_leads", "int"),
            ("avg_tally", "float"),
            ("points_per_action", "float"),
        ],
        IdKind::Text,
    );
    let expected = rows_of(&reference.stage_tallies, |s| {
        vec![
            ("stage", Val::S(s.stage.clone())),
            ("converted_leads", Val::I(s.converted_leads)),
            ("avg_tally", opt(s.avg_tally, Val::F)),
            ("points_per_action", opt(s.points_per_action, Val::F)),
        ]
    });
    let order: Vec<Val> = actual
        .rows
        .iter()
        .map(|r| r.get("stage").cloned().unwrap_or(Val::Null))
        .collect();
    let want: Vec<Val> = reference
        .stage_tallies
        .iter()
        .map(|s| Val::S(s.stage.clone()))
        .collect();
    if order != want {
        report.push(format!(
            "stage_tallies: stages in the order {order:?}, expected {want:?}"
        ));
    }
    compare_rows(
        &mut report,
        "stage_tallies",
        &["stage"],
        &names(&["converted_leads", "avg_tally", "points_per_action"]),
        expected,
        &actual,
    );

    let actual = read_table(out, "stage_tally_trend");
    check_types(
        &mut report,
        "stage_tally_trend",
        &actual,
        &[
            ("month", "date"),
            ("stage", "text"),
            ("converted_leads", "int"),
            ("avg_tally", "float"),
        ],
        IdKind::Text,
    );
    let expected = rows_of(&reference.trend, |t| {
        vec![
            ("month", Val::D(days_of(t.month))),
            ("stage", Val::S(t.stage.clone())),
            ("converted_leads", Val::I(t.converted_leads)),
            ("avg_tally", Val::F(t.avg_tally)),
        ]
    });
    compare_rows(
        &mut report,
        "stage_tally_trend",
        &["month", "stage"],
        &names(&["converted_leads", "avg_tally"]),
        expected,
        &actual,
    );

    let actual = read_table(out, "action_lift");
    check_types(
        &mut report,
        "action_lift",
        &actual,
        &[
            ("action", "text"),
            ("assets", "text"),
            ("leads", "int"),
            ("converted", "int"),
            ("conversion_rate", "float"),
            ("lift", "float"),
        ],
        IdKind::Text,
    );
    if let Some((_, t)) = actual.columns.iter().find(|(n, _)| n == "rule")
        && !matches!(t, DataType::Int32 | DataType::Int64)
    {
        report.push(format!("action_lift: column `rule` has type {t}"));
    }
    let expected = rows_of(&reference.lift, |l| {
        vec![
            ("rule", Val::I(l.rule)),
            ("action", Val::S(l.action.clone())),
            ("assets", opt(l.assets.clone(), Val::S)),
            ("leads", Val::I(l.leads)),
            ("converted", Val::I(l.converted)),
            ("conversion_rate", opt(l.conversion_rate, Val::F)),
            ("lift", opt(l.lift, Val::F)),
        ]
    });
    compare_rows(
        &mut report,
        "action_lift",
        &["rule"],
        &names(&[
            "action",
            "assets",
            "leads",
            "converted",
            "conversion_rate",
            "lift",
        ]),
        expected,
        &actual,
    );

    compare_rejects(&mut report, &reference.rejects, out);
    report
}

/// Compares the `model_review` table in `out` with the reference, row by row in model order.
pub fn compare_review(reference: &[ReviewRef], out: &Path) -> Report {
    let mut report = Report::default();
    let actual = read_table(out, "model_review");
    check_types(
        &mut report,
        "model_review",
        &actual,
        &[
            ("name", "text"),
            ("version", "int"),
            ("created", "date"),
            ("notes", "text"),
            ("mqls", "int"),
            ("mql_to_opportunity", "float"),
            ("opportunity_coverage", "float"),
            ("median_days_to_opportunity", "float"),
            ("next_review", "date"),
        ],
        IdKind::Text,
    );
    let columns = [
        "name",
        "version",
        "created",
        "notes",
        "mqls",
        "mql_to_opportunity",
        "opportunity_coverage",
        "median_days_to_opportunity",
        "next_review",
    ];
    let got: Vec<&str> = actual.columns.iter().map(|(n, _)| n.as_str()).collect();
    if got != columns {
        report.push(format!(
            "model_review: columns {got:?}, expected {columns:?}"
        ));
    }
    if actual.rows.len() != reference.len() {
        report.push(format!(
            "model_review: {} rows, expected {}",
            actual.rows.len(),
            reference.len()
        ));
    }
    let expected = rows_of(reference, |r| {
        vec![
            ("name", Val::S(r.name.clone())),
            ("version", Val::I(r.version)),
            ("created", opt(r.created.map(days_of), Val::D)),
            ("notes", Val::S(r.notes.clone())),
            ("mqls", Val::I(r.mqls)),
            ("mql_to_opportunity", opt(r.mql_to_opportunity, Val::F)),
            ("opportunity_coverage", opt(r.opportunity_coverage, Val::F)),
            (
                "median_days_to_opportunity",
                opt(r.median_days_to_opportunity, Val::F),
            ),
            ("next_review", opt(r.next_review.map(days_of), Val::D)),
        ]
    });
    for (i, (e, a)) in expected.iter().zip(&actual.rows).enumerate() {
        for c in columns {
            let ev = &e[c];
            let av = a.get(c).unwrap_or(&Val::Null);
            if !same(ev, av) {
                report.push(format!(
                    "model_review row {i} ({}) {c}: expected {ev}, actual {av}",
                    e["name"]
                ));
            }
        }
    }
    report
}
