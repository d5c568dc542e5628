//! `match_rule(action, asset, rules)`: the number of the first `[[action]]` rule an event matches
//! (the README's "The model file"), or null when none does.
//!
//! `rules` is a constant JSON list, in model-file order, of `{"action": ..., "assets": [globs]}`
//! (`assets` absent or null: any asset, even a null one). Rule numbers start at 1, like the rule's
//! position in the file; the queries get the list from the `${rules}` template variable.
//!
//! ```sql
//! select match_rule('page_view', '/pricing/team',
//!   '[{"action":"page_view","assets":["/careers*"]},{"action":"page_view","assets":["/pricing*"]}]');
//! -- 2
//! ```

use std::sync::Arc;

use datafusion::arrow::array::{Array, Int32Array, StringViewArray};
use datafusion::arrow::buffer::{BooleanBuffer, NullBuffer};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{HashMap, Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use serde::{Deserialize, Serialize};

use super::glob_match::glob_matches;
use super::{coerce_text, scalar_or_array, string_view};

/// One rule as `match_rule` sees it: what it matches, not what it is worth.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RulePattern {
    pub action: String,
    #[serde(default)]
    pub assets: Option<Vec<String>>,
}

/// A rule's number and its asset globs (`None`: any asset).
type NumberedGlobs = (i32, Option<Vec<String>>);

/// A compiled rule list: for each action, its rules in file order.
#[derive(Debug)]
pub struct RuleMatcher {
    by_action: HashMap<String, Vec<NumberedGlobs>>,
}

impl RuleMatcher {
    /// Compiles rules given in file order.
    pub fn new(rules: &[RulePattern]) -> Self {
        let mut by_action: HashMap<String, Vec<NumberedGlobs>> = HashMap::new();
        for (i, r) in rules.iter().enumerate() {
            by_action
                .entry(r.action.clone())
                .or_default()
                .push((i as i32 + 1, r.assets.clone()));
        }
        Self { by_action }
    }

    /// Parses the JSON form used in SQL.
    pub fn from_json(text: &str) -> Result<Self> {
        match serde_json::from_str::<Vec<RulePattern>>(text) {
            Ok(rules) => Ok(Self::new(&rules)),
            Err(e) => plan_err!("match_rule: the rule list is not valid JSON of rules: {e}"),
        }
    }

    /// The 1-based number of the first rule that matches, if any.
    #[inline]
    pub fn first_match(&self, action: &str, asset: Option<&str>) -> Option<i32> {
        let candidates = self.by_action.get(action)?;
        candidates.iter().find_map(|(number, globs)| match globs {
            None => Some(*number),
            Some(globs) => {
                let asset = asset?;
                globs
                    .iter()
                    .any(|g| glob_matches(g.as_bytes(), asset.as_bytes()))
                    .then_some(*number)
            }
        })
    }
}

/// The `match_rule` SQL function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct MatchRuleFunc {
    signature: Signature,
}

impl Default for MatchRuleFunc {
    fn default() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

/// `match_rule` as a registrable function.
pub fn match_rule_udf() -> ScalarUDF {
    ScalarUDF::from(MatchRuleFunc::default())
}

impl ScalarUDFImpl for MatchRuleFunc {
    fn name(&self) -> &str {
        "match_rule"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if arg_types.len() != 3 {
            return plan_err!("match_rule(action, asset, rules) takes 3 arguments");
        }
        arg_types
            .iter()
            .map(|t| coerce_text("match_rule", t))
            .collect()
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int32)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rules = match &args.args[2] {
            ColumnarValue::Scalar(ScalarValue::Utf8View(Some(s)) | ScalarValue::Utf8(Some(s))) => {
                RuleMatcher::from_json(s)?
            }
            _ => return exec_err!("match_rule: the rule list must be a constant text"),
        };
        let arrays = ColumnarValue::values_to_arrays(&args.args[..2])?;
        let action = string_view(&arrays[0], "match_rule")?;
        let asset = string_view(&arrays[1], "match_rule")?;
        let out = match_all(&rules, &action, &asset);
        scalar_or_array(&args.args, Arc::new(out))
    }
}

