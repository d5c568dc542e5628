//! `lead_fold(ts, points, product, stage_rank, nps, fits, spec)`: everything SPEC §4.2–4.6 asks
//! of one lead's events, at one or many snapshot days, in one ordered pass.
//!
//! Every row is one good event of the group's lead: `points` is its points when it matched a rule
//! and null when it did not; `product` its product line; `stage_rank` the position (from 1) of its
//! rule's stage, or null; `nps` its answer when it is an `nps_response`, else null. `fits` is the
//! lead's fit score (a number), or the list of the distinct fit scores it has over the snapshots
//! (the fit of a `within_days` rule depends on the cutoff); it is the same on every row of a
//! group, null counts as 0. `spec` is a constant JSON text (`${fold}` in the queries):
//!
//! ```json
//! {"threshold": 100, "floor": 25, "decay": {"kind": "exponential", "half_life_days": 90},
//!  "from": "2026-01-04", "to": "2026-12-27", "every_days": 7, "stages": 3, "products": true}
//! ```
//!
//! Snapshot days are `from`, `from + every_days`, … up to `to`; each snapshot's cutoff is the
//! start of the next day. The result is a struct:
//! - `fits`: the group's fit scores, as given;
//! - `crossings`: for each of them, the time of the first matched event right after which
//!   `fit + S >= threshold`, over all events before the last cutoff (null if never). The `mql_at`
//!   of a snapshot is the crossing of its fit, if it lies before its cutoff;
//! - `snapshots`: one struct per snapshot in which the lead has an event (matched or not) before
//!   the cutoff: `as_of`, `engagement` (the fold decayed to the cutoff, never below `floor`),
//!   `stage_rank` (the furthest stage with a matched event), `tallies` (matched events per stage,
//!   in stage order), `matched`, `unmatched`, `last_activity`, `last_positive_at` (latest matched
//!   event with positive points), `nps` (latest answer; ties: the larger) and, when `products` is
//!   true, `products` with `product_scores` (the same fold per product, floor 0, sorted by name).
//!
//! ```sql
//! select lead_id,
//!        lead_fold(ts, points, product, stage_rank, null, 0,
//!                  '{"threshold":100,"floor":0,"decay":{"kind":"none"},"from":"2026-01-31",
//!                    "to":"2026-01-31","stages":1,"products":true}') as fold
//! from matched_events group by lead_id;
//! -- fold['snapshots'][1]['engagement'], fold['crossings'][1], ...
//! ```
//!
//! Why one aggregate that sorts for itself: DataFusion does not hand an aggregate its rows in
//! order, and a window function would not spill. A grouped aggregate spills, and this one keeps
//! about 30 bytes per event in flat vectors. At the end it buckets the events by group (a counting
//! sort), sorts each lead's events by `(ts, points)` — a no-op check when they arrive in order —
//! and walks them once, emitting each snapshot as the walk passes its cutoff: the cost grows with
//! events + leads × snapshots. Sorting ties by points makes float sums depend on the set of events
//! only, so reruns agree bit for bit, and a snapshot's numbers are those of a run at that day.

use std::mem::size_of;
use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Float64Array, Float64Builder, Int64Array,
    Int64Builder, ListArray, ListBuilder, StringBuilder, StructArray, TimestampMicrosecondArray,
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

use super::{coerce_number, coerce_text, literal_arg, literal_text};
use crate::fold::{Decay, Folder, Snapshots, epoch_days};

const NAME: &str = "lead_fold";
const NO_PRODUCT: u32 = u32::MAX;
const SPEC_ARG: usize = 6;

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
        }
    }

    /// The JSON form used inside SQL.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a fold spec always serializes")
    }

    fn parse(text: &str) -> std::result::Result<Params, String> {
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
        })
    }
}

