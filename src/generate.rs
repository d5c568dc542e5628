//! Deterministic synthetic marketing data: leads, accounts, activity events and outcomes.
//!
//! The data is meant to look like a real B2B marketing log and to carry a real signal, so that
//! model weights can be derived from it:
//!
//! * every lead has a latent *intent* in 0..1; higher intent means more events, a journey that gets
//!   further through the buying stages (awareness → consideration → decision), more senior roles,
//!   budgets and near purchase dates, and conversion;
//! * conversion (`outcomes.parquet`) happens mostly to leads that reached the decision stage;
//! * accounts and per-lead event counts follow power laws;
//! * about 0.1 % of the rows are broken on purpose (null keys, out-of-range values, duplicates).
//!
//! Everything comes from a small PRNG of our own (SplitMix64 seeding xoshiro256**). Each lead has
//! its own streams derived from `(seed, lead index)`, so the same options give byte-identical
//! files. Events are produced a chunk of leads at a time, sorted by time within the chunk and
//! streamed to Parquet, so memory stays bounded whatever the number of events.
//!
//! Layout under `out/`:
//!
//! ```text
//! events/part-00000.parquet              (or events/month=2025-03/part-00000.parquet)
//! leads.parquet                          (or leads.csv)
//! outcomes.parquet
//! ```

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Datelike, Days, NaiveDate};
use datafusion::arrow::array::{
    ArrayRef, Date32Builder, Float64Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use datafusion::arrow::csv;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::error::{Error, Result};

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

/// The type of `lead_id` in every generated file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IdType {
    /// `Int64`: 1, 2, 3, ...
    #[default]
    Int,
    /// `Utf8`: "L0000001", "L0000002", ...
    Text,
}

impl FromStr for IdType {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "int" | "int64" | "integer" => Ok(IdType::Int),
            "text" | "string" | "utf8" => Ok(IdType::Text),
            other => Err(Error::Config(format!(
                "unknown id type {other:?} (expected \"int\" or \"text\")"
            ))),
        }
    }
}

/// The file format of the leads table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LeadsFormat {
    /// `leads.parquet`.
    #[default]
    Parquet,
    /// `leads.csv`, with a header line; dates as `YYYY-MM-DD`, nulls as empty fields.
    Csv,
}

impl FromStr for LeadsFormat {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "parquet" => Ok(LeadsFormat::Parquet),
            "csv" => Ok(LeadsFormat::Csv),
            other => Err(Error::Config(format!(
                "unknown leads format {other:?} (expected \"parquet\" or \"csv\")"
            ))),
        }
    }
}

/// What to generate and where.
#[derive(Clone, Debug)]
pub struct GenerateOptions {
    /// Number of leads.
    pub leads: u64,
    /// Number of good event rows (bad and duplicate rows come on top).
    pub events: u64,
    /// Number of accounts; `None` means `max(1, leads / 12)`.
    pub accounts: Option<u64>,
    pub seed: u64,
    /// Output directory; created if missing. `out/events` must not hold anything yet.
    pub out: PathBuf,
    pub id_type: IdType,
    pub leads_format: LeadsFormat,
    /// Write events as `events/month=YYYY-MM/part-NNNNN.parquet` (the month is not a column).
    pub partition_by_month: bool,
    /// A new events file starts after this many rows (per month directory when partitioned).
    pub rows_per_file: usize,
    /// Last day of activity.
    pub end: NaiveDate,
    /// Length of the history in days; events lie in `[end - days, end + 1 day)`.
    pub days: u32,
    /// Show a progress bar on stderr.
    pub progress: bool,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            leads: 1000,
            events: 50_000,
            accounts: None,
            seed: 42,
            out: PathBuf::from("generated"),
            id_type: IdType::Int,
            leads_format: LeadsFormat::Parquet,
            partition_by_month: false,
            rows_per_file: 1_000_000,
            end: NaiveDate::from_ymd_opt(2026, 9, 30).expect("a valid date"),
            days: 730,
            progress: false,
        }
    }
}

/// What [`generate`] wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GenerateSummary {
    /// Rows in the leads file.
    pub leads: u64,
    /// Distinct `account_id`s that appear in the leads file.
    pub accounts: u64,
    /// Good event rows (exactly `opts.events`).
    pub events: u64,
    /// Broken event rows with an id of their own: null `lead_id`, null `ts`, null `action`,
    /// `video_play` with a value outside 0..1 or null, `nps_response` with a value outside 0..10.
    pub bad_rows: u64,
    /// Rows that repeat an earlier row's `event_id` (most exact copies, a few with another `ts`).
    /// The events files hold `events + bad_rows + duplicate_rows` rows in all.
    pub duplicate_rows: u64,
    /// Leads with at least one non-null `opportunity_at`.
    pub converted_leads: u64,
    /// Number of events files written (the leads and outcomes files are not counted).
    pub files: usize,
}

/// The schema of the events files.
pub fn events_schema(id_type: IdType) -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("event_id", DataType::Int64, false),
        Field::new("lead_id", lead_id_type(id_type), true),
        Field::new("ts", timestamp_type(), true),
        Field::new("action", DataType::Utf8, true),
        Field::new("asset", DataType::Utf8, true),
        Field::new("product", DataType::Utf8, true),
        Field::new("value", DataType::Float64, true),
        Field::new("channel", DataType::Utf8, true),
    ]))
}

/// The schema of the leads file.
pub fn leads_schema(id_type: IdType) -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("lead_id", lead_id_type(id_type), false),
        Field::new("account_id", DataType::Utf8, true),
        Field::new("role", DataType::Utf8, true),
        Field::new("company_size", DataType::Int64, true),
        Field::new("industry", DataType::Utf8, true),
        Field::new("budget", DataType::Float64, true),
        Field::new("email_domain", DataType::Utf8, true),
        Field::new("expected_purchase", DataType::Date32, true),
    ]))
}

/// The schema of the outcomes file.
pub fn outcomes_schema(id_type: IdType) -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("lead_id", lead_id_type(id_type), false),
        Field::new("opportunity_at", timestamp_type(), true),
    ]))
}

/// Writes the synthetic data set described by `opts` and says what it wrote.
pub fn generate(opts: &GenerateOptions) -> Result<GenerateSummary> {
    check_options(opts)?;
    let window = Window::new(opts.end, opts.days)?;
    prepare_output(&opts.out)?;

    let plan = Plan::build(opts, &window)?;
    let total_rows = opts.events + plan.bad_rows + plan.duplicate_rows;

    let progress = opts
        .progress
        .then(|| crate::progress::events_bar(total_rows, "generate"));

    let mut events = EventSink::new(opts);
    let mut leads = LeadsSink::create(opts)?;
    let outcomes_path = opts.out.join("outcomes.parquet");
    let outcomes_schema = outcomes_schema(opts.id_type);
    let mut outcomes = ArrowWriter::try_new(
        create_file(&outcomes_path)?,
        outcomes_schema.clone(),
        Some(writer_properties(ROW_GROUP_ROWS)),
    )?;

    let mut lead_gen = LeadGenerator {
        seed: opts.seed,
        window,
        scratch: Vec::new(),
    };
    let mut rows: Vec<Row> = Vec::new();
    let mut lead_rows: Vec<LeadRow> = Vec::new();
    let mut outcome_rows: Vec<(u64, Option<i64>)> = Vec::new();
    let mut next_id: i64 = 1;
    let mut bad_cursor = 0usize;
    let mut converted = 0u64;

    let mut start = 0u64;
    while start < opts.leads {
        // A chunk: up to CHUNK_LEADS leads, cut early once CHUNK_ROWS planned rows are reached.
        let mut end = start;
        let mut planned = 0u64;
        while end < opts.leads
            && end - start < CHUNK_LEADS
            && (end == start || planned < CHUNK_ROWS)
        {
            planned += plan.counts[end as usize];
            end += 1;
        }

        rows.clear();
        lead_rows.clear();
        outcome_rows.clear();
        for idx in start..end {
            let account = plan.account_of(idx);
            let lead = make_lead(
                opts.seed,
                idx,
                account.map(|a| (a, &plan.accounts[a as usize])),
                window.end_day32,
            );
            let n = plan.counts[idx as usize];
            let first = rows.len();
            let first_decision = lead_gen.events(idx, &lead, n, next_id, &mut rows);
            next_id += n as i64;

            let bad_begin = bad_cursor;
            while bad_cursor < plan.bad.len() && plan.bad[bad_cursor].0 == idx {
                bad_cursor += 1;
            }
            next_id = lead_gen.bad_rows(
                idx,
                &plan.bad[bad_begin..bad_cursor],
                first,
                n,
                next_id,
                &mut rows,
            );

            let before = outcome_rows.len();
            lead_gen.outcome(
                idx,
                &lead,
                &rows[first..first + n as usize],
                first_decision,
                &mut outcome_rows,
            );
            if outcome_rows[before..].iter().any(|(_, t)| t.is_some()) {
                converted += 1;
            }
            lead_rows.push(LeadRow { idx, account, lead });
        }

        // Roughly time-ordered files, as real logs are. The sort is stable, so a duplicate stays
        // after the row it copies.
        rows.sort_by_key(|r| r.ts);
        events.write_chunk(&rows)?;
        if let Some(bar) = &progress {
            bar.inc(rows.len() as u64);
        }

        leads.write(&lead_rows, opts.id_type)?;
        if !outcome_rows.is_empty() {
            let batch = outcomes_batch(&outcomes_schema, opts.id_type, &outcome_rows)?;
            outcomes.write(&batch)?;
        }
        start = end;
    }

    let files = events.finish()?;
    leads.finish()?;
    outcomes.close()?;
    if let Some(bar) = progress {
        bar.finish();
    }

    Ok(GenerateSummary {
        leads: opts.leads,
        accounts: plan.used_accounts,
        events: opts.events,
        bad_rows: plan.bad_rows,
        duplicate_rows: plan.duplicate_rows,
        converted_leads: converted,
        files,
    })
}

