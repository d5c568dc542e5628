//! `rare_key(event_id, lead_id, ts, action, value, value_action [, bound], ...)`: the key a row
//! of the events looks up among the repeated keys (see `rare_events.sql`): null for a row that a
//! check of docs/scoring.md, "Reading the input" may reject, the row's `event_key(event_id)` for any other.
//!
//! A row is suspect when its `lead_id`, `ts` or `action` is null, or when its action is one of
//! the `value_action`s (constant texts: the actions whose `value` is checked) and its value is
//! null or outside 0..bound (as SQL compares: NaN is above every number, -0.0 equals 0). Each
//! value action may be followed by its bound, a constant number (1 when left out: a fraction
//! rule's 0..1; `rare_events.sql` gives `nps_response` 10, an answer's 0..10); an action listed
//! twice must pass both. That is the test
//!
//! ```sql
//! case
//!     when lead_id is null or ts is null or action is null
//!         or (action = 'video_play' and (value is null or value < 0 or value > 1))
//!         or (action = 'nps_response' and (value is null or value < 0 or value > 10))
//!         then null
//!     else event_key(event_id)
//! end
//! ```
//!
//! computed in one pass over the columns' null masks and the string views of the actions.
//!
//! ```sql
//! select rare_key(42, 'L1', now(), 'page_view', null, 'nps_response');         -- 42
//! select rare_key(42, 'L1', now(), 'nps_response', 7.0, 'nps_response');       -- null
//! select rare_key(42, 'L1', now(), 'nps_response', 7.0, 'nps_response', 10);   -- 42
//! select rare_key(42, null, now(), 'page_view', null, 'nps_response');         -- null
//! ```

use std::sync::Arc;

use datafusion::arrow::array::builder::make_view;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array, StringViewArray};
use datafusion::arrow::buffer::{BooleanBuffer, NullBuffer};
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::event_key::keys;
use super::lead_fold::within;
use super::{coerce_id, coerce_number, coerce_text, literal_text, scalar_or_array, string_view};

const NAME: &str = "rare_key";

/// The `rare_key` SQL function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct RareKeyFunc {
    signature: Signature,
}

impl Default for RareKeyFunc {
    fn default() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

/// `rare_key` as a registrable function.
pub fn rare_key_udf() -> ScalarUDF {
    ScalarUDF::from(RareKeyFunc::default())
}

impl ScalarUDFImpl for RareKeyFunc {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if arg_types.len() < 5 {
            return plan_err!(
                "{NAME}(event_id, lead_id, ts, action, value, value_action, ...) takes at least 5 arguments"
            );
        }
        let mut types = vec![
            coerce_id(NAME, "event_id", &arg_types[0])?,
            // Only whether lead_id and ts are null matters: they are read as they are.
            arg_types[1].clone(),
            arg_types[2].clone(),
            coerce_text(NAME, &arg_types[3])?,
            coerce_number(NAME, &arg_types[4])?,
        ];
        for t in &arg_types[5..] {
            types.push(if t.is_numeric() {
                DataType::Float64
            } else {
                coerce_text(NAME, t)?
            });
        }
        Ok(types)
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let mut value_actions: Vec<(String, Option<f64>)> = Vec::new();
        for a in &args.args[5..] {
            match a {
                ColumnarValue::Scalar(ScalarValue::Float64(Some(bound))) => {
                    match value_actions.last_mut() {
                        Some((_, b @ None)) => *b = Some(*bound),
                        _ => {
                            return exec_err!("{NAME}: a bound must follow its value action, once");
                        }
                    }
                }
                ColumnarValue::Scalar(v) => {
                    value_actions.push((literal_text(v, NAME, "each value action")?, None))
                }
                _ => return exec_err!("{NAME}: each value action must be a constant text"),
            }
        }
        let value_actions: Vec<(String, f64)> = value_actions
            .into_iter()
            .map(|(a, bound)| (a, bound.unwrap_or(1.0)))
            .collect();
        let arrays = ColumnarValue::values_to_arrays(&args.args[..5])?;
        let out = rare_keys(&arrays, &value_actions)?;
        scalar_or_array(&args.args[..5], Arc::new(out))
    }
}