/// The parsed constant arguments.
#[derive(Clone, Debug)]
struct Params {
    threshold: f64,
    floor: f64,
    decay: Decay,
    /// Snapshot days (Date32) and their cutoffs (µs), ascending.
    as_of: Vec<i32>,
    cutoffs: Vec<i64>,
    stages: usize,
    products: bool,
}

impl Params {
    fn from_args(args: &AccumulatorArgs) -> Result<Params> {
        let text = literal_text(
            &literal_arg(args.exprs, SPEC_ARG, NAME, "spec")?,
            NAME,
            "spec",
        )?;
        FoldSpec::parse(&text).map_err(|e| DataFusionError::Plan(format!("{NAME}: {e}")))
    }
}

fn list_of(t: DataType) -> DataType {
    DataType::List(Arc::new(Field::new_list_field(t, true)))
}

fn snapshot_fields() -> Fields {
    Fields::from(vec![
        Field::new("as_of", DataType::Date32, false),
        Field::new("engagement", DataType::Float64, false),
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

fn result_fields() -> Fields {
    Fields::from(vec![
        Field::new("fits", list_of(DataType::Float64), false),
        Field::new("crossings", list_of(utc_micros()), false),
        Field::new(
            "snapshots",
            list_of(DataType::Struct(snapshot_fields())),
            false,
        ),
    ])
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
                "lead_fold(ts, points, product, stage_rank, nps, fits, spec) takes 7 arguments"
            );
        }
        let ts = match &arg_types[0] {
            DataType::Timestamp(_, _) | DataType::Null => utc_micros(),
            other => return plan_err!("lead_fold: ts must be a timestamp, got {other}"),
        };
        let stage = match &arg_types[3] {
            t if t.is_integer() || *t == DataType::Null => DataType::Int64,
            other => return plan_err!("lead_fold: stage_rank must be an integer, got {other}"),
        };
        let fits = match &arg_types[5] {
            DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
                coerce_number(NAME, f.data_type())?;
                list_of(DataType::Float64)
            }
            other => coerce_number(NAME, other)?,
        };
        Ok(vec![
            ts,
            coerce_number(NAME, &arg_types[1])?,
            coerce_text(NAME, &arg_types[2])?,
            stage,
            coerce_number(NAME, &arg_types[4])?,
            fits,
            coerce_text(NAME, &arg_types[6])?,
        ])
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Struct(result_fields()))
    }

    fn is_nullable(&self) -> bool {
        false
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let list = |suffix: &str, t: DataType| {
            Arc::new(Field::new(
                format!("{}[{suffix}]", args.name),
                list_of(t),
                true,
            ))
        };
        Ok(vec![
            list("ts", DataType::Int64),
            list("points", DataType::Float64),
            list("product", DataType::Utf8),
            list("stage", DataType::Int64),
            list("nps_ts", DataType::Int64),
            list("nps", DataType::Float64),
            list("fits", DataType::Float64),
        ])
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(LeadFoldAccumulator {
            inner: LeadFoldGroups::new(Params::from_args(&args)?),
        }))
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(LeadFoldGroups::new(Params::from_args(&args)?)))
    }
}

/// Rows of many groups in flat vectors, in arrival order.
trait Rows: Default {
    fn groups(&self) -> &[u32];
    fn move_row(&self, i: usize, new_group: usize, to: &mut Self);

    /// Removes and returns the rows of groups `0..n`; the others' groups shift down by `n`.
    fn split_first(&mut self, n: usize) -> Self {
        let (mut taken, mut kept) = (Self::default(), Self::default());
        for i in 0..self.groups().len() {
            let g = self.groups()[i] as usize;
            if g < n {
                self.move_row(i, g, &mut taken);
            } else {
                self.move_row(i, g - n, &mut kept);
            }
        }
        *self = kept;
        taken
    }

