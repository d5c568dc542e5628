//! The local fold of `lead_activity.sql`: [`LeadFoldExec`], and the plan rule that puts it in
//! place of DataFusion's aggregate, [`LeadFoldRule`].
//!
//! `lead_activity.sql` says what a lead's activity is: `fold_events` over each lead's rows,
//! unnested into one row per snapshot. DataFusion runs that as a hash exchange of every row by
//! lead, a grouped aggregate whose state is every event, and an unnest that copies each
//! snapshot out of its list. On one machine this operator does the same work in one piece:
//!
//! - **Reading.** A few workers (one per core) take the input partitions one after another and
//!   judge each row where it is read (`udf::lead_fold::judge_raw_row`, the fold's own judging).
//!   Each row's lead picks one of a few hundred *parts*, and its event is appended to that part
//!   in the worker's own storage, with the lead numbered within the part. Nothing is shared
//!   between workers while they read.
//! - **Folding.** The parts are then folded one at a time, several side by side: the workers'
//!   leads of a part are merged (a few thousand, in cache), their events gathered lead by lead
//!   (a counting sort), and each lead folded and walked by the same code as the aggregate
//!   (`udf::lead_fold::LeadFold`), its snapshot rows written straight into the output columns.
//! - **Order.** The operator has one output partition per worker; partition `k` folds parts
//!   `k`, `k + workers`, ... in order (the input is read once, by the first partition executed).
//!   With integer ids whose range the session knows (from the inputs' statistics), parts are
//!   ranges of ids and each partition's rows come out sorted by lead (the plan says so, and
//!   `lead_scores`' `ORDER BY` becomes a merge); a dense range (ids of a sequence) also numbers
//!   a part's leads by their offset, with no hash table at all. Text ids, or integers of
//!   unknown range, go to parts by a hash and come out in a fixed order of their own.
//!
//! The result is the same rows as DataFusion's plan: every lead is folded by the same function
//! over the same events, and the tie order inside a lead's fold does not depend on the order rows
//! arrive in. The rule applies to sessions of this process only (a cluster's executors run
//! DataFusion's aggregate) and not under `--memory-limit`, where the aggregate spills and this
//! operator could not (it holds every event until its input ends, as the aggregate does).

use std::any::Any;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::builder::make_view;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int64Array, RecordBatch, StringViewArray, StructArray,
    new_null_array,
};
use datafusion::arrow::buffer::BooleanBuffer;
use datafusion::arrow::compute::interleave;
use datafusion::arrow::datatypes::{DataType, Fields, Int64Type, SchemaRef};
use datafusion::common::config::ConfigOptions;
use datafusion::common::runtime::SpawnedTask;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, Result, ScalarValue, internal_err};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::PhysicalSortExpr;
use datafusion::physical_expr::expressions::{Column, Literal};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::metrics::{ExecutionPlanMetricsSet, MetricBuilder, MetricsSet};
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::stream::RecordBatchReceiverStream;
use datafusion::physical_plan::udaf::AggregateFunctionExpr;
use datafusion::physical_plan::unnest::UnnestExec;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, Partitioning,
    PlanProperties,
};
use futures::{FutureExt, StreamExt};
use hashbrown::HashTable;

use crate::udf::fold_events::{self, Judge};
use crate::udf::lead_fold::{
    Event, FitArg, FitRule, FoldSpec, Judged, LeadFold, NO_PRODUCT, Output, Params, Products,
    RawArgs, Reason, Scratch, judge_raw_row, utc_micros,
};

use crate::udf::fold_events::{
    ACCOUNT_ARG, DROPPED_ARG, EVENT_ARG, LEAD_ARG, PARAMS_ARG, RULES_ARG,
};

/// The range of integer lead ids (lowest, highest) over the events and the leads table, when
/// the session knows it: set by the commands from the files' statistics, read by
/// [`LeadFoldRule`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeadIdRange {
    pub lo: i64,
    pub hi: i64,
    /// Rows of the events input: a range not much wider than this is dense.
    pub rows: u64,
}

/// The rows a fold rejected: `lead_id`, `ts`, `action`, `asset`, `product`, `value`,
/// `event_id`, `reason` (the columns and order of `judged_events.sql`'s rejected rows).
pub type Rejected = Arc<Mutex<Option<RecordBatch>>>;

/// The snapshot fields that each column of `projection` picks from the column `unnest` gives
/// (`s['lead_id'] as lead_id`, ...), by position; `None` when a column is anything else.
fn picked_fields(projection: &ProjectionExec, unnest: &UnnestExec) -> Option<Vec<usize>> {
    use datafusion::physical_expr::ScalarFunctionExpr;
    let DataType::Struct(fields) = unnest.schema().field(0).data_type().clone() else {
        return None;
    };
    projection
        .expr()
        .iter()
        .map(|e| {
            let call = e.expr.downcast_ref::<ScalarFunctionExpr>()?;
            let [column, name] = call.args() else {
                return None;
            };
            if call.name() != "get_field" || column.downcast_ref::<Column>()?.index() != 0 {
                return None;
            }
            let name = match name.downcast_ref::<Literal>()?.value() {
                ScalarValue::Utf8(Some(n)) | ScalarValue::Utf8View(Some(n)) => n.clone(),
                _ => return None,
            };
            fields.iter().position(|f| *f.name() == name)
        })
        .collect()
}

/// What the session tells the local fold, as a configuration extension: the lead id range, and
/// where to leave the rows it rejects (when a command wants them: see `score::Inputs::pipeline`
/// and `score::Inputs::fold_then`).
#[derive(Clone, Debug, Default)]
pub struct FoldOptions {
    pub range: Option<LeadIdRange>,
    pub rejected: Option<Rejected>,
}

impl datafusion::config::ConfigExtension for FoldOptions {
    const PREFIX: &'static str = "leadscore";
}

impl datafusion::config::ExtensionOptions for FoldOptions {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn cloned(&self) -> Box<dyn datafusion::config::ExtensionOptions> {
        Box::new(self.clone())
    }

    fn set(&mut self, key: &str, _value: &str) -> Result<()> {
        internal_err!("leadscore.{key} is set by leadscore, not by SQL")
    }

    fn entries(&self) -> Vec<datafusion::config::ConfigEntry> {
        Vec::new()
    }
}

/// Plans [`LeadFoldExec`] in place of `UnnestExec <- ProjectionExec <- AggregateExec` when the
/// aggregate is one `fold_events` with lead ids, grouped by that lead id alone (what
/// `lead_activity.sql` writes), in a session of this process.
#[derive(Debug, Default)]
pub struct LeadFoldRule;

impl PhysicalOptimizerRule for LeadFoldRule {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let range = config.extensions.get::<FoldOptions>().and_then(|o| o.range);
        let partitions = config.execution.target_partitions;
        crate::plan_rules::rewrite_nodes(plan, |node| {
            Ok(LeadFoldExec::replacing(node, range, partitions)?
                .map(|exec| Arc::new(exec) as Arc<dyn ExecutionPlan>))
        })
    }

    fn name(&self) -> &str {
        "leadscore_lead_fold"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// How rows find their part, and how a part numbers its leads.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Layout {
    /// Integer ids in `lo..lo + parts × width`: part `(id - lo) / width`, a lead numbered by its
    /// offset in the part. Rows come out sorted by lead.
    Dense { lo: i64, shift: u32, parts: usize },
    /// Integer ids spread over `lo..=hi`: parts are equal ranges, leads numbered in a table of
    /// the part. Rows come out sorted by lead.
    Ranges { lo: i64, span: u128, parts: usize },
    /// Parts by a hash of the id; rows come out in a fixed order that is not the ids'.
    Hashed { parts: usize },
}

/// Parts for a hashed layout: enough that a part's leads and events stay in cache while it is
/// folded, few enough that each worker's part buffers stay small.
const HASHED_PARTS: usize = 256;
/// Leads of a dense part: at least this many id offsets.
const DENSE_MIN_BITS: u32 = 12;
/// A dense layout has at most about this many parts.
const DENSE_PARTS_BITS: u32 = 9;

impl Layout {
    fn for_keys(key: &DataType, range: Option<LeadIdRange>) -> Layout {
        let Some(r) = range.filter(|r| *key == DataType::Int64 && r.lo <= r.hi) else {
            return Layout::Hashed {
                parts: HASHED_PARTS,
            };
        };
        let span = (i128::from(r.hi) - i128::from(r.lo) + 1) as u128;
        let room = u128::from(r.rows.saturating_mul(4)).max(1 << 20);
        if span <= room {
            let bits = 128 - (span - 1).leading_zeros();
            let shift = bits.saturating_sub(DENSE_PARTS_BITS).max(DENSE_MIN_BITS);
            let parts = span.div_ceil(1 << shift) as usize;
            return Layout::Dense {
                lo: r.lo,
                shift,
                parts,
            };
        }
        Layout::Ranges {
            lo: r.lo,
            span,
            parts: HASHED_PARTS,
        }
    }

    fn parts(&self) -> usize {
        match *self {
            Layout::Dense { parts, .. }
            | Layout::Ranges { parts, .. }
            | Layout::Hashed { parts } => parts,
        }
    }

