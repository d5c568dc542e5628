//! The scoring commands on Apache DataFusion Ballista give the same rows as on one machine:
//! an in-process standalone cluster through the library, and a real one on loopback (a
//! scheduler and two executors, each its own `leadscore` process) through the binary.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use datafusion::prelude::*;

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

fn spawn(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_leadscore"))
        .args(args)
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
    let o = Command::new(env!("CARGO_BIN_EXE_leadscore"))
        .args(args)
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
    let scheduler = free_port_pair();
    let s = format!("127.0.0.1:{scheduler}");
    let mut procs = Processes(vec![spawn(&["scheduler", "--bind", &s])]);
    wait_for(scheduler);
    for _ in 0..2 {
        let port = free_port_pair();
        let bind = format!("127.0.0.1:{port}");
        procs.0.push(spawn(&[
            "executor",
            "--scheduler",
            &s,
            "--bind",
            &bind,
            "--slots",
            "1",
        ]));
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
    let weeks = [
        "--from",
        "2026-07-05",
        "--to",
        "2026-09-27",
        "--every",
        "week",
    ];
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

// Losing an executor mid-run: Ballista runs the lost tasks again on the executor left (the
// scheduler notices within its --executor-timeout, 30 s) and the history equals the local run's;
// or the run fails with a message and --out keeps what it held before. Either is accepted; a
// run that neither finishes nor fails within two minutes is not.
#[tokio::test]
async fn losing_an_executor_mid_run_reruns_its_tasks_or_fails_keeping_the_output() {
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
