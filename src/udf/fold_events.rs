//! `fold_events(ts, action, asset, product, value, fit, rules, spec [, dropped [, lead_id,
//! account_id]])`: `lead_fold` over raw event rows, judging each row with the model's rules
//! itself instead of reading a judged row.
//!
//! The rows are a lead's event rows and its row of the leads table (a null `ts` and its `fit`,
//! as for `lead_fold`). Each event row is judged as `judged_events.sql` judges it (docs/scoring.md, "Reading the input"; the README's "The model file";
//! §4.1): a null `ts` or `action`, a `fraction` rule's value outside 0..1 or an `nps_response`
//! answer outside 0..10 (null counts as outside) leaves the row out; a good row takes its first
//! matching rule's points (times `value` for a fraction rule), stage and product, or no points
//! when no rule matches; an `nps_response` row's `value` is its answer. Rows at or after the
//! last snapshot's cutoff are left out too. The rows a check rejects are listed, with their
//! reasons, by the `rejects` query; this function only skips them. A null `lead_id` is the
//! caller's to leave out (`lead_activity.sql` does in the aggregate's `FILTER`).
//!
//! `dropped` (optional, a boolean column) marks a row as a copy that docs/scoring.md, "Reading the input" drops, given a
//! second time: it cancels one row of its group that is equal to it once judged (same time,
//! points, stage, product and answer), so the fold sees the group's rows as if that copy had never
//! been there. `lead_activity.sql` gives the events as read plus the copies `duplicate_events`
//! numbers above 1, marked, instead of joining the events with the duplicates to leave the copies
//! out (that join copied every row). A marked row with no equal row in its group is ignored, and
//! a marked row that a check rejects cancels nothing (its copy was rejected too).
//!
//! `event_id` (optional, after the lead arguments): the row's id. The fold's result does not
//! depend on it; it lets an engine that reads the events once report the rows the checks reject
//! with all their columns (see `lead_fold_exec`).
//!
//! `lead_id` and `account_id` (optional, together): each snapshot also carries the lead's id and
//! account (the first non-null `account_id` of its rows). A group may also be a bucket of many
//! leads, told apart by the low `lead_bits` of their ids (a `spec` field, see `lead_buckets`);
//! the shipped `lead_activity.sql` groups by lead (`lead_bits` 0).
//!
//! `rules` is a constant JSON list, in model-file order, of
//! `{"action", "assets" (globs or null), "points", "fraction", "stage_rank" (or null)}`
//! (`${scored_rules}` in the queries); `spec` is `lead_fold`'s. The result, the partial state and
//! everything about snapshots are `lead_fold`'s (see there).
//!
//! ```sql
//! select lead_id, unnest(fold_events(ts, action, asset, product, value, null,
//!          '[{"action":"page_view","assets":["/pricing*"],"points":5,"fraction":false,"stage_rank":1}]',
//!          '{"threshold":100,"floor":0,"decay":{"kind":"none"},"from":"2026-01-31",
//!            "to":"2026-01-31","stages":1,"products":true}')) as s
//! from kept_events group by lead_id;
//! -- or, from every event plus each dropped copy once more, marked:
//! --   fold_events(ts, action, asset, product, value, null, '[...]', '{...}', dropped)
//! -- s['engagement'], s['matched'], s['unmatched'], ...
//! ```
//!
//! Why a second entry to the fold: judging in SQL (two filters, the rule number, a join with the
//! rule table, the points) made the engine write every event row out step after step before the
//! fold read it; read raw, each row is judged once, in place.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{DataFusionError, Result, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, GroupsAccumulator, Signature, Volatility,
};
use serde::{Deserialize, Serialize};

use super::lead_buckets::{self, LeadBuckets, OneGroup, with_lead_fields};
use super::lead_fold::{
    LeadFoldAccumulator, LeadFoldGroups, Params, coerce_fit, coerce_ts, result_type,
    snapshot_fields, state_fields,
};
use super::match_rule::{RuleMatcher, RulePattern};
use super::{coerce_id, coerce_number, coerce_text, literal_arg, literal_text};

pub(crate) const NAME: &str = "fold_events";
pub(crate) const RULES_ARG: usize = 6;
pub(crate) const PARAMS_ARG: usize = 7;
/// The optional last argument: whether the row is a dropped copy.
pub(crate) const DROPPED_ARG: usize = 8;
/// The optional lead id and account arguments after `dropped` (see `lead_buckets`).
pub(crate) const LEAD_ARG: usize = 9;
pub(crate) const ACCOUNT_ARG: usize = 10;
/// The optional last argument: the row's `event_id`, carried for the rows a check rejects.
pub(crate) const EVENT_ARG: usize = 11;

