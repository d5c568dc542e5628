//! Seeded test data with the awkward cases mixed in, and writers for Parquet (single file or
//! hive directories) and CSV.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Float64Array, Int64Array, StringArray,
    TimestampMicrosecondArray, TimestampMillisecondArray, TimestampNanosecondArray,
    TimestampSecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

use super::data::{Cell, Event, Id, Lead, MICROS_PER_DAY, Outcome};

/// splitmix64: small, seeded, good enough for test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }

    pub fn shuffle<T>(&mut self, xs: &mut [T]) {
        for i in (1..xs.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            xs.swap(i, j);
        }
    }
}

/// What to generate.
#[derive(Clone, Debug)]
pub struct GenOptions {
    pub seed: u64,
    /// Leads with events; the leads table holds leads `21..=leads + 30`, so leads 1..=20 have
    /// events but no leads row and the last 30 have a row but no events.
    pub leads: usize,
    pub events: usize,
    pub int_ids: bool,
    pub int_event_ids: bool,
    /// Days of history from 2025-01-01.
    pub days: i64,
    /// As-of days the tests use: some leads get fit dates and times right on the edges of the
    /// `within_days` windows of these days.
    pub edge_days: Vec<NaiveDate>,
}

/// Generated inputs.
pub struct Dataset {
    pub events: Vec<Event>,
    pub leads: Vec<Lead>,
    /// Attribute columns of the leads, in order.
    pub attr_columns: Vec<String>,
}

pub fn base_micros() -> i64 {
    NaiveDate::from_ymd_opt(2025, 1, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp_micros()
}

fn lead_id(n: usize, int_ids: bool) -> Id {
    if int_ids {
        Id::Int(n as i64)
    } else {
        // Some text ids look like numbers with leading zeros.
        if n.is_multiple_of(7) {
            Id::Text(format!("{n:04}"))
        } else {
            Id::Text(format!("L{n}"))
        }
    }
}

const PAGES: &[Option<&str>] = &[
    Some("/pricing"),
    Some("/pricing/enterprise"),
    Some("/product/alpha"),
    Some("/product/beta/specs"),
    Some("/product"),
    Some("/careers"),
    Some("/careers/eng"),
    Some("/blog/post-1"),
    Some("/"),
    Some("/PRICING"),
    Some("/a.b?c[1]"),
    Some("/a.b?c[1]/more"),
    Some("/aXb?c[1]"),
    Some("/promo_50%off"),
    Some("/promoX50Yoff"),
    Some("/promo_50"),
    Some("/x\\y"),
    Some("/xy"),
    Some("/product/\u{fc}ber"),
    Some(""),
    None,
];

const DOWNLOADS: &[Option<&str>] = &[
    Some("wp-roi-guide"),
    Some("wp-guide"),
    Some("wp-security-guide-v2"),
    Some("case-study-1"),
    Some("case"),
    Some("datasheet"),
    None,
];

const ACTIONS: &[(&str, u32)] = &[
    ("page_view", 30),
    ("email_open", 14),
    ("email_click", 8),
    ("video_play", 10),
    ("webinar_signup", 4),
    ("form_submit", 4),
    ("download", 7),
    ("nps_response", 6),
    ("demo_request", 3),
    ("unsubscribe", 2),
    ("chat", 6),
    ("Page_View", 1),
    ("", 1),
];

fn pick_action(rng: &mut Rng) -> &'static str {
    let total: u32 = ACTIONS.iter().map(|a| a.1).sum();
    let mut r = rng.below(total as u64) as u32;
    for (a, w) in ACTIONS {
        if r < *w {
            return a;
        }
        r -= w;
    }
    unreachable!()
}

