//! The `leadscore` binary end to end, as a new user runs it: on the shipped fixtures, on small
//! inputs written here, and on bad input (one clear message, exit 1, previous output untouched).

use std::path::Path;
use std::process::{Command, Output};

use datafusion::prelude::*;

mod common;
use common::copy_dir;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_leadscore"))
}

fn run(args: &[&str], dir: &Path) -> Output {
    bin()
        .args(args)
        .current_dir(dir)
        .output()
        .expect("leadscore runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// Runs the binary with `args` followed by `extra`, expects success and returns its stderr.
fn succeed(args: &[&str], extra: &[&str], dir: &Path) -> String {
    let all: Vec<&str> = args.iter().chain(extra).copied().collect();
    let o = run(&all, dir);
    assert!(o.status.success(), "{}", stderr(&o));
    stderr(&o)
}

const MODEL: &str = r#"name = "cli"
version = 4
threshold = 20
stages = ["awareness", "decision"]

[decay]
kind = "exponential"
half_life_days = 10
floor = 0.25

[[action]]
action = "page_view"
assets = ["/pricing*"]
points = 10
stage = "decision"

[[action]]
action = "video_play"
points = 20
scale = "fraction"
stage = "awareness"

[[fit]]
column = "role"
in = ["vp"]
points = 5
"#;

/// A directory with `events.parquet`, `leads.csv` and `model.toml`.
async fn inputs() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let ctx = SessionContext::new();
    let events = dir.path().join("events.parquet");
    let sql = format!(
        "COPY (select lead_id, arrow_cast(ts, 'Timestamp(Microsecond, Some(\"UTC\"))') as ts, action, asset, product, cast(value as double) as value, event_id from (values
          ('L1', '2026-01-01T00:00:00Z', 'page_view', '/pricing', 'crm', null, 1),
          ('L1', '2026-01-11T00:00:00Z', 'video_play', 'v1', 'crm', 0.5, 2),
          ('L2', '2026-01-06T00:00:00Z', 'video_play', null, null, 1.5, 3),
          ('L2', '2026-01-07T00:00:00Z', 'email_open', null, null, null, 4)
        ) t(lead_id, ts, action, asset, product, value, event_id)) TO '{}' STORED AS PARQUET",
        events.display()
    );
    ctx.sql(&sql).await.unwrap().collect().await.unwrap();
    std::fs::write(
        dir.path().join("leads.csv"),
        "lead_id,account_id,role\nL1,A1, VP \nL2,A1,analyst\nL9,A2,vp\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("model.toml"), MODEL).unwrap();
    dir
}

fn score_args(out: &str) -> Vec<&str> {
    vec![
        "score",
        "--events",
        "events.parquet",
        "--leads",
        "leads.csv",
        "--model",
        "model.toml",
        "--out",
        out,
    ]
}

/// All rows of a published table, sorted, as text (floats by their bits).
async fn rows(table_dir: &Path) -> Vec<String> {
    rows_of(table_dir, "select * from t").await
}

/// The rows of `select` over the table in `table_dir` (as `t`), sorted, as text (floats by their
/// bits).
async fn rows_of(table_dir: &Path, select: &str) -> Vec<String> {
    let ctx = SessionContext::new();
    ctx.register_parquet(
        "t",
        format!("{}/", table_dir.display()),
        ParquetReadOptions::default(),
    )
    .await
    .unwrap();
    let batches = ctx.sql(select).await.unwrap().collect().await.unwrap();
    common::text_rows(&batches)
}