/// One `[[action]]` rule with what it is worth, as `fold_events` takes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoredRule {
    pub action: String,
    #[serde(default)]
    pub assets: Option<Vec<String>>,
    pub points: f64,
    /// `scale = "fraction"`: the points are multiplied by the row's `value`.
    #[serde(default)]
    pub fraction: bool,
    /// The position (from 1) of the rule's stage in the model's `stages`.
    #[serde(default)]
    pub stage_rank: Option<i64>,
}

impl ScoredRule {
    /// What the rule matches, as `match_rule` takes it.
    pub fn pattern(&self) -> RulePattern {
        RulePattern {
            action: self.action.clone(),
            assets: self.assets.clone(),
        }
    }
}

/// The compiled rule list that judges raw rows.
#[derive(Debug)]
pub(crate) struct Judge {
    pub(crate) matcher: RuleMatcher,
    /// The rules in file order: rule number `n` is `rules[n - 1]`.
    pub(crate) rules: Vec<ScoredRule>,
}

impl Judge {
    /// Parses the JSON form used in SQL.
    pub(crate) fn from_json(text: &str) -> Result<Self> {
        let rules: Vec<ScoredRule> = serde_json::from_str(text).map_err(|e| {
            DataFusionError::Plan(format!(
                "{NAME}: the rule list is not valid JSON of scored rules: {e}"
            ))
        })?;
        let patterns: Vec<RulePattern> = rules.iter().map(ScoredRule::pattern).collect();
        Ok(Judge {
            matcher: RuleMatcher::new(&patterns),
            rules,
        })
    }

    fn from_args(args: &AccumulatorArgs) -> Result<Self> {
        let text = literal_text(
            &literal_arg(args.exprs, RULES_ARG, NAME, "rules")?,
            NAME,
            "rules",
        )?;
        Self::from_json(&text)
    }
}

/// The `fold_events` SQL aggregate.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct FoldEventsFunc {
    signature: Signature,
}

impl Default for FoldEventsFunc {
    fn default() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

/// `fold_events` as a registrable function.
pub fn fold_events_udaf() -> AggregateUDF {
    AggregateUDF::from(FoldEventsFunc::default())
}

impl AggregateUDFImpl for FoldEventsFunc {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if ![8, 9, 11, 12].contains(&arg_types.len()) {
            return plan_err!(
                "fold_events(ts, action, asset, product, value, fit, rules, spec \
                 [, dropped [, lead_id, account_id [, event_id]]]) takes 8, 9, 11 or 12 \
                 arguments"
            );
        }
        let mut types = vec![
            coerce_ts(NAME, &arg_types[0])?,
            coerce_text(NAME, &arg_types[1])?,
            coerce_text(NAME, &arg_types[2])?,
            coerce_text(NAME, &arg_types[3])?,
            coerce_number(NAME, &arg_types[4])?,
            coerce_fit(NAME, &arg_types[5])?,
            coerce_text(NAME, &arg_types[6])?,
            coerce_text(NAME, &arg_types[7])?,
        ];
        if let Some(t) = arg_types.get(DROPPED_ARG) {
            if !matches!(t, DataType::Boolean | DataType::Null) {
                return plan_err!("{NAME}: dropped must be a boolean, got {t}");
            }
            types.push(DataType::Boolean);
        }
        if let (Some(lead), Some(account)) = (arg_types.get(LEAD_ARG), arg_types.get(ACCOUNT_ARG)) {
            types.push(coerce_id(NAME, "lead_id", lead)?);
            types.push(account.clone());
        }
        if let Some(event_id) = arg_types.get(EVENT_ARG) {
            types.push(coerce_id(NAME, "event_id", event_id)?);
        }
        Ok(types)
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(match lead_types(arg_types) {
            Some((lead, account)) => DataType::List(Arc::new(Field::new_list_field(
                DataType::Struct(with_lead_fields(&snapshot_fields(), lead, account)),
                true,
            ))),
            None => result_type(),
        })
    }

    fn is_nullable(&self) -> bool {
        false
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let types: Vec<DataType> = args
            .input_fields
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        Ok(match lead_types(&types) {
            Some((lead, account)) => {
                lead_buckets::state_fields(state_fields(args.name), args.name, lead, account)
            }
            None => state_fields(args.name),
        })
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        if args.exprs.len() > LEAD_ARG {
            return Ok(Box::new(OneGroup(buckets(&args)?)));
        }
        Ok(Box::new(LeadFoldAccumulator {
            inner: groups(&args)?.0,
        }))
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        if args.exprs.len() > LEAD_ARG {
            return Ok(Box::new(buckets(&args)?));
        }
        Ok(Box::new(groups(&args)?.0))
    }
}