    /// Whether rows come out sorted by lead.
    fn ordered(&self) -> bool {
        !matches!(self, Layout::Hashed { .. })
    }

    /// The part of integer id `id`. Ids outside the known range go to the first or last part
    /// (whose table numbers them), which keeps the parts in id order.
    #[inline]
    fn part_of_int(&self, id: i64) -> usize {
        match *self {
            Layout::Dense { lo, shift, parts } => {
                let offset = i128::from(id) - i128::from(lo);
                ((offset.max(0) >> shift) as usize).min(parts - 1)
            }
            Layout::Ranges { lo, span, parts } => {
                let offset = (i128::from(id) - i128::from(lo)).max(0) as u128;
                ((offset * parts as u128 / span) as usize).min(parts - 1)
            }
            Layout::Hashed { parts } => fast_range(int_hash(id), parts),
        }
    }
}

/// A hash of an integer id.
#[inline]
fn int_hash(id: i64) -> u64 {
    let h = (id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    h ^ (h >> 29)
}

/// The hash a table of one part's ids uses: a part is chosen by the high bits of an id's hash
/// (`fast_range`), which the ids of a part therefore share, and a hash table tells entries
/// apart by its hash's high bits first. Multiplied by an odd number, the high bits vary again
/// and the low ones (where the table looks first) stay as varied as they were.
#[inline]
fn in_part(hash: u64) -> u64 {
    hash.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// A hash of a text id (fixed seeds: the order of hashed parts is the same in every run).
#[inline]
fn text_hash(bytes: &[u8]) -> u64 {
    use std::hash::BuildHasher;
    foldhash::fast::FixedState::with_seed(0x5EED).hash_one(bytes)
}

/// `hash` mapped onto `0..n` by its high bits.
#[inline]
fn fast_range(hash: u64, n: usize) -> usize {
    (((hash >> 32) * n as u64) >> 32) as usize
}

/// `fold_events` over every lead's rows, unnested: one row per lead and snapshot (see the
/// module's text).
#[derive(Debug)]
pub struct LeadFoldExec {
    input: Arc<dyn ExecutionPlan>,
    /// The fields of a snapshot row.
    fields: Fields,
    /// The fields written as the output's columns, by position; `None`: the output is one
    /// struct column of them all (what the unnest gives).
    picked: Option<Vec<usize>>,
    fold: Arc<AggregateFunctionExpr>,
    filter: Option<Arc<dyn PhysicalExpr>>,
    layout: Layout,
    /// Folds run side by side.
    workers: usize,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
    /// The reading the output partitions share.
    runs: Arc<Runs>,
}

impl LeadFoldExec {
    /// The fold that replaces `plan`, when `plan` unnests a `fold_events` aggregate grouped by
    /// its lead id.
    fn replacing(
        plan: &Arc<dyn ExecutionPlan>,
        range: Option<LeadIdRange>,
        workers: usize,
    ) -> Result<Option<Self>> {
        // The projection that picks the snapshot fields out of the unnested column, when every
        // one of its columns is a field: the operator writes those columns itself.
        if let Some(projection) = plan.downcast_ref::<ProjectionExec>() {
            let Some(unnest) = projection.input().downcast_ref::<UnnestExec>() else {
                return Ok(None);
            };
            let Some(picked) = picked_fields(projection, unnest) else {
                return Ok(None);
            };
            return Self::folding(unnest, range, workers, Some((picked, projection.schema())));
        }
        match plan.downcast_ref::<UnnestExec>() {
            Some(unnest) => Self::folding(unnest, range, workers, None),
            None => Ok(None),
        }
    }

    /// The fold in place of `unnest`, when it unnests a `fold_events` aggregate grouped by its
    /// lead id; `picked`: the fields (by position) and schema of a projection of the unnested
    /// column it replaces too.
    fn folding(
        unnest: &UnnestExec,
        range: Option<LeadIdRange>,
        workers: usize,
        picked: Option<(Vec<usize>, SchemaRef)>,
    ) -> Result<Option<Self>> {
        // The unnest's input: the aggregate, under projections that only pick its fold column.
        let mut below = unnest.input();
        while let Some(projection) = below.downcast_ref::<ProjectionExec>() {
            below = projection.input();
        }
        let Some(aggregate) = below.downcast_ref::<AggregateExec>() else {
            return Ok(None);
        };
        if !matches!(
            aggregate.mode(),
            AggregateMode::Single | AggregateMode::SinglePartitioned
        ) || aggregate.group_expr().has_grouping_set()
            || aggregate.limit_options().is_some()
        {
            return Ok(None);
        }
        let ([(key, _)], [fold], [filter]) = (
            aggregate.group_expr().expr(),
            aggregate.aggr_expr(),
            aggregate.filter_expr(),
        ) else {
            return Ok(None);
        };
        let args = fold.expressions();
        if fold.fun().name() != fold_events::NAME || args.len() <= ACCOUNT_ARG {
            return Ok(None);
        }
        // Grouped by the lead id argument itself, so that each group is one lead.
        if !key.eq(&args[LEAD_ARG]) {
            return Ok(None);
        }
        let spec = FoldSpec::parse(&literal_text(&args[PARAMS_ARG])?)
            .map_err(|e| DataFusionError::Plan(format!("{}: {e}", fold_events::NAME)))?;
        if spec.lead_bits > 0 {
            return Ok(None);
        }
        // Each projection between the unnest and the aggregate must keep the fold's column as
        // the one column the unnest reads; the simplest check is that the unnest's input has
        // one column, the fold's type.
        let unnest_input = unnest.input().schema();
        if unnest_input.fields().len() != 1
            || unnest_input.field(0).data_type() != fold.field().data_type()
        {
            return Ok(None);
        }
        // Every input partition is read, in any order: exchanges below the aggregate only move
        // rows between partitions.
        let mut input = Arc::clone(aggregate.input());
        while input.downcast_ref::<RepartitionExec>().is_some()
            || input.downcast_ref::<CoalescePartitionsExec>().is_some()
        {
            input = Arc::clone(input.children()[0]);
        }
        let key_type = args[LEAD_ARG].data_type(&input.schema())?;
        let layout = Layout::for_keys(&key_type, range);
        let DataType::Struct(fields) = unnest.schema().field(0).data_type().clone() else {
            return Ok(None);
        };
        let (picked, schema) = match picked {
            Some((picked, schema)) => (Some(picked), schema),
            None => (None, unnest.schema()),
        };
        let mut equivalences = EquivalenceProperties::new(Arc::clone(&schema));
        if layout.ordered() {
            // Rows by lead, each lead's snapshots by day.
            let position = |name: &str| {
                let field = fields.iter().position(|f| f.name() == name)?;
                picked.as_ref()?.iter().position(|&p| p == field)
            };
            if let (Some(lead), Some(day)) = (position("lead_id"), position("as_of")) {
                let sorted = |i: usize| {
                    let name = schema.field(i).name();
                    // No row has a null lead or day; declared as SQL's `ORDER BY` asks by
                    // default (ascending, nulls last), so that such a sort is seen as done.
                    PhysicalSortExpr::new(
                        Arc::new(Column::new(name, i)),
                        datafusion::arrow::compute::SortOptions {
                            descending: false,
                            nulls_first: false,
                        },
                    )
                };
                equivalences.add_ordering([sorted(lead), sorted(day)]);
            }
        }
        let properties = PlanProperties::new(
            equivalences,
            Partitioning::UnknownPartitioning(workers.max(1)),
            EmissionType::Final,
            Boundedness::Bounded,
        );
        Ok(Some(Self {
            input,
            fields,
            picked,
            fold: Arc::clone(fold),
            filter: filter.clone(),
            layout,
            workers: workers.max(1),
            properties: Arc::new(properties),
            metrics: ExecutionPlanMetricsSet::new(),
            runs: Arc::default(),
        }))
    }

    fn with_input(&self, input: Arc<dyn ExecutionPlan>) -> Self {
        Self {
            input,
            fields: self.fields.clone(),
            picked: self.picked.clone(),
            fold: Arc::clone(&self.fold),
            filter: self.filter.clone(),
            layout: self.layout,
            workers: self.workers,
            properties: Arc::clone(&self.properties),
            metrics: self.metrics.clone(),
            runs: Arc::default(),
        }
    }

    /// Reads every input partition into parts (once for all output partitions), lists the
    /// rejected rows where the session asked for them, and hands back the parts to fold.
    async fn read(self: Arc<Self>, context: Arc<TaskContext>) -> Result<Arc<Folding>> {
        let setup = Arc::new(Setup::new(&self)?);
        let reading_time = MetricBuilder::new(&self.metrics).subset_time("read_time", 0);
        let reading_started = reading_time.timer();
        let inputs = self.input.output_partitioning().partition_count();
        let readers = self.workers.min(inputs).max(1);
        let next = Arc::new(AtomicUsize::new(0));
        let memory = MemoryConsumer::new("LeadFoldExec").register(context.memory_pool());
        let reading: Vec<SpawnedTask<Result<Reader>>> = (0..readers)
            .map(|_| {
                let reader = Reader::new(Arc::clone(&setup), Arc::clone(&self.input));
                let (next, context) = (Arc::clone(&next), Arc::clone(&context));
                let filter = self.filter.clone();
                SpawnedTask::spawn(reader.read_all(next, inputs, context, filter))
            })
            .collect();
        let mut readers: Vec<Reader> = Vec::with_capacity(reading.len());
        for task in reading {
            readers.push(
                task.join_unwind()
                    .await
                    .map_err(|e| DataFusionError::ExecutionJoin(Box::new(e)))??,
            );
        }
        reading_started.done();
        memory.try_grow(readers.iter().map(Reader::bytes).sum())?;
        let sink = context
            .session_config()
            .options()
            .extensions
            .get::<FoldOptions>()
            .and_then(|o| o.rejected.clone());
        let rejected: Vec<RecordBatch> = readers
            .iter_mut()
            .flat_map(|r| std::mem::take(&mut r.rejected))
            .collect();
        if let Some(sink) = sink {
            let rows = settle_rejects(rejected, &setup.rejected_schema)?;
            MetricBuilder::new(&self.metrics)
                .counter("rejected_rows", 0)
                .add(rows.num_rows());
            *sink
                .lock()
                .map_err(|_| DataFusionError::Execution("LeadFoldExec: sink poisoned".into()))? =
                Some(rows);
        }
        Ok(Arc::new(Folding::new(setup, readers, memory)))
    }

    /// Folds the parts of output partition `partition` (parts `partition`, `partition +
    /// partitions`, ...) one after another, sending each part's rows to `tx` before the next
    /// is folded: the rows waiting to be sent stay few whatever the number of snapshots.
    async fn fold_partition(
        &self,
        reading: Reading,
        partition: usize,
        context: Arc<TaskContext>,
        tx: tokio::sync::mpsc::Sender<Result<RecordBatch>>,
    ) -> Result<()> {
        let folding = reading.await.map_err(DataFusionError::Shared)?;
        let partitions = self.properties.partitioning.partition_count();
        let folding_time = MetricBuilder::new(&self.metrics).subset_time("fold_time", partition);
        let rows = MetricBuilder::new(&self.metrics).output_rows(partition);
        let batch_rows = context.session_config().batch_size();
        let mut scratch = PartScratch::default();
        for p in (partition..folding.parts.len()).step_by(partitions) {
            let timer = folding_time.timer();
            let batches = folding.fold_part(p, batch_rows, &mut scratch)?;
            timer.done();
            for batch in batches {
                rows.add(batch.num_rows());
                if tx.send(Ok(batch)).await.is_err() {
                    return Ok(()); // the consumer stopped
                }
            }
        }
        Ok(())
    }
}

/// The reading of the input, shared by the output partitions: the first to be executed starts
/// it, the others wait for it.
type Reading = futures::future::Shared<
    futures::future::BoxFuture<'static, std::result::Result<Arc<Folding>, Arc<DataFusionError>>>,
>;

/// The reading of the current execution: started by the first output partition executed, and
/// forgotten once every partition has it, so that executing the plan again reads again.
#[derive(Default)]
struct Runs(Mutex<(Option<Reading>, usize)>);

impl std::fmt::Debug for Runs {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("Runs")
    }
}

impl Runs {
    /// The reading for one more of `partitions` output partitions; `start` starts it.
    fn reading(&self, partitions: usize, start: impl FnOnce() -> Reading) -> Result<Reading> {
        let mut runs = self
            .0
            .lock()
            .map_err(|_| DataFusionError::Execution("LeadFoldExec: a run panicked".into()))?;
        let reading = runs.0.get_or_insert_with(start).clone();
        runs.1 += 1;
        if runs.1 >= partitions {
            *runs = (None, 0);
        }
        Ok(reading)
    }
}

/// What every reader and folder shares: the fold's parameters and rules, the layout, the
/// output schema.
struct Setup {
    params: Params,
    judge: Judge,
    layout: Layout,
    fold: Arc<AggregateFunctionExpr>,
    /// The struct fields of a snapshot row, those written as columns (`None`: the struct),
    /// and the output schema.
    fields: Fields,
    picked: Option<Vec<usize>>,
    schema: SchemaRef,
    lead_type: DataType,
    account_type: DataType,
    /// The rejected rows' columns, and `dropped`.
    rejected_schema: SchemaRef,
    /// Whether the events of each rule number (0: none) take the long way: scaled by value,
    /// or numbered beyond what a compact event holds.
    long_way: Vec<bool>,
}

impl Setup {
    fn new(exec: &LeadFoldExec) -> Result<Self> {
        let args = exec.fold.expressions();
        let params = FoldSpec::parse(&literal_text(&args[PARAMS_ARG])?)
            .map_err(|e| DataFusionError::Plan(format!("{}: {e}", fold_events::NAME)))?;
        let judge = Judge::from_json(&literal_text(&args[RULES_ARG])?)?;
        let schema = exec.schema();
        let fields = exec.fields.clone();
        let input = exec.input.schema();
        let lead_type = args[LEAD_ARG].data_type(&input)?;
        let event_id_type = match args.get(EVENT_ARG) {
            Some(e) => e.data_type(&input)?,
            None => DataType::Utf8View,
        };
        let text = || DataType::Utf8View;
        let rejected_schema = Arc::new(datafusion::arrow::datatypes::Schema::new(vec![
            datafusion::arrow::datatypes::Field::new("lead_id", lead_type.clone(), true),
            datafusion::arrow::datatypes::Field::new("ts", utc_micros(), true),
            datafusion::arrow::datatypes::Field::new("action", text(), true),
            datafusion::arrow::datatypes::Field::new("asset", text(), true),
            datafusion::arrow::datatypes::Field::new("product", text(), true),
            datafusion::arrow::datatypes::Field::new("value", DataType::Float64, true),
            datafusion::arrow::datatypes::Field::new("event_id", event_id_type, true),
            datafusion::arrow::datatypes::Field::new("reason", DataType::Utf8, true),
            datafusion::arrow::datatypes::Field::new("dropped", DataType::Boolean, false),
        ]));
        let long_way = std::iter::once(false)
            .chain(
                (1..)
                    .zip(&judge.rules)
                    .map(|(n, r)| r.fraction || n >= NO_COMPACT_RULE),
            )
            .collect();
        Ok(Setup {
            long_way,
            params,
            judge,
            layout: exec.layout,
            fold: Arc::clone(&exec.fold),
            fields,
            picked: exec.picked.clone(),
            lead_type,
            account_type: args[ACCOUNT_ARG].data_type(&input)?,
            schema,
            rejected_schema,
        })
    }
}

/// The text of a constant argument.
fn literal_text(expr: &Arc<dyn PhysicalExpr>) -> Result<String> {
    match expr.downcast_ref::<Literal>().map(Literal::value) {
        Some(ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s))) => Ok(s.clone()),
        _ => internal_err!(
            "{}: rules and spec must be constant texts",
            fold_events::NAME
        ),
    }
}