fn value_for(rng: &mut Rng, action: &str) -> Option<f64> {
    match action {
        "video_play" => {
            let r = rng.unit();
            if r < 0.04 {
                None
            } else if r < 0.07 {
                Some(*rng.pick(&[1.2, -0.1, 1.000001, 2.0, f64::NAN, f64::INFINITY]))
            } else if r < 0.12 {
                Some(*rng.pick(&[0.0, 1.0]))
            } else {
                Some((rng.unit() * 1000.0).round() / 1000.0)
            }
        }
        "nps_response" => {
            let r = rng.unit();
            if r < 0.04 {
                None
            } else if r < 0.08 {
                Some(*rng.pick(&[11.0, -1.0, 10.5, -0.0001, f64::NAN]))
            } else if r < 0.12 {
                Some(*rng.pick(&[8.5, 6.99, 9.0, 7.0, 0.0, 10.0]))
            } else {
                Some(rng.below(11) as f64)
            }
        }
        _ => {
            if rng.chance(0.5) {
                None
            } else {
                Some((rng.unit() * 20.0 - 5.0).round() / 4.0)
            }
        }
    }
}

/// Generates events and leads with the awkward cases mixed in.
pub fn generate(o: &GenOptions) -> Dataset {
    let mut rng = Rng::new(o.seed);
    let base = base_micros();
    let span = o.days * MICROS_PER_DAY;
    let mut events: Vec<Event> = Vec::new();
    let mut last_ts: BTreeMap<usize, i64> = BTreeMap::new();
    let mut next_event_id = 1i64;
    let event_id = |n: i64| {
        if o.int_event_ids {
            Id::Int(n * 3)
        } else {
            Id::Text(format!("e{n}"))
        }
    };
    for _ in 0..o.events {
        // A few busy leads, many quiet ones.
        let lead = if rng.chance(0.5) {
            1 + rng.below(40) as usize
        } else {
            1 + rng.below(o.leads as u64) as usize
        };
        let r = rng.unit();
        let ts = if r < 0.12 && last_ts.contains_key(&lead) {
            last_ts[&lead]
        } else if r < 0.18 {
            base + rng.below(o.days as u64) as i64 * MICROS_PER_DAY
        } else if r < 0.21 {
            base + (rng.below(o.days as u64) as i64 + 1) * MICROS_PER_DAY - 1
        } else if r < 0.24 {
            base + rng.below(o.days as u64) as i64 * MICROS_PER_DAY + MICROS_PER_DAY / 2
        } else if r < 0.5 {
            base + rng.below((span / 1_000_000) as u64) as i64 * 1_000_000
        } else {
            base + rng.below(span as u64) as i64
        };
        last_ts.insert(lead, ts);
        let action = pick_action(&mut rng);
        let asset = match action {
            "page_view" | "Page_View" => rng.pick(PAGES).map(str::to_string),
            "download" => rng.pick(DOWNLOADS).map(str::to_string),
            _ => rng.chance(0.3).then(|| format!("asset-{}", rng.below(5))),
        };
        let product = match rng.below(10) {
            0..=2 => Some("alpha".to_string()),
            3..=4 => Some("beta".to_string()),
            5 => Some("gamma".to_string()),
            _ => None,
        };
        let value = value_for(&mut rng, action);
        let eid = rng.chance(0.65).then(|| {
            next_event_id += 1;
            event_id(next_event_id)
        });
        let mut e = Event {
            lead_id: Some(lead_id(lead, o.int_ids)),
            ts: Some(ts),
            action: Some(action.to_string()),
            asset,
            product,
            value,
            event_id: eid,
        };
        match rng.below(100) {
            0 => e.lead_id = None,
            1 => e.ts = None,
            2 => e.action = None,
            _ => {}
        }
        events.push(e);
    }

    // Duplicated event ids: identical copies, and copies that differ.
    let originals: Vec<Event> = events
        .iter()
        .filter(|e| e.event_id.is_some())
        .cloned()
        .collect();
    for e in originals {
        if !rng.chance(0.08) {
            continue;
        }
        let mut copy = e.clone();
        match rng.below(9) {
            0..=2 => {}
            7 => copy.lead_id = Some(lead_id(1 + rng.below(o.leads as u64) as usize, o.int_ids)),
            3 | 4 => {
                copy.ts = e
                    .ts
                    .map(|t| t + (rng.below(6 * MICROS_PER_DAY as u64) as i64 - 3 * MICROS_PER_DAY))
            }
            5 => copy.ts = None,
            6 => {
                copy.value = Some(*rng.pick(&[0.5, 5.0, 42.0]));
                copy.asset = Some("/pricing".into());
            }
            _ => copy.lead_id = None,
        }
        events.push(copy.clone());
        if rng.chance(0.2) {
            events.push(copy);
        }
    }
    // Leads whose every row is bad (or dropped) must not appear: a bad fraction, a bad NPS
    // answer after the end of history (which must not move the default as-of day either), a
    // null action, and a duplicate whose kept (earliest) copy is bad while the dropped one is
    // good.
    let extra = |n: usize| Some(lead_id(o.leads + 30 + n, o.int_ids));
    let row =
        |lead: Option<Id>, ts: i64, action: &str, value: Option<f64>, id: Option<i64>| Event {
            lead_id: lead,
            ts: Some(ts),
            action: Some(action.to_string()),
            asset: None,
            product: Some("alpha".to_string()),
            value,
            event_id: id.map(event_id),
        };
    let mid = base + span / 2;
    events.push(row(extra(1), mid, "video_play", Some(3.0), None));
    events.push(row(
        extra(2),
        base + span + 10 * MICROS_PER_DAY,
        "nps_response",
        Some(-3.0),
        None,
    ));
    let mut no_action = row(extra(3), mid, "email_open", None, None);
    no_action.action = None;
    events.push(no_action);
    events.push(row(
        extra(4),
        mid,
        "video_play",
        Some(f64::NAN),
        Some(1_000_001),
    ));
    events.push(row(
        extra(4),
        mid + 1,
        "video_play",
        Some(0.5),
        Some(1_000_001),
    ));
    rng.shuffle(&mut events);

    // Leads table.
    let roles: &[Option<&str>] = &[
        Some("VP"),
        Some(" vp "),
        Some("Director"),
        Some("director of sales"),
        Some("C-level"),
        Some("engineer"),
        Some("vp, marketing"),
        Some("Analyst \"lead\""),
        Some("boss"),
        Some("Boss"),
        None,
    ];
    let budgets: &[Option<&str>] = &[
        Some("20000"),
        Some(" 35000 "),
        Some("n/a"),
        Some("15000.5"),
        Some("9999.99"),
        Some("50000"),
        Some("50000.01"),
        Some("1e4"),
        Some("-3"),
        None,
    ];
    let industries: &[Option<&str>] = &[
        Some("software"),
        Some("Software "),
        Some("finance"),
        Some("retail"),
        Some("FINANCE"),
        None,
    ];
    let attr_columns: Vec<String> = [
        "role",
        "company_size",
        "budget",
        "score_hint",
        "expected_purchase",
        "last_seen",
        "industry",
        "renewal",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut leads = Vec::new();
    let end_day = (base + span) / MICROS_PER_DAY;
    for n in 21..=o.leads + 30 {
        let account_id = (!rng.chance(0.15)).then(|| match 1 + rng.below(40) {
            k if k.is_multiple_of(3) => Id::Text(format!("{k:04}")),
            k => Id::Text(format!("acct-{k}")),
        });
        let mut attrs = std::collections::HashMap::new();
        attrs.insert(
            "role".to_string(),
            rng.pick(roles).map_or(Cell::Null, |s| Cell::Text(s.into())),
        );
        let size = match rng.below(10) {
            0 => Cell::Null,
            1 => Cell::Int(200),
            2 => Cell::Int(50),
            _ => Cell::Int(1 + rng.below(3000) as i64),
        };
        attrs.insert("company_size".to_string(), size);
        attrs.insert(
            "budget".to_string(),
            rng.pick(budgets)
                .map_or(Cell::Null, |s| Cell::Text(s.into())),
        );
        let hint = if rng.chance(0.1) {
            Cell::Null
        } else {
            Cell::Float((rng.unit() * 100.0).round() / 2.0)
        };
        attrs.insert("score_hint".to_string(), hint);
        let purchase = if rng.chance(0.1) {
            Cell::Null
        } else {
            Cell::Date((end_day - 200 + rng.below(400) as i64) as i32)
        };
        let edge = (!o.edge_days.is_empty() && rng.chance(0.3)).then(|| {
            let d = *rng.pick(&o.edge_days);
            (d + chrono::Days::new(1))
                .and_hms_opt(0, 0, 0)
                .unwrap()
                .and_utc()
                .timestamp_micros()
        });
        let purchase = match edge {
            Some(c) => Cell::Date((c / MICROS_PER_DAY + *rng.pick(&[-1, 0, 30, 90, 91])) as i32),
            None => purchase,
        };
        attrs.insert("expected_purchase".to_string(), purchase);
        let seen = if rng.chance(0.1) {
            Cell::Null
        } else {
            Cell::Ts(base + span / 2 + rng.below(span as u64) as i64 / 1_000_000 * 1_000_000)
        };
        let seen = match edge {
            Some(c) => Cell::Ts(
                c + *rng.pick(&[
                    -1,
                    0,
                    1_000_000,
                    MICROS_PER_DAY / 2,
                    MICROS_PER_DAY / 2 + 1,
                    30 * MICROS_PER_DAY,
                    30 * MICROS_PER_DAY + 1_000_000,
                ]),
            ),
            None => seen,
        };
        attrs.insert("last_seen".to_string(), seen);
        let renewal = match (edge, rng.below(6)) {
            (_, 0) => Cell::Null,
            (_, 1) => Cell::Text("soon".into()),
            (_, 2) => Cell::Text("2025-04-02T00:00:00".into()),
            (_, 3) => Cell::Text("2025-06-30 12:00:00".into()),
            (Some(c), _) => Cell::Text(
                chrono::DateTime::from_timestamp_micros(c + 60 * MICROS_PER_DAY)
                    .unwrap()
                    .format("%Y-%m-%d")
                    .to_string(),
            ),
            (None, _) => Cell::Text(format!(
                "2025-{:02}-{:02}",
                1 + rng.below(12),
                1 + rng.below(28)
            )),
        };
        attrs.insert("renewal".to_string(), renewal);
        attrs.insert(
            "industry".to_string(),
            rng.pick(industries)
                .map_or(Cell::Null, |s| Cell::Text(s.into())),
        );
        leads.push(Lead {
            lead_id: lead_id(n, o.int_ids),
            account_id,
            attrs,
        });
    }
    rng.shuffle(&mut leads);
    Dataset {
        events,
        leads,
        attr_columns,
    }
}

/// How events are laid out in Parquet.
#[derive(Clone, Debug)]
pub struct EventsLayout {
    pub unit: TimeUnit,
    pub tz: Option<&'static str>,
    pub asset: bool,
    pub product: bool,
    pub value: bool,
    pub event_id: bool,
    pub row_group: usize,
}

impl Default for EventsLayout {
    fn default() -> Self {
        EventsLayout {
            unit: TimeUnit::Microsecond,
            tz: Some("UTC"),
            asset: true,
            product: true,
            value: true,
            event_id: true,
            row_group: 700,
        }
    }
}

fn id_array(ids: Vec<Option<&Id>>, int: bool) -> ArrayRef {
    if int {
        Arc::new(Int64Array::from_iter(ids.into_iter().map(|i| {
            i.map(|i| match i {
                Id::Int(v) => *v,
                Id::Text(_) => panic!("mixed id kinds"),
            })
        })))
    } else {
        Arc::new(StringArray::from_iter(ids.into_iter().map(|i| {
            i.map(|i| match i {
                Id::Text(s) => s.clone(),
                Id::Int(v) => v.to_string(),
            })
        })))
    }
}

fn ts_array(ts: Vec<Option<i64>>, unit: TimeUnit, tz: Option<&str>) -> ArrayRef {
    let a: ArrayRef = match unit {
        TimeUnit::Second => Arc::new(TimestampSecondArray::from(
            ts.iter()
                .map(|t| t.map(|t| t / 1_000_000))
                .collect::<Vec<_>>(),
        )),
        TimeUnit::Millisecond => Arc::new(TimestampMillisecondArray::from(
            ts.iter().map(|t| t.map(|t| t / 1_000)).collect::<Vec<_>>(),
        )),
        TimeUnit::Microsecond => Arc::new(TimestampMicrosecondArray::from(ts)),
        TimeUnit::Nanosecond => Arc::new(TimestampNanosecondArray::from(
            ts.iter().map(|t| t.map(|t| t * 1_000)).collect::<Vec<_>>(),
        )),
    };
    match tz {
        None => a,
        Some(z) => match unit {
            TimeUnit::Second => Arc::new(
                a.as_any()
                    .downcast_ref::<TimestampSecondArray>()
                    .unwrap()
                    .clone()
                    .with_timezone(z),
            ),
            TimeUnit::Millisecond => Arc::new(
                a.as_any()
                    .downcast_ref::<TimestampMillisecondArray>()
                    .unwrap()
                    .clone()
                    .with_timezone(z),
            ),
            TimeUnit::Microsecond => Arc::new(
                a.as_any()
                    .downcast_ref::<TimestampMicrosecondArray>()
                    .unwrap()
                    .clone()
                    .with_timezone(z),
            ),
            TimeUnit::Nanosecond => Arc::new(
                a.as_any()
                    .downcast_ref::<TimestampNanosecondArray>()
                    .unwrap()
                    .clone()
                    .with_timezone(z),
            ),
        },
    }
}

fn texts(xs: Vec<Option<String>>) -> ArrayRef {
    Arc::new(StringArray::from(xs))
}

/// The events as one record batch; `skip` names columns left out (hive keys).
pub fn events_batch(events: &[Event], layout: &EventsLayout, skip: &[&str]) -> RecordBatch {
    let int_ids = events
        .iter()
        .find_map(|e| e.lead_id.as_ref())
        .is_some_and(|i| matches!(i, Id::Int(_)));
    let int_event_ids = events
        .iter()
        .find_map(|e| e.event_id.as_ref())
        .is_some_and(|i| matches!(i, Id::Int(_)));
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    let mut add = |name: &str, a: ArrayRef| {
        if !skip.contains(&name) {
            fields.push(Field::new(name, a.data_type().clone(), true));
            columns.push(a);
        }
    };
    // An ignored extra column first, to make sure columns are found by name.
    add(
        "channel",
        texts(events.iter().map(|_| Some("web".to_string())).collect()),
    );
    add(
        "lead_id",
        id_array(events.iter().map(|e| e.lead_id.as_ref()).collect(), int_ids),
    );
    add(
        "ts",
        ts_array(
            events.iter().map(|e| e.ts).collect(),
            layout.unit,
            layout.tz,
        ),
    );
    add(
        "action",
        texts(events.iter().map(|e| e.action.clone()).collect()),
    );
    if layout.asset {
        add(
            "asset",
            texts(events.iter().map(|e| e.asset.clone()).collect()),
        );
    }
    if layout.product {
        add(
            "product",
            texts(events.iter().map(|e| e.product.clone()).collect()),
        );
    }
    if layout.value {
        add(
            "value",
            Arc::new(Float64Array::from(
                events.iter().map(|e| e.value).collect::<Vec<_>>(),
            )),
        );
    }
    if layout.event_id {
        add(
            "event_id",
            id_array(
                events.iter().map(|e| e.event_id.as_ref()).collect(),
                int_event_ids,
            ),
        );
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
}

pub fn write_parquet(path: &Path, batch: &RecordBatch, row_group: usize) {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).unwrap();
    }
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(row_group.max(1)))
        .build();
    let file = File::create(path).unwrap();
    let mut w = ArrowWriter::try_new(file, batch.schema(), Some(props)).unwrap();
    w.write(batch).unwrap();
    w.close().unwrap();
}

