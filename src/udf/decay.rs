//! `decay(score, days, floor, rule)`: one step of docs/scoring.md, "Engagement: the fold", the value of `score` after `days`
//! idle days under a decay rule, never taken below `floor` and never changed when already at or
//! below it. `rule` is the constant JSON form of the model's `[decay]` table (the `${decay}`
//! template variable). Nulls give null.
//!
//! ```sql
//! select decay(80, 10, 0, '{"kind":"exponential","half_life_days":10}');        -- 40
//! select decay(80, 20, 50, '{"kind":"exponential","half_life_days":10}');       -- 50 (floor)
//! select decay(50, 14, 0, '{"kind":"linear","points":5,"period_days":7}');      -- 40
//! select decay(80, 15, 0, '{"kind":"exponential","half_life_days":10,"grace_days":5}'); -- 40
//! ```

use std::sync::Arc;

use datafusion::arrow::array::{AsArray, Float64Array};
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::{coerce_number, coerce_text, scalar_or_array};
use crate::fold::Decay;

/// The `decay` SQL function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct DecayFunc {
    signature: Signature,
}

impl Default for DecayFunc {
    fn default() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

/// `decay` as a registrable function.
pub fn decay_udf() -> ScalarUDF {
    ScalarUDF::from(DecayFunc::default())
}

impl ScalarUDFImpl for DecayFunc {
    fn name(&self) -> &str {
        "decay"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if arg_types.len() != 4 {
            return plan_err!("decay(score, days, floor, rule) takes 4 arguments");
        }
        Ok(vec![
            coerce_number("decay", &arg_types[0])?,
            coerce_number("decay", &arg_types[1])?,
            coerce_number("decay", &arg_types[2])?,
            coerce_text("decay", &arg_types[3])?,
        ])
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rule = match &args.args[3] {
            ColumnarValue::Scalar(ScalarValue::Utf8View(Some(s)) | ScalarValue::Utf8(Some(s))) => {
                Decay::from_json(s).map_err(datafusion::common::DataFusionError::Plan)?
            }
            _ => return exec_err!("decay: the rule must be a constant text"),
        };
        let arrays = ColumnarValue::values_to_arrays(&args.args[..3])?;
        let score = arrays[0].as_primitive::<Float64Type>();
        let days = arrays[1].as_primitive::<Float64Type>();
        let floor = arrays[2].as_primitive::<Float64Type>();
        let out: Float64Array = score
            .iter()
            .zip(days.iter())
            .zip(floor.iter())
            .map(|((s, d), f)| Some(rule.apply(s?, d?, f?)))
            .collect();
        scalar_or_array(&args.args, Arc::new(out))
    }
}