/// The types of the lead id and account arguments, when given.
fn lead_types(arg_types: &[DataType]) -> Option<(&DataType, &DataType)> {
    Some((arg_types.get(LEAD_ARG)?, arg_types.get(ACCOUNT_ARG)?))
}

/// The fold of `args` without its lead arguments, and its `lead_bits`.
fn groups(args: &AccumulatorArgs) -> Result<(LeadFoldGroups, u32)> {
    let params = Params::from_args(args, PARAMS_ARG, NAME)?;
    let bits = params.lead_bits;
    let params = if args.exprs.len() > LEAD_ARG {
        params
    } else {
        params.one_lead_per_group(NAME)?
    };
    Ok((
        LeadFoldGroups::judging(params, Judge::from_args(args)?),
        bits,
    ))
}

/// The fold of `args` over buckets of leads.
fn buckets(args: &AccumulatorArgs) -> Result<LeadBuckets> {
    let (fold, bits) = groups(args)?;
    let field = |i: usize| args.expr_fields[i].data_type().clone();
    LeadBuckets::new(
        fold,
        state_fields(NAME).len(),
        bits,
        field(LEAD_ARG),
        field(ACCOUNT_ARG),
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{
        ArrayRef, AsArray, BooleanArray, Float64Array, StringViewArray, TimestampMicrosecondArray,
    };
    use datafusion::arrow::datatypes::{Float64Type, Int64Type};
    use datafusion::logical_expr::{EmitTo, GroupsAccumulator};

    use super::*;
    use crate::udf::lead_fold::FoldSpec;

    const DAY: i64 = 86_400_000_000;
    /// 2026-01-01T00:00:00Z.
    const T0: i64 = 1_767_225_600_000_000;
    const RULES: &str = r#"[{"action":"page_view","assets":["/pricing*"],"points":10,"stage_rank":2},
        {"action":"video_play","points":20,"fraction":true,"stage_rank":1}]"#;
    const PARAMS_JSON: &str = r#"{"threshold":15,"floor":0,"decay":{"kind":"exponential","half_life_days":10},
        "from":"2026-01-10","to":"2026-01-30","every_days":10,"stages":2,"products":true}"#;

    fn judging() -> LeadFoldGroups {
        LeadFoldGroups::judging(
            FoldSpec::parse(PARAMS_JSON).unwrap(),
            Judge::from_json(RULES).unwrap(),
        )
    }

    /// Rows: (lead, day, action, asset, product, value); a lead's first row also carries fit 1.
    fn rows() -> (Vec<ArrayRef>, Vec<usize>) {
        type Row = (usize, Option<i64>, Option<&'static str>, &'static str, f64);
        let rows: [Row; 9] = [
            (0, Some(0), Some("page_view"), "/pricing", f64::NAN),
            (1, Some(1), Some("video_play"), "v", 0.5),
            (0, Some(2), Some("video_play"), "v", 1.5),
            (1, None, Some("page_view"), "/pricing", 0.0),
            (0, Some(3), None, "/pricing", 0.0),
            (1, Some(15), Some("page_view"), "/blog", 0.0),
            (0, Some(12), Some("page_view"), "/pricing/x", 0.0),
            (1, Some(40), Some("page_view"), "/pricing", 0.0),
            (0, Some(20), Some("nps_response"), "", 9.0),
        ];
        let values: Vec<ArrayRef> = vec![
            Arc::new(
                TimestampMicrosecondArray::from_iter(
                    rows.iter().map(|r| r.1.map(|d| T0 + d * DAY)),
                )
                .with_timezone("UTC"),
            ),
            Arc::new(StringViewArray::from_iter(rows.iter().map(|r| r.2))),
            Arc::new(StringViewArray::from_iter_values(rows.iter().map(|r| r.3))),
            Arc::new(StringViewArray::from_iter_values(
                rows.iter().map(|_| "crm"),
            )),
            Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.4))),
            Arc::new(Float64Array::from_iter(
                (0..rows.len()).map(|i| (i < 2).then_some(1.0)),
            )),
        ];
        (values, rows.iter().map(|r| r.0).collect())
    }

    /// The rows folded into two groups in one phase, after checking that folding each row as its
    /// own partial state and merging the states into the rows' groups gives the same result.
    fn fold_both_ways(values: &[ArrayRef], groups: &[usize]) -> ArrayRef {
        let mut one = judging();
        one.update_batch(values, groups, None, 2).unwrap();
        let direct = one.evaluate(EmitTo::All).unwrap();
        let states = judging().convert_to_state(values, None).unwrap();
        let mut merged = judging();
        merged.merge_batch(&states, groups, 2).unwrap();
        let merged = merged.evaluate(EmitTo::All).unwrap();
        assert_eq!(direct.to_data(), merged.to_data());
        direct
    }

    #[test]
    fn raw_rows_are_judged_and_folded_alike_in_one_phase_and_through_partial_states() {
        let (values, groups) = rows();
        let direct = fold_both_ways(&values, &groups);

        // Lead 0: page_view /pricing at day 0 (NaN value, not a fraction rule: 10 points) and at
        // day 12, the fraction 1.5 and the null action rejected, the NPS answer 9 at day 20.
        // Lead 1: video 0.5 = 10 points at day 1, an unmatched page_view at day 15; the null ts
        // and day 40 rows left out.
        let lists = direct.as_list::<i32>();
        let snapshots = |g: usize| {
            let list = lists.value(g);
            let s = list.as_struct();
            let col = |name: &str| s.column_by_name(name).unwrap().clone();
            (
                col("matched").as_primitive::<Int64Type>().values().to_vec(),
                col("unmatched")
                    .as_primitive::<Int64Type>()
                    .values()
                    .to_vec(),
                col("nps")
                    .as_primitive::<Float64Type>()
                    .iter()
                    .collect::<Vec<_>>(),
                col("engagement")
                    .as_primitive::<Float64Type>()
                    .values()
                    .to_vec(),
            )
        };
        let (matched, unmatched, nps, engagement) = snapshots(0);
        assert_eq!(matched, [1, 2, 2]);
        assert_eq!(unmatched, [0, 0, 1]);
        assert_eq!(nps, [None, None, Some(9.0)]);
        // Day 30: 10 x 2^-3 + 10 x 2^-1.8.
        let expected = 10.0 * 2f64.powf(-3.0) + 10.0 * 2f64.powf(-1.8);
        assert!((engagement[2] - expected).abs() < 1e-12, "{engagement:?}");
        let (matched, unmatched, _, _) = snapshots(1);
        assert_eq!(matched, [1, 1, 1]);
        assert_eq!(unmatched, [0, 1, 1]);
    }

    #[test]
    fn dropped_copies_cancel_in_one_phase_and_through_partial_states() {
        // Lead 0: a view and its dropped copy, a second view, an answer 7 and its copy.
        // Lead 1: a view and a dropped copy of another asset (other points): nothing cancels.
        let days = [0, 0, 1, 2, 2, 0, 0];
        let group = vec![0, 0, 0, 0, 0, 1, 1];
        let action = [
            "page_view",
            "page_view",
            "page_view",
            "nps_response",
            "nps_response",
        ];
        let action = action.iter().chain(&["page_view", "page_view"]);
        let asset = [
            "/pricing", "/pricing", "/pricing", "", "", "/pricing", "/blog",
        ];
        let value = [0.0, 0.0, 0.0, 7.0, 7.0, 0.0, 0.0];
        let dropped = [false, true, false, false, true, false, true];
        let values: Vec<ArrayRef> = vec![
            Arc::new(
                TimestampMicrosecondArray::from_iter_values(days.iter().map(|d| T0 + d * DAY))
                    .with_timezone("UTC"),
            ),
            Arc::new(StringViewArray::from_iter_values(action)),
            Arc::new(StringViewArray::from_iter_values(asset)),
            Arc::new(StringViewArray::from_iter_values(
                asset.iter().map(|_| "crm"),
            )),
            Arc::new(Float64Array::from_iter_values(value)),
            Arc::new(Float64Array::from(vec![None::<f64>; days.len()])),
            Arc::new(StringViewArray::from_iter_values(
                days.iter().map(|_| RULES),
            )),
            Arc::new(StringViewArray::from_iter_values(
                days.iter().map(|_| PARAMS_JSON),
            )),
            Arc::new(BooleanArray::from(dropped.to_vec())),
        ];
        let direct = fold_both_ways(&values, &group);

        let lists = direct.as_list::<i32>();
        let last = |g: usize, name: &str| {
            let list = lists.value(g);
            let column = list.as_struct().column_by_name(name).unwrap().clone();
            column.slice(column.len() - 1, 1)
        };
        let int = |g: usize, name: &str| last(g, name).as_primitive::<Int64Type>().value(0);
        // Lead 0: one view left (day 1), the answer cancelled: matched 1, unmatched 0, no NPS.
        assert_eq!((int(0, "matched"), int(0, "unmatched")), (1, 0));
        assert!(last(0, "nps").is_null(0));
        // Lead 1: its view stays.
        assert_eq!(int(1, "matched"), 1);
    }
}
