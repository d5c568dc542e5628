//! `top_lead(score, lead_id)`: the `lead_id` of the row with the highest `score`; among equal
//! scores the smallest `lead_id` (numbers by value, text in byte order), so the answer never
//! depends on the order of the rows. Rows with a null score or a null id are skipped; a group
//! without any other row gives null. Used for an account's `top_lead_id` (docs/scoring.md, "Accounts").
//!
//! ```sql
//! select account_id, top_lead(score, lead_id) from lead_scores group by account_id;
//! select top_lead(s, id) from (values (5.0, 'b'), (7.0, 'c'), (7.0, 'a')) t(s, id);  -- 'a'
//! ```
//!
//! The grouped form keeps one score and one id per group, and compares each row once.

use std::cmp::Ordering;
use std::mem::size_of;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, StringViewArray,
};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float64Type, Int64Type};
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, EmitTo, GroupsAccumulator, Signature, Volatility,
};

use super::{coerce_id, coerce_number, passes};

const NAME: &str = "top_lead";

/// The `top_lead` SQL aggregate.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct TopLeadFunc {
    signature: Signature,
}

impl Default for TopLeadFunc {
    fn default() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

/// `top_lead` as a registrable function.
pub fn top_lead_udaf() -> AggregateUDF {
    AggregateUDF::from(TopLeadFunc::default())
}

/// The type a `lead_id` argument is read as.
fn id_type(t: &DataType) -> Result<DataType> {
    coerce_id(NAME, "lead_id", t)
}

impl AggregateUDFImpl for TopLeadFunc {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [score, id] => Ok(vec![coerce_number(NAME, score)?, id_type(id)?]),
            _ => plan_err!("{NAME}(score, lead_id) takes 2 arguments"),
        }
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types {
            [_, id] => id_type(id),
            _ => plan_err!("{NAME}(score, lead_id) takes 2 arguments"),
        }
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![
            Arc::new(Field::new(
                format!("{}[score]", args.name),
                DataType::Float64,
                true,
            )),
            Arc::new(Field::new(
                format!("{}[id]", args.name),
                args.return_field.data_type().clone(),
                true,
            )),
        ])
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(TopLeadAccumulator {
            inner: TopLeadGroups::new(args.return_field.data_type())?,
        }))
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(TopLeadGroups::new(args.return_field.data_type())?))
    }
}

/// Each group's best id so far.
#[derive(Debug)]
enum Ids {
    Int(Vec<Option<i64>>),
    Text(Vec<Option<String>>),
}

/// The grouped accumulator: per group the best score and its id (None until a row counts).
#[derive(Debug)]
struct TopLeadGroups {
    scores: Vec<f64>,
    ids: Ids,
}

/// Whether `(score, id)` beats `(best, current)`: a higher score, or the same and a smaller id.
fn beats<T: Ord + ?Sized>(score: f64, id: &T, best: f64, current: &T) -> bool {
    match score.partial_cmp(&best) {
        Some(Ordering::Greater) => true,
        Some(Ordering::Equal) => id < current,
        _ => false,
    }
}

impl TopLeadGroups {
    fn new(id_type: &DataType) -> Result<Self> {
        let ids = match id_type {
            DataType::Int64 => Ids::Int(Vec::new()),
            DataType::Utf8View => Ids::Text(Vec::new()),
            other => return plan_err!("{NAME}: unexpected id type {other}"),
        };
        Ok(TopLeadGroups {
            scores: Vec::new(),
            ids,
        })
    }

    fn resize(&mut self, groups: usize) {
        if self.scores.len() < groups {
            self.scores.resize(groups, f64::NAN);
            match &mut self.ids {
                Ids::Int(v) => v.resize(groups, None),
                Ids::Text(v) => v.resize(groups, None),
            }
        }
    }

