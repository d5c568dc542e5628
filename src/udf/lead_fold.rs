//! `lead_fold(ts, points, product, fit, threshold, cutoff, decay_rule, floor)`: the engagement fold
//! of SPEC §4.2–4.4 over one lead's matched events, plus the product-interest folds of §4.3, as
//! one aggregate.
//!
//! Returns a struct:
//! - `engagement`: the fold of all the group's events, decayed up to `cutoff`, never decayed below
//!   `floor` (the model's `floor × threshold`);
//! - `mql_at`: the time of the first event right after which `fit + S >= threshold` (null if
//!   never);
//! - `products`, `product_scores`: for each non-null product of the group's events (sorted by
//!   name), the same fold over that product's events alone, with floor 0.
//!
//! `threshold`, `cutoff`, `decay_rule` (the JSON of the model's `[decay]`, `${decay}` in the
//! queries) and `floor` must be constants; `fit` is the lead's fit score (the same on every row of
//! a group; null counts as 0). Rows whose `ts` or `points` is null are ignored.
//!
//! ```sql
//! select lead_id,
//!        lead_fold(ts, points, product, 0, 100, timestamp '2026-01-31T00:00:00Z',
//!                  '{"kind":"exponential","half_life_days":90}', 50) as fold
//! from matched_events group by lead_id;
//! -- fold['engagement'], fold['mql_at'], fold['products'], fold['product_scores']
//! ```
//!
//! Why an aggregate that sorts for itself: DataFusion does not hand an aggregate its rows in
//! order, and a window function would not spill. A grouped aggregate spills, and this one keeps
//! only 24 bytes per event (group, time, points, product) in flat vectors. At the end it buckets
//! the events by group (a counting sort), sorts each lead's few events by `(ts, points)` — a
//! no-op check when they arrive in order — and folds them. Sorting ties by points makes the
//! float sums depend on the set of events only, so reruns agree bit for bit.

use std::mem::size_of;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, Float64Builder, Int64Builder,
    ListBuilder, StringBuilder, StructArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{
    DataType, Field, FieldRef, Fields, Float64Type, Int64Type, TimeUnit, TimestampMicrosecondType,
};
use datafusion::common::{HashMap, Result, ScalarValue, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, EmitTo, GroupsAccumulator, Signature, Volatility,
};

use super::{coerce_number, coerce_text, literal_arg, literal_f64, literal_micros, literal_text};
use crate::fold::{Crossing, Decay, fold_sorted};

const NAME: &str = "lead_fold";
const NO_PRODUCT: u32 = u32::MAX;