    /// Row indices bucketed by group: `order[start[g]..start[g + 1]]` are group g's rows, in
    /// arrival order.
    fn by_group(&self, groups: usize) -> (Vec<usize>, Vec<u32>) {
        let mut start = vec![0usize; groups + 1];
        for &g in self.groups() {
            start[g as usize + 1] += 1;
        }
        for g in 0..groups {
            start[g + 1] += start[g];
        }
        let mut next = start.clone();
        let mut order = vec![0u32; self.groups().len()];
        for (i, &g) in self.groups().iter().enumerate() {
            order[next[g as usize]] = i as u32;
            next[g as usize] += 1;
        }
        (start, order)
    }
}

/// Matched and unmatched events. `stage` is 0 for none; `points` is NaN-free only when
/// `matched`.
#[derive(Clone, Debug, Default)]
struct Events {
    group: Vec<u32>,
    ts: Vec<i64>,
    points: Vec<f64>,
    product: Vec<u32>,
    stage: Vec<u16>,
    matched: Vec<bool>,
}

impl Events {
    fn push(&mut self, group: usize, e: Event) {
        self.group.push(group as u32);
        self.ts.push(e.ts);
        self.points.push(e.points);
        self.product.push(e.product);
        self.stage.push(e.stage);
        self.matched.push(e.matched);
    }

    fn get(&self, i: usize) -> Event {
        Event {
            ts: self.ts[i],
            points: self.points[i],
            product: self.product[i],
            stage: self.stage[i],
            matched: self.matched[i],
        }
    }

    fn bytes(&self) -> usize {
        self.group.capacity() * size_of::<u32>()
            + self.ts.capacity() * size_of::<i64>()
            + self.points.capacity() * size_of::<f64>()
            + self.product.capacity() * size_of::<u32>()
            + self.stage.capacity() * size_of::<u16>()
            + self.matched.capacity()
    }
}

impl Rows for Events {
    fn groups(&self) -> &[u32] {
        &self.group
    }
    fn move_row(&self, i: usize, new_group: usize, to: &mut Self) {
        to.push(new_group, self.get(i));
    }
}

/// One event of a lead.
#[derive(Clone, Copy, Debug)]
struct Event {
    ts: i64,
    points: f64,
    product: u32,
    stage: u16,
    matched: bool,
}

impl Event {
    /// Time, then matched before unmatched, then points: a fixed order for every tie.
    fn key_cmp(&self, other: &Event) -> std::cmp::Ordering {
        self.ts
            .cmp(&other.ts)
            .then(other.matched.cmp(&self.matched))
            .then(self.points.total_cmp(&other.points))
            .then(self.product.cmp(&other.product))
            .then(self.stage.cmp(&other.stage))
    }
}

/// Net Promoter answers: `(group, ts, value)`.
#[derive(Clone, Debug, Default)]
struct Answers {
    group: Vec<u32>,
    ts: Vec<i64>,
    value: Vec<f64>,
}

impl Answers {
    fn push(&mut self, group: usize, ts: i64, value: f64) {
        self.group.push(group as u32);
        self.ts.push(ts);
        self.value.push(value);
    }

    fn bytes(&self) -> usize {
        self.group.capacity() * (size_of::<u32>() + size_of::<i64>() + size_of::<f64>())
    }
}

impl Rows for Answers {
    fn groups(&self) -> &[u32] {
        &self.group
    }
    fn move_row(&self, i: usize, new_group: usize, to: &mut Self) {
        to.push(new_group, self.ts[i], self.value[i]);
    }
}

/// Product names, interned to small numbers.
#[derive(Clone, Debug, Default)]
struct Products {
    names: Vec<String>,
    ids: HashMap<String, u32>,
}

impl Products {
    fn id(&mut self, name: &str) -> u32 {
        if let Some(id) = self.ids.get(name) {
            return *id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.to_string());
        self.ids.insert(name.to_string(), id);
        id
    }

    fn bytes(&self) -> usize {
        self.names.iter().map(|n| n.capacity() * 2 + 48).sum()
    }
}

