//! `glob_match(text, pattern)`: the glob test that `[[action]]` rules use on an event's asset.
//!
//! `*` matches any run of characters (also none); every other character stands for itself, so
//! `?`, `[` and `%` need no escaping. A null text or pattern gives null.
//!
//! ```sql
//! select glob_match('/pricing/enterprise', '/pricing*');   -- true
//! select glob_match('/product/crm/tour', '/product/*');    -- true
//! select glob_match('/careers', '/product/*');             -- false
//! ```

use std::sync::Arc;

use datafusion::arrow::array::BooleanArray;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::{coerce_text, scalar_or_array, string_view};

/// Whether `text` matches `pattern`, where `*` is any run of bytes.
///
/// Linear-time in practice: on a mismatch after a `*` it retries one byte further, the usual
/// greedy wildcard algorithm, never backtracking past the most recent star.
pub fn glob_matches(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// The `glob_match` SQL function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct GlobMatchFunc {
    signature: Signature,
}

impl Default for GlobMatchFunc {
    fn default() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

/// `glob_match` as a registrable function.
pub fn glob_match_udf() -> ScalarUDF {
    ScalarUDF::from(GlobMatchFunc::default())
}

impl ScalarUDFImpl for GlobMatchFunc {
    fn name(&self) -> &str {
        "glob_match"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if arg_types.len() != 2 {
            return plan_err!("glob_match(text, pattern) takes 2 arguments");
        }
        arg_types
            .iter()
            .map(|t| coerce_text("glob_match", t))
            .collect()
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let text = string_view(&arrays[0], "glob_match")?;
        let pattern = string_view(&arrays[1], "glob_match")?;
        let out: BooleanArray = text
            .iter()
            .zip(pattern.iter())
            .map(|(t, p)| Some(glob_matches(p?.as_bytes(), t?.as_bytes())))
            .collect();
        scalar_or_array(&args.args, Arc::new(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stars_match_any_run() {
        assert!(glob_matches(b"/pricing*", b"/pricing"));
        assert!(glob_matches(b"/pricing*", b"/pricing/enterprise"));
        assert!(glob_matches(b"*", b""));
        assert!(glob_matches(b"*guide*", b"wp-roi-guide-2024"));
        assert!(glob_matches(b"a*b*c", b"aXXbYYbZc"));
        assert!(!glob_matches(b"a*b*c", b"aXXbYYbZ"));
        assert!(!glob_matches(b"/product/*", b"/products"));
    }

    #[test]
    fn other_characters_are_literal() {
        assert!(glob_matches(b"/a?b", b"/a?b"));
        assert!(!glob_matches(b"/a?b", b"/axb"));
        assert!(glob_matches(b"100%", b"100%"));
        assert!(!glob_matches(b"exact", b"exactly"));
    }
}
