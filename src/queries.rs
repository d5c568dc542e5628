//! The SQL files of `queries/`: embedded in the binary, overridable one by one from a directory
//! (`--queries DIR`), and expanded with `${name}` template variables that carry the model and the
//! cutoff into the SQL as literals.
//!
//! Each file is one `SELECT`. A pipeline lists its files in order with what to do with each:
//! a *view* is planned into the ones after it, a *step* is written to the run's private staging
//! area and read back by name, an *output* is a published table.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use crate::error::{Error, Result};
use crate::fold::{MICROS_PER_DAY, Snapshots, cutoff_micros};
use crate::model::{FitTest, Model};
use crate::udf::fold_events::ScoredRule;
use crate::udf::lead_fold::FoldSpec;
use crate::udf::match_rule::RulePattern;

macro_rules! embed {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/queries/", $name, ".sql")))),*]
    };
}

/// Every query file shipped with leadscore, by name (the file name without `.sql`).
pub const EMBEDDED: &[(&str, &str)] = embed!(
    "repeated_keys",
    "repeated_keys_grouped",
    "rare_events",
    "suspect_events",
    "copy_events",
    "duplicate_events",
    "no_duplicate_events",
    "kept_events",
    "judged_events",
    "latest_event",
    "lead_activity",
    "lead_scores",
    "lead_product_scores",
    "account_scores",
    "stage_report",
    "rejects",
    "opportunities",
    "converted_tallies",
    "stage_tallies",
    "stage_tally_trend",
    "action_lift",
    "model_review",
);

/// What a pipeline does with a query's result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Registered as a view: planned into the queries that read it.
    View,
    /// Written to the staging area and registered for later queries; not published.
    Step,
    /// Written to the staging area, registered, and published into `--out` at the end.
    Output,
    /// Like `Output`, except that the queries after it read it as a view of its query (planned
    /// into them, as a `View` is) rather than as its written table: a query that only groups
    /// its rows then runs beside it, without waiting for its file or decoding it.
    ViewedOutput,
    /// Like `Output`, but published under the given table name, hive-partitioned by `as_of`
    /// (one directory per snapshot day). Later queries still read it by the query's name.
    History(&'static str),
}

/// Finding duplicates and judging rows, the same for every cutoff: `copies` when the events
/// have an `event_id` column (otherwise no row is a copy: no repeated keys, and
/// `duplicate_events` is `no_duplicate_events.sql`); `suspects` unless the fold judges the rows
/// and lists the rejects itself (then `rare_events`, when it runs, holds the copies of repeated
/// keys only, `copy_events.sql`; otherwise the rows a check may reject too, `suspect_events.sql`
/// without `event_id`). See `score::Inputs::pipeline`, which picks the files.
pub fn judge_pipeline(copies: bool, suspects: bool) -> Vec<(&'static str, Kind)> {
    let mut queries = Vec::new();
    if copies {
        queries.push(("repeated_keys", Kind::Step));
    }
    if copies || suspects {
        queries.extend([
            ("rare_events", Kind::Step),
            ("duplicate_events", Kind::Step),
        ]);
    } else {
        queries.push(("duplicate_events", Kind::View));
    }
    queries.extend([("kept_events", Kind::View), ("judged_events", Kind::View)]);
    if suspects {
        queries.extend([
            ("kept_rare_events", Kind::View),
            ("judged_rare_events", Kind::View),
        ]);
    }
    queries
}

/// A query run from another query's file: `(name, file, [(variable, value)])`.
pub type Variant = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

/// Queries that run from another query's file with some of its variables set otherwise.
/// `rejects` judges only the rows of `rare_events` (every row a check may reject is one of them),
/// through the same two files as every other row.
pub const VARIANTS: &[Variant] = &[
    (
        "kept_rare_events",
        "kept_events",
        &[("event_rows", "rare_events")],
    ),
    (
        "judged_rare_events",
        "judged_events",
        &[("kept_rows", "kept_rare_events")],
    ),
];

/// The variant named `name`, if it is one.
fn variant(name: &str) -> Option<&'static Variant> {
    VARIANTS.iter().find(|(n, _, _)| *n == name)
}

/// The `score` pipeline after [`judge_pipeline`] (`latest_event` runs between the two, and only
/// without `--as-of`).
pub const SCORE_PIPELINE: &[(&str, Kind)] = &[
    ("rejects", Kind::Output),
    ("lead_activity", Kind::Step),
    ("lead_scores", Kind::ViewedOutput),
    ("lead_product_scores", Kind::Output),
    ("account_scores", Kind::Output),
    ("stage_report", Kind::Output),
];

