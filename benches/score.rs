//! `score` and `backfill` end to end on generated data: reading Parquet, de-duplicating, judging,
//! the fold, the joins and writing every table, with the fixtures' model. The backfill bench runs
//! 52 weekly snapshots (the year up to the score's day), to compare with one `score`.
//!
//! `cargo bench --bench score` generates 1M events for 50k leads (seed 7) into
//! `target/bench-data/` the first time; set `LEADSCORE_BENCH_EVENTS` to change the size (the data
//! directory is named after it) and `LEADSCORE_BENCH_THREADS` to pin the parallelism (default 2).

use std::path::{Path, PathBuf};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use leadscore::backfill::{BackfillOptions, Every, backfill};
use leadscore::context::EngineOptions;
use leadscore::generate::{GenerateOptions, generate};
use leadscore::score::{ScoreOptions, score};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn data(events: u64) -> PathBuf {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("target/bench-data/events-{events}"));
    if !dir.join("leads.parquet").exists() {
        let _ = std::fs::remove_dir_all(&dir);
        generate(&GenerateOptions {
            leads: (events / 20).max(10),
            events,
            seed: 7,
            out: dir.clone(),
            ..GenerateOptions::default()
        })
        .expect("generate bench data");
    }
    dir
}

fn bench_score(c: &mut Criterion) {
    let events = env_or("LEADSCORE_BENCH_EVENTS", 1_000_000);
    let threads = env_or("LEADSCORE_BENCH_THREADS", 2) as usize;
    let dir = data(events);
    let out = tempfile::tempdir().expect("tempdir");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let opts = ScoreOptions {
        events: dir.join("events"),
        leads: Some(dir.join("leads.parquet")),
        model: Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/model.toml"),
        as_of: chrono::NaiveDate::from_ymd_opt(2026, 9, 30),
        out: out.path().join("out"),
        queries: None,
        engine: EngineOptions {
            threads,
            ..EngineOptions::default()
        },
        strict: false,
    };
    let mut g = c.benchmark_group("score");
    g.sample_size(10);
    g.throughput(Throughput::Elements(events));
    g.bench_function(format!("{events} events, {threads} threads"), |b| {
        b.iter(|| runtime.block_on(score(&opts)).expect("score"))
    });
    g.finish();

    let history = BackfillOptions {
        events: opts.events.clone(),
        leads: opts.leads.clone(),
        model: opts.model.clone(),
        from: chrono::NaiveDate::from_ymd_opt(2025, 10, 5).expect("date"),
        to: chrono::NaiveDate::from_ymd_opt(2026, 9, 30).expect("date"),
        every: Every::Week,
        out: out.path().join("history"),
        queries: None,
        engine: opts.engine.clone(),
        strict: false,
    };
    let mut g = c.benchmark_group("backfill");
    g.sample_size(10);
    g.throughput(Throughput::Elements(events));
    g.bench_function(
        format!("{events} events, 52 weekly snapshots, {threads} threads"),
        |b| b.iter(|| runtime.block_on(backfill(&history)).expect("backfill")),
    );
    g.finish();
}

criterion_group!(benches, bench_score);
criterion_main!(benches);
