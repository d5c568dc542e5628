//! The scoring kernel alone: the decay fold over one lead's sorted events, and the `lead_fold`
//! aggregate over many leads through DataFusion, on synthetic in-memory data (no I/O).
//!
//! `cargo bench --bench fold`

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use datafusion::arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use leadscore::context::{EngineOptions, session};
use leadscore::fold::{Crossing, Decay, DecayKind, fold_sorted};

const DAY: i64 = 86_400_000_000;

fn lcg(state: &mut u64) -> u64 {
    *state = state
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *state >> 33
}

fn kernel(c: &mut Criterion) {
    let n = 1000;
    let mut s = 7u64;
    let mut ts: Vec<i64> = (0..n).map(|_| (lcg(&mut s) % 700) as i64 * DAY).collect();
    ts.sort_unstable();
    let points: Vec<f64> = (0..n).map(|_| (lcg(&mut s) % 30) as f64 - 5.0).collect();
    let exponential = Decay {
        kind: DecayKind::Exponential {
            half_life_days: 90.0,
        },
        grace_days: 3.0,
    };
    let linear = Decay {
        kind: DecayKind::Linear {
            points: 5.0,
            period_days: 30.0,
        },
        grace_days: 0.0,
    };
    let mut g = c.benchmark_group("fold_sorted");
    g.throughput(Throughput::Elements(n as u64));
    for (name, decay) in [
        ("exponential", exponential),
        ("linear", linear),
        ("none", Decay::NONE),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                fold_sorted(
                    black_box(&ts),
                    black_box(&points),
                    &decay,
                    25.0,
                    701 * DAY,
                    Some(Crossing {
                        fit: 10.0,
                        threshold: 100.0,
                    }),
                )
            })
        });
    }
    g.finish();
}

fn aggregate(c: &mut Criterion) {
    let rows = 1_000_000usize;
    let leads = 50_000u64;
    let mut s = 11u64;
    let lead: Vec<i64> = (0..rows).map(|_| (lcg(&mut s) % leads) as i64).collect();
    let ts: Vec<i64> = (0..rows)
        .map(|_| 1_700_000_000_000_000 + (lcg(&mut s) % 600) as i64 * DAY)
        .collect();
    let points: Vec<f64> = (0..rows).map(|_| (lcg(&mut s) % 20) as f64).collect();
    let products = ["crm", "ads", "analytics"];
    let product: Vec<Option<&str>> = (0..rows)
        .map(|_| match lcg(&mut s) % 4 {
            3 => None,
            k => Some(products[k as usize]),
        })
        .collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("lead_id", DataType::Int64, false),
        Field::new("ts_us", DataType::Int64, false),
        Field::new("points", DataType::Float64, false),
        Field::new("product", DataType::Utf8, true),
    ]));
    let batches: Vec<RecordBatch> = (0..rows)
        .step_by(65_536)
        .map(|start| {
            let end = (start + 65_536).min(rows);
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(Int64Array::from(lead[start..end].to_vec())),
                    Arc::new(Int64Array::from(ts[start..end].to_vec())),
                    Arc::new(Float64Array::from(points[start..end].to_vec())),
                    Arc::new(StringArray::from(product[start..end].to_vec())),
                ],
            )
            .unwrap()
        })
        .collect();
    let partitions: Vec<Vec<RecordBatch>> = batches
        .chunks(batches.len().div_ceil(2))
        .map(|c| c.to_vec())
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let ctx = session(&EngineOptions {
        threads: 2,
        ..EngineOptions::default()
    })
    .unwrap();
    ctx.register_table(
        "ev",
        Arc::new(MemTable::try_new(schema, partitions).unwrap()),
    )
    .unwrap();
    let spec = |from: &str, to: &str, every: u32| {
        format!(
            "'{{\"threshold\":100,\"floor\":25,\"decay\":{{\"kind\":\"exponential\",\"half_life_days\":90,\"grace_days\":3}},\
             \"from\":\"{from}\",\"to\":\"{to}\",\"every_days\":{every},\"stages\":3,\"products\":true}}'"
        )
    };
    let query = |spec: String| {
        format!(
            "select lead_id, lead_fold(arrow_cast(ts_us, 'Timestamp(Microsecond, Some(\"UTC\"))'), points, product, \
             cast(lead_id % 4 as bigint), null, 0, {spec}) as f from ev group by lead_id"
        )
    };
    // One snapshot (what `score` does), and 52 weekly ones over the last year (`backfill`).
    let one = query(spec("2025-08-01", "2025-08-01", 1));
    let weekly = query(spec("2024-08-04", "2025-08-01", 7));
    let mut g = c.benchmark_group("lead_fold");
    g.sample_size(10);
    g.throughput(Throughput::Elements(rows as u64));
    for (name, sql) in [("1 snapshot", &one), ("52 weekly snapshots", &weekly)] {
        g.bench_function(format!("1M events, 50k leads, 2 partitions, {name}"), |b| {
            b.iter(|| {
                runtime.block_on(async { ctx.sql(sql).await.unwrap().collect().await.unwrap() })
            })
        });
    }
    g.finish();
}

criterion_group!(benches, kernel, aggregate);
criterion_main!(benches);
