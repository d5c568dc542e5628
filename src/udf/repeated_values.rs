//! `repeated_values(x)`: the non-null values of `x` that occur more than once, as a sorted list.
//!
//! Finding repeated `event_id`s (SPEC §2.4) with `GROUP BY event_id HAVING count(*) > 1` builds a
//! hash-aggregate group, with its counters, for every one of millions of ids that almost all
//! occur once. This aggregate keeps two plain hash sets instead — values seen, and values seen
//! again — and returns only the second, which is small. Integers (Int64) and text (any string
//! type) are accepted; the result has the argument's type.
//!
//! ```sql
//! select unnest(repeated_values(event_id)) as event_id from events;
//! select repeated_values(x) from (values (1), (2), (1), (null), (null)) t(x);  -- [1]
//! ```

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array, ListArray, StringViewArray};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Int64Type};
use datafusion::common::{HashSet, Result, ScalarValue, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility,
};

const NAME: &str = "repeated_values";

/// The `repeated_values` SQL aggregate.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct RepeatedValuesFunc {
    signature: Signature,
}

impl Default for RepeatedValuesFunc {
    fn default() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

/// `repeated_values` as a registrable function.
pub fn repeated_values_udaf() -> AggregateUDF {
    AggregateUDF::from(RepeatedValuesFunc::default())
}

fn list_of(t: &DataType) -> DataType {
    DataType::List(Arc::new(Field::new_list_field(t.clone(), true)))
}

impl AggregateUDFImpl for RepeatedValuesFunc {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [t] if t.is_integer() => Ok(vec![DataType::Int64]),
            [t] => Ok(vec![super::coerce_text(NAME, t)?]),
            _ => plan_err!("{NAME}(x) takes one argument"),
        }
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(list_of(&arg_types[0]))
    }

    fn is_nullable(&self) -> bool {
        false
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let t = args.input_fields[0].data_type();
        Ok(vec![
            Arc::new(Field::new(format!("{}[seen]", args.name), list_of(t), true)),
            Arc::new(Field::new(
                format!("{}[repeated]", args.name),
                list_of(t),
                true,
            )),
        ])
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(match args.expr_fields[0].data_type() {
            DataType::Int64 => Box::new(Repeated::<i64>::default()),
            _ => Box::new(Repeated::<Box<str>>::default()),
        })
    }
}

/// Values of one type: how to read them from and write them to arrays.
trait Value: Eq + std::hash::Hash + Ord + Clone + std::fmt::Debug + Send + Sync + 'static {
    fn each(array: &ArrayRef, f: impl FnMut(Self));
    fn array(values: Vec<Self>) -> ArrayRef;
    fn bytes(&self) -> usize;
}

impl Value for i64 {
    fn each(array: &ArrayRef, mut f: impl FnMut(Self)) {
        let a = array.as_primitive::<Int64Type>();
        if a.null_count() == 0 {
            a.values().iter().for_each(|v| f(*v));
        } else {
            a.iter().flatten().for_each(f);
        }
    }
    fn array(values: Vec<Self>) -> ArrayRef {
        Arc::new(Int64Array::from(values))
    }
    fn bytes(&self) -> usize {
        size_of::<i64>()
    }
}

impl Value for Box<str> {
    fn each(array: &ArrayRef, mut f: impl FnMut(Self)) {
        if let Ok(a) = super::string_view(array, NAME) {
            a.iter().flatten().for_each(|s| f(s.into()));
        }
    }
    fn array(values: Vec<Self>) -> ArrayRef {
        Arc::new(StringViewArray::from_iter_values(values.iter()))
    }
    fn bytes(&self) -> usize {
        self.len() + size_of::<Box<str>>()
    }
}

/// The two sets.
#[derive(Debug)]
struct Repeated<T: Value> {
    seen: HashSet<T>,
    repeated: HashSet<T>,
    bytes: usize,
}