/// Events as one Parquet file.
pub fn write_events_file(path: &Path, events: &[Event], layout: &EventsLayout) {
    write_parquet(path, &events_batch(events, layout, &[]), layout.row_group);
}

/// Events as a hive tree `source=<a|b>/product=<p>/part-<n>.parquet`; the product comes from the
/// directory name (a null product goes to `product=unknown`). Files under `source=a` use
/// `layout_a`, the others `layout_b`.
pub fn write_events_hive(
    dir: &Path,
    events: &[Event],
    layout_a: &EventsLayout,
    layout_b: &EventsLayout,
    rng: &mut Rng,
) {
    let mut groups: BTreeMap<(String, String), Vec<Event>> = BTreeMap::new();
    for e in events {
        let source = if rng.chance(0.5) { "a" } else { "b" };
        let product = e.product.clone().unwrap_or_else(|| "unknown".into());
        groups
            .entry((source.into(), product))
            .or_default()
            .push(e.clone());
    }
    for ((source, product), evs) in groups {
        let layout = if source == "a" { layout_a } else { layout_b };
        for (n, chunk) in evs.chunks(evs.len().div_ceil(2).max(1)).enumerate() {
            let path = dir
                .join(format!("source={source}"))
                .join(format!("product={product}"))
                .join(format!("part-{n}.parquet"));
            write_parquet(&path, &events_batch(chunk, layout, &["product"]), 300);
        }
    }
}