/// What the groups of one emission hold.
#[derive(Default)]
struct Taken {
    events: Events,
    answers: Answers,
    fits: Vec<Vec<f64>>,
}

/// The grouped accumulator behind `lead_fold`.
#[derive(Clone, Debug)]
pub struct LeadFoldGroups {
    params: Params,
    events: Events,
    answers: Answers,
    /// Each group's fit scores; empty until a row gives them (then `[0]` is assumed).
    fits: Vec<Vec<f64>>,
    products: Products,
}

/// The fit argument: one number per row, or a list per row.
enum FitsArg<'a> {
    One(&'a Float64Array),
    Many(&'a ListArray),
}

impl<'a> FitsArg<'a> {
    fn new(array: &'a ArrayRef) -> Result<Self> {
        match array.data_type() {
            DataType::Float64 => Ok(FitsArg::One(array.as_primitive::<Float64Type>())),
            DataType::List(_) => Ok(FitsArg::Many(array.as_list::<i32>())),
            other => plan_err!("{NAME}: fits must be a number or a list of numbers, got {other}"),
        }
    }

    /// Row `i`'s fit scores; `None` when the row gives none.
    fn get(&self, i: usize) -> Option<Vec<f64>> {
        match self {
            FitsArg::One(a) => a.is_valid(i).then(|| vec![a.value(i)]),
            FitsArg::Many(l) => {
                if l.is_null(i) {
                    return None;
                }
                let values = l.value(i);
                let values = values.as_primitive::<Float64Type>();
                let fits: Vec<f64> = values.iter().map(|v| v.unwrap_or(0.0)).collect();
                (!fits.is_empty()).then_some(fits)
            }
        }
    }
}

/// The event arguments of one batch, viewed with their types.
struct EventArgs<'a> {
    ts: &'a TimestampMicrosecondArray,
    points: &'a Float64Array,
    product: datafusion::arrow::array::StringViewArray,
    stage: &'a Int64Array,
    nps: &'a Float64Array,
    fits: FitsArg<'a>,
}

impl<'a> EventArgs<'a> {
    fn new(values: &'a [ArrayRef]) -> Result<Self> {
        Ok(EventArgs {
            ts: values[0].as_primitive::<TimestampMicrosecondType>(),
            points: values[1].as_primitive::<Float64Type>(),
            product: super::string_view(&values[2], NAME)?,
            stage: values[3].as_primitive::<Int64Type>(),
            nps: values[4].as_primitive::<Float64Type>(),
            fits: FitsArg::new(&values[5])?,
        })
    }
}

impl LeadFoldGroups {
    fn new(params: Params) -> Self {
        Self {
            params,
            events: Events::default(),
            answers: Answers::default(),
            fits: Vec::new(),
            products: Products::default(),
        }
    }

    fn ensure_groups(&mut self, total_num_groups: usize) {
        if self.fits.len() < total_num_groups {
            self.fits.resize(total_num_groups, Vec::new());
        }
    }

    fn take(&mut self, emit_to: EmitTo) -> Taken {
        match emit_to {
            EmitTo::All => Taken {
                events: std::mem::take(&mut self.events),
                answers: std::mem::take(&mut self.answers),
                fits: std::mem::take(&mut self.fits),
            },
            EmitTo::First(n) => Taken {
                events: self.events.split_first(n),
                answers: self.answers.split_first(n),
                fits: self.fits.drain(..n).collect(),
            },
        }
    }

    fn stage_code(&self, rank: i64) -> u16 {
        if rank >= 1 && (rank as usize) <= self.params.stages {
            rank as u16
        } else {
            0
        }
    }

