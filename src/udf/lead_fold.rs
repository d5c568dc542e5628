//! `lead_fold(ts, points, product, stage_rank, nps, fit, spec)`: everything docs/scoring.md asks from "Decay" to "Net Promoter answers"
//! of one lead, at one or many snapshot days, in one ordered pass over its events.
//!
//! Every row of a group (a lead) is one good event or the lead's row of the leads table:
//! - an event row has its time `ts`; `points` its points when it matched a rule and null when it
//!   did not; `product` its product line; `stage_rank` the position (from 1) of its rule's stage,
//!   or null; `nps` its answer when it is an `nps_response`, else null; `fit` null.
//! - a leads-table row has a null `ts` and its `fit`: either a number (the fit score on every day)
//!   or the list of the fit rules the lead matches, each a struct `{from, to, points}` counted at
//!   the cutoffs `C` with `from <= C <= to` (null bounds: unbounded). A `within_days = N` rule on
//!   a time `t` holds when `C <= t <= C + N days`, that is from `t - N days` to `t`. The fit at a
//!   cutoff is the sum of the points of the rules that hold then, in list order.
//!
//! `spec` is a constant JSON text (`${fold}` in the queries):
//!
//! ```json
//! {"threshold": 100, "floor": 25, "decay": {"kind": "exponential", "half_life_days": 90},
//!  "from": "2026-01-04", "to": "2026-12-27", "every_days": 7, "stages": 3, "products": true}
//! ```
//!
//! Snapshot days are `from`, `from + every_days`, … up to `to`; each snapshot's cutoff is the
//! start of the next day. The result is a list with one struct per snapshot at which the lead has
//! a leads-table row or an event (matched or not) before the cutoff, in day order:
//! `as_of`, `cutoff`, `engagement` (the fold decayed to the cutoff, never below `floor`), `fit`,
//! `mql_at` (the first matched event right after which `fit + S >= threshold`, for that
//! snapshot's fit; null if none before the cutoff), `stage_rank` (the furthest stage with a
//! matched event), `tallies` (matched events per stage, in stage order), `matched`, `unmatched`,
//! `last_activity`, `last_positive_at` (latest matched event with positive points), `nps` (latest
//! answer; ties: the larger) and, when `products` is true, `products` with `product_scores` (the
//! same fold per product, floor 0, sorted by name).
//!
//! ```sql
//! select lead_id, unnest(lead_fold(ts, points, product, stage_rank, null, null,
//!          '{"threshold":100,"floor":0,"decay":{"kind":"none"},"from":"2026-01-31",
//!            "to":"2026-01-31","stages":1,"products":true}')) as s
//! from matched_events group by lead_id;
//! -- s['engagement'], s['mql_at'], s['tallies'], ...
//! ```
//!
//! Why one aggregate that sorts for itself: DataFusion does not hand an aggregate its rows in
//! order, and a window function would not spill. A grouped aggregate spills, and this one keeps
//! 24 bytes per event in chunked buckets. At the end it buckets the events by group (a counting
//! sort), sorts each lead's events by `(ts, points)` — a no-op check when they arrive in order —
//! and walks them once, emitting each snapshot as the walk passes its cutoff: the cost grows with
//! events + leads × snapshots. Sorting ties by points makes float sums depend on the set of events
//! only, so reruns agree bit for bit, and a snapshot's numbers are those of a run at that day.
//! Taking the fit rules rather than a fit per day keeps a lead's input one row, whatever the
//! number of snapshots; the crossing is tracked for each distinct fit the lead has over them.

use std::mem::size_of;
use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, BooleanBuilder, Date32Array, Float64Array,
    Float64Builder, Int32Array, Int64Array, Int64Builder, ListArray, ListBuilder, StringBuilder,
    StringViewArray, StructArray, TimestampMicrosecondArray,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{
    DataType, Field, FieldRef, Fields, Float64Type, Int64Type, TimeUnit, TimestampMicrosecondType,
};
use datafusion::common::{DataFusionError, HashMap, Result, ScalarValue, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, EmitTo, GroupsAccumulator, Signature, Volatility,
};
use serde::{Deserialize, Serialize};

use super::fold_events::Judge;
use super::match_rule::match_all;
use super::{Rows, coerce_number, coerce_text, literal_arg, literal_text, passes};
use crate::fold::{Decay, Folder, Snapshots, epoch_days};

pub(crate) const NAME: &str = "lead_fold";
pub(crate) const NO_PRODUCT: u32 = u32::MAX;
const PARAMS_ARG: usize = 6;

/// The timestamp type of event times and of `mql_at`.
pub fn utc_micros() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// The constant parameters of `lead_fold`, as its JSON argument.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FoldSpec {
    /// The sales-ready score.
    pub threshold: f64,
    /// `floor × threshold`: decay never takes the engagement below it.
    pub floor: f64,
    pub decay: Decay,
    /// The first snapshot day, `YYYY-MM-DD`.
    pub from: String,
    /// The last snapshot day, `YYYY-MM-DD`.
    pub to: String,
    #[serde(default = "one_day")]
    pub every_days: u32,
    /// How many stages the model declares.
    #[serde(default)]
    pub stages: usize,
    /// Whether to compute the per-product folds.
    #[serde(default)]
    pub products: bool,
    /// `fold_events` with lead ids: each group is a bucket of the leads whose ids agree but for
    /// these low bits (0: each group is one lead; see `lead_buckets`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub lead_bits: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn one_day() -> u32 {
    1
}

impl FoldSpec {
    /// The spec for `snapshots` with the model's numbers.
    pub fn new(
        threshold: f64,
        floor: f64,
        decay: Decay,
        snapshots: &Snapshots,
        stages: usize,
        products: bool,
    ) -> Self {
        FoldSpec {
            threshold,
            floor,
            decay,
            from: snapshots.from.to_string(),
            to: snapshots.to.to_string(),
            every_days: snapshots.every_days,
            stages,
            products,
            lead_bits: 0,
        }
    }

    /// The JSON form used inside SQL.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a fold spec always serializes")
    }

    pub(crate) fn parse(text: &str) -> std::result::Result<Params, String> {
        let spec: FoldSpec =
            serde_json::from_str(text).map_err(|e| format!("bad spec {text:?}: {e}"))?;
        spec.decay.validate()?;
        let day = |s: &str| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map_err(|e| format!("bad day {s:?} in spec: {e}"))
        };
        let snapshots = Snapshots {
            from: day(&spec.from)?,
            to: day(&spec.to)?,
            every_days: spec.every_days,
        };
        if snapshots.from > snapshots.to || spec.every_days == 0 {
            return Err(format!("no snapshot days in spec {text:?}"));
        }
        let days = snapshots.days();
        Ok(Params {
            threshold: spec.threshold,
            floor: spec.floor,
            decay: spec.decay,
            as_of: days.iter().map(|d| epoch_days(*d)).collect(),
            cutoffs: snapshots.cutoffs(),
            stages: spec.stages,
            products: spec.products,
            lead_bits: spec.lead_bits,
        })
    }
}

/// The parsed constant arguments.
#[derive(Clone, Debug)]
pub(crate) struct Params {
    threshold: f64,
    floor: f64,
    decay: Decay,
    /// Snapshot days (Date32) and their cutoffs (µs), ascending.
    as_of: Vec<i32>,
    cutoffs: Vec<i64>,
    stages: usize,
    products: bool,
    pub(crate) lead_bits: u32,
}

impl Params {
    /// The spec of `function`, its argument `index`.
    pub(crate) fn from_args(
        args: &AccumulatorArgs,
        index: usize,
        function: &str,
    ) -> Result<Params> {
        let text = literal_text(
            &literal_arg(args.exprs, index, function, "spec")?,
            function,
            "spec",
        )?;
        FoldSpec::parse(&text).map_err(|e| DataFusionError::Plan(format!("{function}: {e}")))
    }

    /// These parameters, checked for a fold whose every group is one lead.
    pub(crate) fn one_lead_per_group(self, function: &str) -> Result<Params> {
        if self.lead_bits > 0 {
            return plan_err!(
                "{function}: lead_bits > 0 needs the lead_id and account_id arguments of \
                 fold_events"
            );
        }
        Ok(self)
    }

    /// The last snapshot's cutoff: events at or after it count in no snapshot.
    pub(crate) fn last_cutoff(&self) -> i64 {
        self.cutoffs.last().copied().unwrap_or(i64::MIN)
    }

    /// The stage code of a rule's stage rank: the rank when it names a declared stage, else 0.
    pub(crate) fn stage_code(&self, rank: i64) -> u16 {
        if rank >= 1 && (rank as usize) <= self.stages {
            rank as u16
        } else {
            0
        }
    }

    /// How many stages the model declares.
    pub(crate) fn stages(&self) -> usize {
        self.stages
    }
}

/// Why a row is rejected (docs/scoring.md, "Reading the input", item 3): the first of these that applies. The
/// same texts, in the same order, are `judged_events.sql`'s `reason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Reason {
    NullLead,
    NullTs,
    NullAction,
    Fraction,
    Nps,
}

impl Reason {
    pub(crate) fn text(self) -> &'static str {
        match self {
            Reason::NullLead => "null lead_id",
            Reason::NullTs => "null ts",
            Reason::NullAction => "null action",
            Reason::Fraction => "fraction outside 0..1",
            Reason::Nps => "nps answer outside 0..10",
        }
    }
}

/// What a raw event row is once judged.
pub(crate) enum Judged {
    /// A good event before the last cutoff, and its answer if it is an `nps_response`.
    Event(Event, Option<f64>),
    /// A good event at or after the last cutoff: in no snapshot.
    Later,
    Rejected(Reason),
}

