//! The scoring commands on Apache DataFusion Ballista give the same rows as on one machine:
//! an in-process standalone cluster through the library, and a real one on loopback (a
//! scheduler and two executors, each its own `leadscore` process) through the binary.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use datafusion::prelude::*;
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt};

mod common;
use leadscore::cluster::Cluster;
use leadscore::context::EngineOptions;
use leadscore::score::{ScoreOptions, score};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every published table under `out` as sorted text rows (floats by their bits).
async fn tables(out: &Path, names: &[&str]) -> Vec<(String, Vec<String>)> {
    let mut all = Vec::new();
    for name in names {
        let ctx = SessionContext::new();
        ctx.register_parquet(
            "t",
            &format!("{}/", out.join(name).display()),
            ParquetReadOptions::default(),
        )
        .await
        .unwrap();
        let batches = ctx
            .sql("select * from t")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let rows = common::text_rows(&batches);
        all.push((name.to_string(), rows));
    }
    all
}

/// `backfill` flags for 13 weekly snapshots of the fixtures.
const THIRTEEN_WEEKS: [&str; 6] = [
    "--from",
    "2026-07-05",
    "--to",
    "2026-09-27",
    "--every",
    "week",
];

const SCORE_TABLES: &[&str] = &[
    "lead_scores",
    "lead_product_scores",
    "account_scores",
    "stage_report",
    "rejects",
];

fn options(out: &Path, cluster: Option<Cluster>) -> ScoreOptions {
    let f = root().join("fixtures");
    ScoreOptions {
        events: f.join("events"),
        leads: Some(f.join("leads.csv")),
        model: f.join("model.toml"),
        as_of: None,
        out: out.to_path_buf(),
        queries: None,
        engine: EngineOptions {
            threads: 2,
            cluster,
            ..EngineOptions::default()
        },
        strict: false,
    }
}

#[test]
fn a_standalone_cluster_gives_the_local_rows() {
    // Deep plans need bigger stacks than the test harness's threads have.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_stack_size(32 << 20)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    runtime.block_on(async {
        let local = score(&options(&dir.path().join("local"), None))
            .await
            .unwrap();
        let on_cluster = score(&options(
            &dir.path().join("cluster"),
            Some(Cluster::Standalone),
        ))
        .await
        .unwrap();
        assert_eq!(local.leads, on_cluster.leads);
        assert_eq!(local.mqls, on_cluster.mqls);
        assert_eq!(
            tables(&dir.path().join("cluster"), SCORE_TABLES).await,
            tables(&dir.path().join("local"), SCORE_TABLES).await
        );
    });
}

/// The `lead_score_history` of two outputs: (rows of the first, rows in one but not the other,
/// duplicates counted).
async fn history_difference(a: &Path, b: &Path) -> (usize, usize) {
    let ctx = SessionContext::new();
    for (name, out) in [("a", a), ("b", b)] {
        ctx.register_parquet(
            name,
            &format!("{}/", out.join("lead_score_history").display()),
            ParquetReadOptions::default().table_partition_cols(vec![(
                "as_of".into(),
                datafusion::arrow::datatypes::DataType::Date32,
            )]),
        )
        .await
        .unwrap();
    }
    let count = |sql: &'static str| {
        let ctx = ctx.clone();
        async move { ctx.sql(sql).await.unwrap().count().await.unwrap() }
    };
    let rows = count("select * from a").await;
    let differ = count(
        "(select * from a except all select * from b) \
         union all (select * from b except all select * from a)",
    )
    .await;
    (rows, differ)
}

