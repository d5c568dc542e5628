//! leadscore's user-defined functions, one per file, each named after its SQL name, plus the one
//! [`register_all`] that every context (local, cluster, Flight SQL) calls.
//!
//! Functions take their model parameters as constant arguments (a JSON text for a rule set or a
//! decay rule) rather than being built per model: a plan that names them can be shipped to another
//! process and run there with nothing but the function names registered.

pub mod decay;
pub mod event_key;
pub mod fold_events;
pub mod glob_match;
pub mod lead_buckets;
pub mod lead_fold;
pub mod match_rule;
pub mod rare_key;
pub mod repeated_keys;
pub mod stable_sum;
pub mod top_lead;

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringViewArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{DataFusionError, Result, ScalarValue, exec_err, plan_err};
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::{AggregateUDF, ScalarUDF};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::Literal;

/// Every scalar function leadscore adds to SQL.
pub fn scalar_functions() -> Vec<Arc<ScalarUDF>> {
    vec![
        Arc::new(glob_match::glob_match_udf()),
        Arc::new(match_rule::match_rule_udf()),
        Arc::new(decay::decay_udf()),
        Arc::new(event_key::event_key_udf()),
        Arc::new(rare_key::rare_key_udf()),
    ]
}

/// Every aggregate function leadscore adds to SQL.
pub fn aggregate_functions() -> Vec<Arc<AggregateUDF>> {
    vec![
        Arc::new(lead_fold::lead_fold_udaf()),
        Arc::new(fold_events::fold_events_udaf()),
        Arc::new(repeated_keys::repeated_keys_udaf()),
        Arc::new(stable_sum::stable_sum_udaf()),
        Arc::new(top_lead::top_lead_udaf()),
    ]
}

/// Registers all of leadscore's functions with a context, a session state or an executor's
/// function registry.
pub fn register_all(registry: &mut dyn FunctionRegistry) -> Result<()> {
    for f in scalar_functions() {
        registry.register_udf(f)?;
    }
    for f in aggregate_functions() {
        registry.register_udaf(f)?;
    }
    Ok(())
}

/// The value of a constant argument of an aggregate (parameters such as a decay rule).
pub(crate) fn literal_arg(
    exprs: &[Arc<dyn PhysicalExpr>],
    index: usize,
    function: &str,
    what: &str,
) -> Result<ScalarValue> {
    match exprs.get(index).and_then(|e| e.downcast_ref::<Literal>()) {
        Some(lit) => Ok(lit.value().clone()),
        None => plan_err!(
            "{function}: argument {} ({what}) must be a constant",
            index + 1
        ),
    }
}

/// A constant text argument.
pub(crate) fn literal_text(value: &ScalarValue, function: &str, what: &str) -> Result<String> {
    match value {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::Utf8View(Some(s))
        | ScalarValue::LargeUtf8(Some(s)) => Ok(s.clone()),
        other => plan_err!("{function}: {what} must be a constant text, not {other:?}"),
    }
}

/// Views an argument that was coerced to Utf8View.
pub(crate) fn string_view(array: &ArrayRef, function: &str) -> Result<StringViewArray> {
    match array.data_type() {
        DataType::Utf8View => Ok(array.as_string_view().clone()),
        DataType::Null => Ok(StringViewArray::new_null(array.len())),
        other => exec_err!("{function}: expected text, got {other}"),
    }
}

/// Wraps a scalar function's output: a scalar when every argument was one, else the array.
pub(crate) fn scalar_or_array(
    args: &[datafusion::logical_expr::ColumnarValue],
    out: ArrayRef,
) -> Result<datafusion::logical_expr::ColumnarValue> {
    use datafusion::logical_expr::ColumnarValue;
    if args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_))) {
        Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?))
    } else {
        Ok(ColumnarValue::Array(out))
    }
}

/// The text types a function accepts: every string type, coerced to Utf8View.
pub(crate) fn coerce_text(function: &str, t: &DataType) -> Result<DataType> {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null => {
            Ok(DataType::Utf8View)
        }
        DataType::Dictionary(_, v)
            if matches!(
                **v,
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
            ) =>
        {
            Ok(DataType::Utf8View)
        }
        other => Err(DataFusionError::Plan(format!(
            "{function}: expected a text argument, got {other}"
        ))),
    }
}

/// The type an id argument (`lead_id`, `event_id`: an integer or a text, docs/scoring.md, "Reading the input") is read as:
/// Int64 for integers, Utf8View for text.
pub(crate) fn coerce_id(function: &str, column: &str, t: &DataType) -> Result<DataType> {
    match t {
        t if t.is_integer() => Ok(DataType::Int64),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null => {
            Ok(DataType::Utf8View)
        }
        DataType::Dictionary(_, v) => coerce_id(function, column, v),
        other => plan_err!("{function}: {column} must be an integer or a text, got {other}"),
    }
}

/// The number types a function accepts, coerced to Float64.
pub(crate) fn coerce_number(function: &str, t: &DataType) -> Result<DataType> {
    if t.is_numeric() || *t == DataType::Null {
        Ok(DataType::Float64)
    } else {
        plan_err!("{function}: expected a number, got {t}")
    }
}

/// Group indices that put every row of `values` in group 0: how a one-group accumulator hands
/// its rows to a grouped one.
pub(crate) fn one_group(values: &[ArrayRef]) -> Vec<usize> {
    vec![0; values.first().map_or(0, |a| a.len())]
}

/// Whether row `i` passes an aggregate's `FILTER (WHERE ...)` (a null filter value does not).
pub(crate) fn passes(filter: Option<&datafusion::arrow::array::BooleanArray>, i: usize) -> bool {
    filter.is_none_or(|f| f.is_valid(i) && f.value(i))
}

/// Rows of many groups in flat vectors, in arrival order.
pub(crate) trait Rows: Default {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn no_two_functions_share_a_name() {
        let mut names = HashSet::new();
        for f in scalar_functions() {
            assert!(names.insert(f.name().to_string()), "{} twice", f.name());
        }
        for f in aggregate_functions() {
            assert!(names.insert(f.name().to_string()), "{} twice", f.name());
        }
    }

    #[test]
    fn register_all_adds_every_function() {
        let mut ctx = datafusion::prelude::SessionContext::new();
        register_all(&mut ctx).unwrap();
        for f in scalar_functions() {
            assert!(ctx.udf(f.name()).is_ok());
        }
        for f in aggregate_functions() {
            assert!(ctx.udaf(f.name()).is_ok());
        }
    }
}