/// Row `i` of `args`, a raw event row with a lead id, judged as docs/scoring.md ("Reading the input", item 3,
/// "Matching", "Points") says: rejected for a null `ts` or `action`, a fraction rule's value
/// outside 0..1 (null included), or an `nps_response` answer outside 0..10 (see [`within`] for
/// NaN and -0.0), in that order; otherwise its event (the first matching rule's points, times
/// `value` for a fraction rule, and stage; no points when no rule matches; no product yet;
/// marked when the row is a dropped copy) and, for an `nps_response`, its answer.
pub(crate) fn judge_raw_row(params: &Params, judge: &Judge, args: &RawArgs, i: usize) -> Judged {
    if args.ts.is_null(i) {
        return Judged::Rejected(Reason::NullTs);
    }
    if args.action.is_null(i) {
        return Judged::Rejected(Reason::NullAction);
    }
    let value = args.value.is_valid(i).then(|| args.value.value(i));
    let rule = args
        .rule
        .is_valid(i)
        .then(|| &judge.rules[args.rule.value(i) as usize - 1]);
    let points = match rule {
        Some(r) if r.fraction => match value {
            Some(v) if within(v, 1.0) => Some(r.points * v),
            _ => return Judged::Rejected(Reason::Fraction),
        },
        Some(r) => Some(r.points),
        None => None,
    };
    let is_nps = is_nps_response(&args.action, i);
    if is_nps && !value.is_some_and(|v| within(v, 10.0)) {
        return Judged::Rejected(Reason::Nps);
    }
    let ts = args.ts.value(i);
    if ts >= params.last_cutoff() {
        return Judged::Later;
    }
    let stage = rule.map_or(0, |r| params.stage_code(r.stage_rank.unwrap_or(0)));
    let dropped = args.dropped.is_some_and(|d| d.is_valid(i) && d.value(i));
    let event = Event::new(ts, points, NO_PRODUCT, stage).marked(dropped);
    Judged::Event(event, value.filter(|_| is_nps))
}

fn list_of(t: DataType) -> DataType {
    DataType::List(Arc::new(Field::new_list_field(t, true)))
}

fn rule_fields(time: DataType) -> Fields {
    Fields::from(vec![
        Field::new("from", time.clone(), true),
        Field::new("to", time, true),
        Field::new("points", DataType::Float64, true),
    ])
}

/// The type of the `fit` argument when it lists rules: `{from, to, points}` structs.
pub fn fit_rules_type() -> DataType {
    list_of(DataType::Struct(rule_fields(utc_micros())))
}

pub(crate) fn snapshot_fields() -> Fields {
    Fields::from(vec![
        Field::new("as_of", DataType::Date32, false),
        Field::new("cutoff", utc_micros(), false),
        Field::new("engagement", DataType::Float64, false),
        Field::new("fit", DataType::Float64, false),
        Field::new("mql_at", utc_micros(), true),
        Field::new("stage_rank", DataType::Int64, true),
        Field::new("tallies", list_of(DataType::Int64), false),
        Field::new("matched", DataType::Int64, false),
        Field::new("unmatched", DataType::Int64, false),
        Field::new("last_activity", utc_micros(), true),
        Field::new("last_positive_at", utc_micros(), true),
        Field::new("nps", DataType::Float64, true),
        Field::new("products", list_of(DataType::Utf8), false),
        Field::new("product_scores", list_of(DataType::Float64), false),
    ])
}

pub(crate) fn result_type() -> DataType {
    list_of(DataType::Struct(snapshot_fields()))
}

/// The `lead_fold` SQL aggregate.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct LeadFoldFunc {
    signature: Signature,
}

impl Default for LeadFoldFunc {
    fn default() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

/// `lead_fold` as a registrable function.
pub fn lead_fold_udaf() -> AggregateUDF {
    AggregateUDF::from(LeadFoldFunc::default())
}

impl AggregateUDFImpl for LeadFoldFunc {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if arg_types.len() != 7 {
            return plan_err!(
                "lead_fold(ts, points, product, stage_rank, nps, fit, spec) takes 7 arguments"
            );
        }
        let stage = match &arg_types[3] {
            t if t.is_integer() || *t == DataType::Null => DataType::Int64,
            other => return plan_err!("lead_fold: stage_rank must be an integer, got {other}"),
        };
        Ok(vec![
            coerce_ts(NAME, &arg_types[0])?,
            coerce_number(NAME, &arg_types[1])?,
            coerce_text(NAME, &arg_types[2])?,
            stage,
            coerce_number(NAME, &arg_types[4])?,
            coerce_fit(NAME, &arg_types[5])?,
            coerce_text(NAME, &arg_types[6])?,
        ])
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(result_type())
    }

    fn is_nullable(&self) -> bool {
        false
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(state_fields(args.name))
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(LeadFoldAccumulator {
            inner: LeadFoldGroups::new(
                Params::from_args(&args, PARAMS_ARG, NAME)?.one_lead_per_group(NAME)?,
            ),
        }))
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(LeadFoldGroups::new(
            Params::from_args(&args, PARAMS_ARG, NAME)?.one_lead_per_group(NAME)?,
        )))
    }
}

/// The `ts` argument: any timestamp, read as UTC microseconds.
pub(crate) fn coerce_ts(function: &str, t: &DataType) -> Result<DataType> {
    match t {
        DataType::Timestamp(_, _) | DataType::Null => Ok(utc_micros()),
        other => plan_err!("{function}: ts must be a timestamp, got {other}"),
    }
}

/// The `fit` argument: a number, or a list of `{from, to, points}` rules.
pub(crate) fn coerce_fit(function: &str, t: &DataType) -> Result<DataType> {
    match t {
        DataType::List(f) | DataType::LargeList(f)
            if matches!(f.data_type(), DataType::Struct(fields)
                if fields.iter().map(|f| f.name().as_str()).eq(["from", "to", "points"])) =>
        {
            Ok(fit_rules_type())
        }
        other => coerce_number(function, other).map_err(|_| {
            DataFusionError::Plan(format!(
                "{function}: fit must be a number or a list of {{from, to, points}} structs, \
                 got {other}"
            ))
        }),
    }
}

/// The partial state of an aggregate named `name` that folds events: each group's judged events,
/// answers and fit rules, as lists, and which events and answers are dropped copies (see
/// `fold_events`).
pub(crate) fn state_fields(name: &str) -> Vec<FieldRef> {
    let list = |suffix: &str, t: DataType| {
        Arc::new(Field::new(format!("{name}[{suffix}]"), list_of(t), true))
    };
    vec![
        list("ts", DataType::Int64),
        list("points", DataType::Float64),
        list("product", DataType::Utf8),
        list("stage", DataType::Int64),
        list("nps_ts", DataType::Int64),
        list("nps", DataType::Float64),
        list("fit", DataType::Struct(rule_fields(DataType::Int64))),
        list("dropped", DataType::Boolean),
        list("nps_dropped", DataType::Boolean),
    ]
}

/// Groups per bucket of [`Events`]: a bucket's events, sorted by group at the end, fit in the
/// processor's cache.
const SLOT_BITS: u32 = 12;
const SLOTS: usize = 1 << SLOT_BITS;

/// Events in a bucket's first chunk; each next chunk doubles, [`CHUNK_DOUBLINGS`] times (up to
/// 16,384 events, 384 KB).
const FIRST_CHUNK: usize = 64;
const CHUNK_DOUBLINGS: usize = 8;

/// Matched and unmatched events, by group.
///
/// Each event is stored with its group's low bits (in its `tag`) in the bucket of its group's
/// high bits, so grouping the events at the end is a sort by slot within each bucket (in cache),
/// not a gather of every lead's events from all over the memory (a cache miss per event, which
/// cost more than the rest of the fold). A bucket is a list of chunks, each allocated at its full
/// size and never moved: a vector grown by doubling copied each bucket's events again and again
/// into fresh memory.
#[derive(Clone, Debug, Default)]
struct Events {
    buckets: Vec<Vec<Vec<Event>>>,
    len: usize,
    /// Events the buckets have room for, kept up to date for `size`.
    capacity: usize,
    /// Whether any event may be a dropped copy ([`DROPPED`]), so that emitting cancels them.
    dropped: bool,
}

impl Events {
    fn push(&mut self, group: usize, mut e: Event) {
        let b = group >> SLOT_BITS;
        if b >= self.buckets.len() {
            self.buckets.resize_with(b + 1, Vec::new);
        }
        e.tag = (e.tag & (MATCHED | DROPPED)) | (group & (SLOTS - 1)) as u16;
        self.dropped |= e.dropped();
        let chunks = &mut self.buckets[b];
        match chunks.last_mut() {
            Some(chunk) if chunk.len() < chunk.capacity() => chunk.push(e),
            _ => {
                // The first chunks of a bucket are small, for the many buckets of little data.
                let size = FIRST_CHUNK << chunks.len().min(CHUNK_DOUBLINGS);
                let mut chunk = Vec::with_capacity(size);
                chunk.push(e);
                self.capacity += chunk.capacity();
                chunks.push(chunk);
            }
        }
        self.len += 1;
    }

    fn len(&self) -> usize {
        self.len
    }

    fn bytes(&self) -> usize {
        let chunks: usize = self.buckets.iter().map(Vec::capacity).sum();
        (self.buckets.capacity() + chunks) * size_of::<Vec<Event>>()
            + self.capacity * size_of::<Event>()
    }