impl<T: Value> Default for Repeated<T> {
    fn default() -> Self {
        Self {
            seen: HashSet::default(),
            repeated: HashSet::default(),
            bytes: 0,
        }
    }
}

impl<T: Value> Repeated<T> {
    fn see(&mut self, v: T) {
        if self.seen.contains(&v) {
            if !self.repeated.contains(&v) {
                self.bytes += v.bytes();
                self.repeated.insert(v);
            }
        } else {
            self.bytes += v.bytes();
            self.seen.insert(v);
        }
    }

    fn list(values: Vec<T>) -> Result<ArrayRef> {
        let items = T::array(values);
        let field = Arc::new(Field::new_list_field(items.data_type().clone(), true));
        Ok(Arc::new(ListArray::try_new(
            field,
            OffsetBuffer::from_lengths([items.len()]),
            items,
            None,
        )?))
    }

    fn sorted(set: &HashSet<T>) -> Vec<T> {
        let mut v: Vec<T> = set.iter().cloned().collect();
        v.sort_unstable();
        v
    }
}

impl<T: Value> Accumulator for Repeated<T> {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        T::each(&values[0], |v| self.see(v));
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let seen = states[0].as_list::<i32>();
        let repeated = states[1].as_list::<i32>();
        for row in 0..seen.len() {
            if seen.is_valid(row) {
                T::each(&seen.value(row), |v| self.see(v));
            }
            if repeated.is_valid(row) {
                T::each(&repeated.value(row), |v| {
                    if !self.repeated.contains(&v) {
                        self.bytes += v.bytes();
                        self.repeated.insert(v);
                    }
                });
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let seen: Vec<T> = self.seen.drain().collect();
        let repeated: Vec<T> = self.repeated.drain().collect();
        self.bytes = 0;
        Ok(vec![
            ScalarValue::List(Arc::new(Self::list(seen)?.as_list::<i32>().clone())),
            ScalarValue::List(Arc::new(Self::list(repeated)?.as_list::<i32>().clone())),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let repeated = Self::sorted(&self.repeated);
        Ok(ScalarValue::List(Arc::new(
            Self::list(repeated)?.as_list::<i32>().clone(),
        )))
    }

    fn size(&self) -> usize {
        size_of::<Self>()
            + self.bytes
            + (self.seen.capacity() + self.repeated.capacity()) * size_of::<T>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ints(v: &[Option<i64>]) -> ArrayRef {
        Arc::new(Int64Array::from(v.to_vec()))
    }

    fn values(s: ScalarValue) -> Vec<String> {
        let ScalarValue::List(l) = s else {
            panic!("not a list")
        };
        let items = l.value(0);
        (0..items.len())
            .map(|i| datafusion::arrow::util::display::array_value_to_string(&items, i).unwrap())
            .collect()
    }

    #[test]
    fn finds_values_seen_twice_across_batches_and_partials() {
        let mut a = Repeated::<i64>::default();
        a.update_batch(&[ints(&[Some(3), Some(1), None, Some(3)])])
            .unwrap();
        let mut b = Repeated::<i64>::default();
        b.update_batch(&[ints(&[Some(1), Some(7), None])]).unwrap();
        let mut fin = Repeated::<i64>::default();
        for mut part in [a, b] {
            let state: Vec<ArrayRef> = part
                .state()
                .unwrap()
                .iter()
                .map(|s| s.to_array().unwrap())
                .collect();
            fin.merge_batch(&state).unwrap();
        }
        assert_eq!(values(fin.evaluate().unwrap()), ["1", "3"]);
    }

    #[test]
    fn text_values() {
        let mut a = Repeated::<Box<str>>::default();
        let text: ArrayRef = Arc::new(StringViewArray::from(vec![
            Some("e1"),
            None,
            Some("e2"),
            Some("e1"),
            None,
        ]));
        a.update_batch(&[text]).unwrap();
        assert_eq!(values(a.evaluate().unwrap()), ["e1"]);
    }
}