/// The timestamp type of event times and of `mql_at`.
pub fn utc_micros() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn result_fields() -> Fields {
    Fields::from(vec![
        Field::new("engagement", DataType::Float64, false),
        Field::new("mql_at", utc_micros(), true),
        Field::new_list(
            "products",
            Field::new_list_field(DataType::Utf8, true),
            false,
        ),
        Field::new_list(
            "product_scores",
            Field::new_list_field(DataType::Float64, true),
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

/// The constant arguments.
#[derive(Clone, Copy, Debug)]
struct Params {
    threshold: f64,
    cutoff: i64,
    decay: Decay,
    floor: f64,
}

impl Params {
    fn from_args(args: &AccumulatorArgs) -> Result<Params> {
        let threshold = literal_f64(
            &literal_arg(args.exprs, 4, NAME, "threshold")?,
            NAME,
            "threshold",
        )?;
        let cutoff = literal_micros(&literal_arg(args.exprs, 5, NAME, "cutoff")?, NAME, "cutoff")?;
        let rule = literal_text(
            &literal_arg(args.exprs, 6, NAME, "decay rule")?,
            NAME,
            "decay rule",
        )?;
        let decay = Decay::from_json(&rule).map_err(datafusion::common::DataFusionError::Plan)?;
        let floor = literal_f64(&literal_arg(args.exprs, 7, NAME, "floor")?, NAME, "floor")?;
        Ok(Params {
            threshold,
            cutoff,
            decay,
            floor,
        })
    }
}

impl AggregateUDFImpl for LeadFoldFunc {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if arg_types.len() != 8 {
            return plan_err!(
                "lead_fold(ts, points, product, fit, threshold, cutoff, decay_rule, floor) takes 8 arguments"
            );
        }
        let ts = match &arg_types[0] {
            DataType::Timestamp(_, _) | DataType::Null => utc_micros(),
            other => return plan_err!("lead_fold: ts must be a timestamp, got {other}"),
        };
        let cutoff = match &arg_types[5] {
            DataType::Timestamp(_, _) | DataType::Null => utc_micros(),
            other => return plan_err!("lead_fold: cutoff must be a timestamp, got {other}"),
        };
        Ok(vec![
            ts,
            coerce_number(NAME, &arg_types[1])?,
            coerce_text(NAME, &arg_types[2])?,
            coerce_number(NAME, &arg_types[3])?,
            coerce_number(NAME, &arg_types[4])?,
            cutoff,
            coerce_text(NAME, &arg_types[6])?,
            coerce_number(NAME, &arg_types[7])?,
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
            Arc::new(Field::new_list(
                format!("{}[{suffix}]", args.name),
                Field::new_list_field(t, true),
                true,
            ))
        };
        Ok(vec![
            list("ts", DataType::Int64),
            list("points", DataType::Float64),
            list("product", DataType::Utf8),
            Arc::new(Field::new(
                format!("{}[fit]", args.name),
                DataType::Float64,
                true,
            )),
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

/// The events of many groups, one entry per event, in arrival order.
#[derive(Clone, Debug, Default)]
struct Events {
    group: Vec<u32>,
    ts: Vec<i64>,
    points: Vec<f64>,
    product: Vec<u32>,
}

impl Events {
    fn push(&mut self, group: usize, ts: i64, points: f64, product: u32) {
        self.group.push(group as u32);
        self.ts.push(ts);
        self.points.push(points);
        self.product.push(product);
    }

    fn len(&self) -> usize {
        self.group.len()
    }

    /// Removes and returns the events of groups `0..n`; the others' groups shift down by `n`.
    fn split_first(&mut self, n: usize) -> Events {
        let mut taken = Events::default();
        let mut kept = Events::default();
        for i in 0..self.len() {
            let g = self.group[i] as usize;
            if g < n {
                taken.push(g, self.ts[i], self.points[i], self.product[i]);
            } else {
                kept.push(g - n, self.ts[i], self.points[i], self.product[i]);
            }
        }
        *self = kept;
        taken
    }

    /// Event indices bucketed by group: `order[start[g]..start[g + 1]]` are group g's events,
    /// in arrival order.
    fn by_group(&self, groups: usize) -> (Vec<usize>, Vec<u32>) {
        let mut start = vec![0usize; groups + 1];
        for &g in &self.group {
            start[g as usize + 1] += 1;
        }
        for g in 0..groups {
            start[g + 1] += start[g];
        }
        let mut next = start.clone();
        let mut order = vec![0u32; self.len()];
        for (i, &g) in self.group.iter().enumerate() {
            order[next[g as usize]] = i as u32;
            next[g as usize] += 1;
        }
        (start, order)
    }

    fn bytes(&self) -> usize {
        self.group.capacity() * size_of::<u32>()
            + self.ts.capacity() * size_of::<i64>()
            + self.points.capacity() * size_of::<f64>()
            + self.product.capacity() * size_of::<u32>()
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

/// The grouped accumulator behind `lead_fold`.
#[derive(Clone, Debug)]
pub struct LeadFoldGroups {
    params: Params,
    events: Events,
    fit: Vec<f64>,
    products: Products,
}

impl LeadFoldGroups {
    fn new(params: Params) -> Self {
        Self {
            params,
            events: Events::default(),
            fit: Vec::new(),
            products: Products::default(),
        }
    }

    fn take(&mut self, emit_to: EmitTo) -> (Events, Vec<f64>) {
        match emit_to {
            EmitTo::All => (
                std::mem::take(&mut self.events),
                std::mem::take(&mut self.fit),
            ),
            EmitTo::First(n) => {
                let fit = self.fit.drain(..n).collect();
                (self.events.split_first(n), fit)
            }
        }
    }

    /// Folds every group of `events` into the result struct.
    fn finish(&self, events: &Events, fit: &[f64]) -> Result<ArrayRef> {
        let groups = fit.len();
        let (start, order) = events.by_group(groups);
        let mut engagement = Float64Builder::with_capacity(groups);
        let mut mql_at = Vec::with_capacity(groups);
        let mut products = ListBuilder::new(StringBuilder::new());
        let mut product_scores = ListBuilder::new(Float64Builder::new());

        let mut lead: Vec<(i64, f64, u32)> = Vec::new();
        let (mut ts, mut pts) = (Vec::new(), Vec::new());
        let mut seen_products: Vec<u32> = Vec::new();
        for g in 0..groups {
            lead.clear();
            lead.extend(order[start[g]..start[g + 1]].iter().map(|&i| {
                let i = i as usize;
                (events.ts[i], events.points[i], events.product[i])
            }));
            if !lead.windows(2).all(|w| event_le(&w[0], &w[1])) {
                lead.sort_unstable_by(|a, b| {
                    a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)).then(a.2.cmp(&b.2))
                });
            }
            ts.clear();
            pts.clear();
            ts.extend(lead.iter().map(|e| e.0));
            pts.extend(lead.iter().map(|e| e.1));
            let out = fold_sorted(
                &ts,
                &pts,
                &self.params.decay,
                self.params.floor,
                self.params.cutoff,
                Some(Crossing {
                    fit: fit[g],
                    threshold: self.params.threshold,
                }),
            );
            engagement.append_value(out.score);
            mql_at.push(out.crossed_at);

            seen_products.clear();
            seen_products.extend(lead.iter().map(|e| e.2).filter(|p| *p != NO_PRODUCT));
            seen_products.sort_unstable_by(|a, b| {
                self.products.names[*a as usize].cmp(&self.products.names[*b as usize])
            });
            seen_products.dedup();
            for &p in &seen_products {
                ts.clear();
                pts.clear();
                for e in lead.iter().filter(|e| e.2 == p) {
                    ts.push(e.0);
                    pts.push(e.1);
                }
                let score =
                    fold_sorted(&ts, &pts, &self.params.decay, 0.0, self.params.cutoff, None).score;
                products
                    .values()
                    .append_value(&self.products.names[p as usize]);
                product_scores.values().append_value(score);
            }
            products.append(true);
            product_scores.append(true);
        }
        let mql_at = TimestampMicrosecondArray::from(mql_at).with_timezone("UTC");
        let arrays: Vec<ArrayRef> = vec![
            Arc::new(engagement.finish()),
            Arc::new(mql_at),
            Arc::new(products.finish()),
            Arc::new(product_scores.finish()),
        ];
        Ok(Arc::new(StructArray::try_new(
            result_fields(),
            arrays,
            None,
        )?))
    }

    /// The partial state of every group of `events`: its events as lists, and its fit.
    fn state_of(&self, events: &Events, fit: &[f64]) -> Vec<ArrayRef> {
        let groups = fit.len();
        let (start, order) = events.by_group(groups);
        let mut ts = ListBuilder::new(Int64Builder::with_capacity(events.len()));
        let mut pts = ListBuilder::new(Float64Builder::with_capacity(events.len()));
        let mut prod = ListBuilder::new(StringBuilder::new());
        for g in 0..groups {
            for &i in &order[start[g]..start[g + 1]] {
                let i = i as usize;
                ts.values().append_value(events.ts[i]);
                pts.values().append_value(events.points[i]);
                match events.product[i] {
                    NO_PRODUCT => prod.values().append_null(),
                    p => prod.values().append_value(&self.products.names[p as usize]),
                }
            }
            ts.append(true);
            pts.append(true);
            prod.append(true);
        }
        vec![
            Arc::new(ts.finish()),
            Arc::new(pts.finish()),
            Arc::new(prod.finish()),
            Arc::new(Float64Array::from(fit.to_vec())),
        ]
    }

    fn ensure_groups(&mut self, total_num_groups: usize) {
        if self.fit.len() < total_num_groups {
            self.fit.resize(total_num_groups, 0.0);
        }
    }
}

#[inline]
fn event_le(a: &(i64, f64, u32), b: &(i64, f64, u32)) -> bool {
    a.0 < b.0 || (a.0 == b.0 && a.1.total_cmp(&b.1).then(a.2.cmp(&b.2)).is_le())
}

fn keep(filter: Option<&BooleanArray>, i: usize) -> bool {
    filter.is_none_or(|f| f.is_valid(i) && f.value(i))
}

impl GroupsAccumulator for LeadFoldGroups {
    // Appends each kept row's event to its group; rows without ts or points add nothing.
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.ensure_groups(total_num_groups);
        let ts = values[0].as_primitive::<TimestampMicrosecondType>();
        let points = values[1].as_primitive::<Float64Type>();
        let product = super::string_view(&values[2], NAME)?;
        let fit = values[3].as_primitive::<Float64Type>();
        for (i, &g) in group_indices.iter().enumerate() {
            if !keep(opt_filter, i) {
                continue;
            }
            if fit.is_valid(i) {
                self.fit[g] = fit.value(i);
            }
            if ts.is_null(i) || points.is_null(i) {
                continue;
            }
            let p = if product.is_valid(i) {
                self.products.id(product.value(i))
            } else {
                NO_PRODUCT
            };
            self.events.push(g, ts.value(i), points.value(i), p);
        }
        Ok(())
    }

    // The result struct for the emitted groups, in group order; their events are released.
    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let (events, fit) = self.take(emit_to);
        self.finish(&events, &fit)
    }

    // The emitted groups' events as lists (ts, points, product) plus their fit.
    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let (events, fit) = self.take(emit_to);
        Ok(self.state_of(&events, &fit))
    }

    // Appends the events of partial states to their groups.
    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.ensure_groups(total_num_groups);
        let ts = values[0].as_list::<i32>();
        let points = values[1].as_list::<i32>();
        let product = values[2].as_list::<i32>();
        let fit = values[3].as_primitive::<Float64Type>();
        let ts_values = ts.values().as_primitive::<Int64Type>();
        let point_values = points.values().as_primitive::<Float64Type>();
        let product_values = product.values().as_string::<i32>();
        for (row, &g) in group_indices.iter().enumerate() {
            if fit.is_valid(row) && fit.value(row) != 0.0 {
                self.fit[g] = fit.value(row);
            }
            if ts.is_null(row) {
                continue;
            }
            let offsets = ts.value_offsets();
            for j in offsets[row] as usize..offsets[row + 1] as usize {
                let p = if product_values.is_valid(j) {
                    self.products.id(product_values.value(j))
                } else {
                    NO_PRODUCT
                };
                self.events
                    .push(g, ts_values.value(j), point_values.value(j), p);
            }
        }
        Ok(())
    }

    // Each row as its own group's state: a one-event list (or an empty one).
    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let ts = values[0].as_primitive::<TimestampMicrosecondType>();
        let points = values[1].as_primitive::<Float64Type>();
        let product = super::string_view(&values[2], NAME)?;
        let fit = values[3].as_primitive::<Float64Type>();
        let rows = ts.len();
        let mut ts_out = ListBuilder::new(Int64Builder::with_capacity(rows));
        let mut pts_out = ListBuilder::new(Float64Builder::with_capacity(rows));
        let mut prod_out = ListBuilder::new(StringBuilder::new());
        let mut fit_out = Float64Builder::with_capacity(rows);
        for i in 0..rows {
            let kept = keep(opt_filter, i);
            if kept && ts.is_valid(i) && points.is_valid(i) {
                ts_out.values().append_value(ts.value(i));
                pts_out.values().append_value(points.value(i));
                if product.is_valid(i) {
                    prod_out.values().append_value(product.value(i));
                } else {
                    prod_out.values().append_null();
                }
            }
            ts_out.append(true);
            pts_out.append(true);
            prod_out.append(true);
            fit_out.append_value(if kept && fit.is_valid(i) {
                fit.value(i)
            } else {
                0.0
            });
        }
        Ok(vec![
            Arc::new(ts_out.finish()),
            Arc::new(pts_out.finish()),
            Arc::new(prod_out.finish()),
            Arc::new(fit_out.finish()),
        ])
    }

    fn size(&self) -> usize {
        size_of::<Self>()
            + self.events.bytes()
            + self.fit.capacity() * size_of::<f64>()
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
}

impl Accumulator for LeadFoldAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let zeros = Self::zeros(values);
        self.inner.update_batch(values, &zeros, None, 1)
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let mut fit = self.inner.fit.clone();
        fit.resize(1, 0.0);
        let out = self.inner.finish(&self.inner.events, &fit)?;
        ScalarValue::try_from_array(&out, 0)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let mut fit = self.inner.fit.clone();
        fit.resize(1, 0.0);
        self.inner
            .state_of(&self.inner.events, &fit)
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
    use datafusion::arrow::array::{StringViewArray, TimestampMicrosecondArray};

    const DAY: i64 = 86_400_000_000;

    fn params() -> Params {
        Params {
            threshold: 15.0,
            cutoff: 20 * DAY,
            decay: Decay {
                kind: DecayKind::Exponential {
                    half_life_days: 10.0,
                },
                grace_days: 0.0,
            },
            floor: 0.0,
        }
    }

    fn batch(ts: Vec<i64>, points: Vec<Option<f64>>, product: Vec<Option<&str>>) -> Vec<ArrayRef> {
        let n = ts.len();
        vec![
            Arc::new(TimestampMicrosecondArray::from(ts).with_timezone("UTC")),
            Arc::new(Float64Array::from(points)),
            Arc::new(StringViewArray::from(product)),
            Arc::new(Float64Array::from(vec![0.0; n])),
        ]
    }

    fn field<'a>(out: &'a ArrayRef, name: &str) -> &'a ArrayRef {
        out.as_struct().column_by_name(name).unwrap()
    }

    #[test]
    fn folds_each_group_in_time_order() {
        let mut acc = LeadFoldGroups::new(params());
        // Group 0 arrives out of order; group 1 has a null-points row that must be ignored.
        let values = batch(
            vec![10 * DAY, 0, 0, 5 * DAY],
            vec![Some(10.0), Some(10.0), Some(4.0), None],
            vec![Some("crm"), Some("ads"), None, Some("crm")],
        );
        acc.update_batch(&values, &[0, 0, 1, 1], None, 2).unwrap();
        let out = acc.evaluate(EmitTo::All).unwrap();
        let engagement = field(&out, "engagement").as_primitive::<Float64Type>();
        assert_eq!(engagement.value(0), 7.5);
        assert_eq!(engagement.value(1), 4.0 * 0.25);
        let mql = field(&out, "mql_at").as_primitive::<TimestampMicrosecondType>();
        assert_eq!(mql.value(0), 10 * DAY);
        assert!(mql.is_null(1));
        let products = field(&out, "products").as_list::<i32>();
        let names = products.value(0);
        let names = names.as_string::<i32>();
        assert_eq!((names.value(0), names.value(1)), ("ads", "crm"));
        let scores = field(&out, "product_scores").as_list::<i32>().value(0);
        let scores = scores.as_primitive::<Float64Type>();
        // ads: 10 at day 0 -> 2.5 at day 20; crm: 10 at day 10 -> 5 at day 20.
        assert_eq!((scores.value(0), scores.value(1)), (2.5, 5.0));
        assert_eq!(products.value(1).len(), 0);
    }

    #[test]
    fn partial_states_merge_to_the_same_result() {
        let values = batch(
            vec![0, 3 * DAY, 10 * DAY, DAY],
            vec![Some(10.0), Some(-2.0), Some(10.0), Some(1.0)],
            vec![Some("crm"), None, Some("crm"), None],
        );
        let groups = [0, 0, 0, 1];
        let mut one = LeadFoldGroups::new(params());
        one.update_batch(&values, &groups, None, 2).unwrap();
        let expected = one.evaluate(EmitTo::All).unwrap();

        // Split the rows over two partial accumulators, one of them via convert_to_state.
        let mut partial = LeadFoldGroups::new(params());
        let first: Vec<ArrayRef> = values.iter().map(|a| a.slice(0, 2)).collect();
        partial.update_batch(&first, &groups[..2], None, 1).unwrap();
        let state_a = partial.state(EmitTo::All).unwrap();
        let rest: Vec<ArrayRef> = values.iter().map(|a| a.slice(2, 2)).collect();
        let state_b = partial.convert_to_state(&rest, None).unwrap();

        let mut merged = LeadFoldGroups::new(params());
        merged.merge_batch(&state_b, &[0, 1], 2).unwrap();
        merged.merge_batch(&state_a, &[0], 2).unwrap();
        assert_eq!(&merged.evaluate(EmitTo::All).unwrap(), &expected);
    }

    #[test]
    fn emit_first_keeps_the_rest() {
        let values = batch(
            vec![0, 0, 0],
            vec![Some(1.0), Some(2.0), Some(3.0)],
            vec![None, None, None],
        );
        let mut acc = LeadFoldGroups::new(Params {
            decay: Decay::NONE,
            ..params()
        });
        acc.update_batch(&values, &[0, 1, 2], None, 3).unwrap();
        let first = acc.evaluate(EmitTo::First(1)).unwrap();
        assert_eq!(
            field(&first, "engagement")
                .as_primitive::<Float64Type>()
                .values(),
            &[1.0]
        );
        let rest = acc.evaluate(EmitTo::All).unwrap();
        assert_eq!(
            field(&rest, "engagement")
                .as_primitive::<Float64Type>()
                .values(),
            &[2.0, 3.0]
        );
    }

    #[test]
    fn filter_and_empty_groups() {
        let values = batch(vec![0, DAY], vec![Some(5.0), Some(7.0)], vec![None, None]);
        let filter = BooleanArray::from(vec![false, true]);
        let mut acc = LeadFoldGroups::new(Params {
            decay: Decay::NONE,
            ..params()
        });
        acc.update_batch(&values, &[0, 1], Some(&filter), 3)
            .unwrap();
        let out = acc.evaluate(EmitTo::All).unwrap();
        assert_eq!(
            field(&out, "engagement")
                .as_primitive::<Float64Type>()
                .values(),
            &[0.0, 7.0, 0.0]
        );
    }
}
