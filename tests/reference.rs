//! An independent reference implementation of the scoring contract (docs/scoring.md, docs/weights.md, docs/review.md),
//! used as an oracle: the same inputs go through `leadscore::score::score` and through the
//! plain-Rust reference in `tests/reference/oracle.rs`, and every published row must agree.
//! Likewise `leadscore::weights::weights` (docs/weights.md) and `leadscore::review::review`
//! (docs/review.md) against `tests/reference/outcomes.rs`, including the proposed model file.
//!
//! The reference reads the input files itself (Arrow's Parquet reader and a small CSV parser)
//! and only borrows the project's model-file parser.

#[path = "reference/compare.rs"]
mod compare;
#[path = "reference/data.rs"]
mod data;
#[path = "reference/datagen.rs"]
mod datagen;
#[path = "reference/oracle.rs"]
mod oracle;
#[path = "reference/outcomes.rs"]
mod outcomes;

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use datafusion::arrow::datatypes::TimeUnit;
use leadscore::context::EngineOptions;
use leadscore::model::Model;
use leadscore::review::{ReviewOptions, ReviewSummary, review};
use leadscore::score::{ScoreOptions, ScoreSummary, score};
use leadscore::weights::{PROPOSED_MODEL, WEIGHTS_TABLES, WeightsOptions, WeightsSummary, weights};

use compare::{Report, compare_outputs, compare_review, compare_weights};
use data::{IdKind, read_events, read_leads, read_outcomes};
use datagen::{Dataset, EventsLayout, GenOptions, Rng, generate};
use oracle::{Reference, reference_score};
use outcomes::{ReviewRef, WeightsRef, reference_review, reference_weights};

/// Exponential decay with grace and floor, three stages, negative, fraction and glob rules, and
/// fit rules of every kind.
const MODEL_EXP: &str = r#"
name = "exp"
version = 7
threshold = 60
stages = ["awareness", "consideration", "decision"]

[decay]
kind = "exponential"
half_life_days = 30
grace_days = 3
floor = 0.25

[cold]
days = 14

[account]
aggregate = "sum"
threshold = 150

[[action]]
action = "page_view"
assets = ["/pricing*", "/product/*"]
points = 5
stage = "decision"

[[action]]
action = "page_view"
assets = ["/careers*"]
points = -10

[[action]]
action = "page_view"
assets = ["/a.b?c[1]*"]
points = 7
stage = "awareness"

[[action]]
action = "page_view"
assets = ["/promo_50%*", "/x\\*"]
points = 9
stage = "decision"

[[action]]
action = "page_view"
points = 1
stage = "awareness"

[[action]]
action = "email_open"
points = 1
stage = "awareness"

[[action]]
action = "email_click"
points = 3
stage = "consideration"

[[action]]
action = "video_play"
points = 12
scale = "fraction"
stage = "consideration"

[[action]]
action = "webinar_signup"
points = 15
stage = "consideration"

[[action]]
action = "download"
assets = ["wp-*-guide", "case-*"]
points = 8
stage = "consideration"

[[action]]
action = "demo_request"
points = 25
stage = "decision"

[[action]]
action = "unsubscribe"
points = -20

[[fit]]
column = "role"
in = ["VP", "director", " C-Level "]
points = 15

[[fit]]
column = "company_size"
min = 200
points = 10

[[fit]]
column = "company_size"
max = 50
points = -5

[[fit]]
column = "budget"
min = 10000
max = 50000
points = 8

[[fit]]
column = "expected_purchase"
within_days = 90
points = 10

[[fit]]
column = "last_seen"
within_days = 30
points = 4

[[fit]]
column = "score_hint"
max = 10.5
points = 3

[[fit]]
column = "industry"
in = ["software", "Finance"]
points = 5
"#;

/// Linear decay with a fractional grace, a negative fraction rule, a catch-all glob, a scored
/// NPS rule, `max` accounts, and a fit rule worth more than the threshold (such a lead crosses
/// at its first instant unless that instant's points are negative).
const MODEL_LIN: &str = r#"
name = "lin"
version = 2
threshold = 40
stages = ["engaged", "hot"]

[decay]
kind = "linear"
points = 2
period_days = 7
grace_days = 1.5
floor = 0.5

[cold]
days = 7

[account]
aggregate = "max"

[[action]]
action = "video_play"
points = -4
scale = "fraction"
stage = "engaged"

[[action]]
action = "page_view"
assets = ["*"]
points = 2
stage = "engaged"

[[action]]
action = "nps_response"
points = 3
stage = "hot"

[[action]]
action = "email_click"
points = 4
stage = "hot"

[[action]]
action = "email_open"
points = 0.5

[[action]]
action = "download"
assets = ["*guide*"]
points = 6
stage = "hot"

[[action]]
action = "form_submit"
points = 10
stage = "hot"

[[action]]
action = "unsubscribe"
points = -15

[[fit]]
column = "company_size"
min = 100
max = 1000
points = 12

[[fit]]
column = "role"
in = ["vp, marketing", "analyst \"lead\""]
points = 20

[[fit]]
column = "expected_purchase"
within_days = 0
points = 7

[[fit]]
column = "renewal"
within_days = 60
points = 6

[[fit]]
column = "role"
in = ["boss"]
points = 50
"#;

/// No decay, no stages, unstaged rules only, `mean` accounts, default cold days.
const MODEL_FLAT: &str = r#"
name = "flat"
version = 1
threshold = 25

[decay]
kind = "none"

[account]
aggregate = "mean"
threshold = 10

[[action]]
action = "page_view"
points = 1

[[action]]
action = "email_open"
points = 1

[[action]]
action = "video_play"
points = 5
scale = "fraction"

[[action]]
action = "webinar_signup"
points = 5

[[action]]
action = "demo_request"
points = 10

[[action]]
action = "chat"
points = -1

[[fit]]
column = "budget"
min = 20000
points = 5
"#;

/// Exponential decay that never goes below the threshold (floor 1), a fractional half-life,
/// grace, cold window and fit window, one stage.
const MODEL_FLOOR: &str = r#"
name = "floor"
version = 11
threshold = 20
stages = ["only"]

[decay]
kind = "exponential"
half_life_days = 7.5
grace_days = 0.25
floor = 1.0

[cold]
days = 2.5

[[action]]
action = "email_open"
points = 2
stage = "only"

[[action]]
action = "demo_request"
points = 30