/// The first matching rule of every row. Rows repeat a few (action, asset) pairs many times, and
/// a Parquet reader points repeated values at the same bytes, so the answer for each pair of
/// string views (length, prefix, buffer, offset: equal views are equal texts) is remembered for
/// the batch in a small direct-mapped table; a pair it does not hold is matched in full.
pub(crate) fn match_all(
    rules: &RuleMatcher,
    action: &StringViewArray,
    asset: &StringViewArray,
) -> Int32Array {
    const SLOTS: usize = 1024;
    // An empty slot holds a pair no row has: a view of length u32::MAX for the action.
    const EMPTY: (u128, u128) = (u128::MAX, u128::MAX);
    let mut keys = vec![EMPTY; SLOTS];
    // Rule numbers start at 1: 0 is "no rule" (or a null action) until the end.
    let mut found = vec![0i32; SLOTS];
    let (actions, assets) = (action.views(), asset.views());
    let rule_of: Vec<i32> = (0..action.len())
        .map(|i| {
            if action.is_null(i) {
                return 0;
            }
            // A null asset gets a view no valid one has (a length of u32::MAX).
            let asset_valid = asset.is_valid(i);
            let asset_view = if asset_valid {
                assets[i]
            } else {
                u128::from(u32::MAX)
            };
            let key = (actions[i], asset_view);
            let slot = memo_slot(key.0, key.1, SLOTS);
            if keys[slot] != key {
                let asset_value = asset_valid.then(|| asset.value(i));
                let rule = rules.first_match(action.value(i), asset_value);
                keys[slot] = key;
                found[slot] = rule.unwrap_or(0);
            }
            found[slot]
        })
        .collect();
    let matched = BooleanBuffer::collect_bool(rule_of.len(), |i| rule_of[i] != 0);
    Int32Array::new(rule_of.into(), Some(NullBuffer::new(matched)))
}

fn memo_slot(a: u128, b: u128, slots: usize) -> usize {
    let x = (a as u64)
        ^ ((a >> 64) as u64).rotate_left(17)
        ^ (b as u64).rotate_left(31)
        ^ ((b >> 64) as u64).rotate_left(47);
    (x.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as usize % slots
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> RuleMatcher {
        RuleMatcher::new(&[
            RulePattern {
                action: "page_view".into(),
                assets: Some(vec!["/pricing*".into(), "/product/*".into()]),
            },
            RulePattern {
                action: "page_view".into(),
                assets: Some(vec!["/careers*".into()]),
            },
            RulePattern {
                action: "page_view".into(),
                assets: None,
            },
            RulePattern {
                action: "video_play".into(),
                assets: None,
            },
        ])
    }

    #[test]
    fn first_matching_rule_wins() {
        let r = rules();
        assert_eq!(r.first_match("page_view", Some("/pricing")), Some(1));
        assert_eq!(r.first_match("page_view", Some("/careers/eng")), Some(2));
        assert_eq!(r.first_match("page_view", Some("/blog")), Some(3));
        assert_eq!(r.first_match("page_view", None), Some(3));
        assert_eq!(r.first_match("video_play", None), Some(4));
        assert_eq!(r.first_match("email_open", Some("/pricing")), None);
    }

    #[test]
    fn batches_with_repeated_pairs_match_like_rows() {
        let r = rules();
        let long = "/pricing/enterprise-plans-and-discounts";
        let pairs: Vec<(Option<&str>, Option<&str>)> = vec![
            (Some("page_view"), Some("/pricing")),
            (Some("page_view"), None),
            (Some("page_view"), Some(long)),
            (None, Some("/pricing")),
            (Some("video_play"), None),
            (
                Some("page_view"),
                Some("/careers/eng/long-enough-to-leave-the-view"),
            ),
            (Some("email_open"), Some("/pricing")),
        ];
        // Each pair many times, interleaved, so the memo is hit and overwritten.
        let rows: Vec<_> = (0..5000)
            .map(|i| pairs[(i * 7 + i / 3) % pairs.len()])
            .collect();
        let action = StringViewArray::from(rows.iter().map(|p| p.0).collect::<Vec<_>>());
        let asset = StringViewArray::from(rows.iter().map(|p| p.1).collect::<Vec<_>>());
        let out = match_all(&r, &action, &asset);
        for (i, (a, s)) in rows.iter().enumerate() {
            let expected = a.and_then(|a| r.first_match(a, *s));
            assert_eq!(out.is_valid(i).then(|| out.value(i)), expected, "row {i}");
        }
    }

    #[test]
    fn json_form_parses() {
        let r =
            RuleMatcher::from_json(r#"[{"action":"a","assets":["x*"]},{"action":"a"}]"#).unwrap();
        assert_eq!(r.first_match("a", Some("xy")), Some(1));
        assert_eq!(r.first_match("a", Some("y")), Some(2));
        assert!(RuleMatcher::from_json("not json").is_err());
    }
}
