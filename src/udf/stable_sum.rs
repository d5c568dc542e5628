//! `stable_sum(x)`: the sum of floats in an order fixed by the values themselves, so the result
//! is the same bit for bit however the rows were split across partitions and batches (the
//! built-in `sum` adds in arrival order, which depends on scheduling). Used for account scores.
//! Nulls are skipped; a group with no values gives null, like `sum`.
//!
//! ```sql
//! select stable_sum(x) from (values (0.1), (0.2), (0.3)) t(x);   -- 0.6000000000000001
//! ```
//!
//! The values are kept and sorted (by magnitude, then sign) before they are added, which also
//! makes the sum more accurate. Meant for groups of modest size, such as an account's leads.

use std::mem::size_of;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, ListArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float64Type};
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility,
};
use std::sync::Arc;

use super::coerce_number;

/// The `stable_sum` SQL aggregate.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct StableSumFunc {
    signature: Signature,
}

impl Default for StableSumFunc {
    fn default() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

/// `stable_sum` as a registrable function.
pub fn stable_sum_udaf() -> AggregateUDF {
    AggregateUDF::from(StableSumFunc::default())
}

/// Adds values in an order that depends on the values only.
pub fn ordered_sum(values: &mut [f64]) -> f64 {
    values.sort_unstable_by(|a, b| a.abs().total_cmp(&b.abs()).then(a.total_cmp(b)));
    values.iter().sum()
}

impl AggregateUDFImpl for StableSumFunc {
    fn name(&self) -> &str {
        "stable_sum"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [t] => Ok(vec![coerce_number("stable_sum", t)?]),
            _ => plan_err!("stable_sum(x) takes 1 argument"),
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new_list(
            format!("{}[values]", args.name),
            Field::new_list_field(DataType::Float64, true),
            true,
        ))])
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::<StableSumAccumulator>::default())
    }
}

/// Keeps every value of a group until the end.
#[derive(Debug, Default)]
struct StableSumAccumulator {
    values: Vec<f64>,
    seen: bool,
}

impl Accumulator for StableSumAccumulator {
    // Called with each batch of a group's input rows.
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let x = values[0].as_primitive::<Float64Type>();
        self.values.extend(x.iter().flatten());
        self.seen |= x.null_count() < x.len();
        Ok(())
    }

    // The partial state: the values seen so far, as one list.
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let list = ListArray::from_iter_primitive::<Float64Type, _, _>([Some(
            self.values.iter().map(|v| Some(*v)).collect::<Vec<_>>(),
        )]);
        Ok(vec![ScalarValue::List(Arc::new(list))])
    }

    // Merges other partial states (lists of values) into this one.
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let lists = states[0].as_list::<i32>();
        for list in lists.iter().flatten() {
            let x = list.as_primitive::<Float64Type>();
            self.seen |= !x.is_empty();
            self.values.extend(x.iter().flatten());
        }
        Ok(())
    }

    // The sum, in value order; null when no value was seen.
    fn evaluate(&mut self) -> Result<ScalarValue> {
        if !self.seen {
            return Ok(ScalarValue::Float64(None));
        }
        let mut v = self.values.clone();
        Ok(ScalarValue::Float64(Some(ordered_sum(&mut v))))
    }

    fn size(&self) -> usize {
        size_of::<Self>() + self.values.capacity() * size_of::<f64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Float64Array;

    #[test]
    fn order_of_arrival_does_not_matter() {
        let a = ordered_sum(&mut [1e16, 1.0, -1e16, 0.1, 0.2, 0.3]);
        let b = ordered_sum(&mut [0.3, -1e16, 0.2, 1.0, 0.1, 1e16]);
        assert_eq!(a.to_bits(), b.to_bits());
    }

    #[test]
    fn merged_partials_equal_one_pass() {
        let mut one = StableSumAccumulator::default();
        one.update_batch(&[Arc::new(Float64Array::from(vec![0.1, 0.7, 0.2]))])
            .unwrap();
        let mut p1 = StableSumAccumulator::default();
        p1.update_batch(&[Arc::new(Float64Array::from(vec![0.2]))])
            .unwrap();
        let mut p2 = StableSumAccumulator::default();
        p2.update_batch(&[Arc::new(Float64Array::from(vec![0.7, 0.1]))])
            .unwrap();
        let mut merged = StableSumAccumulator::default();
        for mut p in [p2, p1] {
            let state = p.state().unwrap()[0].to_array().unwrap();
            merged.merge_batch(&[state]).unwrap();
        }
        assert_eq!(one.evaluate().unwrap(), merged.evaluate().unwrap());
    }

    #[test]
    fn nulls_only_give_null() {
        let mut acc = StableSumAccumulator::default();
        acc.update_batch(&[Arc::new(Float64Array::from(vec![None, None]))])
            .unwrap();
        assert_eq!(acc.evaluate().unwrap(), ScalarValue::Float64(None));
    }
}