/// The leads of one part's rows, as one reader read them.
///
/// A dense part numbers a lead by its id's offset in the part. Other parts keep each row's lead
/// id as it comes (the row refers to it by position): numbering leads while reading would probe a
/// table of every lead for every row, a cache miss each time once there are many leads; the ids
/// of one part are told apart when the part is folded, in a table that fits in cache.
enum Keys {
    /// Which offsets were seen is the reader's ([`Reader::dense`]).
    Dense,
    Ints(Chunks<i64>),
    /// Each row's id as a string view: inline up to 12 bytes, else pointing into `bytes`.
    Texts {
        views: Chunks<u128>,
        bytes: Vec<u8>,
    },
}

impl Keys {
    fn new(layout: &Layout, text: bool) -> Self {
        match layout {
            _ if text => Keys::Texts {
                views: Chunks::default(),
                bytes: Vec::new(),
            },
            Layout::Dense { .. } => Keys::Dense,
            _ => Keys::Ints(Chunks::default()),
        }
    }

    /// Records integer lead `id` for a row; its position is the row's reference to it.
    #[inline]
    fn add_int(&mut self, id: i64) -> u32 {
        let Keys::Ints(ids) = self else {
            unreachable!("an integer id in a part of another kind");
        };
        ids.push(id);
        ids.len as u32 - 1
    }

    /// Records text lead `id` for a row; its position is the row's reference to it.
    #[inline]
    fn add_text(&mut self, id: &[u8]) -> u32 {
        let Keys::Texts { views, bytes } = self else {
            unreachable!("a text id in a part of another kind");
        };
        let view = if id.len() <= 12 {
            make_view(id, 0, 0)
        } else {
            let offset = bytes.len() as u32;
            bytes.extend_from_slice(id);
            make_view(id, 0, offset)
        };
        views.push(view);
        views.len as u32 - 1
    }