    /// Removes and returns the events of groups `0..n`; the others' groups shift down by `n`.
    fn split_first(&mut self, n: usize) -> Self {
        let old = std::mem::take(self);
        let mut taken = Events::default();
        if n.is_multiple_of(SLOTS) {
            (taken.dropped, self.dropped) = (old.dropped, old.dropped);
            // Whole buckets move, each group keeping its slot.
            let mut buckets = old.buckets;
            let rest = buckets.split_off((n / SLOTS).min(buckets.len()));
            for (to, buckets) in [(&mut taken, buckets), (&mut *self, rest)] {
                let chunks = || buckets.iter().flatten();
                to.len = chunks().map(Vec::len).sum();
                to.capacity = chunks().map(Vec::capacity).sum();
                to.buckets = buckets;
            }
            return taken;
        }
        for (b, bucket) in old.buckets.into_iter().enumerate() {
            for e in bucket.into_iter().flatten() {
                let g = (b << SLOT_BITS) | e.slot();
                if g < n {
                    taken.push(g, e);
                } else {
                    self.push(g - n, e);
                }
            }
        }
        taken
    }

    /// Calls `f` with every group of `0..groups` in order and its events in arrival order
    /// (empty for a group without any); `buffer` is reused from bucket to bucket.
    fn for_each_group(
        &self,
        groups: usize,
        buffer: &mut Vec<Event>,
        mut f: impl FnMut(usize, &mut [Event]) -> Result<()>,
    ) -> Result<()> {
        let (mut start, mut next) = (vec![0usize; SLOTS + 1], vec![0usize; SLOTS + 1]);
        for b in 0..groups.div_ceil(SLOTS) {
            let chunks = self.buckets.get(b).map_or(&[][..], Vec::as_slice);
            let bucket = || chunks.iter().flatten();
            start.fill(0);
            let mut len = 0;
            for e in bucket() {
                start[e.slot() + 1] += 1;
                len += 1;
            }
            for s in 0..SLOTS {
                start[s + 1] += start[s];
            }
            next.copy_from_slice(&start);
            // Every place up to `len` is written below: only growth needs filling.
            if buffer.len() < len {
                buffer.resize(len, Event::default());
            }
            for e in bucket() {
                let at = &mut next[e.slot()];
                buffer[*at] = *e;
                *at += 1;
            }
            let first = b * SLOTS;
            for s in 0..(groups - first).min(SLOTS) {
                f(first + s, &mut buffer[start[s]..start[s + 1]])?;
            }
        }
        Ok(())
    }
}

/// One event of a lead: 24 bytes.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Event {
    pub(crate) ts: i64,
    /// The event's points; 0 when unmatched.
    pub(crate) points: f64,
    pub(crate) product: u32,
    pub(crate) stage: u16,
    /// [`MATCHED`], [`DROPPED`], and the group's low bits ([`SLOT_BITS`]) within its bucket of
    /// [`Events`].
    tag: u16,
}

/// The bit of [`Event::tag`] that says the event matched a rule.
const MATCHED: u16 = 1 << 15;
/// The bit of [`Event::tag`] that says the event is a dropped copy of a repeated `event_id`
/// (`fold_events`' `dropped` argument): it cancels one equal event of its group.
const DROPPED: u16 = 1 << 14;
const _: () = assert!(SLOTS <= DROPPED as usize && size_of::<Event>() == 24);

impl Event {
    /// An event with `points` (None when unmatched).
    pub(crate) fn new(ts: i64, points: Option<f64>, product: u32, stage: u16) -> Self {
        Event {
            ts,
            points: points.unwrap_or(0.0),
            product,
            stage,
            tag: if points.is_some() { MATCHED } else { 0 },
        }
    }

    pub(crate) fn matched(&self) -> bool {
        self.tag & MATCHED != 0
    }

    pub(crate) fn dropped(&self) -> bool {
        self.tag & DROPPED != 0
    }

    /// The event, marked as a dropped copy when `dropped` (see [`DROPPED`]).
    pub(crate) fn marked(mut self, dropped: bool) -> Self {
        if dropped {
            self.tag |= DROPPED;
        }
        self
    }

    fn slot(&self) -> usize {
        usize::from(self.tag & (SLOTS as u16 - 1))
    }

    /// Time, then matched before unmatched, then points: a fixed order for every tie. A dropped
    /// copy orders equal to the event it copies.
    pub(crate) fn key_cmp(&self, other: &Event) -> std::cmp::Ordering {
        self.ts
            .cmp(&other.ts)
            .then(other.matched().cmp(&self.matched()))
            .then(self.points.total_cmp(&other.points))
            .then(self.product.cmp(&other.product))
            .then(self.stage.cmp(&other.stage))
    }
}

/// Sorts a lead's events by [`Event::key_cmp`]: by time alone first (one comparison of a
/// number, where events at the same time are rare), then each run of equal times by the whole
/// key. Events that arrive in order are only checked.
pub(crate) fn sort_events(lead: &mut [Event]) {
    if lead.windows(2).all(|w| w[0].key_cmp(&w[1]).is_le()) {
        return;
    }
    lead.sort_unstable_by_key(|e| e.ts);
    let mut i = 0;
    while i < lead.len() {
        let mut j = i + 1;
        while j < lead.len() && lead[j].ts == lead[i].ts {
            j += 1;
        }
        if j - i > 1 {
            lead[i..j].sort_unstable_by(Event::key_cmp);
        }
        i = j;
    }
}

/// Whether `v` lies in `0..=hi` as SQL's `not (v < 0 or v > hi)` says: the engine orders NaN
/// above every number (so NaN is outside) and -0.0 equal to 0 (so -0.0 is inside).
pub(crate) fn within(v: f64, hi: f64) -> bool {
    (0.0..=hi).contains(&v)
}

/// Removes from `rows`, sorted so that equal rows are together, each dropped copy and one equal
/// row that is not dropped (a dropped copy without one is removed alone); the rows left are
/// moved to the front, in order, and their number returned.
pub(crate) fn cancel_dropped<T: Copy>(
    rows: &mut [T],
    equal: impl Fn(&T, &T) -> bool,
    dropped: impl Fn(&T) -> bool,
) -> usize {
    let (mut out, mut i) = (0, 0);
    while i < rows.len() {
        let first = rows[i];
        let (mut kept, mut copies, mut row) = (0usize, 0usize, first);
        let mut j = i;
        while j < rows.len() && equal(&rows[j], &first) {
            if dropped(&rows[j]) {
                copies += 1;
            } else {
                kept += 1;
                row = rows[j];
            }
            j += 1;
        }
        for _ in 0..kept.saturating_sub(copies) {
            rows[out] = row;
            out += 1;
        }
        i = j;
    }
    out
}

/// Whether row `i` of `action` (not null) is `nps_response`; most rows are told apart by length.
fn is_nps_response(action: &StringViewArray, i: usize) -> bool {
    const NPS: &str = "nps_response";
    action.views()[i] as u32 as usize == NPS.len() && action.value(i) == NPS
}

/// Net Promoter answers: `(group, ts, value)`, and whether each is a dropped copy's.
#[derive(Clone, Debug, Default)]
struct Answers {
    group: Vec<u32>,
    ts: Vec<i64>,
    value: Vec<f64>,
    dropped: Vec<bool>,
}

impl Answers {
    fn push(&mut self, group: usize, ts: i64, value: f64, dropped: bool) {
        self.group.push(group as u32);
        self.ts.push(ts);
        self.value.push(value);
        self.dropped.push(dropped);
    }

    fn bytes(&self) -> usize {
        self.group.capacity()
            * (size_of::<u32>() + size_of::<i64>() + size_of::<f64>() + size_of::<bool>())
    }
}

impl Rows for Answers {
    fn groups(&self) -> &[u32] {
        &self.group
    }
    fn move_row(&self, i: usize, new_group: usize, to: &mut Self) {
        to.push(new_group, self.ts[i], self.value[i], self.dropped[i]);
    }
}

/// Product names, interned to small numbers.
#[derive(Clone, Debug, Default)]
pub(crate) struct Products {
    pub(crate) names: Vec<String>,
    ids: HashMap<String, u32>,
    /// Ids of the names of at most 12 bytes, by their view's bytes up to the name's end.
    short: Vec<(u128, u32)>,
}

impl Products {
    pub(crate) fn id(&mut self, name: &str) -> u32 {
        // A model names a handful of products: comparing a few short texts beats hashing one.
        if self.names.len() <= 8 {
            if let Some(id) = self.names.iter().position(|n| n == name) {
                return id as u32;
            }
        } else if let Some(id) = self.ids.get(name) {
            return *id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.to_string());
        self.ids.insert(name.to_string(), id);
        id
    }

    /// The id of row `i` of `array` (not null). A short name is stored inside its view, so the
    /// view's bytes up to the name's end identify it without reading the name; the first
    /// [`SHORT_NAMES`] short names seen are remembered that way.
    pub(crate) fn id_of_view(&mut self, array: &StringViewArray, i: usize) -> u32 {
        const SHORT_NAMES: usize = 16;
        let view = array.views()[i];
        let len = view as u32 as usize;
        if len > 12 {
            return self.id(array.value(i));
        }
        let key = view & (u128::MAX >> (96 - 8 * len));
        if let Some(&(_, id)) = self.short.iter().find(|(k, _)| *k == key) {
            return id;
        }
        let id = self.id(array.value(i));
        if self.short.len() < SHORT_NAMES {
            self.short.push((key, id));
        }
        id
    }

    fn bytes(&self) -> usize {
        self.names
            .iter()
            .map(|n| n.capacity() * 2 + 48)
            .sum::<usize>()
            + self.short.capacity() * size_of::<(u128, u32)>()
    }
}

/// A fit rule a lead matches, counted at the cutoffs `from..=to` (µs).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct FitRule {
    from: i64,
    to: i64,
    points: f64,
}

impl FitRule {
    fn always(points: f64) -> Self {
        FitRule {
            from: i64::MIN,
            to: i64::MAX,
            points,
        }
    }
}

/// A group's fit rules: `None` for a lead without a leads-table row (fit 0, no snapshot
/// without an event).
pub(crate) type Fit = Option<Vec<FitRule>>;

