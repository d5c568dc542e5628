//! `event_key(event_id)`: a 64-bit number standing for an `event_id`, so that duplicate detection
//! can work on numbers whatever the id's type. An integer id is its own key (two ids share a key
//! only when they are equal); a text id is hashed (two different texts share a key with a
//! probability of about 2^-64, and the queries recheck every shared key on the ids themselves).
//! A null id has a null key.
//!
//! ```sql
//! select event_key(42);              -- 42
//! select event_key('evt-0001') = event_key('evt-0001');  -- true
//! select event_key(cast(null as bigint));                -- null
//! ```

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array};
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::common::{Result, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::{coerce_id, scalar_or_array, string_view};

const NAME: &str = "event_key";

/// The key of a text id: a 64-bit hash of its bytes, the same in every process and build.
pub fn text_key(bytes: &[u8]) -> i64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h = (bytes.len() as u64).wrapping_mul(K) ^ 0x2545_F491_4F6C_DD1D;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let word = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        h = mix(h ^ word.wrapping_mul(K));
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut last = [0u8; 8];
        last[..rest.len()].copy_from_slice(rest);
        h = mix(h ^ u64::from_le_bytes(last).wrapping_mul(K));
    }
    mix(h) as i64
}

/// A full-avalanche 64-bit finaliser (every input bit flips each output bit with probability ½).
fn mix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    h ^= h >> 33;
    h = h.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
    h ^ (h >> 33)
}

/// The keys of an array of ids (Int64 or Utf8View, as [`coerce_id`](super::coerce_id) made them).
pub(crate) fn keys(ids: &ArrayRef, function: &str) -> Result<Int64Array> {
    match ids.data_type() {
        DataType::Int64 => Ok(ids.as_primitive::<Int64Type>().clone()),
        DataType::Null => Ok(Int64Array::new_null(ids.len())),
        _ => {
            let text = string_view(ids, function)?;
            Ok(text
                .iter()
                .map(|t| t.map(|t| text_key(t.as_bytes())))
                .collect())
        }
    }
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
            [t] => Ok(vec![coerce_id(NAME, "event_id", t)?]),
            _ => plan_err!("{NAME}(event_id) takes 1 argument"),
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let ids = ColumnarValue::values_to_arrays(&args.args)?;
        let out = keys(&ids[0], NAME)?;
        scalar_or_array(&args.args, Arc::new(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::StringViewArray;

    #[test]
    fn integer_ids_are_their_own_keys() {
        let ids: ArrayRef = Arc::new(Int64Array::from(vec![Some(7), None, Some(-3)]));
        let k = keys(&ids, NAME).unwrap();
        assert_eq!(k, Int64Array::from(vec![Some(7), None, Some(-3)]));
    }

    #[test]
    fn text_ids_hash_stably() {
        let ids: ArrayRef = Arc::new(StringViewArray::from(vec![
            Some("evt-1"),
            Some("evt-2"),
            None,
            Some("evt-1"),
            Some("a much longer event identifier, past sixteen bytes"),
        ]));
        let k = keys(&ids, NAME).unwrap();
        assert_eq!(k.value(0), k.value(3));
        assert_ne!(k.value(0), k.value(1));
        assert!(k.is_null(2));
        // The same in every process: a fixed function of the bytes.
        assert_eq!(k.value(0), text_key(b"evt-1"));
        assert_ne!(text_key(b""), text_key(b"\0"));
        assert_ne!(text_key(b"ab"), text_key(b"ba"));
    }

    #[test]
    fn few_collisions_over_many_ids() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..200_000 {
            assert!(seen.insert(text_key(format!("evt-{i}").as_bytes())));
        }
    }
}