[[action]]
action = "page_view"
assets = ["/pricing", "/product/*"]
points = 4
stage = "only"

[[fit]]
column = "last_seen"
within_days = 0.5
points = 3
"#;

/// Rules only, no `[decay]` table at all (no decay); NPS answers scored as fractions, so an
/// answer above 1 is a bad fraction before it is a bad NPS answer.
const MODEL_BARE: &str = r#"
name = "bare"
version = 3
threshold = 5

[[action]]
action = "page_view"
points = 1

[[action]]
action = "video_play"
points = 2
scale = "fraction"

[[action]]
action = "nps_response"
points = 1
scale = "fraction"
"#;

/// The as-of days of the generated cases (2025-06-29 is the default: the last day of history).
const EDGE_DAYS: &[(i32, u32, u32)] = &[
    (2025, 6, 29),
    (2025, 3, 15),
    (2025, 5, 2),
    (2025, 2, 20),
    (2025, 9, 30),
    (2025, 6, 10),
    (2025, 4, 1),
    (2024, 12, 1),
    (2025, 1, 1),
    (2025, 4, 30),
];

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn engine() -> EngineOptions {
    EngineOptions {
        threads: 2,
        batch_size: 64,
        ..Default::default()
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Runs the real pipeline into `out`.
fn run_pipeline(
    events: &Path,
    leads: Option<&Path>,
    model: &Path,
    as_of: Option<NaiveDate>,
    out: &Path,
) -> leadscore::Result<ScoreSummary> {
    let opts = ScoreOptions {
        events: events.to_path_buf(),
        leads: leads.map(Path::to_path_buf),
        model: model.to_path_buf(),
        as_of,
        out: out.to_path_buf(),
        queries: None,
        engine: engine(),
        strict: false,
    };
    block_on(score(&opts))
}

/// One scoring run to check.
struct Case {
    name: String,
    events: PathBuf,
    leads: Option<PathBuf>,
    model: PathBuf,
    as_of: Option<NaiveDate>,
}

impl Case {
    fn new(name: &str, events: &Path, leads: Option<&Path>, model: &Path) -> Case {
        Case {
            name: name.to_string(),
            events: events.to_path_buf(),
            leads: leads.map(Path::to_path_buf),
            model: model.to_path_buf(),
            as_of: None,
        }
    }

    fn at(mut self, d: NaiveDate) -> Case {
        self.as_of = Some(d);
        self
    }
}

/// The reference's answer for a case.
fn reference_for(case: &Case) -> (Reference, IdKind) {
    let model = Model::load(&case.model).expect("model loads");
    let (events, kind) = read_events(&case.events);
    let leads = case.leads.as_ref().map(|p| read_leads(p, kind));
    (
        reference_score(&events, leads.as_deref(), &model, case.as_of),
        kind,
    )
}

/// Runs one case through the pipeline and the reference and compares everything.
fn check(case: &Case, scratch: &Path) -> Report {
    let (reference, kind) = reference_for(case);
    let out = scratch.join(format!("out-{}", case.name));
    let summary = run_pipeline(
        &case.events,
        case.leads.as_deref(),
        &case.model,
        case.as_of,
        &out,
    );
    let mut report = match summary {
        Ok(summary) => {
            let mut report = compare_outputs(&reference, &out, kind);
            let mut counts = |what: &str, expected: u64, actual: u64| {
                if expected != actual {
                    report.diffs.push(format!(
                        "summary {what}: expected {expected}, actual {actual}"
                    ));
                }
            };
            counts("rejects", reference.rejects.len() as u64, summary.rejects);
            counts(
                "duplicates_dropped",
                reference.duplicates_dropped,
                summary.duplicates_dropped,
            );
            counts("unmatched", reference.unmatched, summary.unmatched);
            counts("leads", reference.lead_scores.len() as u64, summary.leads);
            counts(
                "mqls",
                reference.lead_scores.iter().filter(|l| l.is_mql).count() as u64,
                summary.mqls,
            );
            counts(
                "accounts",
                reference.accounts.len() as u64,
                summary.accounts,
            );
            if summary.as_of != Some(reference.as_of) {
                report.diffs.push(format!(
                    "summary as_of: expected {}, actual {:?}",
                    reference.as_of, summary.as_of
                ));
            }
            report
        }
        Err(e) => Report {
            diffs: vec![format!("the pipeline failed: {e}")],
            ..Report::default()
        },
    };
    report.context = format!(
        "(reference: as_of {}, {} leads, {} product rows, {} accounts, {} rejects, {} duplicates dropped, {} mqls)",
        reference.as_of,
        reference.lead_scores.len(),
        reference.product_scores.len(),
        reference.accounts.len(),
        reference.rejects.len(),
        reference.duplicates_dropped,
        reference.lead_scores.iter().filter(|l| l.is_mql).count(),
    );
    report
}

/// Checks every case and fails with the first differences of each failing one.
fn check_all(cases: &[Case], scratch: &Path) {
    let mut failures = String::new();
    for case in cases {
        let report = check(case, scratch);
        if report.diffs.is_empty() {
            eprintln!("case {} agrees {}", case.name, report.context);
        } else {
            failures.push_str(&report.summary(&format!("case {} {}", case.name, report.context)));
        }
    }
    assert!(
        failures.is_empty(),
        "pipeline and reference differ:\n{failures}"
    );
}

fn write_model(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(&p, text).unwrap();
    p
}

/// Writes the five models into `dir`.
fn models(dir: &Path) -> [PathBuf; 5] {
    [
        write_model(dir, "exp", MODEL_EXP),
        write_model(dir, "lin", MODEL_LIN),
        write_model(dir, "flat", MODEL_FLAT),
        write_model(dir, "floor", MODEL_FLOOR),
        write_model(dir, "bare", MODEL_BARE),
    ]
}

fn dataset(seed: u64, int_ids: bool, int_event_ids: bool) -> Dataset {
    generate(&GenOptions {
        seed,
        leads: 300,
        events: 5000,
        int_ids,
        int_event_ids,
        days: 180,
        edge_days: EDGE_DAYS.iter().map(|(y, m, d)| day(*y, *m, *d)).collect(),
    })
}

/// Integer lead ids, text event ids, one Parquet file (µs, UTC), Parquet leads.
#[test]
fn generated_int_ids_single_file() {
    let dir = tempfile::tempdir().unwrap();
    let [exp, lin, flat, _, _] = models(dir.path());
    let data = dataset(1, true, false);
    let events = dir.path().join("events.parquet");
    datagen::write_events_file(&events, &data.events, &EventsLayout::default());
    let leads = dir.path().join("leads.parquet");
    datagen::write_leads_parquet(&leads, &data);
    check_all(
        &[
            Case::new("exp-default", &events, Some(&leads), &exp),
            Case::new("exp-mid", &events, Some(&leads), &exp).at(day(2025, 3, 15)),
            Case::new("lin-default", &events, Some(&leads), &lin),
            Case::new("flat-mid", &events, Some(&leads), &flat).at(day(2025, 5, 2)),
        ],
        dir.path(),
    );
}

/// Text lead ids, integer event ids, a hive tree whose files mix ms-with-zone and ns-without-zone
/// timestamps (and half of which lack `asset`), CSV leads.
#[test]
fn generated_text_ids_hive_csv() {
    let dir = tempfile::tempdir().unwrap();
    let [exp, lin, _, floor, _] = models(dir.path());
    let data = dataset(2, false, true);
    let events = dir.path().join("events");
    let mut rng = Rng::new(99);
    datagen::write_events_hive(
        &events,
        &data.events,
        &EventsLayout {
            unit: TimeUnit::Millisecond,
            tz: Some("+02:00"),
            ..Default::default()
        },
        &EventsLayout {
            unit: TimeUnit::Nanosecond,
            tz: None,
            asset: false,
            ..Default::default()
        },
        &mut rng,
    );
    let leads = dir.path().join("leads.csv");
    datagen::write_leads_csv(&leads, &data);
    check_all(
        &[
            Case::new("exp-default", &events, Some(&leads), &exp),
            Case::new("lin-mid", &events, Some(&leads), &lin).at(day(2025, 2, 20)),
            Case::new("floor-after", &events, Some(&leads), &floor).at(day(2025, 9, 30)),
        ],
        dir.path(),
    );
}

/// Integer ids in both, one Parquet file in ms without zone.
#[test]
fn generated_int_ids_ms_no_zone() {
    let dir = tempfile::tempdir().unwrap();
    let [exp, _, flat, _, bare] = models(dir.path());
    let data = dataset(3, true, true);
    let events = dir.path().join("events.parquet");
    let mut ms = data.events.clone();
    for e in &mut ms {
        e.ts = e.ts.map(|t| t.div_euclid(1000) * 1000);
    }
    datagen::write_events_file(
        &events,
        &ms,
        &EventsLayout {
            unit: TimeUnit::Millisecond,
            tz: None,
            ..Default::default()
        },
    );
    let leads = dir.path().join("leads.csv");
    datagen::write_leads_csv(&leads, &data);
    check_all(
        &[
            Case::new("exp-late", &events, Some(&leads), &exp).at(day(2025, 6, 10)),
            Case::new("flat-default", &events, Some(&leads), &flat),
            Case::new("bare-default", &events, Some(&leads), &bare),
        ],
        dir.path(),
    );
}

/// Events without the optional columns (ts in seconds) and no leads table: every fraction and
/// NPS row is rejected for its null value. Also a cutoff before any event, so that nothing at all
/// is scored (stage shares are then null).
#[test]
fn generated_minimal_columns_no_leads() {
    let dir = tempfile::tempdir().unwrap();
    let [exp, _, flat, _, bare] = models(dir.path());
    let data = dataset(4, false, false);
    let events = dir.path().join("events.parquet");
    let mut secs = data.events.clone();
    for e in &mut secs {
        e.ts = e.ts.map(|t| t.div_euclid(1_000_000) * 1_000_000);
    }
    datagen::write_events_file(
        &events,
        &secs,
        &EventsLayout {
            unit: TimeUnit::Second,
            tz: Some("UTC"),
            asset: false,
            product: false,
            value: false,
            event_id: false,
            row_group: 1000,
        },
    );
    check_all(
        &[
            Case::new("exp-default", &events, None, &exp),
            Case::new("flat-mid", &events, None, &flat).at(day(2025, 4, 1)),
            Case::new("bare-default", &events, None, &bare),
            Case::new("exp-nothing", &events, None, &exp).at(day(2024, 6, 1)),
        ],
        dir.path(),
    );
}

/// A cutoff before any event: only the leads table's leads, with fit alone; and a cutoff on a
/// day whose midnight carries events.
#[test]
fn generated_cutoff_edges() {
    let dir = tempfile::tempdir().unwrap();
    let [exp, lin, _, floor, _] = models(dir.path());
    let data = dataset(5, true, false);
    let events = dir.path().join("events.parquet");
    datagen::write_events_file(&events, &data.events, &EventsLayout::default());
    let leads = dir.path().join("leads.parquet");
    datagen::write_leads_parquet(&leads, &data);
    check_all(
        &[
            Case::new("exp-before", &events, Some(&leads), &exp).at(day(2024, 12, 1)),
            Case::new("lin-first-day", &events, Some(&leads), &lin).at(day(2025, 1, 1)),
            Case::new("floor-mid", &events, Some(&leads), &floor).at(day(2025, 4, 30)),
        ],
        dir.path(),
    );
}

/// Rows in time order (nulls first), as many logs are written.
fn time_ordered(events: &[data::Event]) -> Vec<data::Event> {
    let mut sorted = events.to_vec();
    sorted.sort_by_key(|e| e.ts);
    sorted
}

/// Integer ids spread over a wide range (`id × 1,000,003 − 5·10^12`), in events and leads alike:
/// too wide to number leads by offset.
fn sparse_ids(data: &mut Dataset) {
    let spread = |id: &mut data::Id| {
        if let data::Id::Int(v) = id {
            *v = *v * 1_000_003 - 5_000_000_000_000;
        }
    };
    for e in &mut data.events {
        if let Some(id) = e.lead_id.as_mut() {
            spread(id);
        }
    }
    for l in &mut data.leads {
        spread(&mut l.lead_id);
    }
}

/// Logs without an `event_id` column (no row is a copy of another, so the generated copies all
/// count), in time order: integer ids counting up, and the same ids spread wide.
#[test]
fn shapes_without_event_id_in_time_order() {
    let dir = tempfile::tempdir().unwrap();
    let [exp, lin, _, floor, _] = models(dir.path());
    let layout = EventsLayout {
        event_id: false,
        ..Default::default()
    };
    let mut data = dataset(6, true, true);
    data.events = time_ordered(&data.events);
    let events = dir.path().join("events.parquet");
    datagen::write_events_file(&events, &data.events, &layout);
    let leads = dir.path().join("leads.parquet");
    datagen::write_leads_parquet(&leads, &data);
    sparse_ids(&mut data);
    let sparse = dir.path().join("sparse.parquet");
    datagen::write_events_file(&sparse, &data.events, &layout);
    let sparse_leads = dir.path().join("sparse-leads.parquet");
    datagen::write_leads_parquet(&sparse_leads, &data);
    check_all(
        &[
            Case::new("exp-default", &events, Some(&leads), &exp),
            Case::new("lin-mid", &events, Some(&leads), &lin).at(day(2025, 3, 15)),
            Case::new("sparse-exp", &sparse, Some(&sparse_leads), &exp),
            Case::new("sparse-floor-mid", &sparse, Some(&sparse_leads), &floor)
                .at(day(2025, 4, 30)),
        ],
        dir.path(),
    );
}

/// Text lead ids in time order: with text `event_id`s and their copies, and without the column.
#[test]
fn shapes_text_ids_in_time_order() {
    let dir = tempfile::tempdir().unwrap();
    let [exp, lin, flat, _, _] = models(dir.path());
    let mut data = dataset(7, false, false);
    data.events = time_ordered(&data.events);
    let with_ids = dir.path().join("with-ids.parquet");
    datagen::write_events_file(&with_ids, &data.events, &EventsLayout::default());
    let without = dir.path().join("without-ids.parquet");
    datagen::write_events_file(
        &without,
        &data.events,
        &EventsLayout {
            event_id: false,
            ..Default::default()
        },
    );
    let leads = dir.path().join("leads.parquet");
    datagen::write_leads_parquet(&leads, &data);
    check_all(
        &[
            Case::new("ids-exp", &with_ids, Some(&leads), &exp),
            Case::new("ids-lin-mid", &with_ids, None, &lin).at(day(2025, 2, 20)),
            Case::new("no-ids-exp", &without, Some(&leads), &exp),
            Case::new("no-ids-flat", &without, None, &flat),
        ],
        dir.path(),
    );
}

/// The shipped fixtures, when they exist.
#[test]
fn shipped_fixtures() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let (events, leads, model) = (
        root.join("events"),
        root.join("leads.csv"),
        root.join("model.toml"),
    );
    if !(events.exists() && model.exists()) {
        eprintln!("no fixtures in {}: skipped", root.display());
        return;
    }
    let leads = leads.exists().then_some(leads);
    let dir = tempfile::tempdir().unwrap();
    let default = Case::new("fixtures-default", &events, leads.as_deref(), &model);
    let (reference, _) = reference_for(&default);
    let mid = reference.as_of - chrono::Days::new(45);
    check_all(
        &[
            default,
            Case::new("fixtures-mid", &events, leads.as_deref(), &model).at(mid),
        ],
        dir.path(),
    );
}

/// The reference itself on a hand-worked example, so that the oracle is checked against
/// arithmetic done by hand and not only against the pipeline.
#[test]
fn reference_hand_worked() {
    use data::{Event, Id};
    let model = Model::parse(
        r#"
name = "hand"
version = 1
threshold = 10
stages = ["a", "b"]

[decay]
kind = "exponential"
half_life_days = 10
grace_days = 2
floor = 0.2

[cold]
days = 5

[[action]]
action = "view"
points = 4
stage = "a"

[[action]]
action = "play"
points = 10
scale = "fraction"
stage = "b"
"#,
        Path::new("hand.toml"),
    )
    .unwrap();
    let t = |d: i64, h: i64| datagen::base_micros() + d * data::MICROS_PER_DAY + h * 3_600_000_000;
    let ev = |lead: i64, ts: i64, action: &str, value: Option<f64>, id: Option<&str>| Event {
        lead_id: Some(Id::Int(lead)),
        ts: Some(ts),
        action: Some(action.into()),
        asset: None,
        product: Some("p".into()),
        value,
        event_id: id.map(|s| Id::Text(s.into())),
    };
    let events = vec![
        // Lead 1: 4 at day 0, 4 at day 12 (10 idle days after grace: halved to 2, then +4 = 6),
        // two events at day 13 together (+4 and +5) cross 10.
        ev(1, t(0, 0), "view", None, Some("x")),
        ev(1, t(0, 0), "view", None, Some("x")),
        ev(1, t(12, 0), "view", None, None),
        ev(1, t(13, 0), "view", None, None),
        ev(1, t(13, 0), "play", Some(0.5), None),
        // Lead 2: one bad fraction, one NPS without answer.
        ev(2, t(1, 0), "play", Some(1.5), None),
        ev(2, t(1, 0), "nps_response", None, None),
        ev(2, t(2, 0), "nps_response", Some(9.0), None),
    ];
    let r = reference_score(&events, None, &model, Some(day(2025, 1, 20)));
    assert_eq!(r.duplicates_dropped, 1);
    assert_eq!(r.rejects.len(), 2);
    assert_eq!(r.rejects[0].reason, "fraction outside 0..1");
    assert_eq!(r.rejects[1].reason, "nps answer outside 0..10");
    let l1 = &r.lead_scores[0];
    // Before the day-13 events: 6 decayed over 1 day (inside grace) = 6; +9 = 15.
    // At the cutoff (2025-01-21 = day 20): 7 idle days, 5 past grace: 15 x 2^-0.5.
    let expected = 15.0 * 2f64.powf(-0.5);
    assert!(
        (l1.engagement - expected).abs() < 1e-12,
        "{}",
        l1.engagement
    );
    assert_eq!(l1.mql_at, Some(t(13, 0)));
    assert_eq!(l1.tallies, vec![3, 1]);
    assert_eq!(l1.stage.as_deref(), Some("b"));
    assert!(l1.is_cold);
    let l2 = &r.lead_scores[1];
    assert_eq!(l2.engagement, 0.0);
    assert_eq!(l2.nps, Some(9.0));
    assert_eq!(l2.nps_class, Some("promoter"));
    assert_eq!(l2.last_activity, None);
    // The floor: a score at 2 (the floor, 0.2 x 10) never decays.
    assert_eq!(oracle::decay(&model, 2.0, 100.0, 2.0), 2.0);
    assert_eq!(oracle::decay(&model, 3.0, 1000.0, 2.0), 2.0);
    assert_eq!(r.product_scores.len(), 1);
}

#[test]
fn reference_helpers() {
    use oracle::glob_match;
    assert!(glob_match("/pricing*", "/pricing"));
    assert!(glob_match("/pricing*", "/pricing/x"));
    assert!(!glob_match("/pricing*", "/PRICING"));
    assert!(glob_match("wp-*-guide", "wp-roi-guide"));
    assert!(!glob_match("wp-*-guide", "wp-guide"));
    assert!(glob_match("/a.b?c[1]*", "/a.b?c[1]"));
    assert!(!glob_match("/a.b?c[1]*", "/aXb?c[1]"));
    assert!(glob_match("/promo_50%*", "/promo_50%off"));
    assert!(!glob_match("/promo_50%*", "/promoX50Yoff"));
    assert!(glob_match("/x\\*", "/x\\y"));
    assert!(!glob_match("/x\\*", "/xy"));
    assert!(glob_match("*", ""));
    assert!(glob_match("**a*", "xxa"));
    assert!(!glob_match("", "x"));
    let rows = data::parse_csv("a,b,c\n1,\"x, \"\"y\"\"\",\n2, sp ,\"\"\r\n");
    assert_eq!(
        rows,
        vec![
            vec![Some("a".into()), Some("b".into()), Some("c".into())],
            vec![Some("1".into()), Some("x, \"y\"".into()), None],
            vec![Some("2".into()), Some(" sp ".into()), None],
        ]
    );
    assert_eq!(
        data::parse_time("2025-01-02"),
        Some(datagen::base_micros() + data::MICROS_PER_DAY)
    );
}

/// One `weights` run to check.
struct WeightsCase {
    name: String,
    events: PathBuf,
    outcomes: PathBuf,
    model: PathBuf,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
}

impl WeightsCase {
    fn new(name: &str, events: &Path, outcomes: &Path, model: &Path) -> WeightsCase {
        WeightsCase {
            name: name.to_string(),
            events: events.to_path_buf(),
            outcomes: outcomes.to_path_buf(),
            model: model.to_path_buf(),
            from: None,
            to: None,
        }
    }

    fn window(mut self, from: Option<NaiveDate>, to: Option<NaiveDate>) -> WeightsCase {
        self.from = from;
        self.to = to;
        self
    }
}

/// The day the proposed models are made.
const WEIGHTS_TODAY: (i32, u32, u32) = (2025, 7, 4);

fn run_weights(case: &WeightsCase, out: &Path) -> leadscore::Result<WeightsSummary> {
    let (y, m, d) = WEIGHTS_TODAY;
    block_on(weights(&WeightsOptions {
        events: case.events.clone(),
        outcomes: case.outcomes.clone(),
        model: case.model.clone(),
        from: case.from,
        to: case.to,
        today: day(y, m, d),
        out: out.to_path_buf(),
        queries: None,
        engine: engine(),
        strict: false,
    }))
}

/// The reference's answer for a `weights` case.
fn weights_reference_for(case: &WeightsCase) -> WeightsRef {
    let model = Model::load(&case.model).expect("model loads");
    let (events, kind) = read_events(&case.events);
    let outcomes = read_outcomes(&case.outcomes, kind);
    reference_weights(&events, &outcomes, &model, case.from, case.to)
}

/// The proposed model must be the input model with the staged positive rules at `points`,
/// `version + 1`, `created` = today and new notes; nothing else changes.
fn check_proposed(report: &mut Report, input: &Path, points: Option<i64>, out: &Path) {
    let path = out.join(PROPOSED_MODEL);
    let Some(points) = points else {
        if path.exists() {
            report.push(format!("{PROPOSED_MODEL} written without converted leads"));
        }
        return;
    };
    let old = Model::load(input).expect("model loads");
    let new = match Model::load(&path) {
        Ok(m) => m,
        Err(e) => {
            report.push(format!("{PROPOSED_MODEL} does not load: {e}"));
            return;
        }
    };
    if old.actions.len() != new.actions.len() || old.fits.len() != new.fits.len() {
        report.push(format!(
            "{PROPOSED_MODEL}: {} actions and {} fit rules, expected {} and {}",
            new.actions.len(),
            new.fits.len(),
            old.actions.len(),
            old.fits.len()
        ));
        return;
    }
    let (y, m, d) = WEIGHTS_TODAY;
    let mut expected = old.clone();
    expected.path = new.path.clone();
    expected.version = old.version + 1;
    expected.created = Some(day(y, m, d));
    expected.notes = new.notes.clone();
    for (e, n) in expected.actions.iter_mut().zip(&new.actions) {
        e.line = n.line;
        if e.stage.is_some() && e.points > 0.0 {
            e.points = points as f64;
        }
    }
    for (e, n) in expected.fits.iter_mut().zip(&new.fits) {
        e.line = n.line;
    }
    if new.notes.trim().is_empty() || new.notes == old.notes {
        report.push(format!(
            "{PROPOSED_MODEL}: notes {:?} do not tell what changed",
            new.notes
        ));
    }
    if expected != new {
        report.push(format!(
            "{PROPOSED_MODEL} differs:\n    expected {expected:?}\n    actual   {new:?}"
        ));
    }
}

/// Runs one `weights` case through the command and the reference and compares everything.
fn check_weights(case: &WeightsCase, scratch: &Path) -> (Report, WeightsRef) {
    let reference = weights_reference_for(case);
    let out = scratch.join(format!("weights-{}", case.name));
    let mut report = match run_weights(case, &out) {
        Ok(summary) => {
            let mut report = compare_weights(&reference, &out);
            for t in WEIGHTS_TABLES {
                if !out.join(t).is_dir() {
                    report.push(format!("table {t} was not published"));
                }
            }
            check_proposed(&mut report, &case.model, reference.proposed_points, &out);
            let mut counts = |what: &str, expected: u64, actual: u64| {
                if expected != actual {
                    report.push(format!(
                        "summary {what}: expected {expected}, actual {actual}"
                    ));
                }
            };
            counts("rejects", reference.rejects.len() as u64, summary.rejects);
            counts(
                "duplicates_dropped",
                reference.duplicates_dropped,
                summary.duplicates_dropped,
            );
            if summary.points != reference.proposed_points {
                report.push(format!(
                    "summary points: expected {:?}, actual {:?}",
                    reference.proposed_points, summary.points
                ));
            }
            report
        }
        Err(e) => Report {
            diffs: vec![format!("weights failed: {e}")],
            ..Report::default()
        },
    };
    report.context = format!(
        "(reference: {} converted leads, points {:?}, {} trend rows, {} rejects)",
        reference.converted,
        reference.proposed_points,
        reference.trend.len(),
        reference.rejects.len(),
    );
    (report, reference)
}

/// One `review` run to check.
struct ReviewCase {
    name: String,
    events: PathBuf,
    leads: Option<PathBuf>,
    outcomes: PathBuf,
    models: Vec<PathBuf>,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    window_days: u32,
    today: NaiveDate,
}

fn run_review(case: &ReviewCase, out: &Path) -> leadscore::Result<ReviewSummary> {
    block_on(review(&ReviewOptions {
        events: case.events.clone(),
        leads: case.leads.clone(),
        outcomes: case.outcomes.clone(),
        models: case.models.clone(),
        from: case.from,
        to: case.to,
        window_days: case.window_days,
        today: case.today,
        out: out.to_path_buf(),
        queries: None,
        engine: engine(),
    }))
}

/// The reference's answer for a `review` case, and its `to`.
fn review_reference_for(case: &ReviewCase) -> (Vec<ReviewRef>, NaiveDate) {
    let models: Vec<Model> = case
        .models
        .iter()
        .map(|m| Model::load(m).expect("model loads"))
        .collect();
    let (events, kind) = read_events(&case.events);
    let leads = case.leads.as_ref().map(|p| read_leads(p, kind));
    let outcomes = read_outcomes(&case.outcomes, kind);
    let rows = reference_review(
        &events,
        leads.as_deref(),
        &outcomes,
        &models,
        case.from,
        case.to,
        case.window_days,
        case.today,
    );
    (rows, outcomes::review_to(&events, &models[0], case.to))
}

/// Runs one `review` case through the command and the reference and compares everything.
fn check_review(case: &ReviewCase, scratch: &Path) -> (Report, Vec<ReviewRef>) {
    let (reference, to) = review_reference_for(case);
    let out = scratch.join(format!("review-{}", case.name));
    let mut report = match run_review(case, &out) {
        Ok(summary) => {
            let mut report = compare_review(&reference, &out);
            if summary.to != Some(to) || summary.from != case.from {
                report.push(format!(
                    "summary window: expected [{:?}, {to}), actual [{:?}, {:?})",
                    case.from, summary.from, summary.to
                ));
            }
            report
        }
        Err(e) => Report {
            diffs: vec![format!("review failed: {e}")],
            ..Report::default()
        },
    };
    report.context = format!(
        "(reference: to {to}, mqls {:?})",
        reference.iter().map(|r| r.mqls).collect::<Vec<_>>()
    );
    (report, reference)
}

/// Fails with the differences of every failing case.
fn fail_on(reports: Vec<(String, Report)>) {
    let mut failures = String::new();
    for (name, report) in reports {
        if report.diffs.is_empty() {
            eprintln!("case {name} agrees {}", report.context);
        } else {
            failures.push_str(&report.summary(&format!("case {name} {}", report.context)));
        }
    }
    assert!(
        failures.is_empty(),
        "command and reference differ:\n{failures}"
    );
}

fn check_all_weights(cases: &[WeightsCase], scratch: &Path) -> Vec<WeightsRef> {
    let (reports, refs): (Vec<_>, Vec<_>) = cases
        .iter()
        .map(|c| {
            let (report, reference) = check_weights(c, scratch);
            ((format!("weights-{}", c.name), report), reference)
        })
        .unzip();
    fail_on(reports);
    refs
}

fn check_all_reviews(cases: &[ReviewCase], scratch: &Path) -> Vec<Vec<ReviewRef>> {
    let (reports, refs): (Vec<_>, Vec<_>) = cases
        .iter()
        .map(|c| {
            let (report, reference) = check_review(c, scratch);
            ((format!("review-{}", c.name), report), reference)
        })
        .unzip();
    fail_on(reports);
    refs
}

/// Month starts and window bounds that the generated opportunities land on (or just before).
fn outcome_edges() -> Vec<NaiveDate> {
    vec![
        day(2025, 1, 1),
        day(2025, 2, 1),
        day(2025, 3, 1),
        day(2025, 4, 1),
        day(2025, 5, 1),
        day(2025, 6, 1),
    ]
}

/// Integer ids, one events file, Parquet outcomes (µs, UTC); no window, and a lower bound only.
#[test]
fn weights_generated_int_ids() {
    let dir = tempfile::tempdir().unwrap();
    let [exp, lin, _, floor, _] = models(dir.path());
    let data = dataset(11, true, false);
    let events = dir.path().join("events.parquet");
    datagen::write_events_file(&events, &data.events, &EventsLayout::default());
    let outcomes = datagen::generate_outcomes(&data, 111, &outcome_edges());
    let path = dir.path().join("outcomes.parquet");
    datagen::write_outcomes_parquet(&path, &outcomes, TimeUnit::Microsecond, Some("UTC"));
    let refs = check_all_weights(
        &[
            WeightsCase::new("exp-all", &events, &path, &exp),
            WeightsCase::new("lin-all", &events, &path, &lin),
            WeightsCase::new("floor-from", &events, &path, &floor)
                .window(Some(day(2025, 3, 1)), None),
        ],
        dir.path(),
    );
    // The data must exercise what it is meant to: several months, converted leads on every
    // stage, and rules that lift above and below the base rate.
    assert!(refs[0].converted > 20, "{}", refs[0].converted);
    let months: std::collections::BTreeSet<_> = refs[0].trend.iter().map(|t| t.month).collect();
    assert!(months.len() >= 5, "{months:?}");
    assert!(refs[0].lift.iter().any(|l| l.lift.is_some_and(|x| x > 1.0)));
    assert!(refs[0].lift.iter().any(|l| l.lift.is_some_and(|x| x < 1.0)));
}

/// Text ids, a hive tree of events, CSV outcomes under a `[from, to)` window and under an upper
/// bound only; Parquet outcomes with text ids in ns without zone.
#[test]
fn weights_text_ids_csv_window() {
    let dir = tempfile::tempdir().unwrap();
    let [exp, lin, _, floor, _] = models(dir.path());
    let data = dataset(12, false, true);
    let events = dir.path().join("events");
    let mut rng = Rng::new(98);
    datagen::write_events_hive(
        &events,
        &data.events,
        &EventsLayout::default(),
        &EventsLayout {
            unit: TimeUnit::Nanosecond,
            tz: None,
            ..Default::default()
        },
        &mut rng,
    );
    let outcomes = datagen::generate_outcomes(&data, 112, &outcome_edges());
    let csv = dir.path().join("outcomes.csv");
    datagen::write_outcomes_csv(&csv, &outcomes);
    let parquet = dir.path().join("outcomes.parquet");
    datagen::write_outcomes_parquet(&parquet, &outcomes, TimeUnit::Nanosecond, None);
    let window = (Some(day(2025, 2, 1)), Some(day(2025, 5, 1)));
    check_all_weights(
        &[
            WeightsCase::new("exp-window", &events, &csv, &exp).window(window.0, window.1),
            WeightsCase::new("lin-to", &events, &csv, &lin).window(None, Some(day(2025, 4, 1))),
            WeightsCase::new("floor-window", &events, &parquet, &floor).window(window.0, window.1),
        ],
        dir.path(),
    );
}

/// Windows in which nothing converts: one with no opportunity at all (no proposed model, null
/// averages, no trend, null lifts), one whose opportunities all come before any staged action.
#[test]
fn weights_empty_window() {
    let dir = tempfile::tempdir().unwrap();
    let [exp, ..] = models(dir.path());
    let data = dataset(14, true, true);
    let events = dir.path().join("events.parquet");
    datagen::write_events_file(&events, &data.events, &EventsLayout::default());
    let outcomes = datagen::generate_outcomes(&data, 114, &outcome_edges());
    let path = dir.path().join("outcomes.parquet");
    datagen::write_outcomes_parquet(&path, &outcomes, TimeUnit::Microsecond, Some("UTC"));
    let before = (Some(day(2024, 11, 1)), Some(day(2025, 1, 1)));
    let refs = check_all_weights(
        &[
            WeightsCase::new("exp-future", &events, &path, &exp)
                .window(Some(day(2030, 1, 1)), Some(day(2030, 2, 1))),
            WeightsCase::new("exp-before-events", &events, &path, &exp).window(before.0, before.1),
        ],
        dir.path(),
    );
    assert!(refs.iter().all(|r| r.converted == 0));
    let early = outcomes
        .iter()
        .filter_map(|o| o.opportunity_at)
        .filter(|t| *t < datagen::base_micros() && *t >= outcomes::midnight(day(2024, 11, 1)))
        .count();
    assert!(early > 0, "no opportunity before the events");
}

/// Three models side by side (two with `created`, one without), Parquet leads, CSV outcomes
/// with integer ids: a fixed window, the default window, and a lower bound only with a
/// zero-day conversion window.
#[test]
fn review_generated_models() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(13, true, true);
    let events = dir.path().join("events.parquet");
    datagen::write_events_file(&events, &data.events, &EventsLayout::default());
    let leads = dir.path().join("leads.parquet");
    datagen::write_leads_parquet(&leads, &data);
    // The windows' bounds, the default `to` among them.
    let edges = [
        day(2025, 2, 1),
        day(2025, 4, 1),
        day(2025, 6, 1),
        day(2025, 6, 30),
    ];
    let outcomes = datagen::generate_outcomes(&data, 113, &edges);
    let on_edges = outcomes
        .iter()
        .filter(|o| {
            edges
                .iter()
                .any(|d| o.opportunity_at == Some(outcomes::midnight(*d)))
        })
        .count();
    assert!(on_edges >= 4, "{on_edges} opportunities on the bounds");
    let csv = dir.path().join("outcomes.csv");
    datagen::write_outcomes_csv(&csv, &outcomes);
    let exp = write_model(
        dir.path(),
        "exp-dated",
        &format!("created = 2025-01-10\nnotes = \"demo 20 -> 25, \\\"hot\\\" leads\"\n{MODEL_EXP}"),
    );
    let lin = write_model(
        dir.path(),
        "lin-dated",
        &format!("created = 2024-06-01\n{MODEL_LIN}"),
    );
    let flat = write_model(dir.path(), "flat", MODEL_FLAT);
    let models = vec![exp, lin, flat];
    let case = |name: &str, from, to, window_days| ReviewCase {
        name: name.to_string(),
        events: events.clone(),
        leads: Some(leads.clone()),
        outcomes: csv.clone(),
        models: models.clone(),
        from,
        to,
        window_days,
        today: day(2025, 7, 15),
    };
    let refs = check_all_reviews(
        &[
            case("window", Some(day(2025, 2, 1)), Some(day(2025, 6, 1)), 90),
            case("default", None, None, 30),
            case("from-zero-days", Some(day(2025, 4, 1)), None, 0),
        ],
        dir.path(),
    );
    let r = &refs[0];
    assert!(r.iter().all(|m| m.mqls > 0), "{r:?}");
    assert!(r.iter().all(|m| m.median_days_to_opportunity.is_some()));
    assert!(r.iter().all(|m| m.opportunity_coverage.is_some()));
}