#[tokio::test]
async fn scores_and_prints_a_summary() {
    let dir = inputs().await;
    let o = run(&score_args("out"), dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("scored as of 2026-01-11: 3 leads, 0 MQLs, 2 accounts from 4 input rows"),
        "{err}"
    );
    assert!(
        err.contains("1 rows rejected (1 fraction outside 0..1), 1 unmatched events"),
        "{err}"
    );
    for table in [
        "lead_scores",
        "lead_product_scores",
        "account_scores",
        "stage_report",
        "rejects",
    ] {
        assert!(
            dir.path()
                .join("out")
                .join(table)
                .join("part-00000.parquet")
                .exists(),
            "{table}"
        );
    }
    // Nothing of the run's staging area is left behind.
    let names: Vec<String> = std::fs::read_dir(dir.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(names.len(), 5, "{names:?}");
}

#[tokio::test]
async fn written_files_use_plain_types() {
    let dir = inputs().await;
    assert!(run(&score_args("out"), dir.path()).status.success());
    let file = std::fs::File::open(dir.path().join("out/lead_scores/part-00000.parquet")).unwrap();
    let reader =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    let schema = reader.schema();
    let t = |name: &str| {
        schema
            .field_with_name(name)
            .unwrap()
            .data_type()
            .to_string()
    };
    assert_eq!(t("as_of"), "Date32");
    assert_eq!(t("lead_id"), "Utf8");
    assert_eq!(t("score"), "Float64");
    assert_eq!(t("mql_at"), "Timestamp(µs, \"UTC\")");
    assert_eq!(t("tally_decision"), "Int64");
    assert_eq!(t("is_cold"), "Boolean");
    let compression = reader.metadata().row_group(0).column(0).compression();
    assert!(
        matches!(compression, parquet::basic::Compression::ZSTD(_)),
        "{compression:?}"
    );
}

#[tokio::test]
async fn a_rerun_gives_the_same_rows_bit_for_bit() {
    let dir = inputs().await;
    assert!(run(&score_args("a"), dir.path()).status.success());
    let mut args = score_args("b");
    args.extend(["--threads", "1"]);
    assert!(run(&args, dir.path()).status.success());
    for table in [
        "lead_scores",
        "lead_product_scores",
        "account_scores",
        "stage_report",
        "rejects",
    ] {
        let a = rows(&dir.path().join("a").join(table)).await;
        let b = rows(&dir.path().join("b").join(table)).await;
        assert!(!a.is_empty() || table == "lead_product_scores", "{table}");
        assert_eq!(a, b, "{table}");
    }
}

/// Runs `args` expecting exit 1 with one line on stderr containing every `needle`, and checks
/// that the previous output in `out` is exactly as it was.
fn fails_cleanly(dir: &Path, args: &[&str], needles: &[&str]) {
    let before = common::snapshot(&dir.join("out"));
    assert!(!before.is_empty());
    let o = run(args, dir);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(err.trim().lines().count(), 1, "one line expected: {err}");
    assert!(err.starts_with("leadscore: "), "{err}");
    for n in needles {
        assert!(err.contains(n), "{n:?} not in: {err}");
    }
    assert_eq!(
        common::snapshot(&dir.join("out")),
        before,
        "the previous output changed"
    );
}

/// Scores once, then edits the model (`from` becomes `to`) and expects a clean failure.
async fn bad_model_fails_cleanly(from: &str, to: &str, needles: &[&str]) {
    let dir = inputs().await;
    assert!(run(&score_args("out"), dir.path()).status.success());
    std::fs::write(dir.path().join("model.toml"), MODEL.replace(from, to)).unwrap();
    fails_cleanly(dir.path(), &score_args("out"), needles);
}

#[tokio::test]
async fn a_typo_in_the_model_names_the_line() {
    bad_model_fails_cleanly(
        "points = 20",
        "poinst = 20",
        &["model.toml:19:", "unknown key 'poinst'"],
    )
    .await;
}

#[tokio::test]
async fn a_value_of_the_wrong_type_names_the_line() {
    bad_model_fails_cleanly(
        "half_life_days = 10",
        "half_life_days = \"ten\"",
        &[
            "model.toml:8:",
            "'half_life_days': invalid type: string \"ten\", expected a number",
        ],
    )
    .await;
}

#[tokio::test]
async fn an_undeclared_stage_names_the_line() {
    bad_model_fails_cleanly(
        "stage = \"decision\"",
        "stage = \"purchase\"",
        &["model.toml:15:", "\"purchase\" is not declared"],
    )
    .await;
}

#[tokio::test]
async fn a_fit_rule_on_a_missing_column_names_the_line() {
    bad_model_fails_cleanly(
        "column = \"role\"",
        "column = \"seniority\"",
        &["model.toml:24:", "seniority", "leads.csv"],
    )
    .await;
}

#[tokio::test]
async fn events_that_are_not_parquet_are_named() {
    let dir = inputs().await;
    assert!(run(&score_args("out"), dir.path()).status.success());
    std::fs::write(
        dir.path().join("events.csv"),
        "lead_id,ts,action\nL1,2026-01-01,x\n",
    )
    .unwrap();
    let mut args = score_args("out");
    args[2] = "events.csv";
    fails_cleanly(dir.path(), &args, &["events.csv", "not a Parquet file"]);
}

/// Scores once, then scores `events` written from `select` and expects a clean failure.
async fn bad_events_fail_cleanly(file: &str, select: &str, needles: &[&str]) {
    let dir = inputs().await;
    assert!(run(&score_args("out"), dir.path()).status.success());
    let path = dir.path().join(file);
    let sql = format!("COPY ({select}) TO '{}' STORED AS PARQUET", path.display());
    let ctx = SessionContext::new();
    ctx.sql(&sql).await.unwrap().collect().await.unwrap();
    let mut args = score_args("out");
    args[2] = file;
    fails_cleanly(dir.path(), &args, needles);
}

const UTC_TS: &str = "arrow_cast('2026-01-01T00:00:00Z', 'Timestamp(Microsecond, Some(\"UTC\"))')";

#[tokio::test]
async fn a_missing_required_column_is_named() {
    bad_events_fail_cleanly(
        "no_action.parquet",
        &format!("select 'L1' as lead_id, {UTC_TS} as ts"),
        &["no_action.parquet", "lacks the required column `action`"],
    )
    .await;
}

#[tokio::test]
async fn a_required_column_of_the_wrong_type_is_named() {
    bad_events_fail_cleanly(
        "text_ts.parquet",
        "select 'L1' as lead_id, '2026-01-01' as ts, 'x' as action",
        &["text_ts.parquet", "column `ts`", "expected a timestamp"],
    )
    .await;
}

#[tokio::test]
async fn leads_with_text_ids_for_integer_events_are_refused() {
    bad_events_fail_cleanly(
        "int_events.parquet",
        &format!("select cast(1 as bigint) as lead_id, {UTC_TS} as ts, 'x' as action"),
        &["leads.csv", "\"L1\" is not an integer"],
    )
    .await;
}

#[tokio::test]
async fn a_lead_listed_twice_is_refused_with_or_without_a_memory_limit() {
    let dir = inputs().await;
    assert!(run(&score_args("out"), dir.path()).status.success());
    std::fs::write(
        dir.path().join("leads.csv"),
        "lead_id,account_id,role\nL1,A1,vp\nL2,A1,analyst\nL9,A2,vp\nL2,A3,cto\n",
    )
    .unwrap();
    let needles = ["leads.csv", "lead_id L2 appears more than once"];
    fails_cleanly(dir.path(), &score_args("out"), &needles);
    let mut limited = score_args("out");
    limited.extend(["--memory-limit", "64MB"]);
    fails_cleanly(dir.path(), &limited, &needles);
}

#[tokio::test]
async fn strict_refuses_rejected_rows_and_publishes_nothing() {
    let dir = inputs().await;
    assert!(run(&score_args("out"), dir.path()).status.success());
    let mut args = score_args("out");
    args.push("--strict");
    fails_cleanly(
        dir.path(),
        &args,
        &["1 row(s) rejected", "fraction outside 0..1", "--strict"],
    );
}

#[tokio::test]
async fn usage_errors_exit_2() {
    let dir = inputs().await;
    let o = run(&["score", "--events", "events.parquet"], dir.path());
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--model, --out"), "{}", stderr(&o));
    let o = run(&["score", "--as-of", "yesterday"], dir.path());
    assert_eq!(o.status.code(), Some(2));
    let o = run(&["frobnicate"], dir.path());
    assert_eq!(o.status.code(), Some(2));
    // A URL of a scheme other than s3:// is refused, not taken as a local directory named
    // `gs:`; so is s3:// where only local paths work, and Delta tables in an object store.
    let o = run(&score_args("gs://bucket/scores"), dir.path());
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("gs:// URLs are not supported: use s3://BUCKET/KEY"),
        "{}",
        stderr(&o)
    );
    assert!(!dir.path().join("gs:").exists());
    let mut args = score_args("out");
    args[2] = "gs://bucket/events";
    let o = run(&args, dir.path());
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--events"), "{}", stderr(&o));
    let o = run(&["serve", "--tables", "s3://bucket/scores"], dir.path());
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("s3:// URLs are not supported here"),
        "{}",
        stderr(&o)
    );
    let mut args = score_args("s3://bucket/scores");
    args.extend(["--format", "delta"]);
    let o = run(&args, dir.path());
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--format delta needs a local --out"),
        "{}",
        stderr(&o)
    );
    assert!(!dir.path().join("out").exists());
    assert!(!dir.path().join("s3:").exists());
}