    /// The text of a view of [`Keys::Texts`] with `bytes`.
    #[inline]
    fn text_of<'a>(view: &'a u128, bytes: &'a [u8]) -> &'a [u8] {
        const _: () = assert!(cfg!(target_endian = "little"), "views are little-endian");
        let len = *view as u32 as usize;
        if len <= 12 {
            // The bytes follow the 4-byte length inside the view.
            // SAFETY: a u128 is 16 initialized bytes, borrowed for as long as `view` is.
            let inline: &[u8; 16] = unsafe { &*(view as *const u128 as *const [u8; 16]) };
            &inline[4..4 + len]
        } else {
            let offset = (*view >> 96) as u32 as usize;
            &bytes[offset..offset + len]
        }
    }

    fn bytes(&self) -> usize {
        match self {
            Keys::Dense => 0,
            Keys::Ints(ids) => ids.bytes(),
            Keys::Texts { views, bytes } => views.bytes() + bytes.capacity(),
        }
    }
}

/// Vectors that grow by whole chunks: nothing is copied as they grow, and a part's rows are
/// read back chunk by chunk.
struct Chunks<T> {
    chunks: Vec<Vec<T>>,
    len: usize,
}

/// The first chunk's capacity; each next one doubles, up to [`CHUNK_MAX`].
const CHUNK_FIRST: usize = 256;
const CHUNK_MAX: usize = 1 << 16;