/// The fit at `cutoff`: the rules that hold then, summed in order.
fn fit_at(rules: &[FitRule], cutoff: i64) -> f64 {
    rules
        .iter()
        .filter(|r| r.from <= cutoff && cutoff <= r.to)
        .fold(0.0, |sum, r| sum + r.points)
}

/// What the groups of one emission hold.
#[derive(Default)]
struct Taken {
    events: Events,
    answers: Answers,
    fits: Vec<Fit>,
}

/// The grouped accumulator behind `lead_fold`.
#[derive(Clone, Debug)]
pub struct LeadFoldGroups {
    params: Params,
    events: Events,
    answers: Answers,
    /// Each group's fit rules, once a leads-table row gave them.
    fits: Vec<Fit>,
    /// How many fit rules `fits` holds (for `size`, which must not walk every group).
    fit_rules: usize,
    products: Products,
    /// For `fold_events`: the rules that judge each raw row (see [`super::fold_events`]);
    /// `None` for `lead_fold`, whose rows come judged.
    judge: Option<Arc<Judge>>,
}

/// The fit argument: a number per row, or a list of rules per row.
pub(crate) enum FitArg<'a> {
    Number(&'a Float64Array),
    Rules(&'a ListArray),
}

impl<'a> FitArg<'a> {
    /// The fits of a batch, or `None` when every row's is null (the events' batches), so that
    /// adding rows skips looking.
    pub(crate) fn of(array: &'a ArrayRef) -> Result<Option<Self>> {
        let fit = Self::new(array)?;
        Ok((array.logical_null_count() < array.len()).then_some(fit))
    }

    fn new(array: &'a ArrayRef) -> Result<Self> {
        match array.data_type() {
            DataType::Float64 => Ok(FitArg::Number(array.as_primitive::<Float64Type>())),
            DataType::List(_) => Ok(FitArg::Rules(array.as_list::<i32>())),
            other => plan_err!("{NAME}: fit must be a number or a list of rules, got {other}"),
        }
    }

    /// Row `i`'s fit rules; `None` for an event row.
    pub(crate) fn get(&self, i: usize) -> Fit {
        match self {
            FitArg::Number(a) => a.is_valid(i).then(|| vec![FitRule::always(a.value(i))]),
            FitArg::Rules(l) => {
                if l.is_null(i) {
                    return None;
                }
                let rules = l.value(i);
                let rules = rules.as_struct();
                let bound = |c: usize| rules.column(c).as_primitive::<TimestampMicrosecondType>();
                let (from, to) = (bound(0), bound(1));
                let points = rules.column(2).as_primitive::<Float64Type>();
                Some(
                    (0..rules.len())
                        .filter(|&j| rules.is_valid(j) && points.is_valid(j))
                        .map(|j| FitRule {
                            from: if from.is_valid(j) {
                                from.value(j)
                            } else {
                                i64::MIN
                            },
                            to: if to.is_valid(j) {
                                to.value(j)
                            } else {
                                i64::MAX
                            },
                            points: points.value(j),
                        })
                        .collect(),
                )
            }
        }
    }
}

/// The arguments of one batch, viewed with their types.
struct EventArgs<'a> {
    ts: &'a TimestampMicrosecondArray,
    points: &'a Float64Array,
    product: StringViewArray,
    stage: &'a Int64Array,
    nps: &'a Float64Array,
    /// `None` for a batch without a leads-table row (every row's fit null).
    fit: Option<FitArg<'a>>,
}

impl<'a> EventArgs<'a> {
    fn new(values: &'a [ArrayRef]) -> Result<Self> {
        Ok(EventArgs {
            ts: values[0].as_primitive::<TimestampMicrosecondType>(),
            points: values[1].as_primitive::<Float64Type>(),
            product: super::string_view(&values[2], NAME)?,
            stage: values[3].as_primitive::<Int64Type>(),
            nps: values[4].as_primitive::<Float64Type>(),
            fit: FitArg::of(&values[5])?,
        })
    }
}

/// The arguments of one batch of raw rows (`fold_events`), viewed with their types, and the
/// rule each row matches.
pub(crate) struct RawArgs<'a> {
    pub(crate) ts: &'a TimestampMicrosecondArray,
    action: StringViewArray,
    pub(crate) product: StringViewArray,
    value: &'a Float64Array,
    /// `None` for a batch without a leads-table row (every row's fit null).
    pub(crate) fit: Option<FitArg<'a>>,
    /// `fold_events`' optional `dropped` argument.
    dropped: Option<&'a BooleanArray>,
    /// Each row's rule number (null: no rule matches).
    pub(crate) rule: Int32Array,
}

impl<'a> RawArgs<'a> {
    /// The actions.
    pub(crate) fn action(&self) -> &StringViewArray {
        &self.action
    }

    pub(crate) fn new(values: &'a [ArrayRef], judge: &Judge) -> Result<Self> {
        let action = super::string_view(&values[1], super::fold_events::NAME)?;
        let asset = super::string_view(&values[2], super::fold_events::NAME)?;
        let rule = match_all(&judge.matcher, &action, &asset);
        Ok(RawArgs {
            ts: values[0].as_primitive::<TimestampMicrosecondType>(),
            action,
            product: super::string_view(&values[3], super::fold_events::NAME)?,
            value: values[4].as_primitive::<Float64Type>(),
            fit: FitArg::of(&values[5])?,
            // A batch without a marked row (all of the events' batches) is read as unmarked.
            dropped: values
                .get(super::fold_events::DROPPED_ARG)
                .map(|a| a.as_boolean())
                .filter(|d| d.true_count() > 0),
            rule,
        })
    }
}

/// A batch's rows as the accumulator reads them: judged (`lead_fold`) or raw (`fold_events`).
enum Intake<'a> {
    Judged(EventArgs<'a>),
    Raw(Box<RawArgs<'a>>, &'a Judge),
}

impl LeadFoldGroups {
    pub(crate) fn new(params: Params) -> Self {
        Self {
            params,
            events: Events::default(),
            answers: Answers::default(),
            fits: Vec::new(),
            fit_rules: 0,
            products: Products::default(),
            judge: None,
        }
    }

    /// An accumulator that judges raw rows with `judge` itself (`fold_events`).
    pub(crate) fn judging(params: Params, judge: Judge) -> Self {
        Self {
            judge: Some(Arc::new(judge)),
            ..Self::new(params)
        }
    }

    /// An accumulator with no groups and the same parameters, rules and product names.
    pub(crate) fn empty_like(&self) -> Self {
        Self {
            judge: self.judge.clone(),
            products: self.products.clone(),
            ..Self::new(self.params.clone())
        }
    }

    /// Views a batch for `add`, judged or raw as `judge` says.
    fn intake<'a>(judge: Option<&'a Judge>, values: &'a [ArrayRef]) -> Result<Intake<'a>> {
        Ok(match judge {
            None => Intake::Judged(EventArgs::new(values)?),
            Some(judge) => Intake::Raw(Box::new(RawArgs::new(values, judge)?), judge),
        })
    }

    /// Adds row `i` of a batch to group `g`.
    fn add(&mut self, intake: &Intake, i: usize, g: usize) {
        match intake {
            Intake::Judged(args) => self.add_row(args, i, g),
            Intake::Raw(args, judge) => self.add_raw_row(args, judge, i, g),
        }
    }

    pub(crate) fn ensure_groups(&mut self, total_num_groups: usize) {
        if self.fits.len() < total_num_groups {
            self.fits.resize(total_num_groups, None);
        }
    }

    fn take(&mut self, emit_to: EmitTo) -> Taken {
        match emit_to {
            EmitTo::All => {
                self.fit_rules = 0;
                Taken {
                    events: std::mem::take(&mut self.events),
                    answers: std::mem::take(&mut self.answers),
                    fits: std::mem::take(&mut self.fits),
                }
            }
            EmitTo::First(n) => {
                let fits: Vec<Fit> = self.fits.drain(..n).collect();
                self.fit_rules -= fits.iter().flatten().map(Vec::len).sum::<usize>();
                Taken {
                    events: self.events.split_first(n),
                    answers: self.answers.split_first(n),
                    fits,
                }
            }
        }
    }

    /// Keeps the fit of row `i`, a leads-table row, for group `g` (the first one seen).
    fn add_fit(&mut self, fit: Option<&FitArg>, i: usize, g: usize) {
        let Some(fit) = fit else {
            return;
        };
        // Only a leads-table row has a fit: event rows never touch the per-group fits.
        if let Some(fit) = fit.get(i)
            && self.fits[g].is_none()
        {
            self.fit_rules += fit.len();
            self.fits[g] = Some(fit);
        }
    }

    /// Adds row `i` of `args`, a raw row, to group `g` if it is good and before the last cutoff
    /// (see [`judge_raw_row`]).
    fn add_raw_row(&mut self, args: &RawArgs, judge: &Judge, i: usize, g: usize) {
        self.add_fit(args.fit.as_ref(), i, g);
        if let Judged::Event(event, nps) = judge_raw_row(&self.params, judge, args, i) {
            self.store(g, event, &args.product, i, nps);
        }
    }

    /// Adds row `i` of `args` to group `g`.
    fn add_row(&mut self, args: &EventArgs, i: usize, g: usize) {
        self.add_fit(args.fit.as_ref(), i, g);
        if args.ts.is_null(i) {
            return;
        }
        let matched = args.points.is_valid(i);
        let stage = if matched && args.stage.is_valid(i) {
            self.params.stage_code(args.stage.value(i))
        } else {
            0
        };
        let points = matched.then(|| args.points.value(i));
        let event = Event::new(args.ts.value(i), points, NO_PRODUCT, stage);
        let nps = args.nps.is_valid(i).then(|| args.nps.value(i));
        self.store(g, event, &args.product, i, nps);
    }