#[tokio::test]
async fn a_first_run_that_fails_leaves_no_output_directory() {
    let dir = inputs().await;
    std::fs::write(dir.path().join("model.toml"), "name = 1").unwrap();
    let o = run(&score_args("fresh"), dir.path());
    assert_eq!(o.status.code(), Some(1));
    assert!(!dir.path().join("fresh").exists());
}

#[tokio::test]
async fn edited_queries_replace_the_shipped_ones() {
    let dir = inputs().await;
    let queries = dir.path().join("my_queries");
    std::fs::create_dir(&queries).unwrap();
    let shipped = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("queries/stage_report.sql"),
    )
    .unwrap();
    std::fs::write(
        queries.join("stage_report.sql"),
        shipped.replace("as share", "as share, 'edited' as note"),
    )
    .unwrap();
    let mut args = score_args("out");
    args.extend(["--queries", "my_queries"]);
    let o = run(&args, dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let r = rows(&dir.path().join("out/stage_report")).await;
    assert!(r.iter().all(|row| row.ends_with("|edited")), "{r:?}");

    // A broken query is reported by name.
    std::fs::write(queries.join("stage_report.sql"), "select ${nope}").unwrap();
    let o = run(&args, dir.path());
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("query stage_report: unknown template variable ${nope}"),
        "{}",
        stderr(&o)
    );
}