/// A free loopback port whose next port is free too (an executor uses both).
fn free_port_pair() -> u16 {
    loop {
        let a = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = a.local_addr().unwrap().port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
}

/// The cluster processes, killed when dropped.
struct Processes(Vec<Child>);

impl Drop for Processes {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn spawn_with(args: &[&str], env: &[(&str, String)]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_leadscore"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn wait_for(port: u16) {
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("nothing listens on {port}");
}

fn leadscore(args: &[&str], dir: &Path) {
    leadscore_with(args, dir, &[]);
}

fn leadscore_with(args: &[&str], dir: &Path, env: &[(&str, String)]) {
    let o = Command::new(env!("CARGO_BIN_EXE_leadscore"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "leadscore {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A scheduler and two one-slot executors on free loopback ports; returns them and the
/// scheduler's address.
fn start_cluster() -> (Processes, String) {
    start_cluster_with(&[])
}

/// [`start_cluster`] with extra environment variables for every process.
fn start_cluster_with(env: &[(&str, String)]) -> (Processes, String) {
    let scheduler = free_port_pair();
    let s = format!("127.0.0.1:{scheduler}");
    let mut procs = Processes(vec![spawn_with(&["scheduler", "--bind", &s], env)]);
    wait_for(scheduler);
    for _ in 0..2 {
        let port = free_port_pair();
        let bind = format!("127.0.0.1:{port}");
        procs.0.push(spawn_with(
            &[
                "executor",
                "--scheduler",
                &s,
                "--bind",
                &bind,
                "--slots",
                "1",
            ],
            env,
        ));
        wait_for(port);
    }
    (procs, s)
}

#[tokio::test]
async fn a_scheduler_and_two_executors_give_the_local_rows() {
    let (procs, s) = start_cluster();
    let cluster = format!("df://{s}");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fixtures = root().join("fixtures");
    let f = |p: &str| fixtures.join(p).display().to_string();
    let (events, leads, model) = (f("events"), f("leads.csv"), f("model.toml"));
    let inputs = [
        "--events", &events, "--leads", &leads, "--model", &model, "--quiet",
    ];
    let run = |cmd: &str, out: &str, extra: &[&str]| {
        let mut args = vec![cmd];
        args.extend_from_slice(&inputs);
        args.extend_from_slice(&["--out", out]);
        args.extend_from_slice(extra);
        leadscore(&args, d);
    };
    run("score", "local", &[]);
    run("score", "cluster", &["--cluster", &cluster]);
    assert_eq!(
        tables(&d.join("cluster"), SCORE_TABLES).await,
        tables(&d.join("local"), SCORE_TABLES).await
    );
    let weeks = THIRTEEN_WEEKS;
    run("backfill", "local-history", &weeks);
    let mut on_cluster = weeks.to_vec();
    on_cluster.extend_from_slice(&["--cluster", &cluster]);
    run("backfill", "cluster-history", &on_cluster);
    let history = ["rejects"];
    assert_eq!(
        tables(&d.join("cluster-history"), &history).await,
        tables(&d.join("local-history"), &history).await
    );
    let (_, differ) =
        history_difference(&d.join("local-history"), &d.join("cluster-history")).await;
    assert_eq!(differ, 0, "history rows differ");

    // weights and review too.
    let outcomes = f("outcomes.parquet");
    let second = d.join("v4.toml");
    for (out, extra) in [("local-w", None), ("cluster-w", Some(cluster.as_str()))] {
        let mut args = vec![
            "weights",
            "--events",
            &events,
            "--outcomes",
            &outcomes,
            "--model",
            &model,
            "--today",
            "2026-11-22",
            "--quiet",
            "--out",
            out,
        ];
        if let Some(c) = extra {
            args.extend(["--cluster", c]);
        }
        leadscore(&args, d);
    }
    let weights = ["stage_tallies", "stage_tally_trend", "action_lift"];
    assert_eq!(
        tables(&d.join("cluster-w"), &weights).await,
        tables(&d.join("local-w"), &weights).await
    );
    std::fs::copy(d.join("local-w/proposed_model.toml"), &second).unwrap();
    let second = second.display().to_string();
    for (out, extra) in [("local-r", None), ("cluster-r", Some(cluster.as_str()))] {
        let mut args = vec![
            "review",
            "--events",
            &events,
            "--leads",
            &leads,
            "--outcomes",
            &outcomes,
            "--model",
            &model,
            "--model",
            &second,
            "--today",
            "2026-11-22",
            "--quiet",
            "--out",
            out,
        ];
        if let Some(c) = extra {
            args.extend(["--cluster", c]);
        }
        leadscore(&args, d);
    }
    assert_eq!(
        tables(&d.join("cluster-r"), &["model_review"]).await,
        tables(&d.join("local-r"), &["model_review"]).await
    );
    drop(procs);
}

// Losing an executor mid-run: the scheduler (noticing within its --executor-timeout, 30 s)
// cancels the running job, and the run fails with a message, --out keeping what it held before;
// or, when the loss falls between two jobs, the run finishes on the executor left and the
// history equals the local run's. Either is accepted; a run that neither finishes nor fails
// within two minutes is not, and nor is a finished run with other numbers.
#[tokio::test]
async fn losing_an_executor_mid_run_fails_keeping_the_output_or_finishes_on_the_rest() {
    let (mut procs, s) = start_cluster();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let fixtures = root().join("fixtures");
    let f = |p: &str| fixtures.join(p).display().to_string();
    let (events, leads, model) = (f("events"), f("leads.csv"), f("model.toml"));
    let cluster = format!("df://{s}");
    let args = |out: &str, cluster: Option<&str>| -> Vec<String> {
        let mut a: Vec<String> = [
            "backfill",
            "--events",
            &events,
            "--leads",
            &leads,
            "--model",
            &model,
            "--from",
            "2025-10-01",
            "--to",
            "2026-09-30",
            "--quiet",
            "--out",
            out,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if let Some(c) = cluster {
            a.extend(["--cluster".to_string(), c.to_string()]);
        }
        a
    };
    let local: Vec<String> = args("local", None);
    let local: Vec<&str> = local.iter().map(String::as_str).collect();
    leadscore(&local, &d);
    // The cluster run's --out starts with a previous run's tables.
    common::copy_dir(&d.join("local"), &d.join("cluster"));
    let before = common::snapshot(&d.join("cluster"));

    // A year of daily snapshots on the cluster; one executor is killed two seconds in.
    let mut client = Command::new(env!("CARGO_BIN_EXE_leadscore"))
        .args(args("cluster", Some(&cluster)))
        .current_dir(&d)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    let mut victim = procs.0.remove(1);
    victim.kill().unwrap();
    victim.wait().unwrap();
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = client.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > std::time::Duration::from_secs(120) {
            let _ = client.kill();
            panic!("the run neither finished nor failed within 2 minutes of losing an executor");
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(client.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    eprintln!(
        "after losing an executor the run {} in {:.1} s",
        if status.success() {
            "finished"
        } else {
            "failed"
        },
        started.elapsed().as_secs_f64()
    );
    if status.success() {
        // The tasks of the lost executor ran again elsewhere: the same history as a local run.
        let (rows, differ) = history_difference(&d.join("local"), &d.join("cluster")).await;
        assert_eq!(rows, 219_000);
        assert_eq!(differ, 0, "history rows differ");
    } else {
        assert_eq!(status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("cluster"), "no clear message: {stderr}");
        assert_eq!(
            common::snapshot(&d.join("cluster")),
            before,
            "--out changed"
        );
    }
    drop(procs);
}

/// A local S3 (moto's server, installed by `.ci/setup`), killed when dropped.
struct S3 {
    _server: Processes,
    endpoint: String,
    store: Arc<dyn ObjectStore>,
}

impl S3 {
    /// Starts the server on a free port with bucket `lake`.
    fn start() -> S3 {
        let moto = std::env::var_os("LEADSCORE_TEST_MOTO")
            .map(PathBuf::from)
            .unwrap_or_else(|| root().join("target/ci-venv/bin/moto_server"));
        assert!(
            moto.exists(),
            "{} not found: run .ci/setup (it installs moto's S3 server in target/ci-venv), or \
             set LEADSCORE_TEST_MOTO",
            moto.display()
        );
        let port = free_port_pair();
        let server = Command::new(&moto)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = Processes(vec![server]);
        wait_for(port);
        // Create the bucket with a bare request: the server does not check signatures.
        let mut http = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(
            http,
            "PUT /lake HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut reply = String::new();
        http.read_to_string(&mut reply).unwrap();
        assert!(
            reply.starts_with("HTTP/1.1 200"),
            "creating the bucket: {reply}"
        );
        let endpoint = format!("http://127.0.0.1:{port}");
        let store = AmazonS3Builder::new()
            .with_bucket_name("lake")
            .with_endpoint(&endpoint)
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_access_key_id("test")
            .with_secret_access_key("test")
            .build()
            .unwrap();
        S3 {
            _server: server,
            endpoint,
            store: Arc::new(store),
        }
    }

    /// The environment a leadscore process needs to reach the bucket.
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ]
    }

    /// Uploads local file or directory `from` to key `to`.
    async fn upload(&self, from: &Path, to: &str) {
        if from.is_file() {
            let bytes = std::fs::read(from).unwrap();
            self.store.put(&Key::from(to), bytes.into()).await.unwrap();
            return;
        }
        for entry in std::fs::read_dir(from).unwrap() {
            let p = entry.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            Box::pin(self.upload(&p, &format!("{to}/{name}"))).await;
        }
    }

    /// Every object under `prefix`, by key relative to it.
    async fn objects(&self, prefix: &str) -> BTreeMap<String, Vec<u8>> {
        let prefix = Key::from(prefix);
        let listed: Vec<_> = self.store.list(Some(&prefix)).try_collect().await.unwrap();
        let mut all = BTreeMap::new();
        for meta in listed {
            let bytes = self.store.get(&meta.location).await.unwrap().bytes().await;
            let rel: Vec<String> = meta
                .location
                .prefix_match(&prefix)
                .unwrap()
                .map(|p| p.as_ref().to_string())
                .collect();
            all.insert(rel.join("/"), bytes.unwrap().to_vec());
        }
        all
    }

    /// Downloads everything under `prefix` into local directory `to`.
    async fn download(&self, prefix: &str, to: &Path) {
        for (rel, bytes) in self.objects(prefix).await {
            let path = to.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, bytes).unwrap();
        }
    }
}

// Inputs and --out in an object store (a local S3), on one machine and on the loopback cluster
// (whose processes get the bucket's credentials from their environment): the same tables as a
// local run; a run over an earlier output replaces it and leaves no staging objects; a failed
// run leaves the output as it was.
#[tokio::test]
async fn an_s3_bucket_holds_the_inputs_and_the_output() {
    let s3 = S3::start();
    let env = s3.env();
    let fixtures = root().join("fixtures");
    s3.upload(&fixtures.join("events"), "in/events").await;
    s3.upload(&fixtures.join("leads.csv"), "in/leads.csv").await;
    let (procs, s) = start_cluster_with(&env);
    let cluster = format!("df://{s}");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = fixtures.join("model.toml").display().to_string();
    let run = |cmd: &str, events: &str, leads: &str, out: &str, extra: &[&str]| {
        let mut args = vec![
            cmd, "--events", events, "--leads", leads, "--model", &model, "--out", out, "--quiet",
        ];
        args.extend_from_slice(extra);
        leadscore_with(&args, d, &env);
    };
    let (events, leads) = (
        fixtures.join("events").display().to_string(),
        fixtures.join("leads.csv").display().to_string(),
    );
    let (s3_events, s3_leads) = ("s3://lake/in/events", "s3://lake/in/leads.csv");
    run("score", &events, &leads, "local", &[]);
    let local = tables(&d.join("local"), SCORE_TABLES).await;

    run("score", s3_events, s3_leads, "s3://lake/out", &[]);
    s3.download("out", &d.join("from-s3")).await;
    assert_eq!(tables(&d.join("from-s3"), SCORE_TABLES).await, local);
    let first = s3.objects("out").await;

    // On the cluster, over the same --out: replaced by the same files, nothing left behind.
    run(
        "score",
        s3_events,
        s3_leads,
        "s3://lake/out",
        &["--cluster", &cluster],
    );
    let second = s3.objects("out").await;
    assert_eq!(
        second.keys().collect::<Vec<_>>(),
        first.keys().collect::<Vec<_>>()
    );
    assert_eq!(
        second, first,
        "the cluster's tables differ from the local engine's"
    );

    // A history (one directory per day) from the cluster.
    let weeks = THIRTEEN_WEEKS;
    run("backfill", &events, &leads, "local-history", &weeks);
    let mut on_cluster = weeks.to_vec();
    on_cluster.extend_from_slice(&["--cluster", &cluster]);
    run(
        "backfill",
        s3_events,
        s3_leads,
        "s3://lake/history",
        &on_cluster,
    );
    s3.download("history", &d.join("history-from-s3")).await;
    let (rows, differ) =
        history_difference(&d.join("local-history"), &d.join("history-from-s3")).await;
    assert!(rows > 0);
    assert_eq!(differ, 0, "history rows differ");

    // A run that fails (--strict with rejected rows) leaves the output and nothing else.
    let o = Command::new(env!("CARGO_BIN_EXE_leadscore"))
        .args([
            "score",
            "--events",
            s3_events,
            "--leads",
            s3_leads,
            "--model",
            &model,
            "--out",
            "s3://lake/out",
            "--strict",
            "--quiet",
        ])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("rejected"));
    assert_eq!(s3.objects("out").await, first);
    drop(procs);
}