/// The shipped fixtures, when they exist: weights over all history and over a window, review of
/// the shipped model over its default window and over a window.
#[test]
fn outcomes_shipped_fixtures() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let (events, leads, model, path) = (
        root.join("events"),
        root.join("leads.csv"),
        root.join("model.toml"),
        root.join("outcomes.parquet"),
    );
    if !(events.exists() && model.exists() && path.exists()) {
        eprintln!("no fixtures with outcomes in {}: skipped", root.display());
        return;
    }
    let leads = leads.exists().then_some(leads);
    let dir = tempfile::tempdir().unwrap();
    let (_, kind) = read_events(&events);
    let outcomes = read_outcomes(&path, kind);
    let mut times: Vec<i64> = outcomes.iter().filter_map(|o| o.opportunity_at).collect();
    times.sort();
    let at = |q: usize| {
        chrono::DateTime::from_timestamp_micros(times[times.len() * q / 4])
            .unwrap()
            .date_naive()
    };
    let (from, to) = (at(1), at(3));
    let refs = check_all_weights(
        &[
            WeightsCase::new("fixtures-all", &events, &path, &model),
            WeightsCase::new("fixtures-window", &events, &path, &model)
                .window(Some(from), Some(to)),
        ],
        dir.path(),
    );
    assert!(refs[0].converted > 0);
    let case = |name: &str, from, to| ReviewCase {
        name: name.to_string(),
        events: events.clone(),
        leads: leads.clone(),
        outcomes: path.clone(),
        models: vec![model.clone()],
        from,
        to,
        window_days: 90,
        today: day(2026, 12, 1),
    };
    check_all_reviews(
        &[
            case("fixtures-default", None, None),
            case("fixtures-window", Some(from), Some(to)),
        ],
        dir.path(),
    );
}