#[tokio::test]
async fn score_with_no_arguments_scores_the_fixtures() {
    let dir = fixtures_dir();
    let o = run(&["score"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("scored as of"), "{}", stderr(&o));
    let leads = rows(&dir.path().join("out/lead_scores")).await;
    assert!(leads.len() > 100, "{}", leads.len());
    let rejects = rows(&dir.path().join("out/rejects")).await;
    assert!(!rejects.is_empty());
    let products = rows(&dir.path().join("out/lead_product_scores")).await;
    assert!(!products.is_empty());

    // Outside a project directory, the bare command explains itself.
    let empty = tempfile::tempdir().unwrap();
    let o = run(&["score"], empty.path());
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("fixtures"), "{}", stderr(&o));
}

fn fixtures_dir() -> tempfile::TempDir {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixtures, &dir.path().join("fixtures"));
    dir
}

#[tokio::test]
async fn each_backfill_snapshot_equals_a_score_run_that_day() {
    let dir = fixtures_dir();
    let inputs = [
        "--events",
        "fixtures/events",
        "--leads",
        "fixtures/leads.csv",
        "--model",
        "fixtures/model.toml",
    ];
    // Weekly from before the first event to after the last one; the model has a fit rule that
    // depends on the cutoff (within_days), so the fit changes between snapshots.
    let mut args = vec!["backfill"];
    args.extend(inputs);
    args.extend([
        "--from",
        "2024-09-01",
        "--to",
        "2026-10-10",
        "--every",
        "week",
        "--out",
        "history",
    ]);
    let o = run(&args, dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("backfilled 110 weekly snapshots (2024-09-01 to 2026-10-04)"),
        "{}",
        stderr(&o)
    );
    let history = dir.path().join("history");
    let days = std::fs::read_dir(history.join("lead_score_history"))
        .unwrap()
        .count();
    assert_eq!(days, 110);
    assert!(history.join("rejects").is_dir());

    let start = chrono::NaiveDate::from_ymd_opt(2024, 9, 1).unwrap();
    let mut checked_fit_change = false;
    for week in [0u64, 30, 61, 95, 108, 109] {
        let day = (start + chrono::Days::new(7 * week)).to_string();
        let out = format!("score-{day}");
        let mut args = vec!["score"];
        args.extend(inputs);
        args.extend(["--as-of", &day, "--out", &out, "--quiet"]);
        let o = run(&args, dir.path());
        assert!(o.status.success(), "{}", stderr(&o));
        let without_day = "select * exclude (as_of) from t";
        for (scored, backfilled) in [
            ("lead_scores", "lead_score_history"),
            ("account_scores", "account_score_history"),
        ] {
            let expected = rows_of(&dir.path().join(&out).join(scored), without_day).await;
            let snapshot = history.join(backfilled).join(format!("as_of={day}"));
            // rows_of sorts: a day's history rows come in no particular order.
            let got = rows_of(&snapshot, "select * from t").await;
            assert!(!expected.is_empty(), "{scored} at {day} is empty");
            assert_eq!(got, expected, "{backfilled} at {day}");
        }
        let fits = rows_of(
            &dir.path().join(&out).join("lead_scores"),
            "select count(distinct fit) from t",
        )
        .await;
        checked_fit_change |= fits != ["1"];
    }
    assert!(checked_fit_change);
}