// ---------------------------------------------------------------------------------------------
// Options, output directory, time window
// ---------------------------------------------------------------------------------------------

/// Leads per chunk.
const CHUNK_LEADS: u64 = 20_000;
/// A chunk ends early once its leads have this many planned good rows.
const CHUNK_ROWS: u64 = 500_000;
/// Rows per RecordBatch written.
const BATCH_ROWS: usize = 65_536;
/// Most rows in one Parquet row group.
const ROW_GROUP_ROWS: usize = 1 << 20;

const MICROS_PER_SECOND: i64 = 1_000_000;
const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SECOND;

fn check_options(opts: &GenerateOptions) -> Result<()> {
    if opts.rows_per_file == 0 {
        return Err(Error::Config("rows per file must be at least 1".into()));
    }
    if opts.leads == 0 && opts.events > 0 {
        return Err(Error::Config(format!(
            "cannot generate {} events without any lead",
            opts.events
        )));
    }
    if opts.accounts == Some(0) && opts.leads > 0 {
        return Err(Error::Config(
            "the number of accounts must be at least 1".into(),
        ));
    }
    if opts.leads > u64::from(u32::MAX) {
        return Err(Error::Config(format!(
            "at most {} leads can be generated, not {}",
            u32::MAX,
            opts.leads
        )));
    }
    Ok(())
}

/// Creates `out` and refuses to go on when `out/events` already holds something.
fn prepare_output(out: &Path) -> Result<()> {
    let events = out.join("events");
    if events.exists() {
        let mut entries = fs::read_dir(&events)
            .map_err(|e| Error::io(format!("reading {}", events.display()), e))?;
        if entries.next().is_some() {
            return Err(Error::Config(format!(
                "{} already exists and is not empty; refusing to overwrite it",
                events.display()
            )));
        }
    }
    fs::create_dir_all(&events)
        .map_err(|e| Error::io(format!("creating {}", events.display()), e))?;
    Ok(())
}

fn create_file(path: &Path) -> Result<File> {
    File::create(path).map_err(|e| Error::io(format!("creating {}", path.display()), e))
}

fn writer_properties(row_group_rows: usize) -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(3).expect("3 is a valid zstd level"),
        ))
        .set_max_row_group_row_count(Some(row_group_rows.max(1)))
        .build()
}

fn lead_id_type(id_type: IdType) -> DataType {
    match id_type {
        IdType::Int => DataType::Int64,
        IdType::Text => DataType::Utf8,
    }
}

fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// The activity window `[start, end)` in microseconds since the epoch.
#[derive(Clone, Copy, Debug)]
struct Window {
    start: i64,
    end: i64,
    /// `opts.end` as days since the epoch (Date32).
    end_day32: i32,
}