/// The keys of a batch: `columns` are event_id, lead_id, ts, action (Utf8View) and value
/// (Float64).
pub(crate) fn rare_keys(
    columns: &[ArrayRef],
    value_actions: &[(String, f64)],
) -> Result<Int64Array> {
    let [event_id, lead_id, ts, action, value] = columns else {
        return exec_err!("{NAME}: expected 5 columns, got {}", columns.len());
    };
    let keys = keys(event_id, NAME)?;
    let action: StringViewArray = string_view(action, NAME)?;
    let value = match value.data_type() {
        DataType::Float64 => value.as_primitive::<Float64Type>().clone(),
        DataType::Null => datafusion::arrow::array::Float64Array::new_null(value.len()),
        other => return exec_err!("{NAME}: expected a number for value, got {other}"),
    };
    let len = keys.len();
    // A row with a null lead_id, ts, action or key is null; NullBuffer::union ands the masks.
    let mut valid = NullBuffer::union(keys.nulls(), lead_id.logical_nulls().as_ref());
    valid = NullBuffer::union(valid.as_ref(), ts.logical_nulls().as_ref());
    valid = NullBuffer::union(valid.as_ref(), action.nulls());
    // Then the value check, for rows whose action is a value action. A null action's row is
    // already null above, so its view (whatever it holds) needs no test of its own.
    let targets: Vec<(ViewTarget, f64)> = value_actions
        .iter()
        .map(|(a, bound)| (ViewTarget::new(a), *bound))
        .collect();
    let views = action.views();
    let values = value.values();
    let value_ok = BooleanBuffer::collect_bool(len, |i| {
        targets
            .iter()
            .filter(|(t, _)| t.matches(&action, views[i], i))
            .all(|(_, bound)| value.is_valid(i) && within(values[i], *bound))
    });
    valid = NullBuffer::union(valid.as_ref(), Some(&NullBuffer::new(value_ok)));
    let valid = valid.filter(|v| v.null_count() > 0);
    Ok(Int64Array::new(keys.values().clone(), valid))
}

/// A text compared with the rows of a string view array by their views: a text of up to 12
/// bytes lies whole in its view (length, then the bytes), so a row equals it when the view's
/// length and those bytes are equal; a longer one is first told apart by its length and 4-byte
/// prefix, and compared in full only when both are equal.
struct ViewTarget {
    view: u128,
    /// The bits of a view that hold the length and, for an inline text, its bytes.
    mask: u128,
    inline: bool,
    text: String,
}

impl ViewTarget {
    fn new(text: &str) -> Self {
        let view = make_view(text.as_bytes(), 0, 0);
        let inline = text.len() <= 12;
        let mask = if inline {
            u128::MAX >> (128 - 32 - 8 * text.len() as u32)
        } else {
            u128::from(u64::MAX)
        };
        ViewTarget {
            view,
            mask,
            inline,
            text: text.to_string(),
        }
    }