    /// Adds row `i` of `args` to group `g`.
    fn add_row(&mut self, args: &EventArgs, i: usize, g: usize) {
        if self.fits[g].is_empty()
            && let Some(f) = args.fits.get(i)
        {
            self.fits[g] = f;
        }
        if args.ts.is_null(i) {
            return;
        }
        let ts = args.ts.value(i);
        let matched = args.points.is_valid(i);
        let product = if matched && args.product.is_valid(i) {
            self.products.id(args.product.value(i))
        } else {
            NO_PRODUCT
        };
        let stage = if matched && args.stage.is_valid(i) {
            self.stage_code(args.stage.value(i))
        } else {
            0
        };
        self.events.push(
            g,
            Event {
                ts,
                points: if matched { args.points.value(i) } else { 0.0 },
                product,
                stage,
                matched,
            },
        );
        if args.nps.is_valid(i) {
            self.answers.push(g, ts, args.nps.value(i));
        }
    }

    /// Folds every group of `taken` into the result struct.
    fn finish(&self, taken: &Taken) -> Result<ArrayRef> {
        let groups = taken.fits.len();
        let (start, order) = taken.events.by_group(groups);
        let (answer_start, answer_order) = taken.answers.by_group(groups);
        let mut out = Output::new(&self.params, groups);
        let mut lead: Vec<Event> = Vec::new();
        let mut answers: Vec<(i64, f64)> = Vec::new();
        for g in 0..groups {
            lead.clear();
            lead.extend(
                order[start[g]..start[g + 1]]
                    .iter()
                    .map(|&i| taken.events.get(i as usize)),
            );
            if !lead.windows(2).all(|w| w[0].key_cmp(&w[1]).is_le()) {
                lead.sort_unstable_by(Event::key_cmp);
            }
            answers.clear();
            answers.extend(
                answer_order[answer_start[g]..answer_start[g + 1]]
                    .iter()
                    .map(|&i| {
                        (
                            taken.answers.ts[i as usize],
                            taken.answers.value[i as usize],
                        )
                    }),
            );
            answers.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
            let fits: &[f64] = if taken.fits[g].is_empty() {
                &[0.0]
            } else {
                &taken.fits[g]
            };
            self.walk(&lead, &answers, fits, &mut out);
        }
        out.finish()
    }

    /// One lead: walks its sorted events once, emitting each snapshot as its cutoff passes.
    fn walk(&self, lead: &[Event], answers: &[(i64, f64)], fits: &[f64], out: &mut Output) {
        let p = &self.params;
        // Crossings are found in order of decreasing fit: a higher fit crosses no later.
        let mut by_fit: Vec<usize> = (0..fits.len()).collect();
        by_fit.sort_by(|a, b| fits[*b].total_cmp(&fits[*a]));
        let mut crossings: Vec<Option<i64>> = vec![None; fits.len()];
        let mut next_fit = 0;

        let mut state = LeadState::new(p.stages);
        let (mut i, mut a) = (0, 0);
        let snapshots_before = out.as_of.len();
        for (k, &cutoff) in p.cutoffs.iter().enumerate() {
            while i < lead.len() && lead[i].ts < cutoff {
                let t = lead[i].ts;
                let mut any_matched = false;
                while i < lead.len() && lead[i].ts == t {
                    any_matched |= state.apply(&lead[i], p);
                    i += 1;
                }
                if any_matched {
                    while next_fit < by_fit.len()
                        && fits[by_fit[next_fit]] + state.fold.score >= p.threshold
                    {
                        crossings[by_fit[next_fit]] = Some(t);
                        next_fit += 1;
                    }
                }
            }
            while a < answers.len() && answers[a].0 < cutoff {
                state.nps = Some(answers[a].1);
                a += 1;
            }
            if state.matched + state.unmatched > 0 {
                out.snapshot(p.as_of[k], cutoff, &state, p, &self.products);
            }
        }
        out.lead(fits, &crossings, out.as_of.len() - snapshots_before);
    }
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