fn attr_array(leads: &[Lead], column: &str) -> ArrayRef {
    let cells: Vec<&Cell> = leads
        .iter()
        .map(|l| l.attrs.get(column).unwrap_or(&Cell::Null))
        .collect();
    let kind = cells.iter().find(|c| !matches!(c, Cell::Null));
    match kind {
        Some(Cell::Int(_)) => Arc::new(Int64Array::from_iter(cells.iter().map(|c| match c {
            Cell::Int(v) => Some(*v),
            _ => None,
        }))),
        Some(Cell::Float(_)) => Arc::new(Float64Array::from_iter(cells.iter().map(|c| match c {
            Cell::Float(v) => Some(*v),
            _ => None,
        }))),
        Some(Cell::Bool(_)) => Arc::new(BooleanArray::from_iter(cells.iter().map(|c| match c {
            Cell::Bool(v) => Some(*v),
            _ => None,
        }))),
        Some(Cell::Date(_)) => Arc::new(Date32Array::from_iter(cells.iter().map(|c| match c {
            Cell::Date(v) => Some(*v),
            _ => None,
        }))),
        Some(Cell::Ts(_)) => Arc::new(
            TimestampMicrosecondArray::from_iter(cells.iter().map(|c| match c {
                Cell::Ts(v) => Some(*v),
                _ => None,
            }))
            .with_timezone("UTC"),
        ),
        _ => Arc::new(StringArray::from_iter(cells.iter().map(|c| match c {
            Cell::Text(s) => Some(s.clone()),
            _ => None,
        }))),
    }
}