    #[inline]
    fn matches(&self, array: &StringViewArray, view: u128, i: usize) -> bool {
        (view ^ self.view) & self.mask == 0 && (self.inline || array.value(i) == self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{
        Float64Array, StringArray, TimestampMicrosecondArray, new_null_array,
    };
    use datafusion::prelude::SessionContext;

    fn actions() -> Vec<(String, f64)> {
        vec![("nps_response".into(), 1.0), ("survey_part".into(), 1.0)]
    }

    #[test]
    fn suspect_rows_have_no_key() {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![
                Some(1),
                Some(2),
                Some(3),
                Some(4),
                Some(5),
                Some(6),
                Some(7),
                Some(8),
                None,
                Some(10),
            ])),
            Arc::new(StringArray::from(vec![
                Some("a"),
                None,
                Some("a"),
                Some("a"),
                Some("a"),
                Some("a"),
                Some("a"),
                Some("a"),
                Some("a"),
                Some("a"),
            ])),
            Arc::new(TimestampMicrosecondArray::from(vec![
                Some(1),
                Some(1),
                None,
                Some(1),
                Some(1),
                Some(1),
                Some(1),
                Some(1),
                Some(1),
                Some(1),
            ])),
            Arc::new(StringViewArray::from(vec![
                Some("page_view"),
                Some("page_view"),
                Some("page_view"),
                None,
                Some("nps_response"),
                Some("nps_response"),
                Some("survey_part"),
                Some("survey_part"),
                Some("page_view"),
                Some("nps_responsf"),
            ])),
            Arc::new(Float64Array::from(vec![
                None,
                None,
                None,
                None,
                Some(7.0),
                Some(1.0),
                None,
                Some(0.0),
                None,
                Some(-1.0),
            ])),
        ];
        let k = rare_keys(&columns, &actions()).unwrap();
        let got: Vec<Option<i64>> = k.iter().collect();
        assert_eq!(
            got,
            vec![
                Some(1),  // good
                None,     // null lead_id
                None,     // null ts
                None,     // null action
                None,     // an NPS answer above 1 is looked at again
                Some(6),  // a value action inside 0..1
                None,     // a value action's null value
                Some(8),  // 0 is inside
                None,     // a null event_id has a null key
                Some(10), // a text of the same length that is no value action
            ]
        );
    }

    #[test]
    fn text_ids_get_their_event_keys() {
        let ids: ArrayRef = Arc::new(StringViewArray::from(vec![Some("evt-1"), Some("evt-2")]));
        let columns: Vec<ArrayRef> = vec![
            ids.clone(),
            Arc::new(Int64Array::from(vec![Some(1), Some(2)])),
            Arc::new(TimestampMicrosecondArray::from(vec![Some(1), Some(1)])),
            Arc::new(StringViewArray::from(vec![Some("x"), Some("nps_response")])),
            new_null_array(&DataType::Null, 2),
        ];
        let k = rare_keys(&columns, &actions()).unwrap();
        assert_eq!(k.value(0), keys(&ids, NAME).unwrap().value(0));
        assert!(k.is_null(1));
    }

    #[test]
    fn long_and_short_value_actions_match_whole_texts_only() {
        let actions = vec![
            ("a_fraction_action_past_12".to_string(), 1.0),
            ("ab".to_string(), 1.0),
        ];
        let names = [
            "a_fraction_action_past_12",
            "a_fraction_action_past_13", // same length and prefix
            "a_fraction_action_past_1",
            "ab",
            "abc",
            "a",
            "ab\0", // the same bytes and a zero: another length
        ];
        let n = names.len();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from_iter_values(0..n as i64)),
            Arc::new(Int64Array::from_iter_values(0..n as i64)),
            Arc::new(TimestampMicrosecondArray::from_iter_values(vec![1; n])),
            Arc::new(StringViewArray::from_iter_values(names)),
            Arc::new(Float64Array::from(vec![5.0; n])),
        ];
        let k = rare_keys(&columns, &actions).unwrap();
        let suspect: Vec<bool> = (0..n).map(|i| k.is_null(i)).collect();
        assert_eq!(suspect, vec![true, false, false, true, false, false, false]);
    }

    /// A bound after a value action widens its range; an action listed twice passes both.
    #[tokio::test]
    async fn bounds_follow_their_actions() {
        let ctx = SessionContext::new();
        ctx.register_udf(rare_key_udf());
        let sql = "select v, \
                   rare_key(1, 1, now(), 'nps_response', v, 'video_play', 'nps_response', 10) as a, \
                   rare_key(1, 1, now(), 'nps_response', v, 'nps_response', 10, 'nps_response') as b, \
                   rare_key(1, 1, now(), 'video_play', v, 'video_play', 'nps_response', 10) as c \
                   from (values (0.5), (7.0), (10.0), (10.5), (cast(null as double))) as t(v) order by v";
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let b = &batches[0];
        let keyed = |c: usize| -> Vec<bool> {
            let col = b
                .column(c)
                .as_primitive::<datafusion::arrow::datatypes::Int64Type>();
            (0..b.num_rows()).map(|i| col.is_valid(i)).collect()
        };
        // Rows: 0.5, 7, 10, 10.5, null.
        assert_eq!(keyed(1), [true, true, true, false, false]);
        assert_eq!(keyed(2), [true, false, false, false, false]);
        assert_eq!(keyed(3), [true, false, false, false, false]);
        for bad in [
            "select rare_key(1, 1, now(), 'a', 1.0, 10)",
            "select rare_key(1, 1, now(), 'a', 1.0, 'a', 10, 5)",
        ] {
            let err = ctx.sql(bad).await.unwrap().collect().await.unwrap_err();
            assert!(err.to_string().contains("a bound must follow"), "{err}");
        }
    }

    /// The value test agrees with the engine's own comparisons, which order NaN above every
    /// number and -0.0 equal to 0.
    #[tokio::test]
    async fn values_compare_as_sql_does() {
        let ctx = SessionContext::new();
        ctx.register_udf(rare_key_udf());
        let sql = "select v, rare_key(1, 1, now(), 'nps_response', v, 'nps_response') as k, \
                   case when v is null or v < 0 or v > 1 then null else 1 end as expected \
                   from (values (cast('NaN' as double)), (-0.0), (0.0), (1.0), (1.0000001), \
                   (-1e-300), (cast('-inf' as double)), (cast(null as double))) as t(v)";
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let mut rows = 0;
        for b in &batches {
            let got = b
                .column(1)
                .as_primitive::<datafusion::arrow::datatypes::Int64Type>();
            let expected = b
                .column(2)
                .as_primitive::<datafusion::arrow::datatypes::Int64Type>();
            for i in 0..b.num_rows() {
                assert_eq!(got.is_valid(i), expected.is_valid(i), "row {i} of {b:?}");
                rows += 1;
            }
        }
        assert_eq!(rows, 8);
    }

    #[tokio::test]
    async fn scalars_and_sql() {
        let ctx = SessionContext::new();
        ctx.register_udf(rare_key_udf());
        let df = ctx
            .sql(
                "select rare_key(42, 'L1', now(), 'page_view', null, 'nps_response') as a, \
                 rare_key(42, 'L1', now(), 'nps_response', 7.0, 'nps_response') as b, \
                 rare_key(42, null, now(), 'page_view', 0.5, 'nps_response') as c, \
                 rare_key('e', 7, now(), 'nps_response', 0.5, 'nps_response') as d",
            )
            .await
            .unwrap();
        let batches = df.collect().await.unwrap();
        let b = &batches[0];
        let col = |i: usize| {
            b.column(i)
                .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                .clone()
        };
        assert_eq!(col(0).value(0), 42);
        assert!(col(1).is_null(0));
        assert!(col(2).is_null(0));
        assert_eq!(col(3).value(0), super::super::event_key::text_key(b"e"));
        assert!(ctx.sql("select rare_key(1, 2, 3, 'a')").await.is_err());
    }
}