    /// Stores `event` (without its product yet) for group `g`: a matched event takes the product
    /// of row `i` of `product`, if any; `nps` is the row's answer, if it gave one (a dropped
    /// copy's answer cancels an equal one, as its event does).
    fn store(
        &mut self,
        g: usize,
        mut event: Event,
        product: &StringViewArray,
        i: usize,
        nps: Option<f64>,
    ) {
        if event.matched() && product.is_valid(i) {
            event.product = self.products.id_of_view(product, i);
        }
        self.events.push(g, event);
        if let Some(v) = nps {
            self.answers.push(g, event.ts, v, event.dropped());
        }
    }

    /// Folds every group of `taken` into the result lists.
    fn finish(&self, taken: &Taken) -> Result<ArrayRef> {
        let groups = taken.fits.len();
        let (answer_start, answer_order) = taken.answers.by_group(groups);
        let mut out = Output::new(&self.params, groups);
        let mut answers: Vec<(i64, f64, bool)> = Vec::new();
        let mut scratch = Scratch::new(self.params.stages);
        let mut buffer = Vec::new();
        let cancel = taken.events.dropped;
        taken
            .events
            .for_each_group(groups, &mut buffer, |g, lead| {
                answers.clear();
                answers.extend(
                    answer_order[answer_start[g]..answer_start[g + 1]]
                        .iter()
                        .map(|&i| {
                            let i = i as usize;
                            let a = &taken.answers;
                            (a.ts[i], a.value[i], a.dropped[i])
                        }),
                );
                let fold = LeadFold {
                    params: &self.params,
                    products: &self.products,
                };
                fold.lead(
                    lead,
                    &mut answers,
                    cancel,
                    taken.fits[g].as_deref(),
                    &mut out,
                    &mut scratch,
                );
                Ok(())
            })?;
        out.finish()
    }
}

/// The fold of one lead at a time, for the parameters and product names of a fold.
pub(crate) struct LeadFold<'a> {
    pub(crate) params: &'a Params,
    pub(crate) products: &'a Products,
}

impl LeadFold<'_> {
    /// One lead's snapshots into `out`: its events (in any order) are sorted, dropped copies
    /// cancelled (when `cancel` says any may be there), its answers likewise, and walked.
    pub(crate) fn lead(
        &self,
        mut lead: &mut [Event],
        answers: &mut Vec<(i64, f64, bool)>,
        cancel: bool,
        fit: Option<&[FitRule]>,
        out: &mut Output,
        scratch: &mut Scratch,
    ) {
        sort_events(lead);
        if cancel && lead.iter().any(Event::dropped) {
            let left = cancel_dropped(lead, |a, b| a.key_cmp(b).is_eq(), Event::dropped);
            lead = &mut lead[..left];
        }
        if answers.len() > 1 {
            answers.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
        }
        if cancel && answers.iter().any(|a| a.2) {
            let left = cancel_dropped(
                answers,
                |a, b| a.0 == b.0 && a.1.total_cmp(&b.1).is_eq(),
                |a| a.2,
            );
            answers.truncate(left);
        }
        self.walk(lead, answers, fit, out, scratch);
    }

    /// One lead: walks its sorted events once, emitting each snapshot as its cutoff passes.
    fn walk(
        &self,
        lead: &[Event],
        answers: &[(i64, f64, bool)],
        rules: Option<&[FitRule]>,
        out: &mut Output,
        scratch: &mut Scratch,
    ) {
        let p = self.params;
        // The fit at each snapshot, and the distinct fits in decreasing order: a higher fit
        // crosses no later, so one pointer finds every crossing.
        let Scratch {
            fit_of,
            fits,
            crossings,
            state,
        } = scratch;
        fit_of.clear();
        match rules {
            Some(rules) if rules.iter().all(|r| r.from == i64::MIN && r.to == i64::MAX) => {
                fit_of.resize(p.cutoffs.len(), fit_at(rules, 0));
            }
            Some(rules) => fit_of.extend(p.cutoffs.iter().map(|c| fit_at(rules, *c))),
            None => fit_of.resize(p.cutoffs.len(), 0.0),
        }
        fits.clear();
        fits.extend_from_slice(fit_of);
        fits.sort_by(|a, b| b.total_cmp(a));
        fits.dedup_by(|a, b| a.total_cmp(b).is_eq());
        crossings.clear();
        crossings.resize(fits.len(), None);
        let mut next_fit = 0;

        state.reset();
        let (mut i, mut a) = (0, 0);
        for (k, &cutoff) in p.cutoffs.iter().enumerate() {
            while i < lead.len() && lead[i].ts < cutoff {
                let t = lead[i].ts;
                let mut any_matched = false;
                while i < lead.len() && lead[i].ts == t {
                    any_matched |= state.apply(&lead[i], p);
                    i += 1;
                }
                if any_matched {
                    while next_fit < fits.len() && fits[next_fit] + state.fold.score >= p.threshold
                    {
                        crossings[next_fit] = Some(t);
                        next_fit += 1;
                    }
                }
            }
            while a < answers.len() && answers[a].0 < cutoff {
                state.nps = Some(answers[a].1);
                a += 1;
            }
            if rules.is_some() || state.matched + state.unmatched > 0 {
                let fit = fit_of[k];
                let mql_at = fits
                    .iter()
                    .position(|f| f.total_cmp(&fit).is_eq())
                    .and_then(|j| crossings[j]);
                let snapshot = Snapshot {
                    as_of: p.as_of[k],
                    cutoff,
                    fit,
                    mql_at,
                };
                out.snapshot(&snapshot, state, p, self.products);
            }
        }
        out.lead_done();
    }
}

/// Buffers one lead's walk needs, kept from lead to lead.
pub(crate) struct Scratch {
    fit_of: Vec<f64>,
    fits: Vec<f64>,
    crossings: Vec<Option<i64>>,
    state: LeadState,
}

impl Scratch {
    pub(crate) fn new(stages: usize) -> Self {
        Scratch {
            fit_of: Vec::new(),
            fits: Vec::new(),
            crossings: Vec::new(),
            state: LeadState::new(stages),
        }
    }
}

/// What a snapshot adds to the lead's running totals.
struct Snapshot {
    as_of: i32,
    cutoff: i64,
    fit: f64,
    mql_at: Option<i64>,
}

/// A lead's running totals during the walk.
struct LeadState {
    fold: Folder,
    /// Per product with a matched event: its own fold (floor 0).
    products: Vec<(u32, Folder)>,
    tallies: Vec<i64>,
    stage_rank: u16,
    matched: i64,
    unmatched: i64,
    last_activity: Option<i64>,
    last_positive_at: Option<i64>,
    nps: Option<f64>,
}

impl LeadState {
    fn new(stages: usize) -> Self {
        LeadState {
            fold: Folder::new(),
            products: Vec::new(),
            tallies: vec![0; stages],
            stage_rank: 0,
            matched: 0,
            unmatched: 0,
            last_activity: None,
            last_positive_at: None,
            nps: None,
        }
    }

    /// Back to a lead with no events, keeping the allocations.
    fn reset(&mut self) {
        self.fold = Folder::new();
        self.products.clear();
        self.tallies.fill(0);
        self.stage_rank = 0;
        self.matched = 0;
        self.unmatched = 0;
        self.last_activity = None;
        self.last_positive_at = None;
        self.nps = None;
    }

    /// Applies one event; true when it was a matched one.
    #[inline]
    fn apply(&mut self, e: &Event, p: &Params) -> bool {
        if !e.matched() {
            self.unmatched += 1;
            return false;
        }
        if self.fold.last != Some(e.ts) {
            self.fold.advance(e.ts, &p.decay, p.floor);
        }
        self.fold.add(e.points);
        if p.products && e.product != NO_PRODUCT {
            let slot = match self.products.iter().position(|(id, _)| *id == e.product) {
                Some(s) => s,
                None => {
                    self.products.push((e.product, Folder::new()));
                    self.products.len() - 1
                }
            };
            let f = &mut self.products[slot].1;
            if f.last != Some(e.ts) {
                f.advance(e.ts, &p.decay, 0.0);
            }
            f.add(e.points);
        }
        if e.stage > 0 {
            self.tallies[e.stage as usize - 1] += 1;
            self.stage_rank = self.stage_rank.max(e.stage);
        }
        self.matched += 1;
        self.last_activity = Some(e.ts);
        if e.points > 0.0 {
            self.last_positive_at = Some(e.ts);
        }
        true
    }
}

/// The result columns, built group by group.
pub(crate) struct Output {
    snapshot_counts: Vec<usize>,
    lead_start: usize,
    as_of: Vec<i32>,
    cutoff: Vec<i64>,
    engagement: Vec<f64>,
    fit: Vec<f64>,
    mql_at: Vec<Option<i64>>,
    stage_rank: Vec<Option<i64>>,
    tallies: Vec<i64>,
    stages: usize,
    matched: Vec<i64>,
    unmatched: Vec<i64>,
    last_activity: Vec<Option<i64>>,
    last_positive_at: Vec<Option<i64>>,
    nps: Vec<Option<f64>>,
    products: ListBuilder<StringBuilder>,
    product_scores: ListBuilder<Float64Builder>,
    scratch: Vec<(u32, f64)>,
}

impl Output {
    pub(crate) fn new(p: &Params, groups: usize) -> Self {
        let rows = groups * p.cutoffs.len().min(4);
        Output {
            snapshot_counts: Vec::with_capacity(groups),
            lead_start: 0,
            as_of: Vec::with_capacity(rows),
            cutoff: Vec::with_capacity(rows),
            engagement: Vec::with_capacity(rows),
            fit: Vec::with_capacity(rows),
            mql_at: Vec::with_capacity(rows),
            stage_rank: Vec::with_capacity(rows),
            tallies: Vec::with_capacity(rows * p.stages),
            stages: p.stages,
            matched: Vec::with_capacity(rows),
            unmatched: Vec::with_capacity(rows),
            last_activity: Vec::with_capacity(rows),
            last_positive_at: Vec::with_capacity(rows),
            nps: Vec::with_capacity(rows),
            products: ListBuilder::new(StringBuilder::new()),
            product_scores: ListBuilder::new(Float64Builder::new()),
            scratch: Vec::new(),
        }
    }

