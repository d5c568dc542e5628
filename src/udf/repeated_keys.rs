//! `repeated_keys(key)`: the keys (integers in 0 ..= 4294967295, as made by `event_key`) that
//! occur more than once among the rows, as a sorted list of bigints; null keys are skipped.
//!
//! ```sql
//! select repeated_keys(k) from (values (5), (7), (5), (null)) t(k);   -- [5]
//! ```
//!
//! It keeps two compressed bitmaps (keys seen, keys seen twice) instead of a table of every key:
//! a few bytes per key, and the partial results of the partitions merge with bitmap operations
//! (seen twice overall = twice in either, or seen in both).

use std::mem::size_of;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array, ListArray};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Int64Type};
use datafusion::common::{DataFusionError, Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility,
};
use roaring::RoaringBitmap;

const NAME: &str = "repeated_keys";

/// The `repeated_keys` SQL aggregate.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct RepeatedKeysFunc {
    signature: Signature,
}

impl Default for RepeatedKeysFunc {
    fn default() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

/// `repeated_keys` as a registrable function.
pub fn repeated_keys_udaf() -> AggregateUDF {
    AggregateUDF::from(RepeatedKeysFunc::default())
}

fn key_list() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::Int64, true)))
}

impl AggregateUDFImpl for RepeatedKeysFunc {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [t] if t.is_integer() || *t == DataType::Null => Ok(vec![DataType::Int64]),
            [other] => plan_err!("{NAME}: key must be an integer, got {other}"),
            _ => plan_err!("{NAME}(key) takes 1 argument"),
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(key_list())
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![
            Arc::new(Field::new(
                format!("{}[seen]", args.name),
                DataType::Binary,
                true,
            )),
            Arc::new(Field::new(
                format!("{}[twice]", args.name),
                DataType::Binary,
                true,
            )),
        ])
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::<RepeatedKeys>::default())
    }
}

/// Keys seen, and keys seen more than once.
#[derive(Debug, Default)]
struct RepeatedKeys {
    seen: RoaringBitmap,
    twice: RoaringBitmap,
}

fn bytes_of(bitmap: &RoaringBitmap) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(bitmap.serialized_size());
    bitmap
        .serialize_into(&mut out)
        .map_err(|e| DataFusionError::Execution(format!("{NAME}: {e}")))?;
    Ok(out)
}

fn bitmap_of(bytes: &[u8]) -> Result<RoaringBitmap> {
    RoaringBitmap::deserialize_from(bytes)
        .map_err(|e| DataFusionError::Execution(format!("{NAME}: a bad partial state: {e}")))
}

impl Accumulator for RepeatedKeys {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let keys = values[0].as_primitive::<Int64Type>();
        for key in keys.iter().flatten() {
            let Ok(key) = u32::try_from(key) else {
                return exec_err!("{NAME}: key {key} is not in 0..=4294967295");
            };
            if !self.seen.insert(key) {
                self.twice.insert(key);
            }
        }
        Ok(())
    }

    // The repeated keys, ascending.
    fn evaluate(&mut self) -> Result<ScalarValue> {
        let keys = Int64Array::from_iter_values(self.twice.iter().map(i64::from));
        let list = ListArray::try_new(
            Arc::new(Field::new_list_field(DataType::Int64, true)),
            OffsetBuffer::from_lengths([keys.len()]),
            Arc::new(keys),
            None,
        )?;
        Ok(ScalarValue::List(Arc::new(list)))
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![
            ScalarValue::Binary(Some(bytes_of(&self.seen)?)),
            ScalarValue::Binary(Some(bytes_of(&self.twice)?)),
        ])
    }

    // Twice overall: twice in either part, or seen in both.
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let (seen, twice) = (states[0].as_binary::<i32>(), states[1].as_binary::<i32>());
        for i in 0..seen.len() {
            if seen.is_null(i) || twice.is_null(i) {
                continue;
            }
            let other_seen = bitmap_of(seen.value(i))?;
            self.twice |= bitmap_of(twice.value(i))?;
            self.twice |= &self.seen & &other_seen;
            self.seen |= other_seen;
        }
        Ok(())
    }

    fn size(&self) -> usize {
        size_of::<Self>() + self.seen.serialized_size() + self.twice.serialized_size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(v: &[Option<i64>]) -> ArrayRef {
        Arc::new(Int64Array::from(v.to_vec()))
    }

    fn result(acc: &mut RepeatedKeys) -> Vec<i64> {
        match acc.evaluate().unwrap() {
            ScalarValue::List(l) => l.value(0).as_primitive::<Int64Type>().values().to_vec(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn repeats_within_and_across_partial_states() {
        let mut a = RepeatedKeys::default();
        a.update_batch(&[keys(&[Some(1), Some(2), Some(2), None, Some(9)])])
            .unwrap();
        let mut b = RepeatedKeys::default();
        b.update_batch(&[keys(&[Some(3), Some(9), None])]).unwrap();
        let mut c = RepeatedKeys::default();
        c.update_batch(&[keys(&[Some(4), Some(4), Some(4)])])
            .unwrap();
        let mut merged = RepeatedKeys::default();
        for mut part in [a, b, c] {
            let state: Vec<ArrayRef> = part
                .state()
                .unwrap()
                .iter()
                .map(|s| s.to_array().unwrap())
                .collect();
            merged.merge_batch(&state).unwrap();
        }
        // 2 twice in one part, 9 once in two parts, 4 three times; 1 and 3 once.
        assert_eq!(result(&mut merged), [2, 4, 9]);
    }

    #[test]
    fn keys_outside_32_bits_are_an_error() {
        let mut acc = RepeatedKeys::default();
        let err = acc.update_batch(&[keys(&[Some(-1)])]).unwrap_err();
        assert!(err.to_string().contains("not in 0..=4294967295"), "{err}");
        assert!(result(&mut RepeatedKeys::default()).is_empty());
    }
}
