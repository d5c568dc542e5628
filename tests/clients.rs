//! leadscore's outputs read by clients nobody here wrote, end to end against the real binary:
//! Delta tables by the `deltalake` Python package, the Flight SQL server by the ADBC Flight SQL
//! driver, and the HTML report by headless Chromium.
//!
//! These need a Python with `deltalake`, `pyarrow` and `adbc-driver-flightsql`, and Chromium:
//! `.ci/setup` installs them (a virtual environment in `target/ci-venv`, Debian's `chromium`).
//! `LEADSCORE_TEST_PYTHON` and `LEADSCORE_TEST_CHROMIUM` point elsewhere.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use datafusion::prelude::*;

mod common;
use common::copy_dir;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_leadscore"))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn python() -> PathBuf {
    let p = std::env::var_os("LEADSCORE_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/ci-venv/bin/python"));
    assert!(
        p.exists(),
        "{} not found: run .ci/setup (it installs deltalake, pyarrow and adbc-driver-flightsql \
         in target/ci-venv), or set LEADSCORE_TEST_PYTHON",
        p.display()
    );
    p
}

fn chromium() -> PathBuf {
    let p = std::env::var_os("LEADSCORE_TEST_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("chromium"));
    let found = Command::new(&p).arg("--version").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "{} does not run: run .ci/setup (it installs Debian's chromium), or set \
         LEADSCORE_TEST_CHROMIUM",
        p.display()
    );
    p
}

fn check(o: Output, what: &str) -> String {
    assert!(
        o.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn leadscore(args: &[&str], dir: &Path) -> String {
    check(
        bin().args(args).current_dir(dir).output().unwrap(),
        &format!("leadscore {}", args.join(" ")),
    )
}

const FIXTURES: &[&str] = &[
    "--events",
    "fixtures/events",
    "--leads",
    "fixtures/leads.csv",
    "--model",
    "fixtures/model.toml",
];

fn with<'a>(cmd: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![cmd];
    v.extend_from_slice(FIXTURES);
    v.extend_from_slice(extra);
    v
}

/// A temporary directory holding a copy of `fixtures/`.
fn workdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&root().join("fixtures"), &dir.path().join("fixtures"));
    dir
}

/// The rows of `select` over `path` (a Parquet file or directory, as `t`), sorted, as text;
/// floats by their bits.
async fn rows(path: &Path, select: &str) -> Vec<String> {
    rows_with(path, select, ParquetReadOptions::default()).await
}

async fn rows_with(path: &Path, select: &str, options: ParquetReadOptions<'_>) -> Vec<String> {
    let ctx = SessionContext::new();
    let mut url = path.display().to_string();
    if path.is_dir() {
        url.push('/');
    }
    ctx.register_parquet("t", &url, options).await.unwrap();
    let batches = ctx.sql(select).await.unwrap().collect().await.unwrap();
    common::text_rows(&batches)
}

/// What the Python reader saw of a Delta table: (its JSON summary, the Parquet copy).
fn read_delta(table: &Path, version: Option<u64>, scratch: &Path) -> (serde_json::Value, PathBuf) {
    let copy = scratch.join(format!(
        "{}-{}.parquet",
        table.file_name().unwrap().to_string_lossy(),
        version.map_or("latest".to_string(), |v| v.to_string())
    ));
    let mut cmd = Command::new(python());
    cmd.arg(root().join("tests/clients/delta_read.py"))
        .arg(table)
        .arg(&copy);
    if let Some(v) = version {
        cmd.arg(v.to_string());
    }
    let out = check(cmd.output().unwrap(), "delta_read.py");
    (serde_json::from_str(out.trim()).unwrap(), copy)
}