impl<T> Default for Chunks<T> {
    fn default() -> Self {
        Chunks {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Chunks<T> {
    #[inline]
    fn push(&mut self, value: T) {
        match self.chunks.last_mut() {
            Some(chunk) if chunk.len() < chunk.capacity() => chunk.push(value),
            last => {
                let size = last.map_or(CHUNK_FIRST, |c| (c.capacity() * 2).min(CHUNK_MAX));
                let mut chunk = Vec::with_capacity(size);
                chunk.push(value);
                self.chunks.push(chunk);
            }
        }
        self.len += 1;
    }

    fn iter(&self) -> impl Iterator<Item = &T> {
        self.chunks.iter().flatten()
    }

    fn bytes(&self) -> usize {
        self.chunks.iter().map(Vec::capacity).sum::<usize>() * size_of::<T>()
    }
}

/// An event as a part keeps it, when it is one of the many alike: 16 bytes. Its points and
/// stage are its rule's (no `scale = "fraction"`), its product one of the first
/// [`NO_COMPACT_PRODUCT`] names, and it is no dropped copy; any other event is kept whole
/// ([`Part::whole`]).
#[derive(Clone, Copy)]
struct Compact {
    ts: i64,
    lead: u32,
    /// The rule's number, 0 when no rule matched.
    rule: u16,
    /// The product's number, [`NO_COMPACT_PRODUCT`] for none.
    product: u16,
}

const NO_COMPACT_PRODUCT: u16 = u16::MAX;

/// One reader's rows of one part.
struct Part {
    keys: Keys,
    /// Events, each with its lead's number in `keys`.
    compact: Chunks<Compact>,
    whole: Chunks<(u32, Event)>,
    /// NPS answers: lead, time, value, whether a dropped copy's.
    answers: Vec<(u32, i64, f64, bool)>,
    /// Leads-table rows: the lead and its fit rules.
    fits: Vec<(u32, Vec<FitRule>)>,
    /// Leads-table rows with an account: the lead, and the account's place in the reader's
    /// account pieces (piece, row).
    accounts: Vec<(u32, u32, u32)>,
    /// Whether any event is a dropped copy.
    dropped: bool,
}

impl Part {
    fn new(layout: &Layout, text: bool) -> Self {
        Part {
            keys: Keys::new(layout, text),
            compact: Chunks::default(),
            whole: Chunks::default(),
            answers: Vec::new(),
            fits: Vec::new(),
            accounts: Vec::new(),
            dropped: false,
        }
    }

    fn bytes(&self) -> usize {
        self.keys.bytes()
            + self.compact.bytes()
            + self.whole.bytes()
            + self.answers.capacity() * size_of::<(u32, i64, f64, bool)>()
            + self.fits.capacity() * 32
            + self.accounts.capacity() * 12
    }
}

/// One worker's reading: its own parts, product numbers and account pieces.
struct Reader {
    setup: Arc<Setup>,
    input: Arc<dyn ExecutionPlan>,
    parts: Vec<Part>,
    products: Products,
    accounts: Vec<ArrayRef>,
    /// The rejected rows of each batch that had some (see [`Rejects`]).
    rejected: Vec<RecordBatch>,
    /// With a dense layout: which ids (by offset from the layout's lowest) were seen.
    dense: Vec<u64>,
}

impl Reader {
    fn new(setup: Arc<Setup>, input: Arc<dyn ExecutionPlan>) -> Self {
        let text = setup.lead_type != DataType::Int64;
        let setup_layout = setup.layout;
        let parts = (0..setup.layout.parts())
            .map(|_| Part::new(&setup.layout, text))
            .collect();
        Reader {
            setup,
            input,
            parts,
            products: Products::default(),
            accounts: Vec::new(),
            rejected: Vec::new(),
            dense: match setup_layout {
                Layout::Dense { shift, parts, .. } => vec![0; (parts << shift) / 64],
                _ => Vec::new(),
            },
        }
    }

    fn bytes(&self) -> usize {
        self.dense.capacity() * 8
            + self.parts.iter().map(Part::bytes).sum::<usize>()
            + self
                .accounts
                .iter()
                .map(|a| a.get_array_memory_size())
                .sum::<usize>()
    }

    /// Reads input partitions until none is left.
    async fn read_all(
        mut self,
        next: Arc<AtomicUsize>,
        inputs: usize,
        context: Arc<TaskContext>,
        filter: Option<Arc<dyn PhysicalExpr>>,
    ) -> Result<Reader> {
        let args = self.setup.fold.expressions();
        loop {
            let partition = next.fetch_add(1, Ordering::Relaxed);
            if partition >= inputs {
                return Ok(self);
            }
            let mut stream = read_ahead(&self.input, partition, &context);
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                let rows = batch.num_rows();
                // The rules and the spec (constants read once, by `Setup`) are not expanded
                // into arrays; other constants (a null value, no product) are.
                let values = args
                    .iter()
                    .enumerate()
                    .map(|(i, e)| {
                        if i == RULES_ARG || i == PARAMS_ARG {
                            Ok(new_null_array(&DataType::Null, 0))
                        } else {
                            e.evaluate(&batch)?.into_array(rows)
                        }
                    })
                    .collect::<Result<Vec<ArrayRef>>>()?;
                let filter = match &filter {
                    Some(f) => Some(f.evaluate(&batch)?.into_array(rows)?.as_boolean().clone()),
                    None => None,
                };
                self.add_batch(&values, filter.as_ref())?;
            }
        }
    }

    /// Adds the rows of one batch of `fold_events`' arguments.
    fn add_batch(&mut self, values: &[ArrayRef], filter: Option<&BooleanArray>) -> Result<()> {
        let setup = Arc::clone(&self.setup);
        let args = RawArgs::new(values, &setup.judge)?;
        let lead = &values[LEAD_ARG];
        let account = &values[ACCOUNT_ARG];
        let accounts = (account.logical_null_count() < account.len()).then(|| {
            self.accounts.push(Arc::clone(account));
            (self.accounts.len() as u32 - 1, account.logical_nulls())
        });
        let ids = match lead.data_type() {
            DataType::Int64 => Ids::Ints(lead.as_primitive::<Int64Type>()),
            DataType::Utf8View => Ids::Texts(lead.as_string_view()),
            DataType::Null => return Ok(()), // no row has a lead
            t => return internal_err!("LeadFoldExec: lead ids of type {t}"),
        };
        let dropped = values
            .get(DROPPED_ARG)
            .map(|d| d.as_boolean())
            .filter(|d| d.true_count() > 0);
        let mut rejected = Rejects::default();
        let long_way = accounts.is_some() || dropped.is_some();
        let plain = plain_rows(&args, lead, filter, long_way, &setup.long_way);
        let (ts, rules) = (args.ts.values(), args.rule.values());
        let last_cutoff = setup.params.last_cutoff();
        for i in 0..lead.len() {
            if plain.as_ref().is_some_and(|p| p.value(i)) {
                // A good event row whose points are its rule's: the short way.
                if ts[i] >= last_cutoff {
                    continue;
                }
                let rule = if args.rule.is_valid(i) {
                    rules[i] as u16
                } else {
                    0
                };
                let product = if rule != 0 && args.product.is_valid(i) {
                    match self.products.id_of_view(&args.product, i) {
                        id if id < u32::from(NO_COMPACT_PRODUCT) => id as u16,
                        _ => {
                            self.add_row(&setup, &args, &ids, i, None, &mut rejected, None)?;
                            continue;
                        }
                    }
                } else {
                    NO_COMPACT_PRODUCT
                };
                let (p, n) = self.number(&ids, i)?;
                self.parts[p].compact.push(Compact {
                    ts: ts[i],
                    lead: n,
                    rule,
                    product,
                });
                continue;
            }
            let account = accounts
                .as_ref()
                .filter(|(_, nulls)| nulls.as_ref().is_none_or(|n| n.is_valid(i)))
                .map(|(piece, _)| *piece);
            if crate::udf::passes(filter, i) || lead.is_null(i) {
                self.add_row(&setup, &args, &ids, i, account, &mut rejected, dropped)?;
            }
        }
        if let Some(batch) = rejected.rows(values, &setup.rejected_schema)? {
            self.rejected.push(batch);
        }
        Ok(())
    }

    /// Adds row `i` the long way: a leads-table row (its fit and account), or an event row that
    /// is rejected, a dropped copy, an answer, scaled by its value or beyond what a compact event
    /// holds.
    #[allow(clippy::too_many_arguments)]
    fn add_row(
        &mut self,
        setup: &Setup,
        args: &RawArgs,
        ids: &Ids,
        i: usize,
        account: Option<u32>,
        rejected: &mut Rejects,
        dropped: Option<&BooleanArray>,
    ) -> Result<()> {
        // Event rows have no fit; a leads-table row always has one.
        let fit = args.fit.as_ref().and_then(|f: &FitArg| f.get(i));
        if ids.is_null(i) {
            if fit.is_none() {
                rejected.add(i, Reason::NullLead, dropped);
            }
            return Ok(());
        }
        let judged = if fit.is_none() {
            match judge_raw_row(&setup.params, &setup.judge, args, i) {
                Judged::Event(event, nps) => Some((event, nps)),
                Judged::Later => None,
                Judged::Rejected(reason) => {
                    rejected.add(i, reason, dropped);
                    None
                }
            }
        } else {
            None
        };
        if fit.is_none() && judged.is_none() && account.is_none() {
            return Ok(());
        }
        let (p, n) = self.number(ids, i)?;
        let part = &mut self.parts[p];
        if let Some(fit) = fit {
            part.fits.push((n, fit));
        }
        if let Some(piece) = account {
            part.accounts.push((n, piece, i as u32));
        }
        let Some((mut event, nps)) = judged else {
            return Ok(());
        };
        if event.matched() && args.product.is_valid(i) {
            event.product = self.products.id_of_view(&args.product, i);
        }
        if let Some(v) = nps {
            part.answers.push((n, event.ts, v, event.dropped()));
        }
        part.dropped |= event.dropped();
        part.whole.push((n, event));
        Ok(())
    }

    /// The part of row `i`'s lead and the row's reference to the lead in it: the lead's
    /// offset in a dense part, else the position of its id in the part's [`Keys`].
    #[inline]
    fn number(&mut self, ids: &Ids, i: usize) -> Result<(usize, u32)> {
        let layout = self.setup.layout;
        match ids {
            Ids::Ints(ids) => {
                let id = ids.value(i);
                if let Layout::Dense { lo, shift, .. } = layout {
                    let offset = id.wrapping_sub(lo) as u64 as usize;
                    let Some(word) = self.dense.get_mut(offset / 64) else {
                        return internal_err!(
                            "LeadFoldExec: lead id {id} outside the range the session was given"
                        );
                    };
                    *word |= 1 << (offset % 64);
                    return Ok((offset >> shift, (offset & ((1 << shift) - 1)) as u32));
                }
                let p = layout.part_of_int(id);
                Ok((p, self.parts[p].keys.add_int(id)))
            }
            Ids::Texts(ids) => {
                let id = ids.value(i).as_bytes();
                let p = fast_range(text_hash(id), layout.parts());
                Ok((p, self.parts[p].keys.add_text(id)))
            }
        }
    }
}

/// A batch's lead ids.
enum Ids<'a> {
    Ints(&'a Int64Array),
    Texts(&'a StringViewArray),
}

impl Ids<'_> {
    fn is_null(&self, i: usize) -> bool {
        match self {
            Ids::Ints(a) => a.is_null(i),
            Ids::Texts(a) => a.is_null(i),
        }
    }
}

/// Which rows of a batch of events take the short way: a lead, a time and an action, kept by the
/// filter, no fit (an event row), a rule that is not scaled by value, and an action other than
/// `nps_response`. `None` when the batch has accounts (a leads-table batch) or dropped copies:
/// every row takes the long way then.
fn plain_rows(
    args: &RawArgs,
    lead: &ArrayRef,
    filter: Option<&BooleanArray>,
    long_way: bool,
    long_way_rule: &[bool],
) -> Option<BooleanBuffer> {
    if long_way || args.fit.is_some() {
        return None;
    }
    let n = lead.len();
    let mut plain = BooleanBuffer::new_set(n);
    for nulls in [
        lead.logical_nulls(),
        args.ts.logical_nulls(),
        args.action().logical_nulls(),
    ]
    .into_iter()
    .flatten()
    {
        plain = &plain & nulls.inner();
    }
    if let Some(f) = filter {
        let mut kept = f.values().clone();
        if let Some(nulls) = f.nulls() {
            kept = &kept & nulls.inner();
        }
        plain = &plain & &kept;
    }
    let views = args.action().views();
    let special = BooleanBuffer::collect_bool(n, |i| {
        views[i] == NPS_VIEW
            || (args.rule.is_valid(i) && long_way_rule[args.rule.value(i) as usize])
    });
    Some(&plain & &!&special)
}

/// The string view of `nps_response` (12 bytes: held inside the view itself).
const NPS_VIEW: u128 = {
    let text = b"nps_response";
    let mut view = text.len() as u128;
    let mut k = 0;
    while k < text.len() {
        view |= (text[k] as u128) << (32 + 8 * k);
        k += 1;
    }
    view
};

/// The rows of one batch that a check rejects: their positions, reasons, and whether each is
/// a dropped copy (a copy that `duplicate_events` drops comes a second time, marked; it cancels
/// its equal row, so a rejected row is listed once).
#[derive(Default)]
struct Rejects {
    rows: Vec<u32>,
    reasons: Vec<Reason>,
    dropped: Vec<bool>,
}

impl Rejects {
    fn add(&mut self, i: usize, reason: Reason, dropped: Option<&BooleanArray>) {
        self.rows.push(i as u32);
        self.reasons.push(reason);
        self.dropped
            .push(dropped.is_some_and(|d| d.is_valid(i) && d.value(i)));
    }

    /// The rejected rows of the batch whose `fold_events` arguments are `values`, in
    /// `schema` (the rejected rows' columns and a last one, `dropped`).
    fn rows(&self, values: &[ArrayRef], schema: &SchemaRef) -> Result<Option<RecordBatch>> {
        if self.rows.is_empty() {
            return Ok(None);
        }
        let indices = datafusion::arrow::array::UInt32Array::from(self.rows.clone());
        let take = |a: &ArrayRef| datafusion::arrow::compute::take(a, &indices, None);
        let n = self.rows.len();
        let event_id = match values.get(EVENT_ARG) {
            Some(ids) => take(ids)?,
            None => new_null_array(schema.field(6).data_type(), n),
        };
        let mut columns: Vec<ArrayRef> = vec![
            take(&values[LEAD_ARG])?,
            take(&values[0])?,
            take(&values[1])?,
            take(&values[2])?,
            take(&values[3])?,
            take(&values[4])?,
            event_id,
            Arc::new(datafusion::arrow::array::StringArray::from_iter_values(
                self.reasons.iter().map(|r| r.text()),
            )),
            Arc::new(BooleanArray::from(self.dropped.clone())),
        ];
        for (c, field) in columns.iter_mut().zip(schema.fields()) {
            if c.data_type() != field.data_type() {
                *c = datafusion::arrow::compute::cast(c, field.data_type())?;
            }
        }
        Ok(Some(RecordBatch::try_new(Arc::clone(schema), columns)?))
    }
}

/// The rows every reader rejected, each once: a dropped copy cancels one equal row that is not
/// one, and the `dropped` column goes. In the order of `rejects.sql`'s ORDER BY it is sorted
/// again; here the order is that of the rows' values.
fn settle_rejects(batches: Vec<RecordBatch>, schema: &SchemaRef) -> Result<RecordBatch> {
    use datafusion::arrow::row::{RowConverter, SortField};
    let all = datafusion::arrow::compute::concat_batches(schema, &batches)?;
    let keep = all.num_columns() - 1;
    let dropped = all.column(keep).as_boolean().clone();
    let output = Arc::new(schema.project(&(0..keep).collect::<Vec<_>>())?);
    if dropped.true_count() == 0 {
        return Ok(RecordBatch::try_new(
            output,
            all.columns()[..keep].to_vec(),
        )?);
    }
    let fields = all.columns()[..7]
        .iter()
        .map(|c| SortField::new(c.data_type().clone()))
        .collect();
    let converter = RowConverter::new(fields)?;
    let rows = converter.convert_columns(&all.columns()[..7])?;
    let mut order: Vec<usize> = (0..all.num_rows()).collect();
    order.sort_by(|&a, &b| rows.row(a).cmp(&rows.row(b)));
    let mut kept: Vec<u32> = Vec::new();
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        let (mut rows_kept, mut copies) = (Vec::new(), 0usize);
        while j < order.len() && rows.row(order[j]) == rows.row(order[i]) {
            if dropped.value(order[j]) {
                copies += 1;
            } else {
                rows_kept.push(order[j] as u32);
            }
            j += 1;
        }
        kept.extend(rows_kept.iter().skip(copies));
        i = j;
    }
    kept.sort_unstable();
    let indices = datafusion::arrow::array::UInt32Array::from(kept);
    let columns = all.columns()[..keep]
        .iter()
        .map(|c| datafusion::arrow::compute::take(c, &indices, None))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(output, columns)?)
}

