//! `event_key(event_id)`: a 32-bit key (0 ..= 4294967295, as a bigint) of an event id, integer or
//! text, the same on every machine and every run. Equal ids have equal keys; different ids
//! share a key rarely (about as often as random 32-bit numbers do), so a key only nominates ids
//! that must then be compared themselves. A null id gives null.
//!
//! `duplicate_events` uses it with `repeated_keys` to find repeated ids without a hash table of
//! every id: first the keys seen more than once, then an exact count of the few ids behind them.
//!
//! ```sql
//! select event_key(42), event_key('evt-42');
//! select e.* from events e join (select unnest(repeated_keys(event_key(event_id))) as key from events) r
//!   on r.key = event_key(e.event_id);
//! ```

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, Int64Array};
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::common::{Result, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::{scalar_or_array, string_view};

const NAME: &str = "event_key";

/// The splitmix64 finalizer: a fixed, well-mixing permutation of 64-bit numbers.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The key of an integer id.
pub fn int_key(id: i64) -> u32 {
    (mix(id as u64) >> 32) as u32
}

/// The key of a text id: FNV-1a over its bytes, then mixed.
pub fn text_key(id: &[u8]) -> u32 {
    let hash = id.iter().fold(0xCBF2_9CE4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3)
    });
    (mix(hash) >> 32) as u32
}

/// The `event_key` SQL function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct EventKeyFunc {
    signature: Signature,
}

impl Default for EventKeyFunc {
    fn default() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

/// `event_key` as a registrable function.
pub fn event_key_udf() -> ScalarUDF {
    ScalarUDF::from(EventKeyFunc::default())
}

impl ScalarUDFImpl for EventKeyFunc {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [t] if t.is_integer() => Ok(vec![DataType::Int64]),
            [DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null] => {
                Ok(vec![DataType::Utf8View])
            }
            [other] => plan_err!("{NAME}: event_id must be an integer or a text, got {other}"),
            _ => plan_err!("{NAME}(event_id) takes 1 argument"),
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let ids = &arrays[0];
        let keys: Int64Array = match ids.data_type() {
            DataType::Int64 => ids
                .as_primitive::<Int64Type>()
                .iter()
                .map(|id| id.map(|id| i64::from(int_key(id))))
                .collect(),
            DataType::Utf8View | DataType::Null => string_view(ids, NAME)?
                .iter()
                .map(|id| id.map(|id| i64::from(text_key(id.as_bytes()))))
                .collect(),
            other => return exec_err!("{NAME}: unexpected type {other}"),
        };
        scalar_or_array(&args.args, Arc::new(keys))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_fixed_and_spread() {
        // Fixed values: the key must not change between versions or machines.
        assert_eq!(int_key(0), (mix(0) >> 32) as u32);
        assert_eq!(text_key(b"evt-1"), text_key(b"evt-1"));
        assert_ne!(text_key(b"evt-1"), text_key(b"evt-2"));
        // 100 000 consecutive ids: about as many shared keys as random numbers would have
        // (expected 100000^2 / 2^33, about 1).
        let mut keys: Vec<u32> = (0..100_000).map(int_key).collect();
        keys.sort_unstable();
        keys.dedup();
        assert!(keys.len() >= 99_990, "{}", keys.len());
    }
}