    fn snapshot(&mut self, at: &Snapshot, s: &LeadState, p: &Params, names: &Products) {
        self.as_of.push(at.as_of);
        self.cutoff.push(at.cutoff);
        self.engagement
            .push(s.fold.at(at.cutoff, &p.decay, p.floor));
        self.fit.push(at.fit);
        self.mql_at.push(at.mql_at);
        self.stage_rank
            .push((s.stage_rank > 0).then_some(i64::from(s.stage_rank)));
        self.tallies.extend_from_slice(&s.tallies);
        self.matched.push(s.matched);
        self.unmatched.push(s.unmatched);
        self.last_activity.push(s.last_activity);
        self.last_positive_at.push(s.last_positive_at);
        self.nps.push(s.nps);
        self.scratch.clear();
        self.scratch.extend(
            s.products
                .iter()
                .map(|(id, f)| (*id, f.at(at.cutoff, &p.decay, 0.0))),
        );
        self.scratch
            .sort_unstable_by(|a, b| names.names[a.0 as usize].cmp(&names.names[b.0 as usize]));
        for (id, score) in &self.scratch {
            self.products
                .values()
                .append_value(&names.names[*id as usize]);
            self.product_scores.values().append_value(*score);
        }
        self.products.append(true);
        self.product_scores.append(true);
    }

    /// Closes the current group's list.
    fn lead_done(&mut self) {
        self.snapshot_counts
            .push(self.as_of.len() - self.lead_start);
        self.lead_start = self.as_of.len();
    }

    fn finish(self) -> Result<ArrayRef> {
        let counts = self.snapshot_counts.clone();
        let snapshots = StructArray::try_new(snapshot_fields(), self.columns()?, None)?;
        Ok(Arc::new(ListArray::try_new(
            Arc::new(Field::new_list_field(
                DataType::Struct(snapshot_fields()),
                true,
            )),
            OffsetBuffer::from_lengths(counts),
            Arc::new(snapshots),
            None,
        )?))
    }

    /// Rows written so far.
    pub(crate) fn rows(&self) -> usize {
        self.as_of.len()
    }

    /// The rows as the columns of [`snapshot_fields`].
    pub(crate) fn columns(mut self) -> Result<Vec<ArrayRef>> {
        let micros = |v: Vec<Option<i64>>| -> ArrayRef {
            Arc::new(TimestampMicrosecondArray::from(v).with_timezone("UTC"))
        };
        let tallies = ListArray::try_new(
            Arc::new(Field::new_list_field(DataType::Int64, true)),
            OffsetBuffer::from_lengths(std::iter::repeat_n(self.stages, self.as_of.len())),
            Arc::new(Int64Array::from(self.tallies)),
            None,
        )?;
        let snapshot_columns: Vec<ArrayRef> = vec![
            Arc::new(Date32Array::from(self.as_of)),
            Arc::new(TimestampMicrosecondArray::from(self.cutoff).with_timezone("UTC")),
            Arc::new(Float64Array::from(self.engagement)),
            Arc::new(Float64Array::from(self.fit)),
            micros(self.mql_at),
            Arc::new(Int64Array::from(self.stage_rank)),
            Arc::new(tallies),
            Arc::new(Int64Array::from(self.matched)),
            Arc::new(Int64Array::from(self.unmatched)),
            micros(self.last_activity),
            micros(self.last_positive_at),
            Arc::new(Float64Array::from(self.nps)),
            Arc::new(self.products.finish()),
            Arc::new(self.product_scores.finish()),
        ];
        Ok(snapshot_columns)
    }
}

impl LeadFoldGroups {
    /// The partial state of every group of `taken`: its events and answers as lists, its fit
    /// rules (null for a lead without a leads-table row).
    fn state_of(&self, taken: &Taken) -> Result<Vec<ArrayRef>> {
        let groups = taken.fits.len();
        let (answer_start, answer_order) = taken.answers.by_group(groups);
        let events = taken.events.len();
        let mut ts = ListBuilder::new(Int64Builder::with_capacity(events));
        let mut pts = ListBuilder::new(Float64Builder::with_capacity(events));
        let mut prod = ListBuilder::new(StringBuilder::new());
        let mut stage = ListBuilder::new(Int64Builder::with_capacity(events));
        let mut nps_ts = ListBuilder::new(Int64Builder::new());
        let mut nps = ListBuilder::new(Float64Builder::new());
        let mut dropped = ListBuilder::new(BooleanBuilder::with_capacity(events));
        let mut nps_dropped = ListBuilder::new(BooleanBuilder::new());
        let mut rules: Vec<FitRule> = Vec::new();
        let mut rule_counts: Vec<usize> = Vec::with_capacity(groups);
        let mut buffer = Vec::new();
        taken
            .events
            .for_each_group(groups, &mut buffer, |g, lead| {
                for e in lead.iter() {
                    ts.values().append_value(e.ts);
                    if e.matched() {
                        pts.values().append_value(e.points);
                    } else {
                        pts.values().append_null();
                    }
                    match e.product {
                        NO_PRODUCT => prod.values().append_null(),
                        p => prod.values().append_value(&self.products.names[p as usize]),
                    }
                    if e.stage > 0 {
                        stage.values().append_value(i64::from(e.stage));
                    } else {
                        stage.values().append_null();
                    }
                    dropped.values().append_value(e.dropped());
                }
                for &i in &answer_order[answer_start[g]..answer_start[g + 1]] {
                    nps_ts.values().append_value(taken.answers.ts[i as usize]);
                    nps.values().append_value(taken.answers.value[i as usize]);
                    nps_dropped
                        .values()
                        .append_value(taken.answers.dropped[i as usize]);
                }
                let fit = taken.fits[g].as_deref().unwrap_or_default();
                rules.extend_from_slice(fit);
                rule_counts.push(fit.len());
                for b in [&mut ts, &mut nps_ts, &mut stage] {
                    b.append(true);
                }
                for b in [&mut pts, &mut nps] {
                    b.append(true);
                }
                for b in [&mut dropped, &mut nps_dropped] {
                    b.append(true);
                }
                prod.append(true);
                Ok(())
            })?;
        let rule_columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from_iter_values(rules.iter().map(|r| r.from))),
            Arc::new(Int64Array::from_iter_values(rules.iter().map(|r| r.to))),
            Arc::new(Float64Array::from_iter_values(
                rules.iter().map(|r| r.points),
            )),
        ];
        let fit = ListArray::try_new(
            Arc::new(Field::new_list_field(
                DataType::Struct(rule_fields(DataType::Int64)),
                true,
            )),
            OffsetBuffer::from_lengths(rule_counts),
            Arc::new(StructArray::try_new(
                rule_fields(DataType::Int64),
                rule_columns,
                None,
            )?),
            Some(taken.fits.iter().map(Option::is_some).collect()),
        )?;
        Ok(vec![
            Arc::new(ts.finish()),
            Arc::new(pts.finish()),
            Arc::new(prod.finish()),
            Arc::new(stage.finish()),
            Arc::new(nps_ts.finish()),
            Arc::new(nps.finish()),
            Arc::new(fit),
            Arc::new(dropped.finish()),
            Arc::new(nps_dropped.finish()),
        ])
    }
}

impl GroupsAccumulator for LeadFoldGroups {
    // Appends each kept row's event (and answer) to its group.
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.ensure_groups(total_num_groups);
        let judge = self.judge.clone();
        let intake = Self::intake(judge.as_deref(), values)?;
        for (i, &g) in group_indices.iter().enumerate() {
            if passes(opt_filter, i) {
                self.add(&intake, i, g);
            }
        }
        Ok(())
    }

    // The result struct for the emitted groups, in group order; their rows are released.
    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let taken = self.take(emit_to);
        self.finish(&taken)
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let taken = self.take(emit_to);
        self.state_of(&taken)
    }

    // Appends the rows of partial states to their groups.
    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.ensure_groups(total_num_groups);
        let lists: Vec<&ListArray> = values.iter().map(|v| v.as_list::<i32>()).collect();
        let ts = lists[0].values().as_primitive::<Int64Type>();
        let points = lists[1].values().as_primitive::<Float64Type>();
        let product = lists[2].values().as_string::<i32>();
        let stage = lists[3].values().as_primitive::<Int64Type>();
        let nps_ts = lists[4].values().as_primitive::<Int64Type>();
        let nps = lists[5].values().as_primitive::<Float64Type>();
        let rules = lists[6].values().as_struct();
        let dropped = lists[7].values().as_boolean();
        let nps_dropped = lists[8].values().as_boolean();
        let (from, to) = (
            rules.column(0).as_primitive::<Int64Type>(),
            rules.column(1).as_primitive::<Int64Type>(),
        );
        let rule_points = rules.column(2).as_primitive::<Float64Type>();
        let range = |list: &ListArray, row: usize| {
            let o = list.value_offsets();
            o[row] as usize..o[row + 1] as usize
        };
        for (row, &g) in group_indices.iter().enumerate() {
            if self.fits[g].is_none() && lists[6].is_valid(row) {
                let rules: Vec<FitRule> = range(lists[6], row)
                    .map(|j| FitRule {
                        from: from.value(j),
                        to: to.value(j),
                        points: rule_points.value(j),
                    })
                    .collect();
                self.fit_rules += rules.len();
                self.fits[g] = Some(rules);
            }
            for j in range(lists[0], row) {
                let matched = points.is_valid(j);
                let product = if product.is_valid(j) {
                    self.products.id(product.value(j))
                } else {
                    NO_PRODUCT
                };
                let stage = if stage.is_valid(j) {
                    self.params.stage_code(stage.value(j))
                } else {
                    0
                };
                let points = matched.then(|| points.value(j));
                let event = Event::new(ts.value(j), points, product, stage);
                self.events.push(g, event.marked(dropped.value(j)));
            }
            for j in range(lists[4], row) {
                self.answers
                    .push(g, nps_ts.value(j), nps.value(j), nps_dropped.value(j));
            }
        }
        Ok(())
    }

    // Each row as its own group's state.
    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let rows = values.first().map_or(0, |a| a.len());
        let mut one = LeadFoldGroups::new(self.params.clone());
        one.products = self.products.clone();
        one.ensure_groups(rows);
        let intake = Self::intake(self.judge.as_deref(), values)?;
        for i in 0..rows {
            if passes(opt_filter, i) {
                one.add(&intake, i, i);
            }
        }
        let taken = one.take(EmitTo::All);
        one.state_of(&taken)
    }

    fn size(&self) -> usize {
        size_of::<Self>()
            + self.events.bytes()
            + self.answers.bytes()
            + self.fits.capacity() * size_of::<Fit>()
            + self.fit_rules * size_of::<FitRule>()
            + self.products.bytes()
    }
}