#[tokio::test]
async fn backfill_refuses_a_range_that_ends_before_it_starts() {
    let dir = inputs().await;
    let o = run(
        &[
            "backfill",
            "--events",
            "events.parquet",
            "--model",
            "model.toml",
            "--from",
            "2026-02-01",
            "--to",
            "2026-01-01",
            "--out",
            "out",
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--from 2026-02-01 is after --to 2026-01-01"));
    assert!(!dir.path().join("out").exists());
}

/// The number after `needle` in `text` (e.g. "peak 113.8 MB" -> 113.8).
fn number_after(text: &str, needle: &str) -> f64 {
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("no {needle:?} in {text}"))
        + needle.len();
    text[at..]
        .split_whitespace()
        .next()
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no number after {needle:?} in {text}"))
}

#[tokio::test]
async fn a_memory_limit_several_times_smaller_than_the_work_gives_the_same_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(
        &[
            "generate", "--leads", "150000", "--events", "3000000", "--seed", "3", "--out", "data",
            "--quiet",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/model.toml");
    let model = model.to_str().unwrap();
    let score = |out: &str, extra: &[&str]| {
        let args = [
            "score",
            "--events",
            "data/events",
            "--leads",
            "data/leads.parquet",
            "--model",
            model,
            "--as-of",
            "2026-09-30",
            "--timings",
            "--out",
            out,
        ];
        succeed(&args, extra, dir.path())
    };
    let free = score("free", &[]);
    let bounded = score("bounded", &["--memory-limit", "32MB", "--threads", "2"]);
    // The unbounded run needs several times the limit; the bounded one stays under it by
    // spilling.
    assert!(
        number_after(&free, "memory pool: peak") > 2.5 * 32.0,
        "{free}"
    );
    assert!(
        number_after(&bounded, "memory pool: peak") <= 32.0,
        "{bounded}"
    );
    assert!(number_after(&bounded, "limit;") > 0.0, "{bounded}");
    for table in [
        "lead_scores",
        "lead_product_scores",
        "account_scores",
        "stage_report",
        "rejects",
    ] {
        let a = rows(&dir.path().join("free").join(table)).await;
        let b = rows(&dir.path().join("bounded").join(table)).await;
        assert!(!a.is_empty(), "{table}");
        assert!(a == b, "{table} differs under the memory limit");
    }
}

#[tokio::test]
async fn a_backfill_of_many_days_under_a_memory_limit_gives_the_same_history() {
    let dir = fixtures_dir();
    // A year of daily snapshots: 600 leads x 365 days of rows, several times the limit.
    let backfill = |out: &str, extra: &[&str]| {
        let args = [
            "backfill",
            "--events",
            "fixtures/events",
            "--leads",
            "fixtures/leads.csv",
            "--model",
            "fixtures/model.toml",
            "--from",
            "2025-10-01",
            "--to",
            "2026-09-30",
            "--timings",
            "--out",
            out,
        ];
        succeed(&args, extra, dir.path())
    };
    let _ = backfill("free", &[]);
    let bounded = backfill("bounded", &["--memory-limit", "8MB", "--threads", "2"]);
    assert!(number_after(&bounded, "limit;") > 0.0, "{bounded}");
    for table in ["lead_score_history", "account_score_history"] {
        let a = rows_of(&dir.path().join("free").join(table), "select * from t").await;
        let b = rows_of(&dir.path().join("bounded").join(table), "select * from t").await;
        assert!(
            a.len() >= 600 * 365 || table != "lead_score_history",
            "{}",
            a.len()
        );
        assert!(a == b, "{table} differs under the memory limit");
    }
}

const FIXTURE_INPUTS: &[&str] = &[
    "--events",
    "fixtures/events",
    "--outcomes",
    "fixtures/outcomes.parquet",
    "--model",
    "fixtures/model.toml",
];

fn weights_args<'a>(out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["weights", "--out", out, "--today", "2026-11-22"];
    args.extend_from_slice(FIXTURE_INPUTS);
    args.extend_from_slice(extra);
    args
}

#[tokio::test]
async fn weights_on_the_fixtures_show_the_signal_and_propose_a_model() {
    let dir = fixtures_dir();
    let o = run(&weights_args("out", &[]), dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let printed = String::from_utf8_lossy(&o.stdout).to_string();
    for needle in [
        "stage",
        "points per action",
        "top rules by lift:",
        "bottom rules by lift:",
    ] {
        assert!(printed.contains(needle), "{needle}: {printed}");
    }
    let out = dir.path().join("out");

    // The generated leads who reach the decision stage convert far more often: the decision
    // actions lift conversion, unsubscribing and career pages lower it.
    let lift = rows_of(
        &out.join("action_lift"),
        "select action, coalesce(assets, ''), cast(round(lift * 100) as bigint) from t",
    )
    .await;
    let lift_of = |action: &str, assets: &str| -> i64 {
        let prefix = format!("{action}|{assets}|");
        lift.iter()
            .find_map(|r| r.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("{prefix} in {lift:?}"))
            .parse()
            .unwrap()
    };
    for action in ["demo_request", "free_trial", "contact_sales"] {
        assert!(lift_of(action, "") > 300, "{action}: {lift:?}");
    }
    assert!(lift_of("page_view", "/pricing*") > 300, "{lift:?}");
    assert!(lift_of("unsubscribe", "") < 100, "{lift:?}");
    assert!(lift_of("page_view", "/careers*") < 100, "{lift:?}");

    // Converted leads go through more awareness than decision actions, and the proposed model
    // gives every staged positive rule the rounded split of the threshold.
    let tallies = rows_of(
        &out.join("stage_tallies"),
        "select stage, converted_leads, avg_tally, points_per_action from t",
    )
    .await;
    assert_eq!(tallies.len(), 3, "{tallies:?}");
    let tally = |stage: &str| -> Vec<String> {
        tallies
            .iter()
            .find(|r| r.starts_with(&format!("{stage}|")))
            .unwrap()
            .split('|')
            .map(String::from)
            .collect()
    };
    let avg = |stage: &str| f64::from_bits(u64::from_str_radix(&tally(stage)[2], 16).unwrap());
    assert!(avg("awareness") > avg("decision"), "{tallies:?}");
    let per_action = f64::from_bits(u64::from_str_radix(&tally("decision")[3], 16).unwrap());
    let total = avg("awareness") + avg("consideration") + avg("decision");
    assert!(
        (per_action - 100.0 / total).abs() < 1e-9,
        "{per_action} vs {total}"
    );

    let proposed = leadscore::model::Model::load(&out.join("proposed_model.toml")).unwrap();
    let original = leadscore::model::Model::load(&dir.path().join("fixtures/model.toml")).unwrap();
    assert_eq!(proposed.version, original.version + 1);
    assert_eq!(proposed.created.unwrap().to_string(), "2026-11-22");
    for (new, old) in proposed.actions.iter().zip(&original.actions) {
        if old.stage.is_some() && old.points > 0.0 {
            assert_eq!(new.points, per_action.round().max(1.0), "{}", new.action);
        } else {
            assert_eq!(new.points, old.points, "{}", new.action);
        }
    }
    assert_eq!(proposed.fits, original.fits);
    assert!(
        proposed.notes.contains("converted leads"),
        "{}",
        proposed.notes
    );

    let trend = rows(&out.join("stage_tally_trend")).await;
    assert!(trend.len() >= 6 && trend.len() % 3 == 0, "{trend:?}");

    // The same command again gives the same rows, bit for bit.
    let before: Vec<_> = ["stage_tallies", "stage_tally_trend", "action_lift"]
        .iter()
        .map(|t| out.join(t))
        .collect();
    let mut first = Vec::new();
    for t in &before {
        first.push(rows(t).await);
    }
    assert!(
        run(&weights_args("out", &["--quiet"]), dir.path())
            .status
            .success()
    );
    for (t, rows_before) in before.iter().zip(first) {
        assert_eq!(rows(t).await, rows_before, "{}", t.display());
    }
}

#[tokio::test]
async fn an_empty_window_writes_empty_averages_and_no_proposed_model() {
    let dir = fixtures_dir();
    succeed(&weights_args("out", &[]), &[], dir.path());
    assert!(dir.path().join("out/proposed_model.toml").exists());
    let err = succeed(
        &weights_args("out", &["--from", "2030-01-01", "--to", "2030-02-01"]),
        &[],
        dir.path(),
    );
    assert!(err.contains("no converted leads"), "{err}");
    // The earlier proposal does not linger beside tables that no longer support it.
    assert!(!dir.path().join("out/proposed_model.toml").exists());
    let tallies = rows_of(
        &dir.path().join("out/stage_tallies"),
        "select stage, converted_leads, avg_tally is null, points_per_action is null from t",
    )
    .await;
    assert_eq!(
        tallies,
        [
            "awareness|0|true|true",
            "consideration|0|true|true",
            "decision|0|true|true"
        ]
    );
}

/// Runs weights on the fixtures once, then again with the outcomes replaced by `file`
/// (written by `write`), expecting a clean failure naming the file.
async fn bad_outcomes_fail_cleanly(name: &str, write: impl FnOnce(&Path), needles: &[&str]) {
    let dir = fixtures_dir();
    succeed(&weights_args("out", &[]), &[], dir.path());
    write(&dir.path().join(name));
    let args: Vec<&str> = weights_args("out", &[])
        .into_iter()
        .map(|a| {
            if a == "fixtures/outcomes.parquet" {
                name
            } else {
                a
            }
        })
        .collect();
    let mut all = needles.to_vec();
    all.push(name);
    fails_cleanly(dir.path(), &args, &all);
}

async fn write_parquet(path: &Path, select: &str) {
    let ctx = SessionContext::new();
    let sql = format!("COPY ({select}) TO '{}' STORED AS PARQUET", path.display());
    ctx.sql(&sql).await.unwrap().collect().await.unwrap();
}

#[tokio::test]
async fn missing_outcomes_fail_cleanly() {
    bad_outcomes_fail_cleanly("nowhere.parquet", |_| {}, &["cannot read"]).await;
}

#[tokio::test]
async fn outcomes_that_are_not_parquet_fail_cleanly() {
    bad_outcomes_fail_cleanly(
        "outcomes.bin",
        |p| std::fs::write(p, b"not parquet at all").unwrap(),
        &[],
    )
    .await;
}

#[tokio::test]
async fn outcomes_without_opportunity_at_fail_cleanly() {
    bad_outcomes_fail_cleanly(
        "outcomes.csv",
        |p| std::fs::write(p, "lead_id,converted_at\nL0000001,2026-03-01\n").unwrap(),
        &["lacks the required column `opportunity_at`"],
    )
    .await;
}

#[tokio::test]
async fn outcomes_with_a_bad_time_fail_cleanly() {
    bad_outcomes_fail_cleanly(
        "outcomes.csv",
        |p| {
            std::fs::write(
                p,
                "lead_id,opportunity_at\nL0000001,2026-03-01T10:00:00Z\nL0000002,\nL0000003,next tuesday\n",
            )
            .unwrap()
        },
        &["opportunity_at \"next tuesday\" is not a time"],
    )
    .await;
}

#[tokio::test]
async fn outcomes_with_a_number_for_a_time_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.parquet");
    write_parquet(
        &path,
        "select 'L0000001' as lead_id, 20260301 as opportunity_at",
    )
    .await;
    let bytes = std::fs::read(&path).unwrap();
    bad_outcomes_fail_cleanly(
        "outcomes-int.parquet",
        move |p| std::fs::write(p, bytes).unwrap(),
        &["`opportunity_at` has type Int64; expected a timestamp"],
    )
    .await;
}

#[tokio::test]
async fn csv_outcomes_with_blank_times_and_several_rows_per_lead_work() {
    let dir = fixtures_dir();
    let parquet = dir.path().join("out-parquet");
    succeed(&weights_args("out-parquet", &[]), &[], dir.path());
    // The same outcomes as CSV, with each opportunity twice (a later copy) and blank rows.
    let csv = dir.path().join("outcomes.csv");
    let ctx = SessionContext::new();
    ctx.register_parquet(
        "o",
        dir.path()
            .join("fixtures/outcomes.parquet")
            .to_str()
            .unwrap(),
        ParquetReadOptions::default(),
    )
    .await
    .unwrap();
    let batches = ctx
        .sql("select lead_id, opportunity_at from o")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let mut text = String::from("lead_id,opportunity_at\n");
    for b in &batches {
        for r in 0..b.num_rows() {
            let id =
                datafusion::arrow::util::display::array_value_to_string(b.column(0), r).unwrap();
            let at =
                datafusion::arrow::util::display::array_value_to_string(b.column(1), r).unwrap();
            text.push_str(&format!("{id},{at}\n{id},\n"));
            if !at.is_empty() {
                text.push_str(&format!("{id},2099-01-01T00:00:00Z\n"));
            }
        }
    }
    std::fs::write(&csv, text).unwrap();
    let args: Vec<&str> = weights_args("out-csv", &[])
        .into_iter()
        .map(|a| {
            if a == "fixtures/outcomes.parquet" {
                "outcomes.csv"
            } else {
                a
            }
        })
        .collect();
    succeed(&args, &[], dir.path());
    for table in ["stage_tallies", "stage_tally_trend", "action_lift"] {
        assert_eq!(
            rows(&dir.path().join("out-csv").join(table)).await,
            rows(&parquet.join(table)).await,
            "{table}"
        );
    }
}

#[tokio::test]
async fn review_compares_model_versions_side_by_side() {
    let dir = fixtures_dir();
    succeed(&weights_args("w", &[]), &[], dir.path());
    let args = [
        "review",
        "--events",
        "fixtures/events",
        "--leads",
        "fixtures/leads.csv",
        "--outcomes",
        "fixtures/outcomes.parquet",
        "--model",
        "fixtures/model.toml",
        "--model",
        "w/proposed_model.toml",
        "--from",
        "2026-01-01",
        "--today",
        "2026-11-22",
        "--out",
        "out",
    ];
    let o = run(&args, dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let printed = String::from_utf8_lossy(&o.stdout).to_string();
    let lines: Vec<&str> = printed.lines().collect();
    assert!(lines[0].starts_with("window: [2026-01-01, "), "{printed}");
    assert!(
        lines[1].starts_with("metric")
            && lines[1].contains("b2b v3")
            && lines[1].contains("b2b v4"),
        "{printed}"
    );
    for metric in [
        "created",
        "MQLs",
        "MQL -> opportunity",
        "opportunity coverage",
        "median days to opportunity",
        "next review",
        "notes",
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(metric)),
            "{metric}: {printed}"
        );
    }
    let review = rows_of(
        &dir.path().join("out/model_review"),
        "select name, version, created, mqls > 0, mql_to_opportunity between 0 and 1, \
         opportunity_coverage between 0 and 1, median_days_to_opportunity > 0, next_review \
         from t",
    )
    .await;
    assert_eq!(
        review,
        [
            "b2b|3|2026-09-01|true|true|true|true|2027-01-29",
            "b2b|4|2026-11-22|true|true|true|true|2027-01-21",
        ]
    );

    // Without --model, review is a usage error; a second model that does not load stops it.
    let no_model: Vec<&str> = args[..7].iter().chain(&["--out", "out"]).copied().collect();
    let o = run(&no_model, dir.path());
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--model"), "{}", stderr(&o));
    std::fs::write(
        dir.path().join("broken.toml"),
        "name = \"x\"\nversion = \"one\"\n",
    )
    .unwrap();
    let mut broken = args.to_vec();
    broken[10] = "broken.toml";
    fails_cleanly(dir.path(), &broken, &["broken.toml"]);
}