#[tokio::test]
async fn delta_tables_are_read_back_by_the_deltalake_package() {
    let dir = workdir();
    let d = dir.path();
    leadscore(&with("score", &["--out", "parquet", "--quiet"]), d);
    leadscore(
        &with("score", &["--out", "delta", "--format", "delta", "--quiet"]),
        d,
    );
    let scratch = tempfile::tempdir().unwrap();
    for table in [
        "lead_scores",
        "lead_product_scores",
        "account_scores",
        "stage_report",
        "rejects",
    ] {
        let (info, copy) = read_delta(&d.join("delta").join(table), None, scratch.path());
        assert_eq!(info["version"], 0, "{table}: {info}");
        let select = "select * from t";
        assert_eq!(
            rows(&copy, select).await,
            rows(&d.join("parquet").join(table), select).await,
            "{table}"
        );
    }

    // A rerun (another day) is a new version; time travel still gives the first run's rows.
    leadscore(
        &with(
            "score",
            &[
                "--out",
                "delta",
                "--format",
                "delta",
                "--as-of",
                "2026-06-30",
                "--quiet",
            ],
        ),
        d,
    );
    let table = d.join("delta/lead_scores");
    let (latest, copy) = read_delta(&table, None, scratch.path());
    assert_eq!(latest["version"], 1);
    assert_eq!(
        rows(&copy, "select distinct cast(as_of as varchar) from t").await,
        ["2026-06-30"]
    );
    let (first, copy) = read_delta(&table, Some(0), scratch.path());
    assert_eq!(first["version"], 0);
    assert_eq!(
        rows(&copy, "select * from t").await,
        rows(&d.join("parquet/lead_scores"), "select * from t").await
    );

    // A backfill's history is partitioned by as_of, the same rows as the Parquet history.
    let range = [
        "--from",
        "2026-08-02",
        "--to",
        "2026-09-27",
        "--every",
        "week",
        "--quiet",
    ];
    let mut args = with("backfill", &range);
    args.extend(["--out", "parquet"]);
    leadscore(&args, d);
    args.extend(["--format", "delta"]);
    *args.iter_mut().find(|a| **a == "parquet").unwrap() = "delta";
    leadscore(&args, d);
    let (info, copy) = read_delta(&d.join("delta/lead_score_history"), None, scratch.path());
    assert_eq!(info["partitions"], serde_json::json!(["as_of"]), "{info}");
    assert_eq!(info["columns"][0], "as_of", "{info}");
    let per_day = "select cast(as_of as varchar) as day, lead_id, account_id, engagement, fit, \
                   score, is_mql, mql_at, stage, tally_decision, last_activity, is_cold, nps, \
                   nps_class, model_version from t";
    let delta_days = rows(&copy, per_day).await;
    assert_eq!(delta_days.len(), 9 * 600);
    // The Parquet history keeps as_of in its directory names.
    let by_day = ParquetReadOptions::default().table_partition_cols(vec![(
        "as_of".to_string(),
        datafusion::arrow::datatypes::DataType::Date32,
    )]);
    let parquet_days = rows_with(&d.join("parquet/lead_score_history"), per_day, by_day).await;
    assert_eq!(delta_days, parquet_days);
}