/// Rule numbers a [`Compact`] event can carry.
const NO_COMPACT_RULE: usize = u16::MAX as usize;

/// Input partition `partition`, read by a task of its own a few batches ahead of the reader.
fn read_ahead(
    input: &Arc<dyn ExecutionPlan>,
    partition: usize,
    context: &Arc<TaskContext>,
) -> SendableRecordBatchStream {
    let mut builder = RecordBatchReceiverStream::builder(input.schema(), 2);
    let (tx, input, context) = (builder.tx(), Arc::clone(input), Arc::clone(context));
    builder.spawn(async move {
        let mut stream = input.execute(partition, context)?;
        while let Some(batch) = stream.next().await {
            if tx.send(batch).await.is_err() {
                break; // the reader stopped
            }
        }
        Ok(())
    });
    builder.build()
}

/// Room a fold task reuses from part to part: each part's events and answers gathered by lead.
#[derive(Default)]
struct PartScratch {
    start: Vec<usize>,
    events: Vec<Event>,
    answer_start: Vec<usize>,
    answers: Vec<(i64, f64, bool)>,
}

/// What a [`Compact`] event of each rule number becomes: its points and stage (number 0: an
/// unmatched event).
#[derive(Clone, Copy)]
struct RuleEvent {
    points: Option<f64>,
    stage: u16,
}

impl RuleEvent {
    #[inline]
    fn at(self, ts: i64, product: u32) -> Event {
        Event::new(ts, self.points, product, self.stage)
    }
}

/// Everything read, part by part, ready to fold.
struct Folding {
    setup: Arc<Setup>,
    /// By rule number, what a compact event of the rule is.
    rule_events: Vec<RuleEvent>,
    /// Each part's pieces, one per reader; taken by the fold of the part.
    parts: Vec<Mutex<Option<Vec<Part>>>>,
    /// All product names, and each reader's product numbers in those names' numbering.
    products: Products,
    product_ids: Vec<Vec<u32>>,
    /// Each reader's account pieces, and where its pieces start in `accounts`.
    accounts: Vec<ArrayRef>,
    account_base: Vec<u32>,
    /// Each reader's dense bitset (see [`Reader::dense`]).
    dense: Vec<Vec<u64>>,
    /// The pool's share of the parts, given back when the last output partition is done.
    _memory: MemoryReservation,
}

impl Folding {
    fn new(setup: Arc<Setup>, readers: Vec<Reader>, memory: MemoryReservation) -> Self {
        let mut products = Products::default();
        let mut product_ids = Vec::with_capacity(readers.len());
        let mut accounts = Vec::new();
        let mut account_base = Vec::with_capacity(readers.len());
        let mut dense = Vec::with_capacity(readers.len());
        let mut parts: Vec<Vec<Part>> = (0..setup.layout.parts())
            .map(|_| Vec::with_capacity(readers.len()))
            .collect();
        for reader in readers {
            product_ids.push(
                reader
                    .products
                    .names
                    .iter()
                    .map(|name| products.id(name))
                    .collect(),
            );
            account_base.push(accounts.len() as u32);
            accounts.extend(reader.accounts);
            dense.push(reader.dense);
            for (p, part) in reader.parts.into_iter().enumerate() {
                parts[p].push(part);
            }
        }
        let rule_events = std::iter::once(RuleEvent {
            points: None,
            stage: 0,
        })
        .chain(setup.judge.rules.iter().map(|r| RuleEvent {
            points: Some(r.points),
            stage: setup.params.stage_code(r.stage_rank.unwrap_or(0)),
        }))
        .collect();
        Folding {
            setup,
            rule_events,
            parts: parts.into_iter().map(|p| Mutex::new(Some(p))).collect(),
            products,
            product_ids,
            accounts,
            account_base,
            dense,
            _memory: memory,
        }
    }

    /// Folds part `p` into its output rows, with `scratch` as room for its events.
    fn fold_part(
        &self,
        p: usize,
        batch_rows: usize,
        scratch: &mut PartScratch,
    ) -> Result<Vec<RecordBatch>> {
        let pieces = self.parts[p]
            .lock()
            .map_err(|_| DataFusionError::Execution("LeadFoldExec: a fold panicked".into()))?
            .take();
        let Some(pieces) = pieces else {
            return internal_err!("LeadFoldExec: part {p} folded twice");
        };
        let leads = Leads::merge(&self.setup.layout, p, &pieces, &self.dense);
        let count = leads.len();
        if count == 0 {
            return Ok(Vec::new());
        }

        // Events, answers, fits and accounts gathered by lead (a counting sort).
        let PartScratch {
            start,
            events,
            answers,
            answer_start,
        } = scratch;
        start.clear();
        start.resize(count + 1, 0);
        answer_start.clear();
        answer_start.resize(count + 1, 0);
        for (r, piece) in pieces.iter().enumerate() {
            let number = leads.of(r);
            for e in piece.compact.iter() {
                start[number[e.lead as usize] as usize + 1] += 1;
            }
            for (n, _) in piece.whole.iter() {
                start[number[*n as usize] as usize + 1] += 1;
            }
            for a in &piece.answers {
                answer_start[number[a.0 as usize] as usize + 1] += 1;
            }
        }
        for g in 0..count {
            start[g + 1] += start[g];
            answer_start[g + 1] += answer_start[g];
        }
        events.clear();
        events.resize(start[count], Event::default());
        answers.clear();
        answers.resize(answer_start[count], (0i64, 0f64, false));
        let mut next = start.clone();
        let mut next_answer = answer_start.clone();
        let mut fits: Vec<Option<Vec<FitRule>>> = vec![None; count];
        let mut account: Vec<Option<(usize, usize)>> = vec![None; count];
        let mut cancel = false;
        for (r, piece) in pieces.into_iter().enumerate() {
            let number = leads.of(r);
            let ids = &self.product_ids[r];
            let product = |id: u32| ids.get(id as usize).copied().unwrap_or(NO_PRODUCT);
            cancel |= piece.dropped;
            for e in piece.compact.iter() {
                let g = number[e.lead as usize] as usize;
                events[next[g]] = self.rule_events[usize::from(e.rule)].at(
                    e.ts,
                    match e.product {
                        NO_COMPACT_PRODUCT => NO_PRODUCT,
                        id => product(u32::from(id)),
                    },
                );
                next[g] += 1;
            }
            for (n, e) in piece.whole.iter() {
                let g = number[*n as usize] as usize;
                let mut e = *e;
                if e.product != NO_PRODUCT {
                    e.product = product(e.product);
                }
                events[next[g]] = e;
                next[g] += 1;
            }
            for (n, ts, v, dropped) in piece.answers {
                let g = number[n as usize] as usize;
                answers[next_answer[g]] = (ts, v, dropped);
                next_answer[g] += 1;
            }
            for (n, fit) in piece.fits {
                let g = number[n as usize] as usize;
                fits[g].get_or_insert(fit);
            }
            let base = self.account_base[r];
            for (n, piece, row) in piece.accounts {
                let g = number[n as usize] as usize;
                account[g].get_or_insert(((base + piece) as usize + 1, row as usize));
            }
        }

        let fold = LeadFold {
            params: &self.setup.params,
            products: &self.products,
        };
        let mut batches = Vec::new();
        let mut out = Output::new(&self.setup.params, batch_rows.min(count));
        let mut walk = Scratch::new(self.setup.params.stages());
        let mut lead_answers = Vec::new();
        // For each output row: its lead's number in `leads`.
        let mut row_lead: Vec<u32> = Vec::new();
        for g in 0..count {
            lead_answers.clear();
            lead_answers.extend_from_slice(&answers[answer_start[g]..answer_start[g + 1]]);
            let before = out.rows();
            fold.lead(
                &mut events[start[g]..start[g + 1]],
                &mut lead_answers,
                cancel,
                fits[g].as_deref(),
                &mut out,
                &mut walk,
            );
            row_lead.extend(std::iter::repeat_n(g as u32, out.rows() - before));
            if out.rows() >= batch_rows || (g + 1 == count && out.rows() > 0) {
                let full = std::mem::replace(
                    &mut out,
                    Output::new(&self.setup.params, batch_rows.min(count - g)),
                );
                batches.push(self.batch(full, &row_lead, &leads, &account)?);
                row_lead.clear();
            }
        }
        Ok(batches)
    }

    /// The output batch of the rows in `out`, whose leads are `row_lead`.
    fn batch(
        &self,
        out: Output,
        row_lead: &[u32],
        leads: &Leads,
        account: &[Option<(usize, usize)>],
    ) -> Result<RecordBatch> {
        let mut columns = out.columns()?;
        columns.push(leads.ids(row_lead, &self.setup.lead_type)?);
        columns.push(self.accounts_of(row_lead, account)?);
        let columns = match &self.setup.picked {
            Some(picked) => picked.iter().map(|&i| Arc::clone(&columns[i])).collect(),
            None => {
                let rows = StructArray::try_new(self.setup.fields.clone(), columns, None)?;
                vec![Arc::new(rows) as ArrayRef]
            }
        };
        Ok(RecordBatch::try_new(
            Arc::clone(&self.setup.schema),
            columns,
        )?)
    }