    /// Applies one event; true when it was a matched one.
    #[inline]
    fn apply(&mut self, e: &Event, p: &Params) -> bool {
        if !e.matched {
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
struct Output {
    fits: ListBuilder<Float64Builder>,
    crossings: Vec<Option<i64>>,
    crossing_lengths: Vec<usize>,
    snapshot_counts: Vec<usize>,
    as_of: Vec<i32>,
    engagement: Vec<f64>,
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
    fn new(p: &Params, groups: usize) -> Self {
        let rows = groups * p.cutoffs.len().min(4);
        Output {
            fits: ListBuilder::new(Float64Builder::with_capacity(groups)),
            crossings: Vec::with_capacity(groups),
            crossing_lengths: Vec::with_capacity(groups),
            snapshot_counts: Vec::with_capacity(groups),
            as_of: Vec::with_capacity(rows),
            engagement: Vec::with_capacity(rows),
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

    fn snapshot(&mut self, as_of: i32, cutoff: i64, s: &LeadState, p: &Params, names: &Products) {
        self.as_of.push(as_of);
        self.engagement.push(s.fold.at(cutoff, &p.decay, p.floor));
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
                .map(|(id, f)| (*id, f.at(cutoff, &p.decay, 0.0))),
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

    fn lead(&mut self, fits: &[f64], crossings: &[Option<i64>], snapshots: usize) {
        self.fits.values().append_slice(fits);
        self.fits.append(true);
        self.crossings.extend_from_slice(crossings);
        self.crossing_lengths.push(crossings.len());
        self.snapshot_counts.push(snapshots);
    }

    fn finish(mut self) -> Result<ArrayRef> {
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
            Arc::new(Float64Array::from(self.engagement)),
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
        let snapshots = StructArray::try_new(snapshot_fields(), snapshot_columns, None)?;
        let snapshots = ListArray::try_new(
            Arc::new(Field::new_list_field(
                DataType::Struct(snapshot_fields()),
                true,
            )),
            OffsetBuffer::from_lengths(self.snapshot_counts),
            Arc::new(snapshots),
            None,
        )?;
        let crossings = ListArray::try_new(
            Arc::new(Field::new_list_field(utc_micros(), true)),
            OffsetBuffer::from_lengths(self.crossing_lengths),
            micros(self.crossings),
            None,
        )?;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.fits.finish()),
            Arc::new(crossings),
            Arc::new(snapshots),
        ];
        Ok(Arc::new(StructArray::try_new(
            result_fields(),
            columns,
            None,
        )?))
    }
}

impl LeadFoldGroups {
    /// The partial state of every group of `taken`: its events and answers as lists, its fits.
    fn state_of(&self, taken: &Taken) -> Vec<ArrayRef> {
        let groups = taken.fits.len();
        let (start, order) = taken.events.by_group(groups);
        let (answer_start, answer_order) = taken.answers.by_group(groups);
        let events = taken.events.group.len();
        let mut ts = ListBuilder::new(Int64Builder::with_capacity(events));
        let mut pts = ListBuilder::new(Float64Builder::with_capacity(events));
        let mut prod = ListBuilder::new(StringBuilder::new());
        let mut stage = ListBuilder::new(Int64Builder::with_capacity(events));
        let mut nps_ts = ListBuilder::new(Int64Builder::new());
        let mut nps = ListBuilder::new(Float64Builder::new());
        let mut fits = ListBuilder::new(Float64Builder::with_capacity(groups));
        for g in 0..groups {
            for &i in &order[start[g]..start[g + 1]] {
                let e = taken.events.get(i as usize);
                ts.values().append_value(e.ts);
                if e.matched {
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
            }
            for &i in &answer_order[answer_start[g]..answer_start[g + 1]] {
                nps_ts.values().append_value(taken.answers.ts[i as usize]);
                nps.values().append_value(taken.answers.value[i as usize]);
            }
            fits.values().append_slice(&taken.fits[g]);
            for b in [&mut ts, &mut nps_ts, &mut stage] {
                b.append(true);
            }
            for b in [&mut pts, &mut nps, &mut fits] {
                b.append(true);
            }
            prod.append(true);
        }
        vec![
            Arc::new(ts.finish()),
            Arc::new(pts.finish()),
            Arc::new(prod.finish()),
            Arc::new(stage.finish()),
            Arc::new(nps_ts.finish()),
            Arc::new(nps.finish()),
            Arc::new(fits.finish()),
        ]
    }
}

fn keep(filter: Option<&BooleanArray>, i: usize) -> bool {
    filter.is_none_or(|f| f.is_valid(i) && f.value(i))
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
        let args = EventArgs::new(values)?;
        for (i, &g) in group_indices.iter().enumerate() {
            if keep(opt_filter, i) {
                self.add_row(&args, i, g);
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
        Ok(self.state_of(&taken))
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
        let fits = lists[6].values().as_primitive::<Float64Type>();
        let range = |list: &ListArray, row: usize| {
            let o = list.value_offsets();
            o[row] as usize..o[row + 1] as usize
        };
        for (row, &g) in group_indices.iter().enumerate() {
            if self.fits[g].is_empty() {
                self.fits[g] = range(lists[6], row).map(|j| fits.value(j)).collect();
            }
            for j in range(lists[0], row) {
                let matched = points.is_valid(j);
                let product = if product.is_valid(j) {
                    self.products.id(product.value(j))
                } else {
                    NO_PRODUCT
                };
                let stage = if stage.is_valid(j) {
                    self.stage_code(stage.value(j))
                } else {
                    0
                };
                self.events.push(
                    g,
                    Event {
                        ts: ts.value(j),
                        points: if matched { points.value(j) } else { 0.0 },
                        product,
                        stage,
                        matched,
                    },
                );
            }
            for j in range(lists[4], row) {
                self.answers.push(g, nps_ts.value(j), nps.value(j));
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
        let args = EventArgs::new(values)?;
        for i in 0..rows {
            if keep(opt_filter, i) {
                one.add_row(&args, i, i);
            }
        }
        let taken = one.take(EmitTo::All);
        Ok(one.state_of(&taken))
    }

    fn size(&self) -> usize {
        size_of::<Self>()
            + self.events.bytes()
            + self.answers.bytes()
            + self.fits.capacity() * size_of::<Vec<f64>>()
            + self
                .fits
                .iter()
                .map(|f| f.capacity() * size_of::<f64>())
                .sum::<usize>()
            + self.products.bytes()
    }
}

/// `lead_fold` over a single group (no GROUP BY, or engines that do not use the grouped path).
#[derive(Debug)]
struct LeadFoldAccumulator {
    inner: LeadFoldGroups,
}

impl LeadFoldAccumulator {
    fn zeros(values: &[ArrayRef]) -> Vec<usize> {
        vec![0; values.first().map_or(0, |a| a.len())]
    }

    fn snapshot(&self) -> Taken {
        let mut fits = self.inner.fits.clone();
        fits.resize(1, Vec::new());
        Taken {
            events: self.inner.events.clone(),
            answers: self.inner.answers.clone(),
            fits,
        }
    }
}

impl Accumulator for LeadFoldAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let zeros = Self::zeros(values);
        self.inner.update_batch(values, &zeros, None, 1)
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let out = self.inner.finish(&self.snapshot())?;
        ScalarValue::try_from_array(&out, 0)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        self.inner
            .state_of(&self.snapshot())
            .iter()
            .map(|a| ScalarValue::try_from_array(a, 0))
            .collect()
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let zeros = Self::zeros(states);
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

    fn batch(rows: &[Row], fit: f64) -> Vec<ArrayRef> {
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

    fn snapshots(out: &ArrayRef, group: usize) -> StructArray {
        let list = out
            .as_struct()
            .column_by_name("snapshots")
            .unwrap()
            .as_list::<i32>();
        list.value(group).as_struct().clone()
    }

    fn f64s(s: &StructArray, name: &str) -> Vec<Option<f64>> {
        s.column_by_name(name)
            .unwrap()
            .as_primitive::<Float64Type>()
            .iter()
            .collect()
    }

    fn crossings(out: &ArrayRef, group: usize) -> Vec<Option<i64>> {
        let list = out
            .as_struct()
            .column_by_name("crossings")
            .unwrap()
            .as_list::<i32>();
        list.value(group)
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
        acc.update_batch(&batch(&rows, 0.0), &[0, 0, 1, 1], None, 2)
            .unwrap();
        let out = acc.evaluate(EmitTo::All).unwrap();
        let s0 = snapshots(&out, 0);
        assert_eq!(f64s(&s0, "engagement"), [Some(7.5)]);
        assert_eq!(crossings(&out, 0), [Some(T0 + 10 * DAY)]);
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
        assert_eq!(crossings(&out, 1), [None]);
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
        let groups = [0; 6];
        let mut many = LeadFoldGroups::new(spec("2026-01-01", "2026-02-20", 7, true));
        many.update_batch(&batch(&rows, 2.0), &groups, None, 1)
            .unwrap();
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
            one.update_batch(&batch(&rows, 2.0), &groups, None, 1)
                .unwrap();
            let single = snapshots(&one.evaluate(EmitTo::All).unwrap(), 0);
            assert_eq!(all.slice(k, 1), single, "snapshot {day}");
        }
    }

    #[test]
    fn a_lead_appears_from_its_first_event() {
        let rows: [Row; 1] = [(10, None, None, None, None)];
        let mut acc = LeadFoldGroups::new(spec("2026-01-01", "2026-01-31", 5, false));
        acc.update_batch(&batch(&rows, 0.0), &[0], None, 1).unwrap();
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
    }

    #[test]
    fn crossings_per_fit() {
        // 5 at day 0, 5 more at day 1, threshold 15, no decay.
        let rows: [Row; 2] = [
            (0, Some(5.0), None, None, None),
            (1, Some(5.0), None, None, None),
        ];
        let mut values = batch(&rows, 0.0);
        let fits = ListArray::from_iter_primitive::<Float64Type, _, _>(vec![
            Some(vec![
                Some(0.0),
                Some(10.0),
                Some(6.0)
            ]);
            2
        ]);
        values[5] = Arc::new(fits);
        let mut p = spec("2026-01-10", "2026-01-10", 1, false);
        p.decay = Decay::NONE;
        let mut acc = LeadFoldGroups::new(p);
        acc.update_batch(&values, &[0, 0], None, 1).unwrap();
        let out = acc.evaluate(EmitTo::All).unwrap();
        // fit 0 never reaches 15 (10 at most); fit 10 crosses at day 0; fit 6 at day 1.
        assert_eq!(crossings(&out, 0), [None, Some(T0), Some(T0 + DAY)]);
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
        let values = batch(&rows, 1.5);
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
        acc.update_batch(&batch(&rows, 0.0), &[0, 1, 2], None, 3)
            .unwrap();
        let first = acc.evaluate(EmitTo::First(1)).unwrap();
        assert_eq!(f64s(&snapshots(&first, 0), "engagement"), [Some(1.0)]);
        let rest = acc.evaluate(EmitTo::All).unwrap();
        assert_eq!(f64s(&snapshots(&rest, 1), "engagement"), [Some(3.0)]);
    }

    #[test]
    fn filtered_rows_and_empty_groups() {
        let rows: [Row; 2] = [
            (0, Some(5.0), None, None, None),
            (1, Some(7.0), None, None, None),
        ];
        let filter = BooleanArray::from(vec![false, true]);
        let mut acc = LeadFoldGroups::new(spec("2026-01-05", "2026-01-05", 1, false));
        acc.update_batch(&batch(&rows, 0.0), &[0, 1], Some(&filter), 3)
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