    /// Offers rows `(scores[i], ids[i])` to groups `group_indices[i]`, skipping nulls and rows
    /// the filter drops.
    fn offer(
        &mut self,
        scores: &Float64Array,
        ids: &ArrayRef,
        group_indices: &[usize],
        filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.resize(total_num_groups);
        let counts = |i: usize| scores.is_valid(i) && ids.is_valid(i) && passes(filter, i);
        match &mut self.ids {
            Ids::Int(best_ids) => {
                let ids = ids.as_primitive::<Int64Type>();
                for (i, &g) in group_indices.iter().enumerate() {
                    if !counts(i) {
                        continue;
                    }
                    let (s, id) = (scores.value(i), ids.value(i));
                    if best_ids[g].is_none_or(|cur| beats(s, &id, self.scores[g], &cur)) {
                        self.scores[g] = s;
                        best_ids[g] = Some(id);
                    }
                }
            }
            Ids::Text(best_ids) => {
                let ids = ids.as_string_view();
                for (i, &g) in group_indices.iter().enumerate() {
                    if !counts(i) {
                        continue;
                    }
                    let (s, id) = (scores.value(i), ids.value(i));
                    match &mut best_ids[g] {
                        Some(cur) => {
                            if beats(s, id, self.scores[g], cur.as_str()) {
                                self.scores[g] = s;
                                cur.clear();
                                cur.push_str(id);
                            }
                        }
                        empty => {
                            self.scores[g] = s;
                            *empty = Some(id.to_string());
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The emitted groups' scores (null where no row counted) and ids.
    fn take(&mut self, emit_to: EmitTo) -> (ArrayRef, ArrayRef) {
        let scores = emit_to.take_needed(&mut self.scores);
        let (present, ids): (Vec<bool>, ArrayRef) = match &mut self.ids {
            Ids::Int(v) => {
                let taken = emit_to.take_needed(v);
                (
                    taken.iter().map(Option::is_some).collect(),
                    Arc::new(Int64Array::from(taken)),
                )
            }
            Ids::Text(v) => {
                let taken = emit_to.take_needed(v);
                (
                    taken.iter().map(Option::is_some).collect(),
                    Arc::new(StringViewArray::from_iter(taken)),
                )
            }
        };
        let scores: Float64Array = scores
            .into_iter()
            .zip(present)
            .map(|(s, p)| p.then_some(s))
            .collect();
        (Arc::new(scores), ids)
    }
}

impl GroupsAccumulator for TopLeadGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        let scores = values[0].as_primitive::<Float64Type>();
        self.offer(
            scores,
            &values[1],
            group_indices,
            opt_filter,
            total_num_groups,
        )
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        Ok(self.take(emit_to).1)
    }

    // The partial state: each group's best score and id.
    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let (scores, ids) = self.take(emit_to);
        Ok(vec![scores, ids])
    }

    // Partial states compete like rows.
    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.update_batch(values, group_indices, None, total_num_groups)
    }

    // Each row as its own group's state; a filtered-out row becomes nulls.
    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        match opt_filter {
            None => Ok(values.to_vec()),
            Some(filter) => {
                let dropped =
                    BooleanArray::from_iter(filter.iter().map(|f| Some(!f.unwrap_or(false))));
                values
                    .iter()
                    .map(|v| Ok(datafusion::arrow::compute::nullif(v, &dropped)?))
                    .collect()
            }
        }
    }

    fn size(&self) -> usize {
        size_of::<Self>()
            + self.scores.capacity() * size_of::<f64>()
            + match &self.ids {
                Ids::Int(v) => v.capacity() * size_of::<Option<i64>>(),
                Ids::Text(v) => {
                    v.capacity() * size_of::<Option<String>>()
                        + v.iter().flatten().map(String::capacity).sum::<usize>()
                }
            }
    }
}

/// `top_lead` over a single group.
#[derive(Debug)]
struct TopLeadAccumulator {
    inner: TopLeadGroups,
}

impl TopLeadAccumulator {
    fn current(&mut self) -> Result<Vec<ScalarValue>> {
        self.inner.resize(1);
        let (scores, ids) = match &self.inner.ids {
            Ids::Int(v) => (
                ScalarValue::Float64(v[0].map(|_| self.inner.scores[0])),
                ScalarValue::Int64(v[0]),
            ),
            Ids::Text(v) => (
                ScalarValue::Float64(v[0].as_ref().map(|_| self.inner.scores[0])),
                ScalarValue::Utf8View(v[0].clone()),
            ),
        };
        Ok(vec![scores, ids])
    }
}

impl Accumulator for TopLeadAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let zeros = super::one_group(values);
        self.inner.update_batch(values, &zeros, None, 1)
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(self.current()?.swap_remove(1))
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        self.current()
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

    fn scores(v: &[Option<f64>]) -> ArrayRef {
        Arc::new(Float64Array::from(v.to_vec()))
    }

    #[test]
    fn highest_score_then_smallest_id() {
        let mut acc = TopLeadGroups::new(&DataType::Utf8View).unwrap();
        let ids: ArrayRef = Arc::new(StringViewArray::from(vec![
            Some("b"),
            Some("c"),
            Some("a"),
            Some("z"),
            None,
            Some("q"),
        ]));
        let s = scores(&[Some(5.0), Some(7.0), Some(7.0), Some(1.0), Some(9.0), None]);
        acc.update_batch(&[s, ids], &[0, 0, 0, 1, 1, 2], None, 3)
            .unwrap();
        let out = acc.evaluate(EmitTo::All).unwrap();
        let out = out.as_string_view();
        assert_eq!(out.value(0), "a");
        assert_eq!(out.value(1), "z", "a null id does not count");
        assert!(out.is_null(2), "a null score does not count");
    }

    #[test]
    fn partial_states_and_filters() {
        let ids: ArrayRef = Arc::new(Int64Array::from(vec![30, 10, 20, 5]));
        let s = scores(&[Some(2.0), Some(1.0), Some(2.0), Some(99.0)]);
        let filter = BooleanArray::from(vec![Some(true), Some(true), Some(true), None]);
        let mut a = TopLeadGroups::new(&DataType::Int64).unwrap();
        a.update_batch(&[s.slice(0, 2), ids.slice(0, 2)], &[0, 0], None, 1)
            .unwrap();
        let b = TopLeadGroups::new(&DataType::Int64).unwrap();
        let direct = b
            .convert_to_state(&[s.slice(2, 2), ids.slice(2, 2)], Some(&filter.slice(2, 2)))
            .unwrap();
        let mut merged = TopLeadGroups::new(&DataType::Int64).unwrap();
        merged.merge_batch(&direct, &[0, 0], 1).unwrap();
        merged
            .merge_batch(&a.state(EmitTo::All).unwrap(), &[0], 1)
            .unwrap();
        let out = merged.evaluate(EmitTo::All).unwrap();
        // 99 was filtered out; 2.0 ties between 30 and 20: the smaller id wins.
        assert_eq!(out.as_primitive::<Int64Type>().value(0), 20);
    }

    #[test]
    fn one_group_accumulator() {
        let mut acc = TopLeadAccumulator {
            inner: TopLeadGroups::new(&DataType::Int64).unwrap(),
        };
        assert_eq!(acc.evaluate().unwrap(), ScalarValue::Int64(None));
        let ids: ArrayRef = Arc::new(Int64Array::from(vec![3, 1]));
        acc.update_batch(&[scores(&[Some(1.0), Some(1.0)]), ids])
            .unwrap();
        assert_eq!(acc.evaluate().unwrap(), ScalarValue::Int64(Some(1)));
    }
}