    /// The account of each output row's lead.
    fn accounts_of(
        &self,
        row_lead: &[u32],
        account: &[Option<(usize, usize)>],
    ) -> Result<ArrayRef> {
        let t = &self.setup.account_type;
        if account.iter().all(Option::is_none) || *t == DataType::Null {
            return Ok(new_null_array(t, row_lead.len()));
        }
        let none = new_null_array(t, 1);
        let mut arrays: Vec<&dyn Array> = vec![none.as_ref()];
        arrays.extend(self.accounts.iter().map(|a| a.as_ref()));
        let indices: Vec<(usize, usize)> = row_lead
            .iter()
            .map(|&g| account[g as usize].unwrap_or((0, 0)))
            .collect();
        Ok(interleave(&arrays, &indices)?)
    }
}

/// The leads of one part, merged over its readers and sorted by id.
struct Leads {
    /// Each reader's references to leads (see [`Keys`]) mapped to the merged numbers (one list
    /// for all readers when they refer to leads alike, as dense parts do).
    number: Vec<Vec<u32>>,
    ids: MergedIds,
}

enum MergedIds {
    /// Ids `first + offset` for these offsets.
    Dense {
        first: i64,
        offsets: Vec<u32>,
    },
    Ints(Vec<i64>),
    /// The texts, one after the other, and where each ends.
    Texts {
        bytes: Vec<u8>,
        ends: Vec<usize>,
    },
}

impl Leads {
    /// The leads of part `p` of `pieces` (one per reader); `dense` are the readers' dense
    /// bitsets.
    fn merge(layout: &Layout, p: usize, pieces: &[Part], dense: &[Vec<u64>]) -> Leads {
        match (layout, pieces.first().map(|x| &x.keys)) {
            (Layout::Dense { lo, shift, .. }, Some(Keys::Dense)) => {
                let words = (1usize << shift) / 64;
                let mut seen = vec![0u64; words];
                for bits in dense {
                    for (w, b) in bits[p * words..(p + 1) * words].iter().enumerate() {
                        seen[w] |= b;
                    }
                }
                let mut offsets = Vec::new();
                let mut number = vec![u32::MAX; words * 64];
                for (w, &bits) in seen.iter().enumerate() {
                    let mut bits = bits;
                    while bits != 0 {
                        let b = bits.trailing_zeros() as usize;
                        bits &= bits - 1;
                        number[w * 64 + b] = offsets.len() as u32;
                        offsets.push((w * 64 + b) as u32);
                    }
                }
                Leads {
                    number: vec![number],
                    ids: MergedIds::Dense {
                        first: lo + ((p as i64) << shift),
                        offsets,
                    },
                }
            }
            (_, Some(Keys::Texts { .. })) => Self::merge_texts(pieces),
            _ => Self::merge_ints(pieces),
        }
    }

    /// Integer ids: each distinct id numbered, in id order.
    fn merge_ints(pieces: &[Part]) -> Leads {
        let mut table: HashTable<u32> = HashTable::new();
        let mut distinct: Vec<i64> = Vec::new();
        let mut number: Vec<Vec<u32>> = Vec::with_capacity(pieces.len());
        for piece in pieces {
            let Keys::Ints(ids) = &piece.keys else {
                number.push(Vec::new());
                continue;
            };
            let mut refs = Vec::with_capacity(ids.len);
            for &id in ids.iter() {
                let n = *table
                    .entry(
                        in_part(int_hash(id)),
                        |&n| distinct[n as usize] == id,
                        |&n| in_part(int_hash(distinct[n as usize])),
                    )
                    .or_insert_with(|| {
                        distinct.push(id);
                        distinct.len() as u32 - 1
                    })
                    .get();
                refs.push(n);
            }
            number.push(refs);
        }
        let mut order: Vec<u32> = (0..distinct.len() as u32).collect();
        order.sort_unstable_by_key(|&n| distinct[n as usize]);
        let rank = ranks(&order);
        for refs in &mut number {
            for n in refs.iter_mut() {
                *n = rank[*n as usize];
            }
        }
        Leads {
            number,
            ids: MergedIds::Ints(order.iter().map(|&n| distinct[n as usize]).collect()),
        }
    }

    /// Text ids: each distinct text numbered, in the order of (hash, text), which does not
    /// depend on the order rows arrive in.
    fn merge_texts(pieces: &[Part]) -> Leads {
        let mut table: HashTable<u32> = HashTable::new();
        // Distinct texts: (hash, reader, view).
        let mut distinct: Vec<(u64, u32, u128)> = Vec::new();
        fn text<'a>(pieces: &'a [Part], (_, r, view): &'a (u64, u32, u128)) -> &'a [u8] {
            match &pieces[*r as usize].keys {
                Keys::Texts { bytes, .. } => Keys::text_of(view, bytes),
                _ => &[],
            }
        }
        let mut number: Vec<Vec<u32>> = Vec::with_capacity(pieces.len());
        for (r, piece) in pieces.iter().enumerate() {
            let Keys::Texts { views, bytes } = &piece.keys else {
                number.push(Vec::new());
                continue;
            };
            let mut refs = Vec::with_capacity(views.len);
            for view in views.iter() {
                let id = Keys::text_of(view, bytes);
                let hash = text_hash(id);
                let n = *table
                    .entry(
                        in_part(hash),
                        |&n| {
                            let d = &distinct[n as usize];
                            d.0 == hash && text(pieces, d) == id
                        },
                        |&n| in_part(distinct[n as usize].0),
                    )
                    .or_insert_with(|| {
                        distinct.push((hash, r as u32, *view));
                        distinct.len() as u32 - 1
                    })
                    .get();
                refs.push(n);
            }
            number.push(refs);
        }
        let mut order: Vec<u32> = (0..distinct.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| {
            let (a, b) = (&distinct[a as usize], &distinct[b as usize]);
            a.0.cmp(&b.0)
                .then_with(|| text(pieces, a).cmp(text(pieces, b)))
        });
        let rank = ranks(&order);
        for refs in &mut number {
            for n in refs.iter_mut() {
                *n = rank[*n as usize];
            }
        }
        let mut bytes = Vec::new();
        let mut ends = Vec::with_capacity(order.len());
        for &n in &order {
            bytes.extend_from_slice(text(pieces, &distinct[n as usize]));
            ends.push(bytes.len());
        }
        Leads {
            number,
            ids: MergedIds::Texts { bytes, ends },
        }
    }

    /// Reader `r`'s references mapped to the merged numbers.
    fn of(&self, r: usize) -> &[u32] {
        &self.number[r.min(self.number.len() - 1)]
    }

    fn len(&self) -> usize {
        match &self.ids {
            MergedIds::Dense { offsets, .. } => offsets.len(),
            MergedIds::Ints(ids) => ids.len(),
            MergedIds::Texts { ends, .. } => ends.len(),
        }
    }

    /// The id of each output row's lead, as an array of `t`.
    fn ids(&self, row_lead: &[u32], t: &DataType) -> Result<ArrayRef> {
        Ok(match &self.ids {
            MergedIds::Dense { first, offsets } => Arc::new(Int64Array::from_iter_values(
                row_lead
                    .iter()
                    .map(|&g| first + i64::from(offsets[g as usize])),
            )),
            MergedIds::Ints(ids) => Arc::new(Int64Array::from_iter_values(
                row_lead.iter().map(|&g| ids[g as usize]),
            )),
            MergedIds::Texts { bytes, ends } => {
                if *t != DataType::Utf8View {
                    return internal_err!("LeadFoldExec: text lead ids of type {t}");
                }
                // Views into one buffer of the part's texts.
                let block = datafusion::arrow::buffer::Buffer::from(bytes.clone());
                let views: Vec<u128> = row_lead
                    .iter()
                    .map(|&g| {
                        let g = g as usize;
                        let start = if g == 0 { 0 } else { ends[g - 1] };
                        make_view(&bytes[start..ends[g]], 0, start as u32)
                    })
                    .collect();
                // SAFETY: the texts were valid UTF-8 when read (each came from a string array),
                // and each view lies inside the one buffer, at the offsets recorded as it grew.
                Arc::new(unsafe { StringViewArray::new_unchecked(views.into(), vec![block], None) })
            }
        })
    }
}

/// For `order`, a permutation of `0..n`, each number's position in it.
fn ranks(order: &[u32]) -> Vec<u32> {
    let mut rank = vec![0u32; order.len()];
    for (position, &n) in order.iter().enumerate() {
        rank[n as usize] = position as u32;
    }
    rank
}