/// The `score` outputs after `lead_activity` when the fold listed the rejected rows itself (they
/// are `judged_rare_events` then; see `score::Inputs::pipeline`).
pub const SCORE_OUTPUTS: &[(&str, Kind)] = &[
    ("lead_scores", Kind::ViewedOutput),
    ("lead_product_scores", Kind::Output),
    ("account_scores", Kind::Output),
    ("stage_report", Kind::Output),
    ("rejects", Kind::Output),
];

/// The `backfill` pipeline after [`judge_pipeline`]: the same queries over many snapshot days.
pub const BACKFILL_PIPELINE: &[(&str, Kind)] = &[
    ("rejects", Kind::Output),
    ("lead_activity", Kind::View),
    ("lead_scores", Kind::History("lead_score_history")),
    ("account_scores", Kind::History("account_score_history")),
];

/// [`BACKFILL_PIPELINE`] when the fold lists the rejected rows itself: the fold (inside
/// `lead_scores`), then the outputs that follow it.
pub const BACKFILL_FOLD: &[(&str, Kind)] = &[
    ("lead_activity", Kind::View),
    ("lead_scores", Kind::History("lead_score_history")),
];
pub const BACKFILL_OUTPUTS: &[(&str, Kind)] = &[
    ("account_scores", Kind::History("account_score_history")),
    ("rejects", Kind::Output),
];

/// The `weights` pipeline after [`judge_pipeline`] (docs/weights.md).
pub const WEIGHTS_PIPELINE: &[(&str, Kind)] = &[
    ("rejects", Kind::Output),
    ("opportunities", Kind::View),
    ("converted_tallies", Kind::Step),
    ("stage_tallies", Kind::Output),
    ("stage_tally_trend", Kind::Output),
    ("action_lift", Kind::Output),
];

/// What `review` runs for each model after [`judge_pipeline`] and `opportunities`, before
/// collecting `model_review` (docs/review.md): the model's own judging and fold. `lead_activity` is
/// written as a step so that `model_review`'s plan stays shallow enough to be sent to a cluster
/// (a plan nested too deeply fails to decode there).
pub const REVIEW_MODEL_PIPELINE: &[(&str, Kind)] =
    &[("judged_events", Kind::View), ("lead_activity", Kind::Step)];

/// Where query text comes from.
#[derive(Clone, Debug, Default)]
pub struct QuerySource {
    dir: Option<PathBuf>,
    /// Queries that run from another file than their own name's: `(name, file)`, over the
    /// [`VARIANTS`].
    files: Vec<(String, String)>,
}

impl QuerySource {
    /// Embedded queries, each replaced by `dir/<name>.sql` when that file exists.
    pub fn new(dir: Option<&Path>) -> Result<Self> {
        if let Some(d) = dir
            && !d.is_dir()
        {
            return Err(Error::Config(format!(
                "--queries {}: not a directory",
                d.display()
            )));
        }
        Ok(Self {
            dir: dir.map(Path::to_path_buf),
            files: Vec::new(),
        })
    }

    /// The text of query `name` with `template`'s variables (and, for one of the [`VARIANTS`],
    /// its own) expanded.
    pub fn expand(&self, template: &Template, name: &str) -> Result<String> {
        let own = variant(name).map_or(&[][..], |(_, _, vars)| vars);
        template.expand_with(name, &self.text(name)?, own)
    }

    /// Whether the directory of queries has its own `name.sql`.
    pub fn overrides(&self, name: &str) -> bool {
        self.dir
            .as_ref()
            .is_some_and(|d| d.join(format!("{name}.sql")).exists())
    }

    /// Makes query `name` run from file `file` (`file.sql`, embedded or in the directory).
    pub fn run_from(&mut self, name: &str, file: &str) {
        self.files.retain(|(n, _)| n != name);
        self.files.push((name.to_string(), file.to_string()));
    }

    /// The text of query `name`.
    pub fn text(&self, name: &str) -> Result<String> {
        let name = match self.files.iter().find(|(n, _)| n == name) {
            Some((_, file)) => file.as_str(),
            None => variant(name).map_or(name, |(_, file, _)| file),
        };
        if let Some(dir) = &self.dir {
            let path = dir.join(format!("{name}.sql"));
            if path.exists() {
                return std::fs::read_to_string(&path)
                    .map_err(|e| Error::io(format!("reading {}", path.display()), e));
            }
        }
        EMBEDDED
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, sql)| sql.to_string())
            .ok_or_else(|| Error::Query {
                name: name.into(),
                message: "no such query".into(),
            })
    }
}