impl Window {
    fn new(end: NaiveDate, days: u32) -> Result<Self> {
        let first = end
            .checked_sub_days(Days::new(u64::from(days)))
            .ok_or_else(|| Error::Config(format!("{days} days before {end} is out of range")))?;
        let after = end
            .checked_add_days(Days::new(1))
            .ok_or_else(|| Error::Config(format!("the day after {end} is out of range")))?;
        let micros = |d: NaiveDate| {
            d.and_hms_opt(0, 0, 0)
                .expect("midnight exists")
                .and_utc()
                .timestamp_micros()
        };
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("a valid date");
        Ok(Window {
            start: micros(first),
            end: micros(after),
            end_day32: (end - epoch).num_days() as i32,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// PRNG
// ---------------------------------------------------------------------------------------------

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Independent random streams, one per purpose.
const D_ACCOUNT: u64 = 1;
const D_ASSIGN: u64 = 2;
const D_PROFILE: u64 = 3;
const D_EVENTS: u64 = 4;
const D_OUTCOME: u64 = 5;
const D_BAD: u64 = 6;
const D_GLOBAL: u64 = 7;

/// xoshiro256**.
struct Rng {
    s: [u64; 4],
}

impl Rng {
    fn from_seed(seed: u64) -> Self {
        let mut sm = seed;
        Rng {
            s: [
                splitmix64(&mut sm),
                splitmix64(&mut sm),
                splitmix64(&mut sm),
                splitmix64(&mut sm),
            ],
        }
    }

    /// The stream for `(seed, domain, index)`.
    fn stream(seed: u64, domain: u64, index: u64) -> Self {
        let mut a = seed;
        let mut b = splitmix64(&mut a) ^ domain.wrapping_mul(0xD1B5_4A32_D192_ED03);
        let mut c = splitmix64(&mut b) ^ index.wrapping_mul(0x8CB9_2BA7_2F3D_8DD7);
        Rng::from_seed(splitmix64(&mut c))
    }

    fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in `[0, 1)`.
    fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `[0, n)`; `n` must be positive.
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }

    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.f64()
    }

    /// Exponential with the given mean.
    fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.f64()).ln()
    }

    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.f64();
        let u2 = self.f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Pareto with minimum 1 and tail index `alpha`.
    fn pareto(&mut self, alpha: f64) -> f64 {
        (1.0 - self.f64()).powf(-1.0 / alpha)
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    /// An index drawn with the given (non-negative, not all zero) weights.
    fn weighted(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        let mut x = self.f64() * total;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    }
}

// ---------------------------------------------------------------------------------------------
// Vocabulary
// ---------------------------------------------------------------------------------------------

const PRODUCTS: [&str; 3] = ["analytics", "crm", "ads"];

const INDUSTRIES: [&str; 9] = [
    "Software",
    "Retail",
    "Financial Services",
    "Healthcare",
    "Manufacturing",
    "Education",
    "Media",
    "Logistics",
    "Public Sector",
];

/// Canonical role and messy spellings of it.
const ROLES: [(&str, [&str; 3]); 8] = [
    ("C-Level", ["c-level", " C-Level", "C-LEVEL "]),
    ("VP", ["vp", " VP ", "Vp"]),
    ("Director", [" director ", "director", "DIRECTOR"]),
    ("Manager", ["manager", "Manager ", " MANAGER"]),
    ("Analyst", ["analyst", " Analyst", "ANALYST "]),
    ("Engineer", ["engineer", "Engineer  ", " ENGINEER"]),
    ("Consultant", ["consultant", " Consultant", "CONSULTANT"]),
    ("Intern", ["intern", "Intern ", " INTERN"]),
];

const DOMAIN_HEADS: [&str; 16] = [
    "north", "blue", "bright", "silver", "red", "green", "iron", "swift", "clear", "summit",
    "harbor", "pine", "stone", "cedar", "atlas", "nova",
];
const DOMAIN_TAILS: [&str; 12] = [
    "wind", "peak", "labs", "works", "logic", "field", "bridge", "path", "point", "wave", "forge",
    "line",
];
const DOMAIN_TLDS: [&str; 6] = ["com", "io", "co", "net", "de", "co.uk"];
const FREE_MAIL: [&str; 5] = [
    "gmail.com",
    "outlook.com",
    "yahoo.com",
    "proton.me",
    "icloud.com",
];

/// Email campaigns and the product they are about, if any.
const CAMPAIGNS: [(&str, Option<u8>); 9] = [
    ("nl-weekly-digest", None),
    ("nl-monthly-roundup", None),
    ("promo-spring-offer", None),
    ("promo-year-end", None),
    ("event-invite-growth-summit", None),
    ("onboarding-tips", None),
    ("product-update-analytics", Some(0)),
    ("product-update-crm", Some(1)),
    ("product-update-ads", Some(2)),
];

const BLOG: [&str; 8] = [
    "/blog/what-is-lead-scoring",
    "/blog/attribution-models-explained",
    "/blog/crm-hygiene-checklist",
    "/blog/ad-spend-benchmarks",
    "/blog/customer-journey-mapping",
    "/blog/email-deliverability-tips",
    "/blog/dashboard-design-basics",
    "/blog/b2b-funnel-metrics",
];

const AD_PLACEMENTS: [&str; 6] = [
    "google-search-brand",
    "google-search-generic",
    "linkedin-sponsored-content",
    "meta-retargeting",
    "youtube-preroll",
    "capterra-listing",
];

const WEBINARS: [[&str; 2]; 3] = [
    ["webinar-analytics-deep-dive", "webinar-dashboards-live"],
    ["webinar-crm-migration", "webinar-pipeline-hygiene"],
    ["webinar-ads-roas", "webinar-creative-testing"],
];

const DOWNLOADS: [[&str; 3]; 3] = [
    [
        "wp-roi-guide",
        "ebook-analytics-playbook",
        "wp-attribution-models",
    ],
    [
        "ebook-crm-basics",
        "case-study-retail-crm",
        "checklist-crm-migration",
    ],
    [
        "checklist-ad-audit",
        "wp-ad-benchmarks-2025",
        "case-study-ads-saas",
    ],
];

const PRODUCT_PAGES: [[&str; 5]; 3] = [
    [
        "/product/analytics/",
        "/product/analytics/features",
        "/product/analytics/integrations",
        "/product/analytics/customers",
        "/product/analytics/security",
    ],
    [
        "/product/crm/",
        "/product/crm/features",
        "/product/crm/integrations",
        "/product/crm/customers",
        "/product/crm/security",
    ],
    [
        "/product/ads/",
        "/product/ads/features",
        "/product/ads/integrations",
        "/product/ads/customers",
        "/product/ads/security",
    ],
];

const VIDEOS: [[&str; 3]; 3] = [
    [
        "video-analytics-demo",
        "video-analytics-tour",
        "video-analytics-customer-story",
    ],
    [
        "video-crm-demo",
        "video-crm-tour",
        "video-crm-customer-story",
    ],
    [
        "video-ads-demo",
        "video-ads-tour",
        "video-ads-customer-story",
    ],
];

const TRIALS: [&str; 3] = ["trial-analytics", "trial-crm", "trial-ads"];

const CAREERS: [&str; 4] = [
    "/careers",
    "/careers/engineering",
    "/careers/sales",
    "/careers/open-roles",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    EmailOpen,
    EmailClick,
    PageView,
    AdClick,
    WebinarSignup,
    Download,
    VideoPlay,
    DemoRequest,
    FreeTrial,
    ContactSales,
    NpsResponse,
    Unsubscribe,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::EmailOpen => "email_open",
            Action::EmailClick => "email_click",
            Action::PageView => "page_view",
            Action::AdClick => "ad_click",
            Action::WebinarSignup => "webinar_signup",
            Action::Download => "download",
            Action::VideoPlay => "video_play",
            Action::DemoRequest => "demo_request",
            Action::FreeTrial => "free_trial",
            Action::ContactSales => "contact_sales",
            Action::NpsResponse => "nps_response",
            Action::Unsubscribe => "unsubscribe",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Channel {
    Email,
    Web,
    Paid,
    Event,
}

impl Channel {
    fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Web => "web",
            Channel::Paid => "paid",
            Channel::Event => "event",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Accounts, leads and the plan
// ---------------------------------------------------------------------------------------------

struct Account {
    /// Pareto weight: how many leads the account gets, relative to the others.
    weight: f64,
    /// How much the account as a whole is in the market (shared by its leads).
    heat: f64,
    company_size: Option<i64>,
    industry: &'static str,
}

fn make_account(seed: u64, idx: u64) -> Account {
    let mut r = Rng::stream(seed, D_ACCOUNT, idx);
    let weight = r.pareto(1.1).min(2000.0);
    let heat = r.f64().powf(1.5);
    let company_size = if r.chance(0.04) {
        None
    } else {
        let s = 8.0 * weight.powf(1.6) * (0.6 * r.normal()).exp();
        Some(s.round().clamp(1.0, 50_000.0) as i64)
    };
    let industry = r.pick(&INDUSTRIES);
    Account {
        weight,
        heat,
        company_size,
        industry,
    }
}

fn account_id(idx: u64) -> String {
    format!("A{:05}", idx + 1)
}

/// A unique, plausible company domain for account `idx`.
fn account_domain(idx: u64) -> String {
    let heads = DOMAIN_HEADS.len() as u64;
    let tails = DOMAIN_TAILS.len() as u64;
    let head = DOMAIN_HEADS[(idx % heads) as usize];
    let tail = DOMAIN_TAILS[((idx / heads) % tails) as usize];
    let round = idx / (heads * tails);
    let mut h = idx;
    let tld = DOMAIN_TLDS[(splitmix64(&mut h) % DOMAIN_TLDS.len() as u64) as usize];
    if round == 0 {
        format!("{head}{tail}.{tld}")
    } else {
        format!("{head}{tail}{}.{tld}", round + 1)
    }
}

/// Everything about one lead that does not depend on its events.
struct Lead {
    intent: f64,
    job_seeker: bool,
    /// Index into PRODUCTS of the product the lead is mostly interested in.
    product: u8,
    /// Relative number of events (heavy-tailed).
    activity: f64,
    role: Option<&'static str>,
    company_size: Option<i64>,
    industry: &'static str,
    budget: Option<f64>,
    expected_purchase: Option<i32>,
}

fn make_lead(seed: u64, idx: u64, account: Option<(u64, &Account)>, end_day32: i32) -> Lead {
    let mut r = Rng::stream(seed, D_PROFILE, idx);
    let job_seeker = r.chance(0.04);
    let own = r.f64().powf(1.8);
    let heat = match account {
        Some((_, a)) => a.heat,
        None => r.f64().powf(2.0),
    };
    let mut intent = (0.65 * own + 0.35 * heat).clamp(0.0, 1.0);
    if job_seeker {
        intent *= 0.05;
    }
    let activity =
        r.pareto(1.6).min(80.0) * (0.25 + 1.75 * intent) * if job_seeker { 0.4 } else { 1.0 };
    let product = r.weighted(&[0.4, 0.35, 0.25]) as u8;

    let role = if r.chance(0.06) {
        None
    } else {
        let i = intent;
        let weights = if job_seeker {
            [0.0, 0.0, 0.01, 0.05, 0.3, 0.3, 0.04, 0.3]
        } else {
            [
                0.04 + 0.08 * i,
                0.06 + 0.10 * i,
                0.12 + 0.10 * i,
                0.25,
                0.20 - 0.08 * i,
                0.20 - 0.10 * i,
                0.06,
                0.07 - 0.06 * i,
            ]
        };
        let (canonical, variants) = ROLES[r.weighted(&weights)];
        Some(if r.chance(0.7) {
            canonical
        } else {
            r.pick(&variants)
        })
    };

    let (company_size, industry) = match account {
        Some((_, a)) => (a.company_size, a.industry),
        None => {
            let size = if r.chance(0.15) {
                None
            } else {
                let s = 3.0 * r.pareto(0.7);
                Some(s.round().clamp(1.0, 50_000.0) as i64)
            };
            (size, r.pick(&INDUSTRIES))
        }
    };

    let budget = if job_seeker || r.chance(0.45 - 0.30 * intent) {
        None
    } else {
        let base = company_size.unwrap_or(50) as f64;
        let b = 2_000.0 * base.powf(0.45) * (0.4 + 1.2 * intent) * (0.5 * r.normal()).exp();
        Some((b / 500.0).round().max(1.0) * 500.0)
    };

    let expected_purchase = if r.chance(0.55 - 0.35 * intent) {
        None
    } else {
        let offset = if r.chance(intent) {
            30.0 + 45.0 * r.normal()
        } else {
            r.uniform(-200.0, 200.0)
        };
        Some(end_day32 + offset.round().clamp(-200.0, 200.0) as i32)
    };

    Lead {
        intent,
        job_seeker,
        product,
        activity,
        role,
        company_size,
        industry,
        budget,
        expected_purchase,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum BadKind {
    NullLead,
    NullTs,
    NullAction,
    BadVideo,
    BadNps,
    DupExact,
    DupShifted,
}

impl BadKind {
    const ALL: [BadKind; 7] = [
        BadKind::NullLead,
        BadKind::NullTs,
        BadKind::NullAction,
        BadKind::BadVideo,
        BadKind::BadNps,
        BadKind::DupExact,
        BadKind::DupShifted,
    ];

    /// Share of all broken rows.
    fn share(self) -> f64 {
        match self {
            BadKind::NullLead => 0.15,
            BadKind::NullTs => 0.13,
            BadKind::NullAction => 0.12,
            BadKind::BadVideo => 0.12,
            BadKind::BadNps => 0.10,
            BadKind::DupExact => 0.33,
            BadKind::DupShifted => 0.05,
        }
    }

    fn is_duplicate(self) -> bool {
        matches!(self, BadKind::DupExact | BadKind::DupShifted)
    }
}

/// How many broken rows of each kind (in `BadKind::ALL` order): about 0.1 % of the good rows,
/// and at least one of each kind once there are 1000 good rows.
fn bad_counts(events: u64) -> [u64; 7] {
    let total = (events as f64 * 0.001).round() as u64;
    let mut counts = [0u64; 7];
    for (c, kind) in counts.iter_mut().zip(BadKind::ALL) {
        *c = (total as f64 * kind.share()).floor() as u64;
        if events >= 1000 {
            *c = (*c).max(1);
        }
    }
    let sum: u64 = counts.iter().sum();
    if sum < total {
        counts[5] += total - sum;
    }
    counts
}

/// Splits `total` into integer parts proportional to `weights` (largest remainder).
fn allocate(total: u64, weights: &[f64]) -> Vec<u64> {
    if weights.is_empty() {
        return Vec::new();
    }
    let sum: f64 = weights.iter().sum();
    let mut parts = Vec::with_capacity(weights.len());
    let mut fractions = Vec::with_capacity(weights.len());
    let mut assigned = 0u64;
    for (i, w) in weights.iter().enumerate() {
        let quota = total as f64 * w / sum;
        let whole = quota.floor() as u64;
        parts.push(whole);
        fractions.push((quota - whole as f64, i));
        assigned += whole;
    }
    // Rounding may (in theory) over-assign; take the excess from the largest parts.
    while assigned > total {
        let i = (0..parts.len())
            .max_by_key(|&i| parts[i])
            .expect("not empty");
        let take = (assigned - total).min(parts[i]);
        parts[i] -= take;
        assigned -= take;
    }
    fractions.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut k = 0usize;
    while assigned < total {
        parts[fractions[k % fractions.len()].1] += 1;
        assigned += 1;
        k += 1;
    }
    parts
}

/// What is decided for all leads before any event is written: accounts, who belongs where, how
/// many events each lead has and which leads carry the broken rows. A few numbers per lead.
struct Plan {
    accounts: Vec<Account>,
    /// Account of each lead, `u32::MAX` for none.
    lead_account: Vec<u32>,
    /// Good events per lead.
    counts: Vec<u64>,
    /// `(lead, kind)` of every broken row, sorted by lead.
    bad: Vec<(u64, BadKind)>,
    bad_rows: u64,
    duplicate_rows: u64,
    used_accounts: u64,
}

impl Plan {
    fn build(opts: &GenerateOptions, window: &Window) -> Result<Plan> {
        let seed = opts.seed;
        let n_leads = opts.leads as usize;
        let n_accounts = opts.accounts.unwrap_or((opts.leads / 12).max(1));
        if n_accounts >= u64::from(u32::MAX) {
            return Err(Error::Config(format!("too many accounts: {n_accounts}")));
        }
        let accounts: Vec<Account> = (0..n_accounts).map(|a| make_account(seed, a)).collect();

        // About 8 % of the leads have no account; the others are spread over the accounts by
        // weight, each account getting at least one lead while there are enough.
        let mut with_account: Vec<u32> = Vec::with_capacity(n_leads);
        for idx in 0..opts.leads {
            let mut r = Rng::stream(seed, D_ASSIGN, idx);
            if !r.chance(0.08) {
                with_account.push(idx as u32);
            }
        }
        let n_with = with_account.len() as u64;
        let sizes: Vec<u64> = if n_with >= n_accounts {
            let weights: Vec<f64> = accounts.iter().map(|a| a.weight).collect();
            allocate(n_with - n_accounts, &weights)
                .into_iter()
                .map(|s| s + 1)
                .collect()
        } else {
            (0..n_accounts).map(|a| u64::from(a < n_with)).collect()
        };
        let used_accounts = sizes.iter().filter(|&&s| s > 0).count() as u64;
        let mut slots: Vec<u32> = Vec::with_capacity(with_account.len());
        for (a, &s) in sizes.iter().enumerate() {
            slots.extend(std::iter::repeat_n(a as u32, s as usize));
        }
        let mut r = Rng::stream(seed, D_GLOBAL, 0);
        for i in (1..slots.len()).rev() {
            let j = r.below(i as u64 + 1) as usize;
            slots.swap(i, j);
        }
        let mut lead_account = vec![u32::MAX; n_leads];
        for (&lead, &acct) in with_account.iter().zip(&slots) {
            lead_account[lead as usize] = acct;
        }
        drop(with_account);
        drop(slots);

        // Events per lead: heavy-tailed activity, scaled so the total is exact.
        let weights: Vec<f64> = (0..opts.leads)
            .map(|idx| {
                let acct = lead_account[idx as usize];
                let account =
                    (acct != u32::MAX).then(|| (u64::from(acct), &accounts[acct as usize]));
                make_lead(seed, idx, account, window.end_day32).activity
            })
            .collect();
        let counts = allocate(opts.events, &weights);
        drop(weights);

        // Broken rows land on leads in proportion to their events (a lead with none gets none).
        let per_kind = bad_counts(opts.events);
        let mut bad = Vec::new();
        if opts.events > 0 {
            let mut prefix = Vec::with_capacity(counts.len());
            let mut acc = 0u64;
            for c in &counts {
                acc += c;
                prefix.push(acc);
            }
            let mut r = Rng::stream(seed, D_GLOBAL, 1);
            for (kind, &k) in BadKind::ALL.iter().zip(&per_kind) {
                for _ in 0..k {
                    let p = r.below(opts.events);
                    let lead = prefix.partition_point(|&x| x <= p) as u64;
                    bad.push((lead, *kind));
                }
            }
            bad.sort();
        }
        let duplicate_rows = per_kind[5] + per_kind[6];
        let bad_rows = per_kind.iter().sum::<u64>() - duplicate_rows;
        Ok(Plan {
            accounts,
            lead_account,
            counts,
            bad,
            bad_rows,
            duplicate_rows,
            used_accounts,
        })
    }

    fn account_of(&self, idx: u64) -> Option<u64> {
        let a = self.lead_account[idx as usize];
        (a != u32::MAX).then_some(u64::from(a))
    }
}

// ---------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------

/// One events row, compact (a chunk holds up to about a million of them).
#[derive(Clone, Copy, Debug)]
struct Row {
    event_id: i64,
    lead: u64,
    /// The event time; for a row with a null `ts`, the time it would have had (used for ordering
    /// and for the month directory).
    ts: i64,
    value: f64,
    asset: Option<&'static str>,
    action: Option<Action>,
    product: Option<u8>,
    channel: Channel,
    lead_null: bool,
    ts_null: bool,
    value_null: bool,
}

/// An event before it gets an id, a lead and a time.
struct Ev {
    action: Action,
    asset: Option<&'static str>,
    product: Option<u8>,
    value: Option<f64>,
    channel: Channel,
}

impl Ev {
    fn new(action: Action, asset: &'static str, product: Option<u8>, channel: Channel) -> Ev {
        Ev {
            action,
            asset: Some(asset),
            product,
            value: None,
            channel,
        }
    }
}

/// The lead's main product most of the time, another one now and then.
fn pick_product(r: &mut Rng, lead: &Lead) -> u8 {
    if r.chance(0.8) {
        lead.product
    } else {
        r.below(PRODUCTS.len() as u64) as u8
    }
}

fn awareness(r: &mut Rng, lead: &Lead, unsubscribed: bool) -> Ev {
    let weights = if unsubscribed {
        [0.0, 0.0, 0.6, 0.4]
    } else {
        [0.35, 0.15, 0.30, 0.20]
    };
    match r.weighted(&weights) {
        0 | 1 => {
            let (campaign, product) = r.pick(&CAMPAIGNS);
            let action = if r.chance(0.7) {
                Action::EmailOpen
            } else {
                Action::EmailClick
            };
            Ev::new(action, campaign, product, Channel::Email)
        }
        2 => {
            let page = if r.chance(0.3) { "/" } else { r.pick(&BLOG) };
            Ev::new(Action::PageView, page, None, Channel::Web)
        }
        _ => {
            let product = r.chance(0.4).then(|| pick_product(r, lead));
            Ev::new(
                Action::AdClick,
                r.pick(&AD_PLACEMENTS),
                product,
                Channel::Paid,
            )
        }
    }
}

fn consideration(r: &mut Rng, lead: &Lead) -> Ev {
    let p = pick_product(r, lead);
    let pi = p as usize;
    match r.weighted(&[0.15, 0.25, 0.40, 0.20]) {
        0 => Ev::new(
            Action::WebinarSignup,
            r.pick(&WEBINARS[pi]),
            Some(p),
            Channel::Event,
        ),
        1 => Ev::new(
            Action::Download,
            r.pick(&DOWNLOADS[pi]),
            Some(p),
            Channel::Web,
        ),
        2 => Ev::new(
            Action::PageView,
            r.pick(&PRODUCT_PAGES[pi]),
            Some(p),
            Channel::Web,
        ),
        _ => {
            let watched = r.f64().powf(1.8 - 1.4 * lead.intent);
            let mut ev = Ev::new(
                Action::VideoPlay,
                r.pick(&VIDEOS[pi]),
                Some(p),
                Channel::Web,
            );
            ev.value = Some(((watched * 1000.0).round() / 1000.0).clamp(0.0, 1.0));
            ev
        }
    }
}

fn decision(r: &mut Rng, lead: &Lead) -> Ev {
    let i = lead.intent;
    let enterprise = lead.company_size.unwrap_or(0) >= 1000;
    match r.weighted(&[
        0.55 - 0.30 * i,
        0.15 + 0.15 * i,
        0.15 + 0.05 * i,
        0.15 + 0.10 * i,
    ]) {
        0 => {
            let page = if r.chance(if enterprise { 0.6 } else { 0.2 }) {
                "/pricing/enterprise"
            } else {
                "/pricing"
            };
            Ev::new(Action::PageView, page, None, Channel::Web)
        }
        1 => Ev::new(
            Action::DemoRequest,
            "form-demo-request",
            Some(pick_product(r, lead)),
            Channel::Web,
        ),
        2 => {
            let p = pick_product(r, lead);
            Ev::new(Action::FreeTrial, TRIALS[p as usize], Some(p), Channel::Web)
        }
        _ => {
            let product = r.chance(0.6).then(|| pick_product(r, lead));
            Ev::new(
                Action::ContactSales,
                "form-contact-sales",
                product,
                Channel::Web,
            )
        }
    }
}

fn nps(r: &mut Rng, lead: &Lead) -> Ev {
    let mean = 3.0 + 6.5 * lead.intent;
    let score = (mean + 2.0 * r.normal()).round().clamp(0.0, 10.0);
    let mut ev = Ev::new(Action::NpsResponse, "nps-survey", None, Channel::Email);
    ev.value = Some(score);
    ev
}

fn careers(r: &mut Rng) -> Ev {
    Ev::new(Action::PageView, r.pick(&CAREERS), None, Channel::Web)
}

fn unsubscribe(r: &mut Rng) -> Ev {
    let (campaign, _) = r.pick(&CAMPAIGNS);
    Ev::new(Action::Unsubscribe, campaign, None, Channel::Email)
}

fn is_decision(row: &Row) -> bool {
    match row.action {
        Some(Action::DemoRequest | Action::FreeTrial | Action::ContactSales) => true,
        Some(Action::PageView) => row.asset.is_some_and(|a| a.starts_with("/pricing")),
        _ => false,
    }
}

/// Floors a time to the whole second.
fn whole_second(t: i64) -> i64 {
    t - t.rem_euclid(MICROS_PER_SECOND)
}

struct LeadGenerator {
    seed: u64,
    window: Window,
    scratch: Vec<f64>,
}

impl LeadGenerator {
    /// Appends lead `idx`'s `n` good events, in time order, with ids from `first_id`. Returns
    /// the time of its first decision-stage event, if it reached that stage.
    fn events(
        &mut self,
        idx: u64,
        lead: &Lead,
        n: u64,
        first_id: i64,
        out: &mut Vec<Row>,
    ) -> Option<i64> {
        if n == 0 {
            return None;
        }
        let mut r = Rng::stream(self.seed, D_EVENTS, idx);
        let n_us = n as usize;
        let intent = lead.intent;

        // Times: exponential gaps (about 1 % of them zero), the whole journey placed at a random
        // point of the window and squeezed only if it would not fit.
        let mean_gap = MICROS_PER_DAY as f64
            * r.uniform(0.15f64.ln(), 8.0f64.ln()).exp()
            * (1.3 - 0.8 * intent);
        self.scratch.clear();
        let mut total = 0.0;
        for i in 0..n_us {
            if i > 0 && !r.chance(0.01) {
                total += r.exp(mean_gap);
            }
            self.scratch.push(total);
        }
        let span = (self.window.end - self.window.start) as f64;
        let scale = if total > 0.98 * span {
            0.98 * span / total * r.uniform(0.6, 1.0)
        } else {
            1.0
        };
        let used = total * scale;
        let start = self.window.start as f64 + r.f64() * (span - used - 1.0).max(0.0);

        // Stages: how far the journey goes, and where each stage begins.
        let mut max_stage = 0u8;
        if !lead.job_seeker && r.chance(0.10 + 0.85 * intent) {
            max_stage = 1;
            let mut p = 0.03 + 0.8 * intent.powf(1.3);
            if n < 3 {
                p *= 0.5;
            }
            if r.chance(p) {
                max_stage = 2;
            }
        }
        let k1 = if max_stage >= 1 {
            ((n as f64 * r.uniform(0.05, 0.6)) as usize).min(n_us - 1)
        } else {
            n_us
        };
        let k2 = if max_stage >= 2 {
            (k1 + ((n_us - k1) as f64 * r.uniform(0.1, 0.7)) as usize).min(n_us - 1)
        } else {
            n_us
        };
        let unsubscribe_at = if r.chance(0.01 + 0.10 * (1.0 - intent)) {
            Some(r.below(n) as usize)
        } else {
            None
        };

        let mut first_decision = None;
        let mut unsubscribed = false;
        let mut prev_ts = i64::MIN;
        let mut prev_offset = f64::NAN;
        for i in 0..n_us {
            let offset = self.scratch[i];
            let ts = if offset == prev_offset {
                prev_ts
            } else {
                let mut t = (start + offset * scale) as i64;
                if r.chance(0.85) {
                    t = whole_second(t);
                }
                t.max(prev_ts).clamp(self.window.start, self.window.end - 1)
            };
            prev_ts = ts;
            prev_offset = offset;

            let stage = u8::from(i >= k1) + u8::from(i >= k2);
            let ev = if i == k2 {
                decision(&mut r, lead)
            } else if i == k1 {
                consideration(&mut r, lead)
            } else if unsubscribe_at == Some(i) && !unsubscribed {
                unsubscribed = true;
                unsubscribe(&mut r)
            } else if lead.job_seeker && r.chance(0.7) {
                careers(&mut r)
            } else if !unsubscribed && r.chance(0.015) {
                nps(&mut r, lead)
            } else {
                let u = r.f64();
                match stage {
                    2 if u < 0.35 => decision(&mut r, lead),
                    2 if u < 0.65 => consideration(&mut r, lead),
                    1 if u < 0.5 => consideration(&mut r, lead),
                    0 if u < 0.03 => careers(&mut r),
                    _ => awareness(&mut r, lead, unsubscribed),
                }
            };
            let row = Row {
                event_id: first_id + i as i64,
                lead: idx,
                ts,
                value: ev.value.unwrap_or(0.0),
                asset: ev.asset,
                action: Some(ev.action),
                product: ev.product,
                channel: ev.channel,
                lead_null: false,
                ts_null: false,
                value_null: ev.value.is_none(),
            };
            if first_decision.is_none() && is_decision(&row) {
                first_decision = Some(ts);
            }
            out.push(row);
        }
        first_decision
    }

    /// Appends lead `idx`'s broken rows, built from its good rows `out[first..first + n]`.
    /// Rows with an id of their own take ids from `next_id`; returns the next free id.
    fn bad_rows(
        &mut self,
        idx: u64,
        kinds: &[(u64, BadKind)],
        first: usize,
        n: u64,
        mut next_id: i64,
        out: &mut Vec<Row>,
    ) -> i64 {
        if kinds.is_empty() || n == 0 {
            return next_id;
        }
        let mut r = Rng::stream(self.seed, D_BAD, idx);
        for &(_, kind) in kinds {
            let base = out[first + r.below(n) as usize];
            let mut row = base;
            if !kind.is_duplicate() {
                row.event_id = next_id;
                next_id += 1;
            }
            match kind {
                BadKind::NullLead => row.lead_null = true,
                BadKind::NullTs => row.ts_null = true,
                BadKind::NullAction => row.action = None,
                BadKind::BadVideo => {
                    let p = base.product.unwrap_or(0);
                    row.action = Some(Action::VideoPlay);
                    row.asset = Some(VIDEOS[p as usize][0]);
                    row.product = Some(p);
                    row.channel = Channel::Web;
                    row.value_null = r.chance(0.5);
                    row.value = 1.3;
                }
                BadKind::BadNps => {
                    row.action = Some(Action::NpsResponse);
                    row.asset = Some("nps-survey");
                    row.product = None;
                    row.channel = Channel::Email;
                    row.value_null = false;
                    row.value = if r.chance(0.5) { 11.0 } else { -1.0 };
                }
                BadKind::DupExact => {}
                BadKind::DupShifted => {
                    let shift = (1 + r.below(3600) as i64) * MICROS_PER_SECOND;
                    row.ts = (row.ts + shift).min(self.window.end - 1);
                }
            }
            out.push(row);
        }
        next_id
    }

    /// Decides whether lead `idx` converted and appends its outcome rows, if any.
    fn outcome(
        &mut self,
        idx: u64,
        lead: &Lead,
        good: &[Row],
        first_decision: Option<i64>,
        out: &mut Vec<(u64, Option<i64>)>,
    ) {
        let mut r = Rng::stream(self.seed, D_OUTCOME, idx);
        let when = match first_decision {
            Some(t) => r.chance(0.35 + 0.25 * lead.intent).then(|| {
                if r.chance(0.03) {
                    // Converted before anything happened in the log.
                    let first = good[0].ts;
                    let back = (r.uniform(1.0 / 24.0, 20.0) * MICROS_PER_DAY as f64) as i64;
                    whole_second((first - back).max(self.window.start))
                } else {
                    self.some_days_after(&mut r, t)
                }
            }),
            None => {
                let p = if lead.job_seeker {
                    0.002
                } else if good.is_empty() {
                    0.01
                } else {
                    0.012 + 0.008 * lead.intent
                };
                r.chance(p).then(|| {
                    if good.is_empty() {
                        let span = (self.window.end - self.window.start) as f64;
                        whole_second(self.window.start + (r.f64() * span) as i64)
                    } else {
                        let anchor = good[r.below(good.len() as u64) as usize].ts;
                        self.some_days_after(&mut r, anchor)
                    }
                })
            }
        };
        match when {
            Some(t) => {
                out.push((idx, Some(t)));
                if r.chance(0.03) {
                    let later = (r.uniform(1.0, 90.0) * MICROS_PER_DAY as f64) as i64;
                    out.push((idx, Some(whole_second(t + later))));
                }
            }
            None => {
                if r.chance(0.05) {
                    out.push((idx, None));
                }
            }
        }
    }

    /// A whole-second time 3 to 60 days after `anchor`, before the end of the window if possible.
    fn some_days_after(&self, r: &mut Rng, anchor: i64) -> i64 {
        let lo = anchor + 3 * MICROS_PER_DAY;
        let mut hi = anchor + 60 * MICROS_PER_DAY;
        if lo + MICROS_PER_SECOND < self.window.end {
            hi = hi.min(self.window.end);
        }
        whole_second(lo + (r.f64() * (hi - lo) as f64) as i64)
    }
}

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

fn append_text_id(b: &mut StringBuilder, idx: u64) {
    // Writing into the builder and then appending "" completes the value without a temporary.
    let _ = write!(b, "L{:07}", idx + 1);
    b.append_value("");
}

/// A `lead_id` column from lead indexes (`None` = null).
fn lead_id_array(id_type: IdType, ids: impl ExactSizeIterator<Item = Option<u64>>) -> ArrayRef {
    let n = ids.len();
    match id_type {
        IdType::Int => {
            let mut b = Int64Builder::with_capacity(n);
            for id in ids {
                b.append_option(id.map(|i| i as i64 + 1));
            }
            Arc::new(b.finish())
        }
        IdType::Text => {
            let mut b = StringBuilder::with_capacity(n, n * 8);
            for id in ids {
                match id {
                    Some(i) => append_text_id(&mut b, i),
                    None => b.append_null(),
                }
            }
            Arc::new(b.finish())
        }
    }
}

fn events_batch(schema: &SchemaRef, id_type: IdType, rows: &[Row]) -> Result<RecordBatch> {
    let n = rows.len();
    let mut event_id = Int64Builder::with_capacity(n);
    let mut ts = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut action = StringBuilder::with_capacity(n, n * 10);
    let mut asset = StringBuilder::with_capacity(n, n * 20);
    let mut product = StringBuilder::with_capacity(n, n * 4);
    let mut value = Float64Builder::with_capacity(n);
    let mut channel = StringBuilder::with_capacity(n, n * 5);
    for row in rows {
        event_id.append_value(row.event_id);
        ts.append_option((!row.ts_null).then_some(row.ts));
        action.append_option(row.action.map(Action::as_str));
        asset.append_option(row.asset);
        product.append_option(row.product.map(|p| PRODUCTS[p as usize]));
        value.append_option((!row.value_null).then_some(row.value));
        channel.append_value(row.channel.as_str());
    }
    let lead = lead_id_array(
        id_type,
        rows.iter().map(|r| (!r.lead_null).then_some(r.lead)),
    );
    let columns: Vec<ArrayRef> = vec![
        Arc::new(event_id.finish()),
        lead,
        Arc::new(ts.finish()),
        Arc::new(action.finish()),
        Arc::new(asset.finish()),
        Arc::new(product.finish()),
        Arc::new(value.finish()),
        Arc::new(channel.finish()),
    ];
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

fn outcomes_batch(
    schema: &SchemaRef,
    id_type: IdType,
    rows: &[(u64, Option<i64>)],
) -> Result<RecordBatch> {
    let lead = lead_id_array(id_type, rows.iter().map(|(l, _)| Some(*l)));
    let mut at = TimestampMicrosecondBuilder::with_capacity(rows.len()).with_timezone("UTC");
    for (_, t) in rows {
        at.append_option(*t);
    }
    Ok(RecordBatch::try_new(
        schema.clone(),
        vec![lead, Arc::new(at.finish())],
    )?)
}

struct LeadRow {
    idx: u64,
    account: Option<u64>,
    lead: Lead,
}

fn leads_batch(schema: &SchemaRef, id_type: IdType, rows: &[LeadRow]) -> Result<RecordBatch> {
    let n = rows.len();
    let lead = lead_id_array(id_type, rows.iter().map(|r| Some(r.idx)));
    let mut account = StringBuilder::with_capacity(n, n * 6);
    let mut role = StringBuilder::with_capacity(n, n * 8);
    let mut size = Int64Builder::with_capacity(n);
    let mut industry = StringBuilder::with_capacity(n, n * 10);
    let mut budget = Float64Builder::with_capacity(n);
    let mut domain = StringBuilder::with_capacity(n, n * 14);
    let mut expected = Date32Builder::with_capacity(n);
    for row in rows {
        account.append_option(row.account.map(account_id));
        role.append_option(row.lead.role);
        size.append_option(row.lead.company_size);
        industry.append_value(row.lead.industry);
        budget.append_option(row.lead.budget);
        let d: Cow<'static, str> = match row.account {
            Some(a) => Cow::Owned(account_domain(a)),
            None => {
                let mut h = row.idx;
                let i = splitmix64(&mut h) % FREE_MAIL.len() as u64;
                Cow::Borrowed(FREE_MAIL[i as usize])
            }
        };
        domain.append_value(d);
        expected.append_option(row.lead.expected_purchase);
    }
    let columns: Vec<ArrayRef> = vec![
        lead,
        Arc::new(account.finish()),
        Arc::new(role.finish()),
        Arc::new(size.finish()),
        Arc::new(industry.finish()),
        Arc::new(budget.finish()),
        Arc::new(domain.finish()),
        Arc::new(expected.finish()),
    ];
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

enum LeadsWriter {
    Parquet(ArrowWriter<File>),
    Csv(csv::Writer<BufWriter<File>>),
}

struct LeadsSink {
    schema: SchemaRef,
    path: PathBuf,
    writer: LeadsWriter,
}

impl LeadsSink {
    fn create(opts: &GenerateOptions) -> Result<Self> {
        let schema = leads_schema(opts.id_type);
        let (path, writer) = match opts.leads_format {
            LeadsFormat::Parquet => {
                let path = opts.out.join("leads.parquet");
                let w = ArrowWriter::try_new(
                    create_file(&path)?,
                    schema.clone(),
                    Some(writer_properties(ROW_GROUP_ROWS)),
                )?;
                (path, LeadsWriter::Parquet(w))
            }
            LeadsFormat::Csv => {
                let path = opts.out.join("leads.csv");
                let w = csv::WriterBuilder::new()
                    .with_header(true)
                    .with_date_format("%Y-%m-%d".to_string())
                    .build(BufWriter::new(create_file(&path)?));
                (path, LeadsWriter::Csv(w))
            }
        };
        Ok(LeadsSink {
            schema,
            path,
            writer,
        })
    }

    fn write(&mut self, rows: &[LeadRow], id_type: IdType) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let batch = leads_batch(&self.schema, id_type, rows)?;
        match &mut self.writer {
            LeadsWriter::Parquet(w) => w.write(&batch)?,
            LeadsWriter::Csv(w) => w.write(&batch)?,
        }
        Ok(())
    }

    fn finish(self) -> Result<()> {
        match self.writer {
            LeadsWriter::Parquet(w) => {
                w.close()?;
            }
            LeadsWriter::Csv(w) => {
                w.into_inner()
                    .flush()
                    .map_err(|e| Error::io(format!("writing {}", self.path.display()), e))?;
            }
        }
        Ok(())
    }
}

/// The events files of one directory (`events/` or one `events/month=.../`).
struct PartWriter {
    dir: PathBuf,
    next_part: usize,
    open: Option<(ArrowWriter<File>, usize)>,
}

/// Streams sorted rows into the events files, one directory per month when partitioned.
struct EventSink {
    root: PathBuf,
    schema: SchemaRef,
    id_type: IdType,
    rows_per_file: usize,
    partitioned: bool,
    parts: BTreeMap<i64, PartWriter>,
    files: usize,
}

impl EventSink {
    fn new(opts: &GenerateOptions) -> Self {
        EventSink {
            root: opts.out.join("events"),
            schema: events_schema(opts.id_type),
            id_type: opts.id_type,
            rows_per_file: opts.rows_per_file,
            partitioned: opts.partition_by_month,
            parts: BTreeMap::new(),
            files: 0,
        }
    }

    /// Writes one chunk of rows sorted by time.
    fn write_chunk(&mut self, rows: &[Row]) -> Result<()> {
        if !self.partitioned {
            return self.write_to(0, rows);
        }
        // Sorted by time, so each month is one run.
        let mut rest = rows;
        while let Some(first) = rest.first() {
            let month = month_key(first.ts);
            let len = rest.partition_point(|r| month_key(r.ts) == month);
            self.write_to(month, &rest[..len])?;
            rest = &rest[len..];
        }
        Ok(())
    }

    fn write_to(&mut self, key: i64, rows: &[Row]) -> Result<()> {
        let root = &self.root;
        let partitioned = self.partitioned;
        let part = self.parts.entry(key).or_insert_with(|| PartWriter {
            dir: if partitioned {
                root.join(format!("month={:04}-{:02}", key / 12, key % 12 + 1))
            } else {
                root.clone()
            },
            next_part: 0,
            open: None,
        });
        let mut rest = rows;
        while !rest.is_empty() {
            if part.open.is_none() {
                fs::create_dir_all(&part.dir)
                    .map_err(|e| Error::io(format!("creating {}", part.dir.display()), e))?;
                let path = part.dir.join(format!("part-{:05}.parquet", part.next_part));
                part.next_part += 1;
                self.files += 1;
                let w = ArrowWriter::try_new(
                    create_file(&path)?,
                    self.schema.clone(),
                    Some(writer_properties(ROW_GROUP_ROWS)),
                )?;
                part.open = Some((w, 0));
            }
            let (writer, written) = part.open.as_mut().expect("opened above");
            let take = rest
                .len()
                .min(self.rows_per_file - *written)
                .min(BATCH_ROWS);
            let batch = events_batch(&self.schema, self.id_type, &rest[..take])?;
            writer.write(&batch)?;
            *written += take;
            if *written >= self.rows_per_file {
                let (w, _) = part.open.take().expect("open");
                w.close()?;
            }
            rest = &rest[take..];
        }
        // A file per month stays open across chunks. Ending the row group here keeps only one
        // unfinished row group (and its encoders) in memory at a time; row groups then hold one
        // chunk's rows of one month.
        if self.partitioned
            && let Some((w, _)) = part.open.as_mut()
        {
            w.flush()?;
        }
        Ok(())
    }

    /// Closes every open file and returns how many files were written. Without partitioning an
    /// empty `events/part-00000.parquet` is written when there are no rows at all.
    fn finish(mut self) -> Result<usize> {
        if !self.partitioned && self.files == 0 {
            let path = self.root.join("part-00000.parquet");
            let w = ArrowWriter::try_new(
                create_file(&path)?,
                self.schema.clone(),
                Some(writer_properties(ROW_GROUP_ROWS)),
            )?;
            w.close()?;
            self.files = 1;
        }
        for (_, part) in std::mem::take(&mut self.parts) {
            if let Some((w, _)) = part.open {
                w.close()?;
            }
        }
        Ok(self.files)
    }
}

/// Months since year 0 (`year * 12 + month0`) of a time in microseconds.
fn month_key(ts: i64) -> i64 {
    match DateTime::from_timestamp_micros(ts) {
        Some(d) => i64::from(d.year()) * 12 + i64::from(d.month0()),
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::{
        Date32Type, Float64Type, Int64Type, TimestampMicrosecondType,
    };
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    use super::*;

    fn options(dir: &Path, leads: u64, events: u64) -> GenerateOptions {
        GenerateOptions {
            leads,
            events,
            out: dir.to_path_buf(),
            ..GenerateOptions::default()
        }
    }

    /// Every file under `dir`, sorted, as paths relative to `dir`.
    fn files_under(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in fs::read_dir(&d).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    out.push(path.strip_prefix(dir).unwrap().to_path_buf());
                }
            }
        }
        out.sort();
        out
    }

    fn read_parquet(path: &Path) -> (SchemaRef, Vec<RecordBatch>) {
        let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap()).unwrap();
        let schema = builder.schema().clone();
        let batches = builder.build().unwrap().map(|b| b.unwrap()).collect();
        (schema, batches)
    }

    fn same_fields(a: &Schema, b: &Schema) -> bool {
        a.fields().len() == b.fields().len()
            && a.fields().iter().zip(b.fields()).all(|(x, y)| {
                x.name() == y.name()
                    && x.data_type() == y.data_type()
                    && x.is_nullable() == y.is_nullable()
            })
    }

    /// `lead_id` values as strings, whatever their type.
    fn lead_ids(col: &ArrayRef) -> Vec<Option<String>> {
        match col.data_type() {
            DataType::Int64 => col
                .as_primitive::<Int64Type>()
                .iter()
                .map(|v| v.map(|v| v.to_string()))
                .collect(),
            _ => col
                .as_string::<i32>()
                .iter()
                .map(|v| v.map(str::to_string))
                .collect(),
        }
    }

    fn strings(col: &ArrayRef) -> Vec<Option<String>> {
        col.as_string::<i32>()
            .iter()
            .map(|v| v.map(str::to_string))
            .collect()
    }

    #[derive(Clone, Debug, PartialEq)]
    struct EventRow {
        id: i64,
        lead: Option<String>,
        ts: Option<i64>,
        action: Option<String>,
        asset: Option<String>,
        product: Option<String>,
        value: Option<f64>,
    }

    fn read_events(out: &Path) -> Vec<EventRow> {
        let mut rows = Vec::new();
        for rel in files_under(&out.join("events")) {
            let (_, batches) = read_parquet(&out.join("events").join(rel));
            for b in batches {
                let ids = b.column(0).as_primitive::<Int64Type>();
                let leads = lead_ids(b.column(1));
                let ts = b.column(2).as_primitive::<TimestampMicrosecondType>();
                let action = strings(b.column(3));
                let asset = strings(b.column(4));
                let product = strings(b.column(5));
                let value = b.column(6).as_primitive::<Float64Type>();
                for i in 0..b.num_rows() {
                    rows.push(EventRow {
                        id: ids.value(i),
                        lead: leads[i].clone(),
                        ts: ts.is_valid(i).then(|| ts.value(i)),
                        action: action[i].clone(),
                        asset: asset[i].clone(),
                        product: product[i].clone(),
                        value: value.is_valid(i).then(|| value.value(i)),
                    });
                }
            }
        }
        rows
    }

    fn read_outcomes(out: &Path) -> Vec<(String, Option<i64>)> {
        let (_, batches) = read_parquet(&out.join("outcomes.parquet"));
        let mut rows = Vec::new();
        for b in batches {
            let leads = lead_ids(b.column(0));
            let at = b.column(1).as_primitive::<TimestampMicrosecondType>();
            for (i, lead) in leads.into_iter().enumerate() {
                rows.push((lead.unwrap(), at.is_valid(i).then(|| at.value(i))));
            }
        }
        rows
    }

    fn is_decision_event(e: &EventRow) -> bool {
        match e.action.as_deref() {
            Some("demo_request" | "free_trial" | "contact_sales") => true,
            Some("page_view") => e
                .asset
                .as_deref()
                .is_some_and(|a| a.starts_with("/pricing")),
            _ => false,
        }
    }

    /// Conversion rate of leads with and without decision-stage events.
    fn conversion_rates(out: &Path, leads: u64) -> (f64, f64, usize) {
        let events = read_events(out);
        let decided: HashSet<String> = events
            .iter()
            .filter(|e| is_decision_event(e))
            .filter_map(|e| e.lead.clone())
            .collect();
        let converted: HashSet<String> = read_outcomes(out)
            .into_iter()
            .filter(|(_, t)| t.is_some())
            .map(|(l, _)| l)
            .collect();
        let with = decided.len() as f64;
        let without = leads as f64 - with;
        let conv_with = converted.iter().filter(|l| decided.contains(*l)).count() as f64;
        let conv_without = converted.len() as f64 - conv_with;
        (conv_with / with, conv_without / without, decided.len())
    }

    #[test]
    fn same_seed_gives_identical_files_and_another_seed_does_not() {
        let configs = [
            (IdType::Int, LeadsFormat::Parquet, false),
            (IdType::Text, LeadsFormat::Csv, true),
        ];
        for (id_type, leads_format, partition_by_month) in configs {
            let dirs: Vec<tempfile::TempDir> =
                (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
            for (i, d) in dirs.iter().enumerate() {
                let opts = GenerateOptions {
                    seed: if i == 2 { 7 } else { 42 },
                    id_type,
                    leads_format,
                    partition_by_month,
                    rows_per_file: 2_000,
                    ..options(d.path(), 300, 6_000)
                };
                generate(&opts).unwrap();
            }
            let a = files_under(dirs[0].path());
            assert_eq!(a, files_under(dirs[1].path()));
            assert!(a.len() > 3, "{a:?}");
            for rel in &a {
                let x = fs::read(dirs[0].path().join(rel)).unwrap();
                let y = fs::read(dirs[1].path().join(rel)).unwrap();
                assert!(
                    x == y,
                    "{} differs between two runs with the same seed",
                    rel.display()
                );
            }
            // Another seed: every file differs (events compared as one byte stream).
            let events_bytes = |d: &Path| -> Vec<u8> {
                files_under(d)
                    .iter()
                    .filter(|rel| rel.starts_with("events"))
                    .flat_map(|rel| fs::read(d.join(rel)).unwrap())
                    .collect()
            };
            assert_ne!(events_bytes(dirs[0].path()), events_bytes(dirs[2].path()));
            for rel in &a {
                if !rel.starts_with("events") {
                    assert_ne!(
                        fs::read(dirs[0].path().join(rel)).unwrap(),
                        fs::read(dirs[2].path().join(rel)).unwrap(),
                        "{} is the same for another seed",
                        rel.display()
                    );
                }
            }
        }
    }

    #[test]
    fn event_counts_ids_and_times_are_exact() {
        let dir = tempfile::tempdir().unwrap();
        let opts = options(dir.path(), 1_000, 20_000);
        let s = generate(&opts).unwrap();
        assert_eq!(s.events, 20_000);
        assert_eq!(s.leads, 1_000);
        assert_eq!(s.files, 1);

        let events = read_events(dir.path());
        assert_eq!(
            events.len() as u64,
            s.events + s.bad_rows + s.duplicate_rows
        );
        let mut per_id: HashMap<i64, u64> = HashMap::new();
        for e in &events {
            *per_id.entry(e.id).or_default() += 1;
        }
        // Every row except the duplicates has an id of its own.
        assert_eq!(per_id.len() as u64, s.events + s.bad_rows);
        let repeats: u64 = per_id.values().map(|c| c - 1).sum();
        assert_eq!(repeats, s.duplicate_rows);

        let window = Window::new(opts.end, opts.days).unwrap();
        let mut whole = 0usize;
        let mut with_ts = 0usize;
        for e in &events {
            if let Some(t) = e.ts {
                assert!(
                    t >= window.start && t < window.end,
                    "{e:?} outside the window"
                );
                with_ts += 1;
                whole += usize::from(t % MICROS_PER_SECOND == 0);
            }
        }
        assert!(whole * 10 > with_ts * 7, "most times are whole seconds");
        assert!(whole < with_ts, "some times have microseconds");

        // About 1 % of a lead's consecutive events share their time exactly.
        let mut by_lead: HashMap<&str, Vec<i64>> = HashMap::new();
        for e in &events {
            if let (Some(l), Some(t)) = (&e.lead, e.ts) {
                by_lead.entry(l).or_default().push(t);
            }
        }
        let (mut same, mut pairs) = (0usize, 0usize);
        for ts in by_lead.values_mut() {
            ts.sort_unstable();
            for w in ts.windows(2) {
                pairs += 1;
                same += usize::from(w[0] == w[1]);
            }
        }
        let share = same as f64 / pairs as f64;
        assert!((0.004..0.04).contains(&share), "same-time share {share}");

        // Good rows never break the rules the scorer checks.
        let leads_total = read_parquet(&dir.path().join("leads.parquet"))
            .1
            .iter()
            .map(|b| b.num_rows())
            .sum::<usize>();
        assert_eq!(leads_total, 1_000);
    }

    #[test]
    fn every_file_has_the_documented_schema() {
        for id_type in [IdType::Int, IdType::Text] {
            let dir = tempfile::tempdir().unwrap();
            let opts = GenerateOptions {
                id_type,
                partition_by_month: id_type == IdType::Text,
                ..options(dir.path(), 200, 3_000)
            };
            generate(&opts).unwrap();
            let expected = events_schema(id_type);
            let files = files_under(&dir.path().join("events"));
            assert!(!files.is_empty());
            for rel in files {
                let (schema, _) = read_parquet(&dir.path().join("events").join(&rel));
                assert!(
                    same_fields(&schema, &expected),
                    "{}: {schema:?}",
                    rel.display()
                );
            }
            let (schema, _) = read_parquet(&dir.path().join("leads.parquet"));
            assert!(same_fields(&schema, &leads_schema(id_type)), "{schema:?}");
            let (schema, _) = read_parquet(&dir.path().join("outcomes.parquet"));
            assert!(
                same_fields(&schema, &outcomes_schema(id_type)),
                "{schema:?}"
            );
            assert_eq!(
                schema.field(1).data_type(),
                &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
            );
        }
    }

    #[test]
    fn month_partitioning_uses_a_hive_layout() {
        let dir = tempfile::tempdir().unwrap();
        let opts = GenerateOptions {
            partition_by_month: true,
            days: 100,
            rows_per_file: 1_500,
            ..options(dir.path(), 300, 12_000)
        };
        let s = generate(&opts).unwrap();
        let files = files_under(&dir.path().join("events"));
        assert_eq!(files.len(), s.files);
        let months: HashSet<String> = files
            .iter()
            .map(|f| f.parent().unwrap().to_str().unwrap().to_string())
            .collect();
        // 100 days before 2026-09-30: June to September.
        let expected: HashSet<String> = ["2026-06", "2026-07", "2026-08", "2026-09"]
            .iter()
            .map(|m| format!("month={m}"))
            .collect();
        assert_eq!(months, expected);
        assert!(files.iter().any(|f| f.ends_with("part-00001.parquet")));

        let mut total = 0u64;
        for rel in &files {
            let name = rel.file_name().unwrap().to_str().unwrap();
            assert!(name.starts_with("part-") && name.ends_with(".parquet") && name.len() == 18);
            let month = &rel.parent().unwrap().to_str().unwrap()["month=".len()..];
            let (schema, batches) = read_parquet(&dir.path().join("events").join(rel));
            assert!(schema.field_with_name("month").is_err());
            let mut rows = 0usize;
            for b in batches {
                rows += b.num_rows();
                let ts = b.column(2).as_primitive::<TimestampMicrosecondType>();
                for t in ts.iter().flatten() {
                    let d = DateTime::from_timestamp_micros(t).unwrap();
                    assert_eq!(d.format("%Y-%m").to_string(), month);
                }
            }
            assert!(rows <= opts.rows_per_file);
            total += rows as u64;
        }
        assert_eq!(total, s.events + s.bad_rows + s.duplicate_rows);
    }

    #[test]
    fn a_new_file_starts_after_rows_per_file_rows() {
        let dir = tempfile::tempdir().unwrap();
        let opts = GenerateOptions {
            rows_per_file: 3_000,
            // Drawn only on a terminal; here it just has to work.
            progress: true,
            ..options(dir.path(), 300, 10_000)
        };
        let s = generate(&opts).unwrap();
        let total = s.events + s.bad_rows + s.duplicate_rows;
        let files = files_under(&dir.path().join("events"));
        assert_eq!(files.len() as u64, total.div_ceil(3_000));
        for (i, rel) in files.iter().enumerate() {
            assert_eq!(rel.to_str().unwrap(), format!("part-{i:05}.parquet"));
            let rows: usize = read_parquet(&dir.path().join("events").join(rel))
                .1
                .iter()
                .map(|b| b.num_rows())
                .sum();
            if i + 1 < files.len() {
                assert_eq!(rows, 3_000);
            }
        }
    }

    #[test]
    fn csv_leads_have_a_header_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let opts = GenerateOptions {
            leads_format: LeadsFormat::Csv,
            id_type: IdType::Text,
            ..options(dir.path(), 500, 5_000)
        };
        generate(&opts).unwrap();
        let path = dir.path().join("leads.csv");
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(
            text.lines().next().unwrap(),
            "lead_id,account_id,role,company_size,industry,budget,email_domain,expected_purchase"
        );
        assert!(text.lines().nth(1).unwrap().starts_with("L0000001,"));
        assert!(!dir.path().join("leads.parquet").exists());

        let reader = csv::ReaderBuilder::new(leads_schema(IdType::Text))
            .with_header(true)
            .build(File::open(&path).unwrap())
            .unwrap();
        let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        assert_eq!(rows, 500);
        let window = Window::new(opts.end, opts.days).unwrap();
        let mut dates = 0;
        let mut no_account = 0;
        for b in &batches {
            no_account += b.column(1).null_count();
            for d in b.column(7).as_primitive::<Date32Type>().iter().flatten() {
                assert!((d - window.end_day32).abs() <= 200);
                dates += 1;
            }
        }
        assert!(dates > 100);
        assert!(
            (10..100).contains(&no_account),
            "{no_account} leads without an account"
        );
    }

    #[test]
    fn decision_stage_leads_convert_far_more_often() {
        let dir = tempfile::tempdir().unwrap();
        let s = generate(&options(dir.path(), 2_000, 40_000)).unwrap();
        let (with, without, decided) = conversion_rates(dir.path(), 2_000);
        assert!(decided > 50, "{decided} leads reached the decision stage");
        assert!(
            with > 5.0 * without,
            "rates {with} with and {without} without"
        );
        assert!((0.25..0.7).contains(&with), "rate {with}");
        assert!(without <= 0.03, "rate {without}");
        assert!(s.converted_leads > 0);

        // Outcome rows: a few second rows and a few null rows.
        let outcomes = read_outcomes(dir.path());
        let converted: HashSet<&str> = outcomes
            .iter()
            .filter(|(_, t)| t.is_some())
            .map(|(l, _)| l.as_str())
            .collect();
        assert_eq!(converted.len() as u64, s.converted_leads);
        assert!(outcomes.iter().any(|(_, t)| t.is_none()));
        assert!(outcomes.iter().filter(|(_, t)| t.is_some()).count() > converted.len());
    }

    #[test]
    fn broken_rows_of_every_kind_exist() {
        let dir = tempfile::tempdir().unwrap();
        let s = generate(&options(dir.path(), 1_000, 50_000)).unwrap();
        let events = read_events(dir.path());
        let count = |f: &dyn Fn(&EventRow) -> bool| events.iter().filter(|e| f(e)).count();
        let null_lead = count(&|e| e.lead.is_none());
        let null_ts = count(&|e| e.ts.is_none());
        let null_action = count(&|e| e.action.is_none());
        let bad_video = count(&|e| {
            e.action.as_deref() == Some("video_play")
                && e.value.is_none_or(|v| !(0.0..=1.0).contains(&v))
        });
        let bad_nps = count(&|e| {
            e.action.as_deref() == Some("nps_response")
                && e.value
                    .is_none_or(|v| !(0.0..=10.0).contains(&v) || v.fract() != 0.0)
        });
        for (kind, n) in [
            ("null lead_id", null_lead),
            ("null ts", null_ts),
            ("null action", null_action),
            ("bad video_play", bad_video),
            ("bad nps_response", bad_nps),
        ] {
            assert!(n >= 1, "no {kind} row");
        }
        assert_eq!(
            (null_lead + null_ts + null_action + bad_video + bad_nps) as u64,
            s.bad_rows
        );

        let mut first: HashMap<i64, &EventRow> = HashMap::new();
        let (mut exact, mut shifted) = (0u64, 0u64);
        for e in &events {
            match first.get(&e.id) {
                None => {
                    first.insert(e.id, e);
                }
                Some(orig) if *orig == e => exact += 1,
                Some(orig) => {
                    assert_eq!((&orig.lead, &orig.action), (&e.lead, &e.action));
                    shifted += 1;
                }
            }
        }
        assert!(
            exact >= 1 && shifted >= 1,
            "{exact} exact and {shifted} shifted copies"
        );
        assert!(exact > shifted);
        assert_eq!(exact + shifted, s.duplicate_rows);
        let all = s.bad_rows + s.duplicate_rows;
        assert!((40..=70).contains(&all), "{all} broken rows for 50k events");

        // The rows that are not broken respect every value rule.
        for e in &events {
            match (e.action.as_deref(), e.value) {
                (Some("video_play"), Some(v)) if (0.0..=1.0).contains(&v) => {}
                (Some("nps_response"), Some(v)) if (0.0..=10.0).contains(&v) => {
                    assert_eq!(v.fract(), 0.0)
                }
                (Some("video_play" | "nps_response"), _) => {}
                (Some(_), v) => assert!(v.is_none(), "{e:?}"),
                (None, _) => {}
            }
        }
    }

    #[test]
    fn small_runs_have_no_broken_rows_and_every_kind_appears_from_1000_events() {
        assert_eq!(bad_counts(0), [0; 7]);
        assert_eq!(bad_counts(400).iter().sum::<u64>(), 0);
        assert!(bad_counts(1_000).iter().all(|&c| c >= 1));
        let big = bad_counts(10_000_000);
        assert_eq!(big.iter().sum::<u64>(), 10_000);
    }

    #[test]
    fn shapes_are_heavy_tailed_and_accounts_consistent() {
        let dir = tempfile::tempdir().unwrap();
        let s = generate(&options(dir.path(), 2_400, 30_000)).unwrap();
        assert!(
            s.accounts > 150 && s.accounts <= 200,
            "{} accounts",
            s.accounts
        );

        let mut per_lead: HashMap<String, u64> = HashMap::new();
        for e in read_events(dir.path()) {
            if let Some(l) = e.lead {
                *per_lead.entry(l).or_default() += 1;
            }
        }
        let mut counts: Vec<u64> = per_lead.values().copied().collect();
        counts.sort_unstable();
        let median = counts[counts.len() / 2];
        let max = *counts.last().unwrap();
        assert!(max > 100 && max > 10 * median, "median {median}, max {max}");

        let (_, batches) = read_parquet(&dir.path().join("leads.parquet"));
        let mut members: HashMap<String, (u64, Option<i64>)> = HashMap::new();
        let mut roles: HashSet<String> = HashSet::new();
        for b in &batches {
            let acct = strings(b.column(1));
            let role = strings(b.column(2));
            let size = b.column(3).as_primitive::<Int64Type>();
            for i in 0..b.num_rows() {
                roles.extend(role[i].clone());
                if let Some(s) = size.is_valid(i).then(|| size.value(i)) {
                    assert!((1..=50_000).contains(&s));
                }
                if let Some(a) = &acct[i] {
                    let sz = size.is_valid(i).then(|| size.value(i));
                    let entry = members.entry(a.clone()).or_insert((0, sz));
                    entry.0 += 1;
                    assert_eq!(entry.1, sz, "company size differs inside account {a}");
                }
            }
        }
        assert_eq!(members.len() as u64, s.accounts);
        let mut sizes: Vec<u64> = members.values().map(|m| m.0).collect();
        sizes.sort_unstable();
        let (median, max) = (sizes[sizes.len() / 2], *sizes.last().unwrap());
        assert!(
            max >= 8 * median,
            "leads per account: median {median}, max {max}"
        );
        assert!(
            roles.contains(" director ") && roles.contains("VP"),
            "{roles:?}"
        );
    }

    #[test]
    fn refuses_to_write_into_a_non_empty_events_directory() {
        let dir = tempfile::tempdir().unwrap();
        let opts = options(dir.path(), 50, 500);
        generate(&opts).unwrap();
        match generate(&opts) {
            Err(Error::Config(msg)) => assert!(msg.contains("events"), "{msg}"),
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn rejects_impossible_options() {
        let dir = tempfile::tempdir().unwrap();
        for opts in [
            GenerateOptions {
                rows_per_file: 0,
                ..options(dir.path(), 10, 10)
            },
            options(dir.path(), 0, 10),
            GenerateOptions {
                accounts: Some(0),
                ..options(dir.path(), 10, 10)
            },
        ] {
            assert!(matches!(generate(&opts), Err(Error::Config(_))));
        }
    }

    #[test]
    fn zero_events_still_writes_readable_files() {
        let dir = tempfile::tempdir().unwrap();
        let s = generate(&options(dir.path(), 20, 0)).unwrap();
        assert_eq!(
            (s.events, s.bad_rows, s.duplicate_rows, s.files),
            (0, 0, 0, 1)
        );
        let (schema, batches) = read_parquet(&dir.path().join("events/part-00000.parquet"));
        assert!(same_fields(&schema, &events_schema(IdType::Int)));
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 0);
    }
}