/// Leads as one Parquet file.
pub fn write_leads_parquet(path: &Path, data: &Dataset) {
    let int_ids = data
        .leads
        .first()
        .is_some_and(|l| matches!(l.lead_id, Id::Int(_)));
    let mut fields = vec![
        Field::new(
            "lead_id",
            if int_ids {
                DataType::Int64
            } else {
                DataType::Utf8
            },
            false,
        ),
        Field::new("account_id", DataType::Utf8, true),
    ];
    let mut columns: Vec<ArrayRef> = vec![
        id_array(
            data.leads.iter().map(|l| Some(&l.lead_id)).collect(),
            int_ids,
        ),
        id_array(
            data.leads.iter().map(|l| l.account_id.as_ref()).collect(),
            false,
        ),
    ];
    for c in &data.attr_columns {
        let a = attr_array(&data.leads, c);
        fields.push(Field::new(c, a.data_type().clone(), true));
        columns.push(a);
    }
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap();
    write_parquet(path, &batch, 100);
}

fn csv_field(c: &Cell) -> String {
    let text = match c {
        Cell::Null => return String::new(),
        Cell::Int(v) => v.to_string(),
        Cell::Float(v) => v.to_string(),
        Cell::Bool(v) => v.to_string(),
        Cell::Text(s) => s.clone(),
        Cell::Date(d) => (NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()
            + chrono::Duration::days(*d as i64))
        .to_string(),
        Cell::Ts(t) => chrono::DateTime::from_timestamp_micros(*t)
            .unwrap()
            .format("%Y-%m-%dT%H:%M:%S")
            .to_string(),
    };
    if text.contains([',', '"', '\n']) || text.starts_with(' ') || text.ends_with(' ') {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// Leads as CSV with a header row.
pub fn write_leads_csv(path: &Path, data: &Dataset) {
    let mut out = String::from("lead_id,account_id");
    for c in &data.attr_columns {
        out.push(',');
        out.push_str(c);
    }
    out.push('\n');
    for l in &data.leads {
        let id = match &l.lead_id {
            // Integer ids written with leading zeros now and then.
            Id::Int(v) if v % 5 == 0 => Cell::Text(format!("{v:05}")),
            Id::Int(v) => Cell::Int(*v),
            Id::Text(s) => Cell::Text(s.clone()),
        };
        out.push_str(&csv_field(&id));
        out.push(',');
        out.push_str(&csv_field(&match &l.account_id {
            None => Cell::Null,
            Some(Id::Int(v)) => Cell::Int(*v),
            Some(Id::Text(s)) => Cell::Text(s.clone()),
        }));
        for c in &data.attr_columns {
            out.push(',');
            out.push_str(&csv_field(l.attrs.get(c).unwrap_or(&Cell::Null)));
        }
        out.push('\n');
    }
    // A row without a lead_id is not a lead.
    out.push_str(",acct-1");
    for _ in &data.attr_columns {
        out.push(',');
    }
    out.push('\n');
    std::fs::write(path, out).unwrap();
}

fn midnight(d: NaiveDate) -> i64 {
    d.and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp_micros()
}

/// Outcomes for a generated dataset: about a third of the leads with events get an opportunity
/// somewhere among or after their events, some exactly at one of their events' instants (which
/// must not count as "before"), some exactly 90 days after one, some before their first event (so
/// they convert before any staged action), some right on the midnights of `edge_days` (window
/// bounds) or a microsecond before; half the leads that asked for a demo convert soon after it;
/// some leads have a later second row, null rows beside a real one, or only null rows; leads
/// without events (from the leads table and unknown ids) convert too, and a few rows have no
/// lead_id.
pub fn generate_outcomes(data: &Dataset, seed: u64, edge_days: &[NaiveDate]) -> Vec<Outcome> {
    let mut rng = Rng::new(seed);
    let int_ids = data
        .events
        .iter()
        .find_map(|e| e.lead_id.as_ref())
        .is_some_and(|i| matches!(i, Id::Int(_)));
    let mut by_lead: BTreeMap<Id, Vec<i64>> = BTreeMap::new();
    let mut demos: BTreeMap<Id, i64> = BTreeMap::new();
    for e in &data.events {
        if let (Some(id), Some(ts)) = (&e.lead_id, e.ts) {
            by_lead.entry(id.clone()).or_default().push(ts);
            if e.action.as_deref() == Some("demo_request") {
                let d = demos.entry(id.clone()).or_insert(ts);
                *d = (*d).min(ts);
            }
        }
    }
    let base = base_micros();
    let mut out = Vec::new();
    let push = |out: &mut Vec<Outcome>, id: Option<Id>, t: Option<i64>| {
        out.push(Outcome {
            lead_id: id,
            opportunity_at: t,
        })
    };
    for (id, ts) in &mut by_lead {
        ts.sort();
        let (first, any) = (ts[0], ts[rng.below(ts.len() as u64) as usize]);
        let r = rng.unit();
        let opp = if let Some(demo) = demos.get(id).filter(|_| rng.chance(0.5)) {
            // Demos lead to opportunities more often than other actions, so that lifts differ.
            demo + 1 + rng.below(10 * MICROS_PER_DAY as u64) as i64
        } else if r < 0.28 {
            any + rng.below(20 * MICROS_PER_DAY as u64) as i64
        } else if r < 0.31 {
            // A whole second, as CSV writers usually give.
            (any + rng.below(20 * MICROS_PER_DAY as u64) as i64).div_euclid(1_000_000) * 1_000_000
        } else if r < 0.36 {
            any
        } else if r < 0.39 {
            any + 90 * MICROS_PER_DAY + *rng.pick(&[0, 1])
        } else if r < 0.45 {
            first - *rng.pick(&[1, MICROS_PER_DAY, 20 * MICROS_PER_DAY])
        } else if r < 0.50 && !edge_days.is_empty() {
            midnight(*rng.pick(edge_days)) - *rng.pick(&[0, 0, 1])
        } else if r < 0.54 {
            push(&mut out, Some(id.clone()), None);
            continue;
        } else {
            continue;
        };
        push(&mut out, Some(id.clone()), Some(opp));
        if rng.chance(0.3) {
            let later = opp + 1 + rng.below(60 * MICROS_PER_DAY as u64) as i64;
            push(&mut out, Some(id.clone()), Some(later));
        }
        if rng.chance(0.15) {
            push(&mut out, Some(id.clone()), None);
        }
    }
    let span = (data.events.iter().filter_map(|e| e.ts).max().unwrap() - base).max(1);
    for l in &data.leads {
        if !by_lead.contains_key(&l.lead_id) && rng.chance(0.3) {
            let t = base + rng.below(span as u64) as i64;
            push(&mut out, Some(l.lead_id.clone()), Some(t));
        }
    }
    for n in 0..5 {
        let t = base + rng.below(span as u64) as i64;
        push(&mut out, Some(lead_id(9000 + n, int_ids)), Some(t));
    }
    for _ in 0..3 {
        let t = base + rng.below(span as u64) as i64;
        push(&mut out, None, Some(t));
    }
    rng.shuffle(&mut out);
    out
}

/// Outcomes as one Parquet file, `lead_id` of the ids' kind and `opportunity_at` in `unit`.
pub fn write_outcomes_parquet(
    path: &Path,
    outcomes: &[Outcome],
    unit: TimeUnit,
    tz: Option<&'static str>,
) {
    let int_ids = outcomes
        .iter()
        .find_map(|o| o.lead_id.as_ref())
        .is_some_and(|i| matches!(i, Id::Int(_)));
    let ids = id_array(
        outcomes.iter().map(|o| o.lead_id.as_ref()).collect(),
        int_ids,
    );
    let times: Vec<Option<i64>> = outcomes.iter().map(|o| o.opportunity_at).collect();
    // Times that the unit cannot hold exactly are truncated by the writer, so the caller keeps
    // them representable; extra columns come first to make sure columns are found by name.
    let source = texts(outcomes.iter().map(|_| Some("crm".to_string())).collect());
    let columns: Vec<ArrayRef> = vec![source, ts_array(times, unit, tz), ids];
    let fields: Vec<Field> = ["source", "opportunity_at", "lead_id"]
        .iter()
        .zip(&columns)
        .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
        .collect();
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap();
    write_parquet(path, &batch, 128);
}

/// Outcomes as CSV: times as `…T…Z` (fractional seconds when there are any), a midnight now and
/// then as a bare date, sometimes with surrounding spaces; integer ids now and then with leading
/// zeros; a blank cell for null.
pub fn write_outcomes_csv(path: &Path, outcomes: &[Outcome]) {
    let mut out = String::from("lead_id,opportunity_at,source\n");
    for (n, o) in outcomes.iter().enumerate() {
        match &o.lead_id {
            None => {}
            Some(Id::Int(v)) if v % 4 == 0 => out.push_str(&format!("{v:05}")),
            Some(Id::Int(v)) => out.push_str(&v.to_string()),
            Some(Id::Text(s)) => out.push_str(&csv_field(&Cell::Text(s.clone()))),
        }
        out.push(',');
        if let Some(t) = o.opportunity_at {
            let dt = chrono::DateTime::from_timestamp_micros(t).unwrap();
            let text = if t.rem_euclid(MICROS_PER_DAY) == 0 && n % 2 == 0 {
                dt.format("%Y-%m-%d").to_string()
            } else if t.rem_euclid(1_000_000) == 0 {
                dt.format("%Y-%m-%dT%H:%M:%SZ").to_string()
            } else {
                dt.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
            };
            if n % 7 == 3 {
                out.push_str(&format!("\" {text} \""));
            } else {
                out.push_str(&text);
            }
        }
        out.push_str(",crm\n");
    }
    std::fs::write(path, out).unwrap();
}