/// Values for `${name}` in query text.
#[derive(Clone, Debug, Default)]
pub struct Template {
    vars: BTreeMap<String, String>,
}

impl Template {
    /// Sets one variable to a piece of SQL.
    pub fn set(&mut self, name: &str, sql: impl Into<String>) {
        self.vars.insert(name.to_string(), sql.into());
    }

    /// Replaces every `${name}`; an unknown name is an error naming the query and the variable.
    /// Text in `--` comments is left alone, so comments may mention variables freely.
    pub fn expand(&self, query: &str, text: &str) -> Result<String> {
        self.expand_with(query, text, &[])
    }

    /// [`Template::expand`], with `own` variables taking precedence over the template's.
    pub fn expand_with(&self, query: &str, text: &str, own: &[(&str, &str)]) -> Result<String> {
        let mut out = String::with_capacity(text.len() * 2);
        let mut in_string = false;
        let mut rest = text;
        while !rest.is_empty() {
            if !in_string && rest.starts_with("--") {
                let end = rest.find('\n').map_or(rest.len(), |i| i + 1);
                out.push_str(&rest[..end]);
                rest = &rest[end..];
            } else if rest.starts_with("${") {
                let after = &rest[2..];
                let end = after.find('}').ok_or_else(|| Error::Query {
                    name: query.into(),
                    message: "a `${` is never closed by `}`".into(),
                })?;
                let name = after[..end].trim();
                let value = own
                    .iter()
                    .find(|(var, _)| *var == name)
                    .map(|(_, value)| *value)
                    .or_else(|| self.vars.get(name).map(String::as_str))
                    .ok_or_else(|| Error::Query {
                        name: query.into(),
                        message: format!(
                            "unknown template variable ${{{name}}} (known: {})",
                            self.vars.keys().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    })?;
                out.push_str(value);
                rest = &after[end + 1..];
            } else {
                let c = rest.chars().next().expect("not empty");
                if c == '\'' {
                    in_string = !in_string;
                }
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
        Ok(out)
    }

    /// The variables every scoring query may use, for `model` at the snapshot days of
    /// `snapshots` (one day for `score`).
    ///
    /// `${snapshots}` is a table of `as_of` (Date32), `cutoff` and `cold_since` (timestamps), one
    /// row per snapshot; `${fold}` the parameters of `lead_fold` for them.
    pub fn for_model(model: &Model, snapshots: &Snapshots, products: bool) -> Template {
        let mut t = Template::default();
        let days = snapshots.days();
        let cold_micros = (model.cold_days * MICROS_PER_DAY).round() as i64;
        let rows: Vec<String> = days
            .iter()
            .map(|d| {
                let cutoff = cutoff_micros(*d);
                format!(
                    "(date '{d}', {}, {})",
                    timestamp_literal(cutoff),
                    timestamp_literal(cutoff - cold_micros)
                )
            })
            .collect();
        t.set(
            "snapshots",
            format!(
                "(select * from (values {}) as snapshot_days(as_of, cutoff, cold_since))",
                rows.join(", ")
            ),
        );
        let last = days.last().copied().unwrap_or(snapshots.to);
        t.set("last_cutoff", timestamp_literal(cutoff_micros(last)));
        t.set("threshold", float(model.threshold));
        t.set("cold_span", duration_literal(cold_micros));
        t.set("account_threshold", float(model.account_threshold));
        t.set("account_aggregate", model.account_aggregate.as_str());
        t.set(
            "model_version",
            format!("cast({} as bigint)", model.version),
        );
        t.set("model_name", string(&model.name));
        let spec = FoldSpec::new(
            model.threshold,
            model.floor_points(),
            model.decay,
            snapshots,
            model.stages.len(),
            products,
        );
        t.set("fold", string(&spec.to_json()));
        t.set_fold_input(false);
        let scored: Vec<ScoredRule> = model
            .actions
            .iter()
            .map(|r| ScoredRule {
                action: r.action.clone(),
                assets: r.assets.clone(),
                points: r.points,
                fraction: r.fraction,
                stage_rank: model.rule_stage_rank(r).map(|n| n as i64),
            })
            .collect();
        let patterns: Vec<RulePattern> = scored.iter().map(ScoredRule::pattern).collect();
        t.set(
            "rules",
            string(&serde_json::to_string(&patterns).expect("rules serialize")),
        );
        t.set(
            "scored_rules",
            string(&serde_json::to_string(&scored).expect("rules serialize")),
        );
        t.set("rule_table", rule_table(model));
        let mut value_actions: Vec<String> = model
            .actions
            .iter()
            .filter(|r| r.fraction)
            .map(|r| string(&r.action))
            .collect();
        value_actions.sort();
        value_actions.dedup();
        // rare_key's: the fraction rules' actions (0..1), then nps_response with its 0..10.
        let mut bounds = value_actions.clone();
        bounds.push(format!("{}, 10", string("nps_response")));
        t.set("value_bounds", bounds.join(", "));
        value_actions.push(string("nps_response"));
        value_actions.sort();
        value_actions.dedup();
        t.set("value_actions", value_actions.join(", "));
        t.set("event_rows", "events");
        t.set("kept_rows", "kept_events");
        t.set("stage_table", stage_table(model, false));
        t.set("stage_table_and_none", stage_table(model, true));
        t.set("stage_of_rank", stage_case(model, "stage_rank", true));
        t.set("rank_of_stage", stage_case(model, "stage", false));
        let tallies = |f: &dyn Fn(usize, &str) -> String| -> String {
            model
                .stages
                .iter()
                .enumerate()
                .map(|(i, s)| f(i + 1, s))
                .collect::<Vec<_>>()
                .join("\n        ")
        };
        t.set(
            "tally_columns",
            tallies(&|rank, s| format!("a.tallies[{rank}] as tally_{s},")),
        );
        t
    }

    /// Adds `${fold_input}`: the rows `fold_events` groups by lead, `lead_rows` itself or a
    /// subquery over it, and `${fold_rows}`, the test of the fold's FILTER.
    ///
    /// Hashed (the default): the rows as they are, grouped in a hash table after the engine has
    /// partitioned them by lead (in one phase: see `plan_rules::OnePhaseFold`); each partition's
    /// leads are folded, and their snapshot rows built, when its input ends.
    ///
    /// Streamed (`backfill` under `--memory-limit`): numbered by a window over `lead_id`, `ts`,
    /// which sorts them by lead (a sort that spills) and lets the grouping emit each lead's
    /// snapshot rows as soon as its last event has passed, so no more than a batch of leads' rows
    /// is ever held. Slower, and bounded.
    ///
    /// Also adds `${fold_text}`, the type `lead_activity.sql` casts the events' text columns to:
    /// `Utf8View` (as read: no copy) when hashed, `Utf8` when streamed, copying each batch's
    /// texts out of the string views before the sort: a view batch holds (and is counted for)
    /// the whole buffers of the batches it was cut from, which left the sort's merge too little
    /// of a small pool.
    ///
    /// The FILTER leaves out rows without a lead id; for the streamed input it also names the
    /// numbering (`n > 0`, always true), which keeps the window, and so the sort, in the plan.
    pub fn set_fold_input(&mut self, streamed: bool) {
        let (sql, rows, text) = if streamed {
            (
                "(select r.*, row_number() over (partition by r.lead_id order by r.ts) as n \
                 from lead_rows r)",
                "r.n > 0 and r.lead_id is not null",
                "'Utf8'",
            )
        } else {
            ("lead_rows", "r.lead_id is not null", "'Utf8View'")
        };
        self.set("fold_text", text);
        self.set("fold_input", sql);
        self.set("fold_rows", rows);
    }

    /// Adds `${window_from}` and `${window_to}`: the bounds of a window `[from, to)` of times, as
    /// timestamp literals (the starts of those days); an open end becomes a time far before or
    /// after any data (year 1, year 9999), so that queries compare without special cases.
    pub fn set_window(&mut self, from: Option<NaiveDate>, to: Option<NaiveDate>) {
        let start = |d: Option<NaiveDate>, open: NaiveDate| {
            let midnight = d
                .unwrap_or(open)
                .and_hms_opt(0, 0, 0)
                .expect("midnight exists");
            timestamp_literal(midnight.and_utc().timestamp_micros())
        };
        let first = NaiveDate::from_ymd_opt(1, 1, 1).expect("valid date");
        let last = NaiveDate::from_ymd_opt(9999, 12, 31).expect("valid date");
        self.set("window_from", start(from, first));
        self.set("window_to", start(to, last));
    }

    /// Adds `${fit}`: over a row `l` of `leads`, the fit rules the lead matches, as the list of
    /// `{from, to, points}` structs that `lead_fold` takes (`from`/`to` bound the cutoffs at which
    /// the rule holds, null for always); a constant 0 without rules or a leads file.
    pub fn set_fit(&mut self, model: &Model, has_leads: bool) {
        if !has_leads || model.fits.is_empty() {
            self.set("fit", "cast(0 as double)");
            return;
        }
        let always = timestamp_literal_null();
        let terms: Vec<String> = model
            .fits
            .iter()
            .map(|rule| {
                let c = format!("l.\"{}\"", rule.column.replace('"', "\"\""));
                let points = float(rule.points);
                let holds = |test: String| {
                    format!(
                        "case when {test} then named_struct('from', {always}, 'to', {always}, \
                         'points', {points}) end"
                    )
                };
                match &rule.test {
                    FitTest::In(values) => holds(format!(
                        "lower(trim(cast({c} as varchar))) in ({})",
                        values
                            .iter()
                            .map(|v| string(v))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                    FitTest::Range { min, max } => {
                        let n = format!("try_cast({c} as double)");
                        let mut parts = Vec::new();
                        if let Some(lo) = min {
                            parts.push(format!("{n} >= {}", float(*lo)));
                        }
                        if let Some(hi) = max {
                            parts.push(format!("{n} <= {}", float(*hi)));
                        }
                        holds(parts.join(" and "))
                    }
                    FitTest::WithinDays(days) => {
                        // C <= t <= C + N days  <=>  t - N days <= C <= t
                        let span = duration_literal((days * MICROS_PER_DAY).round() as i64);
                        let t = format!(
                            "arrow_cast(try_cast({c} as timestamp), \
                             'Timestamp(Microsecond, Some(\"UTC\"))')"
                        );
                        format!(
                            "case when {t} is not null then named_struct('from', {t} - {span}, \
                             'to', {t}, 'points', {points}) end"
                        )
                    }
                }
            })
            .collect();
        self.set(
            "fit",
            format!("make_array(\n        {}\n    )", terms.join(",\n        ")),
        );
    }
}

/// A SQL literal of type Duration(µs).
pub fn duration_literal(micros: i64) -> String {
    format!("arrow_cast({micros}, 'Duration(Microsecond)')")
}

/// A null of type Timestamp(µs, "UTC").
fn timestamp_literal_null() -> String {
    "arrow_cast(null, 'Timestamp(Microsecond, Some(\"UTC\"))')".to_string()
}

/// A SQL literal of type Timestamp(µs, "UTC").
pub fn timestamp_literal(micros: i64) -> String {
    let t = chrono::DateTime::from_timestamp_micros(micros).expect("in range");
    format!(
        "arrow_cast('{}', 'Timestamp(Microsecond, Some(\"UTC\"))')",
        t.format("%Y-%m-%dT%H:%M:%S%.6fZ")
    )
}

/// A SQL float literal that reads back as exactly `v`.
pub fn float(v: f64) -> String {
    format!("cast({v:?} as double)")
}

/// A SQL string literal.
pub fn string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A constant table as one VALUES list (a single partition: a union of one-row selects would
/// make one partition per row, which a distributed plan then ships around as many tasks).
/// `columns` are `(name, SQL type)`; each row holds SQL literals in that order.
fn values_table(columns: &[(&str, &str)], rows: &[Vec<String>]) -> String {
    let typed: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(i, (name, ty))| format!("cast(column{} as {ty}) as {name}", i + 1))
        .collect();
    if rows.is_empty() {
        let nulls: Vec<String> = columns
            .iter()
            .map(|(name, ty)| format!("cast(null as {ty}) as {name}"))
            .collect();
        return format!("(select {} where false)", nulls.join(", "));
    }
    let rows: Vec<String> = rows.iter().map(|r| format!("({})", r.join(", "))).collect();
    format!(
        "(select {} from (values {}))",
        typed.join(", "),
        rows.join(", ")
    )
}

fn rule_table(model: &Model) -> String {
    let columns = [
        ("rule_id", "int"),
        ("points", "double"),
        ("is_fraction", "boolean"),
        ("stage", "varchar"),
        ("stage_rank", "int"),
        ("action", "varchar"),
        ("assets", "varchar"),
    ];
    let rows: Vec<Vec<String>> = model
        .actions
        .iter()
        .enumerate()
        .map(|(i, r)| {
            vec![
                (i + 1).to_string(),
                float(r.points),
                r.fraction.to_string(),
                r.stage.as_deref().map_or("null".to_string(), string),
                model
                    .rule_stage_rank(r)
                    .map_or("null".to_string(), |n| n.to_string()),
                string(&r.action),
                r.assets
                    .as_ref()
                    .map_or("null".to_string(), |a| string(&a.join(", "))),
            ]
        })
        .collect();
    values_table(&columns, &rows)
}

/// A CASE expression over the unqualified column `column`: the stage name of a rank (`to_name`)
/// or the rank of a stage name; null for anything else.
fn stage_case(model: &Model, column: &str, to_name: bool) -> String {
    let null = if to_name {
        "cast(null as varchar)"
    } else {
        "cast(null as int)"
    };
    if model.stages.is_empty() {
        return null.into();
    }
    let arms: Vec<String> = model
        .stages
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let (rank, name) = (i + 1, string(s));
            if to_name {
                format!("when {rank} then {name}")
            } else {
                format!("when {name} then {rank}")
            }
        })
        .collect();
    format!("case {column} {} else {null} end", arms.join(" "))
}

/// The stages as a table of `stage_rank` (from 1) and `stage`; with `none`, one more row with
/// both null (leads without a stage).
fn stage_table(model: &Model, none: bool) -> String {
    let mut rows: Vec<Vec<String>> = model
        .stages
        .iter()
        .enumerate()
        .map(|(i, s)| vec![(i + 1).to_string(), string(s)])
        .collect();
    if none {
        rows.push(vec!["null".into(), "null".into()]);
    }
    values_table(&[("stage_rank", "int"), ("stage", "varchar")], &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_known_and_rejects_unknown_variables() {
        let mut t = Template::default();
        t.set("x", "42");
        assert_eq!(
            t.expand("q", "select ${x}, ${ x }").unwrap(),
            "select 42, 42"
        );
        let err = t.expand("q", "select ${y}").unwrap_err().to_string();
        assert!(err.contains("${y}"), "{err}");
        assert!(t.expand("q", "select ${x").is_err());
        // Comments are left alone, strings are not.
        assert_eq!(
            t.expand("q", "-- uses ${y}\nselect '--', ${x}").unwrap(),
            "-- uses ${y}\nselect '--', 42"
        );
    }

    #[test]
    fn cutoff_is_the_next_midnight() {
        let d = chrono::NaiveDate::from_ymd_opt(2026, 9, 1).unwrap();
        assert_eq!(cutoff_micros(d), 1_788_307_200_000_000);
        assert!(timestamp_literal(cutoff_micros(d)).contains("2026-09-02T00:00:00.000000Z"));
    }

    #[test]
    fn a_variant_runs_from_its_file_with_its_own_variables() {
        let source = QuerySource::default();
        let mut t = Template::default();
        t.set("event_rows", "events");
        t.set("kept_rows", "kept_events");
        t.set("rules", "'[]'");
        t.set("rule_table", "(select 1 as rule_id)");
        let kept = source.expand(&t, "kept_events").unwrap();
        assert!(kept.contains("from events e"), "{kept}");
        let rare = source.expand(&t, "kept_rare_events").unwrap();
        assert!(rare.contains("from rare_events e"), "{rare}");
        let judged = source.expand(&t, "judged_rare_events").unwrap();
        assert!(judged.contains("from kept_rare_events k"), "{judged}");
        // The template itself is left as it was.
        let plain = source.expand(&t, "judged_events").unwrap();
        assert!(plain.contains("from kept_events k"), "{plain}");
    }

    #[test]
    fn a_query_can_run_from_another_file() {
        let mut source = QuerySource::default();
        source.run_from("repeated_keys", "repeated_keys_grouped");
        let text = source.text("repeated_keys").unwrap();
        assert!(text.contains("group by"), "{text}");
        source.run_from("repeated_keys", "repeated_keys");
        assert!(
            source
                .text("repeated_keys")
                .unwrap()
                .contains("repeated_keys(event_id)")
        );
    }

    #[test]
    fn every_pipeline_query_is_embedded() {
        for (name, _) in judge_pipeline(true, true)
            .iter()
            .chain(SCORE_PIPELINE)
            .chain(BACKFILL_PIPELINE)
            .chain(WEIGHTS_PIPELINE)
            .chain(REVIEW_MODEL_PIPELINE)
            .chain(&[("model_review", Kind::Output)])
        {
            assert!(QuerySource::default().text(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn strings_and_floats_are_quoted() {
        assert_eq!(string("it's"), "'it''s'");
        assert_eq!(float(100.0), "cast(100.0 as double)");
        assert_eq!(float(0.1), "cast(0.1 as double)");
    }
}
