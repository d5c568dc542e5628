//! The scoring kernel alone: the decay fold over one lead's sorted events, the `lead_fold`
//! aggregate over many leads through DataFusion, and the judging of raw rows before the fold
//! (in SQL and then `lead_fold`, against `fold_events`), on synthetic in-memory data (no I/O).
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
    // Raw rows for the judging benches: a few actions and assets, values for the fraction rule
    // and the NPS answers (some out of range).
    let kinds = [
        ("page_view", "/pricing/team"),
        ("page_view", "/blog/post"),
        ("page_view", "/careers"),
        ("email_open", "nl-weekly"),
        ("video_play", "intro"),
        ("nps_response", "survey"),
        ("download", "wp-roi"),
    ];
    let kind: Vec<usize> = (0..rows)
        .map(|_| (lcg(&mut s) % kinds.len() as u64) as usize)
        .collect();
    let value: Vec<f64> = (0..rows)
        .map(|_| (lcg(&mut s) % 1100) as f64 / 100.0)
        .collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("lead_id", DataType::Int64, false),
        Field::new("ts_us", DataType::Int64, false),
        Field::new("points", DataType::Float64, false),
        Field::new("product", DataType::Utf8, true),
        Field::new("action", DataType::Utf8, false),
        Field::new("asset", DataType::Utf8, false),
        Field::new("value", DataType::Float64, false),
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
                    Arc::new(StringArray::from_iter_values(
                        kind[start..end].iter().map(|&k| kinds[k].0),
                    )),
                    Arc::new(StringArray::from_iter_values(
                        kind[start..end].iter().map(|&k| kinds[k].1),
                    )),
                    Arc::new(Float64Array::from(value[start..end].to_vec())),
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

    // Judging: rules matched, fractions and answers checked, points and stages taken, then
    // folded at one snapshot. In SQL (what judged_events.sql does) and then `lead_fold`, or
    // inside the fold by `fold_events` (what lead_activity.sql does).
    let rules = [
        ("page_view", Some("/pricing*"), 15.0, false, Some(3)),
        ("page_view", Some("/careers*"), -10.0, false, None),
        ("page_view", None, 1.0, false, Some(1)),
        ("email_open", None, 1.0, false, Some(1)),
        ("video_play", None, 10.0, true, Some(2)),
        ("download", Some("wp-*"), 8.0, false, Some(2)),
    ];
    let json = |scored: bool| {
        let items: Vec<String> = rules
            .iter()
            .map(|(action, asset, points, fraction, stage)| {
                let assets = asset.map_or("null".to_string(), |a| format!("[\"{a}\"]"));
                let mut item = format!("{{\"action\":\"{action}\",\"assets\":{assets}");
                if scored {
                    let stage = stage.map_or("null".to_string(), |s: i32| s.to_string());
                    item += &format!(
                        ",\"points\":{points},\"fraction\":{fraction},\"stage_rank\":{stage}"
                    );
                }
                item + "}"
            })
            .collect();
        format!("'[{}]'", items.join(","))
    };
    let table: Vec<String> = rules
        .iter()
        .enumerate()
        .map(|(i, (_, _, points, fraction, stage))| {
            let stage = stage.map_or("null".to_string(), |s| s.to_string());
            format!(
                "({}, {points:?}, {fraction}, cast({stage} as bigint))",
                i + 1
            )
        })
        .collect();
    let one_spec = spec("2025-08-01", "2025-08-01", 1);
    let ts = "arrow_cast(ts_us, 'Timestamp(Microsecond, Some(\"UTC\"))')";
    let in_sql = format!(
        "select lead_id, lead_fold(ts, case when r.is_fraction then r.points * value else r.points end, \
         case when m.rule is not null then product end, r.stage_rank, \
         case when action = 'nps_response' then value end, 0, {one_spec}) as f \
         from (select *, {ts} as ts, match_rule(action, asset, {patterns}) as rule from ev) m \
         left join (values {table}) as r(rule_id, points, is_fraction, stage_rank) on r.rule_id = m.rule \
         where not coalesce(r.is_fraction and (value < 0 or value > 1), false) \
           and not (action = 'nps_response' and (value < 0 or value > 10)) \
         group by lead_id",
        patterns = json(false),
        table = table.join(", "),
    );
    let in_fold = format!(
        "select lead_id, fold_events({ts}, action, asset, product, value, 0, {scored}, {one_spec}) as f \
         from ev group by lead_id",
        scored = json(true),
    );
    // Both give the same snapshots, lead for lead.
    let differing = format!(
        "select count(*) as n from ({in_sql}) a join ({in_fold}) b using (lead_id) \
         where a.f <> b.f"
    );
    let batches =
        runtime.block_on(async { ctx.sql(&differing).await.unwrap().collect().await.unwrap() });
    let n = batches[0]
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap()
        .value(0);
    assert_eq!(
        n, 0,
        "judging in SQL and in fold_events disagree on {n} leads"
    );
    let mut g = c.benchmark_group("judging");
    g.sample_size(10);
    g.throughput(Throughput::Elements(rows as u64));
    for (name, sql) in [
        ("in SQL, then lead_fold", &in_sql),
        ("in fold_events", &in_fold),
    ] {
        g.bench_function(
            format!("1M raw events, 50k leads, 2 partitions, {name}"),
            |b| {
                b.iter(|| {
                    runtime.block_on(async { ctx.sql(sql).await.unwrap().collect().await.unwrap() })
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, kernel, aggregate);
criterion_main!(benches);