/// The weights and review references on a hand-worked example.
#[test]
fn reference_outcomes_hand_worked() {
    use data::{Event, Id, Outcome};
    let model = Model::parse(
        r#"
name = "hand"
version = 4
created = 2025-01-01
notes = "n"
threshold = 5
stages = ["a", "b"]

[[action]]
action = "view"
points = 2
stage = "a"

[[action]]
action = "click"
points = 3
stage = "b"

[[action]]
action = "plain"
points = 1

[[action]]
action = "neg"
points = -1
stage = "a"
"#,
        Path::new("hand.toml"),
    )
    .unwrap();
    let t = |d: i64| datagen::base_micros() + d * data::MICROS_PER_DAY;
    let ev = |lead: i64, d: i64, action: &str| Event {
        lead_id: Some(Id::Int(lead)),
        ts: Some(t(d)),
        action: Some(action.into()),
        asset: None,
        product: None,
        value: None,
        event_id: None,
    };
    let events = vec![
        ev(1, 1, "view"),
        ev(1, 2, "view"),
        ev(1, 3, "click"),
        ev(1, 5, "view"),
        ev(2, 1, "view"),
        ev(2, 2, "click"),
        ev(3, 1, "plain"),
        ev(3, 2, "click"),
        ev(4, 1, "view"),
    ];
    let o = |lead: Option<i64>, d: Option<i64>| Outcome {
        lead_id: lead.map(Id::Int),
        opportunity_at: d.map(t),
    };
    let outcomes = vec![
        o(Some(1), Some(8)),
        o(Some(1), Some(4)),
        o(Some(2), Some(1)),
        o(Some(3), None),
        o(Some(3), Some(3)),
        o(Some(3), Some(10)),
        o(Some(5), Some(6)),
        o(None, Some(2)),
        o(Some(4), None),
    ];
    // Lead 1 converts at day 4 after two views and a click; lead 3 at day 3 after a click (its
    // earliest row counts); lead 2's opportunity is at the instant of its first view, so nothing
    // staged came before it. Averages 1 and 1: 5 / 2 = 2.5, rounded away from zero to 3.
    let w = reference_weights(&events, &outcomes, &model, None, None);
    assert_eq!(w.converted, 2);
    let avgs: Vec<_> = w.stage_tallies.iter().map(|s| s.avg_tally).collect();
    assert_eq!(avgs, vec![Some(1.0), Some(1.0)]);
    assert_eq!(w.stage_tallies[0].points_per_action, Some(2.5));
    assert_eq!(w.proposed_points, Some(3));
    assert_eq!(w.trend.len(), 2);
    assert_eq!(w.trend[0].month, day(2025, 1, 1));
    assert_eq!(w.trend[0].converted_leads, 2);
    // Base rate 2 of 4 leads with events. Views: leads 1, 2 and 4 (lead 1's view after its
    // opportunity does not count, but its earlier ones do).
    let lift: Vec<_> = w
        .lift
        .iter()
        .map(|l| (l.leads, l.converted, l.conversion_rate, l.lift))
        .collect();
    assert_eq!(
        lift,
        vec![
            (3, 1, Some(1.0 / 3.0), Some(2.0 / 3.0)),
            (3, 2, Some(2.0 / 3.0), Some(4.0 / 3.0)),
            (1, 1, Some(1.0), Some(2.0)),
            (0, 0, None, None),
        ]
    );
    // The window ends at lead 1's opportunity (day 4 = 2025-01-05, midnight): only lead 3.
    let w = reference_weights(&events, &outcomes, &model, None, Some(day(2025, 1, 5)));
    assert_eq!(w.converted, 1);
    assert_eq!(w.proposed_points, Some(5));
    let w = reference_weights(&events, &outcomes, &model, Some(day(2025, 2, 1)), None);
    assert_eq!(w.converted, 0);
    assert_eq!(w.proposed_points, None);
    assert_eq!(w.stage_tallies[1].avg_tally, None);
    assert!(w.lift.iter().all(|l| l.lift.is_none()));

    // Review: lead 1 crosses 5 at day 3 (2 + 2 + 3), lead 2 at day 2 (2 + 3), lead 3 never.
    // Default `to`: the day after day 5 = 2025-01-07, whose midnight is lead 5's opportunity.
    let today = day(2025, 3, 15);
    let models = [model];
    let r = reference_review(&events, None, &outcomes, &models, None, None, 90, today);
    assert_eq!(r[0].mqls, 2);
    assert_eq!(r[0].mql_to_opportunity, Some(0.5));
    assert_eq!(r[0].opportunity_coverage, Some(1.0 / 3.0));
    assert_eq!(r[0].median_days_to_opportunity, Some(1.0));
    assert_eq!(r[0].next_review, Some(day(2025, 5, 31)));
    let r = reference_review(&events, None, &outcomes, &models, None, None, 0, today);
    assert_eq!(r[0].mql_to_opportunity, Some(0.0));
    assert_eq!(r[0].median_days_to_opportunity, None);
    let from = Some(day(2025, 1, 4));
    let r = reference_review(&events, None, &outcomes, &models, from, None, 90, today);
    assert_eq!(r[0].mqls, 1);
    assert_eq!(r[0].mql_to_opportunity, Some(1.0));
    assert_eq!(r[0].opportunity_coverage, Some(0.5));
    let r = reference_review(
        &events,
        None,
        &outcomes,
        &models,
        Some(day(2025, 6, 1)),
        Some(day(2025, 7, 1)),
        90,
        today,
    );
    assert_eq!(r[0].mqls, 0);
    assert_eq!(r[0].mql_to_opportunity, None);
    assert_eq!(r[0].opportunity_coverage, None);
    let created = day(2026, 9, 1);
    assert_eq!(outcomes::next_review(created, created), day(2026, 10, 31));
    assert_eq!(
        outcomes::next_review(created, day(2026, 10, 31)),
        day(2026, 10, 31)
    );
    assert_eq!(
        outcomes::next_review(created, day(2026, 11, 1)),
        day(2027, 1, 29)
    );
    assert_eq!(outcomes::proposed_points(0.4), 1);
    assert_eq!(outcomes::proposed_points(8.5), 9);
    assert_eq!(outcomes::proposed_points(8.49), 8);
}