/// A running `leadscore serve`, stopped when dropped.
struct Server {
    child: Child,
    uri: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `leadscore serve` on a free loopback port, with `auth` (`--token T` or `--insecure`).
fn start_server(tables: &Path, auth: &[&str]) -> Server {
    let mut child = bin()
        .args(["serve", "--tables"])
        .arg(tables)
        .args(["--addr", "127.0.0.1:0"])
        .args(auth)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut line = String::new();
    BufReader::new(stderr).read_line(&mut line).unwrap();
    let uri = line
        .split_whitespace()
        .find(|w| w.starts_with("grpc://"))
        .unwrap_or_else(|| panic!("no address in: {line}"))
        .trim_end_matches(',')
        .to_string();
    Server { child, uri }
}

#[tokio::test]
async fn the_flight_sql_server_answers_the_adbc_driver() {
    let dir = workdir();
    let d = dir.path();
    leadscore(&with("score", &["--out", "out", "--quiet"]), d);
    let server = start_server(&d.join("out"), &["--token", "s3cret-token"]);
    let out = check(
        Command::new(python())
            .arg(root().join("tests/clients/flight_sql_check.py"))
            .arg(&server.uri)
            .arg("s3cret-token")
            .output()
            .unwrap(),
        "flight_sql_check.py",
    );
    let seen: serde_json::Value = serde_json::from_str(out.trim()).unwrap();

    // The same rows as the files hold.
    let expected = rows(
        &d.join("out/lead_scores"),
        "select count(*), count(*) filter (where is_mql), min(lead_id) from t",
    )
    .await;
    let parts: Vec<&str> = expected[0].split('|').collect();
    assert_eq!(seen["rows"].to_string(), parts[0], "{seen}");
    assert_eq!(seen["mqls"].to_string(), parts[1], "{seen}");
    assert_eq!(seen["first"][0], parts[2], "{seen}");
    assert_eq!(
        seen["columns"],
        serde_json::json!(["lead_id", "score", "is_mql"])
    );
    assert_eq!(seen["udf"], true);
    assert_eq!(seen["vendor"], "leadscore");
    assert_eq!(
        seen["tables"],
        serde_json::json!([
            "account_scores",
            "lead_product_scores",
            "lead_scores",
            "rejects",
            "stage_report"
        ])
    );
    assert_eq!(seen["table_schema"][1], "lead_id");

    // Writes are refused with a clear message, and change nothing.
    for what in ["create", "insert", "copy", "drop", "set", "ingest"] {
        let e = seen["errors"][what].as_str().unwrap_or_default();
        assert!(e.contains("read-only"), "{what}: {e}");
    }
    assert!(
        seen["errors"]["file"]
            .as_str()
            .is_some_and(|e| e.contains("not found")),
        "{seen}"
    );
    assert_eq!(seen["after_errors_rows"], seen["rows"]);

    // Basic auth (the driver's handshake, unpadded base64) works; wrong tokens do not.
    assert_eq!(seen["basic_rows"], seen["rows"]);
    for what in ["wrong_token", "wrong_password", "no_token"] {
        let e = seen[what].as_str().unwrap_or_default();
        assert!(e.contains("UNAUTHENTICATED"), "{what}: {e}");
    }
    drop(server);

    // With --insecure, and only then, a client without any token is served.
    let open = start_server(&d.join("out"), &["--insecure"]);
    let script = "import sys, adbc_driver_flightsql.dbapi as f\n\
                  c = f.connect(sys.argv[1]).cursor()\n\
                  c.execute('select count(*) from lead_scores')\n\
                  print(c.fetchone()[0])";
    let n = check(
        Command::new(python())
            .args(["-c", script, &open.uri])
            .output()
            .unwrap(),
        "an insecure client",
    );
    assert_eq!(n.trim(), parts[0]);
}

#[tokio::test]
async fn the_report_renders_in_headless_chromium() {
    let dir = workdir();
    let d = dir.path();
    leadscore(&with("score", &["--out", "out", "--quiet"]), d);
    leadscore(
        &with(
            "backfill",
            &[
                "--from",
                "2026-01-04",
                "--to",
                "2026-09-27",
                "--every",
                "week",
                "--out",
                "out",
                "--quiet",
            ],
        ),
        d,
    );
    leadscore(
        &[
            "report",
            "--tables",
            "out",
            "--model",
            "fixtures/model.toml",
            "--out",
            "report.html",
            "--quiet",
        ],
        d,
    );
    let html = std::fs::read_to_string(d.join("report.html")).unwrap();
    // Self-contained: nothing fetched from anywhere.
    for needle in ["<script", "src=\"http", "href=\"http", "@import", "url("] {
        assert!(!html.contains(needle), "{needle} in the report");
    }

    let page = format!("file://{}", d.join("report.html").display());
    let dom = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
            "--dump-dom",
            &page,
        ])
        .output()
        .unwrap();
    let logs = String::from_utf8_lossy(&dom.stderr).to_string();
    let dom = check(dom, "chromium --dump-dom");
    for heading in [
        "Score distribution",
        "Leads per stage",
        "MQLs and cold leads over time",
        "Top accounts",
        "Product interest",
        "Leads (top 20 by score)",
    ] {
        assert!(
            dom.contains(&format!("<h2>{heading}</h2>")),
            "{heading} missing"
        );
    }
    // Every chart made it into the page as SVG with marks in it.
    assert_eq!(dom.matches("<svg").count(), 5, "five charts");
    assert!(dom.contains("MQL threshold 100"));
    assert!(dom.matches("<rect").count() > 20 && dom.contains("<polyline"));
    for bad in [
        "CONSOLE",
        "Uncaught",
        "This page contains the following errors",
    ] {
        assert!(!logs.contains(bad) && !dom.contains(bad), "{bad}: {logs}");
    }

    // And it paints: a screenshot of the page is not blank.
    let shot = d.join("report.png");
    let o = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=900,1600",
        ])
        .arg(format!("--screenshot={}", shot.display()))
        .arg(&page)
        .output()
        .unwrap();
    check(o, "chromium --screenshot");
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 30_000,
        "{} bytes",
        png.len()
    );
}