impl DisplayAs for LeadFoldExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        let layout = match self.layout {
            Layout::Dense { parts, .. } => format!("dense ids, {parts} parts"),
            Layout::Ranges { parts, .. } => format!("id ranges, {parts} parts"),
            Layout::Hashed { parts } => format!("hashed ids, {parts} parts"),
        };
        match t {
            DisplayFormatType::Default | DisplayFormatType::Verbose => write!(
                f,
                "LeadFoldExec: fold={}, {layout}, workers={}",
                self.fold.name(),
                self.workers
            ),
            DisplayFormatType::TreeRender => write!(f, "{layout}"),
        }
    }
}

impl ExecutionPlan for LeadFoldExec {
    fn name(&self) -> &str {
        "LeadFoldExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        let mut exprs = self.fold.expressions();
        exprs.extend(self.filter.clone());
        for e in &exprs {
            if f(e)? == TreeNodeRecursion::Stop {
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match children.len() {
            1 => Ok(Arc::new(self.with_input(children.swap_remove(0)))),
            n => internal_err!("LeadFoldExec has one input, given {n}"),
        }
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let partitions = self.properties.partitioning.partition_count();
        if partition >= partitions {
            return internal_err!("LeadFoldExec has no partition {partition}");
        }
        let me = Arc::new(Self {
            runs: Arc::clone(&self.runs),
            ..self.with_input(Arc::clone(&self.input))
        });
        let reading = self.runs.reading(partitions, || {
            let (me, context) = (Arc::clone(&me), Arc::clone(&context));
            async move { me.read(context).await.map_err(Arc::new) }
                .boxed()
                .shared()
        })?;
        let mut builder = RecordBatchReceiverStream::builder(self.schema(), 2);
        let tx = builder.tx();
        builder.spawn(async move { me.fold_partition(reading, partition, context, tx).await });
        Ok(builder.build())
    }
}

#[cfg(test)]
mod tests {
    use super::{FoldOptions, LeadIdRange};
    use crate::context::{EngineOptions, session};
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::{Date32Type, Int64Type};
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::physical_plan::displayable;
    use datafusion::prelude::{SessionConfig, SessionContext};

    /// 30,000 rows of 12,000 leads (ids `lead_id`, spread by `spread`): page views worth 10 or
    /// 1 points, answers, four products (seen in a different order by each input partition),
    /// copies marked dropped, and a leads-table row (fit, account) for every third lead.
    fn rows(ids: &str) -> String {
        format!(
            "create table rows as
            with e as (
                select value as i, (value * 7919) % 12000 as n from range(0, 30000)
            )
            select {ids} as lead_id,
                arrow_cast(1767225600000000 + (i % 30) * 86400000000 + i,
                           'Timestamp(Microsecond, Some(\"UTC\"))') as ts,
                case when i % 5 = 0 then 'nps_response' else 'page_view' end as action,
                case when i % 3 = 0 then '/pricing' else '/blog' end as asset,
                case i % 4 when 0 then 'crm' when 1 then 'ads' when 2 then null else 'mail' end
                    as product,
                cast(i % 11 as double) as value,
                cast(null as double) as fit, cast(null as varchar) as account_id,
                i % 97 = 0 as dropped
            from e
            union all
            select {ids}, null, null, null, null, null, 1.0, 'acct' || (n % 50), false
            from (select value * 3 as n from range(0, 4000))"
        )
    }

    const FOLD: &str = "select s['lead_id'] as lead, s['as_of'] as as_of, s['account_id'] as account,
            s['engagement'] as engagement, s['fit'] as fit, s['mql_at'] as mql_at,
            s['matched'] as matched, s['unmatched'] as unmatched, s['nps'] as nps,
            s['products'] as products, s['product_scores'] as product_scores
         from (
            select unnest(fold_events(ts, action, asset, product, value, fit,
                '[{\"action\":\"page_view\",\"assets\":[\"/pricing*\"],\"points\":10,\"stage_rank\":1},
                  {\"action\":\"page_view\",\"points\":1}]',
                '{\"threshold\":30,\"floor\":0,\"decay\":{\"kind\":\"exponential\",\"half_life_days\":7},
                   \"from\":\"2026-01-20\",\"to\":\"2026-01-31\",\"every_days\":3,\"stages\":1,
                   \"products\":true}',
                dropped, lead_id, account_id) filter (where lead_id is not null)) as s
            from rows group by lead_id
         )";

    async fn run(ctx: &SessionContext, ids: &str, sql: &str) -> (String, Vec<String>) {
        ctx.sql(&rows(ids)).await.unwrap().collect().await.unwrap();
        let df = ctx.sql(sql).await.unwrap();
        let plan = df.clone().create_physical_plan().await.unwrap();
        let shown = displayable(plan.as_ref()).indent(false).to_string();
        let batches = df.collect().await.unwrap();
        let text = pretty_format_batches(&batches).unwrap().to_string();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        (shown, lines)
    }

    fn local(range: Option<LeadIdRange>) -> SessionContext {
        let options = EngineOptions {
            threads: 3,
            batch_size: 1000,
            ..EngineOptions::default()
        };
        let ctx = session(&options).unwrap();
        if range.is_some() {
            let state = ctx.state_ref();
            let mut state = state.write();
            state
                .config_mut()
                .options_mut()
                .extensions
                .insert(FoldOptions {
                    range,
                    rejected: None,
                });
        }
        ctx
    }

    /// DataFusion alone: an exchange by lead, an aggregate (in two phases) and an unnest.
    async fn expected(ids: &str) -> Vec<String> {
        let config = SessionConfig::new()
            .with_target_partitions(3)
            .with_batch_size(1000);
        let mut plain = SessionContext::new_with_config(config);
        crate::udf::register_all(&mut plain).unwrap();
        let (plan, mut rows) = run(&plain, ids, &format!("{FOLD} order by lead, as_of")).await;
        assert!(!plan.contains("LeadFoldExec"), "{plan}");
        rows.sort();
        rows
    }

    async fn check(ids: &str, range: Option<LeadIdRange>, layout: &str, sorted: bool) {
        let ctx = local(range);
        let (plan, rows) = run(&ctx, ids, FOLD).await;
        assert!(plan.contains("LeadFoldExec"), "{plan}");
        assert!(plan.contains(layout), "{plan}");
        assert!(
            !plan.contains("RepartitionExec: partitioning=Hash"),
            "{plan}"
        );
        assert!(!plan.contains("AggregateExec"), "{plan}");
        let body: Vec<&String> = rows
            .iter()
            .filter(|l| l.starts_with("| "))
            .skip(1)
            .collect();
        if sorted {
            // Each output partition's rows by lead, each lead's snapshots in day order.
            let partitions = ctx
                .sql(FOLD)
                .await
                .unwrap()
                .collect_partitioned()
                .await
                .unwrap();
            assert!(partitions.len() > 1);
            for batches in partitions {
                let mut keys: Vec<(i64, i32)> = Vec::new();
                for batch in batches {
                    let lead = batch.column(0).as_primitive::<Int64Type>();
                    let day = batch.column(1).as_primitive::<Date32Type>();
                    keys.extend(
                        lead.values()
                            .iter()
                            .copied()
                            .zip(day.values().iter().copied()),
                    );
                }
                assert!(keys.is_sorted(), "not in lead order");
            }
        }
        // Snapshots of the 12,000 leads: four for a lead with a leads-table row, one for each
        // snapshot after the first event for the others.
        assert_eq!(body.len(), 41_600);
        let mut rows = rows;
        rows.sort();
        let expected = expected(ids).await;
        assert_eq!(rows.len(), expected.len());
        assert_eq!(rows, expected);
    }

    #[tokio::test]
    async fn dense_integer_ids_fold_in_id_order_like_the_aggregate() {
        let range = LeadIdRange {
            lo: 0,
            hi: 11_999,
            rows: 34_000,
        };
        check("n", Some(range), "dense ids", true).await;
    }

    #[tokio::test]
    async fn sparse_integer_ids_fold_in_id_order_like_the_aggregate() {
        let ids = "n * 1000003 - 5000000000";
        let range = LeadIdRange {
            lo: -5_000_000_000,
            hi: 11_999 * 1_000_003 - 5_000_000_000,
            rows: 34_000,
        };
        check(ids, Some(range), "id ranges", true).await;
    }

    #[tokio::test]
    async fn integer_ids_of_unknown_range_fold_like_the_aggregate() {
        check("n * 31", None, "hashed ids", false).await;
    }

    #[tokio::test]
    async fn text_ids_fold_like_the_aggregate() {
        // Utf8View, as Parquet text reads: `fold_events` would cast other text ids, and then
        // the aggregate groups by the column and not by the argument.
        check(
            "arrow_cast('lead-' || n, 'Utf8View')",
            None,
            "hashed ids",
            false,
        )
        .await;
    }

    #[tokio::test]
    async fn an_id_outside_the_dense_range_is_an_error() {
        // A dense part spans 4,096 ids: ids from 4,096 on lie outside the one part.
        let range = LeadIdRange {
            lo: 0,
            hi: 4_000,
            rows: 34_000,
        };
        let ctx = local(Some(range));
        ctx.sql(&rows("n")).await.unwrap().collect().await.unwrap();
        let error = ctx.sql(FOLD).await.unwrap().collect().await.unwrap_err();
        assert!(error.to_string().contains("outside the range"), "{error}");
    }
}