/// `lead_fold` over a single group (no GROUP BY, or engines that do not use the grouped path).
#[derive(Debug)]
pub(crate) struct LeadFoldAccumulator {
    pub(crate) inner: LeadFoldGroups,
}

impl LeadFoldAccumulator {
    fn snapshot(&self) -> Taken {
        let mut fits = self.inner.fits.clone();
        fits.resize(1, None);
        Taken {
            events: self.inner.events.clone(),
            answers: self.inner.answers.clone(),
            fits,
        }
    }
}

impl Accumulator for LeadFoldAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let zeros = super::one_group(values);
        self.inner.update_batch(values, &zeros, None, 1)
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let out = self.inner.finish(&self.snapshot())?;
        ScalarValue::try_from_array(&out, 0)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        self.inner
            .state_of(&self.snapshot())?
            .iter()
            .map(|a| ScalarValue::try_from_array(a, 0))
            .collect()
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let zeros = super::one_group(states);
        self.inner.merge_batch(states, &zeros, 1)
    }

    fn size(&self) -> usize {
        self.inner.size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fold::DecayKind;
    use datafusion::arrow::array::StringViewArray;

    const DAY: i64 = 86_400_000_000;
    /// 2026-01-01T00:00:00Z.
    const T0: i64 = 1_767_225_600_000_000;

    fn spec(from: &str, to: &str, every: u32, products: bool) -> Params {
        let json = FoldSpec {
            threshold: 15.0,
            floor: 0.0,
            decay: Decay {
                kind: DecayKind::Exponential {
                    half_life_days: 10.0,
                },
                grace_days: 0.0,
            },
            from: from.into(),
            to: to.into(),
            every_days: every,
            stages: 2,
            products,
            lead_bits: 0,
        }
        .to_json();
        FoldSpec::parse(&json).unwrap()
    }

    /// Rows: (day after 2026-01-01, points, product, stage, nps).
    type Row = (
        i64,
        Option<f64>,
        Option<&'static str>,
        Option<i64>,
        Option<f64>,
    );

    fn batch(rows: &[Row], fit: Option<f64>) -> Vec<ArrayRef> {
        vec![
            Arc::new(
                TimestampMicrosecondArray::from(
                    rows.iter().map(|r| T0 + r.0 * DAY).collect::<Vec<_>>(),
                )
                .with_timezone("UTC"),
            ),
            Arc::new(Float64Array::from(
                rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            )),
            Arc::new(StringViewArray::from(
                rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            )),
            Arc::new(Int64Array::from(
                rows.iter().map(|r| r.3).collect::<Vec<_>>(),
            )),
            Arc::new(Float64Array::from(
                rows.iter().map(|r| r.4).collect::<Vec<_>>(),
            )),
            Arc::new(Float64Array::from(vec![fit; rows.len()])),
        ]
    }

    /// A `fit` column of `rows` copies of one rule list: `(from day, to day, points)`.
    fn rules(list: &[(Option<i64>, Option<i64>, f64)], rows: usize) -> ArrayRef {
        let day = |d: Option<i64>| d.map(|d| T0 + d * DAY);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(
                TimestampMicrosecondArray::from(list.iter().map(|r| day(r.0)).collect::<Vec<_>>())
                    .with_timezone("UTC"),
            ),
            Arc::new(
                TimestampMicrosecondArray::from(list.iter().map(|r| day(r.1)).collect::<Vec<_>>())
                    .with_timezone("UTC"),
            ),
            Arc::new(Float64Array::from_iter_values(list.iter().map(|r| r.2))),
        ];
        let one = StructArray::try_new(rule_fields(utc_micros()), columns, None).unwrap();
        let values = datafusion::arrow::compute::concat(&vec![&one as &dyn Array; rows]).unwrap();
        Arc::new(
            ListArray::try_new(
                Arc::new(Field::new_list_field(
                    DataType::Struct(rule_fields(utc_micros())),
                    true,
                )),
                OffsetBuffer::from_lengths(vec![list.len(); rows]),
                values,
                None,
            )
            .unwrap(),
        )
    }

    fn snapshots(out: &ArrayRef, group: usize) -> StructArray {
        out.as_list::<i32>().value(group).as_struct().clone()
    }

    fn f64s(s: &StructArray, name: &str) -> Vec<Option<f64>> {
        s.column_by_name(name)
            .unwrap()
            .as_primitive::<Float64Type>()
            .iter()
            .collect()
    }

    fn times(s: &StructArray, name: &str) -> Vec<Option<i64>> {
        s.column_by_name(name)
            .unwrap()
            .as_primitive::<TimestampMicrosecondType>()
            .iter()
            .collect()
    }

    #[test]
    fn one_snapshot_folds_in_time_order() {
        // Half-life 10 days, cutoff 2026-01-21 (day 20): +10 at day 0, +10 at day 10 -> 7.5.
        let mut acc = LeadFoldGroups::new(spec("2026-01-20", "2026-01-20", 1, true));
        let rows: [Row; 4] = [
            (10, Some(10.0), Some("crm"), Some(2), None),
            (0, Some(10.0), Some("ads"), Some(1), None),
            (0, Some(4.0), None, None, None),
            (5, None, Some("crm"), Some(1), Some(9.0)),
        ];
        acc.update_batch(&batch(&rows, None), &[0, 0, 1, 1], None, 2)
            .unwrap();
        let out = acc.evaluate(EmitTo::All).unwrap();
        let s0 = snapshots(&out, 0);
        assert_eq!(f64s(&s0, "engagement"), [Some(7.5)]);
        assert_eq!(f64s(&s0, "fit"), [Some(0.0)]);
        assert_eq!(times(&s0, "mql_at"), [Some(T0 + 10 * DAY)]);
        assert_eq!(times(&s0, "cutoff"), [Some(T0 + 20 * DAY)]);
        let products = s0.column_by_name("products").unwrap().as_list::<i32>();
        let names = products.value(0);
        let names = names.as_string::<i32>();
        assert_eq!((names.value(0), names.value(1)), ("ads", "crm"));
        // ads: 10 at day 0 -> 2.5 at day 20; crm: 10 at day 10 -> 5 at day 20.
        let scores = s0
            .column_by_name("product_scores")
            .unwrap()
            .as_list::<i32>();
        assert_eq!(
            scores.value(0).as_primitive::<Float64Type>().values(),
            &[2.5, 5.0]
        );
        let tallies = s0.column_by_name("tallies").unwrap().as_list::<i32>();
        assert_eq!(
            tallies.value(0).as_primitive::<Int64Type>().values(),
            &[1, 1]
        );
        // Group 1: the unmatched row counts as an event but scores nothing; it carries the NPS.
        let s1 = snapshots(&out, 1);
        assert_eq!(f64s(&s1, "engagement"), [Some(4.0 * 0.25)]);
        assert_eq!(f64s(&s1, "nps"), [Some(9.0)]);
        let unmatched = s1.column_by_name("unmatched").unwrap();
        assert_eq!(unmatched.as_primitive::<Int64Type>().value(0), 1);
        let stage = s1.column_by_name("stage_rank").unwrap();
        assert!(stage.is_null(0), "an unmatched event has no stage");
        assert_eq!(times(&s1, "mql_at"), [None]);
    }

    #[test]
    fn snapshots_equal_separate_runs() {
        let rows: [Row; 6] = [
            (0, Some(10.0), Some("crm"), Some(1), None),
            (3, None, None, None, Some(4.0)),
            (7, Some(-2.0), None, None, None),
            (7, Some(6.0), Some("crm"), Some(2), None),
            (15, Some(10.0), Some("ads"), Some(1), Some(10.0)),
            (40, Some(1.0), None, None, None),
        ];
        let mut values = batch(&rows, None);
        values[5] = rules(&[(None, None, 2.0), (Some(10), Some(20), 3.0)], rows.len());
        let groups = [0; 6];
        let mut many = LeadFoldGroups::new(spec("2026-01-01", "2026-02-20", 7, true));
        many.update_batch(&values, &groups, None, 1).unwrap();
        let all = snapshots(&many.evaluate(EmitTo::All).unwrap(), 0);
        let days = Snapshots {
            from: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            to: NaiveDate::from_ymd_opt(2026, 2, 20).unwrap(),
            every_days: 7,
        }
        .days();
        assert_eq!(all.len(), days.len());
        for (k, day) in days.iter().enumerate() {
            let mut one = LeadFoldGroups::new(spec(&day.to_string(), &day.to_string(), 1, true));
            one.update_batch(&values, &groups, None, 1).unwrap();
            let single = snapshots(&one.evaluate(EmitTo::All).unwrap(), 0);
            assert_eq!(all.slice(k, 1), single, "snapshot {day}");
        }
    }

    #[test]
    fn a_lead_appears_from_its_first_event_unless_it_is_listed() {
        let rows: [Row; 1] = [(10, None, None, None, None)];
        let mut acc = LeadFoldGroups::new(spec("2026-01-01", "2026-01-31", 5, false));
        acc.update_batch(&batch(&rows, None), &[0], None, 1)
            .unwrap();
        let s = snapshots(&acc.evaluate(EmitTo::All).unwrap(), 0);
        let as_of = s
            .column_by_name("as_of")
            .unwrap()
            .as_primitive::<datafusion::arrow::datatypes::Date32Type>();
        // Snapshots on days 0, 5, 10, ... 30: the event at day 10 is before the cutoff of day 10.
        assert_eq!(as_of.len(), 5);
        assert_eq!(
            as_of.value(0),
            epoch_days(NaiveDate::from_ymd_opt(2026, 1, 11).unwrap())
        );
        // A leads-table row (null ts, a fit) makes the lead appear in every snapshot.
        let mut listed = LeadFoldGroups::new(spec("2026-01-01", "2026-01-31", 5, false));
        let mut values = batch(&rows, Some(7.0));
        values[0] =
            Arc::new(TimestampMicrosecondArray::from(vec![None::<i64>]).with_timezone("UTC"));
        listed.update_batch(&values, &[0], None, 1).unwrap();
        let s = snapshots(&listed.evaluate(EmitTo::All).unwrap(), 0);
        assert_eq!(f64s(&s, "engagement"), [Some(0.0); 7]);
        assert_eq!(f64s(&s, "fit"), [Some(7.0); 7]);
        let matched = s.column_by_name("matched").unwrap();
        assert_eq!(matched.as_primitive::<Int64Type>().values(), &[0; 7]);
    }

    #[test]
    fn mql_at_follows_the_fit_of_each_snapshot() {
        // 5 at day 0, 5 more at day 1, threshold 15, no decay. Fit 6 always, +4 for cutoffs
        // from day 5 to day 8: snapshots at days 0, 3, 6, 9 (cutoffs 1, 4, 7, 10) have fits
        // 6, 6, 10, 6. Fit 10 crosses at day 0 (10 + 5), fit 6 at day 1 (6 + 10).
        let rows: [Row; 2] = [
            (0, Some(5.0), None, None, None),
            (1, Some(5.0), None, None, None),
        ];
        let mut values = batch(&rows, None);
        values[5] = rules(&[(None, None, 6.0), (Some(5), Some(8), 4.0)], 2);
        let mut p = spec("2026-01-01", "2026-01-10", 3, false);
        p.decay = Decay::NONE;
        let mut acc = LeadFoldGroups::new(p);
        acc.update_batch(&values, &[0, 0], None, 1).unwrap();
        let s = snapshots(&acc.evaluate(EmitTo::All).unwrap(), 0);
        assert_eq!(
            f64s(&s, "fit"),
            [Some(6.0), Some(6.0), Some(10.0), Some(6.0)]
        );
        // The first snapshot's cutoff comes before the day-1 event: no crossing yet.
        assert_eq!(
            times(&s, "mql_at"),
            [None, Some(T0 + DAY), Some(T0), Some(T0 + DAY)]
        );
    }

    #[test]
    fn partial_states_merge_to_the_same_result() {
        let rows: [Row; 5] = [
            (0, Some(10.0), Some("crm"), Some(1), None),
            (3, Some(-2.0), None, None, Some(7.0)),
            (10, Some(10.0), Some("crm"), Some(2), None),
            (1, Some(1.0), None, None, None),
            (2, None, None, None, Some(3.0)),
        ];
        let mut values = batch(&rows, None);
        values[5] = rules(&[(None, Some(5), 1.5)], rows.len());
        let groups = [0, 0, 0, 1, 1];
        let params = spec("2026-01-01", "2026-01-20", 3, true);
        let mut whole = LeadFoldGroups::new(params.clone());
        whole.update_batch(&values, &groups, None, 2).unwrap();
        let expected = whole.evaluate(EmitTo::All).unwrap();

        let mut partial = LeadFoldGroups::new(params.clone());
        let first: Vec<ArrayRef> = values.iter().map(|a| a.slice(0, 2)).collect();
        partial.update_batch(&first, &groups[..2], None, 1).unwrap();
        let state_a = partial.state(EmitTo::All).unwrap();
        let rest: Vec<ArrayRef> = values.iter().map(|a| a.slice(2, 3)).collect();
        let state_b = partial.convert_to_state(&rest, None).unwrap();

        let mut merged = LeadFoldGroups::new(params);
        merged.merge_batch(&state_b, &[0, 1, 1], 2).unwrap();
        merged.merge_batch(&state_a, &[0], 2).unwrap();
        assert_eq!(&merged.evaluate(EmitTo::All).unwrap(), &expected);
    }

    #[test]
    fn emit_first_keeps_the_rest() {
        let rows: [Row; 3] = [
            (0, Some(1.0), None, None, None),
            (0, Some(2.0), None, None, None),
            (0, Some(3.0), None, None, None),
        ];
        let mut p = spec("2026-01-05", "2026-01-05", 1, false);
        p.decay = Decay::NONE;
        let mut acc = LeadFoldGroups::new(p);
        acc.update_batch(&batch(&rows, None), &[0, 1, 2], None, 3)
            .unwrap();
        let first = acc.evaluate(EmitTo::First(1)).unwrap();
        assert_eq!(f64s(&snapshots(&first, 0), "engagement"), [Some(1.0)]);
        let rest = acc.evaluate(EmitTo::All).unwrap();
        assert_eq!(f64s(&snapshots(&rest, 1), "engagement"), [Some(3.0)]);
    }

    #[test]
    fn groups_of_several_buckets_come_out_in_order_also_when_emitted_in_parts() {
        // Group g has g % 3 + 1 events of g + 1 points each, arriving last group first and
        // latest event first; no decay, so its engagement is (g % 3 + 1) * (g + 1).
        let groups = 3 * SLOTS + 5;
        let mut rows: Vec<Row> = Vec::new();
        let mut group_of = Vec::new();
        for k in (0..3).rev() {
            for g in (0..groups).rev() {
                if k < g % 3 + 1 {
                    rows.push((k as i64, Some(g as f64 + 1.0), None, None, None));
                    group_of.push(g);
                }
            }
        }
        let mut p = spec("2026-01-05", "2026-01-05", 1, false);
        p.decay = Decay::NONE;
        let mut acc = LeadFoldGroups::new(p);
        acc.update_batch(&batch(&rows, None), &group_of, None, groups)
            .unwrap();
        let engagement = |out: &ArrayRef| -> Vec<f64> {
            (0..out.len())
                .map(|i| f64s(&snapshots(out, i), "engagement")[0].unwrap())
                .collect()
        };
        let expected = |g: usize| ((g % 3 + 1) * (g + 1)) as f64;
        // A whole bucket, then part of one, then the rest.
        let mut done = 0;
        for emit in [EmitTo::First(SLOTS), EmitTo::First(7), EmitTo::All] {
            let out = acc.evaluate(emit).unwrap();
            let got = engagement(&out);
            let want: Vec<f64> = (done..done + got.len()).map(expected).collect();
            assert_eq!(got, want, "groups from {done}");
            done += got.len();
        }
        assert_eq!(done, groups);
    }

    #[test]
    fn product_ids_by_view() {
        let names = [
            "crm",
            "ads",
            "crm",
            "a-long-product-name",
            "a-long-product-name",
            "",
        ];
        let array = StringViewArray::from_iter_values(names);
        let mut products = Products::default();
        let ids: Vec<u32> = (0..names.len())
            .map(|i| products.id_of_view(&array, i))
            .collect();
        assert_eq!(ids, [0, 1, 0, 2, 2, 3]);
        assert_eq!(products.names, ["crm", "ads", "a-long-product-name", ""]);
        // The same names in another array (other buffers) get the same ids.
        let other = StringViewArray::from_iter_values(["a-long-product-name", "ads"]);
        assert_eq!(products.id_of_view(&other, 0), 2);
        assert_eq!(products.id_of_view(&other, 1), 1);
        // Past the names remembered by view, ids still come from the names, twice the same.
        let many: Vec<String> = (0..100).map(|i| format!("p{i}")).collect();
        let array = StringViewArray::from_iter_values(many.iter().chain(many.iter()));
        let ids: Vec<u32> = (0..200).map(|i| products.id_of_view(&array, i)).collect();
        assert_eq!(ids[..100], ids[100..]);
        assert_eq!(products.names[ids[57] as usize], "p57");
        assert!(products.short.len() <= 16);
    }

    #[test]
    fn filtered_rows_and_empty_groups() {
        let rows: [Row; 2] = [
            (0, Some(5.0), None, None, None),
            (1, Some(7.0), None, None, None),
        ];
        let filter = BooleanArray::from(vec![false, true]);
        let mut acc = LeadFoldGroups::new(spec("2026-01-05", "2026-01-05", 1, false));
        acc.update_batch(&batch(&rows, None), &[0, 1], Some(&filter), 3)
            .unwrap();
        let out = acc.evaluate(EmitTo::All).unwrap();
        assert_eq!(snapshots(&out, 0).len(), 0);
        assert_eq!(snapshots(&out, 1).len(), 1);
        assert_eq!(snapshots(&out, 2).len(), 0);
    }

    #[test]
    fn spec_errors_are_plain() {
        assert!(FoldSpec::parse("{}").is_err());
        let bad = r#"{"threshold":1,"floor":0,"decay":{"kind":"none"},"from":"2026-02-01","to":"2026-01-01"}"#;
        assert!(FoldSpec::parse(bad).unwrap_err().contains("no snapshot"));
    }
}