#[tokio::test]
async fn weights_refuse_a_window_that_ends_before_it_starts() {
    let dir = fixtures_dir();
    let o = run(
        &weights_args("out", &["--from", "2026-05-01", "--to", "2026-04-01"]),
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--from 2026-05-01 must be before --to 2026-04-01"));
    assert!(!dir.path().join("out").exists());
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

#[tokio::test]
async fn query_prints_writes_and_refuses_changes() {
    let dir = inputs().await;
    let d = dir.path();
    succeed(&score_args("out"), &[], d);
    let o = run(
        &[
            "query",
            "--tables",
            "out",
            "select lead_id, score, glob_match(lead_id, 'L*') as g from lead_scores order by lead_id",
        ],
        d,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let printed = stdout(&o);
    assert!(
        printed.contains("| lead_id |") && printed.contains("| L9      |"),
        "{printed}"
    );
    assert!(stderr(&o).contains("3 row(s)"), "{}", stderr(&o));

    // An empty result still shows its columns.
    let o = run(
        &[
            "query",
            "--tables",
            "out",
            "select stage from stage_report where false",
        ],
        d,
    );
    assert!(stdout(&o).contains("| stage |"), "{}", stdout(&o));

    for file in ["q.csv", "q.parquet"] {
        let o = run(
            &[
                "query",
                "--tables",
                "out",
                "select lead_id, score from lead_scores",
                "--out",
                file,
            ],
            d,
        );
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(
            stderr(&o).contains(&format!("wrote 3 row(s) to {file}")),
            "{}",
            stderr(&o)
        );
    }
    assert_eq!(
        std::fs::read_to_string(d.join("q.csv"))
            .unwrap()
            .lines()
            .count(),
        4
    );
    let written = SessionContext::new()
        .read_parquet(
            d.join("q.parquet").to_str().unwrap(),
            ParquetReadOptions::default(),
        )
        .await
        .unwrap()
        .count()
        .await
        .unwrap();
    assert_eq!(written, 3);

    // Nothing can be changed, and a bad request says why.
    for sql in [
        "create table x as select 1",
        "insert into lead_scores select * from lead_scores",
        "copy (select 1) to 'leak.csv'",
        "drop table lead_scores",
    ] {
        fails_cleanly(d, &["query", "--tables", "out", sql], &["read-only"]);
    }
    assert!(!d.join("leak.csv").exists());
    // (The engine's message lists the valid columns on a second line.)
    let o = run(
        &["query", "--tables", "out", "select nope from lead_scores"],
        d,
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).starts_with("leadscore: SQL: ") && stderr(&o).contains("nope"));
    fails_cleanly(
        d,
        &["query", "--tables", "nowhere", "select 1"],
        &["nowhere", "not a directory"],
    );
    let o = run(
        &["query", "--tables", "out", "select 1", "--out", "x.json"],
        d,
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[tokio::test]
async fn delta_output_adds_versions_and_parquet_does_not_overwrite_it() {
    let dir = inputs().await;
    let d = dir.path();
    succeed(&score_args("out"), &["--format", "delta"], d);
    let log = d.join("out/lead_scores/_delta_log");
    assert!(log.join("00000000000000000000.json").exists());
    succeed(
        &score_args("out"),
        &["--format", "delta", "--as-of", "2026-01-05"],
        d,
    );
    assert!(log.join("00000000000000000001.json").exists());
    // The latest version is what `query` reads.
    let o = run(
        &[
            "query",
            "--tables",
            "out",
            "select distinct as_of from lead_scores",
        ],
        d,
    );
    assert!(stdout(&o).contains("2026-01-05"), "{}", stdout(&o));
    // Writing Parquet over a Delta table would throw its history away: refused.
    fails_cleanly(
        d,
        &score_args("out"),
        &["is a Delta table", "--format delta"],
    );
    let o = run(&[score_args("out"), vec!["--format", "csv"]].concat(), d);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[tokio::test]
async fn report_and_serve_refuse_what_they_cannot_do() {
    let dir = inputs().await;
    let d = dir.path();
    succeed(&score_args("out"), &[], d);
    std::fs::create_dir_all(d.join("empty")).unwrap();
    let o = run(&["report", "--tables", "empty", "--out", "r.html"], d);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("no tables"), "{}", stderr(&o));
    assert!(!d.join("r.html").exists());

    let o = run(&["report", "--tables", "out", "--out", "r.html"], d);
    assert!(o.status.success(), "{}", stderr(&o));
    let html = std::fs::read_to_string(d.join("r.html")).unwrap();
    assert!(html.contains("lowest MQL score") || !html.contains("MQL threshold"));
    assert!(html.contains("<h2>Leads per stage</h2>"), "{html}");

    // No token, no server (unless asked for explicitly).
    let o = run(&["serve", "--tables", "out"], d);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--token"), "{}", stderr(&o));
}
